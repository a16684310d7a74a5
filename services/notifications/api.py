"""HTTP API: the notification log (agents see all, buyers and sellers their own), resend, preview."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError

from services.notifications.rendering import plan
from services.notifications.schemas import (
    NotificationFilter,
    NotificationStatus,
    NotificationView,
    Preview,
    PreviewEmail,
    RecipientRole,
)
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.events import CloudEvent, UnknownEventType
from shared.http import Conflict, NotFound, Unprocessable, validation_errors
from shared.idempotency import Idempotent
from shared.pagination import Cursor, Limit, Page, make_page

audit_log = logging.getLogger("audit")

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
NotificationId = Annotated[str, Path(min_length=1, max_length=64)]
Agent = Annotated[Principal, Depends(require_roles(Role.AGENT))]
Operator = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.SERVICE))]


def visible_to(principal: Principal, asked: NotificationFilter) -> NotificationFilter | None:
    """What the caller asked for, narrowed to what they may see: all for agents and services, else
    only their own. None when they asked for someone else's."""
    actor = principal.actor
    if actor.role in (Role.AGENT, Role.SERVICE):
        return asked
    if asked.recipient_role not in (None, actor.role) or asked.recipient_id not in (None, actor.id):
        return None
    return replace(asked, recipient_role=RecipientRole(actor.role), recipient_id=actor.id)


def _may_see(principal: Principal, doc: dict[str, Any]) -> bool:
    actor = principal.actor
    return actor.role in (Role.AGENT, Role.SERVICE) or (doc.get("recipient_role"), doc.get("recipient_id")) == (
        actor.role,
        actor.id,
    )


@router.get("", response_model=Page[NotificationView], summary="List notifications, newest first")
async def list_notifications(
    request: Request,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 50,
    return_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    recipient_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    recipient_role: RecipientRole | None = None,
    status: NotificationStatus | None = None,
) -> Page[NotificationView]:
    asked = NotificationFilter(
        return_id=return_id, recipient_role=recipient_role, recipient_id=recipient_id, status=status
    )
    wanted = visible_to(principal, asked)
    if wanted is None:
        return Page[NotificationView](items=[])
    docs = await request.app.state.notifications.page(wanted, cursor, limit)
    return make_page(docs, limit, NotificationView.of)


@router.get("/{notification_id}", response_model=NotificationView, summary="One notification")
async def get_notification(
    request: Request, principal: CurrentPrincipal, notification_id: NotificationId
) -> NotificationView:
    doc = await request.app.state.notifications.get(notification_id)
    if doc is None or not _may_see(principal, doc):
        raise NotFound(f"Notification {notification_id} does not exist.")
    return NotificationView.of(doc)


@router.post(
    "/{notification_id}/resend",
    response_model=NotificationView,
    status_code=202,
    summary="Send a sent or failed email again (agents)",
    responses={409: {"description": "The email is still pending"}},
)
async def resend_notification(
    request: Request, agent: Agent, idempotent: Idempotent, notification_id: NotificationId
) -> Any:
    state = request.app.state

    async def resend() -> NotificationView:
        doc = await state.notifications.resend(notification_id, state.clock.now(), agent.actor.id)
        if doc is None:
            if await state.notifications.get(notification_id) is None:
                raise NotFound(f"Notification {notification_id} does not exist.")
            raise Conflict("This email is still pending; it will be sent without a resend.")
        state.dispatcher.wake([notification_id])
        audit_log.info(
            "notification resend",
            extra={
                "audit": True,
                "principal": agent.ref,
                "notification_id": notification_id,
                "generation": doc["generation"],
            },
        )
        return NotificationView.of(doc)

    return await idempotent.run(resend, status_code=202)


@router.post("/preview", response_model=Preview, summary="Render the emails an event would send (nothing is sent)")
async def preview_notification(_: Operator, event: CloudEvent) -> Preview:
    try:
        planned = plan(event)
    except UnknownEventType:
        raise Unprocessable(
            f"Unknown event type {event.type!r}.",
            errors=[{"field": "type", "location": "body", "reason": "unknown event type"}],
        ) from None
    except ValidationError as exc:
        errors = validation_errors([{**e, "loc": ("body", "data", *e["loc"])} for e in exc.errors()])
        raise Unprocessable("The event's `data` does not match its type.", errors=errors) from None
    return Preview(
        event_type=event.type,
        emails=[
            PreviewEmail(
                recipient_role=p.recipient_role,
                recipient_id=p.recipient.id,
                template=p.template,
                locale=p.email.locale,
                subject=p.email.subject,
                text=p.email.text,
                html=p.email.html,
            )
            for p in planned
        ],
    )
