"""The dashboard's figures, drawn from a running model's records up to the month simulated.

Each function takes a :class:`sim.model.model.CoercionModel` part-way through its run (its
:class:`sim.reporting.recording.Recorder` arrays hold the months simulated so far) and returns a Matplotlib
:class:`~matplotlib.figure.Figure` in the project style, not registered with pyplot:

* :func:`prices_figure` -- the coercer's export price and the targets' delivered price, each good as
  a ratio to its first month;
* :func:`trade_network_figure` -- who ships to whom in the current month: arrows as wide as the
  flow, coloured by its change since the first month;
* :func:`damage_figure` -- output loss and shortages by country, month by month.

The horizontal axes span the whole scenario, so the lines grow as the run advances; months with a
measure of the coercer in force are shaded. :func:`figure_png` renders a figure for download.
"""

from __future__ import annotations

import io
from functools import cache

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.reporting.figures import STYLE_PATH

__all__ = ["damage_figure", "figure_png", "prices_figure", "trade_network_figure"]

_COERCER, _TARGET, _OTHER = "#D55E00", "#0072B2", "#999999"
_SHADE = "#ebebeb"
#: Size of each view, inches (shown and downloaded at the resolution the page asks for).
_SIZE = (5.6, 3.2)


@cache
def _style_rc() -> dict:
    """The project style's settings (``sim/style/coercion.mplstyle``), validated.

    Solara's server keeps Matplotlib's settings per browser session and stores what is written
    without Matplotlib's validation (a style file's ``figure.figsize: 7.2, 4.8`` would stay a
    string), so the values are validated here before they are applied.
    """
    raw = mpl.rc_params_from_file(STYLE_PATH, use_default_template=False)
    return {key: mpl.RcParams.validate[key](value) for key, value in raw.items()}


def _style():
    """The project style for the duration of a ``with`` block (also under Solara's server)."""
    return mpl.rc_context(_style_rc())


def _colors(n: int) -> list:
    """``n`` distinguishable colours: the style's cycle, then tab20 beyond it."""
    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    if n <= len(cycle):
        return cycle[:n]
    return [mpl.colormaps["tab20"](i % 20) for i in range(n)]


def _country_colors(n: int) -> list:
    """``n`` colours for countries, the cycle reordered so that neighbours in a scenario's country
    list (coercer, targets, others) do not get the cycle's two oranges or two blues.
    """
    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    if n > len(cycle):
        return _colors(n)
    order = [0, 1, 2, 3, 6, 4, 5, 7]
    return [cycle[i] for i in order if i < len(cycle)][:n]


def _months(model) -> tuple[int, pd.DatetimeIndex]:
    """Months recorded so far and the dates of the whole run."""
    return int(model.recorder.steps_recorded), pd.DatetimeIndex(model.world.calendar.dates())


def _ratio(series: np.ndarray) -> np.ndarray:
    """A path divided by its first value (NaN where the first value is missing or zero)."""
    first = series[:1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(first) & (first > 0), series / np.where(first > 0, first, 1.0), np.nan)


def _measure_months(model) -> np.ndarray:
    """Whether a measure of the coercer is in force, month by month (as scheduled; a strategy that
    ends a measure early clears its later months).
    """
    on = np.zeros(model.n_steps, dtype=bool)
    for m in model.measures:
        if m.imposer == model.coercer_index:
            on |= np.array([m.in_force(t) > 0 for t in range(model.n_steps)])
    return on


def _frame(ax, model, dates: pd.DatetimeIndex) -> None:
    """Shade the coercer's measure months and fix the date axis to the whole run."""
    on = _measure_months(model)
    end = dates[-1] + pd.offsets.MonthBegin(1)
    bounds = [*dates, end]
    t = 0
    while t < len(on):
        if on[t]:
            u = t
            while u + 1 < len(on) and on[u + 1]:
                u += 1
            ax.axvspan(bounds[t], bounds[u + 1], color=_SHADE, lw=0, zorder=0)
            t = u + 1
        else:
            t += 1
    ax.set_xlim(dates[0], end)


def _title(model, what: str) -> str:
    done, dates = _months(model)
    when = f"{dates[done - 1]:%Y-%m}, month {done} of {len(dates)}" if done else "before the first month"
    return f"{what}: {model.cfg.scenario.name}, {when}"


def _waiting(ax) -> None:
    ax.text(0.5, 0.5, "Step or play to simulate", transform=ax.transAxes, ha="center", va="center", color="#555555")


def prices_figure(model) -> Figure:
    """The coercer's export price (FOB) and the targets' average delivered price of each good, as
    ratios to their first month (targets weighted by the quantity delivered to them).
    """
    done, dates = _months(model)
    w, rec = model.world, model.recorder
    gl = rec.good_level
    c, targets = model.coercer_index, np.asarray(model.target_indices, dtype=int)
    with _style():
        fig = Figure(figsize=_SIZE)
        axes = fig.subplots(1, 2, sharex=True)
        colors = _colors(len(w.goods))
        export = _ratio(gl["price_export"][:done, :, c])
        paid, got = gl["price_paid"][:done][:, :, targets], gl["delivered"][:done][:, :, targets]
        with np.errstate(invalid="ignore", divide="ignore"):
            spend = np.nansum(np.nan_to_num(paid) * got, axis=2)
            quantity = np.nansum(np.where(np.isfinite(paid), got, 0.0), axis=2)
            delivered = _ratio(np.where(quantity > 0, spend / np.where(quantity > 0, quantity, 1.0), np.nan))
        code = w.countries[c]
        names = ", ".join(w.countries[t] for t in targets) or "none"
        for ax, data, label in (
            (axes[0], export, f"{code}'s export price (× first month)"),
            (axes[1], delivered, f"delivered price paid by {names} (× first month)"),
        ):
            _frame(ax, model, dates)
            for g, good in enumerate(w.goods):
                if done and np.isfinite(data[:, g]).any():
                    ax.plot(dates[:done], data[:, g], color=colors[g], label=good.replace("_", " "))
            ax.set_title(label)
            ax.axhline(1.0, color="#333333", lw=0.5, zorder=1)
            if not done:
                _waiting(ax)
        handles, labels = axes[0].get_legend_handles_labels()
        if not handles:
            handles, labels = axes[1].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
        fig.suptitle(_title(model, "Prices"))
    return fig


def trade_network_figure(model, good: str | None = None) -> Figure:
    """Who ships to whom in the month simulated last: an arrow per international flow, as wide as
    the flow and coloured by its change since the first month (blue: more, red: less; dashed grey:
    stopped). ``good`` picks one good (quantity); ``None`` adds up all goods valued at their reference
    prices (US$), so widths and colours show volumes, not the price swings.
    """
    import networkx as nx
    from matplotlib.colors import Normalize

    done, dates = _months(model)
    w, rec = model.world, model.recorder
    g = None if good is None else list(w.goods).index(good)

    def month_flows(k: int) -> dict[tuple[int, int], float]:
        _, goods, origin, destination, quantity, _value = rec.flows[k]
        keep = origin != destination
        if g is not None:
            keep &= goods == g
        amounts = (quantity * w.reference_price[goods] if g is None else quantity)[keep]
        out: dict[tuple[int, int], float] = {}
        for o, d, a in zip(origin[keep], destination[keep], amounts, strict=True):
            out[int(o), int(d)] = out.get((int(o), int(d)), 0.0) + float(a)
        return out

    with _style():
        fig = Figure(figsize=_SIZE)
        ax = fig.add_subplot()
        ax.set_axis_off()
        graph = nx.DiGraph()
        graph.add_nodes_from(range(len(w.countries)))
        pos = nx.circular_layout(graph)
        ax.set_xlim(-1.25, 1.25)
        ax.set_ylim(-1.2, 1.2)
        now = month_flows(done - 1) if done else {}
        first = month_flows(0) if done else {}
        graph.add_edges_from(set(now) | set(first))
        colors = [
            _COERCER if n == model.coercer_index else _TARGET if n in set(model.target_indices) else _OTHER
            for n in graph.nodes
        ]
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colors, node_size=520, alpha=0.9)
        nx.draw_networkx_labels(graph, pos, ax=ax, labels=dict(enumerate(w.countries)), font_size=7, font_color="white")
        norm = Normalize(-2.0, 2.0)
        cmap = mpl.colormaps["RdBu"]
        largest = max(now.values(), default=0.0)
        flowing = [e for e in graph.edges if now.get(e, 0.0) > 0]
        stopped = [e for e in graph.edges if now.get(e, 0.0) <= 0 and first.get(e, 0.0) > 0]
        change = [
            np.log2(now[e] / first[e]) if first.get(e, 0.0) > 0 else norm.vmax for e in flowing
        ]  # log2 of now / first month
        common = dict(ax=ax, arrows=True, arrowstyle="-|>", node_size=520, connectionstyle="arc3,rad=0.12")
        if flowing:
            nx.draw_networkx_edges(
                graph,
                pos,
                edgelist=flowing,
                width=[0.6 + 6.0 * now[e] / largest for e in flowing],
                edge_color=[cmap(norm(np.clip(v, norm.vmin, norm.vmax))) for v in change],
                arrowsize=9,
                **common,
            )
        if stopped:
            nx.draw_networkx_edges(
                graph, pos, edgelist=stopped, width=0.8, edge_color=_OTHER, style="dashed", arrowsize=6, **common
            )
        bar = fig.colorbar(mpl.cm.ScalarMappable(norm, cmap), ax=ax, shrink=0.7, pad=0.02)
        bar.set_ticks([-2, -1, 0, 1, 2], labels=["¼×", "½×", "1×", "2×", "4×"])
        bar.set_label("flow / first month")
        unit = "all goods" if g is None else w.goods[g].replace("_", " ")
        if not done:
            _waiting(ax)
        elif largest > 0:
            ax.text(
                0.0,
                0.0,
                f"widest arrow: {largest:,.3g} " + ("US$/month at reference prices" if g is None else "units/month"),
                transform=ax.transAxes,
                fontsize=6,
                color="#555555",
            )
        fig.suptitle(_title(model, f"Trade, {unit}"))
    return fig


def damage_figure(model) -> Figure:
    """Output loss (share of baseline monthly value added) and shortages (the most any good lacks,
    short or rationed, as a share of baseline monthly use) by country, month by month.
    """
    done, dates = _months(model)
    w, rec = model.world, model.recorder
    gl, base_va = rec.good_level, rec.baseline_value_added
    base_need = rec._base_need_gc.reshape(rec.G, rec.C)
    users = [c for c in range(len(w.countries)) if base_va[c] > 0]
    with _style():
        fig = Figure(figsize=_SIZE)
        axes = fig.subplots(1, 2, sharex=True)
        colors = dict(zip(users, _country_colors(len(users)), strict=True))
        loss = rec.country_level["output_loss"][:done] / np.where(base_va > 0, base_va, np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            lacking = (np.nan_to_num(gl["shortage"][:done]) + np.nan_to_num(gl["rationed"][:done])) / np.where(
                base_need > 0, base_need, np.inf
            )
        worst = lacking.max(axis=1) if done else np.zeros((0, len(w.countries)))
        for ax, data, label in (
            (axes[0], loss, "output loss, % of baseline value added"),
            (axes[1], worst, "shortage, % of baseline use (worst good)"),
        ):
            _frame(ax, model, dates)
            for c in users:
                if done:
                    ax.plot(dates[:done], 100 * data[:, c], color=colors[c], label=w.countries[c])
            ax.set_title(label)
            ax.set_ylim(bottom=0)
            if not done:
                _waiting(ax)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 8))
        fig.suptitle(_title(model, "Damage by country"))
    return fig


def figure_png(fig: Figure, dpi: int = 200) -> bytes:
    """A figure as PNG bytes, ``figsize`` x ``dpi`` pixels (for the page and its download buttons)."""
    buffer = io.BytesIO()
    # The whole figure (constrained layout keeps its margins), not a tight crop: a known size.
    with _style(), mpl.rc_context({"savefig.bbox": None}):
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
