"""The rare_earth_2010 calibration case: the design's properties, asserted from a default run's outputs.

The properties are those of docs/sources/model_design.md (section 8); their facts are sourced in
docs/sources/rare_earth_2010.md.

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
    # Rare-earth oxides only (the case's magnet stage trades magnets too, not part of this pattern).
    f = flows[
        (flows.destination == "JPN") & (flows.origin != "JPN") & (flows.date.dt.year == year) & flows.good.isin(GOODS)
    ]
    total = f.quantity.sum()
    return float(f[f.origin == "CHN"].quantity.sum() / total)


def _known_miss(good: str, reason: str):
    """A good the model misses the target for, as docs/ODD.md's calibration table says (strict: the test
    turns red if the model starts meeting it, so the table and this file are updated together)."""
    return pytest.param(good, marks=pytest.mark.xfail(strict=True, reason=f"docs/ODD.md calibration status: {reason}"))


@pytest.mark.parametrize(
    "good",
    [
        _known_miss("ree_light", "light peak 3.9x (Dec 2010), below the 13-26x element range (too low)"),
        "ree_heavy",
    ],
)
def test_export_price_peaks_in_the_13_to_26x_element_range_within_a_year_of_the_cut(run, good):
    """Patterns 1 and the element range: the export price reaches 13-26x its 2009 level (element series;
    ODD: heavy 18.5x in Jul 2011, observed Dy oxide ~26x in Aug 2011; light 3.9x too low) within about a
    year of the July 2010 cut. The heavy peak is in the range since long-run thrift (docs/ODD.md §7.3):
    without it the heavy market sat at the 40x price cap (32.4x)."""
    pe = _series(run.timeseries, "price_export", "CHN", good)
    ratio = pe.loc["2010-07":"2011-07"].max() / pe.loc["2009"].mean()
    assert 13.0 <= ratio <= 26.0, f"{good}: peak export price {ratio:.1f}x its 2009 level"


@pytest.mark.parametrize("good", GOODS)
def test_export_price_peak_follows_the_2010_cut_within_a_year(run, good):
    """The spike is caused by the measures: no rise before July 2010; the peak comes within about a year
    of the cut (ODD: light Dec 2010, heavy Jul 2011)."""
    pe = _series(run.timeseries, "price_export", "CHN", good)
    assert np.allclose(pe.loc[:"2010-06"], pe.iloc[0], rtol=1e-8)
    peak = pe.idxmax()
    assert pd.Timestamp("2010-07-01") <= peak <= pd.Timestamp("2011-07-01")


@pytest.mark.parametrize(
    "good",
    [
        _known_miss(
            "ree_light",
            "light peak in Dec 2010 (3.9x), from the export-quota rent of H2 2010; China's domestic measures "
            "raise the light price inside China only in the month of the Baotou halt (2.1x, Nov 2011)",
        ),
        "ree_heavy",
    ],
)
def test_export_price_peak_falls_in_2011_to_mid_2012(run, good):
    """Issue 12: with China's domestic measures the export-price peak falls in 2011-01..2012-06 (observed:
    element peaks mid-to-late 2011). ODD: heavy Jul 2011 (Ganzhou closures from May 2011); light Dec 2010."""
    peak = _series(run.timeseries, "price_export", "CHN", good).idxmax()
    assert pd.Timestamp("2011-01-01") <= peak <= pd.Timestamp("2012-06-01"), f"{good}: peak {peak:%Y-%m}"


@pytest.mark.parametrize("good", GOODS)
def test_chinas_domestic_price_rises_in_2011_to_at_least_1_5x_its_2009_level(run, good):
    """Issue 12: prices inside China rose in 2011 (docs/sources/china_domestic_supply.md, section 6: Nd oxide
    +400% from May 2011). ODD: 2011 maximum light 2.1x (Nov 2011, the Baotou halt; 2011 mean 1.17x), heavy
    18.5x (Jul 2011; 2011 mean 8.7x)."""
    pd_ = _series(run.timeseries, "price_domestic", "CHN", good)
    ratio = pd_.loc["2011"].max() / pd_.loc["2009"].mean()
    assert ratio >= 1.5, f"{good}: domestic price at most {ratio:.2f}x its 2009 level in 2011"


@pytest.mark.xfail(
    strict=True,
    reason="docs/ODD.md calibration status: the heavy export price averages 1.53x its 2009 level in 2013 "
    "(Q4 2013 up to 4.4x with the state purchases); observed Dy oxide 6.8x at end-2012 and 5.1x at end-2013",
)
def test_heavy_export_price_in_2013_is_at_least_twice_its_2009_level(run):
    """Issue 12: the 2013 average heavy export price is at least twice the 2009 average."""
    pe = _series(run.timeseries, "price_export", "CHN", "ree_heavy")
    ratio = pe.loc["2013"].mean() / pe.loc["2009"].mean()
    assert ratio >= 2.0, f"heavy export price {ratio:.2f}x its 2009 level in 2013"


def _wedge(run, good: str) -> pd.Series:
    pe = _series(run.timeseries, "price_export", "CHN", good)
    return pe / _series(run.timeseries, "price_domestic", "CHN", good)


@pytest.mark.parametrize(
    "good",
    [
        "ree_light",
        _known_miss(
            "ree_heavy",
            "heavy wedge 1.25x (duty only) at the Jul 2011 peak: the scarcity is inside China, the quota does "
            "not bind; below the band, near the ~1.6x observed for Dy",
        ),
    ],
)
def test_export_domestic_wedge_at_the_peak_is_several_times(run, good):
    """Pattern 3: at the peak the export price is several times (here 3-10x; La ~6x observed in Q3 2011)
    the Chinese domestic price."""
    wedge = _wedge(run, good)
    peak = _series(run.timeseries, "price_export", "CHN", good).idxmax()
    assert 3.0 <= wedge.loc[peak] <= 10.0, f"{good}: wedge {wedge.loc[peak]:.1f}x at the peak"


#: Month from which the wedge is back to the duty alone, within 1 % (docs/ODD.md: light from Oct 2011, heavy
#: from May 2011, both with China's domestic measures; checked from the earlier months the test has always
#: used), and the duty-only wedge (1 + duty: 15 % light, 25 % heavy).
DUTY_ONLY_FROM = {"ree_light": ("2011-12", 1.15), "ree_heavy": ("2012-10", 1.25)}


@pytest.mark.parametrize("good", GOODS)
def test_export_domestic_wedge_narrows_to_the_duty_and_closes_when_the_duty_goes(run, good):
    wedge = _wedge(run, good)
    since, duty_only = DUTY_ONLY_FROM[good]
    assert wedge.iloc[0] == pytest.approx(duty_only, rel=1e-9)  # baseline: duty, no rent
    np.testing.assert_allclose(wedge.loc[since:"2015-04"], duty_only, rtol=1e-2)  # the quota rent is gone
    np.testing.assert_allclose(wedge.loc["2015-05":], 1.0, rtol=1e-9)  # duties abolished 1 May 2015


def test_japan_china_share_near_90_percent_in_2009_and_falls_within_a_decade(run):
    """Pattern 4, the part the model meets: about 90 % in 2009 (89.7 %), a large fall by 2019."""
    assert 0.85 <= _japan_china_share(run.flows, 2009) <= 0.95
    assert _japan_china_share(run.flows, 2019) <= 0.70


@pytest.mark.xfail(
    strict=True,
    reason="docs/ODD.md calibration status: Japan's China share falls to 43.7 % by 2019, about 16 points "
    "below the ~60 % observed (Mountain Pass at nameplate; China's dearer heavy supply after 2011)",
)
def test_japan_china_share_about_60_percent_in_2019(run):
    assert 0.55 <= _japan_china_share(run.flows, 2019) <= 0.65


def test_japan_loses_output_from_the_july_2010_cut(run):
    """Pattern 6: no loss before the cut, a loss from July 2010 (ODD: from Jul 2010)."""
    loss = _series(run.timeseries, "output_loss", "JPN", "all")
    assert loss.loc[:"2010-06"].abs().max() == pytest.approx(0.0, abs=1e-6)
    assert loss.loc["2010-07"].iloc[0] > 0.0


@pytest.mark.xfail(
    strict=True,
    reason="docs/ODD.md calibration status: Japan's loss is 0.66 % of value added over 2009-2020 since the "
    "magnet stage (its magnet users, US$4.3bn of Japan's US$5.4bn a year, lose little; 2.9 % before it, with "
    "China's domestic measures and long-run thrift); the 1.5-2.5 % band was the model's value before the "
    "domestic measures (2.0 %), not an observation, so it is kept for the lead to review",
)
def test_japan_output_loss_over_the_run_is_about_2_percent(run):
    assert 0.015 <= run.metrics["output_loss_share.JPN"] <= 0.025


def test_lynas_capacity_arrives_years_after_its_financing(run):
    """Pattern 5: financed Nov 2010, first capacity two years later (Nov 2012), nameplate by mid-2015."""
    cap = _series(run.timeseries, "capacity", "AUS", "ree_light")
    first = cap[cap > 0].index[0]
    assert first == pd.Timestamp("2012-11-01")
    full = cap[cap >= cap.max() * (1 - 1e-9)].index[0]
    assert pd.Timestamp("2015-01-01") <= full <= pd.Timestamp("2015-12-01")
    assert cap.iloc[-1] == pytest.approx(cap.max())


def test_the_run_converges_everywhere(run):
    assert run.metrics["clearing_max_residual"] <= 1e-10
