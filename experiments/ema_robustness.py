"""Robust levers under deep uncertainty on the minimal case, with the EMA Workbench.

The minimal world (one good; China halves its exports to Japan with a one-year quota; Australia the
other supplier) as an EMA model (``sim.experiments.exploration.ema_model``):

* uncertainties: how firms behave (precaution, inventory adjustment, risk aversion), how
  substitutable origins are (Armington elasticity), how tight the quota is (its quantity);
* levers: Japan's stockpile (months of use), a cap on one origin's sourcing share
  (diversification), and a tax credit for extra inventory (months of cover). The collective
  response is left out: in this world no other coalition member imports the good or buys Japan's
  exports, so it changes nothing (a lever for ``rare_earth_2010``-sized worlds);
* outcomes: Japan's output loss (share and US$), the levers' cost;
* policies: named lever settings (below), each run on the same Latin-hypercube scenarios and seeds.

"The policy fails" when Japan loses more than ``--threshold`` (default 5%) of its value added over
the run (mean over replications). The script writes to ``experiments/results/ema/``:
``experiments.parquet`` (one row per experiment and replication), ``regret.csv`` (minimax-regret
ranking on output loss + lever cost), ``boxes.csv`` (PRIM boxes of failure for the most robust
policy, coverage and density), ``feature_scores.csv`` and the figures ``regret``, ``boxes`` and
``feature_scores`` (PNG and PDF).

Run: ``.venv/bin/python experiments/ema_robustness.py [--scenarios 32] [--replications 2] [--jobs 2]``
(7 policies x 32 scenarios x 2 seeds = 448 runs, about 2-3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sim.experiments import exploration as ex
from sim.reporting.figures import save_figure
from sim.reporting.files import write_parquet

OUT = Path(__file__).resolve().parent / "results" / "ema"
CASE = "minimal"
COUNTRY = "JPN"
POLICIES = ("stockpile", "diversification", "inventory_incentive")
#: Diversification at its neutral speed, so that a cap of 1.0 is no lever at all, and its cap reached
#: within a year (the file's 60 months outlast this 3-year run: the cap would never bind).
OVERRIDES = ("policy.diversification.speed=1.0", "policy.diversification.months=12")
UNCERTAINTIES = {
    "model.precaution": (1.0, 4.0),
    "model.inventory_adjustment_months": (3.0, 12.0),
    "model.risk_aversion": (1.5, 6.0),
    "scenario.goods.0.armington_elasticity": (2.0, 5.0),
    "scenario.measures.0.quantity": (4000.0, 24000.0),  # t over 2021; 16,000 in the file
}
#: Lever ranges; every named policy below lies inside them.
LEVERS = {
    "policy.stockpile.months": (0.0, 6.0),
    "policy.diversification.max_share": (0.3, 1.0),
    "policy.inventory_incentive.extra_months": (0.0, 3.0),
}
#: Named policies: lever values (each lever's neutral setting is 0 months, a cap of 1.0, 0 months).
NAMED_POLICIES = {
    "no lever": (0.0, 1.0, 0.0),
    "stockpile 1 month": (1.0, 1.0, 0.0),
    "stockpile 3 months": (3.0, 1.0, 0.0),
    "stockpile 6 months": (6.0, 1.0, 0.0),
    "diversify to 50%": (0.0, 0.5, 0.0),
    "stockpile 3 m + diversify": (3.0, 0.5, 0.0),
    "inventory credit 2 months": (0.0, 1.0, 2.0),
}
OUTCOMES = (f"output_loss_share.{COUNTRY}", f"output_loss.{COUNTRY}", f"policy_cost.total.{COUNTRY}")
LABELS = {
    "model.precaution": "precaution",
    "model.inventory_adjustment_months": "inventory adjustment (months)",
    "model.risk_aversion": "risk aversion",
    "scenario.goods.0.armington_elasticity": "Armington elasticity",
    "scenario.measures.0.quantity": "quota (t over 2021)",
    "policy.stockpile.months": "stockpile (months)",
    "policy.diversification.max_share": "cap on one origin's share",
    "policy.inventory_incentive.extra_months": "inventory credit (months)",
    f"output_loss_share.{COUNTRY}": "Japan's output loss share",
    f"output_loss.{COUNTRY}": "Japan's output loss",
    f"policy_cost.total.{COUNTRY}": "lever cost",
    "fails": "policy fails",
}


def policies():
    """The named policies as EMA samples."""
    return [ex.point(name, dict(zip(LEVERS, values, strict=True))) for name, values in NAMED_POLICIES.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=32, help="Latin-hypercube scenarios (default %(default)s)")
    parser.add_argument("--replications", type=int, default=2, help="seeds per experiment (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the scenario sampler")
    parser.add_argument("--threshold", type=float, default=0.05, help="output loss share at which the policy fails")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    model = ex.ema_model(
        CASE,
        UNCERTAINTIES,
        LEVERS,
        OUTCOMES,
        policies=POLICIES,
        overrides=OVERRIDES,
        replications=args.replications,
    )
    t0 = time.perf_counter()
    experiments, outcomes = ex.perform_experiments(model, args.scenarios, policies(), seed=args.seed, n_jobs=args.jobs)
    wall = time.perf_counter() - t0
    n_runs = len(experiments) * args.replications
    print(f"{n_runs} runs in {wall:.1f} s ({n_runs / wall * 60:.0f} runs/min, {args.jobs} workers)")

    loss_share = ex.outcome_values(outcomes, f"output_loss_share.{COUNTRY}")
    fails = loss_share > args.threshold
    ranking = ex.regret(
        experiments,
        outcomes,
        {
            "output loss + lever cost": [f"output_loss.{COUNTRY}", f"policy_cost.total.{COUNTRY}"],
            "output loss": f"output_loss.{COUNTRY}",
        },
    )
    failure_rate = (
        experiments.assign(fails=fails, policy=experiments["policy"].astype(str)).groupby("policy")["fails"].mean()
    )
    ranking["failure_rate"] = ranking["policy"].map(failure_rate)
    best = ranking["policy"].iloc[0]
    # Scenario discovery: where does the most robust policy still fail? (inputs: the uncertainties)
    mine = (experiments["policy"].astype(str) == best).to_numpy()
    uncertainty_columns = [ex.ema_name(k) for k in UNCERTAINTIES]
    boxes = ex.discover(experiments[mine], fails[mine], columns=uncertainty_columns, min_density=0.8)
    if boxes.empty:  # the best policy never fails: look at failures over all policies and levers
        boxes = ex.discover(experiments, fails, min_density=0.8)
        where, cases = experiments, fails
    else:
        where, cases = experiments[mine], fails[mine]
    scores = ex.feature_scores(
        experiments,
        {
            f"output_loss_share.{COUNTRY}": outcomes[ex.ema_name(f"output_loss_share.{COUNTRY}")],
            f"policy_cost.total.{COUNTRY}": outcomes[ex.ema_name(f"policy_cost.total.{COUNTRY}")],
            "fails": fails,
        },
        seed=args.seed,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    write_parquet(
        ex.results_table(experiments, outcomes, seeds=range(1, args.replications + 1)), args.out / "experiments.parquet"
    )
    ranking.to_csv(args.out / "regret.csv", index=False)
    boxes.to_csv(args.out / "boxes.csv", index=False)
    scores.to_csv(args.out / "feature_scores.csv")
    save_figure(ex.regret_figure(ranking, unit=1e6, unit_label="US$ million"), args.out / "regret")
    save_figure(ex.boxes_figure(where, cases, boxes, labels=LABELS), args.out / "boxes")
    save_figure(ex.feature_scores_figure(scores.rename(columns=LABELS), labels=LABELS), args.out / "feature_scores")

    with np.printoptions(precision=3):
        cols = ["rank", "policy", "max_regret.output loss + lever cost", "max_regret.output loss", "failure_rate"]
        print("\nMinimax-regret ranking (US$ million):")
        print(ranking[cols].to_string(index=False, formatters={c: (lambda v: f"{v / 1e6:,.0f}") for c in cols[2:4]}))
        print(f"\nPRIM boxes where '{best}' fails (output loss share > {args.threshold:.0%}):")
        print(boxes.to_string(index=False, float_format=lambda v: f"{v:.3g}") if len(boxes) else "(none)")
        print("\nFeature scores:")
        print(scores.to_string(float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
