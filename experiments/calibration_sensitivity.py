"""How sensitive are the rare_earth_2010 calibration outcomes to the shared behavioural parameters?

One-at-a-time: each parameter of ``configs/model/default.yaml`` listed below is halved and doubled
(rates capped at 1) with everything else at its default, and the case is run with seed 1. The table
``experiments/results/calibration_sensitivity.csv`` has one row per run (parameter, factor, value,
outcomes); the figure ``experiments/results/calibration_sensitivity.{png,pdf}`` shows, per outcome,
the range each parameter spans around the default run (a tornado chart).

Run: ``.venv/bin/python experiments/calibration_sensitivity.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.reporting.figures import save_figure, style
from sim.reporting.files import write_parquet
from sim.world.config import ModelConfig

OUT = Path(__file__).resolve().parent / "results"
PARAMETERS = (
    "deferral_elasticity",
    "inventory_adjustment_months",
    "precaution",
    "scarcity_memory_months",
    "sourcing_adjustment_rate",
    "risk_memory_months",
    "risk_aversion",
    "substitution_rate",
    "long_run_thrift",
)
OUTCOMES = {
    "peak_light": "peak export price, light (x 2009)",
    "peak_heavy": "peak export price, heavy (x 2009)",
    "wedge_light": "export/domestic wedge at peak, light",
    "japan_china_share_2019": "Japan's China share of imports, 2019",
    "japan_output_loss_share": "Japan's output loss, share of value added",
}


def outcomes(res) -> dict:
    m, f = res.metrics, res.flows
    j = f[(f.destination == "JPN") & (f.origin != "JPN") & (f.date.dt.year == 2019)]
    return {
        "peak_light": m["peak_export_price_ratio.ree_light"],
        "peak_light_date": m["peak_export_price_date.ree_light"],
        "peak_heavy": m["peak_export_price_ratio.ree_heavy"],
        "peak_heavy_date": m["peak_export_price_date.ree_heavy"],
        "wedge_light": m["export_domestic_wedge_at_peak.ree_light"],
        "japan_china_share_2019": float(j[j.origin == "CHN"].quantity.sum() / j.quantity.sum()),
        "japan_output_loss_share": m["output_loss_share.JPN"],
    }


def main() -> pd.DataFrame:
    defaults = ModelConfig()
    rows = [{"parameter": "default", "factor": 1.0, "value": np.nan, **outcomes(sim.run("rare_earth_2010", seed=1))}]
    for name in PARAMETERS:
        base = float(getattr(defaults, name))
        for factor in (0.5, 2.0):
            value = base * factor
            if name.endswith("_rate"):
                value = min(value, 1.0)
            res = sim.run("rare_earth_2010", [f"model.{name}={value}"], seed=1)
            rows.append({"parameter": name, "factor": factor, "value": value, **outcomes(res)})
            print(
                f"{name} x{factor}: "
                + ", ".join(f"{k}={v:.3g}" for k, v in rows[-1].items() if isinstance(v, float) and k != "value")
            )
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    write_parquet(table, OUT / "calibration_sensitivity.parquet")
    (OUT / "calibration_sensitivity.csv").write_text(table.to_csv(index=False))
    save_figure(tornado(table), OUT / "calibration_sensitivity")
    return table


def tornado(table: pd.DataFrame):
    """One panel per outcome: the span of each parameter's half/double runs around the default."""
    from matplotlib.figure import Figure

    base = table[table.parameter == "default"].iloc[0]
    runs = table[table.parameter != "default"]
    with style():
        fig = Figure(figsize=(7.2, 1.6 * len(OUTCOMES)), layout="constrained")
        axes = fig.subplots(len(OUTCOMES), 1, sharex=False)
        for ax, (key, label) in zip(axes, OUTCOMES.items(), strict=True):
            spans = runs.groupby("parameter")[key].agg(["min", "max"]).reindex(PARAMETERS)
            order = (spans["max"] - spans["min"]).sort_values().index
            for i, p in enumerate(order):
                lo, hi = spans.loc[p, "min"], spans.loc[p, "max"]
                ax.plot([lo, hi], [i, i], lw=4, solid_capstyle="butt")
            ax.axvline(base[key], color="0.3", lw=0.8, ls="--")
            ax.set_yticks(range(len(order)), [p.replace("_", " ") for p in order])
            ax.set_title(f"{label} (default {base[key]:.3g})", loc="left")
        fig.suptitle("rare_earth_2010: outcomes when one behavioural parameter is halved or doubled (seed 1)")
    return fig


if __name__ == "__main__":
    main()
