"""Turn an event into the emails it calls for: decide, gather facts, render both parts.

Pure: no I/O besides reading templates. HTML parts are autoescaped; text parts and subjects are
not (they are not HTML), and subjects are folded onto one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound, select_autoescape

from services.notifications.decisions import decide
from services.notifications.dispute_facts import chargeback_facts, claim_facts
from services.notifications.facts import DEFAULT_LOCALE, Reader, refund_facts, return_facts
from services.notifications.resolution_facts import resolution_facts, store_credit_facts
from services.notifications.subjects import EmailData, marketplace, party
from shared.dispute_models import Claim
from shared.events import CloudEvent
from shared.models import Party, Refund, Return
from shared.resolution_models import StoreCreditEntry

TEMPLATES_DIR = Path(__file__).parent / "templates"
_BLANK_LINES = re.compile(r"\n{3,}")
# Line breaks and runs of blanks fold to one space; a no-break space (German "55,49\u00a0€") stays.
_FOLD = re.compile(r"[ \t\r\n\f\v]+")


@dataclass(frozen=True)
class RenderedEmail:
    locale: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class PlannedEmail:
    """One email an event calls for: who, which template, and its rendered content."""

    recipient_role: str
    recipient: Party
    template: str
    email: RenderedEmail


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the code: no stat() of the file on every email
    )


@lru_cache(maxsize=256)
def _template(locale: str, template: str, part: str) -> Template:
    env = environment()
    try:
        return env.get_template(f"{locale}/{template}.{part}")
    except TemplateNotFound:
        return env.get_template(f"{DEFAULT_LOCALE}/{template}.{part}")


def render(template: str, locale: str, facts: dict[str, Any]) -> RenderedEmail:
    text_template = _template(locale, template, "txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(dict(facts))))
    return RenderedEmail(
        locale=locale,
        subject=_FOLD.sub(" ", subject).strip(),
        text=_BLANK_LINES.sub("\n\n", text_template.render(facts)).strip() + "\n",
        html=_template(locale, template, "html").render(facts),
    )


def facts_for(data: EmailData, reader: Reader) -> dict[str, Any]:
    if isinstance(data, Return):
        return return_facts(data, reader) | resolution_facts(data, reader)
    if isinstance(data, Refund):
        return refund_facts(data, reader)
    if isinstance(data, Claim):
        return claim_facts(data, reader)
    if isinstance(data, StoreCreditEntry):
        return store_credit_facts(data, reader)
    return chargeback_facts(data, reader)


def plan(event: CloudEvent, data: Any = None) -> list[PlannedEmail]:
    """Every email `event` calls for, rendered for its reader (empty for events that send none).

    `data`: the event's data already validated (consumers have it), so it is not validated again.
    """
    if data is None:
        data = event.typed()
    if not isinstance(data, EmailData):
        return []
    planned = []
    for role, template in decide(event.type, data):
        recipient = party(data, role)
        if recipient is None:  # the table's conditions rule this out; a missing party is no email
            continue
        reader = Reader.of(role, recipient, marketplace(data))
        email = render(template, reader.locale, facts_for(data, reader))
        planned.append(PlannedEmail(role, recipient, template, email))
    return planned
