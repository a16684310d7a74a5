"""The published contracts, generated from the code: AsyncAPI (events, queues), OpenAPI, configuration.

    uv run python -m tools.contracts           # rewrite docs/asyncapi.yaml, docs/openapi/*.json,
                                               #   docs/configuration.md, the query-shape table
                                               #   of docs/design.md
    uv run python -m tools.contracts --check   # exit 1 and name every stale document

Every event type (its data model, publisher, exchange, title and summary) comes from the registry
`shared.events.EVENT_TYPES`; who consumes what from the `SUBSCRIPTIONS` list in each
services/<name>/handlers.py. The documents follow the code.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from services.notifications.webhooks.bindings import queue_name as webhook_queue_name
from shared import bus as bus_module
from shared import query_shapes
from shared.events import EVENT_TYPES, EXCHANGE, ORDER_SYSTEM, ORDERS_EXCHANGE, SCHEMA_VERSION, CloudEvent, dataschema
from shared.queues import DELIVERY_LIMIT, QueueNames
from shared.settings import CommonSettings
from tools.configuration_reference import configuration_document as _configuration_document
from tools.contract_examples import example_event as _example_event

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ASYNCAPI_PATH = DOCS / "asyncapi.yaml"
OPENAPI_DIR = DOCS / "openapi"
CONFIGURATION_PATH = DOCS / "configuration.md"
DESIGN_PATH = DOCS / "design.md"
SHAPES_BEGIN = "<!-- query shapes: generated from shared/query_shapes/ by scripts/gen-contracts -->"
SHAPES_END = "<!-- end of query shapes -->"

SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
PORTS = {"returns": 8001, "refunds": 8002, "notifications": 8003, "metrics": 8004, "disputes": 8005}
CONTENT_TYPE = bus_module.CONTENT_TYPE
AMQP_BINDING_VERSION = "0.3.0"

# ---- reading the services -------------------------------------------------------------------


def settings_class(service: str) -> type[CommonSettings]:
    """The CommonSettings subclass defined in services/<service>/settings.py."""
    module = importlib.import_module(f"services.{service}.settings")
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, CommonSettings)
        and obj is not CommonSettings
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise LookupError(f"services.{service}.settings defines {len(found)} settings classes, expected 1")
    return found[0]


@contextmanager
def clean_environment(*settings_classes: type[CommonSettings]) -> Iterator[None]:
    """Hide environment variables that would change settings, so output depends on code only."""
    classes: tuple[type[CommonSettings], ...] = (CommonSettings, *settings_classes)
    names = {name.upper() for cls in classes for name in cls.model_fields}
    hidden = {key: os.environ.pop(key) for key in list(os.environ) if key.upper() in names}
    try:
        yield
    finally:
        os.environ.update(hidden)


def contract_settings(service: str) -> CommonSettings:
    cls = settings_class(service)
    # A placeholder key: the app refuses to build without one; it never signs anything here.
    return cls(jwt_algorithm="HS256", jwt_secret="contract-generation-placeholder-key-0000000000")  # noqa: S106 - a placeholder, see above


def code_subscriptions(service: str) -> dict[str, str]:
    """event type -> exchange, from the `SUBSCRIPTIONS` list in services/<service>/handlers.py."""
    module = importlib.import_module(f"services.{service}.handlers")
    return {subscription.event_type: subscription.exchange for subscription in module.SUBSCRIPTIONS}


def consumers() -> dict[str, dict[str, str]]:
    """service -> {event type -> exchange} of every platform service."""
    return {service: code_subscriptions(service) for service in SERVICES}


def example_event(event_type: str) -> dict[str, Any]:
    publisher = EVENT_TYPES[event_type].publisher
    return _example_event(event_type, publisher, external=publisher == ORDER_SYSTEM)


def configuration_document() -> str:
    return _configuration_document({service: settings_class(service) for service in SERVICES})


def design_document() -> str:
    """docs/design.md with its query-shape table rendered from shared/query_shapes/."""
    text = DESIGN_PATH.read_text()
    head, begin, rest = text.partition(SHAPES_BEGIN)
    _, end, tail = rest.partition(SHAPES_END)
    if not begin or not end:
        raise ValueError(f"{DESIGN_PATH.name} lacks the markers {SHAPES_BEGIN!r} ... {SHAPES_END!r}")
    return f"{head}{SHAPES_BEGIN}\n{query_shapes.render_table()}{SHAPES_END}{tail}"


# ---- AsyncAPI -------------------------------------------------------------------------------


def _title(name: str) -> str:
    return name[:1].upper() + name[1:]


def _schemas() -> dict[str, Any]:
    models = sorted({t.data for t in EVENT_TYPES.values()}, key=lambda m: m.__name__)
    _, top = models_json_schema(
        [(model, "serialization") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas = dict(sorted(top.get("$defs", {}).items()))
    envelope = CloudEvent.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    envelope["description"] = (
        "CloudEvents 1.0 structured JSON (the AMQP body). `id` is also the AMQP message_id and the "
        "key consumers dedupe on; `sequence` is the aggregate's version after the change, for "
        "ordering; `data` is the aggregate's full current state. Unknown extension attributes may "
        "appear and must be ignored."
    )
    schemas["CloudEvent"] = envelope
    return schemas


def _queue_binding(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False, "vhost": "/"},
            "x-arguments": arguments,
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def asyncapi_document() -> dict[str, Any]:
    consumed = consumers()
    event_types = list(EVENT_TYPES)
    retry_delays = list(CommonSettings.model_fields["retry_delays_ms"].default)
    subscribers = {t: [s for s in SERVICES if t in consumed[s]] for t in event_types}

    messages: dict[str, Any] = {}
    for event_type in event_types:
        registered = EVENT_TYPES[event_type]
        constants: dict[str, Any] = {
            "type": {"const": event_type},
            "dataschema": {"const": dataschema(event_type)},
            "data": {"$ref": f"#/components/schemas/{registered.data.__name__}"},
        }
        if registered.publisher != ORDER_SYSTEM:
            constants["source"] = {"const": f"/services/{registered.publisher}"}
        messages[event_type] = {
            "name": event_type,
            "title": registered.title,
            "summary": registered.summary,
            "contentType": CONTENT_TYPE,
            "correlationId": {
                "description": "The aggregate the event is about (return, refund, buyer, notification or order id).",
                "location": "$message.payload#/subject",
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {"type": "object", "required": ["type", "data"], "properties": constants},
                ]
            },
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": AMQP_BINDING_VERSION}},
            "examples": [
                {"name": event_type, "summary": f"A {event_type} event", "payload": example_event(event_type)}
            ],
        }

    channels: dict[str, Any] = {}
    for event_type in event_types:
        exchange, publisher = EVENT_TYPES[event_type].exchange, EVENT_TYPES[event_type].publisher
        channels[event_type] = {
            "address": event_type,
            "title": f"{exchange} / {event_type}",
            "description": (
                f"Routing key `{event_type}` on the `{exchange}` topic exchange. "
                f"Published by {publisher if publisher != ORDER_SYSTEM else 'the upstream order system'}; "
                f"consumed by {', '.join(subscribers[event_type]) or 'no platform service'}."
            ),
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
    for service in SERVICES:
        names = QueueNames(service, tuple(retry_delays))
        refs = {t: {"$ref": f"#/components/messages/{t}"} for t in event_types if t in consumed[service]}
        bound = [{"exchange": consumed[service][t], "routingKey": t} for t in refs]
        channels[names.main] = {
            "address": names.main,
            "title": f"{service} service queue",
            "description": (
                f"Quorum queue the {service} service consumes, bound to each routing key it "
                "handles. Replicas of the service compete on it. A failed message goes to "
                f"`{names.retry(1)}`..`{names.retry(len(retry_delays))}` and, when retries "
                f"are exhausted or it cannot be parsed, to `{names.dead}`."
            ),
            "messages": refs,
            "bindings": _queue_binding(
                names.main,
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": DELIVERY_LIMIT,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": names.dead,
                },
            ),
            "x-bindings": bound,
        }
        for attempt, delay in enumerate(retry_delays, start=1):
            channels[names.retry(attempt)] = {
                "address": names.retry(attempt),
                "title": f"{service} retry {attempt}",
                "description": (
                    f"Holds a message {delay} ms before retry {attempt} (default RETRY_DELAYS_MS); "
                    f"on expiry it flows back to `{names.main}`. Headers: `x-attempt`, `x-last-error`, "
                    "`x-original-routing-key`, `x-original-exchange`."
                ),
                "messages": refs,
                "bindings": _queue_binding(
                    names.retry(attempt),
                    {
                        "x-queue-type": "classic",
                        "x-message-ttl": delay,
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": names.main,
                    },
                ),
            }
        channels[names.dead] = {
            "address": names.dead,
            "title": f"{service} dead-letter queue",
            "description": (
                "Parked messages, kept until an operator replays them "
                f"(`python -m shared.deadletters replay --service {service}`). Headers: `x-error`, "
                "`x-attempts`, `x-failed-at`, `x-original-routing-key`, `x-original-exchange`. "
                "May also hold unparseable bodies."
            ),
            "messages": refs,
            "bindings": _queue_binding(names.dead, {"x-queue-type": "classic"}),
        }

    # Notifications' webhooks queue: bound at run time to the types some webhook endpoint subscribes to.
    webhooks = webhook_queue_name(QueueNames("notifications", tuple(retry_delays)).base)
    channels[webhooks] = {
        "address": webhooks,
        "title": "notifications webhooks queue",
        "description": (
            "Quorum queue of the notifications service's webhook deliveries (docs/subscribers.md, "
            '"Webhooks"). Bound only to the routing keys some registered webhook endpoint subscribes to '
            "(at registration, and reconciled with the stored endpoints at start-up and every "
            "WEBHOOKS_RECONCILE_S); no endpoint for a type, no binding. A message that keeps failing is "
            "dead-lettered by the broker to `notifications.dead`; a replay sends it back here."
        ),
        "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in event_types},
        "bindings": _queue_binding(
            webhooks,
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": "notifications.dead",
            },
        ),
    }

    send_binding = {
        "amqp": {"deliveryMode": 2, "mandatory": True, "timestamp": True, "bindingVersion": AMQP_BINDING_VERSION}
    }
    receive_binding = {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}}
    operations: dict[str, Any] = {}
    for event_type in event_types:
        publisher = EVENT_TYPES[event_type].publisher
        operations[f"{publisher}.send.{event_type}"] = {
            "action": "send",
            "title": f"{publisher} publishes {event_type}",
            "summary": (
                "Published from the service's outbox with publisher confirms, persistent, mandatory."
                if publisher != ORDER_SYSTEM
                else "Published by the upstream order system."
            ),
            "channel": {"$ref": f"#/channels/{event_type}"},
            "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
            "tags": [{"name": publisher}],
            "bindings": send_binding,
        }
    for service in SERVICES:
        queue = f"{service}.inbox"
        for event_type in event_types:
            if event_type not in consumed[service]:
                continue
            operations[f"{service}.receive.{event_type}"] = {
                "action": "receive",
                "title": f"{service} consumes {event_type}",
                "summary": "Acked after the effect is durable; deduplicated by event id.",
                "channel": {"$ref": f"#/channels/{queue}"},
                "messages": [{"$ref": f"#/channels/{queue}/messages/{event_type}"}],
                "tags": [{"name": service}],
                "bindings": receive_binding,
            }

    return {
        "asyncapi": "3.0.0",
        "id": "urn:returns-platform:events",
        "info": {
            "title": "Returns platform events",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "Every event of the returns platform and every queue its services consume. One durable "
                f"topic exchange, `{EXCHANGE}`; routing key = event type; the body is a CloudEvents 1.0 "
                "JSON document whose `data` is the aggregate's full current state. Upstream orders arrive "
                f"on `{ORDERS_EXCHANGE}`. Delivery is at least once: dedupe on `id`, order by `sequence`. "
                "Generated by `scripts/gen-contracts` from shared/events.py and the services' handlers; "
                "see docs/subscribers.md."
            ),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
            "tags": [{"name": s} for s in (*SERVICES, ORDER_SYSTEM)],
        },
        "servers": {
            "compose": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": (
                    "RabbitMQ of deploy/compose.yaml (per-service users, see deploy/rabbitmq/definitions.json)."
                ),
                "security": [{"$ref": "#/components/securitySchemes/userPassword"}],
            },
            "kubernetes": {
                "host": "rabbitmq.returns-platform.svc:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The RabbitMQ cluster of deploy/kubernetes/overlays/production.",
                "security": [{"$ref": "#/components/securitySchemes/userPassword"}],
            },
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _schemas(),
            "messages": messages,
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "One RabbitMQ user per service, limited to its own queues and the exchanges.",
                }
            },
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared sub-document out again instead of as a YAML anchor/alias: easier to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(document: dict[str, Any]) -> str:
    header = "# Generated by scripts/gen-contracts (tools/contracts.py) from the code. Do not edit.\n"
    return header + yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=110)


# ---- OpenAPI --------------------------------------------------------------------------------


def openapi_document(service: str) -> dict[str, Any]:
    app_module = importlib.import_module(f"services.{service}.app")
    with clean_environment(settings_class(service)):
        app = app_module.create_app(contract_settings(service))
        document = app.openapi()
    return json.loads(json.dumps(document))  # plain JSON types, as committed


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def openapi_services() -> tuple[list[str], dict[str, str]]:
    """Services whose app imports (and builds), and why the others don't."""
    ok, missing = [], {}
    for service in SERVICES:
        try:
            importlib.import_module(f"services.{service}.app")
            ok.append(service)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal: services appear over time
            missing[service] = f"{type(exc).__name__}: {exc}"
    return ok, missing


# ---- command line ---------------------------------------------------------------------------


def generated(problems: dict[str, str] | None = None) -> dict[Path, str]:
    """Every contract document: path -> text. A service whose OpenAPI can't be built is left out
    (and named in `problems`)."""
    with clean_environment(*(settings_class(s) for s in SERVICES)):
        out = {ASYNCAPI_PATH: render_yaml(asyncapi_document()), CONFIGURATION_PATH: configuration_document()}
    out[DESIGN_PATH] = design_document()
    services, missing = openapi_services()
    for service in services:
        try:
            out[OPENAPI_DIR / f"{service}.json"] = render_json(openapi_document(service))
        except Exception as exc:  # noqa: BLE001 - reported; the other documents are still written
            missing[service] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if problems is not None:
        problems.update(missing)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gen-contracts", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed documents, write nothing")
    args = parser.parse_args(argv)
    problems: dict[str, str] = {}
    documents = generated(problems)
    for service, reason in problems.items():
        print(f"warning: {service}: no OpenAPI document ({reason})", file=sys.stderr)
    stale = []
    for path, text in documents.items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(path)
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(path.relative_to(ROOT)), "generated", lineterm="", n=1
            )
            print("\n".join(list(diff)[:40]), file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(
            f"stale: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; run scripts/gen-contracts", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
