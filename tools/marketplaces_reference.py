"""The "Marketplaces" section of docs/configuration.md: the marketplaces file, generated from its model.

Every key's table comes from shared/marketplace_models.py (types, defaults, descriptions), the
shipped profiles' summary from shared/marketplaces.yaml, so neither can drift from the document.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared import marketplaces
from shared.marketplace_models import ClaimRules, Marketplace, ResolutionRules, ReturnRules

# Keys of the top level that the model leaves undescribed.
NOTES = {
    "code": "The marketplace's code, two capital letters: the key under `marketplaces`, and `Order.marketplace`.",
    "name": "Its name, for people (`Germany`).",
    "returns": "The return rules below (required).",
    "resolutions": "Resolutions besides a refund (optional block; defaults below).",
    "claims": "A-to-z claims and chargebacks (optional block; defaults below).",
    "replacements_allowed": "Buyers may ask for a replacement (where the seller's policy offers one).",
    "store_credit_allowed": "Buyers may take their refund as store credit (`refund_to`; CN: no).",
}

# The example file of the section: the unit tests load it (tests/unit/shared/test_marketplaces_config.py),
# so the documented file is one the services accept.
FRANCE = """\
  FR:                       # a code the shipped file lacks: complete
    name: France
    currency: EUR
    calendar_country: FR
    time_zone: Europe/Paris
    default_locale: en
    returns:
      window_days: 14
      minimum_window_days: 14
      withdrawal_days: 14
      response_deadline_hours: 48
      reminder_lead_hours: 12
      authorization_validity_days: 14
      refund_business_days: 2
      max_restocking_fee_percent: 50
      high_value_cap: {EUR: 70000}
      default_return_postage: {EUR: 699}
"""
EXAMPLE_FILE = (
    """\
extends: shipped            # optional: start from the shipped profiles
marketplaces:
  DE:                       # with `extends: shipped`, only what differs, key by key
    returns:
      window_days: 30       # a German seller's buyers get 30 days, not 14
"""
    + FRANCE
)

INTRO = """\
## Marketplaces

One deployment serves several marketplaces; every order names one (`marketplace`, e.g. `DE`), and
every service applies that marketplace's rules to it (docs/product.md §13). The rules live in one
YAML file, the **marketplaces file**. Without `MARKETPLACES_FILE` the services use the shipped
profiles, [shared/marketplaces.yaml](../shared/marketplaces.yaml):

| code | name | currency | calendar | time zone | emails | window (quality) | seller minimum | withdrawal | max fee |
|---|---|---|---|---|---|---|---|---|---|
{shipped}

- **`MARKETPLACES_FILE`** (every service) is the path of the deployment's own file. **Every service
  must read the same file**: returns decides windows and fees, refunds the insured postage and the
  store-credit bonus, disputes the claim deadlines, metrics what counts as a defect, notifications
  the language. Two services with different files would apply different rules to one order. Each
  service publishes what it read at `GET /v1/marketplaces` (docs/api.md): compare them after a change.
  Compose mounts `deploy/marketplaces.yaml` into every service; Kubernetes mounts the ConfigMap
  `marketplaces` (from `deploy/kubernetes/base/marketplaces.yaml`, replaced by the production overlay),
  whose generated name changes with its content, so a change rolls every Deployment.
- **Validated at start-up.** A file that cannot be read, is not YAML, has an unknown key, a value of the
  wrong type or a rule that contradicts another (a window shorter than the seller minimum, a reminder
  after its deadline, a zone that is not an IANA zone) stops the service before it listens, with a
  message naming each bad key (`marketplaces.DE.returns.window_days: ...`). So does a
  `DEFAULT_MARKETPLACE` (default `US`, the marketplace a seller-policy call without `?marketplace=` means)
  that the file lacks.
- **An order for a marketplace the file lacks** is refused: `PUT /v1/orders/{{id}}` answers 422 on
  `marketplace`, and an `order.delivered` naming it is parked as a dead letter (replay it once the
  marketplace is added).

### The file

```yaml
{example}```

Two top-level keys only: `marketplaces` (code → rule set, required) and `extends`. Without `extends`
the file stands alone: it is the whole list, each profile complete. With `extends: shipped` it starts
from the shipped profiles: a shipped code keeps every key the file does not name (blocks are merged
key by key; a list such as `non_returnable_categories` is replaced whole), a new code must be complete,
and the shipped codes the file does not mention stay as shipped.

### Adding a marketplace

1. Write its profile into the deployment's file (keep `extends: shipped` to keep the others), with
   every required key below. Amounts (`high_value_cap`, `default_return_postage`) are minor units per
   currency; name at least the marketplace's own currency.
2. Check it before rolling it out: `uv run python -c "from shared import marketplaces;
   print(list(marketplaces.load('my-marketplaces.yaml')))"` prints the codes, or the bad keys.
3. Its `calendar_country` needs public holidays the `holidays` package knows (a country it lacks counts
   weekends only), and emails come in `default_locale` unless a party's own locale is one of
   `en`, `zh-CN`, `de`, `ja`.
4. Roll it out to every service at once (compose: edit `deploy/marketplaces.yaml`, then
   `docker compose restart returns refunds notifications metrics disputes`: it is read at start-up, and
   `up -d` sees no change to recreate;
   Kubernetes: edit the overlay's `marketplaces.yaml`, apply), check `GET /v1/marketplaces/{{code}}` on each
   service, then let the order system send orders with the new code. Orders sent before that were
   parked: replay them (docs/operations.md, dead letters). Sellers keep their policy per marketplace
   (`PUT /v1/sellers/{{id}}/return-policy?marketplace=FR`); until they set one, the marketplace's rules apply.

### Never remove a marketplace that stored data names

Keep every marketplace that a stored order, return, refund or claim names in the file, also once it
is no longer sold in (a file without `extends: shipped` that leaves out a shipped code removes it
too). If one is removed anyway:

- **New orders of it are refused** (`PUT /v1/orders/{{id}}`: 422 on `marketplace`; `order.delivered`:
  parked), while stored ones still read: `GET /v1/orders/{{id}}` answers them, and the refunds and
  disputes services read their copy (the marketplace is checked when an order comes in, not when a
  service reads what it stored).
- **Everything that needs its rules is refused:** a new return, a seller policy, authorize, receive,
  a keep-it offer or giving up a replacement answer 422 on `marketplace`, and an event whose handling
  needs them (a refund taken as store credit looks up the marketplace's bonus) is parked as a dead letter.
- **The deadline job leaves its returns alone** (no reminder, platform authorization or expiry), and
  its due queries only look at served marketplaces, so those returns never hold up the others.

To stop selling in a marketplace, keep its profile and stop the order system from sending new orders
for it; returns, refunds and claims of orders already delivered there then run out under its rules.
If a marketplace was removed by mistake, put it back unchanged and replay the parked dead letters
(docs/operations.md, dead letters).

### Every key
"""

OVERRIDES = """\
### Deployment-wide overrides

The environment settings that used to carry these rules still exist, but as **overrides, mainly for
drills and tests**: unset by default; when set, the value replaces that rule in *every* marketplace
(applied once at start-up, and validated again: an override that breaks a marketplace's rules stops
the service, naming the marketplace). Units are the settings' own (durations in seconds or ISO 8601).
For anything that differs by marketplace, write a marketplaces file instead.

| variable | service | replaces |
|---|---|---|
| `RETURN_WINDOW_DAYS` | returns | `returns.window_days` |
| `RESPONSE_DEADLINE` | returns | `returns.response_deadline_hours` |
| `REMINDER_LEAD` | returns | `returns.reminder_lead_hours` |
| `AUTHORIZATION_VALIDITY` | returns | `returns.authorization_validity_days` |
| `REFUND_BUSINESS_DAYS` | returns | `returns.refund_business_days` |
| `MAX_RESTOCKING_FEE_PERCENT` | returns | `returns.max_restocking_fee_percent` |
| `NON_RETURNABLE_CATEGORIES` | returns | `returns.non_returnable_categories` |
| `HIGH_VALUE_CAP` | returns | `returns.high_value_cap` |
| `DEFAULT_RETURN_POSTAGE` | returns | `returns.default_return_postage` |
| `OFFER_VALIDITY` | returns | `resolutions.offer_validity_hours` |
| `REPLACEMENTS_ALLOWED` | returns | `resolutions.replacements_allowed` |
| `STORE_CREDIT_ALLOWED` | returns | `resolutions.store_credit_allowed` |
| `STORE_CREDIT_BONUS_PERCENT` | refunds | `resolutions.store_credit_bonus_percent` |
| `CLAIM_OPENS_AFTER_DAYS` | disputes | `claims.opens_after_days` |
| `CLAIM_WINDOW_DAYS` | disputes | `claims.window_days` |
| `CLAIM_RESPONSE_HOURS` | disputes | `claims.response_hours` |
| `CLAIM_REMINDER_HOURS` | disputes | `claims.reminder_hours` |
| `CHARGEBACK_EVIDENCE_DAYS` | disputes | `claims.chargeback_evidence_days` |
| `ODR_CLAIMS_COUNTED` | metrics | `claims.odr_claims_counted` |
"""


def _type(info: FieldInfo) -> str:
    annotation = info.annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "block"
    if origin is frozenset:
        return "list of categories"
    if origin is dict:
        return "map: currency → minor units"
    if type(None) in args:
        return "int or absent"
    names: dict[Any, str] = {bool: "bool", int: "int", float: "number", Decimal: "number", str: "text"}
    return names.get(annotation, str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if value is None or value == "" or value == frozenset() or value == {}:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _table(model: type[BaseModel], prefix: str) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        meaning = (info.description or NOTES.get(name, "")).replace("|", "\\|").replace("\n", " ")
        default = "the calendar country's" if name == "country" else _default(info)
        rows.append(f"| `{prefix}{name}` | {_type(info)} | {default} | {meaning} |")
    return rows


def _shipped_row(profile: Marketplace) -> str:
    rules = profile.returns
    window = f"{rules.window_days}" + (f" ({rules.quality_window_days})" if rules.quality_window_days else "")
    withdrawal = f"{rules.withdrawal_days} days" if rules.withdrawal_days else "none"
    return (
        f"| `{profile.code}` | {profile.name} | {profile.currency} | {profile.calendar_country} | "
        f"{profile.time_zone} | {profile.default_locale.value} | {window} | {rules.minimum_window_days} | "
        f"{withdrawal} | {rules.max_restocking_fee_percent} % |"
    )


def marketplaces_section() -> str:
    shipped = marketplaces.shipped()
    parts: list[Any] = [
        INTRO.format(shipped="\n".join(_shipped_row(p) for p in shipped.values()), example=EXAMPLE_FILE)
    ]
    for title, model, prefix in (
        ("A marketplace (`marketplaces.<CODE>`)", Marketplace, ""),
        ("`returns`", ReturnRules, "returns."),
        ("`resolutions`", ResolutionRules, "resolutions."),
        ("`claims`", ClaimRules, "claims."),
    ):
        parts += [f"#### {title}\n", *_table(model, prefix), ""]
    parts.append(OVERRIDES)
    return "\n".join(parts)
