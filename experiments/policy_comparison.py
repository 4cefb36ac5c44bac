"""Policy comparison for rare_earth_2010: which levers, how much, at what cost?

Three paper figures (PNG and PDF, project style) in ``experiments/results/policy/``:

* ``loss_heatmap`` -- Japan's output loss (share of baseline value added over the run) over
  stockpile months (``policy.stockpile.months``) x diversification speed
  (``policy.diversification.speed``), mean over replications;
* ``frontier`` -- output loss avoided against the levers' cost (``policy_cost.total.JPN``), one
  point per lever combination, with the cost-effectiveness frontier;
* ``fan_<good>`` -- the coercer's export price relative to January 2009 over replications
  (median, 50% and 90% bands).

Each part is a Hydra multirun (``hydra/launcher=local_parallel``) into its own sweep directory with
``resume=true``, so an interrupted run picks up where it stopped; the collector's
``results.parquet`` feeds the figures (``sim.reporting.sweep_figures``).

Run: ``.venv/bin/python experiments/policy_comparison.py [--part levers|fan|all] [--replications N]
[--lever-replications N]`` (about 3 minutes on 2 cores with the defaults). The lever grid runs
``policy=[stockpile,diversification]`` in place of Japan's historical response (the case's default
policy), with the diversification cap lifted so that the corner 0 months x speed 1 is the case
without levers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from sim.experiments.collect import collect, load_timeseries
from sim.reporting.figures import save_figure
from sim.reporting.sweep_figures import cost_effectiveness_frontier, frontier_table, outcome_heatmap, price_fan_chart

OUT = Path(__file__).resolve().parent / "results" / "policy"
EXE = str(Path(sys.executable).parent / "coercion-sim")
SCENARIO = "rare_earth_2010"
STOCKPILE_MONTHS = "0,1,2,3,6"
DIVERSIFICATION_SPEED = "1,1.5,2,3"
LABELS = {
    "policy.stockpile.months": "stockpile (months of consumption)",
    "policy.diversification.speed": "diversification speed (x sourcing adjustment rate)",
    "output_loss_share.JPN": "Japan's output loss, share of value added",
}


def multirun(name: str, overrides: list[str], jobs: int) -> Path:
    """Run (or resume) a sweep into ``OUT/<name>`` and return its directory."""
    sweep_dir = OUT / name
    args = [
        EXE,
        "-m",
        f"scenario={SCENARIO}",
        "output.figures=false",
        "resume=true",
        "hydra/launcher=local_parallel",
        f"hydra.launcher.n_jobs={jobs}",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    ]
    print(" ".join(args), flush=True)
    subprocess.run(args, check=True)
    return sweep_dir


def levers(replications: int, jobs: int) -> None:
    # The two levers instead of Japan's historical response (the case's default policy), so the
    # corner months=0, speed=1 is the case without levers. The diversification lever's share cap is
    # lifted (max_share=1) so that its speed subsidy is the only diversification measure swept.
    sweep_dir = multirun(
        "levers",
        [
            "policy=[stockpile,diversification]",
            f"policy.stockpile.months={STOCKPILE_MONTHS}",
            f"policy.diversification.speed={DIVERSIFICATION_SPEED}",
            "policy.diversification.max_share=1",
            "seed=1",
            f"replication=range(0,{replications})",
            "output.flows=false",
        ],
        jobs,
    )
    results = collect(sweep_dir, aggregate=True)  # the multirun collected too; this reads the final state
    save_figure(
        outcome_heatmap(
            results,
            x="policy.diversification.speed",
            y="policy.stockpile.months",
            outcome="output_loss_share.JPN",
            labels=LABELS,
        ),
        OUT / "loss_heatmap",
    )
    save_figure(cost_effectiveness_frontier(results, country="JPN"), OUT / "frontier")
    table = frontier_table(results, country="JPN")
    table.to_csv(OUT / "frontier.csv", index=False)
    print(table.to_string(index=False))


def fan(replications: int, jobs: int) -> None:
    sweep_dir = multirun("replications", ["seed=1", f"replication=range(0,{replications})", "output.flows=false"], jobs)
    results = collect(sweep_dir, aggregate=True)  # the multirun collected too; this reads the final state
    ts = load_timeseries(sweep_dir, results, variable="price_export", country="CHN")
    for good in sorted(ts["good"].unique()):
        save_figure(price_fan_chart(ts, variable="price_export", country="CHN", good=good), OUT / f"fan_{good}")
        d = ts[ts["good"] == good].pivot_table(index="date", columns="job", values="value")
        rel = d / d.iloc[0]
        peak = rel.max()
        print(
            f"{good}: peak export price ratio over {rel.shape[1]} replications: "
            f"median {peak.median():.2f}, 5-95% {peak.quantile(0.05):.2f}-{peak.quantile(0.95):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("levers", "fan", "all"), default="all")
    parser.add_argument("--replications", type=int, default=20, help="replications of the fan charts")
    parser.add_argument("--lever-replications", type=int, default=2, help="replications per lever combination")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs (default %(default)s)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part in ("fan", "all"):
        fan(args.replications, args.jobs)
    if args.part in ("levers", "all"):
        levers(args.lever_replications, args.jobs)


if __name__ == "__main__":
    main()
