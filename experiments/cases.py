"""Run the four out-of-sample cases (not used in calibration) and write one figure per case, plus their key outcomes.

    .venv/bin/python experiments/cases.py [--seed 1]

For each of ``australia_2020``, ``gallium_germanium_2023``, ``rare_earth_magnets_2025`` and
``us_tariffs_2025`` this runs the scenario as shipped (no parameter changed) and writes to
``experiments/results/cases/``:

* ``<case>.{png,pdf}``: the model's four-panel overview (prices, import shares, output loss, flows;
  :func:`sim.reporting.figures.overview_figure`), with the measure periods shaded;
* ``australia_2020_redirection.{png,pdf}``: per good, the share of Australia's lost Chinese sales re-sold
  elsewhere within 12 and 24 months and the producer price received (12-month average / start);
* ``rare_earth_magnets_2025_chain.{png,pdf}`` and ``gallium_germanium_2023_chain.{png,pdf}``: the value
  chain by stage (:func:`chain_figure`): price paid / start per stage and country, and output / start
  per stage and country (for gallium, China's output against its alumina ceiling);
* ``key_outcomes.csv``: the metrics each case is judged on (docs/ODD.md, validation sections).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

import sim
from sim.reporting.figures import overview_figure, save_figure, style
from sim.reporting.files import atomic_write_text

OUT = Path(__file__).resolve().parent / "results" / "cases"
CASES = ("australia_2020", "gallium_germanium_2023", "rare_earth_magnets_2025", "us_tariffs_2025")
#: Metric-name fragments reported per case in key_outcomes.csv.
KEYS = {
    "australia_2020": (
        "redirected_share_",
        "export_price_received_ratio_12m",
        "export_revenue_lost",
        "buyer_cost",
        "coercer_cost.total",
    ),
    "gallium_germanium_2023": (
        "peak_domestic_price_ratio",
        "peak_price_paid_ratio",
        "shortage.",
        "first_output_loss_date",
        "output_loss_share",
        "lost_output_share",
    ),
    "rare_earth_magnets_2025": (
        "peak_domestic_price_ratio",
        "peak_price_paid_ratio",
        "first_output_loss_date",
        "output_loss_share",
        "coercer_import_share_end",
        "output_loss_sector_share",
        "lost_output_share",
    ),
    "us_tariffs_2025": (
        "coercer_import_share_",
        "export_revenue_lost",
        "buyer_cost",
        "peak_price_paid_ratio",
        "coercer_cost.",
    ),
}


def redirection_figure(metrics: dict, goods: list[str]):
    """Australia 2020: re-sold share of lost Chinese sales (12, 24 months) and producer price received."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.0, 2.8))
    x = np.arange(len(goods))
    for k, (months, off) in enumerate(((12, -0.2), (24, 0.2))):
        vals = [metrics.get(f"redirected_share_{months}m.{g}.AUS", np.nan) for g in goods]
        a.bar(x + off, vals, width=0.4, label=f"within {months} months", color=f"C{k}")
    a.set_xticks(x, [g.replace("_", " ") for g in goods], rotation=60, ha="right")
    a.set_ylabel("share re-sold elsewhere")
    a.set_title("a  Lost Chinese sales re-sold", loc="left")
    a.legend(frameon=False)
    vals = [metrics.get(f"export_price_received_ratio_12m.{g}.AUS", np.nan) for g in goods]
    b.bar(x, vals, color="C2")
    b.axhline(1.0, color="0.3", lw=0.8)
    b.set_xticks(x, [g.replace("_", " ") for g in goods], rotation=60, ha="right")
    b.set_ylabel("price received / start")
    b.set_title("b  Australian producer price, first 12 months", loc="left")
    return fig


#: Chain figures: case -> (stages upstream first, countries shown).
CHAINS = {
    "rare_earth_magnets_2025": (("re_concentrate", "ndpr_oxide", "ndpr_metal", "ndfeb_magnets"), ("USA", "JPN", "CHN")),
    "gallium_germanium_2023": (("alumina", "gallium", "germanium"), ("USA", "JPN", "CHN")),
}


def _by_date(ts: pd.DataFrame, variable: str, good: str) -> pd.DataFrame:
    d = ts[(ts["variable"] == variable) & (ts["good"] == good)]
    out = d.pivot_table(index="date", columns="country", values="value", aggfunc="sum", observed=True)
    out.columns = out.columns.astype(str)
    return out


def chain_figure(ts: pd.DataFrame, stages: tuple[str, ...], countries: tuple[str, ...], scen) -> plt.Figure:
    """A value chain by stage: (a) price paid / first month, per stage (colour) and country (line style);
    (b) output / first month of the stage's producers in each country that has some; for a by-product,
    (c) its output in each producing country against the host's output last month x recovery."""
    goods = {g.id: g for g in scen.goods}
    byproducts = [g for g in stages if goods[g].get("byproduct_of") is not None]
    fig, axes = plt.subplots(1, 2 + bool(byproducts), figsize=(7.2 if byproducts else 6.0, 2.6))
    a, b = axes[0], axes[1]
    styles = ("-", "--", ":")
    for k, g in enumerate(stages):
        paid = _by_date(ts, "price_paid", g)
        for j, c in enumerate(countries):
            if c in paid and paid[c].iloc[0] > 0:
                a.plot(paid.index, paid[c] / paid[c].iloc[0], color=f"C{k}", ls=styles[j % 3], lw=1)
        out = _by_date(ts, "production", g)
        for j, c in enumerate(countries):
            if c in out and out[c].iloc[0] > 0:
                b.plot(out.index, out[c] / out[c].iloc[0], color=f"C{k}", ls=styles[j % 3], lw=1)
    a.set_yscale("log")
    a.set_ylabel("price paid / start")
    a.set_title("a  Price paid by stage", loc="left")
    b.set_ylabel("output / start")
    b.set_title("b  Output by stage", loc="left")
    handles = [plt.Line2D([], [], color=f"C{k}", label=g.replace("_", " ")) for k, g in enumerate(stages)]
    handles += [plt.Line2D([], [], color="0.3", ls=styles[j % 3], label=c) for j, c in enumerate(countries)]
    b.legend(handles=handles, frameon=False, fontsize=6)
    if byproducts:
        ax = axes[2]
        for g in byproducts:
            host = goods[g].byproduct_of
            ceiling = host.recovery * _by_date(ts, "production", host.good).shift(1)
            out = _by_date(ts, "production", g)
            for j, c in enumerate(c for c in ceiling.columns if c in out and ceiling[c].max() > 0):
                ax.plot(out.index, out[c] * 12, color=f"C{j}", lw=1, label=f"{c} {g} output (all)")
                ax.plot(ceiling.index, ceiling[c] * 12, color=f"C{j}", lw=1, ls="--", label=f"{c} ceiling")
        ax.set_yscale("log")
        ax.set_ylabel("t per year")
        ax.set_title("c  By-product vs host x recovery", loc="left")
        ax.legend(frameon=False, fontsize=6)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=45)
    return fig


def main(seed: int = 1) -> pd.DataFrame:
    rows = []
    for name in CASES:
        res = sim.run(name, ["output.figures=false"], seed=seed)
        scen = res.config.scenario
        # The scenario's measures (not bare date pairs), so the overview picks its panels by their kind
        # (an import ban shows the targets' lost exports, an export restriction the prices they pay).
        measures = OmegaConf.to_container(scen.measures, resolve=True)
        with style():
            fig = overview_figure(
                res.timeseries, res.flows, coercer=scen.coercer, targets=list(scen.targets), periods=measures
            )
            save_figure(fig, OUT / name)
            if name in CHAINS:
                save_figure(chain_figure(res.timeseries, *CHAINS[name], scen), OUT / f"{name}_chain")
            if name == "australia_2020":
                save_figure(redirection_figure(res.metrics, [g.id for g in scen.goods]), OUT / f"{name}_redirection")
        for key, value in res.metrics.items():
            if any(key.startswith(k) or k in key for k in KEYS[name]):
                rows.append({"case": name, "metric": key, "value": value})
        print(f"{name}: done")
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "key_outcomes.csv", table.to_csv(index=False))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    main(parser.parse_args().seed)
