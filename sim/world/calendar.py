"""Monthly simulation calendar: parsing dates and measuring how much of a month a measure covers."""

from __future__ import annotations

import calendar as _calendar
import datetime as _dt
import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["parse_date", "parse_month", "MonthlyCalendar", "ramp_share"]


def parse_date(value: str, *, field: str, end_of_period: bool = False) -> _dt.date:
    """Parse ``YYYY-MM-DD`` or ``YYYY-MM`` (first day, or last day with ``end_of_period``).

    Raises:
        ValueError: naming ``field``, the value and the accepted forms.
    """
    text = str(value).strip()
    try:
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            if text[4] != "-":
                raise ValueError
            day = _calendar.monthrange(year, month)[1] if end_of_period else 1
            return _dt.date(year, month, day)
        return _dt.date.fromisoformat(text)
    except (ValueError, IndexError):
        raise ValueError(f"{field}: {value!r} is not a date; use YYYY-MM or YYYY-MM-DD (e.g. 2010-09-21)") from None


def parse_month(value: str, *, field: str) -> tuple[int, int]:
    """Parse ``YYYY-MM`` (a day part is accepted and ignored) into ``(year, month)``."""
    d = parse_date(value, field=field)
    return d.year, d.month


@dataclass(frozen=True)
class MonthlyCalendar:
    """The months of a scenario, from ``start`` to ``end`` inclusive (``(year, month)`` pairs)."""

    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def n_steps(self) -> int:
        """Number of monthly steps."""
        return (self.end[0] - self.start[0]) * 12 + (self.end[1] - self.start[1]) + 1

    def month(self, step: int) -> tuple[int, int]:
        """``(year, month)`` of a step."""
        k = self.start[0] * 12 + (self.start[1] - 1) + step
        return k // 12, k % 12 + 1

    def first_day(self, step: int) -> _dt.date:
        """First day of a step's month."""
        y, m = self.month(step)
        return _dt.date(y, m, 1)

    def last_day(self, step: int) -> _dt.date:
        """Last day of a step's month."""
        y, m = self.month(step)
        return _dt.date(y, m, _calendar.monthrange(y, m)[1])

    def step_of(self, date: _dt.date) -> int:
        """Step whose month contains ``date`` (may be outside ``[0, n_steps)``)."""
        return (date.year - self.start[0]) * 12 + (date.month - self.start[1])

    def dates(self) -> np.ndarray:
        """First day of every step's month, as ``datetime64[D]``."""
        first = np.datetime64(f"{self.start[0]:04d}-{self.start[1]:02d}", "M")
        return (first + np.arange(self.n_steps)).astype("datetime64[D]")

    def coverage(self, start: _dt.date, end: _dt.date | None) -> np.ndarray:
        """Share of each step's days on which a measure in force from ``start`` to ``end``
        (inclusive; ``None`` for open-ended) applies.
        """
        return _coverage(self, start, end).copy()

    def _coverage_uncached(self, start: _dt.date, end: _dt.date | None) -> np.ndarray:
        out = np.zeros(self.n_steps)
        for step in range(self.n_steps):
            a, b = self.first_day(step), self.last_day(step)
            lo = max(a, start)
            hi = b if end is None else min(b, end)
            if hi >= lo:
                out[step] = ((hi - lo).days + 1) / ((b - a).days + 1)
        return out


@functools.lru_cache(maxsize=4096)
def _coverage(cal: MonthlyCalendar, start: _dt.date, end: _dt.date | None) -> np.ndarray:
    """:meth:`MonthlyCalendar.coverage`, computed once per calendar and dates (a world is built per
    run, and its measures' dates do not change between runs); callers get a copy.
    """
    out = cal._coverage_uncached(start, end)
    out.flags.writeable = False
    return out


def ramp_share(step: int, start: int, ramp: int) -> float:
    """Share of a linear ramp completed at ``step`` (0 before ``start``, 1 after ``start + ramp``)."""
    if step < start:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (step - start + 1) / ramp)
