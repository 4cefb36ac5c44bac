"""Figures of a run: the coercer's prices, the targets' sourcing and their output losses.

Every function takes the run's tidy tables (``timeseries`` and ``flows``, see :mod:`sim.recording`)
plus the scenario's coercer and targets, and returns a :class:`matplotlib.figure.Figure` drawn in the
project style (:func:`style`, ``sim/style/coercion.mplstyle``). Figures are built with the
object-oriented API and are not registered with :mod:`matplotlib.pyplot`, so making one changes no
global plotting state and needs no backend; :func:`save_figure` writes the PNG and PDF a paper needs.

* :func:`overview_figure` -- four panels: the coercer's export and domestic prices, the wedge between
  them, each target's share of its imports bought from the coercer, and output losses.
* :func:`history_figure` -- the modelled export-price and import-share paths beside historical
  observations (:func:`load_history` reads them from ``sim/data``).

Prices are shown as ratios to their first simulated month (the baseline), import shares in quantity
terms (domestic deliveries left out), output losses as a percentage of baseline monthly value added.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.style as mplstyle
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.data import DATA_DIR, resolve_history

__all__ = [
    "STYLE_PATH",
    "DATA_DIR",
    "style",
    "overview_figure",
    "history_figure",
    "load_history",
    "coercer_import_shares",
    "save_figure",
]

#: The project's Matplotlib style sheet.
STYLE_PATH = Path(__file__).resolve().parent / "style" / "coercion.mplstyle"

#: Width of a two-column journal figure (183 mm) in inches.
_FULL_WIDTH = 7.2
#: History qualities drawn with hollow markers (less reliable observations).
_WEAK_QUALITY = frozenset({"low", "derived"})
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
_TARGET_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))
_SHADE = "#ebebeb"


# --------------------------------------------------------------------------------------------------
# Style
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the project figure style for the duration of a ``with`` block.

    The style (``sim/style/coercion.mplstyle``) is a clean sans-serif at 8 pt with thin spines, the
    Okabe-Ito colour-blind-safe colour cycle, constrained layout, and 300 dpi PNG / TrueType-embedded
    PDF output with a tight bounding box. Settings are restored when the block exits.

    Yields:
        None.
    """
    with mplstyle.context(STYLE_PATH):
        yield


def _colors() -> list[str]:
    return list(mpl.rcParams["axes.prop_cycle"].by_key()["color"])


# --------------------------------------------------------------------------------------------------
# Table helpers
# --------------------------------------------------------------------------------------------------
def _as_str(series: pd.Series) -> pd.Series:
    """Country / good codes as plain strings (categoricals compare and pivot without surprises)."""
    return series.astype(str)


def _dates(timeseries: pd.DataFrame) -> pd.DatetimeIndex:
    """The simulated months, in order."""
    return pd.DatetimeIndex(np.unique(timeseries["date"].to_numpy())).astype("datetime64[ns]")


def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    """``values`` deduplicated, in the order of ``order`` first, then as they came."""
    seen = list(dict.fromkeys(str(v) for v in values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def _categories(column: pd.Series) -> list[str]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return [str(c) for c in pd.unique(column)]


def _wide(
    timeseries: pd.DataFrame, variable: str, *, country: str | None = None, good: str | None = None, by: str = "good"
) -> pd.DataFrame:
    """One variable as a table: dates down, goods (or countries) across."""
    mask = timeseries["variable"] == variable
    if country is not None:
        mask &= timeseries["country"] == country
    if good is not None:
        mask &= timeseries["good"] == good
    sub = timeseries.loc[mask, ["date", by, "value"]]
    if sub.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], dtype="datetime64[ns]"))
    sub = sub.assign(**{by: _as_str(sub[by]), "date": sub["date"].astype("datetime64[ns]")})
    return sub.pivot_table(index="date", columns=by, values="value", aggfunc="sum", observed=True, sort=False)


def _ratio_to_first(series: pd.Series) -> pd.Series:
    """A path as a ratio to its first finite, positive value (the baseline month)."""
    s = series.where(series > 0)
    valid = s.dropna()
    if valid.empty:
        return s
    return s / valid.iloc[0]


def _default_goods(timeseries: pd.DataFrame, flows: pd.DataFrame | None, coercer: str) -> list[str]:
    goods_seen = timeseries.loc[
        timeseries["variable"].isin(["price_export", "price_domestic"]) & (timeseries["country"] == coercer), "good"
    ]
    order = _categories(timeseries["good"])
    goods = _ordered(goods_seen, order)
    if not goods and flows is not None and not flows.empty:
        goods = _ordered(flows["good"], _categories(flows["good"]))
    return [g for g in goods if g != "all"]


def coercer_import_shares(
    flows: pd.DataFrame,
    *,
    coercer: str,
    importers: Sequence[str],
    goods: Sequence[str],
    dates: pd.DatetimeIndex | None = None,
    window: int = 12,
    aggregate: bool = False,
) -> dict[tuple[str, str], pd.Series]:
    """Share of each importer's imports that come from the coercer, month by month.

    Shares are in quantity terms and count international flows only (a country's deliveries from its
    own producers are not imports). With ``window > 1`` the share is the ratio of trailing sums over
    that many months (fewer at the start of the run), which smooths stock-building and single-month
    gaps; with ``window = 1`` it is the monthly share.

    Args:
        flows: The run's flows table (``date, good, origin, destination, quantity``).
        coercer: ISO3 code of the coercing exporter.
        importers: Countries whose imports are measured.
        goods: Goods to measure.
        dates: The simulated months (months missing from ``flows`` count as no imports); defaults to
            the months present in ``flows``.
        window: Trailing window in months.
        aggregate: Also return the share over all ``goods`` together, under the good ``"all"``.

    Returns:
        ``{(importer, good): share}`` with NaN in months without imports. Importers that imported
        nothing over the run are left out.
    """
    out: dict[tuple[str, str], pd.Series] = {}
    if flows is None or flows.empty:
        return out
    fl = flows.loc[:, ["date", "good", "origin", "destination", "quantity"]]
    fl = fl.assign(
        good=_as_str(fl["good"]),
        origin=_as_str(fl["origin"]),
        destination=_as_str(fl["destination"]),
        date=fl["date"].astype("datetime64[ns]"),
    )
    fl = fl[
        (fl["origin"] != fl["destination"]) & fl["destination"].isin(list(importers)) & fl["good"].isin(list(goods))
    ]
    if dates is None:
        dates = pd.DatetimeIndex(np.unique(fl["date"].to_numpy()))
    if fl.empty:
        return out
    fl = fl.assign(from_coercer=np.where(fl["origin"] == coercer, fl["quantity"], 0.0))
    total = fl.groupby(["destination", "good", "date"])[["quantity", "from_coercer"]].sum()
    keys: list[tuple[str, list[str]]] = [(g, [g]) for g in goods]
    if aggregate:
        keys.append(("all", list(goods)))
    for importer in importers:
        if importer not in total.index.get_level_values(0):
            continue
        per_importer = total.xs(importer, level=0)
        for label, members in keys:
            rows = per_importer[per_importer.index.get_level_values(0).isin(members)]
            if rows.empty:
                continue
            monthly = rows.groupby(level="date").sum().reindex(dates, fill_value=0.0)
            if window > 1:
                monthly = monthly.rolling(window, min_periods=1).sum()
            tot = monthly["quantity"].to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(tot > 0, monthly["from_coercer"].to_numpy() / np.where(tot > 0, tot, 1.0), np.nan)
            out[(importer, label)] = pd.Series(share, index=dates, name=f"{importer}.{label}")
    return out


# --------------------------------------------------------------------------------------------------
# Axis helpers
# --------------------------------------------------------------------------------------------------
def _panel_title(ax, letter: str, title: str) -> None:
    ax.set_title(rf"$\mathbf{{{letter}}}$   {title}", loc="left")


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def _ratio_axis(ax, values: Iterable[np.ndarray], *, label: str) -> None:
    """Log scale for price ratios, labelled 0.5, 1, 2, 5, 10 ... and never narrower than 0.5-2."""
    ax.set_yscale("log")
    finite = [np.asarray(v, dtype=float) for v in values]
    finite = [v[np.isfinite(v) & (v > 0)] for v in finite]
    finite = [v for v in finite if v.size]
    lo = min([0.5] + [float(v.min()) / 1.1 for v in finite])
    hi = max([2.0] + [float(v.max()) * 1.1 for v in finite])
    ax.set_ylim(_nice_log(lo, down=True), _nice_log(hi, down=False))
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.axhline(1.0, color="#888888", lw=0.5, zorder=1)
    ax.set_ylabel(label)


def _nice_log(x: float, *, down: bool) -> float:
    """The nearest 1, 2 or 5 times a power of ten below (``down``) or above ``x``."""
    k = math.floor(math.log10(x))
    steps = [m * 10.0**e for e in (k - 1, k, k + 1) for m in (1.0, 2.0, 5.0)]
    return max(v for v in steps if v <= x * (1 + 1e-9)) if down else min(v for v in steps if v >= x * (1 - 1e-9))


def _periods(periods: Iterable[Any] | None, dates: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Coercion periods as (start, end) timestamps; accepts tuples or measure mappings."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    if not periods or len(dates) == 0:
        return out
    last = dates[-1] + pd.offsets.MonthBegin(1)
    for p in periods:
        if isinstance(p, Mapping) or hasattr(p, "get"):
            start, end = p.get("start"), p.get("end")
        else:
            start, end = p[0], p[1]
        if start is None:
            continue
        s = pd.Timestamp(str(start))
        e = pd.Timestamp(str(end)) if end is not None else last
        out.append((s, min(e, last)))
    return out


def _shade(ax, spans: list[tuple[pd.Timestamp, pd.Timestamp]]) -> None:
    for s, e in spans:
        ax.axvspan(s, e, color=_SHADE, lw=0, zorder=0)


def _note(ax, text: str) -> None:
    ax.text(0.98, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="#555555")


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


# --------------------------------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------------------------------
def overview_figure(
    timeseries: pd.DataFrame,
    flows: pd.DataFrame,
    *,
    coercer: str,
    targets: Sequence[str],
    goods: Sequence[str] | None = None,
    periods: Iterable[Any] | None = None,
    share_window: int = 12,
) -> Figure:
    """Four-panel overview of an episode of coercion.

    Panels:
        a. The coercer's export (FOB, solid) and domestic (dashed) price of each good, as a ratio to
           the first simulated month, on a log scale.
        b. The coercer's export/domestic price wedge for each good (1 = no wedge; export duties and
           quota rents push it up), log scale.
        c. Each target's share of its imports of each good bought from the coercer, in quantity over
           trailing ``share_window`` months (line style tells targets apart).
        d. Output loss of each target and of the coercer (dashed) as a percentage of its baseline
           monthly value added (value added plus output loss in the first month).

    Goods share one colour across panels a-c (key at the top). Months when a measure is in force are
    shaded when ``periods`` is given. Targets that import nothing, or have no user firms, are noted
    in their panel rather than drawn.

    Args:
        timeseries: The run's tidy time-series table.
        flows: The run's tidy flows table.
        coercer: ISO3 code of the coercing country.
        targets: ISO3 codes of the targeted countries.
        goods: Goods to show (default: every good the coercer has a price for).
        periods: Coercion periods to shade: ``(start, end)`` pairs or the scenario's measures
            (mappings with ``start`` and ``end``; ``end`` None means to the end of the run).
        share_window: Months in the trailing window of panel c (1: monthly shares).

    Returns:
        The figure (not shown and not registered with pyplot).
    """
    coercer = str(coercer)
    targets = [str(t) for t in targets if str(t) != coercer]
    goods = [str(g) for g in goods] if goods is not None else _default_goods(timeseries, flows, coercer)
    dates = _dates(timeseries)

    with style():
        colors = _colors()
        color_of = {g: colors[i % len(colors)] for i, g in enumerate(goods)}
        fig = Figure(figsize=(_FULL_WIDTH, 5.0))
        axes = fig.subplots(2, 2, sharex=True)
        ax_a, ax_b, ax_c, ax_d = axes.ravel()
        spans = _periods(periods, dates)
        for ax in axes.ravel():
            _shade(ax, spans)

        # a: prices as ratios to the first month
        export = _wide(timeseries, "price_export", country=coercer)
        domestic = _wide(timeseries, "price_domestic", country=coercer)
        plotted_a: list[np.ndarray] = []
        for g in goods:
            for table, ls in ((export, "-"), (domestic, "--")):
                if g in table:
                    r = _ratio_to_first(table[g])
                    ax_a.plot(r.index.to_numpy(), r.to_numpy(), color=color_of[g], ls=ls)
                    plotted_a.append(r.to_numpy())
        _ratio_axis(ax_a, plotted_a, label="Price / first month")
        _panel_title(ax_a, "a", f"{coercer} prices")
        style_key = [
            Line2D([], [], color="#333333", ls="-", label="export (FOB)"),
            Line2D([], [], color="#333333", ls="--", label="domestic"),
        ]
        if spans:
            style_key.append(Patch(facecolor=_SHADE, label="measure in force"))
        ax_a.legend(handles=style_key, loc="best")
        if not plotted_a:
            _note(ax_a, f"no {coercer} prices recorded")

        # b: export / domestic wedge
        plotted_b: list[np.ndarray] = []
        for g in goods:
            if g in export and g in domestic:
                dom = domestic[g].where(domestic[g] > 0)
                wedge = (export[g] / dom).reindex(dates)
                ax_b.plot(wedge.index.to_numpy(), wedge.to_numpy(), color=color_of[g])
                plotted_b.append(wedge.to_numpy())
        _ratio_axis(ax_b, plotted_b, label="Export / domestic price")
        _panel_title(ax_b, "b", f"{coercer} export wedge")
        if not plotted_b:
            _note(ax_b, "no export and domestic price pair")

        # c: targets' import share from the coercer
        shares = coercer_import_shares(
            flows, coercer=coercer, importers=targets, goods=goods, dates=dates, window=share_window
        )
        missing: list[str] = []
        for i, t in enumerate(targets):
            drawn = False
            for g in goods:
                s = shares.get((t, g))
                if s is None or not np.isfinite(s.to_numpy()).any():
                    continue
                ax_c.plot(
                    s.index.to_numpy(),
                    s.to_numpy(),
                    color=color_of[g],
                    ls=_TARGET_LINESTYLES[i % len(_TARGET_LINESTYLES)],
                )
                drawn = True
            if not drawn:
                missing.append(t)
        ax_c.set_ylim(0, 1.04)
        ax_c.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=1, decimals=0))
        ax_c.set_ylabel(f"Share of imports from {coercer}")
        window_words = "monthly" if share_window <= 1 else f"trailing {share_window} months"
        _panel_title(ax_c, "c", f"Targets' sourcing ({window_words})")
        shown = [t for t in targets if t not in missing]
        if shown:
            ax_c.legend(
                handles=[
                    Line2D(
                        [],
                        [],
                        color="#333333",
                        ls=_TARGET_LINESTYLES[targets.index(t) % len(_TARGET_LINESTYLES)],
                        label=t,
                    )
                    for t in shown
                ],
                loc="best",
                ncols=min(len(shown), 4),
            )
        if missing:
            _note(ax_c, "no imports: " + ", ".join(missing))
        if not targets:
            _note(ax_c, "no targets")

        # d: output loss as % of baseline monthly value added
        loss = _wide(timeseries, "output_loss", by="country").reindex(dates)
        va = _wide(timeseries, "value_added", by="country").reindex(dates)
        countries = targets + [coercer]
        no_firms: list[str] = []
        peak = 0.0
        lowest = 0.0
        for i, c in enumerate(countries):
            if c not in loss or c not in va:
                no_firms.append(c)
                continue
            base = va[c].iloc[0] + np.nan_to_num(loss[c].iloc[0]) if len(va) else np.nan
            if not np.isfinite(base) or base <= 0:
                no_firms.append(c)
                continue
            pct = 100.0 * loss[c] / base
            is_coercer = c == coercer
            # Countries take the colours after the goods', so a country is not mistaken for a good.
            color = "#333333" if is_coercer else colors[(len(goods) + i) % len(colors)]
            ax_d.plot(
                pct.index.to_numpy(),
                pct.to_numpy(),
                color=color,
                ls="--" if is_coercer else "-",
                label=f"{c} (coercer)" if is_coercer else c,
            )
            if np.isfinite(pct.to_numpy()).any():
                peak = max(peak, float(np.nanmax(pct.to_numpy())))
                lowest = min(lowest, float(np.nanmin(pct.to_numpy())))
        top = max(peak * 1.08, 0.5)
        # A little room below zero so a path of no loss is not hidden by the axis line.
        ax_d.set_ylim(lowest * 1.08 if lowest < 0 else -0.02 * top, top)
        ax_d.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=100, decimals=0 if top >= 5 else None))
        ax_d.set_ylabel("Output loss, % of baseline")
        _panel_title(ax_d, "d", "Output loss")
        if ax_d.get_lines():
            ax_d.legend(loc="best")
        if no_firms:
            _note(ax_d, "no user firms: " + ", ".join(no_firms))

        for ax in axes.ravel():
            _date_axis(ax)
        if goods:
            fig.legend(
                handles=[Line2D([], [], color=color_of[g], label=_pretty(g)) for g in goods],
                loc="outside upper center",
                ncols=min(len(goods), 6),
                title=None,
            )
    return fig


# --------------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------------
def load_history(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read a file of historical observations for comparison with a run.

    Args:
        path: A CSV path, or a file name in ``sim/data`` (the scenario's ``history`` key). Columns:
            ``series, good, element, date, value, ratio_to_baseline, basis, source, quality``.

    Returns:
        The table with ``date`` parsed; ``attrs["source_file"]`` holds the file name for legends.

    Raises:
        FileNotFoundError: neither the path nor ``sim/data/<name>`` exists.
    """
    if path is None:
        path = "rare_earth_2010_history.csv"
    p = resolve_history(path)
    if p is None:
        raise FileNotFoundError(f"history file not found: {path} (looked in the working directory and {DATA_DIR})")
    df = pd.read_csv(p)
    df["date"] = pd.to_datetime(df["date"], errors="coerce")
    df.attrs["source_file"] = p.name
    return df


def _history_rows(history: pd.DataFrame, series: Sequence[str], *, good: str | None, value: str) -> pd.DataFrame:
    h = history[history["series"].astype(str).isin(list(series))]
    if good is not None and "good" in h:
        g = h["good"]
        h = h[g.isna() | (g.astype(str) == good)]
    h = h.assign(date=pd.to_datetime(h["date"], errors="coerce"), _value=pd.to_numeric(h[value], errors="coerce"))
    return h[h["date"].notna() & np.isfinite(h["_value"])]


def _draw_points(ax, rows: pd.DataFrame, *, style_of: dict[str, tuple[str, str]], zorder: float = 3) -> None:
    """Historical observations: marker and colour by element, hollow where quality is weak."""
    for element, grp in rows.groupby(rows["element"].astype(str), sort=False):
        marker, color = style_of[element]
        weak = (
            grp["quality"].astype(str).str.lower().isin(_WEAK_QUALITY) if "quality" in grp else np.zeros(len(grp), bool)
        )
        for is_weak, part in ((False, grp[~weak]), (True, grp[weak])):
            if part.empty:
                continue
            ax.plot(
                part["date"].to_numpy(),
                part["_value"].to_numpy(),
                ls="none",
                marker=marker,
                ms=4,
                mec=color,
                mfc="white" if is_weak else color,
                mew=0.8,
                zorder=zorder,
            )


def _element_key(style_of: dict[str, tuple[str, str]], present: Iterable[str]) -> list[Line2D]:
    return [
        Line2D([], [], ls="none", marker=style_of[e][0], mec=style_of[e][1], mfc=style_of[e][1], ms=4, label=_short(e))
        for e in present
    ]


def _short(text: str, width: int = 30) -> str:
    """Long legend labels wrapped onto a second line (then shortened)."""
    return "\n".join(textwrap.wrap(str(text), width=width, max_lines=2, placeholder="...")) or str(text)


def history_figure(
    timeseries: pd.DataFrame,
    history: pd.DataFrame | str | os.PathLike,
    *,
    coercer: str,
    goods: Sequence[str],
    flows: pd.DataFrame | None = None,
    targets: Sequence[str] | None = None,
    price_series: Sequence[str] = ("export_price", "export_price_index"),
    share_series: Sequence[str] = ("china_share_of_japan_imports",),
    xlim: str | tuple[Any, Any] = "model",
    source_label: str | None = None,
) -> Figure:
    """The modelled episode beside what was observed.

    One panel per good shows the coercer's modelled export price as a ratio to the first simulated
    month (line, log scale) with the historical export-price ratios to their own baselines
    (``ratio_to_baseline``; marker and colour by element, e.g. Dy oxide, Nd metal). Observations
    without a good (market-wide indices) appear in every good's panel. The last panel shows the
    coercer's modelled share of each target's imports of all ``goods`` together, monthly (thin) and
    over a trailing year (thick), with the historical share observations. Hollow markers are
    observations of low quality or derived by calculation; the figure legend names the source file.

    Args:
        timeseries: The run's tidy time-series table.
        history: Historical observations (see :func:`load_history`) or a path / file name to load.
        coercer: ISO3 code of the coercing country.
        goods: Goods to compare (one price panel each).
        flows: The run's flows table, needed for the modelled import shares (without it the share
            panel shows the observations only).
        targets: Countries whose import shares are drawn (default: every country importing the goods
            from the coercer).
        price_series: History series compared with the export price.
        share_series: History series compared with the import share.
        xlim: ``"model"`` (the simulated period; observations outside it are counted, not drawn),
            ``"all"`` (the span of model and observations), or a ``(start, end)`` pair.
        source_label: Text naming the observations' source (default: the file name).

    Returns:
        The figure (not shown and not registered with pyplot).
    """
    if not isinstance(history, pd.DataFrame):
        history = load_history(history)
    coercer = str(coercer)
    goods = [str(g) for g in goods]
    dates = _dates(timeseries)
    source = source_label or history.attrs.get("source_file", "historical observations")

    if flows is not None and targets is None and not flows.empty:
        o, d = _as_str(flows["origin"]), _as_str(flows["destination"])
        targets = _ordered(
            d[(o == coercer) & (d != coercer) & _as_str(flows["good"]).isin(goods)], _categories(flows["destination"])
        )
    targets = [str(t) for t in (targets or []) if str(t) != coercer]

    price_rows = {g: _history_rows(history, price_series, good=g, value="ratio_to_baseline") for g in goods}
    share_rows = _history_rows(history, share_series, good=None, value="value")

    # x range
    if isinstance(xlim, str) and xlim == "model":
        lo, hi = (dates[0] - pd.Timedelta(days=20), dates[-1] + pd.Timedelta(days=20)) if len(dates) else (None, None)
    elif isinstance(xlim, str) and xlim == "all":
        pts = [r["date"] for r in price_rows.values()] + [share_rows["date"]]
        alld = pd.concat([pd.Series(dates)] + [p for p in pts if len(p)], ignore_index=True)
        lo, hi = (
            (alld.min() - pd.DateOffset(months=2), alld.max() + pd.DateOffset(months=2)) if len(alld) else (None, None)
        )
    else:
        lo, hi = pd.Timestamp(xlim[0]), pd.Timestamp(xlim[1])

    def clip(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        if lo is None or rows.empty:
            return rows, 0
        inside = (rows["date"] >= lo) & (rows["date"] <= hi)
        return rows[inside], int((~inside).sum())

    n_panels = len(goods) + 1
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)

    with style():
        colors = _colors()
        elements = _ordered([e for r in [*price_rows.values(), share_rows] for e in r["element"].astype(str)], [])
        # Elements take the colours after the targets' (which colour the share lines).
        offset = max(len(targets), 1)
        style_of = {
            e: (_MARKERS[i % len(_MARKERS)], colors[(offset + i) % len(colors)]) for i, e in enumerate(elements)
        }

        fig = Figure(figsize=(_FULL_WIDTH, 2.45 * nrows + 0.9))
        grid = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
        flat = list(grid.ravel())
        for ax in flat[n_panels:]:
            fig.delaxes(ax)
        letters = "abcdefghijklmnopqrstuvwxyz"
        drawn_elements: list[str] = []

        export = _wide(timeseries, "price_export", country=coercer)
        for k, g in enumerate(goods):
            ax = flat[k]
            values: list[np.ndarray] = []
            if g in export:
                r = _ratio_to_first(export[g])
                ax.plot(r.index.to_numpy(), r.to_numpy(), color="#222222", lw=1.2, zorder=2)
                values.append(r.to_numpy())
            rows, hidden = clip(price_rows[g])
            _draw_points(ax, rows, style_of=style_of)
            drawn_elements += list(rows["element"].astype(str))
            values.append(rows["_value"].to_numpy())
            _ratio_axis(ax, values, label="Export price / baseline" if k % ncols == 0 else "")
            _panel_title(ax, letters[k], f"{_pretty(g)}: {coercer} export price")
            notes = []
            if g not in export:
                notes.append("no modelled price")
            if rows.empty:
                notes.append("no observations in period")
            elif hidden:
                notes.append(f"{hidden} more outside period")
            if notes:
                _note(ax, "; ".join(notes))

        # share panel
        ax = flat[len(goods)]
        shares_monthly = (
            coercer_import_shares(
                flows, coercer=coercer, importers=targets, goods=goods, dates=dates, window=1, aggregate=True
            )
            if flows is not None
            else {}
        )
        shares_annual = (
            coercer_import_shares(
                flows, coercer=coercer, importers=targets, goods=goods, dates=dates, window=12, aggregate=True
            )
            if flows is not None
            else {}
        )
        target_keys: list[Line2D] = []
        missing: list[str] = []
        for i, t in enumerate(targets):
            color = colors[i % len(colors)]
            m, a = shares_monthly.get((t, "all")), shares_annual.get((t, "all"))
            if a is None or not np.isfinite(a.to_numpy()).any():
                missing.append(t)
                continue
            ax.plot(m.index.to_numpy(), m.to_numpy(), color=color, lw=0.6, alpha=0.6)
            ax.plot(a.index.to_numpy(), a.to_numpy(), color=color, lw=1.4)
            target_keys.append(Line2D([], [], color=color, lw=1.4, label=f"{t}: model share"))
        rows, hidden = clip(share_rows)
        _draw_points(ax, rows, style_of=style_of)
        drawn_elements += list(rows["element"].astype(str))
        ax.set_ylim(0, 1.04)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=1, decimals=0))
        ax.set_ylabel(f"Share of imports from {coercer}")
        _panel_title(
            ax,
            letters[len(goods)],
            f"{coercer} share of imports" + (f" ({', '.join(targets)})" if len(targets) == 1 else ""),
        )
        notes = []
        if flows is None:
            notes.append("model shares need flows")
        if missing:
            notes.append("no imports: " + ", ".join(missing))
        if rows.empty:
            notes.append("no observations in period")
        elif hidden:
            notes.append(f"{hidden} more outside period")
        if notes:
            _note(ax, "; ".join(notes))

        for ax in flat[:n_panels]:
            _date_axis(ax)
            if lo is not None:
                ax.set_xlim(lo, hi)

        grey = "#555555"
        key = [Line2D([], [], color="#222222", lw=1.2, label="model export price")]
        key += target_keys
        if target_keys:
            key.append(Line2D([], [], color=grey, lw=0.6, alpha=0.6, label="thin: monthly; thick: trailing 12 months"))
        key += [
            Line2D([], [], ls="none", marker="o", mec=grey, mfc=grey, ms=4, label="observed"),
            Line2D([], [], ls="none", marker="o", mec=grey, mfc="white", ms=4, label="hollow: low quality or derived"),
        ]
        key += _element_key(style_of, _ordered(drawn_elements, elements))
        fig.legend(handles=key, loc="outside lower center", ncols=4, title=f"Observations: {source}")
    return fig


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------
#: Metadata that keeps output byte-stable across runs (no timestamps).
_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure(
    fig: Figure, path_without_suffix: str | os.PathLike, *, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Write a figure as PNG and PDF, each atomically, then close it.

    Each file is written to a temporary file in the target directory and moved into place with
    :func:`os.replace`, so a reader never sees a half-written figure and a failed save leaves the
    previous file intact. The directory is created if needed. Output uses the project style's
    300 dpi and tight bounding box and carries no timestamps. The figure is laid out once for all
    formats (:func:`_freeze_layout`).

    Args:
        fig: The figure to write.
        path_without_suffix: Destination without extension (``.../figures/overview``); a trailing
            ``.png`` or ``.pdf`` is dropped.
        formats: File formats to write.

    Returns:
        The paths written, in the order of ``formats``.
    """
    base = Path(path_without_suffix)
    if base.suffix.lower().lstrip(".") in {f.lower() for f in formats}:
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        with style():
            bbox = _freeze_layout(fig)
            for fmt in formats:
                target = base.parent / f"{base.name}.{fmt}"
                fd, tmp = tempfile.mkstemp(prefix=f".{base.name}.", suffix=f".{fmt}.tmp", dir=base.parent)
                try:
                    os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
                    with os.fdopen(fd, "wb") as fh:
                        fig.savefig(fh, format=fmt, metadata=_METADATA.get(fmt), bbox_inches=bbox)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, target)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                written.append(target)
    finally:
        _close(fig)
    return written


def _freeze_layout(fig: Figure):
    """Lay the figure out once for every format it is saved in, and return its tight bounding box.

    The style's constrained layout and tight bounding box would otherwise each redo the layout and
    draw the whole figure again for every file (about three full draws per format). Here one draw
    without rendering runs the layout engine; the engine is then switched off, so the axes keep
    those positions, and the tight box (padded by ``savefig.pad_inches``) is measured once.

    The ticks are frozen too: once the layout is fixed, so are the view limits, and every later
    draw would ask the same locators (date rules, log locators) for the same ticks and format the
    same labels again. Each axis gets a fixed locator and formatter holding exactly the ticks,
    labels and offset text its own locator and formatter gave, so the files come out the same.
    """
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            _freeze_ticks(axis)
    bbox = fig.get_tightbbox(fig._get_renderer())
    return bbox.padded(mpl.rcParams["savefig.pad_inches"])


def _freeze_ticks(axis) -> None:
    """Replace an axis's locators and formatters by fixed ones with the same ticks and labels."""
    for ticker in (axis.major, axis.minor):
        locs = np.asarray(ticker.locator(), dtype=float)
        formatter = ticker.formatter
        labels = formatter.format_ticks(locs)
        fixed = mticker.FixedFormatter(labels)
        fixed.set_offset_string(formatter.get_offset())
        ticker.locator = mticker.FixedLocator(locs)
        ticker.formatter = fixed
        ticker.locator.set_axis(axis)
        fixed.set_axis(axis)


def _close(fig: Figure) -> None:
    """Release a figure: through pyplot if pyplot manages it, otherwise by clearing it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and getattr(fig.canvas, "manager", None) is not None:
        pyplot.close(fig)
    else:
        fig.clear()
