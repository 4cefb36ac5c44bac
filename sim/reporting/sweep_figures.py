"""Figures of a sweep: policy comparisons from a results table and price fan charts over replications.

Every function takes a table the collector writes (``results.parquet``, :mod:`sim.experiments.collect`: one row
per job, override columns named by config key, metrics by dotted key) or the time series of a
sweep's jobs (:func:`sim.experiments.collect.load_timeseries`), and returns a :class:`matplotlib.figure.Figure`
in the project style (:func:`sim.reporting.figures.style`); :func:`sim.reporting.figures.save_figure` writes PNG and PDF.

* :func:`outcome_heatmap` -- an outcome (e.g. Japan's output loss) over two swept parameters (e.g.
  stockpile months x diversification speed), averaged over seeds and replications.
* :func:`cost_effectiveness_frontier` -- damage avoided against the levers' cost, one point per
  lever combination, with the frontier of the combinations no cheaper one beats.
* :func:`price_fan_chart` -- a price path over replications: median and 50% / 90% bands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.reporting.figures import style

__all__ = ["LEVER_OFF", "outcome_heatmap", "cost_effectiveness_frontier", "frontier_table", "price_fan_chart"]

#: Lever settings that mean "lever not used" (the baseline of a policy comparison).
LEVER_OFF: dict[str, float] = {"policy.stockpile.months": 0.0, "policy.diversification.speed": 1.0}
_FULL_WIDTH = 7.2


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    if "status" in results.columns:
        results = results[results["status"] == "ok"]
    if results.empty:
        raise ValueError("results: no completed jobs (status 'ok'); allowed: a results table with completed jobs")
    return results


def _need(results: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise KeyError(f"results: columns {missing!r} are missing; allowed: override or metric columns")


def _label(key: str, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(key, key)


def outcome_heatmap(
    results: pd.DataFrame,
    *,
    x: str,
    y: str,
    outcome: str,
    labels: Mapping[str, str] | None = None,
    percent: bool | None = None,
    cmap: str = "viridis_r",
) -> Figure:
    """One outcome over two swept parameters: cells show the mean over seeds and replications.

    Args:
        results: A results table (only ``status == "ok"`` rows are used).
        x: Override column along the horizontal axis (``policy.diversification.speed``).
        y: Override column along the vertical axis (``policy.stockpile.months``).
        outcome: Metric column (``output_loss_share.JPN``).
        labels: Display names for column keys.
        percent: Show values as percentages (default: when the outcome is a share).
        cmap: Colour map (reversed viridis: dark = small loss).
    """
    results = _ok(results)
    _need(results, [x, y, outcome])
    table = results.pivot_table(index=y, columns=x, values=outcome, aggfunc="mean").sort_index().sort_index(axis=1)
    if percent is None:
        percent = "share" in outcome
    values = table.to_numpy(dtype=float) * (100.0 if percent else 1.0)
    with style():
        fig = Figure(figsize=(_FULL_WIDTH / 2, _FULL_WIDTH / 2 * 0.8))
        ax = fig.subplots()
        ax.grid(False)
        im = ax.imshow(values, origin="lower", aspect="auto", cmap=cmap)
        ax.set_xticks(np.arange(table.shape[1]), [f"{v:g}" for v in table.columns])
        ax.set_yticks(np.arange(table.shape[0]), [f"{v:g}" for v in table.index])
        ax.set_xlabel(_label(x, labels))
        ax.set_ylabel(_label(y, labels))
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                colour = "white" if v > mid else "black"  # reversed map: large values are dark
                ax.text(
                    j,
                    i,
                    f"{v:.2f}" if percent or abs(v) < 100 else f"{v:.3g}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color=colour,
                )
        bar = fig.colorbar(im, ax=ax, shrink=0.9)
        bar.set_label(_label(outcome, labels) + (" (%)" if percent else ""))
        n = results.groupby([y, x]).size()
        ax.set_title(_runs_per_cell(int(n.min()), int(n.max())))
    return fig


def _runs_per_cell(fewest: int, most: int) -> str:
    """What a cell of a heat map shows: ``one run per cell``, ``mean over 3 runs per cell``,
    ``mean over 2-4 runs per cell``.
    """
    if most <= 1:
        return "one run per cell"
    return f"mean over {fewest}" + (f"-{most}" if most != fewest else "") + " runs per cell"


def _lever_columns(results: pd.DataFrame, off: Mapping[str, float]) -> list[str]:
    return [c for c in off if c in results.columns]


def frontier_table(
    results: pd.DataFrame,
    *,
    country: str = "JPN",
    off: Mapping[str, float] | None = None,
    damage: str | None = None,
    cost: str | None = None,
) -> pd.DataFrame:
    """Lever combinations with their mean damage avoided and cost (over seeds and replications).

    Damage avoided is the baseline's damage (every lever off, see :data:`LEVER_OFF`) minus the
    combination's; ``levers`` names the levers in use; ``on_frontier`` marks combinations that avoid
    more damage than every cheaper one.

    Args:
        results: A results table.
        country: Country whose damage and cost are compared.
        off: Lever columns and their "off" values (default :data:`LEVER_OFF`; absent columns count
            as off).
        damage: Damage column (default ``output_loss.<country>``, US$ over the run).
        cost: Cost column (default ``policy_cost.total.<country>``, US$ over the run).
    """
    results = _ok(results)
    off = dict(LEVER_OFF if off is None else off)
    damage = damage or f"output_loss.{country}"
    cost = cost or f"policy_cost.total.{country}"
    levers = _lever_columns(results, off)
    if not levers:
        raise KeyError(f"results: no lever columns; allowed: at least one of {list(off)!r}")
    _need(results, [damage, cost])
    means = results.groupby(levers, dropna=False)[[damage, cost]].mean().reset_index()
    is_off = np.logical_and.reduce([np.isclose(means[c].astype(float), off[c]) for c in levers])
    if not is_off.any():
        raise ValueError(
            f"results: no baseline run with every lever off ({ {c: off[c] for c in levers} }); "
            "allowed: a sweep that includes the lever-free combination"
        )
    baseline = float(means.loc[is_off, damage].iloc[0])
    means["damage_avoided"] = baseline - means[damage]
    means["cost"] = means[cost]
    names = [c.split(".")[1] if c.count(".") >= 2 else c for c in levers]
    means["levers"] = [
        " + ".join(n for n, c in zip(names, levers, strict=True) if not np.isclose(float(row[c]), off[c])) or "none"
        for _, row in means.iterrows()
    ]
    order = means.sort_values(["cost", "damage_avoided"], ascending=[True, False])
    best = -np.inf
    on = pd.Series(False, index=means.index)
    for idx, row in order.iterrows():
        if row["damage_avoided"] > best:
            on[idx] = True
            best = row["damage_avoided"]
    means["on_frontier"] = on
    return means


def cost_effectiveness_frontier(
    results: pd.DataFrame,
    *,
    country: str = "JPN",
    off: Mapping[str, float] | None = None,
    damage: str | None = None,
    cost: str | None = None,
    scale: float | None = None,
    unit: str | None = None,
) -> Figure:
    """Damage avoided against the levers' cost: one marker per lever combination (coloured by the
    levers in use), the frontier as a step line. See :func:`frontier_table` for the arguments;
    ``scale``/``unit`` default to US$ bn, or US$ m when every value is below a billion.
    """
    table = frontier_table(results, country=country, off=off, damage=damage, cost=cost)
    if scale is None:
        largest = float(np.nanmax(np.abs(table[["cost", "damage_avoided"]].to_numpy(dtype=float))))
        scale, unit = (1e9, "US$ bn") if largest >= 1e9 else (1e6, "US$ m")
    unit = unit or f"US$ x {scale:g}"
    with style():
        fig = Figure(figsize=(_FULL_WIDTH / 2, _FULL_WIDTH / 2 * 0.8))
        ax = fig.subplots()
        markers = ("o", "s", "^", "D", "v", "P")
        for k, (name, group) in enumerate(table.groupby("levers", sort=False)):
            ax.scatter(
                group["cost"] / scale,
                group["damage_avoided"] / scale,
                marker=markers[k % len(markers)],
                s=16,
                label=name,
                zorder=3,
            )
        front = table[table["on_frontier"]].sort_values("cost")
        ax.step(
            front["cost"] / scale,
            front["damage_avoided"] / scale,
            where="post",
            color="0.3",
            lw=0.8,
            zorder=2,
            label="frontier",
        )
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_xlabel(f"cost of the levers ({unit}, {country})")
        ax.set_ylabel(f"output loss avoided ({unit}, {country})")
        ax.legend(frameon=False, loc="lower right")
    return fig


def price_fan_chart(
    timeseries: pd.DataFrame,
    *,
    variable: str = "price_export",
    country: str,
    good: str,
    relative: bool = True,
    run: str = "job",
    label: str | None = None,
) -> Figure:
    """A price path over replications: median, 50% and 90% bands, and the individual runs faintly.

    Args:
        timeseries: Tidy time series of several runs with a column ``run`` telling them apart (as
            :func:`sim.experiments.collect.load_timeseries` returns).
        variable: The variable drawn (e.g. ``price_export``).
        country: Its country (e.g. ``CHN``).
        good: Its good (e.g. ``ree_light``).
        relative: Show each run's path relative to its first month.
        run: Column identifying the run.
        label: Y-axis label (default from the variable).
    """
    ts = timeseries
    d = ts[(ts["variable"] == variable) & (ts["country"] == country) & (ts["good"] == good)]
    if d.empty:
        raise ValueError(f"timeseries: no rows of {variable} for {country}/{good}; allowed: a recorded series")
    wide = d.pivot_table(index="date", columns=run, values="value", aggfunc="first").sort_index()
    if relative:
        wide = wide / wide.iloc[0]
    q = wide.quantile([0.05, 0.25, 0.5, 0.75, 0.95], axis=1).T
    dates = pd.DatetimeIndex(wide.index)
    with style():
        fig = Figure(figsize=(_FULL_WIDTH / 2, _FULL_WIDTH / 2 * 0.7))
        ax = fig.subplots()
        colour = "#0072B2"
        for col in wide.columns:
            ax.plot(dates, wide[col], color=colour, lw=0.3, alpha=0.25)
        ax.fill_between(dates, q[0.05], q[0.95], color=colour, alpha=0.18, lw=0, label="5-95%")
        ax.fill_between(dates, q[0.25], q[0.75], color=colour, alpha=0.35, lw=0, label="25-75%")
        ax.plot(dates, q[0.5], color=colour, lw=1.2, label=f"median of {wide.shape[1]} runs")
        ax.set_ylabel(label or (f"{variable} / first month" if relative else variable))
        ax.set_title(f"{variable}: {country}, {good}")
        ax.legend(frameon=False, loc="upper right")
    return fig
