"""Store credit: a balance per (buyer, currency) that refunds are paid into and checkouts spend.

`entries` holds the pure rules, `store` the MongoDB chain of entries, `gateway` the refunds'
PaymentGateway that grants credit, `api` the HTTP routes (`/v1/store-credit/...`).
"""
