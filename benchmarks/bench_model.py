"""Model benchmark (``make bench``): the rare-earth run and a large generated world.

Measures, on this machine, single-threaded:

* ``rare_earth_2010`` (144 months) in process after a warm-up run, and as a fresh command
  (``coercion-sim ...``) with a warm JIT cache, with and without figures;
* a generated large world (``scenario=generated`` with 200 countries, 50 goods, 20,000 user firms,
  2,000 producers, 120 months, structure seed 0):
  build time, time per step (mean, median, 95th percentile), total, recording (tables) time, peak
  memory of the process, and the share of step time spent inside compiled (numba) kernels, the
  market-clearing kernel and those of ``sim.model.kernels``, versus outside them (Python-level agent and
  model code, vectorised NumPy, recording); see ``benchmarks/kernel_timing.py``.

Targets (issue "The model end to end"): rare_earth_2010 under 1 s in process and under 5 s as a
fresh command; large world under 150 ms per step and under 2 GiB peak memory, recording included;
Python-level code under 30% of step time. Results go to ``benchmarks/results/model-*.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

LARGE_CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[2])
from kernel_timing import instrument
timer = instrument()  # time every compiled kernel the step calls (see benchmarks/kernel_timing.py)
from sim.api import compose_config
from sim.model.model import CoercionModel
from sim.reporting.metrics import compute_metrics
from sim.world.scenario import prepare_config
months = int(sys.argv[1])
t0 = time.perf_counter()
# The same entry point as `coercion-sim scenario=generated scenario.countries=200 ...`.
cfg = compose_config("generated", [
    "scenario.countries=200", "scenario.goods=50", "scenario.firms=20000", "scenario.producers=2000",
    f"scenario.months={months}", "scenario.seed=0", "output.figures=false",
])
cfg = prepare_config(cfg)  # expand the generator's parameters into the world, validate
t1 = time.perf_counter()
model = CoercionModel(cfg)
t2 = time.perf_counter()
timer.reset()
steps = []
while model.running:
    s = time.perf_counter()
    model.step()
    steps.append(time.perf_counter() - s)
steps = np.array(steps[: model.n_steps])
t3 = time.perf_counter()
ts = model.recorder.timeseries()
fl = model.recorder.flows_table()
metrics = compute_metrics(model)
t4 = time.perf_counter()
print(json.dumps({
    "generate_s": t1 - t0, "build_s": t2 - t1, "steps": int(steps.size),
    "step_mean_ms": float(steps.mean() * 1e3), "step_median_ms": float(np.median(steps) * 1e3),
    "step_p95_ms": float(np.percentile(steps, 95) * 1e3), "first_step_ms": float(steps[0] * 1e3),
    "run_s": float(steps.sum()), "recording_tables_s": t4 - t3,
    "step_mean_incl_recording_ms": float((steps.sum() + (t4 - t3)) / steps.size * 1e3),
    "kernel_s": timer.total, "kernel_s_by_function": timer.seconds, "kernel_calls": timer.calls,
    "inside_kernels_share": float(timer.total / steps.sum()),
    "outside_kernels_share": float(1 - timer.total / steps.sum()),
    "clearing_s": float(model.clearing_seconds),
    "clear_markets_share": float(model.clearing_seconds / steps.sum()),
    "rows": int(len(model.world.row_firm)), "timeseries_rows": int(len(ts)), "flow_rows": int(len(fl)),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "max_iterations": int(model.clearing_max_iterations),
}))
"""


def machine_info() -> dict:
    """The machine and the versions a benchmark ran with (shared with ``bench_sweep.py``)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import numpy

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "threads": os.environ.get("NUMBA_NUM_THREADS"),
    }


def bench_rare_earth_in_process(repeats: int = 3) -> dict:
    from sim.api import compose_config
    from sim.model.model import CoercionModel

    cfg = compose_config("rare_earth_2010", ["output.figures=false"])
    CoercionModel(cfg).run()  # warm-up: JIT cache load, imports
    runs, full = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        CoercionModel(cfg).run()
        runs.append(time.perf_counter() - t)
    import sim

    for _ in range(repeats):
        t = time.perf_counter()
        sim.run(cfg)
        full.append(time.perf_counter() - t)
    return {
        "model_run_s_min": min(runs),
        "model_run_s_median": sorted(runs)[len(runs) // 2],
        "api_run_with_tables_and_metrics_s_min": min(full),
    }


def bench_fresh_command(figures: bool) -> float:
    exe = Path(sys.executable).parent / "coercion-sim"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(exe),
            "scenario=rare_earth_2010",
            "seed=1",
            f"output.figures={str(figures).lower()}",
            f"hydra.run.dir={tmp}/run",
        ]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
        return time.perf_counter() - t


def bench_large_world(months: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", LARGE_CHILD, str(months), str(ROOT / "benchmarks")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    months = int(os.environ.get("BENCH_LARGE_MONTHS", "120"))
    res = {"machine": machine_info(), "load_average_start": os.getloadavg()}
    print("rare_earth_2010 in process ...", flush=True)
    res["rare_earth_in_process"] = bench_rare_earth_in_process()
    print("rare_earth_2010 as a fresh command ...", flush=True)
    bench_fresh_command(False)  # make sure the cache is warm
    res["rare_earth_fresh_command_s"] = {
        "no_figures": bench_fresh_command(False),
        "with_figures": bench_fresh_command(True),
    }
    print(f"large generated world ({months} months) ...", flush=True)
    res["large_world"] = bench_large_world(months)

    re_ip = res["rare_earth_in_process"]["model_run_s_min"]
    fresh = res["rare_earth_fresh_command_s"]["with_figures"]
    lw = res["large_world"]
    targets = [
        ("rare_earth_2010 in process (s)", re_ip, 1.0),
        ("rare_earth_2010 fresh command, figures included (s)", fresh, 5.0),
        ("large world per step, recording included (ms)", lw["step_mean_incl_recording_ms"], 150.0),
        ("large world peak memory (MiB)", lw["peak_rss_mib"], 2048.0),
        ("large world share of step time outside compiled kernels", lw["outside_kernels_share"], 0.30),
    ]
    res["load_average_end"] = os.getloadavg()
    res["targets"] = [{"name": n, "measured": v, "target": t, "met": bool(v < t)} for n, v, t in targets]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"model-{dt.datetime.now().strftime('%Y%m%d-%H%M')}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nMachine: {res['machine']['cpu']} ({res['machine']['logical_cores']} logical cores), single-threaded")
    print(f"{'measure':58s} {'value':>10s} {'target':>8s}  status")
    for t in res["targets"]:
        print(f"{t['name']:58s} {t['measured']:10.3f} {t['target']:8.2f}  {'PASS' if t['met'] else 'MISS'}")
    print(
        f"large world: build {lw['build_s']:.1f} s, step median {lw['step_median_ms']:.0f} ms, p95 {lw['step_p95_ms']:.0f} ms, "
        f"tables {lw['recording_tables_s']:.1f} s, {lw['timeseries_rows']:,} timeseries rows"
    )
    print(
        f"large world: {lw['outside_kernels_share']:.1%} of step time outside compiled kernels; "
        f"clear_markets (Python wrapper included) {lw['clear_markets_share']:.1%}"
    )
    print(f"load average (1 min) at start {res['load_average_start'][0]:.2f}, at end {res['load_average_end'][0]:.2f}")
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
