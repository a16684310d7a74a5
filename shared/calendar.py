"""Business days per marketplace: its calendar country's weekends and public holidays excluded (`holidays` lib).

Each marketplace's calendar country and time zone come from the marketplaces file (shared/marketplaces.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from shared import marketplaces

# The last instant of a day, at the millisecond precision MongoDB stores times with.
END_OF_DAY = time(23, 59, 59, 999_000)


def _calendar(marketplace: str) -> tuple[str, str]:
    """(holiday country, local zone in which "a day" is counted) of a marketplace in the installed
    marketplaces file (shared/marketplaces.py); a code it lacks counts as that country in UTC."""
    profile = marketplaces.current().get(marketplace)
    return (profile.calendar_country, profile.time_zone) if profile else (marketplace, "UTC")


def marketplace_country(marketplace: str) -> str:
    """ISO country of the marketplace, for comparing with addresses."""
    profile = marketplaces.current().get(marketplace)
    return profile.country if profile else marketplace


def marketplace_zone(marketplace: str) -> ZoneInfo:
    return _zone(_calendar(marketplace)[1])


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    code, _, subdivision = country.partition("-")
    try:
        return holidays.country_holidays(code, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        return holidays.HolidayBase()


def preload(codes: Iterable[str] | None = None, years: Iterable[int] | None = None) -> None:
    """Build the holiday tables now, at start-up. The first one imports every country module of
    `holidays` (about 300 modules; seconds when no bytecode cache is writable), which would
    otherwise stall the event loop inside the first request or event that counts business days."""
    this_year = datetime.now(UTC).year
    for marketplace in marketplaces.current() if codes is None else codes:
        for year in years or (this_year, this_year + 1):
            _holidays(_calendar(marketplace)[0], year)


def is_business_day(day: date, marketplace: str) -> bool:
    """Not a public holiday, and not a weekend day of the country (Friday-Saturday in Bahrain) unless
    the country made it a working day (China's make-up days, 调休, around its long holidays)."""
    calendar = _holidays(_calendar(marketplace)[0], day.year)
    if day in calendar:
        return False
    return day.weekday() not in calendar.weekend or day in calendar.weekend_workdays


def add_business_days(start: datetime, days: int, marketplace: str) -> datetime:
    """The instant `days` business days after `start`, counted in the marketplace's local time.

    Receipt on Friday 15:00 + 2 business days -> Tuesday 23:59:59.999 local (end of that day),
    so a refund any time on the second business day is on time. Milliseconds, as MongoDB stores
    times: the deadline in an event is the one stored, and one computed again from a remembered
    return (services/returns/store.py `recent`) is the one a fresh read gives.
    """
    zone = marketplace_zone(marketplace)
    day = start.astimezone(zone).date()
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day, marketplace):
            remaining -= 1
    return datetime.combine(day, END_OF_DAY, tzinfo=zone).astimezone(start.tzinfo)
