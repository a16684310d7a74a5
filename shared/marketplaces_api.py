"""`GET /v1/marketplaces` and `GET /v1/marketplaces/{code}`: the rule sets this service applies.

Every service serves them (shared/service.py), so an operator can see that each one read the same
marketplaces file. Any authenticated caller may read them: they are the published rules.
"""

from __future__ import annotations

from fastapi import APIRouter

from shared import marketplaces
from shared.auth import CurrentPrincipal
from shared.http import NotFound
from shared.marketplace_models import Marketplace


class MarketplaceNotFound(NotFound):
    title, slug = "Marketplace not found", "marketplace-not-found"


def marketplaces_router() -> APIRouter:
    router = APIRouter(prefix="/v1/marketplaces", tags=["marketplaces"])

    @router.get("", response_model=list[Marketplace], summary="Every marketplace this deployment serves")
    async def list_marketplaces(principal: CurrentPrincipal) -> list[Marketplace]:
        return list(marketplaces.current().values())

    @router.get("/{code}", response_model=Marketplace, summary="One marketplace's rule set")
    async def get_marketplace(code: str, principal: CurrentPrincipal) -> Marketplace:
        profile = marketplaces.current().get(code)
        if profile is None:
            raise MarketplaceNotFound(f"This deployment serves no marketplace {code!r}.")
        return profile

    return router
