"""The rare_earth_2010 calibration case: MODEL.md's properties, asserted from a default run's outputs.

Default settings, seed 1, through the same API the command line uses. Each property is checked
from the tables a researcher would read (timeseries, flows, metrics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim

GOODS = ("ree_light", "ree_heavy")


@pytest.fixture(scope="module")
def run():
    return sim.run("rare_earth_2010", seed=1)


def _series(ts: pd.DataFrame, variable: str, country: str, good: str) -> pd.Series:
    sel = ts[(ts.variable == variable) & (ts.country == country) & (ts.good == good)]
    return sel.set_index("date")["value"].sort_index()


def _japan_china_share(flows: pd.DataFrame, year: int) -> float:
    f = flows[(flows.destination == "JPN") & (flows.origin != "JPN") & (flows.date.dt.year == year)]
    total = f.quantity.sum()
    return float(f[f.origin == "CHN"].quantity.sum() / total)


@pytest.mark.parametrize("good", GOODS)
def test_export_price_peaks_at_5_to_30_times_2009(run, good):
    pe = _series(run.timeseries, "price_export", "CHN", good)
    ratio = pe.max() / pe.loc["2009"].mean()
    assert 5.0 <= ratio <= 30.0, f"{good}: peak export price {ratio:.1f}x its 2009 level"


@pytest.mark.parametrize("good", GOODS)
def test_export_price_peak_follows_the_2010_cut(run, good):
    """The spike is caused by the measures: no rise before July 2010, peak before 2013."""
    pe = _series(run.timeseries, "price_export", "CHN", good)
    assert np.allclose(pe.loc[:"2010-06"], pe.iloc[0], rtol=1e-8)
    peak = pe.idxmax()
    assert pd.Timestamp("2010-07-01") <= peak < pd.Timestamp("2013-01-01")


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Known gap: the model's peak falls in Dec 2010, not 2011-1H2012. With the quotas as issued, "
        "the second-half-2010 batch (plus unused first-half licences) is the tightest monthly rate of "
        "any period; the historical 2011 surge also raised prices inside China, a domestic supply "
        "tightening the reference data give no numbers for. See docs/ODD.md, calibration status."
    ),
)
@pytest.mark.parametrize("good", GOODS)
def test_export_price_peaks_in_2011_or_first_half_2012(run, good):
    peak = _series(run.timeseries, "price_export", "CHN", good).idxmax()
    assert pd.Timestamp("2011-01-01") <= peak <= pd.Timestamp("2012-06-01")


@pytest.mark.parametrize("good", GOODS)
def test_export_domestic_wedge_is_large_at_peak_and_narrows(run, good):
    pe = _series(run.timeseries, "price_export", "CHN", good)
    pdm = _series(run.timeseries, "price_domestic", "CHN", good)
    wedge = pe / pdm
    peak = pe.idxmax()
    assert wedge.loc[peak] >= 2.0
    assert wedge.loc["2013":].max() < 0.5 * wedge.loc[peak]
    assert wedge.iloc[-1] == pytest.approx(1.0)  # quotas and duties abolished in 2015


def test_japan_china_share_near_90_percent_in_2009_and_at_most_70_by_2019(run):
    assert 0.85 <= _japan_china_share(run.flows, 2009) <= 0.95
    assert _japan_china_share(run.flows, 2019) <= 0.70


def test_japan_loses_output_during_the_crisis(run):
    loss = _series(run.timeseries, "output_loss", "JPN", "all")
    assert loss.loc[:"2010-06"].abs().max() == pytest.approx(0.0, abs=1e-6)
    assert loss.loc["2010-07":"2012-12"].max() > 0.0
    assert run.metrics["output_loss_share.JPN"] > 0.0


def test_lynas_capacity_arrives_years_after_its_financing(run):
    cap = _series(run.timeseries, "capacity", "AUS", "ree_light")
    assert cap.loc[:"2012-06"].max() == 0.0
    first = cap[cap > 0].index[0]
    assert first >= pd.Timestamp("2012-07-01")
    assert cap.iloc[-1] > 0.8 * cap.max()


def test_the_run_converges_everywhere(run):
    assert run.metrics["clearing_max_residual"] <= 1e-10
