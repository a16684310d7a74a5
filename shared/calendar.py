"""Business days per marketplace country: weekends and public holidays excluded (`holidays` lib)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

# Marketplace -> (holiday country, local zone in which "a day" is counted). Configurable by adding rows.
MARKETPLACES: dict[str, tuple[str, str]] = {
    "US": ("US", "America/New_York"),
    "CA": ("CA", "America/Toronto"),
    "GB": ("GB", "Europe/London"),
    "UK": ("GB", "Europe/London"),
    "DE": ("DE", "Europe/Berlin"),
    "FR": ("FR", "Europe/Paris"),
    "ES": ("ES", "Europe/Madrid"),
    "IT": ("IT", "Europe/Rome"),
    "JP": ("JP", "Asia/Tokyo"),
    "CN": ("CN", "Asia/Shanghai"),
    "BH": ("BH", "Asia/Bahrain"),
    "AU": ("AU", "Australia/Sydney"),
}
WEEKEND = {5, 6}


def marketplace_zone(marketplace: str) -> ZoneInfo:
    return ZoneInfo(MARKETPLACES.get(marketplace, (marketplace, "UTC"))[1])


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return holidays.HolidayBase()


def is_business_day(day: date, marketplace: str) -> bool:
    country = MARKETPLACES.get(marketplace, (marketplace, "UTC"))[0]
    return day.weekday() not in WEEKEND and day not in _holidays(country, day.year)


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
