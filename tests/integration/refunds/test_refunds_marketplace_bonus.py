"""The store-credit bonus is the order's marketplace's (`resolutions.store_credit_bonus_percent`),
through the real broker and store: with a marketplaces file where DE gives 5 % and US none, a DE
return refunded to store credit is credited its amount plus 5 %, a US one its amount alone; and
STORE_CREDIT_BONUS_PERCENT, when set, gives its percent in every marketplace."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from services.refunds.app import create_app
from services.refunds.domain import return_refund_id
from shared import marketplaces
from shared.models import RefundDestination
from tests.integration.refunds.conftest import RefundsService
from tests.unit.refunds.builders import make_return, money

pytestmark = pytest.mark.integration


@pytest.fixture
def de_bonus(  # before `service`: the app reads its settings when it starts
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refunds_settings
) -> None:
    path = tmp_path / "marketplaces.yaml"
    path.write_text("extends: shipped\nmarketplaces:\n  DE:\n    resolutions:\n      store_credit_bonus_percent: 5\n")
    # The app installs its file for the whole process: put the previous registry back afterwards.
    monkeypatch.setattr(marketplaces, "_current", marketplaces.current())
    refunds_settings.marketplaces_file = str(path)


async def credited(service, marketplace: str, currency: str) -> dict:
    """A return of one unit (29.99) received in auto mode, refunded to store credit: its issued refund."""
    order = await service.delivered(currency=currency, marketplace=marketplace, lines=[("L1", 1, 2999)], shipping=0)
    ret = make_return(order, ("L1", 1, "DEFECTIVE")).model_copy(update={"refund_to": RefundDestination.STORE_CREDIT})
    await service.send("return.received", ret)

    async def issued() -> dict | None:
        doc = await service.refund_doc(return_refund_id(ret.return_id))
        return doc if doc is not None and doc["status"] == "issued" else None

    await service.wait_until(issued, message=f"{marketplace} refund not issued")
    return await issued()


async def test_the_bonus_is_the_orders_marketplaces(de_bonus, service):
    de = await credited(service, "DE", "EUR")
    us = await credited(service, "US", "USD")
    assert (de["gateway"], de["amount"], de["store_credit_bonus"]) == (
        "store_credit",
        money(2999, "EUR"),
        money(150, "EUR"),  # 5 % of 29.99 = 1.4995, half-up
    )
    assert (us["gateway"], us["amount"], us["store_credit_bonus"]) == ("store_credit", money(2999), money(0))


async def test_the_setting_overrides_every_marketplace(de_bonus, harness, refunds_settings):
    refunds_settings.store_credit_bonus_percent = Decimal(10)
    app = create_app(refunds_settings, harness.clock)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        service = RefundsService(**vars(harness), app=app)
        de = await credited(service, "DE", "EUR")
        us = await credited(service, "US", "USD")
    assert (de["store_credit_bonus"], us["store_credit_bonus"]) == (money(300, "EUR"), money(300))
