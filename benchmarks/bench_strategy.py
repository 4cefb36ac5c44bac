"""Strategic-layer benchmark: the cost of the coercer's lookahead on ``coercion_game`` (120 months).

Runs the scenario in process (after a warm-up run) with the lookahead simulating every decision
(``scenario.game.lookahead=every_decision``), with the cached surrogate table (``cached``, the
scenario's default), and without any strategic decision (the same world with the warm-up past its end,
no dispute, no rollout). Reports seconds per run, runs per minute, the rollouts and months simulated
by the lookahead, and the ratios; records the machine and its load (timings on a shared machine are
inflated by the load). Results go to ``benchmarks/results/strategy-*.json``.

    python benchmarks/bench_strategy.py [--repeats 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

MODES = {
    "every_decision": ["scenario.game.lookahead=every_decision"],
    "cached": ["scenario.game.lookahead=cached"],
    "no_disputes": ["scenario.game.warmup_months=1000"],
}


def main() -> None:
    """Time each mode and write the results."""
    import sim
    from sim.api import compose_config, run_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sim.run("coercion_game", MODES["cached"], seed=args.seed)  # warm-up: JIT cache, imports
    out = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "modes": {},
    }
    for mode, overrides in MODES.items():
        cfg = compose_config("coercion_game", [*overrides, f"seed={args.seed}"])
        times, res = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = run_config(cfg, progress="never")
            times.append(time.perf_counter() - t0)
        best = min(times)
        out["modes"][mode] = {
            "seconds_per_run": best,
            "runs_per_minute": 60.0 / best,
            "rollouts": res.metrics.get("game.rollouts"),
            "rollout_months": res.metrics.get("game.rollout_months"),
            "episodes": res.metrics.get("game.episodes"),
        }
        print(f"{mode:15s} {best:7.2f} s/run  {60 / best:6.1f} runs/min  rollouts {res.metrics.get('game.rollouts')}")
    base = out["modes"]["no_disputes"]["seconds_per_run"]
    for mode in ("every_decision", "cached"):
        out["modes"][mode]["ratio_to_no_disputes"] = out["modes"][mode]["seconds_per_run"] / base
    out["machine"]["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"strategy-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"load {out['machine']['load_average']}; written {path}")


if __name__ == "__main__":
    main()
