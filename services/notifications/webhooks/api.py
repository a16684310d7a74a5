"""HTTP API `/v1/webhooks`: register endpoints (agents, services), rotate secrets, enable, deliveries, replay."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Request, Response

from services.notifications.webhooks import signing
from services.notifications.webhooks.models import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointPatch,
    WebhookEndpointStatus,
    WebhookReplayed,
    WebhookReplayRequest,
    WebhookSecretRotated,
)
from services.notifications.webhooks.store import NEVER, delivery_id
from services.notifications.webhooks.urls import BadUrl, check_url
from shared.auth import Principal, Role, require_roles
from shared.http import NotFound, Unprocessable
from shared.http.created import LOCATION_RESPONSE, create_once
from shared.http.domain_errors import ConcurrentChange
from shared.idempotency import Idempotent
from shared.pagination import Cursor, Limit, Page, make_page

audit_log = logging.getLogger("audit")
ROTATE_TRIES = 5  # rotations racing this one; each conflict means another rotation succeeded

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
EndpointId = Annotated[str, Path(min_length=1, max_length=64)]
Operator = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.SERVICE))]
Agent = Annotated[Principal, Depends(require_roles(Role.AGENT))]


async def _checked_url(request: Request, url: str) -> None:
    settings = request.app.state.settings
    try:
        await check_url(url, allow_http=settings.webhooks_allow_http, allow_private=settings.webhooks_allow_private)
    except BadUrl as exc:
        raise Unprocessable(
            f"The endpoint URL is refused: {exc}.", errors=[{"field": "url", "location": "body", "reason": str(exc)}]
        ) from None


async def _endpoint(request: Request, endpoint_id: str) -> dict[str, Any]:
    doc = await request.app.state.webhooks.endpoint(endpoint_id)
    if doc is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return doc


def _audit(action: str, principal: Principal, endpoint_id: str, **fields: Any) -> None:
    audit_log.info(
        f"webhook {action}", extra={"audit": True, "principal": principal.ref, "endpoint_id": endpoint_id, **fields}
    )


@router.post(
    "",
    response_model=WebhookEndpointCreated,
    status_code=201,
    summary="Register a webhook endpoint",
    responses=LOCATION_RESPONSE,
)
async def create_webhook(
    request: Request, principal: Operator, idempotent: Idempotent, body: WebhookEndpointIn
) -> Response:
    # Under the Idempotency-Key: a retried registration answers the first endpoint (and its secret)
    # instead of creating a second endpoint that would receive every event twice.
    return await create_once(idempotent, lambda: _register(request, principal, body), _location)


def _location(created: WebhookEndpointCreated) -> str:
    return f"/v1/webhooks/{created.id}"


async def _register(request: Request, principal: Principal, body: WebhookEndpointIn) -> WebhookEndpointCreated:
    await _checked_url(request, body.url)
    state = request.app.state
    now, secret = state.clock.now(), signing.new_secret()
    doc = {
        "_id": f"whe_{uuid.uuid4().hex}",
        "url": body.url,
        "event_types": body.event_types,
        "description": body.description,
        "status": str(WebhookEndpointStatus.ENABLED),
        "secrets": [{"secret": secret, "created_at": now, "expires_at": None}],
        "consecutive_failures": 0,
        "created_by": principal.ref,
        "created_at": now,
        "updated_at": now,
    }
    await state.webhooks.create_endpoint(doc)
    # After the write (see bindings.py) and before answering: no event of these types is missed.
    await state.webhook_queue.bind(body.event_types)
    # The host only: a URL's path and query may carry the receiver's token.
    _audit("registered", principal, doc["_id"], host=urlsplit(body.url).hostname, event_types=body.event_types)
    return WebhookEndpointCreated(**WebhookEndpoint.of(doc).model_dump(), secret=secret)


@router.get("", response_model=Page[WebhookEndpoint], summary="List webhook endpoints, newest first")
async def list_webhooks(
    request: Request, _: Operator, cursor: Cursor = None, limit: Limit = 50
) -> Page[WebhookEndpoint]:
    return make_page(await request.app.state.webhooks.page_endpoints(cursor, limit), limit, WebhookEndpoint.of)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint, summary="One webhook endpoint")
async def get_webhook(request: Request, _: Operator, endpoint_id: EndpointId) -> WebhookEndpoint:
    return WebhookEndpoint.of(await _endpoint(request, endpoint_id))


@router.patch(
    "/{endpoint_id}", response_model=WebhookEndpoint, summary="Change a webhook endpoint's URL, types or description"
)
async def update_webhook(
    request: Request, principal: Operator, endpoint_id: EndpointId, body: WebhookEndpointPatch
) -> WebhookEndpoint:
    before = await _endpoint(request, endpoint_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:
        await _checked_url(request, changes["url"])
    state = request.app.state
    doc = await state.webhooks.update_endpoint(endpoint_id, {"$set": {**changes, "updated_at": state.clock.now()}})
    if doc is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    # Bound after the write, as at registration: a replica's concurrent release that read the store
    # before it binds back what it finds wanted afterwards, and this bind follows anything earlier.
    await state.webhook_queue.bind(doc["event_types"])
    await state.webhook_queue.release(set(before["event_types"]) - set(doc["event_types"]))
    _audit("changed", principal, endpoint_id, changes=sorted(changes))
    return WebhookEndpoint.of(doc)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint and its delivery log")
async def delete_webhook(request: Request, principal: Operator, endpoint_id: EndpointId) -> Response:
    before = await _endpoint(request, endpoint_id)
    if not await request.app.state.webhooks.delete_endpoint(endpoint_id):
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    await request.app.state.webhook_queue.release(before["event_types"])
    _audit("deleted", principal, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/secret/rotate",
    response_model=WebhookSecretRotated,
    summary="Rotate the signing secret",
    responses={409: {"description": "Other rotations of this endpoint kept winning the race; retry."}},
)
async def rotate_webhook_secret(request: Request, principal: Operator, endpoint_id: EndpointId) -> WebhookSecretRotated:
    state = request.app.state
    # A compare-and-set on the secrets read, retried on conflict: a rotation racing another (two replicas)
    # re-reads and keeps the other's new secret as a previous one, so every secret handed out verifies.
    for _ in range(ROTATE_TRIES):
        doc = await _endpoint(request, endpoint_id)  # 404 once the endpoint is gone
        now, secret = state.clock.now(), signing.new_secret()
        until = now + timedelta(seconds=state.settings.webhooks_secret_overlap_s)
        kept = []  # the old ones sign until `until` at the latest; expired ones are dropped
        for old in doc.get("secrets", []):
            expires = old.get("expires_at")
            if expires is None or expires > now:
                kept.append({**old, "expires_at": until if expires is None else min(expires, until)})
        secrets = [{"secret": secret, "created_at": now, "expires_at": None}, *kept]
        if await state.webhooks.replace_secrets(endpoint_id, doc.get("secrets_rev"), secrets, now) is not None:
            _audit("secret rotated", principal, endpoint_id)
            return WebhookSecretRotated(secret=secret, previous_valid_until=until if kept else None)
    raise ConcurrentChange(f"Webhook endpoint {endpoint_id}'s secrets kept changing; retry the rotation.")


@router.post("/{endpoint_id}/enable", response_model=WebhookEndpoint, summary="Enable a disabled endpoint (agents)")
async def enable_webhook(request: Request, agent: Agent, endpoint_id: EndpointId) -> WebhookEndpoint:
    await _endpoint(request, endpoint_id)
    state = request.app.state
    doc = await state.webhooks.update_endpoint(
        endpoint_id,
        {
            "$set": {
                "status": str(WebhookEndpointStatus.ENABLED),
                "consecutive_failures": 0,
                "updated_at": state.clock.now(),
            },
            "$unset": {"failing_since": "", "disabled_at": "", "disabled_reason": ""},
        },
    )
    if doc is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    _audit("enabled", agent, endpoint_id)
    return WebhookEndpoint.of(doc)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[WebhookDelivery],
    summary="Deliveries and their attempts, newest first",
)
async def list_webhook_deliveries(
    request: Request, _: Operator, endpoint_id: EndpointId, cursor: Cursor = None, limit: Limit = 50
) -> Page[WebhookDelivery]:
    await _endpoint(request, endpoint_id)
    docs = await request.app.state.webhooks.page_deliveries(endpoint_id, cursor, limit)
    return make_page(docs, limit, WebhookDelivery.of)


@router.post("/{endpoint_id}/replay", response_model=WebhookReplayed, status_code=202, summary="Send events again")
async def replay_webhook(
    request: Request, principal: Operator, endpoint_id: EndpointId, body: WebhookReplayRequest
) -> WebhookReplayed:
    endpoint = await _endpoint(request, endpoint_id)
    state = request.app.state
    store, now = state.webhooks, state.clock.now()
    if body.event_id is not None:
        own = delivery_id(endpoint_id, body.event_id)
        queued = await store.requeue_one(own, now)
        if not queued:  # not recorded for this endpoint: another endpoint's copy of the event, if any
            other = await store.any_delivery_of(body.event_id)
            if other is None or other["event_type"] not in endpoint["event_types"]:
                raise NotFound(f"Event {body.event_id} is not known to the webhooks of this service.")
            fresh = {
                **other,
                "_id": own,
                "endpoint_id": endpoint_id,
                "attempts": [],
                "status": "pending",
                "tries": 0,
                "first_attempt_at": None,
                "next_attempt_at": now,
                "created_at": now,
                "claim": None,
                "claimed_until": NEVER,
                "updated_at": now,
            }
            queued = len(await store.record([fresh])) or await store.requeue_one(own, now)
        state.webhook_worker.wake([own])
    elif body.since is not None and body.until is not None:  # the model allows nothing else
        queued = await store.requeue_range(endpoint_id, body.since, body.until, now)
        state.webhook_worker.wake(scan=True)
    else:
        raise Unprocessable(
            "Give `event_id`, or `since` and `until`.",
            errors=[{"field": "event_id", "location": "body", "reason": "give it, or both since and until"}],
        )
    _audit(
        "replay",
        principal,
        endpoint_id,
        event_id=body.event_id,
        queued=queued,
        status=str(WebhookDeliveryStatus.PENDING),
    )
    return WebhookReplayed(queued=queued)
