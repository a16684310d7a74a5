"""The marketplaces file (shared/marketplaces.py): shipped profiles, `extends: shipped`, a new
marketplace, every kind of bad file (the error names the key), deployment-wide overrides, lookup."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shared import marketplaces
from shared.marketplaces import MarketplaceConfigError, Marketplaces, UnknownMarketplace
from shared.rules import PermanentError, RulesBroken
from tools.marketplaces_reference import EXAMPLE_FILE, FRANCE


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "marketplaces.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_profiles_load_with_their_rules():
    shipped = marketplaces.shipped()
    assert list(shipped) == ["CN", "DE", "GB", "JP", "US"]
    assert {code: p.currency for code, p in shipped.items()} == {
        "CN": "CNY",
        "DE": "EUR",
        "GB": "GBP",
        "JP": "JPY",
        "US": "USD",
    }
    assert {code: str(p.default_locale) for code, p in shipped.items()} == {
        "CN": "zh-CN",
        "DE": "de",
        "GB": "en",
        "JP": "ja",
        "US": "en",
    }
    us, de, gb, cn = shipped["US"].returns, shipped["DE"].returns, shipped["GB"].returns, shipped["CN"].returns
    assert (us.window_days, us.minimum_window_days, us.withdrawal_days) == (30, 30, 0)
    assert (de.window_days, de.minimum_window_days, de.withdrawal_days) == (14, 14, 14)
    assert gb.withdrawal_days == 14 and shipped["GB"].calendar_country == "GB-ENG" and shipped["GB"].country == "GB"
    assert (cn.window_for(seller_fault=False), cn.window_for(seller_fault=True)) == (7, 15)
    assert us.window_for(seller_fault=True) == 30, "no quality window: the same as the no-reason one"
    assert cn.return_shipping_insurance and not us.return_shipping_insurance
    assert "fresh_food" in cn.no_reason_excluded_categories and cn.max_restocking_fee_percent == 0
    assert shipped["CN"].resolutions.store_credit_allowed is False
    assert shipped["JP"].zone().key == "Asia/Tokyo"


def test_no_file_means_the_shipped_profiles():
    assert marketplaces.load(None) is marketplaces.shipped()
    assert dict(marketplaces.load(marketplaces.SHIPPED_FILE)) == dict(marketplaces.shipped())


def test_extends_shipped_changes_only_the_keys_it_names(tmp_path):
    path = write(
        tmp_path,
        "extends: shipped\nmarketplaces:\n  DE:\n"
        "    returns:\n      window_days: 30\n    claims:\n      window_days: 60\n",
    )
    loaded = marketplaces.load(path)
    shipped = marketplaces.shipped()
    assert list(loaded) == list(shipped)
    de, shipped_de = loaded["DE"], shipped["DE"]
    assert (de.returns.window_days, de.claims.window_days) == (30, 60)
    assert de.returns.model_copy(update={"window_days": 14}) == shipped_de.returns, "the other return rules kept"
    assert de.claims.response_hours == shipped_de.claims.response_hours
    assert (de.name, de.currency, de.time_zone) == (shipped_de.name, shipped_de.currency, shipped_de.time_zone)
    assert all(loaded[code] == shipped[code] for code in ("US", "GB", "JP", "CN"))


def test_an_operator_adds_a_complete_marketplace_as_the_configuration_doc_shows(tmp_path):
    loaded = marketplaces.load(write(tmp_path, EXAMPLE_FILE))
    assert list(loaded) == ["CN", "DE", "FR", "GB", "JP", "US"]
    assert loaded["DE"].returns.window_days == 30, "the documented override applies"
    fr = loaded["FR"]
    assert (fr.code, fr.currency, fr.country, fr.returns.withdrawal_days) == ("FR", "EUR", "FR", 14)
    assert fr.returns.max_restocking_fee_percent == Decimal(50)
    assert fr.claims == loaded["US"].claims, "blocks left out take the model's defaults"
    # Standing alone (no `extends`), the file is the whole list of marketplaces.
    alone = marketplaces.load(write(tmp_path, "marketplaces:\n" + FRANCE))
    assert list(alone) == ["FR"]


def test_a_new_marketplace_must_be_complete_even_when_extending(tmp_path):
    with pytest.raises(MarketplaceConfigError) as caught:
        marketplaces.load(write(tmp_path, "extends: shipped\nmarketplaces:\n  FR:\n    name: France\n"))
    message = str(caught.value)
    for key in ("marketplaces.FR.currency", "marketplaces.FR.time_zone", "marketplaces.FR.returns"):
        assert key in message, message


BAD_FILES = {
    "unknown key": (
        "extends: shipped\nmarketplaces:\n  DE:\n    returns:\n      windw_days: 10\n",
        "marketplaces.DE.returns.windw_days: Extra inputs are not permitted",
    ),
    "wrong type": (
        "extends: shipped\nmarketplaces:\n  US:\n    returns:\n      window_days: many\n",
        "marketplaces.US.returns.window_days:",
    ),
    "window below the statutory minimum": (
        "extends: shipped\nmarketplaces:\n  DE:\n    returns:\n      window_days: 10\n",
        "marketplaces.DE.returns: Value error, window_days (10) is below minimum_window_days",
    ),
    "bad time zone": (
        "extends: shipped\nmarketplaces:\n  JP:\n    time_zone: Mars/Olympus\n",
        "marketplaces.JP.time_zone: Value error, not an IANA time zone: 'Mars/Olympus'",
    ),
    "negative postage": (
        "extends: shipped\nmarketplaces:\n  DE:\n    returns:\n      default_return_postage: {EUR: -699}\n",
        "marketplaces.DE.returns.default_return_postage.EUR: Input should be greater than or equal to 0",
    ),
    "negative high-value cap": (
        "extends: shipped\nmarketplaces:\n  US:\n    returns:\n      high_value_cap: {USD: -1}\n",
        "marketplaces.US.returns.high_value_cap.USD: Input should be greater than or equal to 0",
    ),
    "bad currency": (
        "extends: shipped\nmarketplaces:\n  US:\n    currency: dollars\n",
        "marketplaces.US.currency:",
    ),
    "bad code": ("extends: shipped\nmarketplaces:\n  france:\n    name: France\n", "marketplaces.france.code:"),
    "unknown top-level key": ("extend: shipped\nmarketplaces: {}\n", "extend: unknown key"),
    "extends something else": ("extends: europe\nmarketplaces:\n  DE: {}\n", "extends: must be `shipped`"),
    "no marketplaces": ("extends: shipped\n", "marketplaces: must map codes to rule sets"),
    "a profile that is not a mapping": ("marketplaces:\n  DE: 14\n", "marketplaces.DE: must be a mapping"),
    "code differing from its key": (
        "extends: shipped\nmarketplaces:\n  DE:\n    code: AT\n",
        "marketplaces.DE.code: differs from its key",
    ),
    "not YAML": ("marketplaces: [\n", "not valid YAML"),
    "not a mapping": ("- US\n- DE\n", "must be a mapping with a `marketplaces` key"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_naming_the_key(tmp_path, case):
    text, expected = BAD_FILES[case]
    path = write(tmp_path, text)
    with pytest.raises(MarketplaceConfigError) as caught:
        marketplaces.load(path)
    message = str(caught.value)
    assert message.startswith(f"marketplaces file {path}"), message
    assert expected in message, message


def test_a_missing_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(MarketplaceConfigError, match="cannot read it") as caught:
        marketplaces.load(path)
    assert str(path) in str(caught.value)


def test_overridden_replaces_a_rule_in_every_marketplace_and_validates_again():
    shipped = marketplaces.shipped()
    longer = shipped.overridden(returns={"window_days": 60, "quality_window_days": None}, claims={"window_days": 120})
    assert {code: p.returns.window_days for code, p in longer.items()} == dict.fromkeys(shipped, 60)
    assert {p.claims.window_days for p in longer.values()} == {120}
    assert longer["CN"].returns.window_for(seller_fault=True) == 60
    assert longer["DE"].returns.withdrawal_days == 14, "only the named fields change"
    assert shipped["US"].returns.window_days == 30, "the original is untouched"
    assert shipped.overridden(returns={}) == shipped, "nothing to override: the same profiles"
    # An override that breaks a marketplace's rules is refused like a bad file, naming the marketplace.
    with pytest.raises(MarketplaceConfigError) as caught:
        shipped.overridden(returns={"window_days": 7})
    assert "settings overriding marketplace DE" in str(caught.value) and "returns:" in str(caught.value)


def test_require_refuses_an_unknown_code_naming_the_field():
    served = marketplaces.shipped()
    assert served.require("DE").code == "DE"
    with pytest.raises(UnknownMarketplace) as caught:
        served.require("XX", field="lines[0].marketplace")
    error = caught.value
    assert isinstance(error, RulesBroken) and isinstance(error, PermanentError)
    [problem] = error.problems
    assert problem.field == "lines[0].marketplace"
    assert "unknown marketplace 'XX'" in problem.reason and "CN, DE, GB, JP, US" in problem.reason
    assert served.get("XX") is None and "XX" not in served


def test_install_decides_what_current_answers():
    only_us = Marketplaces({"US": marketplaces.shipped()["US"]})
    try:
        marketplaces.install(only_us)
        assert marketplaces.current() is only_us
        with pytest.raises(UnknownMarketplace):
            marketplaces.current().require("DE")
    finally:
        marketplaces.install(marketplaces.shipped())
    assert list(marketplaces.current()) == ["CN", "DE", "GB", "JP", "US"]


def test_an_order_of_an_unserved_marketplace_is_refused_as_input_but_reads_back_when_stored():
    from pydantic import ValidationError

    from shared.models import STORED, Order
    from tests.unit.returns.builders import order_data

    stored = Order.model_validate(order_data(marketplace="DE", currency="EUR")).model_dump(mode="json")
    try:
        marketplaces.install(Marketplaces({"US": marketplaces.shipped()["US"]}))
        with pytest.raises(ValidationError) as caught:
            Order.model_validate(stored)  # an HTTP body or an `order.delivered` event: no context
        assert [error["loc"] for error in caught.value.errors()] == [("marketplace",)]
        assert "unknown marketplace" in caught.value.errors()[0]["msg"]
        read = Order.model_validate(stored, context=STORED)  # a service reading its own document
        assert read.marketplace == "DE" and read.buyer.locale == stored["buyer"]["locale"]
    finally:
        marketplaces.install(marketplaces.shipped())
