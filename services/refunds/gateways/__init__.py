"""Payment gateways behind one small interface, chosen per order by `payment.provider`."""

from services.refunds.gateways.base import GatewayDeclined, GatewayRefund, GatewayUnavailable, PaymentGateway

__all__ = ["GatewayDeclined", "GatewayRefund", "GatewayUnavailable", "PaymentGateway"]
