"""Figures benchmark: the flagship command with its figures against the same command without.

Runs ``coercion-sim scenario=rare_earth_2010 seed=1`` as a fresh process, alternately with figures
(``output.figures=true``) and without (``output.figures=false``), several times, with a warm numba
cache (one unmeasured run of each first). For each it records wall time and the CPU time of the
command and every process it waited for (``getrusage(RUSAGE_CHILDREN)``: the figure worker
processes included), and reports the medians and the ratios with/without, the issue's target being
a wall-time ratio of at most 1.35. Prints the machine and its load (the shared machine is noisy:
compare the CPU ratio too; the median ratio of back-to-back pairs is less sensitive to the machine's
speed drifting; the verdict asks both median ratios to meet the target). Results go to ``benchmarks/results/figures-<YYYYMMDD-HHMM>.json``.

Usage::

    .venv/bin/python benchmarks/bench_figures.py --reps 5
    .venv/bin/python benchmarks/bench_figures.py --reps 5 --no-save --command "coercion-sim ..."
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET = 1.35


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="measured runs of each variant")
    parser.add_argument(
        "--command", default=f"{ROOT / '.venv' / 'bin' / 'coercion-sim'} scenario=rare_earth_2010 seed=1"
    )
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))
    base = shlex.split(args.command)
    times: dict[str, list[tuple[float, float]]] = {"figures": [], "no_figures": []}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-figures-") as tmp:

        def cmd(variant: str, i: int) -> list[str]:
            flag = "true" if variant == "figures" else "false"
            return [*base, f"output.figures={flag}", f"hydra.run.dir={tmp}/{variant}-{i}"]

        for variant in times:  # warm the numba cache and the file system
            _timed(cmd(variant, -1), env)
        for i in range(args.reps):  # alternate, so a change in the machine's load hits both alike
            for variant in ("figures", "no_figures") if i % 2 == 0 else ("no_figures", "figures"):
                times[variant].append(_timed(cmd(variant, i), env))
    load_end = os.getloadavg()

    med = {v: (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts)) for v, ts in times.items()}
    mins = {v: (min(w for w, _ in ts), min(c for _, c in ts)) for v, ts in times.items()}
    wall_ratio = med["figures"][0] / med["no_figures"][0]
    cpu_ratio = med["figures"][1] / med["no_figures"][1]
    # Run i of each variant ran back to back: the median of those pairs' ratios is less sensitive to
    # the machine's speed drifting over the minutes (on a shared machine it does, by 30% and more).
    paired = statistics.median(f[0] / n[0] for f, n in zip(times["figures"], times["no_figures"], strict=True))
    verdict = "PASS" if max(wall_ratio, paired) <= TARGET else "MISS"
    machine = (
        f"{_cpu_model()} | {os.cpu_count()} logical cores | {platform.platform()} | Python {platform.python_version()}"
    )
    lines = [
        f"Machine: {machine}",
        f"Load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f}",
        f"Command: {args.command} ({args.reps} runs of each, alternating, warm numba cache)",
        f"{'variant':<12}{'wall med':>10}{'wall min':>10}{'CPU med':>10}{'CPU min':>10}",
    ]
    for v in times:
        lines.append(f"{v:<12}{med[v][0]:>10.2f}{mins[v][0]:>10.2f}{med[v][1]:>10.2f}{mins[v][1]:>10.2f}")
    lines.append(
        f"ratio with/without figures: wall {wall_ratio:.2f} (medians; median of back-to-back pairs {paired:.2f}; "
        f"min/min {mins['figures'][0] / mins['no_figures'][0]:.2f}), CPU {cpu_ratio:.2f}; "
        f"target wall <= {TARGET} (both median ratios): {verdict}"
    )
    if max(load_start[0], load_end[0]) > (os.cpu_count() or 1) * 0.5:
        lines.append("WARNING: the machine was busy with other work; wall times are inflated and noisy.")
    print("\n".join(lines))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC)
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        out = RESULTS / f"figures-{stamp:%Y%m%d-%H%M}.json"
        out.write_text(
            json.dumps(
                {
                    "when": stamp.isoformat(timespec="seconds"),
                    "commit": commit.stdout.strip(),
                    "machine": machine,
                    "load_average": {"start": load_start, "end": load_end},
                    "command": args.command,
                    "runs": {v: [{"wall_s": w, "cpu_s": c} for w, c in ts] for v, ts in times.items()},
                    "median": {v: {"wall_s": m[0], "cpu_s": m[1]} for v, m in med.items()},
                    "ratio": {"wall": wall_ratio, "wall_paired_median": paired, "cpu": cpu_ratio},
                    "verdict": verdict,
                    "target_wall_ratio": TARGET,
                    "report": lines,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"written: {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
