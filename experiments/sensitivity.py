"""Global sensitivity of rare_earth_2010's outcomes to its uncertain behavioural and market parameters.

Uncertainties (config keys with ranges, about half to double the calibrated value or the range the
sources leave open), outcomes (metric keys), a SALib design (Sobol' by default, or Morris), run
in memory by ``sim.experiments.sensitivity.run_experiments`` on worker processes (the fastest path; see
benchmarks/README.md), then indices. Writes to ``experiments/results/sensitivity/``:
``experiments_<method>.parquet`` (design and outcomes), ``indices_<method>.{parquet,csv}`` and the
figure ``indices_<method>.{png,pdf}``.

Run: ``.venv/bin/python experiments/sensitivity.py [--method sobol|morris] [--n 128] [--jobs 2]``
(Sobol', n=128: 128 x 7 = 896 runs, about 7 minutes with 2 workers on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sim.experiments.sensitivity import Outcome, Uncertainty, analyze, indices_figure, run_experiments, sample
from sim.reporting.figures import save_figure
from sim.reporting.files import write_parquet

OUT = Path(__file__).resolve().parent / "results" / "sensitivity"
SCENARIO = "rare_earth_2010"
#: Ranges around configs/model/default.yaml and the scenario's assumed Armington elasticity (3.0).
UNCERTAINTIES = (
    Uncertainty("model.precaution", 1.0, 4.0),
    Uncertainty("model.inventory_adjustment_months", 3.0, 12.0),
    Uncertainty("model.sourcing_adjustment_rate", 0.015, 0.06),
    Uncertainty("model.risk_aversion", 1.5, 6.0),
    Uncertainty("scenario.goods.0.armington_elasticity", 2.0, 5.0),
)
OUTCOMES = (
    Outcome("peak_export_price_ratio.ree_light"),
    Outcome("output_loss_share.JPN"),
    Outcome("coercer_import_share_end.ree_light.JPN"),
)
LABELS = {
    "model.precaution": "precaution",
    "model.inventory_adjustment_months": "inventory adjustment (months)",
    "model.sourcing_adjustment_rate": "sourcing adjustment rate",
    "model.risk_aversion": "risk aversion",
    "scenario.goods.0.armington_elasticity": "Armington elasticity (light)",
    "peak_export_price_ratio.ree_light": "peak export price, light",
    "output_loss_share.JPN": "Japan's output loss share",
    "coercer_import_share_end.ree_light.JPN": "Japan's China share, end",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("sobol", "morris"), default="sobol")
    parser.add_argument("--n", type=int, default=128, help="base sample (Sobol': power of two; Morris: trajectories)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="model seed (common to all runs) and sampler seed")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    design = sample(UNCERTAINTIES, args.method, args.n, seed=args.seed)
    t0 = time.perf_counter()
    experiments = run_experiments(
        design, OUTCOMES, scenario=SCENARIO, seed=args.seed, n_jobs=args.jobs, parameters=UNCERTAINTIES
    )
    wall = time.perf_counter() - t0
    print(f"{len(experiments)} runs in {wall:.1f} s ({len(experiments) / wall * 60:.0f} runs/min, {args.jobs} workers)")
    indices = analyze(UNCERTAINTIES, experiments, OUTCOMES, args.method, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_parquet(experiments, args.out / f"experiments_{args.method}.parquet")
    write_parquet(indices, args.out / f"indices_{args.method}.parquet")
    indices.to_csv(args.out / f"indices_{args.method}.csv", index=False)
    save_figure(indices_figure(indices, labels=LABELS), args.out / f"indices_{args.method}")
    print(indices.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
