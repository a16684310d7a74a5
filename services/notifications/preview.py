"""Operators' preview: print the emails an event would send, without sending anything.

    uv run python -m services.notifications.preview return.authorized --locale zh-CN [--html]
    uv run python -m services.notifications.preview path/to/event.json
A name of an event type renders its sample data (`--late`, `--returnless`, `--automatic`,
`--direct`, `--already-refunded`, `--no-seller`, `--store-credit`, `--replacing` vary it); a file is a
CloudEvent as published on the bus.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from services.notifications.rendering import plan
from services.notifications.samples import sample_event
from shared.events import EVENT_TYPES, CloudEvent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.notifications.preview", description=__doc__.splitlines()[0]
    )
    parser.add_argument("event", help="an event type (sample data) or a CloudEvent JSON file")
    parser.add_argument("--locale", default="en")
    parser.add_argument("--html", action="store_true", help="print the HTML part too")
    flags = ("late", "returnless", "automatic", "direct", "already-refunded", "no-seller", "store-credit", "replacing")
    for flag in flags:
        parser.add_argument(f"--{flag}", action="store_true")
    args = parser.parse_args(argv)
    if args.event in EVENT_TYPES:
        event = sample_event(
            args.event,
            locale=args.locale,
            late=args.late,
            returnless=args.returnless,
            automatic=args.automatic,
            direct=args.direct,
            already_refunded=args.already_refunded,
            no_seller=args.no_seller,
            store_credit=args.store_credit,
            replacing=args.replacing,
        )
    else:
        event = CloudEvent.from_json(Path(args.event).read_bytes())
    emails = plan(event)
    if not emails:
        print(f"{event.type}: no email")
    for email in emails:
        print(f"=== to {email.recipient_role} {email.recipient.id} | {email.template} | {email.email.locale}")
        print(f"Subject: {email.email.subject}\n\n{email.email.text}")
        if args.html:
            print(email.email.html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
