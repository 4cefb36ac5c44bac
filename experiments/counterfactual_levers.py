"""Counterfactual policy experiment on the 2010 rare-earth case: no lever, each lever alone, the historical mix.

    .venv/bin/python experiments/counterfactual_levers.py [--seed 1] [--out DIR]

Runs ``rare_earth_2010`` (the coercion as it happened) under:

* ``none``: no policy lever (``policy=none``);
* each part of Japan's historical response alone (``configs/policy/japan_2010_response.yaml`` with the
  other parts switched off): Lynas financing (friend-shoring), recycling, substitution R&D, the national
  stockpile as it was built (from 2011, empty in 2010);
* each generic lever alone, for Japan, with the settings of its ``configs/policy/<lever>.yaml``: a
  stockpile of 3 months full before the crisis, diversification (cap 50% over 5 years, twice the
  adjustment speed), an inventory incentive (+1 month of cover), and a G7 collective response with 25%
  counter-tariffs on China (the G7 had no such platform in 2010: this is a counterfactual);
* ``historical mix``: the four parts of Japan's response together (the scenario's default).

and writes to ``experiments/results/counterfactual/`` (or ``--out``):

* ``counterfactual_levers.csv`` (and ``.parquet``): one row per variant with Japan's output loss (US$ and
  share of its users' value added), damage avoided against ``none``, the peak price Japan's firms paid
  (ratio to the first month, highest over the goods), months of shortage, the levers' cost (US$, all
  countries) and damage avoided per US$ of cost;
* ``counterfactual_levers.{png,pdf}``: the same as a four-panel figure.

Every number comes from a model run; nothing is set by hand. The lever settings are those of the config
files, so the experiment changes when they do.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pandas as pd

import sim

OUT = Path(__file__).resolve().parent / "results" / "counterfactual"
HISTORICAL = ("friendshoring", "recycling", "substitution", "stockpile")

#: variant name -> (label, Hydra overrides). Japan's response parts are isolated by nulling the others.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "none": ("No lever", ["policy=none"]),
    **{
        f"historical_{part}": (
            f"Japan 2010: {part.replace('friendshoring', 'Lynas finance')} only",
            ["policy=japan_2010_response", *(f"policy.{other}=null" for other in HISTORICAL if other != part)],
        )
        for part in HISTORICAL
    },
    "stockpile": ("Stockpile, 3 months, full", ["policy=stockpile", "policy.stockpile.countries=[JPN]"]),
    "diversification": (
        "Diversification (cap 50%, 2x speed)",
        ["policy=diversification", "policy.diversification.countries=[JPN]"],
    ),
    "inventory_incentive": (
        "Inventory credit (+1 month)",
        ["policy=inventory_incentive", "policy.inventory_incentive.countries=[JPN]"],
    ),
    "collective_response": (
        "G7: coalition stock (0.7 months) + counter-tariffs 25%",
        ["policy=collective_response", "policy.collective_response.counter_tariff=0.25"],
    ),
    "historical_mix": ("Japan 2010: historical mix", []),
}


def outcomes(metrics: dict, country: str = "JPN") -> dict:
    """The experiment's outcome columns from one run's metrics."""
    paid = [
        v
        for k, v in metrics.items()
        if k.startswith("peak_price_paid_ratio.") and k.endswith(f".{country}") and v is not None
    ]
    cost = sum(v for k, v in metrics.items() if k.startswith("policy_cost.total."))
    return {
        "output_loss": metrics[f"output_loss.{country}"],
        "output_loss_share": metrics[f"output_loss_share.{country}"],
        "peak_output_loss_share": metrics[f"peak_output_loss_share.{country}"],
        "peak_price_paid_ratio": max(paid) if paid else np.nan,
        "shortage_months": metrics.get(f"shortage_months.{country}", 0),
        "lever_cost": cost,
        "lever_cost_target": metrics.get(f"policy_cost.total.{country}", 0.0),
    }


def run_variants(
    variants: dict[str, tuple[str, list[str]]] = VARIANTS, *, seed: int = 1, scenario: str = "rare_earth_2010"
) -> pd.DataFrame:
    """Run every variant and return the table (one row per variant, ``none`` first)."""
    rows = []
    for name, (label, overrides) in variants.items():
        result = sim.run(scenario, overrides, seed=seed)
        rows.append({"variant": name, "label": label, "overrides": " ".join(overrides), **outcomes(result.metrics)})
    table = pd.DataFrame(rows)
    base = table.loc[table.variant == "none", "output_loss"]
    if base.empty:
        raise ValueError("the variants must include 'none' (the no-lever run damage is measured against)")
    table["damage_avoided"] = float(base.iloc[0]) - table["output_loss"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["avoided_per_dollar"] = np.where(
            table["lever_cost"] > 0, table["damage_avoided"] / table["lever_cost"], np.nan
        )
    return table


def figure(table: pd.DataFrame):
    """Four panels: Japan's output loss, peak price paid, months of shortage, damage avoided vs cost."""
    import matplotlib.pyplot as plt

    from sim.reporting.figures import style

    with style():
        fig, axes = plt.subplots(2, 2, figsize=(7.2, 6.4))
        y = np.arange(len(table))
        labels = table["label"].tolist()
        colors = ["0.55" if v == "none" else ("C3" if v == "historical_mix" else "C0") for v in table["variant"]]
        panels = [
            (axes[0, 0], table["output_loss_share"] * 100, "a", "Japan's output loss, % of value added"),
            (axes[0, 1], table["peak_price_paid_ratio"], "b", "Peak price paid, x first month"),
            (axes[1, 0], table["shortage_months"], "c", "Months short (> 1% of use)"),
        ]
        for ax, values, letter, title in panels:
            ax.barh(y, values, color=colors)
            ax.set_yticks(y, labels if letter in ("a", "c") else [""] * len(y), fontsize=7)
            ax.invert_yaxis()
            ax.set_title(f"{letter}  {title}", loc="left", fontsize=8)
        ax = axes[1, 1]
        lever = table[table.variant != "none"]
        ax.scatter(
            lever["lever_cost"] / 1e6,
            lever["damage_avoided"] / 1e6,
            c=[c for c, v in zip(colors, table.variant, strict=True) if v != "none"],
            s=18,
        )
        for _, r in lever.iterrows():
            ax.annotate(
                r["variant"].replace("historical_", "hist. "),
                (r["lever_cost"] / 1e6, r["damage_avoided"] / 1e6),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlabel("Lever cost, US$ m (all countries)")
        ax.set_ylabel("Japan's damage avoided, US$ m")
        ax.set_title("d  Damage avoided vs cost", loc="left", fontsize=8)
    return fig


def write(table: pd.DataFrame, out: Path) -> list[Path]:
    """Write the table (CSV, Parquet) and the figure (PNG, PDF) atomically into ``out``."""
    from sim.reporting.figures import save_figure
    from sim.reporting.files import atomic_write_bytes, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    csv = out / "counterfactual_levers.csv"
    atomic_write_text(csv, table.to_csv(index=False, float_format="%.6g"))
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    pq = out / "counterfactual_levers.parquet"
    atomic_write_bytes(pq, buf.getvalue())
    return [csv, pq, *save_figure(figure(table), out / "counterfactual_levers")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    table = run_variants(seed=args.seed)
    paths = write(table, args.out)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(
            table[
                [
                    "variant",
                    "output_loss_share",
                    "damage_avoided",
                    "peak_price_paid_ratio",
                    "shortage_months",
                    "lever_cost",
                    "avoided_per_dollar",
                ]
            ].to_string(index=False)
        )
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
