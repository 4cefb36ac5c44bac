"""Throughput benchmark: rare_earth_2010 runs per minute through four paths, on N workers.

* ``hydra multirun``: ``coercion-sim -m scenario=rare_earth_2010 seed='range(0,M)'`` (basic launcher,
  one job after another, each writing its outputs, figures off); a small M, extrapolated per minute;
* ``in-memory, reference``: :class:`sim.experiments.runner.CaseRunner` with ``fast=False`` (the path before
  plain configurations: per run a deep copy of the composed ``DictConfig``, the changed values
  applied, the full preparation and validation, and the model reading OmegaConf nodes);
* ``in-memory, fast``: ``CaseRunner(...).run`` as it is now (the case composed and checked once per
  process, each run's configuration derived as plain data, :mod:`sim.world.plain`);
* ``batch``: :meth:`sim.experiments.runner.CaseRunner.run_many` (the fast path in N worker processes).

``--tree <checkout> --pairs K`` times this checkout and the other in turn, K pairs of processes (the
fairer before/after on a loaded machine). ``--scaling 1,4,16`` adds what an ensemble axis could buy: the CPU cost per copy of generated worlds ``k``
times the size of the case (:func:`scaling`).

Every in-memory run has its own parameter set (three model and scenario numbers drawn uniformly)
and its own seed, so nothing is cached between runs but the composed case. Reported per path:
runs per minute of wall time with N workers (worker start-up and composition included), the CPU
seconds per run in one process (``time.process_time``, less sensitive to other load than wall time),
and the runs per minute that CPU cost would allow on N free cores. The load average (``uptime``) is
recorded before and after each measurement: on a shared machine the wall-clock numbers are lower
bounds. Results go to ``benchmarks/results/throughput-<YYYYMMDD-HHMM>.json`` with the machine.

    .venv/bin/python benchmarks/bench_throughput.py               # ~5 minutes on 2 loaded cores
    .venv/bin/python benchmarks/bench_throughput.py --runs 40 --reference-runs 8 --multirun-runs 0 --no-save
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_model import machine_info  # this folder is on sys.path when run as a script

for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))
RESULTS = Path(__file__).resolve().parent / "results"
CASE = "rare_earth_2010"
#: The numbers each in-memory run draws (uniformly in these ranges).
RANGES = {
    "model.precaution": (1.0, 3.0),
    "model.sourcing_adjustment_rate": (0.015, 0.06),
    "scenario.goods.0.armington_elasticity": (2.0, 5.0),
}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def _design(n: int, seed: int = 1) -> tuple[list[dict], list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    points = [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in RANGES.items()} for _ in range(n)]
    return points, list(range(1, n + 1))


def cpu_per_run(fast: bool, n: int) -> dict:
    """CPU seconds per run in this process (after one warm-up run that composes the case)."""
    from sim.experiments.runner import CaseRunner

    runner = CaseRunner(CASE, fast=fast)
    points, seeds = _design(n + 1, seed=2)
    runner.run(points[0], seed=seeds[0])
    times = []
    for p, s in zip(points[1:], seeds[1:], strict=True):
        c0 = time.process_time()
        runner.run(p, seed=s)
        times.append(time.process_time() - c0)
    times.sort()
    return {
        "runs": n,
        "cpu_s_per_run_median": round(times[len(times) // 2], 4),
        "cpu_s_per_run_min": round(times[0], 4),
    }


_OTHER_TREE = """
import json, sys, time
import numpy as np
try:
    from sim.experiments.runner import CaseRunner
except ImportError:  # a checkout from before sim.experiments.runner (2026-12-04)
    from sim.experiments.exploration import CaseRunner
ranges, n = json.loads(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(2)
points = [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in ranges.items()} for _ in range(n + 1)]
runner = CaseRunner("rare_earth_2010")
runner.run(points[0], seed=1)
times = []
for i, p in enumerate(points[1:]):
    c0 = time.process_time()
    runner.run(p, seed=i + 2)
    times.append(time.process_time() - c0)
times.sort()
print(json.dumps({"runs": n, "cpu_s_per_run_median": round(times[len(times) // 2], 4),
                  "cpu_s_per_run_min": round(times[0], 4)}))
"""


def cpu_per_run_in_tree(tree: Path, n: int) -> dict:
    """CPU seconds per run of ``CaseRunner(case).run`` as another checkout (``tree``) has it, in a
    process of its own (same design as :func:`cpu_per_run`): the code before, for a before/after.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", _OTHER_TREE, json.dumps(RANGES), str(n)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "tree": str(tree)}


def paired_cpu_per_run(tree: Path, pairs: int, n: int) -> dict:
    """CPU seconds per run of this checkout and of ``tree`` measured in turn, ``pairs`` times, each in a
    process of its own (:func:`cpu_per_run_in_tree`): on a shared machine the load changes between
    two measurements minutes apart, and alternating puts both trees under the same conditions.
    Reported: each process's median and minimum, the ratio of medians in each pair, and over the pairs
    the median of the medians, the smallest minimum and the median ratio (other tree / this one).
    """
    rows = []
    for _ in range(pairs):
        here = cpu_per_run_in_tree(ROOT, n)
        there = cpu_per_run_in_tree(tree, n)
        ratio = there["cpu_s_per_run_median"] / here["cpu_s_per_run_median"]
        rows.append({"this": here, "other": there, "ratio_other_to_this": round(ratio, 3)})
        print("pair:", rows[-1])

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return {
        "pairs": rows,
        "runs_per_process": n,
        "tree": str(tree),
        "this_median_of_medians": median([r["this"]["cpu_s_per_run_median"] for r in rows]),
        "other_median_of_medians": median([r["other"]["cpu_s_per_run_median"] for r in rows]),
        "this_min": min(r["this"]["cpu_s_per_run_min"] for r in rows),
        "other_min": min(r["other"]["cpu_s_per_run_min"] for r in rows),
        "ratio_median": median([r["ratio_other_to_this"] for r in rows]),
    }


def wall_in_memory(fast: bool, n: int, n_jobs: int) -> dict:
    """Runs per minute of wall time on ``n_jobs`` worker processes (start-up included)."""
    from sim.experiments.runner import CaseRunner

    points, seeds = _design(n)
    before = _uptime()
    t0 = time.perf_counter()
    out = CaseRunner(CASE, fast=fast).run_many(points, seeds, n_jobs=n_jobs)
    wall = time.perf_counter() - t0
    assert len(out) == n
    return {
        "runs": n,
        "n_jobs": n_jobs,
        "wall_s": round(wall, 2),
        "runs_per_min": round(n / wall * 60, 1),
        "uptime_before": before,
        "uptime_after": _uptime(),
    }


def wall_multirun(n: int) -> dict:
    """A Hydra multirun of ``n`` seeds (basic launcher), runs per minute of wall time."""
    import tempfile

    exe = str(Path(sys.executable).parent / "coercion-sim")
    before = _uptime()
    with tempfile.TemporaryDirectory() as tmp:
        args = [exe, "-m", f"scenario={CASE}", f"seed=range(0,{n})", "output.figures=false"]
        args.append(f"hydra.sweep.dir={tmp}/sweep")
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return {
        "runs": n,
        "n_jobs": 1,
        "wall_s": round(wall, 2),
        "runs_per_min": round(n / wall * 60, 1),
        "uptime_before": before,
        "uptime_after": _uptime(),
    }


def scaling(factors: list[int], months: int = 144) -> list[dict]:
    """What an ensemble axis would buy: CPU cost of one run of a generated world ``k`` times the size of
    rare_earth_2010 (``6k`` countries, ``2k`` goods, ``60k`` user firms, ``months`` months), per copy.

    A stacked ensemble of ``k`` independent copies advances through the same month's Python and NumPy
    calls at once, so the cost per copy of a ``k``-times larger world is what such an axis could reach
    (the world build and the market kernel scale with the rows; the Python overhead of a month does
    not). Reported per ``k``: rows, world build and steps in CPU seconds (best of two seeds, after a
    warm-up run), the market kernel's share, and the per-copy costs.
    """
    import sim.market.clearing as clearing
    from sim.experiments.runner import CaseRunner
    from sim.model.model import CoercionModel

    kernel_s = [0.0]
    compiled = clearing.kernel.clear_all_goods

    def timed(*a):
        t0 = time.process_time()
        try:
            return compiled(*a)
        finally:
            kernel_s[0] += time.process_time() - t0

    clearing.kernel.clear_all_goods = timed
    out = []
    try:
        for k in factors:
            overrides = (
                f"scenario.countries={6 * k}",
                f"scenario.goods={2 * k}",
                f"scenario.firms={60 * k}",
                f"scenario.months={months}",
            )
            runner = CaseRunner("generated", overrides=overrides)
            CoercionModel(runner.config({}, seed=1)).run()  # warm-up (compilation, composition)
            best = None
            for seed in (2, 3):
                cfg = runner.config({}, seed=seed)
                kernel_s[0] = 0.0
                t0 = time.process_time()
                model = CoercionModel(cfg)
                t1 = time.process_time()
                model.run()
                t2 = time.process_time()
                trial = (t2 - t1, t1 - t0, kernel_s[0], len(model.world.row_firm))
                best = trial if best is None or trial[0] < best[0] else best
            steps, build, kern, rows = best
            row = {
                "copies_k": k,
                "rows": rows,
                "build_cpu_s": round(build, 4),
                "steps_cpu_s": round(steps, 4),
                "kernel_cpu_s": round(kern, 4),
                "per_copy_steps_ms": round(steps / k * 1e3, 2),
                "per_copy_steps_outside_kernel_ms": round((steps - kern) / k * 1e3, 2),
                "per_copy_build_ms": round(build / k * 1e3, 2),
            }
            print("scaling:", row)
            out.append(row)
    finally:
        clearing.kernel.clear_all_goods = compiled
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--runs", type=int, default=120, help="runs of the fast and batch paths (%(default)s)")
    parser.add_argument("--reference-runs", type=int, default=20, help="runs of the reference path (%(default)s)")
    parser.add_argument("--multirun-runs", type=int, default=20, help="jobs of the Hydra multirun; 0: skip")
    parser.add_argument("--cpu-runs", type=int, default=10, help="runs timed for CPU per run (%(default)s)")
    parser.add_argument("--tree", type=Path, help="another checkout (e.g. main): its CPU per run, for a before/after")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU per run (no wall-clock paths)")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="with --tree: also time this checkout and the other in turn, this many pairs of processes of --cpu-runs runs",
    )
    parser.add_argument(
        "--scaling",
        default="",
        help="comma-separated size factors k (e.g. 1,4,16): per-copy cost of k-times larger generated worlds, "
        "what an ensemble axis could reach (default: skip)",
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    machine = {**machine_info(), "uptime_at_start": _uptime(), "load_average_at_start": os.getloadavg()}
    print(f"machine: {machine['cpu']} x{machine['logical_cores']}; {machine['uptime_at_start']}")
    cpu_ref = cpu_per_run(False, max(3, args.cpu_runs // 2))
    print("CPU per run, reference:", cpu_ref)
    cpu_fast = cpu_per_run(True, args.cpu_runs)
    print("CPU per run, fast:", cpu_fast)
    cpu_tree = cpu_per_run_in_tree(args.tree, max(3, args.cpu_runs // 2)) if args.tree else None
    if cpu_tree:
        print(f"CPU per run, {args.tree}:", cpu_tree)
    paired = paired_cpu_per_run(args.tree, args.pairs, args.cpu_runs) if args.tree and args.pairs > 0 else None
    rows: dict[str, dict] = {}
    if args.cpu_only:
        pass
    elif args.multirun_runs > 0:
        rows["hydra multirun (basic launcher)"] = wall_multirun(args.multirun_runs)
        print("hydra multirun:", rows["hydra multirun (basic launcher)"])
    if not args.cpu_only:
        ref = f"in-memory, reference ({args.jobs} workers)"
        rows[ref] = wall_in_memory(False, args.reference_runs, args.jobs)
        print("reference:", rows[ref])
        rows[f"batch run_many, fast ({args.jobs} workers)"] = wall_in_memory(True, args.runs, args.jobs)
        print("batch:", rows[f"batch run_many, fast ({args.jobs} workers)"])
        rows["in-memory, fast (1 worker)"] = wall_in_memory(True, max(10, args.runs // 4), 1)
        print("fast, 1 worker:", rows["in-memory, fast (1 worker)"])
        for r in rows.values():
            r["ratio_to_reference"] = round(r["runs_per_min"] / rows[ref]["runs_per_min"], 2)
    cpu = {
        "reference": {**cpu_ref, "runs_per_min_on_free_cores": round(args.jobs * 60 / cpu_ref["cpu_s_per_run_median"])},
        "fast": {**cpu_fast, "runs_per_min_on_free_cores": round(args.jobs * 60 / cpu_fast["cpu_s_per_run_median"])},
    }
    if cpu_tree:
        cpu["other tree"] = {
            **cpu_tree,
            "runs_per_min_on_free_cores": round(args.jobs * 60 / cpu_tree["cpu_s_per_run_median"]),
        }
        cpu["fast"]["ratio_to_other_tree"] = round(
            cpu_tree["cpu_s_per_run_median"] / cpu_fast["cpu_s_per_run_median"], 2
        )
    cpu["fast"]["ratio_to_reference"] = round(cpu_ref["cpu_s_per_run_median"] / cpu_fast["cpu_s_per_run_median"], 2)
    scale_rows = scaling([int(k) for k in args.scaling.split(",") if k.strip()]) if args.scaling else []
    lines = [f"{'path':40s} {'runs':>5s} {'wall s':>8s} {'runs/min':>9s} {'x reference':>12s}  load (1 min) before"]
    for name, r in rows.items():
        load = r["uptime_before"].rsplit("load average:", 1)[-1].split(",")[0].strip()
        lines.append(
            f"{name:40s} {r['runs']:5d} {r['wall_s']:8.1f} {r['runs_per_min']:9.1f} {r['ratio_to_reference']:12.2f}  {load}"
        )
    for name, c in cpu.items():
        lines.append(
            f"CPU per run ({name}): {c['cpu_s_per_run_median']:.3f} s median, {c['cpu_s_per_run_min']:.3f} s min "
            f"-> {c['runs_per_min_on_free_cores']} runs/min on {args.jobs} free cores"
        )
    if paired:
        lines.append(
            f"paired, {len(paired['pairs'])} x {paired['runs_per_process']} runs a process, in turn: this tree "
            f"{paired['this_median_of_medians']:.4f} s (median of medians; min {paired['this_min']:.4f}), other tree "
            f"{paired['other_median_of_medians']:.4f} s (min {paired['other_min']:.4f}); other / this, median of the "
            f"pairs: {paired['ratio_median']:.3f}"
        )
    for r in scale_rows:
        lines.append(
            f"generated world x{r['copies_k']} ({r['rows']} rows): per copy {r['per_copy_steps_ms']:.1f} ms of steps "
            f"({r['per_copy_steps_outside_kernel_ms']:.1f} ms outside the market kernel), {r['per_copy_build_ms']:.1f} ms build"
        )
    lines.append(f"target: >= 2000 runs/min on 2 cores; {_uptime()}")
    table = "\n".join(lines)
    print(table)
    machine["uptime_at_end"] = _uptime()
    machine["load_average_at_end"] = os.getloadavg()
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"throughput-{dt.datetime.now():%Y%m%d-%H%M}.json"
        path.write_text(
            json.dumps(
                {"machine": machine, "wall": rows, "cpu": cpu, "paired": paired, "scaling": scale_rows, "table": table},
                indent=2,
            )
            + "\n"
        )
        print(f"-> {path}")


if __name__ == "__main__":
    main()
