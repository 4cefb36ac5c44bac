"""Does collective response deter? Coalition size x commitment x stockpile policy on ``coercion_game``.

    .venv/bin/python experiments/deterrence.py [--replications 10] [--seed 7] [--jobs 2] [--quick | --mechanisms] [--out DIR]

Each cell of the design runs the strategic layer (:mod:`sim.coercion.strategy`) over the scenario's decade for
``--replications`` independent replications (seeds from :func:`sim.experiments.sweep.replication_seed`, as
``coercion-sim -m seed=S replication=...`` would draw them):

* **coalition size**: who belongs to the ``like_minded`` coalition: ``none`` (0), ``core`` (USA, JPN,
  DEU: 3), ``g7_plus`` (the G7, AUS, KOR: 9, the scenario's default), ``all`` (also MNG, LTU, PHL,
  NOR: 13);
* **commitment**: the coalition's announced probability of acting (0, 0.5, 1);
* **stockpiles**: ``none`` (no game stock) or ``members_3m`` (every member holds three months of its
  rare-earth use).

Per run and target it records whether the target was threatened, how its episodes ended and its cost;
the tables give, per cell, with 90% bands over replications (5th-95th percentiles of the replication
means by bootstrap): the probability that a member (non-member) is targeted in the decade, the share of
ended episodes in which the target conceded, the expected losses of members and non-members (US$ bn),
and the coercer's cost (US$ bn). Nothing is tuned: the answer is whatever the runs give.

``--mechanisms`` decomposes the deterrent instead: the G7-plus coalition fully committed, members holding
three months of rare earths, with only the counter-threat, only the stocks or only the absorption of
shut-out exports switched on (against all three and no coalition).

Writes ``deterrence_runs.parquet`` (one row per run and target), ``deterrence.csv`` (cells, with
bands) and ``deterrence.{png,pdf}`` into ``experiments/results/deterrence/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "results" / "deterrence"
COALITION = "like_minded"
SIZES = {
    "none": [],
    "core": ["USA", "JPN", "DEU"],
    "g7_plus": ["USA", "JPN", "DEU", "FRA", "GBR", "ITA", "CAN", "AUS", "KOR"],
    "all": ["USA", "JPN", "DEU", "FRA", "GBR", "ITA", "CAN", "AUS", "KOR", "MNG", "LTU", "PHL", "NOR"],
}
COMMITMENTS = (0.0, 0.5, 1.0)
STOCKS = ("none", "members_3m")


#: Mechanism variants (``--mechanisms``): the coalition's rule with only one response switched on.
MECHANISMS = {
    "all_responses": {},
    "counter_threat_only": {"absorb_exports": False, "share_stockpiles": False},
    "stocks_only": {"absorb_exports": False, "counter_threat": False},
    "absorb_only": {"share_stockpiles": False, "counter_threat": False},
}


def cell_config(size: str, commitment: float, stocks: str, seed: int, mechanism: str = "all_responses"):
    """The composed ``coercion_game`` config of one cell and seed (``mechanism``: see :data:`MECHANISMS`)."""
    from omegaconf import OmegaConf

    from sim.api import compose_config

    cfg = compose_config("coercion_game", [f"seed={seed}"])
    OmegaConf.set_struct(cfg, False)
    members = set(SIZES[size])
    for c in cfg.scenario.countries:
        others = [k for k in c.coalitions if k != COALITION]
        c.coalitions = [*others, COALITION] if c.code in members else others
    rules = [r for r in cfg.scenario.game.coalitions if r.coalition == COALITION]
    if members:
        rules[0].commitment = float(commitment)
        for key, value in MECHANISMS[mechanism].items():
            rules[0][key] = value
        cfg.scenario.game.coalitions = rules
    else:
        cfg.scenario.game.coalitions = []
    if stocks == "none":
        cfg.scenario.game.stockpile_months = {}
    else:
        cfg.scenario.game.stockpile_months = {m: {"ree": 3.0} for m in sorted(members)}
    # Assumption paths that name the coalition rule go with it when the coalition is dropped.
    if not members:
        cfg.scenario.assumptions = [a for a in cfg.scenario.assumptions if COALITION not in a.path]
    return cfg


def run_cell(args: tuple) -> pd.DataFrame:
    """One run: a row per target with threats, outcomes and cost."""
    size, commitment, stocks, replication, seed, mechanism = args
    from sim.api import run_config

    res = run_config(cell_config(size, commitment, stocks, seed, mechanism), progress="never")
    ep = res.episodes
    targets = [t.country for t in res.config.scenario.game.targets]
    rows = []
    for t in targets:
        e = ep[ep["target"] == t]
        ended = e[e["outcome"] != "ongoing"]
        rows.append(
            {
                "size": size,
                "commitment": commitment,
                "stocks": stocks,
                "mechanism": mechanism,
                "replication": replication,
                "seed": seed,
                "target": t,
                "member": t in SIZES[size],
                "episodes": len(e),
                "ended": len(ended),
                "conceded": int(ended["outcome"].astype(str).str.startswith("conceded").sum()),
                "target_cost": float(e["target_cost"].sum()),
                "coercer_cost_run": float(res.metrics["game.coercer_cost"]),
            }
        )
    return pd.DataFrame(rows)


def _band(values: np.ndarray, rng: np.random.Generator, n_boot: int = 500) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    boot = rng.choice(values, size=(n_boot, values.size), replace=True).mean(axis=1)
    return float(values.mean()), float(np.quantile(boot, 0.05)), float(np.quantile(boot, 0.95))


def summarise(runs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Cells with means and 90% bootstrap bands over replications."""
    rng = np.random.default_rng(seed)
    out = []
    for (size, commitment, stocks, mechanism), cell in runs.groupby(
        ["size", "commitment", "stocks", "mechanism"], sort=False
    ):
        per_rep = []
        for _, r in cell.groupby("replication"):
            row = {}
            for who, part in (("member", r[r.member]), ("nonmember", r[~r.member])):
                row[f"p_targeted_{who}"] = float((part.episodes > 0).mean()) if len(part) else np.nan
                row[f"loss_{who}"] = float(part.target_cost.sum()) / 1e9 if len(part) else np.nan
                row[f"loss_per_{who}"] = float(part.target_cost.mean()) / 1e9 if len(part) else np.nan
            row["p_concede"] = float(r.conceded.sum() / r.ended.sum()) if r.ended.sum() else np.nan
            row["coercer_cost"] = float(r.coercer_cost_run.iloc[0]) / 1e9
            row["episodes"] = float(r.episodes.sum())
            per_rep.append(row)
        reps = pd.DataFrame(per_rep)
        rec = {
            "size": size,
            "n_members": len(SIZES[size]),
            "commitment": commitment,
            "stocks": stocks,
            "mechanism": mechanism,
        }
        for col in reps.columns:
            mean, lo, hi = _band(reps[col].to_numpy(dtype=float), rng)
            rec[col], rec[f"{col}_lo"], rec[f"{col}_hi"] = mean, lo, hi
        rec["replications"] = len(reps)
        out.append(rec)
    return pd.DataFrame(out)


def figure(table: pd.DataFrame):
    """Four panels against coalition size, one line per commitment (stocks: solid none, dashed 3 months)."""
    import matplotlib.pyplot as plt

    from sim.reporting.figures import style

    panels = [
        ("p_targeted_member", "a  P(member targeted in the decade)"),
        ("p_concede", "b  P(target concedes), ended episodes"),
        ("loss_per_member", "c  Loss per member, US$ bn"),
        ("coercer_cost", "d  Coercer's cost, US$ bn"),
    ]
    with style():
        fig, axes = plt.subplots(2, 2, figsize=(7.2, 6.0), sharex=True)
        for ax, (col, title) in zip(axes.ravel(), panels, strict=True):
            for i, commitment in enumerate(sorted(table.commitment.unique())):
                for stocks, ls in (("none", "-"), ("members_3m", "--")):
                    d = table[
                        (table.commitment == commitment)
                        & (table.stocks == stocks)
                        & (table.mechanism == "all_responses")
                    ].sort_values("n_members")
                    if d.empty:
                        continue
                    label = f"commitment {commitment:g}" + (", stocks" if stocks != "none" else "")
                    ax.plot(d.n_members, d[col], ls, color=f"C{i}", marker="o", ms=3, label=label)
                    ax.fill_between(d.n_members, d[f"{col}_lo"], d[f"{col}_hi"], color=f"C{i}", alpha=0.12, lw=0)
            ax.set_title(title, loc="left", fontsize=8)
        for ax in axes[1]:
            ax.set_xlabel("Coalition members")
        axes[0, 0].legend(fontsize=6, frameon=False)
    return fig


def write(runs: pd.DataFrame, table: pd.DataFrame, out: Path) -> list[Path]:
    """Write the run table (Parquet), the cell table (CSV) and the figure (PNG, PDF) atomically."""
    from sim.reporting.figures import save_figure
    from sim.reporting.files import atomic_write_bytes, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    runs.to_parquet(buf, index=False)
    pq = atomic_write_bytes(out / "deterrence_runs.parquet", buf.getvalue())
    csv = atomic_write_text(out / "deterrence.csv", table.to_csv(index=False, float_format="%.6g"))
    return [pq, csv, *save_figure(figure(table), out / "deterrence")]


def design(quick: bool, mechanisms: bool = False) -> list[tuple[str, float, str, str]]:
    """Cells of the design (``quick``: sizes none, g7_plus, all; commitments 0 and 1; no stock variants;
    ``mechanisms``: the G7-plus coalition fully committed, with members' stocks, one response at a time).
    """
    if mechanisms:
        return [("none", 0.0, "none", "all_responses")] + [("g7_plus", 1.0, "members_3m", m) for m in MECHANISMS]
    if quick:
        cells = [(s, c, "none") for s in ("none", "g7_plus", "all") for c in (0.0, 1.0) if not (s == "none" and c)]
    else:
        cells = [
            (s, c, k) for s in SIZES for c in COMMITMENTS for k in STOCKS if not (s == "none" and (c or k != "none"))
        ]
    return [(*cell, "all_responses") for cell in cells]


def main(argv=None) -> None:
    from sim.experiments.sweep import replication_seed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mechanisms", action="store_true", help="decompose: one coalition response at a time")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--summarise", action="store_true", help="redo the tables and figure from --out's runs")
    args = parser.parse_args(argv)
    if args.summarise:
        runs = pd.read_parquet(args.out / "deterrence_runs.parquet")
        if "mechanism" not in runs:
            runs["mechanism"] = "all_responses"
        _report(runs, args.out)
        return
    jobs = [
        (size, commitment, stocks, k, replication_seed(args.seed, k), mechanism)
        for size, commitment, stocks, mechanism in design(args.quick, args.mechanisms)
        for k in range(args.replications)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(run_cell, jobs))
    else:
        parts = [run_cell(j) for j in jobs]
    _report(pd.concat(parts, ignore_index=True), args.out)


def _report(runs: pd.DataFrame, out: Path) -> None:
    table = summarise(runs)
    paths = write(runs, table, out)
    cols = ["size", "commitment", "stocks", "mechanism", "p_targeted_member", "p_targeted_nonmember", "p_concede"]
    cols += ["loss_per_member", "loss_per_nonmember", "coercer_cost"]
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(table[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
