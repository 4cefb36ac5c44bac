"""The monthly calendar (sim/world/calendar.py): date parsing, months of a run, and the share of each month a
dated measure is in force (its start and end days both count).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.world.calendar import MonthlyCalendar, parse_date, parse_month

CAL = MonthlyCalendar((2010, 1), (2012, 12))  # 36 months, 2012 a leap year
FIRST, LAST = dt.date(2010, 1, 1), dt.date(2012, 12, 31)
days_in_run = st.dates(min_value=FIRST, max_value=LAST)


def _days_in_month(cal: MonthlyCalendar, step: int) -> int:
    return (cal.last_day(step) - cal.first_day(step)).days + 1


def _days_in_force(cal: MonthlyCalendar, start: dt.date, end: dt.date | None) -> np.ndarray:
    """Days in force per month, counted day by day (the definition the coverage must agree with)."""
    out = np.zeros(cal.n_steps)
    day, last = max(start, cal.first_day(0)), cal.last_day(cal.n_steps - 1)
    stop = last if end is None else min(end, last)
    while day <= stop:
        out[cal.step_of(day)] += 1
        day += dt.timedelta(days=1)
    return out


# ------------------------------------------------------------------------------------------------ parsing
def test_parse_date_accepts_days_and_months():
    assert parse_date("2010-09-21", field="x") == dt.date(2010, 9, 21)
    assert parse_date(" 2010-09 ", field="x") == dt.date(2010, 9, 1)
    assert parse_date("2010-09", field="x", end_of_period=True) == dt.date(2010, 9, 30)
    assert parse_date("2012-02", field="x", end_of_period=True) == dt.date(2012, 2, 29)
    assert parse_date("2011-02", field="x", end_of_period=True) == dt.date(2011, 2, 28)
    # A full date is taken as written, end of period or not.
    assert parse_date("2010-09-21", field="x", end_of_period=True) == dt.date(2010, 9, 21)
    assert parse_month("2010-09-21", field="x") == (2010, 9)
    assert parse_month("2010-12", field="x") == (2010, 12)


@pytest.mark.parametrize("bad", ["2010/09", "2010-13", "201009", "2010-09-31", "Sept 2010", "", "2010-9"])
def test_parse_date_rejects_non_dates_naming_the_field(bad):
    with pytest.raises(ValueError) as exc:
        parse_date(bad, field="scenario.measures[0].start")
    message = str(exc.value)
    assert message.startswith("scenario.measures[0].start: ") and repr(bad) in message and "YYYY-MM" in message
    with pytest.raises(ValueError, match=r"^scenario\.start: "):
        parse_month(bad, field="scenario.start")


# ------------------------------------------------------------------------------------------------ months
def test_months_of_a_run_cross_year_ends():
    cal = MonthlyCalendar((2010, 11), (2011, 2))
    assert cal.n_steps == 4
    assert [cal.month(s) for s in range(4)] == [(2010, 11), (2010, 12), (2011, 1), (2011, 2)]
    assert cal.first_day(1) == dt.date(2010, 12, 1) and cal.last_day(1) == dt.date(2010, 12, 31)
    assert cal.last_day(3) == dt.date(2011, 2, 28)
    assert cal.step_of(dt.date(2011, 1, 31)) == 2
    assert cal.step_of(dt.date(2010, 10, 31)) == -1  # before the run
    assert cal.dates().tolist() == [
        dt.date(2010, 11, 1),
        dt.date(2010, 12, 1),
        dt.date(2011, 1, 1),
        dt.date(2011, 2, 1),
    ]
    assert MonthlyCalendar((2010, 1), (2010, 1)).n_steps == 1


@given(st.integers(1990, 2040), st.integers(1, 12), st.integers(0, 400))
def test_step_of_inverts_month(year, month, step):
    cal = MonthlyCalendar((year, month), (year + 40, 12))
    y, m = cal.month(step)
    assert 1 <= m <= 12
    assert cal.step_of(dt.date(y, m, 1)) == step == cal.step_of(cal.last_day(step))
    assert (cal.last_day(step) + dt.timedelta(days=1)) == cal.first_day(step + 1)


# ------------------------------------------------------------------------------------------------ coverage
def test_a_measure_ending_on_day_d_is_in_force_on_d_and_not_on_d_plus_1():
    """The Sep-Nov 2010 halt ends on 20 Nov: 20 of November's 30 days are covered, none of December's."""
    cov = CAL.coverage(dt.date(2010, 9, 21), dt.date(2010, 11, 20))
    assert cov[8] == pytest.approx(10 / 30)  # 21-30 Sep: the start day counts
    assert cov[9] == 1.0
    assert cov[10] == pytest.approx(20 / 30)  # 1-20 Nov: the end day counts
    assert cov[11] == 0.0
    assert cov[:8].sum() == 0.0 and cov[12:].sum() == 0.0


def test_one_day_measures_and_month_ends():
    # A measure in force on one day covers that day of its month, whichever day it is.
    assert CAL.coverage(dt.date(2012, 2, 29), dt.date(2012, 2, 29))[25] == pytest.approx(1 / 29)
    assert CAL.coverage(dt.date(2010, 1, 31), dt.date(2010, 1, 31))[0] == pytest.approx(1 / 31)
    # Ending on a month's last day covers that whole month and nothing of the next.
    cov = CAL.coverage(dt.date(2010, 3, 1), dt.date(2010, 4, 30))
    assert cov[2] == 1.0 and cov[3] == 1.0 and cov[4] == 0.0
    # Open-ended: in force to the end of the run; starting before the run covers its first months.
    assert (CAL.coverage(dt.date(2009, 6, 1), None) == 1.0).all()
    assert (CAL.coverage(dt.date(2009, 6, 1), dt.date(2009, 12, 31)) == 0.0).all()


@given(days_in_run, st.integers(0, 1200) | st.none())
def test_coverage_counts_every_day_in_force_once_start_and_end_included(start, length):
    end = None if length is None else start + dt.timedelta(days=length)
    cov = CAL.coverage(start, end)
    days = np.array([_days_in_month(CAL, s) for s in range(CAL.n_steps)])
    expected = _days_in_force(CAL, start, end)
    np.testing.assert_allclose(cov * days, expected, rtol=0, atol=1e-9)
    assert ((cov >= 0) & (cov <= 1)).all()
    if end is not None and end <= LAST:
        assert cov[CAL.step_of(end)] > 0  # the end day itself is in force
