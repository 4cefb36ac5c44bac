"""Check that a change to the code changes no result, byte for byte: save a snapshot of twelve runs
with the code before, compare with the code after.

A speed-up that claims to leave the numbers as they were (a kernel rewritten, a constant hoisted) is
checked here on every shipped case, on lever sets, a generated world and the strategic game: each
run's monthly records (every good-level and country-level variable), the coercer's cost, the months
at the price cap, the trade flows and the metrics. Arrays are compared by their bytes (signed zeros and
NaN payloads included), floats by their bits, the rest by equality; timings are left out.

Both snapshots must come from the same machine and environment: the comparison is exact on purpose,
and another CPU, libm or NumPy build may round differently (the test suite compares across code paths
with tolerances instead). ::

    git worktree add ../before <commit before the change>
    PYTHONPATH=../before .venv/bin/python benchmarks/snapshot.py save before.pkl   # runs the code before
    .venv/bin/python benchmarks/snapshot.py compare before.pkl    # the code now; exit status 1 on a difference

About 30 s on one core. ``--quick`` runs the first three only.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))

#: (case, policies, overrides, seed): every shipped case, lever sets, a generated world, the game.
RUNS = [
    ("rare_earth_2010", (), {}, 1),
    ("rare_earth_2010", (), {"model.precaution": 2.7, "model.sourcing_adjustment_rate": 0.05}, 7),
    ("rare_earth_2010", ("stockpile", "diversification"), {}, 3),
    ("rare_earth_2010", ("collective_response",), {}, 2),
    ("rare_earth_2010", ("substitution", "recycling", "inventory_incentive", "friendshoring"), {}, 4),
    ("australia_2020", (), {}, 1),
    ("gallium_germanium_2023", (), {}, 1),
    ("rare_earth_magnets_2025", (), {}, 1),
    ("us_tariffs_2025", (), {}, 1),
    ("minimal", (), {}, 1),
    ("generated", (), {}, 5),
    ("rare_earth_2010_game", (), {}, 1),
]


def _runner(case: str, policies: tuple):
    try:
        from sim.experiments.runner import CaseRunner
    except ImportError:  # a checkout from before sim.experiments.runner (2026-12-04)
        from sim.experiments.exploration import CaseRunner
    return CaseRunner(case, policies=policies)


def one_run(case: str, policies: tuple, overrides: dict, seed: int) -> dict:
    """What one run leaves: records, coercer cost, months at the cap, flows and metrics (no timings)."""
    from sim.model.model import CoercionModel
    from sim.reporting.metrics import compute_metrics

    model = CoercionModel(_runner(case, policies).config(overrides, seed=seed)).run()
    rec = model.recorder
    out = {f"good.{k}": v.copy() for k, v in rec.good_level.items()}
    out.update({f"country.{k}": v.copy() for k, v in rec.country_level.items()})
    out["coercer_cost"] = rec.coercer_cost.copy()
    out["at_price_cap"] = rec.at_price_cap.copy()
    out["flows"] = [tuple(np.asarray(x).copy() for x in f) for f in rec.flows]
    metrics = compute_metrics(model)
    out.update({f"metric.{k}": v for k, v in metrics.items() if "seconds" not in k})
    return out


def same(a, b) -> bool:
    """Equal byte for byte (arrays), bit for bit (floats, NaN equal to NaN), or by ``==``."""
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return a == b


def snapshot(runs: list) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the inactive-lever warnings of some lever sets
        return {f"{c}|{p}|{sorted(o.items())}|{s}": one_run(c, p, o, s) for c, p, o, s in runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--quick", action="store_true", help="the first three runs only")
    args = parser.parse_args()
    runs = RUNS[:3] if args.quick else RUNS
    snap = snapshot(runs)
    if args.action == "save":
        args.file.write_bytes(pickle.dumps(snap))
        print(f"{len(snap)} runs -> {args.file}")
        return 0
    ref = pickle.loads(args.file.read_bytes())
    differences = 0
    for key in ref:
        if key not in snap:
            continue  # a --quick comparison against a full snapshot
        if set(ref[key]) != set(snap[key]):
            print("outputs differ:", key, sorted(set(ref[key]) ^ set(snap[key])))
            differences += 1
        for name in ref[key]:
            if name in snap[key] and not same(ref[key][name], snap[key][name]):
                print("DIFFERENT:", key, name)
                differences += 1
    compared = sum(key in snap for key in ref)
    print(f"runs compared: {compared}; differences: {differences}")
    return 1 if differences or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
