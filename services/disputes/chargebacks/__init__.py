"""Card chargebacks: Stripe dispute webhooks in, evidence out to the gateway, won or lost (docs/product.md)."""
