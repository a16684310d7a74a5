"""HTTP surface: seller metrics and order defect rate, buyer standing, marketplace overview, rebuild of
buyer flags."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from services.metrics.figures import Period
from services.metrics.reports import Reports
from services.metrics.schemas import BuyerMetrics, OrderDefects, Overview, RebuildResult, SellerMetrics
from shared.auth import Principal, require_roles
from shared.http import NotFound, Unprocessable
from shared.moments import OUT_OF_RANGE, in_range

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

PartyId = Annotated[str, Path(min_length=1, max_length=128)]
From = Annotated[
    datetime | None,
    Query(
        alias="from",
        description="Inclusive start, ISO 8601 with offset. Default: `to` minus the default period (30 days).",
    ),
]
To = Annotated[datetime | None, Query(alias="to", description="Exclusive end, ISO 8601 with offset. Default: now.")]


async def reports(request: Request) -> Reports:
    return request.app.state.reports


ReportsDep = Annotated[Reports, Depends(reports)]


def _invalid(field: str, reason: str) -> Unprocessable:
    return Unprocessable(f"`{field}`: {reason}", errors=[{"field": field, "location": "query", "reason": reason}])


def period_of(start: datetime | None, end: datetime | None, reports_: Reports) -> Period:
    settings = reports_.settings
    for name, value in (("from", start), ("to", end)):
        if value is None:
            continue
        if value.utcoffset() is None:
            raise _invalid(name, "must carry a UTC offset, e.g. 2025-03-01T00:00:00Z")
        if in_range(value) is None:
            raise _invalid(name, OUT_OF_RANGE)
    end = end or reports_.clock.now()
    start = start or end - timedelta(days=settings.default_period_days)
    if start >= end:
        raise _invalid("from", "must be before `to`")
    if end - start > timedelta(days=settings.max_period_days):
        raise _invalid("from", f"the period may cover at most {settings.max_period_days} days")
    return Period(start, end)


@router.get("/sellers/{seller_id}", response_model=SellerMetrics, summary="A seller's performance for a period")
async def get_seller_metrics(
    seller_id: PartyId,
    reports_: ReportsDep,
    principal: Annotated[Principal, Depends(require_roles("seller", "agent", "service"))],
    start: From = None,
    end: To = None,
) -> SellerMetrics:
    if not principal.may_access(seller_id=seller_id):
        raise NotFound("No such seller.")  # someone else's figures: as if they did not exist
    return await reports_.seller(seller_id, period_of(start, end, reports_))


@router.get(
    "/sellers/{seller_id}/order-defects",
    response_model=OrderDefects,
    summary="A seller's order defect rate and rating over the last 60 days (`ODR_WINDOW_DAYS`)",
)
async def get_order_defects(
    seller_id: PartyId,
    reports_: ReportsDep,
    principal: Annotated[Principal, Depends(require_roles("seller", "agent", "service"))],
) -> OrderDefects:
    if not principal.may_access(seller_id=seller_id):
        raise NotFound("No such seller.")
    return await reports_.order_defects(seller_id)


@router.get(
    "/buyers/{buyer_id}",
    response_model=BuyerMetrics,
    summary="A buyer's returns and return rate over the abuse window, and their flag",
)
async def get_buyer_metrics(
    buyer_id: PartyId,
    reports_: ReportsDep,
    principal: Annotated[Principal, Depends(require_roles("buyer", "agent", "service"))],
) -> BuyerMetrics:
    if not principal.may_access(buyer_id=buyer_id):
        raise NotFound("No such buyer.")
    return await reports_.buyer(buyer_id)


@router.get("/overview", response_model=Overview, summary="Marketplace-wide totals for a period")
async def get_metrics_overview(
    reports_: ReportsDep,
    _: Annotated[Principal, Depends(require_roles("agent", "service"))],
    start: From = None,
    end: To = None,
) -> Overview:
    return await reports_.overview(period_of(start, end, reports_))


@router.post(
    "/rebuild",
    response_model=RebuildResult,
    summary="Re-assess every buyer's flag from stored facts (events for changed flags only)",
)
async def rebuild_metrics(
    reports_: ReportsDep, _: Annotated[Principal, Depends(require_roles("agent"))]
) -> RebuildResult:
    return await reports_.flags.rebuild()
