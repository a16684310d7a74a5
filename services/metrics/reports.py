"""Reports: load the facts a question needs and compute the answer (figures.py, abuse.py, defects.py)."""

from __future__ import annotations

from services.metrics import defects, figures, telemetry
from services.metrics.abuse import assess_window
from services.metrics.figures import Period
from services.metrics.flags import BuyerFlags
from services.metrics.schemas import BuyerFlagState, BuyerMetrics, OrderDefects, Overview, SellerMetrics
from services.metrics.settings import Settings
from services.metrics.store import MetricsStore
from shared.clock import Clock
from shared.models import same_named


class Reports:
    def __init__(self, store: MetricsStore, flags: BuyerFlags, settings: Settings, clock: Clock) -> None:
        self.store, self.flags, self.settings, self.clock = store, flags, settings, clock
        self.claims_counted = settings.claims_counted()  # the marketplaces are installed at start-up

    async def seller(self, seller_id: str, period: Period) -> SellerMetrics:
        with telemetry.report_seconds.labels("seller").time():
            returns = await self.store.returns_touching(period, seller_id)
            requested = [r.return_id for r in figures.requested_in(returns, period)]
            refunds = await self.store.refunds_for(period, requested, seller_id)
            deliveries = await self.store.deliveries_in(period, seller_id)
            credit = await self.store.store_credit.in_period(period, seller_id)
            return figures.seller_metrics(
                seller_id,
                returns,
                refunds,
                deliveries,
                period,
                target=self.settings.dissatisfaction_target,
                reasons=self.settings.top_reasons,
                credit=credit,
            )

    async def overview(self, period: Period) -> Overview:
        with telemetry.report_seconds.labels("overview").time():
            returns = await self.store.returns_touching(period)
            requested = [r.return_id for r in figures.requested_in(returns, period)]
            refunds = await self.store.refunds_for(period, requested)
            report = figures.overview(
                returns,
                refunds,
                period,
                target=self.settings.dissatisfaction_target,
                reasons=self.settings.top_reasons,
                flagged_buyers=await self.store.flagged_buyers(),
                credit=await self.store.store_credit.in_period(period),
            )
            emails = await self.store.email_outcomes(period)
            claims, chargebacks, feedback, expired = await self.store.disputes.touching(period)
            disputes = defects.dispute_totals(
                period, claims=claims, chargebacks=chargebacks, feedback=feedback, expired=expired
            )
            return report.model_copy(
                update={"emails_sent": emails["sent"], "emails_failed": emails["failed"], "disputes": disputes}
            )

    async def order_defects(self, seller_id: str) -> OrderDefects:
        """Over the orders the seller delivered in the last ODR_WINDOW_DAYS, up to now."""
        with telemetry.report_seconds.labels("order_defects").time():
            days = self.settings.odr_window_days
            window = defects.window_ending(self.clock.now(), days)
            deliveries = await self.store.deliveries_in(window, seller_id)
            orders = sorted({d.order_id for d in deliveries})
            claims, chargebacks, feedback = await self.store.disputes.of_orders(orders)
            return defects.order_defects(
                seller_id,
                window,
                deliveries=deliveries,
                claims=claims,
                chargebacks=chargebacks,
                feedback=feedback,
                refunds=await self.store.refunds_of_orders(orders),
                expired=await self.store.disputes.expired_of(seller_id, window),
                target=self.settings.odr_target,
                claims_counted=self.claims_counted,
                window_days=days,
            )

    async def buyer(self, buyer_id: str) -> BuyerMetrics:
        with telemetry.report_seconds.labels("buyer").time():
            now = self.clock.now()
            thresholds = self.flags.thresholds
            window, state = await self.store.buyer(buyer_id, now - thresholds.window)
            standing = assess_window(buyer_id, window, now, thresholds)
            flag = (
                BuyerFlagState(flagged=state.flagged, reason=state.reason, since=state.since, version=state.version)
                if state
                else BuyerFlagState(flagged=False, reason=standing.reason, since=None, version=0)
            )
            return BuyerMetrics(
                **same_named(standing, ("buyer_id", "returns", "orders", "returned_orders", "return_rate")),
                window_days=thresholds.window_days,
                flag=flag,
                assessed_at=now,
            )
