"""Coercion instruments and strategies: the measures' arrays, quota pacing, and the rule-based coercer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import sim
from sim.calendar import MonthlyCalendar
from sim.coercion import ExportBan, ExportDuty, ExportQuota, ImportTariff, InformalExportRestriction, MeasureArrays

CAL = MonthlyCalendar((2010, 1), (2010, 12))


def _measure(cls, start, end, **kw):
    return cls(
        imposer=0,
        goods=np.array([0]),
        targets=np.array([1]),
        coverage=CAL.coverage(start, end),
        start=start,
        **kw,
    )


def test_partial_month_coverage_scales_a_ban():
    ban = _measure(InformalExportRestriction, dt.date(2010, 9, 21), dt.date(2010, 11, 20), intensity=0.6)
    arrays = MeasureArrays.empty(1, 2)
    ban.apply(8, arrays)  # September: 10 of 30 days
    assert arrays.ban_intensity[0, 0, 1] == pytest.approx(0.6 * 10 / 30)
    arrays.reset()
    ban.apply(9, arrays)  # October: whole month
    assert arrays.ban_intensity[0, 0, 1] == pytest.approx(0.6)
    assert arrays.ban_intensity[0, 1, 0] == 0.0  # only the imposer's exports to the target


def test_duties_and_tariffs_add_and_bans_take_the_largest():
    arrays = MeasureArrays.empty(1, 2)
    for rate in (0.1, 0.15):
        _measure(ExportDuty, dt.date(2010, 1, 1), None, rate=rate).apply(3, arrays)
    assert arrays.export_duty[0, 0] == pytest.approx(0.25)
    tariff = _measure(ImportTariff, dt.date(2010, 1, 1), None, rate=0.8)
    tariff.apply(3, arrays)
    assert arrays.import_tariff[0, 1, 0] == pytest.approx(0.8)  # imposer 0 taxes imports from 1
    _measure(ExportBan, dt.date(2010, 1, 1), None, intensity=1.0).apply(3, arrays)
    _measure(InformalExportRestriction, dt.date(2010, 1, 1), None, intensity=0.5).apply(3, arrays)
    assert arrays.ban_intensity[0, 0, 1] == 1.0


def test_quota_paces_the_remaining_licences_over_the_remaining_months():
    q = _measure(ExportQuota, dt.date(2010, 7, 1), dt.date(2010, 12, 31), quantity=600.0)
    q.allocation, q.carried_in, q.shipped = np.array([1.0]), np.array([0.0]), np.array([0.0])
    assert q.monthly_cap(6)[0] == pytest.approx(100.0)
    q.record_exports(6, np.array([40.0]))  # shipped less than allowed in July
    assert q.monthly_cap(7)[0] == pytest.approx(560.0 / 5)
    assert q.monthly_cap(5) is None  # June is outside the period


def _rules_run(**strategy):
    overrides = ["scenario.strategy.type=rules", "output.figures=false"]
    overrides += [f"scenario.strategy.{k}={v}" for k, v in strategy.items()]
    return sim.run("minimal", overrides, seed=1, keep_model=True)


def test_rule_based_coercer_stops_when_the_target_concedes():
    res = _rules_run(target_pain_threshold=0.01, coercer_cost_tolerance=1e9)
    assert res.metrics["conceded"] is True
    model = res.model
    quota = model.measures[0]
    assert quota.ended_at is not None
    # Once ended, the quota no longer caps exports: the rent closes.
    assert model.strategy.ended_reason[0] == "target conceded"


def test_outside_ruling_ends_the_measure_after_its_delay():
    res = _rules_run(target_pain_threshold=10.0, coercer_cost_tolerance=1e9, ruling_delay_months=3)
    model = res.model
    quota = model.measures[0]
    start = model.world.calendar.step_of(quota.start)
    assert quota.ended_at == start + 3
    assert model.strategy.ended_reason[0] == "outside ruling"
    assert res.metrics["conceded"] is False


def test_schedule_strategy_keeps_measures_as_dated():
    res = sim.run("minimal", ["output.figures=false"], seed=1, keep_model=True)
    assert all(m.ended_at is None for m in res.model.measures)
