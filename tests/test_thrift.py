"""Long-run thrift, demand destruction at high prices (docs/ODD.md §7.3, ``model.long_run_thrift``).

A small world: CHN produces most of a good and exports to ROW's users; AUS is a small rival. From April
2020 CHN caps its exports at 80 % of their baseline, so ROW's price spikes. Users economise on the good
in proportion to the log of the price they expect, so the spike is lower the larger the long-run
response, the requirement (not output) carries the saving, and at ``long_run_thrift = 0`` the model is the
one without the mechanism.
"""

from __future__ import annotations

import helpers
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.api import run
from sim.model.model import CoercionModel
from sim.world.config import ScenarioConfig

START, END = "2020-01", "2021-06"
#: Month index of 2020-04, when the quota starts.
APRIL = 3
#: CHN's baseline exports to ROW (t/yr): ROW uses 1,200 t, 5/6 of it from CHN.
BASELINE_EXPORTS = 1000.0
#: The quota as a share of baseline exports: a spike to about 15x without the mechanism, below the cap.
QUOTA_SHARE = 0.8


def _world(quota_share: float = 0.8) -> dict:
    months = 15  # Apr 2020 - Jun 2021
    return {
        "name": "thrift_test",
        "start": START,
        "end": END,
        "coercer": "CHN",
        "targets": ["ROW"],
        "countries": [{"code": "CHN"}, {"code": "AUS"}, {"code": "ROW"}],
        "goods": [
            {
                "id": "ore",
                "reference_price": 100.0,
                "demand_elasticity": 0.1,
                "armington_elasticity": 3.0,
                "supply_elasticity": 0.3,
            }
        ],
        "producers": [
            {"name": "CHN", "country": "CHN", "good": "ore", "capacity": 2000 / 0.8, "unit_cost": 50.0},
            {"name": "AUS", "country": "AUS", "good": "ore", "capacity": 200 / 0.8, "unit_cost": 50.0},
        ],
        "user_sectors": [
            {"country": "CHN", "sector": "users", "n_firms": 3, "value_added": 4e5, "use": {"ore": 1000.0}},
            {"country": "ROW", "sector": "users", "n_firms": 3, "value_added": 4.8e5, "use": {"ore": 1200.0}},
        ],
        "sourcing": [
            {"destination": "CHN", "good": "ore", "shares": {"CHN": 1.0}},
            {"destination": "ROW", "good": "ore", "shares": {"CHN": 5 / 6, "AUS": 1 / 6}},
        ],
        "measures": [
            {
                "type": "export_quota",
                "imposer": "CHN",
                "goods": ["ore"],
                "start": "2020-04-01",
                "end": "2021-06-30",
                "quantity": quota_share * BASELINE_EXPORTS * months / 12,
            }
        ],
    }


def _run(theta: float, quota_share: float = QUOTA_SHARE):
    cfg = helpers.minimal_cfg(["output.figures=false", f"model.long_run_thrift={theta}"])
    cfg.scenario = OmegaConf.merge(OmegaConf.structured(ScenarioConfig), _world(quota_share))
    return run(cfg, seed=1, keep_model=True)


def _series(result, variable: str, country: str) -> pd.Series:
    return helpers.pivot(result.timeseries, variable, "ore")[country]


def _peak_paid(result) -> float:
    return float(_series(result, "price_paid", "ROW").max())


def test_long_run_thrift_lowers_the_peak_of_a_price_spike_the_more_the_larger_it_is():
    """Stated expectation: the spike in ROW's price is at least 5x baseline without the mechanism, and each
    step up in ``long_run_thrift`` (0, 0.5, 1, 2) lowers its peak; before the quota nothing differs."""
    runs = {theta: _run(theta) for theta in (0.0, 0.5, 1.0, 2.0)}
    peaks = [_peak_paid(runs[theta]) for theta in sorted(runs)]
    base = float(_series(runs[0.0], "price_paid", "ROW").iloc[0])
    assert 5.0 * base <= peaks[0] < 30.0 * base, f"no spike to test on: peak {peaks[0] / base:.2f}x"
    assert all(b < a * (1 - 1e-3) for a, b in zip(peaks, peaks[1:], strict=False)), peaks
    for theta, result in runs.items():
        pre = _series(result, "price_paid", "ROW").iloc[:APRIL]
        np.testing.assert_allclose(pre, base, rtol=1e-9, err_msg=f"long_run_thrift={theta}")


def test_long_run_thrift_saves_through_the_requirement_not_through_output_or_stock():
    """A firm that buys less because it thrifts needs less: ROW's requirement index falls below 1 during
    the spike (and never before it), its output loss is not larger than without the mechanism, and its
    stock at the spike's end is not run down further than without it."""
    off, on = _run(0.0), _run(1.0)
    req_on = _series(on, "requirement_index", "ROW")
    np.testing.assert_allclose(req_on.iloc[: APRIL + 1], 1.0, rtol=0, atol=1e-12)  # lagged: first effect in May
    assert req_on.iloc[APRIL + 1 :].max() < 1.0
    loss_off = helpers.pivot(off.timeseries, "output_loss")["ROW"].sum()
    loss_on = helpers.pivot(on.timeseries, "output_loss")["ROW"].sum()
    assert loss_on <= loss_off * (1 + 1e-9)
    assert _series(on, "inventory", "ROW").iloc[-1] >= _series(off, "inventory", "ROW").iloc[-1] * (1 - 1e-9)


def test_at_zero_the_model_is_the_one_without_the_mechanism(monkeypatch):
    """``long_run_thrift = 0`` gives the run of the code without the mechanism (requirements from
    substitution alone), to tolerance."""
    with_zero = _run(0.0)
    monkeypatch.setattr(CoercionModel, "_requirement_factor", lambda self: self.requirement_multiplier)
    without = _run(1.0)  # the parameter is ignored once the mechanism is taken out
    a, b = with_zero.timeseries, without.timeseries
    key = ["date", "country", "good", "variable"]
    merged = a.merge(b, on=key, suffixes=("_zero", "_without"), how="outer")
    np.testing.assert_allclose(merged.value_zero, merged.value_without, rtol=1e-9, atol=1e-9)


@helpers.model_runs()
@given(theta=st.floats(0.05, 2.0), quota_share=st.floats(0.7, 0.95))
def test_long_run_thrift_never_raises_a_price_and_keeps_requirements_between_floor_and_baseline(theta, quota_share):
    """Property over the parameter and the size of the cut: with long-run thrift no month's price paid by
    ROW is above the run without it, and the requirement index stays in [substitution floor, 1]."""
    off, on = _run(0.0, quota_share), _run(theta, quota_share)
    p_off, p_on = _series(off, "price_paid", "ROW"), _series(on, "price_paid", "ROW")
    assert np.all(p_on.to_numpy() <= p_off.to_numpy() * (1 + 1e-6))
    req = _series(on, "requirement_index", "ROW").to_numpy()
    floor = float(on.model.params.substitution_floor)
    assert np.all((req >= floor - 1e-12) & (req <= 1.0 + 1e-12))
