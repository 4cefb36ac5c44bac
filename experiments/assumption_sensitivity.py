"""How far do a case's outcomes rest on its named assumptions?

Every scenario lists under ``assumptions:`` the numbers no source gives, each with a plausible range
(:mod:`sim.world.assumptions`). This experiment runs the case at its stated values (the base run) and then
with each assumption set to the low and to the high end of its range, one at a time, everything else
unchanged, for the given seeds. It writes, per case, to ``experiments/results/``:

- ``assumptions_<case>.parquet`` and ``.csv``: one row per run and outcome (tidy): ``case``, ``seed``,
  ``path`` (``base`` for the base run), ``setting`` (``base``, ``low``, ``high``), ``value`` (the
  assumption's value in that run), ``outcome`` (a ``metrics.json`` key) and ``result``;
- ``assumptions_<case>.png`` and ``.pdf``: a tornado chart per outcome: the span each assumption moves
  the outcome across its range (seed mean), around the base run.

Outcomes default to the case's targets' output loss shares, the peak export price ratio of every
good, and the months any delivered price spent at the price cap where the run reports them.

Run: ``.venv/bin/python experiments/assumption_sensitivity.py rare_earth_2010 --seeds 1 2``
(2 x assumptions + 1 runs per seed; ``--jobs`` processes in parallel, default 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from sim.api import compose_config, run_config
from sim.reporting.figures import save_figure, style
from sim.reporting.files import atomic_write_text, write_parquet
from sim.world.assumptions import assumption_value, with_assumption
from sim.world.scenario import validate_config

OUT = Path(__file__).resolve().parent / "results"


def default_outcomes(cfg, metrics: dict) -> list[str]:
    """The case's headline outcomes present in ``metrics``: targets' output loss shares, peak export
    price ratios of every good, and months at the price cap (where reported)."""
    keys = [f"output_loss_share.{t}" for t in cfg.scenario.targets]
    keys += [f"peak_export_price_ratio.{g.id}" for g in cfg.scenario.goods]
    keys += [k for k in metrics if k == "price_cap_months.total"]
    return [k for k in keys if k in metrics and np.isfinite(metrics[k])]


def _run(cfg, seed: int) -> dict:
    cfg = cfg.copy()
    cfg.seed = int(seed)
    cfg.output.progress = "never"
    return run_config(cfg).metrics


def plan(case: str, overrides: Sequence[str] = ()) -> tuple[object, list[tuple[str, str, float, object]]]:
    """The base config and one ``(path, setting, value, config)`` per run: the base run, then each
    assumption at its low and high end. Each config is validated before any run starts."""
    cfg = compose_config(case, list(overrides))
    validate_config(cfg)
    runs = [("base", "base", np.nan, cfg)]
    for a in cfg.scenario.assumptions:
        for setting, value in (("low", float(a.low)), ("high", float(a.high))):
            changed = with_assumption(cfg, str(a.path), value)
            validate_config(changed)
            runs.append((str(a.path), setting, value, changed))
    return cfg, runs


def sweep(case: str, seeds: Sequence[int] = (1,), *, overrides: Sequence[str] = (), jobs: int = 2, outcomes=None):
    """Run the one-at-a-time sweep of a case's assumptions; returns the tidy table."""
    cfg, runs = plan(case, overrides)
    if len(runs) == 1:
        raise SystemExit(f"{case}: the scenario lists no assumptions (scenario.assumptions is empty)")
    tasks = [(r, s) for r in runs for s in seeds]
    results = Parallel(n_jobs=jobs)(delayed(_run)(r[3], s) for r, s in tasks)
    keys = list(outcomes) if outcomes else default_outcomes(cfg, results[0])
    rows = []
    for ((path, setting, value, _), seed), metrics in zip(tasks, results, strict=True):
        if setting == "base":
            value = np.nan
        for key in keys:
            rows.append(
                {
                    "case": case,
                    "seed": int(seed),
                    "path": path,
                    "setting": setting,
                    "value": value,
                    "outcome": key,
                    "result": float(metrics.get(key, np.nan)),
                }
            )
    return pd.DataFrame(rows)


def tornado(table: pd.DataFrame):
    """One panel per outcome: the span of each assumption's low/high runs (seed means) around the base."""
    from matplotlib.figure import Figure

    case = table.case.iloc[0]
    means = table.groupby(["outcome", "path", "setting"], sort=False).result.mean()
    outcomes = list(dict.fromkeys(table.outcome))
    paths = [p for p in dict.fromkeys(table.path) if p != "base"]
    with style():
        fig = Figure(figsize=(7.2, 0.6 + (0.35 * len(paths) + 0.6) * len(outcomes)), layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(outcomes), 1))
        for ax, key in zip(axes, outcomes, strict=True):
            base = means[(key, "base", "base")]
            spans = pd.DataFrame(
                {p: [means[(key, p, "low")], means[(key, p, "high")]] for p in paths}, index=["low", "high"]
            ).T
            order = (spans.max(axis=1) - spans.min(axis=1)).sort_values().index
            for i, p in enumerate(order):
                lo, hi = spans.loc[p, "low"], spans.loc[p, "high"]
                ax.plot([lo, hi], [i, i], lw=5, solid_capstyle="butt", color="C0")
                ax.plot([lo], [i], "o", ms=3, color="C1")  # the low end of the assumption's range
            ax.axvline(base, color="0.3", lw=0.8, ls="--")
            ax.set_yticks(range(len(order)), [p if len(p) < 60 else p[:57] + "..." for p in order], fontsize=6)
            ax.set_title(f"{key} (base {base:.3g}; dot: assumption at its low end)", loc="left", fontsize=8)
        seeds = sorted(int(s) for s in table.seed.unique())
        fig.suptitle(f"{case}: outcomes when one named assumption spans its range (seeds {seeds})", fontsize=9)
    return fig


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="scenario name, e.g. rare_earth_2010")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--outcome", action="append", help="a metrics.json key (repeatable; default: headline)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run (e.g. policy=none)")
    args = parser.parse_intermixed_args(argv)
    table = sweep(args.case, args.seeds, overrides=args.overrides, jobs=args.jobs, outcomes=args.outcome)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"assumptions_{args.case}"
    write_parquet(table, stem.with_suffix(".parquet"))
    atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
    save_figure(tornado(table), stem)
    summary = table.groupby(["outcome", "path", "setting"], sort=False).result.mean().unstack("setting")
    print(summary.to_string(float_format=lambda x: f"{x:.4g}"))
    return table


if __name__ == "__main__":
    main()

__all__ = ["assumption_value", "default_outcomes", "main", "plan", "sweep", "tornado"]
