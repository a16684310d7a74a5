"""Webhooks (SPEC §14): endpoints registered over HTTP receive the events they subscribe to, signed.

models (API shapes), urls (what an endpoint URL may be), signing (Standard Webhooks secrets and
signatures), schedule (retry delays), store (endpoints and deliveries), bindings (the
`<prefix>notifications.webhooks` queue, bound only to subscribed types), delivery (the job that
POSTs), api (`/v1/webhooks`). See docs/subscribers.md, "Webhooks".
"""
