"""Sweep benchmark: throughput and per-job overhead of the three ways to run many rare_earth_2010 runs.

* ``in-process``: :func:`sim.experiments.sensitivity.run_experiments` (the EMA Workbench's evaluators: in this
  process, or its worker processes, each composing the configuration once and running design points
  in memory, no files per run), with 1 and with ``--jobs`` workers, on a Sobol' design over three
  model parameters;
* ``basic multirun``: ``coercion-sim -m ... seed='range(0,N)'`` (Hydra's basic launcher: one job
  after another in one process, each writing its outputs, figures off);
* ``joblib multirun``: the same with ``hydra/launcher=local_parallel hydra.launcher.n_jobs=JOBS``.

Per-job overhead = wall time per job of a path minus the in-process single-worker time per run
(what the model itself costs). Throughput = runs per minute of wall time, start-up included.
Results go to ``benchmarks/results/sweep-<YYYYMMDD-HHMM>.json`` with the machine and its load.

    .venv/bin/python benchmarks/bench_sweep.py                 # ~5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_sweep.py --runs 32 --jobs-runs 8 --no-save
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_model import machine_info  # this folder is on sys.path when run as a script

for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))
RESULTS = Path(__file__).resolve().parent / "results"
SCENARIO = "rare_earth_2010"


def _machine() -> dict:
    return {**machine_info(), "load_average_at_start": os.getloadavg()}


def _design(n_runs: int):
    from sim.experiments.sensitivity import Uncertainty, sample

    params = [
        Uncertainty("model.precaution", 1.0, 3.0),
        Uncertainty("model.sourcing_adjustment_rate", 0.015, 0.06),
        Uncertainty("scenario.goods.0.armington_elasticity", 2.0, 5.0),
    ]
    base = 2
    while base * (len(params) + 2) < n_runs:
        base *= 2
    return params, sample(params, "sobol", base, seed=1).iloc[:n_runs]


def bench_in_process(n_runs: int, n_jobs: int) -> dict:
    from sim.experiments.sensitivity import run_experiments

    params, design = _design(n_runs)
    t0 = time.perf_counter()
    out = run_experiments(design, ["output_loss_share.JPN"], scenario=SCENARIO, n_jobs=n_jobs, parameters=params)
    wall = time.perf_counter() - t0
    return {
        "runs": len(out),
        "n_jobs": n_jobs,
        "wall_s": round(wall, 3),
        "runs_per_min": round(len(out) / wall * 60, 1),
        "seconds_per_run_wall": round(wall / len(out), 4),
        "median_run_s": round(float(out["wall_seconds"].median()), 4),
        "cpu_s_per_run": round(float(out["cpu_seconds"].mean()), 4),
    }


def bench_multirun(n_runs: int, launcher: str | None, n_jobs: int) -> dict:
    exe = str(Path(sys.executable).parent / "coercion-sim")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            exe,
            "-m",
            f"scenario={SCENARIO}",
            f"seed=range(0,{n_runs})",
            "output.figures=false",
            f"hydra.sweep.dir={tmp}/sweep",
        ]
        if launcher:
            args += [f"hydra/launcher={launcher}", f"hydra.launcher.n_jobs={n_jobs}"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU of the command and every process it waited for (joblib and submitit workers included).
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        import pandas as pd

        res = pd.read_parquet(Path(tmp) / "sweep" / "results.parquet")
        assert (res["status"] == "ok").all() and len(res) == n_runs, res["status"].value_counts()
    return {
        "runs": n_runs,
        "launcher": launcher or "basic",
        "n_jobs": n_jobs if launcher else 1,
        "wall_s": round(wall, 3),
        "runs_per_min": round(n_runs / wall * 60, 1),
        "seconds_per_run_wall": round(wall / n_runs, 4),
        "median_run_s": round(float(res["run_seconds"].median()), 4),  # the run alone, outputs not included
        "cpu_s_per_run": round(cpu / n_runs, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=160, help="runs of the in-process runner (default %(default)s)")
    parser.add_argument("--multirun-runs", type=int, default=16, help="jobs of each multirun (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default %(default)s)")
    parser.add_argument("--jobs-runs", type=int, default=None, help="runs of the 1-worker case (default: runs/4)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    machine = _machine()
    print(f"machine: {machine['cpu']} x{machine['logical_cores']}, load {machine['load_average_at_start']}")
    serial = bench_in_process(args.jobs_runs or max(8, args.runs // 4), 1)
    print("in-process, 1 worker:", serial)
    parallel = bench_in_process(args.runs, args.jobs)
    print(f"in-process, {args.jobs} workers:", parallel)
    basic = bench_multirun(args.multirun_runs, None, 1)
    print("basic multirun:", basic)
    joblib_mr = bench_multirun(args.multirun_runs, "local_parallel", args.jobs)
    print(f"joblib multirun ({args.jobs} workers):", joblib_mr)

    model_s = serial["median_run_s"]
    rows = {
        "in-process (1 worker)": serial,
        f"in-process ({args.jobs} workers)": parallel,
        "basic multirun": basic,
        f"joblib multirun ({args.jobs} workers)": joblib_mr,
    }
    model_cpu = serial["cpu_s_per_run"]
    cores = os.cpu_count() or 1
    for r in rows.values():
        # Overhead per job on one worker: wall time per job x workers - the model's own time per run.
        r["overhead_per_job_s"] = round(r["seconds_per_run_wall"] * r["n_jobs"] - model_s, 4)
        # The same in CPU seconds (less sensitive to other load on the machine), and the throughput
        # that CPU cost allows on all cores when nothing else runs.
        r["cpu_overhead_per_job_s"] = round(r["cpu_s_per_run"] - model_cpu, 4)
        r["runs_per_min_on_free_cores"] = round(cores * 60 / r["cpu_s_per_run"], 1)
    lines = [
        f"{'path':34s} {'runs':>5s} {'wall s':>8s} {'runs/min':>9s} {'overhead/job s':>15s} {'CPU s/run':>10s} "
        f"{'CPU overhead/job s':>19s} {'runs/min, free cores':>21s}",
    ]
    for name, r in rows.items():
        lines.append(
            f"{name:34s} {r['runs']:5d} {r['wall_s']:8.1f} {r['runs_per_min']:9.1f} {r['overhead_per_job_s']:15.3f} "
            f"{r['cpu_s_per_run']:10.3f} {r['cpu_overhead_per_job_s']:19.3f} {r['runs_per_min_on_free_cores']:21.1f}"
        )
    lines.append(
        f"model per run (in-process, 1 worker): {model_s:.3f} s wall (median), {model_cpu:.3f} CPU s (mean); "
        f"load average {os.getloadavg()[0]:.1f} on {cores} cores at the end; target >= 200 runs/min"
    )
    table = "\n".join(lines)
    print(table)
    machine["load_average_at_end"] = os.getloadavg()
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"sweep-{dt.datetime.now():%Y%m%d-%H%M}.json"
        path.write_text(json.dumps({"machine": machine, "results": rows, "table": table}, indent=2) + "\n")
        print(f"-> {path}")


if __name__ == "__main__":
    main()
