"""Webhooks without servers: Standard Webhooks signatures, URL rules, the retry schedule."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifications.webhooks import signing
from services.notifications.webhooks.delivery import signing_secrets
from services.notifications.webhooks.models import WebhookReplayRequest
from services.notifications.webhooks.schedule import next_attempt
from services.notifications.webhooks.urls import BadUrl, check_shape, check_url

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEFAULT_DELAYS = [5, 300, 1800, 7200, 18000, 36000]


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries' tests).
    got = signing.signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_both_signatures_verify_with_the_reference_library() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    assert old.startswith("whsec_") and len(signing.secret_key(old)) == signing.SECRET_BYTES
    body, stamp = b'{"id":"ev_1"}', int(datetime.now(UTC).timestamp())
    headers = signing.headers([new, old], "ev_1", stamp, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)  # raises on a bad signature
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_expired_secrets_no_longer_sign() -> None:
    endpoint = {
        "secrets": [
            {"secret": "whsec_new", "expires_at": None},
            {"secret": "whsec_old", "expires_at": T0 + timedelta(hours=24)},
        ]
    }
    assert signing_secrets(endpoint, T0) == ["whsec_new", "whsec_old"]
    assert signing_secrets(endpoint, T0 + timedelta(hours=24)) == ["whsec_new"]


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://example.com/hook", False),
        ("ftp://example.com/hook", True),
        ("https:///nohost", False),
        ("https://user:pw@example.com/hook", False),
        ("https://example.com/hook#frag", False),
        ("https://example.com:99999/hook", False),
        ("not a url", False),
    ],
)
def test_bad_url_forms_are_refused(url: str, allow_http: bool) -> None:
    with pytest.raises(BadUrl):
        check_shape(url, allow_http=allow_http)


def test_http_is_accepted_only_when_allowed() -> None:
    assert check_shape("http://example.com/hook", allow_http=True) == "example.com"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://240.0.0.1/hook",
        "https://localhost/hook",
        "https://100.100.100.200/latest/meta-data",  # shared address space (some clouds' metadata)
        "https://100.64.0.1/hook",
        "https://192.0.2.10/hook",  # documentation range
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(BadUrl, match="not a public one") as refused:
        asyncio.run(check_url(url, allow_http=False, allow_private=False))
    assert not any(part in str(refused.value) for part in ("100.", "10.", "127.", "::", "localhost", "169.254"))
    asyncio.run(check_url(url, allow_http=False, allow_private=True))


def test_public_addresses_are_accepted() -> None:
    asyncio.run(check_url("https://93.184.215.14/hook", allow_http=False, allow_private=False))


@pytest.mark.parametrize("url", ["https://" + "a" * 64 + ".example.com/hook", "https://..example.com/hook"])
def test_hosts_idna_cannot_encode_are_refused_not_errors(url: str) -> None:
    """A label that is empty or over 63 characters is a 422 naming `url`, not a 500."""
    with pytest.raises(BadUrl, match="does not resolve"):
        asyncio.run(check_url(url, allow_http=False, allow_private=False))


def test_retry_schedule_grows_and_ends_72_hours_after_the_first_attempt() -> None:
    at, attempts, times = T0, 1, [T0]
    while (due := next_attempt(T0, attempts, at, DEFAULT_DELAYS, 72 * 3600)) is not None:
        times.append(due)
        at, attempts = due, attempts + 1
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[:6] == DEFAULT_DELAYS and all(g == 36000 for g in gaps[6:])
    assert times[-1] <= T0 + timedelta(hours=72) < times[-1] + timedelta(seconds=36000)
    assert len(times) == 12


def test_no_retries_when_the_window_is_zero() -> None:
    assert next_attempt(T0, 1, T0, DEFAULT_DELAYS, 0) is None


@pytest.mark.parametrize(
    "body",
    [{}, {"event_id": "e", "since": T0.isoformat(), "until": T0.isoformat()}, {"since": T0.isoformat()}],
)
def test_replay_takes_an_event_id_or_a_time_range(body: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"give|needs|before"):
        WebhookReplayRequest.model_validate(body)
