"""docs/asyncapi.yaml against the code (events, models, handlers, bus topology) and the AsyncAPI 3.0 schema."""

from __future__ import annotations

import copy
import functools
import json
import typing
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from services.notifications.webhooks.bindings import queue_name as webhook_queue_name
from shared.events import EVENT_TYPES, ORDER_SYSTEM, CloudEvent
from shared.queues import DELIVERY_LIMIT, QueueNames, queue_arguments
from shared.settings import CommonSettings
from tests.contract.support import (
    ROOT,
    SERVICES,
    differences,
    iter_refs,
    load_yaml,
    resolve_pointer,
    schema_errors,
    vendored_schema,
)
from tools import contracts

ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"


@functools.cache
def committed() -> dict[str, Any]:
    return load_yaml(ASYNCAPI)


@functools.cache
def generated() -> dict[str, Any]:
    with contracts.clean_environment(*(contracts.settings_class(s) for s in SERVICES)):
        return json.loads(json.dumps(contracts.asyncapi_document()))


def test_committed_document_matches_the_code():
    diffs = differences(generated(), committed())
    assert not diffs, "docs/asyncapi.yaml is stale; run scripts/gen-contracts:\n" + "\n".join(diffs)


def test_valid_asyncapi_3_document():
    errors = schema_errors(jsonschema.Draft7Validator, vendored_schema("asyncapi-3.0.0.json"), committed())
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("breakage", ["amqp binding", "operation action", "unknown top-level key"])
def test_schema_validation_catches_a_broken_document(breakage):
    """Guards the test above: the vendored schema, with its $id references, really checks things."""
    broken = copy.deepcopy(committed())
    if breakage == "amqp binding":
        broken["channels"]["return.created"]["bindings"]["amqp"]["is"] = "exchange"
    elif breakage == "operation action":
        next(iter(broken["operations"].values()))["action"] = "publish"
    else:
        broken["topics"] = {}
    assert schema_errors(jsonschema.Draft7Validator, vendored_schema("asyncapi-3.0.0.json"), broken)


def test_every_reference_resolves_and_operations_use_their_own_channel():
    document = committed()
    dangling = []
    for where, ref in iter_refs(document):
        try:
            resolve_pointer(document, ref)
        except (KeyError, IndexError, ValueError):
            dangling.append(f"{where} -> {ref}")
    assert not dangling, "\n".join(dangling)
    for name, operation in document["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (
                f"operation {name}: message {message['$ref']} is not a message of {channel_ref}"
            )


def test_every_event_type_has_a_channel_a_message_and_one_publisher():
    document = committed()
    routing_keys = {
        name for name, channel in document["channels"].items() if channel["bindings"]["amqp"]["is"] == "routingKey"
    }
    assert routing_keys == set(EVENT_TYPES), "channels vs shared.events.EVENT_TYPES"
    assert set(document["components"]["messages"]) == set(EVENT_TYPES)
    for event_type, registered in EVENT_TYPES.items():
        assert registered.name == event_type
        assert registered.publisher in (*SERVICES, ORDER_SYSTEM), f"{event_type}: unknown publisher"
        assert registered.title and registered.summary, f"{event_type}: describe it in the registry"
        senders = [
            op
            for op in document["operations"].values()
            if op["action"] == "send" and op["channel"]["$ref"] == f"#/channels/{event_type}"
        ]
        assert len(senders) == 1, f"{event_type}: {len(senders)} publishers"
        assert senders[0]["tags"] == [{"name": registered.publisher}]
        exchange = document["channels"][event_type]["bindings"]["amqp"]["exchange"]
        assert exchange == {
            "name": registered.exchange,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _model_tree(model: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    pending = [model]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        for info in current.model_fields.values():
            pending.extend(_models_in(info.annotation))
    return seen


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_data_schema_has_exactly_the_model_fields(event_type):
    """A field added to (or removed from) an event's data model in code, and not in the contract, fails."""
    document = committed()
    message = document["components"]["messages"][event_type]
    data_ref = message["payload"]["allOf"][1]["properties"]["data"]["$ref"]
    model = EVENT_TYPES[event_type].data
    assert data_ref == f"#/components/schemas/{model.__name__}"
    problems = []
    for current in _model_tree(model):
        schema = document["components"]["schemas"].get(current.__name__)
        if schema is None:
            problems.append(f"{current.__name__}: no schema in the contract")
            continue
        in_code = {info.serialization_alias or info.alias or name for name, info in current.model_fields.items()}
        in_contract = set(schema.get("properties", {}))
        for name in sorted(in_code - in_contract):
            problems.append(f"{current.__name__}.{name}: in the code, not in docs/asyncapi.yaml")
        for name in sorted(in_contract - in_code):
            problems.append(f"{current.__name__}.{name}: in docs/asyncapi.yaml, not in the code")
        required = {name for name, info in current.model_fields.items() if info.is_required()}
        if set(schema.get("required", [])) != required:
            problems.append(
                f"{current.__name__}: required {sorted(schema.get('required', []))} vs code {sorted(required)}"
            )
    envelope = document["components"]["schemas"]["CloudEvent"]["properties"]
    problems += [
        f"CloudEvent.{name}: in the code, not in the contract"
        for name in CloudEvent.model_fields
        if name not in envelope
    ]
    assert not problems, "run scripts/gen-contracts:\n" + "\n".join(problems)


@functools.cache
def _payload_validator(event_type: str) -> jsonschema.Draft202012Validator:
    document = committed()
    uri = "urn:returns-platform:asyncapi"
    registry = Registry().with_resource(uri, DRAFT202012.create_resource(document))
    return jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#/components/messages/{event_type}/payload"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_events_built_by_the_code_match_the_payload_schema(event_type):
    """The published example is what the code builds, it satisfies the contract's schema, and
    the models parse it back; an envelope with the wrong data is refused."""
    document = committed()
    example = document["components"]["messages"][event_type]["examples"][0]["payload"]
    built = contracts.example_event(event_type)
    assert example == built, "docs/asyncapi.yaml example is stale; run scripts/gen-contracts"
    validator = _payload_validator(event_type)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(built)]
    assert not errors, "\n".join(errors)
    event = CloudEvent.model_validate(built)
    assert isinstance(event.typed(), EVENT_TYPES[event_type].data)
    wrong = copy.deepcopy(built)
    wrong["data"] = {"unexpected": True}
    assert list(validator.iter_errors(wrong)), "a payload without the aggregate must not validate"


@pytest.mark.parametrize("service", SERVICES)
def test_consumers_in_the_contract_are_the_handlers_subscriptions(service):
    try:
        in_code = contracts.code_subscriptions(service)
    except (ImportError, LookupError) as exc:
        pytest.fail(f"services/{service}/handlers.py not readable yet: {exc}")
    document = committed()
    queue = f"{service}.inbox"
    in_contract = {
        op["messages"][0]["$ref"].rsplit("/", 1)[1]
        for op in document["operations"].values()
        if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{queue}"
    }
    assert in_contract == set(in_code), f"{service}: contract {sorted(in_contract)} vs handlers {sorted(in_code)}"
    bound = {(b["exchange"], b["routingKey"]) for b in document["channels"][queue]["x-bindings"]}
    assert bound == {(exchange, event_type) for event_type, exchange in in_code.items()}
    unknown = set(in_code) - set(EVENT_TYPES)
    assert not unknown, f"{service} subscribes to types not in shared.events.EVENT_TYPES: {unknown}"


@pytest.mark.parametrize("service", SERVICES)
def test_queue_channels_are_the_bus_topology(service):
    document = committed()
    names = QueueNames(service, tuple(CommonSettings.model_fields["retry_delays_ms"].default))
    for queue in names.all:
        binding = document["channels"][queue]["bindings"]["amqp"]
        assert binding["is"] == "queue" and binding["queue"]["name"] == queue and binding["queue"]["durable"]
    main = document["channels"][names.main]["bindings"]["amqp"]["x-arguments"]
    assert main == {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": names.dead,
    }


def test_the_webhooks_queue_is_a_channel_as_notifications_declares_it():
    names = QueueNames("notifications", tuple(CommonSettings.model_fields["retry_delays_ms"].default))
    queue = webhook_queue_name(names.base)
    binding = committed()["channels"][queue]["bindings"]["amqp"]
    assert binding["is"] == "queue" and binding["queue"]["name"] == queue and binding["queue"]["durable"]
    # What WebhookQueue.start() declares: dead letters go to the service's dead queue (and replay back here).
    assert binding["x-arguments"] == queue_arguments(
        "quorum", ("x-delivery-limit", DELIVERY_LIMIT), dead_letter_to=names.dead
    )
