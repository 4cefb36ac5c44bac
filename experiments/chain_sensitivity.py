"""Sweep the stated assumptions of the two value-chain cases one at a time.

    .venv/bin/python experiments/chain_sensitivity.py [--seed 1]

Each row runs a case as shipped except for one assumption named in its ``sources:`` (no parameter is
chosen from the results; the shipped value is the middle of each sweep):

* ``rare_earth_magnets_2025``: magnet makers' input cover (``input_inventory_months``, 3 months from
  "several months"; 1.5 and 6: cover must exceed a month, the input lag), the concentrate price (half
  the value of its NdPr content; 0.3 and 0.7) and the NdPr metal price (oxide 80% of it; 70% and 90%);
* ``gallium_germanium_2023``: the gallium recovery rate (1.46e-5 t per t alumina; the 10-15% recoverable
  range gives 1.17e-5 and 1.76e-5), US gallium users' cover (1.75 months; USGS 0.6 and 2.9) and Japan's
  state stock (``policy=gallium_2023_state_stocks``, fill 0, 0.5, 1; volumes secret).

Writes ``experiments/results/chain_sensitivity/results.csv``: one row per run with the assumption, its
value and the outcomes each case is judged on (output loss shares of the targets, peak prices paid).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import sim
from sim.api import compose_config
from sim.reporting.files import atomic_write_text

OUT = Path(__file__).resolve().parent / "results" / "chain_sensitivity"


def _good(cfg, good_id: str):
    return next(g for g in cfg.scenario.goods if g.id == good_id)


def _sector(cfg, country: str, sector: str):
    return next(u for u in cfg.scenario.user_sectors if u.country == country and u.sector == sector)


def _magnet_runs():
    for months in (1.5, 3.0, 6.0):
        yield (
            "magnet makers' input cover (months)",
            months,
            [],
            lambda c, v=months: _set(_good(c, "ndfeb_magnets"), "input_inventory_months", v),
        )
    for share in (0.3, 0.5, 0.7):
        price = round(share * 0.308 * 48000.0, 1)
        yield (
            "concentrate price (share of NdPr value)",
            share,
            [],
            lambda c, p=price: _scale_good(c, "re_concentrate", p),
        )
    for share in (0.7, 0.8, 0.9):
        price = round(1.25 * 48000.0 / share, 1)
        yield "metal price (oxide share of it)", share, [], lambda c, p=price: _scale_good(c, "ndpr_metal", p)


def _gallium_runs():
    for recovery in (1.17e-5, 1.46e-5, 1.76e-5):
        yield (
            "gallium recovery (t per t alumina)",
            recovery,
            [],
            lambda c, v=recovery: _set(_good(c, "gallium").byproduct_of, "recovery", v),
        )
    for months in (0.6, 1.75, 2.9):
        yield (
            "US gallium users' cover (months)",
            months,
            [],
            lambda c, v=months: _set(_sector(c, "USA", "semiconductors_and_optoelectronics"), "inventory_months", v),
        )
    for fill in (0.0, 0.5, 1.0):
        over = ["policy=gallium_2023_state_stocks", f"policy.stockpile.initial_fill={fill}"]
        yield "JOGMEC state stock fill (of 42 days)", fill, over, lambda c: None


def _set(node, key, value):
    node[key] = value


def _scale_good(cfg, good_id: str, price: float) -> None:
    """Set a good's reference price and keep its producers' unit costs at the same share of it."""
    good = _good(cfg, good_id)
    ratio = price / good.reference_price
    good.reference_price = price
    for p in cfg.scenario.producers:
        if p.good == good_id:
            p.unit_cost = p.unit_cost * ratio


KEYS = ("output_loss_share.", "peak_price_paid_ratio.", "price_cap_months.total")


def main(seed: int = 1) -> pd.DataFrame:
    rows = []
    for case, runs in (("rare_earth_magnets_2025", _magnet_runs()), ("gallium_germanium_2023", _gallium_runs())):
        for assumption, value, overrides, apply in runs:
            cfg = compose_config(case, overrides)
            apply(cfg)
            res = sim.run(cfg, seed=seed)
            row = {"case": case, "assumption": assumption, "value": value}
            row.update({k: v for k, v in res.metrics.items() if k.startswith(KEYS)})
            rows.append(row)
            print(f"{case}: {assumption} = {value}: done")
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "results.csv", table.to_csv(index=False))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    main(parser.parse_args().seed)
