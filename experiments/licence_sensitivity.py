"""Sensitivity of the licensing cases to the assumed licence approval share.

The inputs give the licence regimes' dates and review lags (60 days for gallium and germanium, Tradium;
45 working days for heavy rare earths and magnets, MOFCOM via Reuters) but no approval rate, so
``parameters.licence_approval_share`` (0.8 in configs/parameters/default.yaml) is an explicit assumption.
This sweep runs both cases over a grid of approval shares and writes one row per run (the share, the
case, and outcomes: importers' output-loss shares, rationed quantities, peak delivered-price ratios and
the months at the price cap) to ``experiments/results/licence_sensitivity/licence_sensitivity.csv``.

Run: ``.venv/bin/python experiments/licence_sensitivity.py [--shares 0.2 0.4 0.6 0.8 1.0] [--seed 1]``
(10 runs, a few seconds once the kernel is compiled).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from sim.api import run

OUT = Path(__file__).resolve().parent / "results" / "licence_sensitivity"
CASES = ("gallium_germanium_2023", "rare_earth_magnets_2025")
KEYS = ("output_loss_share.", "rationed.", "peak_price_paid_ratio.", "price_cap_months.total")


def sweep(shares: list[float], seed: int) -> pd.DataFrame:
    """One row per (case, approval share) with the outcome metrics."""
    rows = []
    for case in CASES:
        for share in shares:
            metrics = run(case, [f"parameters.licence_approval_share={share}"], seed=seed).metrics
            row = {"scenario": case, "approval_share": share}
            row.update({k: v for k, v in metrics.items() if k.startswith(KEYS)})
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    """Run the sweep and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8, 1.0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    table = sweep(args.shares, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "licence_sensitivity.csv", index=False)
    cols = [c for c in table.columns if c.startswith(("scenario", "approval", "output_loss_share", "price_cap"))]
    print(table[cols].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
