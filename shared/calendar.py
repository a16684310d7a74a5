"""Business days per marketplace country: weekends and public holidays excluded (`holidays` lib)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

# Marketplace -> (holiday country, local zone in which "a day" is counted). Configurable by adding rows.
# A country may name a subdivision ("GB-ENG"): GB-wide holidays lack England's Easter Monday.
MARKETPLACES: dict[str, tuple[str, str]] = {
    "US": ("US", "America/New_York"),
    "CA": ("CA", "America/Toronto"),
    "GB": ("GB-ENG", "Europe/London"),
    "UK": ("GB-ENG", "Europe/London"),
    "DE": ("DE", "Europe/Berlin"),
    "FR": ("FR", "Europe/Paris"),
    "ES": ("ES", "Europe/Madrid"),
    "IT": ("IT", "Europe/Rome"),
    "JP": ("JP", "Asia/Tokyo"),
    "CN": ("CN", "Asia/Shanghai"),
    "BH": ("BH", "Asia/Bahrain"),
    "AU": ("AU", "Australia/Sydney"),
}


def marketplace_country(marketplace: str) -> str:
    """ISO country of the marketplace (`UK` -> `GB`), for comparing with addresses."""
    return MARKETPLACES.get(marketplace, (marketplace, "UTC"))[0].partition("-")[0]


def marketplace_zone(marketplace: str) -> ZoneInfo:
    return ZoneInfo(MARKETPLACES.get(marketplace, (marketplace, "UTC"))[1])


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    code, _, subdivision = country.partition("-")
    try:
        return holidays.country_holidays(code, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        return holidays.HolidayBase()


def preload(marketplaces: Iterable[str] = tuple(MARKETPLACES), years: Iterable[int] | None = None) -> None:
    """Build the holiday tables now, at start-up. The first one imports every country module of
    `holidays` (about 300 modules; seconds when no bytecode cache is writable), which would
    otherwise stall the event loop inside the first request or event that counts business days."""
    this_year = datetime.now(UTC).year
    for marketplace in marketplaces:
        for year in years or (this_year, this_year + 1):
            _holidays(MARKETPLACES.get(marketplace, (marketplace, "UTC"))[0], year)


def is_business_day(day: date, marketplace: str) -> bool:
    """Not a weekend day of the country (Friday-Saturday in Bahrain) and not a public holiday."""
    calendar = _holidays(MARKETPLACES.get(marketplace, (marketplace, "UTC"))[0], day.year)
    return day.weekday() not in calendar.weekend and day not in calendar


def add_business_days(start: datetime, days: int, marketplace: str) -> datetime:
    """The instant `days` business days after `start`, counted in the marketplace's local time.

    Receipt on Friday 15:00 + 2 business days -> Tuesday 23:59:59.999999 local (end of that day),
    so a refund any time on the second business day is on time.
    """
    zone = marketplace_zone(marketplace)
    day = start.astimezone(zone).date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day, marketplace):
            remaining -= 1
    return datetime.combine(day, time.max, tzinfo=zone).astimezone(start.tzinfo)
