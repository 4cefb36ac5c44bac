"""Figures of a run: the coercer's prices, the targets' sourcing and their output losses.

Every function takes the run's tidy tables (``timeseries`` and ``flows``, see :mod:`sim.reporting.recording`)
plus the scenario's coercer and targets, and returns a :class:`matplotlib.figure.Figure` drawn in the
project style (:func:`style`, ``sim/style/coercion.mplstyle``). Figures are built with the
object-oriented API and are not registered with :mod:`matplotlib.pyplot`, so making one changes no
global plotting state and needs no backend; :func:`save_figure` writes the PNG and PDF a paper needs.

* :func:`overview_figure` -- four panels: the coercer's export and domestic prices, the wedge between
  them, each target's share of its imports bought from the coercer, and output losses.
* :func:`history_figure` -- the modelled export-price and import-share paths beside historical
  observations (:func:`load_history` reads them from ``sim/world/data``).

Prices are shown as ratios to their first simulated month (the baseline), import shares in quantity
terms (domestic deliveries left out), output losses as a percentage of baseline monthly value added.
"""

from __future__ import annotations

import contextlib
import io
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
from matplotlib.text import Text

from sim.coercion.sides import EXPORT_MEASURES, IMPORT_MEASURES, measure_kind
from sim.reporting.figure_names import run_figure_names
from sim.world.data import DATA_DIR, resolve_history

__all__ = [
    "STYLE_PATH",
    "DATA_DIR",
    "style",
    "overview_figure",
    "history_figure",
    "load_history",
    "coercer_import_shares",
    "distinct_colors",
    "save_figure",
    "run_figure_names",
    "draw_run_figure",
    "warm_up",
]

#: The project's Matplotlib style sheet.
STYLE_PATH = Path(__file__).resolve().parents[1] / "style" / "coercion.mplstyle"

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


def distinct_colors(n: int) -> list[str]:
    """``n`` colours that can be told apart: the style's colour-blind-safe cycle while it suffices,
    then Matplotlib's ``tab20`` (20 colours, dark and light pairs), then evenly spaced hues.

    Args:
        n: How many colours (goods or countries) are needed.

    Returns:
        ``n`` colours as hex strings, all different.
    """
    cycle = [mpl.colors.to_hex(c) for c in _colors()]
    if n <= len(cycle):
        return cycle[:n]
    if n <= 20:
        tab20 = mpl.colormaps["tab20"].colors
        # Dark members of the pairs first, then the light ones, so the first ten are the most distinct.
        return [mpl.colors.to_hex(c) for c in (list(tab20[0::2]) + list(tab20[1::2]))[:n]]
    return [mpl.colors.to_hex(mpl.colors.hsv_to_rgb((i / n, 0.75, 0.5 + 0.4 * (i % 2)))) for i in range(n)]


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
#: Space between a panel's letter and its title, in points (three spaces of the 8 pt title font).
_TITLE_GAP_PT = 7.6


def _panel_title(ax, letter: str, title: str) -> Text:
    """Title a panel: its letter in bold as the axes' left title, then the title in regular weight.

    The title is an annotation placed after the letter on the same line (both plain text: mathtext
    for the bold letter would be parsed again for every renderer the figure is drawn with, about a
    tenth of a figure's drawing time, and would turn a title holding ``$`` into mathematics). It
    moves with the letter, so Matplotlib's own placement of the title (above an offset text) and the
    layout engine see both.

    Returns:
        The title's text artist (:func:`panel_title` reads a panel's letter and title back).
    """
    mark = ax.set_title(letter, loc="left", fontweight="bold", parse_math=False)
    props = mark.get_fontproperties().copy()
    props.set_weight("normal")
    text = ax.annotate(
        title,
        xy=(1.0, 0.0),
        xycoords=mark,
        xytext=(_TITLE_GAP_PT, 0.0),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontproperties=props,
        color=mark.get_color(),
        annotation_clip=False,
        parse_math=False,  # "US$ m ... US$/t" is text
    )
    text.set_gid("panel-title")
    return text


def panel_title(ax) -> str:
    """A panel's letter and title as one line (``"b   Prices the targets pay"``), for tests and readers."""
    letter = ax.get_title(loc="left")
    titles = [t.get_text() for t in ax.texts if t.get_gid() == "panel-title"]
    return "   ".join([letter, *titles]) if titles else letter


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
    """Months with a measure in force, as merged ``(start, end)`` spans within the run.

    Accepts ``(start, end)`` pairs or the scenario's measures (mappings with ``start`` and ``end``;
    ``end`` None means to the end of the run). Of the measures, only trade measures count
    (:data:`EXPORT_MEASURES`, :data:`IMPORT_MEASURES`, or a mapping without a ``type``): domestic
    instruments, such as a production tax kept for years, would shade the whole run. Overlapping or
    touching spans are merged, so each month is shaded once.
    """
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    if not periods or len(dates) == 0:
        return out
    first, last = dates[0], dates[-1] + pd.offsets.MonthBegin(1)
    trade = EXPORT_MEASURES | IMPORT_MEASURES
    for p in periods:
        if isinstance(p, Mapping) or hasattr(p, "get"):
            if p.get("type") is not None and str(p.get("type")) not in trade:
                continue
            start, end = p.get("start"), p.get("end")
        else:
            start, end = p[0], p[1]
        if start is None:
            continue
        s = max(pd.Timestamp(str(start)), first)
        e = min(pd.Timestamp(str(end)) if end is not None else last, last)
        if e > s:
            out.append((s, e))
    merged: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for s, e in sorted(out):
        if merged and s <= merged[-1][1] + pd.Timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


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
    kind: str | None = None,
) -> Figure:
    """Four-panel overview of an episode of coercion, chosen by the kind of measure.

    An export restriction (quotas, bans, licences, duties on what the coercer sells) hurts the
    targets as buyers; its panels are:
        a. The coercer's export (FOB, solid) and domestic (dashed) price of each good, as a ratio to
           the first simulated month, on a log scale (the gap between them is the export wedge).
        b. The delivered price each target pays for each good (imports and domestic supply
           together), as a ratio to the first month, log scale (line style tells targets apart).
        c. Each target's share of its imports of each good bought from the coercer, in quantity over
           trailing ``share_window`` months.
        d. Output loss of every country with user firms (the coercer dashed) as a percentage of its
           own baseline monthly value added (value added plus output loss in the first month).

    An import ban (bans, informal restrictions and tariffs on what the coercer buys) hurts the
    targets as sellers; its panels are:
        a. Each target's export revenue (FOB) on each good, as a percentage of its first month.
        b. The price each target's producers receive (their domestic price), ratio to the first month.
        c. Redirection: each target's exports of each good to the coercer (dashed) and to everyone
           else (solid), in quantity over trailing ``share_window`` months, as a percentage of its
           baseline exports of the good.
        d. Output loss, as above.

    Goods share one colour across panels (key at the top; distinct colours for any number of goods,
    :func:`distinct_colors`). The months when a trade measure is in force are shaded when
    ``periods`` is given. Targets that trade nothing, or countries without user firms, are named in
    their panel rather than drawn.

    Args:
        timeseries: The run's tidy time-series table.
        flows: The run's tidy flows table.
        coercer: ISO3 code of the coercing country.
        targets: ISO3 codes of the targeted countries.
        goods: Goods to show (default: every good the coercer has a price for).
        periods: Measures to shade: ``(start, end)`` pairs or the scenario's measures (mappings
            with ``type``, ``start`` and ``end``; ``end`` None means to the end of the run).
        share_window: Months in the trailing window of panel c (1: monthly).
        kind: ``export`` or ``import`` panels; by default the kind of the measures in ``periods``
            (:func:`measure_kind`): ``import`` when all are import measures, ``export`` otherwise.

    Returns:
        The figure (not shown and not registered with pyplot).
    """
    coercer = str(coercer)
    targets = [str(t) for t in targets if str(t) != coercer]
    dates = _dates(timeseries)
    if kind is None:
        kind = "import" if measure_kind(periods) == "import" else "export"
    if kind not in ("export", "import"):
        raise ValueError(f"kind: {kind!r} is invalid; allowed: export, import")
    if goods is not None:
        goods = [str(g) for g in goods]
    elif kind == "export":
        goods = _default_goods(timeseries, flows, coercer)
    else:  # what the targets sell: every good of the run
        goods = [g for g in _categories(timeseries["good"]) if g != "all"]

    with style():
        color_of = dict(zip(goods, distinct_colors(len(goods)), strict=True))
        fig = Figure(figsize=(_FULL_WIDTH, 5.0))
        axes = fig.subplots(2, 2, sharex=True)
        ax_a, ax_b, ax_c, ax_d = axes.ravel()
        spans = _periods(periods, dates)
        for ax in axes.ravel():
            _shade(ax, spans)
        shade_key = [Patch(facecolor=_SHADE, label="measure in force")] if spans else []
        if kind == "export":
            _panel_coercer_prices(ax_a, timeseries, coercer, goods, color_of, shade_key)
            _panel_prices_paid(ax_b, timeseries, targets, goods, color_of)
            _panel_sourcing(ax_c, flows, coercer, targets, goods, dates, color_of, share_window)
        else:
            _panel_export_revenue(ax_a, timeseries, targets, goods, dates, color_of, shade_key)
            _panel_prices_received(ax_b, timeseries, targets, goods, color_of)
            _panel_redirection(ax_c, flows, coercer, targets, goods, dates, color_of, share_window)
        _panel_output_loss(ax_d, timeseries, coercer, targets, dates, len(goods))

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


def _target_key(ax, targets: Sequence[str], shown: Sequence[str], extra: Sequence[Any] = ()) -> None:
    """Legend telling targets apart by line style."""
    handles = [
        Line2D([], [], color="#333333", ls=_TARGET_LINESTYLES[targets.index(t) % len(_TARGET_LINESTYLES)], label=t)
        for t in shown
    ]
    if handles or extra:
        ax.legend(handles=[*handles, *extra], loc="best", ncols=min(max(len(handles), 1), 4))


def _panel_coercer_prices(ax, timeseries, coercer, goods, color_of, shade_key) -> None:
    export = _wide(timeseries, "price_export", country=coercer)
    domestic = _wide(timeseries, "price_domestic", country=coercer)
    plotted: list[np.ndarray] = []
    for g in goods:
        for table, ls in ((export, "-"), (domestic, "--")):
            if g in table:
                r = _ratio_to_first(table[g])
                ax.plot(r.index.to_numpy(), r.to_numpy(), color=color_of[g], ls=ls)
                plotted.append(r.to_numpy())
    _ratio_axis(ax, plotted, label="Price / first month")
    _panel_title(ax, "a", f"{coercer} prices")
    key = [
        Line2D([], [], color="#333333", ls="-", label="export (FOB)"),
        Line2D([], [], color="#333333", ls="--", label="domestic"),
        *shade_key,
    ]
    ax.legend(handles=key, loc="best")
    if not plotted:
        _note(ax, f"no {coercer} prices recorded")


def _panel_prices_paid(ax, timeseries, targets, goods, color_of) -> None:
    plotted: list[np.ndarray] = []
    shown: list[str] = []
    for i, t in enumerate(targets):
        paid = _wide(timeseries, "price_paid", country=t)
        for g in goods:
            if g in paid:
                r = _ratio_to_first(paid[g])
                if not np.isfinite(r.to_numpy()).any():
                    continue
                ax.plot(
                    r.index.to_numpy(),
                    r.to_numpy(),
                    color=color_of[g],
                    ls=_TARGET_LINESTYLES[i % len(_TARGET_LINESTYLES)],
                )
                plotted.append(r.to_numpy())
                shown = shown if t in shown else [*shown, t]
    _ratio_axis(ax, plotted, label="Delivered price / first month")
    _panel_title(ax, "b", "Prices the targets pay")
    _target_key(ax, targets, shown)
    missing = [t for t in targets if t not in shown]
    if missing:
        _note(ax, "no purchases: " + ", ".join(missing))


def _panel_sourcing(ax, flows, coercer, targets, goods, dates, color_of, share_window) -> None:
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
            ax.plot(
                s.index.to_numpy(), s.to_numpy(), color=color_of[g], ls=_TARGET_LINESTYLES[i % len(_TARGET_LINESTYLES)]
            )
            drawn = True
        if not drawn:
            missing.append(t)
    ax.set_ylim(0, 1.04)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=1, decimals=0))
    ax.set_ylabel(f"Share of imports from {coercer}")
    window_words = "monthly" if share_window <= 1 else f"trailing {share_window} months"
    _panel_title(ax, "c", f"Targets' sourcing ({window_words})")
    _target_key(ax, targets, [t for t in targets if t not in missing])
    if missing:
        _note(ax, "no imports: " + ", ".join(missing))
    if not targets:
        _note(ax, "no targets")


def _panel_export_revenue(ax, timeseries, targets, goods, dates, color_of, shade_key) -> None:
    shown: list[str] = []
    peak = 100.0
    for i, t in enumerate(targets):
        exports = _wide(timeseries, "exports", country=t).reindex(dates)
        price = _wide(timeseries, "price_export", country=t).reindex(dates)
        for g in goods:
            if g not in exports or g not in price:
                continue
            revenue = (exports[g] * price[g]).fillna(0.0)
            base = revenue.iloc[0] if len(revenue) else 0.0
            if not base > 0:
                continue
            pct = 100.0 * revenue / base
            ax.plot(
                pct.index.to_numpy(),
                pct.to_numpy(),
                color=color_of[g],
                ls=_TARGET_LINESTYLES[i % len(_TARGET_LINESTYLES)],
            )
            peak = max(peak, float(np.nanmax(pct.to_numpy())))
            shown = shown if t in shown else [*shown, t]
    ax.set_ylim(0, min(peak, 400.0) * 1.05)
    ax.axhline(100.0, color="#888888", lw=0.5, zorder=1)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=100, decimals=0))
    ax.set_ylabel("Export revenue, % of first month")
    _panel_title(ax, "a", "Targets' export revenue (FOB)")
    _target_key(ax, targets, shown, shade_key)
    missing = [t for t in targets if t not in shown]
    if missing:
        _note(ax, "no exports: " + ", ".join(missing))


def _panel_prices_received(ax, timeseries, targets, goods, color_of) -> None:
    plotted: list[np.ndarray] = []
    shown: list[str] = []
    for i, t in enumerate(targets):
        received = _wide(timeseries, "price_domestic", country=t)
        for g in goods:
            if g in received:
                r = _ratio_to_first(received[g])
                if not np.isfinite(r.to_numpy()).any():
                    continue
                ax.plot(
                    r.index.to_numpy(),
                    r.to_numpy(),
                    color=color_of[g],
                    ls=_TARGET_LINESTYLES[i % len(_TARGET_LINESTYLES)],
                )
                plotted.append(r.to_numpy())
                shown = shown if t in shown else [*shown, t]
    _ratio_axis(ax, plotted, label="Producer price / first month")
    _panel_title(ax, "b", "Prices the targets' producers receive")
    _target_key(ax, targets, shown)
    missing = [t for t in targets if t not in shown]
    if missing:
        _note(ax, "no producers: " + ", ".join(missing))


def _panel_redirection(ax, flows, coercer, targets, goods, dates, color_of, share_window) -> None:
    shown: list[str] = []
    top = 100.0
    if flows is not None and not flows.empty:
        fl = flows.loc[:, ["date", "good", "origin", "destination", "quantity"]]
        fl = fl.assign(
            good=_as_str(fl["good"]),
            origin=_as_str(fl["origin"]),
            destination=_as_str(fl["destination"]),
            date=fl["date"].astype("datetime64[ns]"),
        )
        fl = fl[(fl["origin"] != fl["destination"]) & fl["origin"].isin(targets) & fl["good"].isin(goods)]
        fl = fl.assign(to=np.where(fl["destination"] == coercer, "coercer", "others"))
        table = fl.groupby(["origin", "good", "to", "date"])["quantity"].sum()
        window = max(int(share_window), 1)
        for t in targets:
            for g in goods:
                paths = {}
                for to in ("coercer", "others"):
                    key = (t, g, to)
                    q = table.loc[key] if key in table.index.droplevel(3) else pd.Series(0.0, index=dates)
                    paths[to] = q.reindex(dates, fill_value=0.0).rolling(window, min_periods=1).mean()
                base = paths["coercer"].iloc[0] + paths["others"].iloc[0] if len(dates) else 0.0
                if not base > 0:
                    continue
                for to, ls in (("coercer", "--"), ("others", "-")):
                    pct = 100.0 * paths[to] / base
                    ax.plot(pct.index.to_numpy(), pct.to_numpy(), color=color_of[g], ls=ls)
                    top = max(top, float(np.nanmax(pct.to_numpy())))
                shown = shown if t in shown else [*shown, t]
    ax.set_ylim(0, min(top, 400.0) * 1.05)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=100, decimals=0))
    ax.set_ylabel("Exports, % of first-month total")
    window_words = "monthly" if share_window <= 1 else f"trailing {share_window}-month mean"
    who = f" of {', '.join(shown)}" if shown else ""
    _panel_title(ax, "c", f"Redirection: exports{who} ({window_words})")
    ax.legend(
        handles=[
            Line2D([], [], color="#333333", ls="--", label=f"to {coercer}"),
            Line2D([], [], color="#333333", ls="-", label="to everyone else"),
        ],
        loc="best",
    )
    missing = [t for t in targets if t not in shown]
    if missing:
        _note(ax, "no exports: " + ", ".join(missing))


def _panel_output_loss(ax, timeseries, coercer, targets, dates, n_goods) -> None:
    """Output loss of the targets, then every other country with user firms, then the coercer
    (dashed), each as a percentage of its own baseline monthly value added.
    """
    loss = _wide(timeseries, "output_loss", by="country").reindex(dates)
    va = _wide(timeseries, "value_added", by="country").reindex(dates)
    others = [c for c in _ordered(va.columns, _categories(timeseries["country"])) if c not in targets and c != coercer]
    countries = [*targets, *others, coercer]
    # Black and grey are the coercer's and the reference lines'; countries take the colours after the goods'.
    colors = [c for c in distinct_colors(n_goods + len(countries) + 2) if c not in ("#000000", "#999999")]
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
        ax.plot(
            pct.index.to_numpy(),
            pct.to_numpy(),
            color="#333333" if is_coercer else colors[n_goods + i],
            ls="--" if is_coercer else "-",
            label=f"{c} (coercer)" if is_coercer else c,
        )
        if np.isfinite(pct.to_numpy()).any():
            peak = max(peak, float(np.nanmax(pct.to_numpy())))
            lowest = min(lowest, float(np.nanmin(pct.to_numpy())))
    top = max(peak * 1.08, 0.5)
    # A little room below zero so a path of no loss is not hidden by the axis line.
    ax.set_ylim(lowest * 1.08 if lowest < 0 else -0.02 * top, top)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=100, decimals=0 if top >= 5 else None))
    ax.set_ylabel("% of own baseline monthly\nvalue added")
    _panel_title(ax, "d", "Output loss by country")
    if ax.get_lines():
        ax.legend(loc="best", ncols=2 if len(ax.get_lines()) > 4 else 1)
    if no_firms:
        _note(ax, "no user firms: " + ", ".join(no_firms))


# --------------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------------
def load_history(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read a file of historical observations for comparison with a run.

    Args:
        path: A CSV path, or a file name in ``sim/world/data`` (the scenario's ``history`` key). Columns:
            ``series, good, element, date, value, ratio_to_baseline, basis, source, quality``.

    Returns:
        The table with ``date`` parsed; ``attrs["source_file"]`` holds the file name for legends.

    Raises:
        FileNotFoundError: neither the path nor ``sim/world/data/<name>`` exists.
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
    observations of low quality or derived by calculation. The legend has a title only when
    ``source_label`` gives one (a file name says nothing to a reader; the file's ``source`` column
    holds the references).

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
        source_label: Text naming the observations' source, used as the legend's title (default:
            none).

    Returns:
        The figure (not shown and not registered with pyplot).
    """
    if not isinstance(history, pd.DataFrame):
        history = load_history(history)
    coercer = str(coercer)
    goods = [str(g) for g in goods]
    dates = _dates(timeseries)

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
        fig.legend(handles=key, loc="outside lower center", ncols=4, title=source_label)
    return fig


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------
#: Metadata that keeps output byte-stable across runs (no timestamps).
_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}

#: OpenType tables left out of the fonts embedded in a PDF. A PDF places each glyph by its index and
#: position, so no viewer reads the fonts' layout tables (ligatures, kerning pairs, mark positioning,
#: maths layout); subsetting them (decompiling DejaVu Sans's large GSUB and GPOS tables) was most of
#: the time a PDF took to save. The glyph outlines, metrics, hinting and names are kept, so the text
#: stays Type 42 (TrueType) and editable, and looks the same.
_PDF_FONT_DROP_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern")


def _subset_without_layout(fontfile, glyphs):
    """Matplotlib's glyph subsetting for an embedded TrueType font, without the layout tables
    (:data:`_PDF_FONT_DROP_TABLES`); the same options otherwise.
    """
    from fontTools import subset
    from matplotlib.backends import _backend_pdf_ps

    options = subset.Options(glyph_names=True, recommended_glyphs=True, layout_closure=False)
    options.drop_tables += [*_SUBSET_DROP_EXTRA, *_PDF_FONT_DROP_TABLES]
    options.layout_features = []
    options.font_number = getattr(fontfile, "face_index", 0)
    font = subset.load_font(fontfile, options)
    for tag in _PDF_FONT_DROP_TABLES:  # before subsetting: fontTools would decompile them first
        if tag in font:
            del font[tag]
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(gids=glyphs)
    subsetter.subset(font)
    return _backend_pdf_ps.SubsetResults(font, subsetter.glyph_index_map)._as_cm()


#: Tables Matplotlib itself leaves out of its subsets (``matplotlib.backends._backend_pdf_ps``).
_SUBSET_DROP_EXTRA = (
    "FFTM", "PfEd", "BDF", "meta", "MERG", "TSIV", "Zapf", "bdat", "bloc", "cidg", "fdsc", "feat", "fmtx",
    "fond", "just", "kerx", "ltag", "morx", "trak", "xref",
)  # fmt: skip


@contextlib.contextmanager
def _light_pdf_fonts() -> Iterator[None]:
    """Subset the PDF's fonts without their layout tables (:func:`_subset_without_layout`) while the
    block runs, where this Matplotlib subsets as expected; otherwise leave its subsetting alone.
    """
    from matplotlib.backends import _backend_pdf_ps

    original = getattr(_backend_pdf_ps, "get_glyphs_subset", None)
    usable = original is not None and hasattr(_backend_pdf_ps, "SubsetResults")
    if usable:
        _backend_pdf_ps.get_glyphs_subset = _subset_without_layout
    try:
        yield
    finally:
        if usable:
            _backend_pdf_ps.get_glyphs_subset = original


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
        with style(), _light_pdf_fonts():
            bbox = _freeze_layout(fig)
            for fmt in formats:
                target = base.parent / f"{base.name}.{fmt}"
                fd, tmp = tempfile.mkstemp(prefix=f".{base.name}.", suffix=f".{fmt}.tmp", dir=base.parent)
                try:
                    os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
                    with os.fdopen(fd, "wb") as fh:
                        if fmt == "png":
                            _save_png(fig, fh, bbox)
                        else:
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


#: zlib level of the PNGs: 3 writes an opaque figure about as small as Matplotlib's RGBA at level 6,
#: in less than half the time.
_PNG_COMPRESS_LEVEL = 3


def _save_png(fig: Figure, fh, bbox) -> None:
    """Write the figure as PNG at ``savefig.dpi``, cut to ``bbox`` (inches), without an alpha channel
    where every pixel is opaque (the style's white background).

    The pixels are Matplotlib's Agg rendering, exactly as ``savefig(format="png")`` writes them; only
    the encoding changes: an opaque figure is stored as RGB, not RGBA, and compressed at
    :data:`_PNG_COMPRESS_LEVEL` (encoding was about a quarter of a PNG's saving time). A figure with
    transparent pixels, or a buffer of another size than expected, is saved by Matplotlib as it is.
    """
    from PIL import Image, PngImagePlugin

    dpi = mpl.rcParams["savefig.dpi"]
    if not isinstance(dpi, int | float):  # "figure": the figure's own
        dpi = fig.dpi
    buffer = io.BytesIO()
    fig.savefig(buffer, format="rgba", bbox_inches=bbox, dpi=dpi)
    # The size Matplotlib gives its Agg canvas for a figure cut to ``bbox`` at ``dpi``.
    width, height = int(bbox.width * dpi), int(bbox.height * dpi)
    raw = buffer.getbuffer()
    if raw.nbytes != width * height * 4:
        fig.savefig(fh, format="png", metadata=_METADATA["png"], bbox_inches=bbox, dpi=dpi)
        return
    rgba = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)
    image = Image.frombuffer("RGBA", (width, height), raw, "raw", "RGBA", 0, 1)
    if rgba[..., 3].min() == 255:  # opaque: no alpha channel to store
        image = image.convert("RGB")
    # No text chunks (Matplotlib's "Software" is left out, as _METADATA asks), the resolution kept.
    image.save(fh, format="png", dpi=(dpi, dpi), compress_level=_PNG_COMPRESS_LEVEL, pnginfo=PngImagePlugin.PngInfo())


def _freeze_layout(fig: Figure):
    """Lay the figure out once for every format it is saved in, and return its tight bounding box.

    The style's constrained layout and tight bounding box would otherwise each redo the layout and
    draw the whole figure again for every file (about three full draws per format). Here the layout
    engine runs once (it measures the artists' extents; nothing is drawn); it is then switched off,
    so the axes keep those positions, and the tight box (padded by ``savefig.pad_inches``) is
    measured once.

    The ticks are frozen too: once the layout is fixed, so are the view limits, and every later
    draw would ask the same locators (date rules, log locators) for the same ticks and format the
    same labels again. Each axis gets a fixed locator and formatter holding exactly the ticks,
    labels and offset text its own locator and formatter gave, so the files come out the same; and the
    titles keep the positions the layout gave them.
    """
    dpi = mpl.rcParams["savefig.dpi"]
    if isinstance(dpi, int | float):
        # Measure text at the resolution the PNG is written at: small text hinted at the screen's
        # 100 dpi is narrower than at 300, and a box measured there clips long tick labels.
        fig.set_dpi(dpi)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)  # the layout needs the artists' extents, not a draw of the whole figure
    fig.set_layout_engine("none")
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            _freeze_ticks(axis)
            _freeze_label(axis)
        # Keep the titles where this draw placed them (above any offset text of the y axis): every
        # later draw would otherwise measure the axes' tick labels again to place them, the same way.
        # The attribute is Matplotlib's own switch, set by ``set_title(y=...)``; older versions lack it.
        if getattr(ax, "_autotitlepos", None) is not None:
            ax._autotitlepos = False
    bbox = fig.get_tightbbox(fig._get_renderer())
    return bbox.padded(mpl.rcParams["savefig.pad_inches"])


def _freeze_label(axis) -> None:
    """Pin an axis label where the layout put it, in axes coordinates (as ``set_label_coords`` does).

    Matplotlib otherwise places the label again in every draw, beside the bounding box of the axis's
    tick labels, which it measures anew (a tenth of a figure's drawing time); with the ticks frozen,
    that box, and so the label's place, no longer changes. The place is kept in axes coordinates, so
    it holds at the PDF's resolution too.
    """
    ax = axis.axes
    x, y = axis.label.get_position()
    to_axes = ax.transAxes.inverted()
    if axis is ax.yaxis:  # x in display units beside the tick labels, y in axes coordinates
        x = float(to_axes.transform((x, 0.0))[0])
    else:  # the x axis: x in axes coordinates, y in display units below the tick labels
        y = float(to_axes.transform((0.0, y))[1])
    axis.set_label_coords(x, y)


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


# --------------------------------------------------------------------------------------------------
# The figures of one run, drawn by name (in this process or in a worker process)
# --------------------------------------------------------------------------------------------------
def draw_run_figure(
    name: str,
    timeseries: pd.DataFrame,
    flows: pd.DataFrame,
    scenario: Mapping[str, Any],
    figdir: str | os.PathLike,
) -> list[Path]:
    """Draw one of a run's figures and save it as ``figdir/<name>.png`` and ``.pdf``.

    The same call serves a run drawing its figures one after another and the worker processes of
    the command, which draw them side by side (see :mod:`sim.cli`): it needs only the run's tables
    and its scenario as a plain mapping, both of which pickle.

    Args:
        name: ``overview`` or ``history`` (:func:`run_figure_names`).
        timeseries: The run's tidy time-series table.
        flows: The run's tidy flows table.
        scenario: The scenario as a plain mapping (``coercer``, ``targets``, ``goods``, ``measures``,
            ``history``).
        figdir: Folder of the figures.

    Returns:
        The paths written (PNG, then PDF).

    Raises:
        ValueError: an unknown figure name.
    """
    coercer = str(scenario["coercer"])
    targets = [str(t) for t in scenario.get("targets") or []]
    stem = Path(figdir) / name
    if name == "overview":
        fig = overview_figure(
            timeseries, flows, coercer=coercer, targets=targets, periods=scenario.get("measures") or None
        )
    elif name == "history":
        goods = [str(g["id"]) for g in scenario.get("goods") or []]
        history = load_history(str(scenario["history"]))
        fig = history_figure(timeseries, history, coercer=coercer, goods=goods, flows=flows, targets=targets)
    else:
        raise ValueError(f"unknown figure {name!r}; allowed: overview, history")
    return save_figure(fig, stem)


def warm_up() -> None:
    """Load what drawing and saving a figure needs (the Agg and PDF backends, the fonts, the mathtext
    parser, the font subsetter) by saving a tiny figure into memory.

    A worker process calls this while the run is still simulating, so the figures are drawn at once
    when the tables arrive.
    """
    import io
    import logging

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # it logs each pruned table at INFO
    with style(), _light_pdf_fonts():
        fig = Figure(figsize=(2.0, 1.2))
        ax = fig.subplots()
        ax.plot([0.0, 1.0], [1.0, 2.0])
        _panel_title(ax, "a", "0123456789%")
        for fmt in ("png", "pdf"):
            fig.savefig(io.BytesIO(), format=fmt, metadata=_METADATA.get(fmt))
    _close(fig)
