"""Time sources. Logic that depends on "now" takes a Clock, so tests and e2e runs can move time."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (unit and integration tests)."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


class FileOffsetClock:
    """System time plus an offset in seconds read from a file.

    Lets an end-to-end run move the time of real service processes from outside ("two business
    days later") without restarting them. Never configured in production.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._mtime: float | None = None
        self._offset = timedelta()

    def _offset_now(self) -> timedelta:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return timedelta()
        if mtime != self._mtime:
            text = self._path.read_text().strip() or "0"
            self._offset, self._mtime = timedelta(seconds=float(text)), mtime
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset_now()


def clock_from_env(clock_file: str | None) -> Clock:
    return FileOffsetClock(clock_file) if clock_file else SystemClock()
