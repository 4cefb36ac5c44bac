"""Policy-comparison figures on synthetic results tables with the collector's column names."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.reporting.figures import save_figure
from sim.reporting.sweep_figures import cost_effectiveness_frontier, frontier_table, outcome_heatmap, price_fan_chart

MONTHS = (0.0, 3.0, 6.0)
SPEEDS = (1.0, 2.0)


def lever_results(seeds=(0, 1)) -> pd.DataFrame:
    """Loss falls with both levers; cost rises with both (stockpile dearer per unit of loss avoided)."""
    rows = []
    for months, speed, seed in itertools.product(MONTHS, SPEEDS, seeds):
        loss = 100e9 - 8e9 * months - 10e9 * (speed - 1) + seed * 1e9
        cost = 3e9 * months + 2e9 * (speed - 1)
        rows.append(
            {
                "job": str(len(rows)),
                "policy.stockpile.months": months,
                "policy.diversification.speed": speed,
                "seed": seed,
                "status": "ok",
                "error": None,
                "output_loss.JPN": loss,
                "output_loss_share.JPN": loss / 1e12,
                "policy_cost.total.JPN": cost,
            }
        )
    rows.append(
        {
            "job": "99",
            "policy.stockpile.months": 6.0,
            "policy.diversification.speed": 2.0,
            "seed": 2,
            "status": "failed",
            "error": "x",
            "output_loss.JPN": np.nan,
            "output_loss_share.JPN": np.nan,
            "policy_cost.total.JPN": np.nan,
        }
    )
    df = pd.DataFrame(rows)
    df.attrs["override_columns"] = ["policy.stockpile.months", "policy.diversification.speed", "seed"]
    return df


def test_frontier_table():
    t = frontier_table(lever_results(), country="JPN")
    assert len(t) == len(MONTHS) * len(SPEEDS)
    base = t[(t["policy.stockpile.months"] == 0) & (t["policy.diversification.speed"] == 1)].iloc[0]
    assert base["damage_avoided"] == 0 and base["cost"] == 0 and base["levers"] == "none"
    both = t[(t["policy.stockpile.months"] == 6) & (t["policy.diversification.speed"] == 2)].iloc[0]
    assert both["damage_avoided"] == pytest.approx(8e9 * 6 + 10e9)  # the failed row is left out
    assert both["levers"] == "stockpile + diversification"
    div = t[(t["policy.stockpile.months"] == 0) & (t["policy.diversification.speed"] == 2)].iloc[0]
    assert div["levers"] == "diversification" and div["on_frontier"]
    # On the frontier: nothing cheaper avoids as much.
    for _, row in t[t["on_frontier"]].iterrows():
        cheaper = t[t["cost"] < row["cost"]]
        assert (cheaper["damage_avoided"] < row["damage_avoided"]).all()
    # Off it: something no dearer avoids at least as much.
    for _, row in t[~t["on_frontier"]].iterrows():
        no_dearer = (t["cost"] <= row["cost"]) & (t["damage_avoided"] >= row["damage_avoided"])
        dominating = t[no_dearer & (t.index != row.name)]
        assert len(dominating) > 0


def test_frontier_needs_a_baseline_and_columns():
    res = lever_results()
    with pytest.raises(ValueError, match="every lever off"):
        frontier_table(res[res["policy.stockpile.months"] > 0])
    with pytest.raises(KeyError, match="policy_cost.total.USA"):
        frontier_table(res, country="USA")
    with pytest.raises(KeyError, match="no lever columns"):
        frontier_table(res.drop(columns=["policy.stockpile.months", "policy.diversification.speed"]))


def test_heatmap_and_frontier_figures(tmp_path):
    res = lever_results()
    fig = outcome_heatmap(
        res, x="policy.diversification.speed", y="policy.stockpile.months", outcome="output_loss_share.JPN"
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    assert image.shape == (len(MONTHS), len(SPEEDS))
    # Mean over the two seeds, in percent: row = months, column = speed.
    assert image[0, 0] == pytest.approx((100e9 + 0.5e9) / 1e12 * 100)
    assert image[2, 1] == pytest.approx((100e9 - 48e9 - 10e9 + 0.5e9) / 1e12 * 100)
    assert len(ax.texts) == image.size
    paths = save_figure(fig, tmp_path / "heat")
    paths += save_figure(cost_effectiveness_frontier(res), tmp_path / "frontier")
    assert [p.name for p in paths] == ["heat.png", "heat.pdf", "frontier.png", "frontier.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(KeyError, match="policy.missing"):
        outcome_heatmap(res, x="policy.missing", y="policy.stockpile.months", outcome="output_loss_share.JPN")


def test_fan_chart_bands(tmp_path):
    dates = pd.date_range("2010-01-01", periods=12, freq="MS")
    frames = []
    for run in range(20):
        values = 100.0 * (1 + 0.1 * run * np.arange(12) / 11)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "country": "CHN",
                    "good": "ore",
                    "variable": "price_export",
                    "value": values,
                    "job": str(run),
                }
            )
        )
    ts = pd.concat(frames, ignore_index=True)
    fig = price_fan_chart(ts, country="CHN", good="ore")
    ax = fig.axes[0]
    median = [line for line in ax.lines if line.get_label().startswith("median")][0]
    assert median.get_ydata()[-1] == pytest.approx(1 + 0.1 * 9.5)  # relative to the first month
    assert len(ax.collections) == 2  # the 50% and 90% bands
    save_figure(fig, tmp_path / "fan")
    with pytest.raises(ValueError, match="no rows of price_export for JPN/ore"):
        price_fan_chart(ts, country="JPN", good="ore")


def test_heat_map_title_says_one_run_not_mean_over_1_runs():
    from sim.reporting.sweep_figures import _runs_per_cell

    assert _runs_per_cell(1, 1) == "one run per cell"
    assert _runs_per_cell(3, 3) == "mean over 3 runs per cell"
    assert _runs_per_cell(2, 4) == "mean over 2-4 runs per cell"
