#!/usr/bin/env python
"""Benchmark of the market-clearing kernel (``make bench``; not part of the test suite).

Measures, single-threaded, on seeded synthetic markets of three sizes (S, M, L):

* clearing time per step for all goods: cold (a fresh ``clear_markets`` call from reference prices,
  validation and structure built inside) and warm as the model does it (structure reused,
  ``validate=False``, ``initial_price``/``initial_rent`` from the previous step's result) after a
  shock: no shock, an export quota at 60% of each good's largest exporter's exports, or a 50%
  capacity cut of each good's largest producer; median and min over timeit-style repeats, and the
  Newton iterations taken;
* the ratio to the NumPy twin (``benchmarks/numpy_twin.py``, same iteration, same inputs and start)
  at every size, after asserting that the twin and the kernel agree at S and M;
* the ratio to the scipy reference solver in ``tests/reference_solver.py`` at S and M, if that
  file exists and works (run in a child process with a time limit);
* first-call compile time (fresh process, empty ``NUMBA_CACHE_DIR``) and cache-load time (fresh
  process, warm cache);
* peak memory (``ru_maxrss``) of a child process clearing the L market.

Writes ``benchmarks/results/kernel-<YYYYMMDD-HHMM>.json`` and prints a table with PASS/MISS per
target. See ``benchmarks/README.md``. Options: ``--quick`` (fewer repeats, for trying it out),
``--sizes S,M`` (subset), ``--no-save``.
"""

from __future__ import annotations

import os

# Single-threaded everywhere, set before NumPy (and its BLAS) or numba are imported; children
# inherit the environment.
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as _dt  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))
sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import numpy as np  # noqa: E402
from numpy_twin import clear_markets_numpy  # noqa: E402

from sim.market import MarketStructure, clear_markets  # noqa: E402
from sim.market.synthetic import synthetic_market  # noqa: E402

SEED = 20240601
#: (countries, goods, user firms, producers or None for synthetic_market's default).
SIZES = {
    "S": (5, 3, 100, None),
    "M": (20, 10, 2_000, None),
    "L": (200, 50, 20_000, 2_000),
}
SCENARIOS = ("cold", "warm-steady", "warm-quota", "warm-capacity")
SCENARIO_TEXT = {
    "cold": "fresh clear_markets call from reference prices (validate + structure inside)",
    "warm-steady": "warm, no shock: previous step's prices, structure reused, validate=False",
    "warm-quota": "warm after an export quota at 60% of each good's largest exporter's exports",
    "warm-capacity": "warm after a 50% capacity cut of each good's largest producer",
}
TARGET_L_SECONDS = 0.050
TARGET_TWIN_RATIO = 20.0
TARGET_CACHE_LOAD_S = 1.0
TARGET_PEAK_BYTES = 1 << 30
AGREEMENT_RTOL = 1e-8
REFERENCE_TIMEOUT_S = 150
REFERENCE_CANDIDATES = (
    "reference_clear_markets",
    "clear_markets_reference",
    "reference_clear",
    "solve_reference",
    "reference_solve",
    "clear_markets",
    "solve_markets",
    "solve_market",
    "solve",
    "clear",
)


# ---------------------------------------------------------------------------------------------
# Markets and shocks


def make_market(size: str):
    """The seeded synthetic market of a size."""
    C, G, F, P = SIZES[size]
    return synthetic_market(C, G, F, n_producers=P, seed=SEED)


def _largest_exporter(prev) -> np.ndarray:
    return np.nan_to_num(prev.exports).argmax(axis=1)


def shock_quota(market, prev):
    """Export quota at 60% of the largest exporter's exports, on every good."""
    G, C = market.n_goods, int(market.n_countries)
    top = _largest_exporter(prev)
    quota = np.full((G, C), np.inf)
    quota[np.arange(G), top] = 0.6 * prev.exports[np.arange(G), top]
    return dataclasses.replace(market, export_quota=quota)


def shock_capacity(market, prev):
    """50% capacity cut of the largest producer of every good."""
    cap = market.capacity.copy()
    order = np.lexsort((-cap, market.producer_good))  # by good, then capacity descending
    first = np.r_[True, np.diff(market.producer_good[order]) != 0]
    cap[order[first]] *= 0.5
    return dataclasses.replace(market, capacity=cap)


def shock_bans(market, prev, seed=0):
    """Largest exporter of each good banned to a random half of destinations, 50% elsewhere."""
    rng = np.random.default_rng(seed)
    G, C = market.n_goods, int(market.n_countries)
    top = _largest_exporter(prev)
    ban = np.zeros((G, C, C))
    for g in range(G):
        half = rng.random(C) < 0.5
        ban[g, top[g], half] = 1.0
        ban[g, top[g], ~half] = 0.5
        ban[g, top[g], top[g]] = 0.0
    return dataclasses.replace(market, ban_intensity=ban)


def shock_measures(market, prev, seed=0):
    """Zero export quota on the largest exporter, duties, tariffs and stockpile releases."""
    rng = np.random.default_rng(seed)
    G, C = market.n_goods, int(market.n_countries)
    top = _largest_exporter(prev)
    quota = np.full((G, C), np.inf)
    quota[np.arange(G), top] = 0.0
    release = np.where(rng.random((G, C)) < 0.3, 0.2 * prev.sold.sum(axis=1)[:, None] / C, 0.0)
    return dataclasses.replace(
        market,
        export_quota=quota,
        export_duty=rng.uniform(0.0, 0.3, (G, C)),
        import_tariff=rng.uniform(0.0, 0.4, (G, C, C)),
        stockpile_release=release,
    )


def warm(market, prev):
    """The shocked market started from the previous step's prices and rents."""
    return dataclasses.replace(market, initial_price=prev.price_domestic, initial_rent=prev.quota_rent)


# ---------------------------------------------------------------------------------------------
# Timing


def time_calls(fn, *, repeat: int, min_time: float) -> dict:
    """timeit-style: one warm-up call, ``number`` calls per repeat so a repeat lasts ``min_time``.

    Returns per-call seconds: median and min over the repeats (garbage collector off, as timeit).
    """
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    number = max(1, min(100_000, math.ceil(min_time / max(once, 1e-9))))
    times = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeat": repeat,
        "number": number,
        "times_s": times,
    }


def _iters(res) -> dict:
    it = np.asarray(res.iterations)
    return {
        "total": int(it.sum()),
        "max": int(it.max()) if it.size else 0,
        "mean": float(it.mean()) if it.size else 0.0,
    }


# ---------------------------------------------------------------------------------------------
# Agreement kernel vs twin


def _max_rel(a, b, floor: float = 0.0) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.isnan(a), np.isnan(b)
    if a.shape != b.shape or (na != nb).any():
        return math.inf
    d = np.abs(a - b)[~na]
    s = np.maximum(np.abs(b[~na]), floor)
    if not d.size:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d == 0.0, 0.0, d / np.where(s > 0.0, s, 1e-300))
    return float(r.max())


def compare(kernel_res, twin_res, market) -> dict:
    """Largest relative differences between kernel and twin results."""
    pref = market.reference_price[:, None]
    return {
        "price_domestic": _max_rel(twin_res.price_domestic, kernel_res.price_domestic),
        "price_export": _max_rel(twin_res.price_export, kernel_res.price_export),
        "quota_rent_over_pref": _max_rel(twin_res.quota_rent / pref, kernel_res.quota_rent / pref, 1.0),
        "edge_flow": _max_rel(
            twin_res.edge_flow, kernel_res.edge_flow, 1e-12 * max(float(kernel_res.edge_flow.max(initial=0.0)), 1.0)
        ),
        "delivered": _max_rel(twin_res.delivered, kernel_res.delivered, 1e-12),
        "iterations_equal": bool(np.array_equal(twin_res.iterations, kernel_res.iterations)),
        "converged_equal": bool(np.array_equal(twin_res.converged, kernel_res.converged)),
    }


def _agrees(d: dict) -> bool:
    return (
        d["price_domestic"] <= AGREEMENT_RTOL
        and d["price_export"] <= AGREEMENT_RTOL
        and d["quota_rent_over_pref"] <= AGREEMENT_RTOL
        and d["converged_equal"]
    )


def self_check(markets: dict) -> list[dict]:
    """Assert kernel/twin agreement (prices to 1e-8 relative) at S and M, with and without measures."""
    rows = []
    for size in ("S", "M"):
        if size not in markets:
            continue
        for seed_offset in (0, 1):
            base = (
                markets[size]
                if seed_offset == 0
                else synthetic_market(*SIZES[size][:3], n_producers=SIZES[size][3], seed=SEED + 1)
            )
            prev = clear_markets(base, allow_nonconvergence=True)
            cases = {
                "base": base,
                "quota60-warm": warm(shock_quota(base, prev), prev),
                "capacity-warm": warm(shock_capacity(base, prev), prev),
                "bans": shock_bans(base, prev, seed=seed_offset),
                "bans-warm": warm(shock_bans(base, prev, seed=seed_offset), prev),
                "measures": shock_measures(base, prev, seed=seed_offset),
                # Flat rows: inelastic demand far below capacity, and a deep capacity shortage.
                "inelastic-glut": dataclasses.replace(
                    base,
                    demand_elasticity=np.zeros_like(base.demand_elasticity),
                    planned_purchase=base.planned_purchase * 0.01,
                ),
                "capacity-cut-90": dataclasses.replace(base, capacity=base.capacity * 0.1),
                # Every market starts far below its producers' costs (the flat-row restart rule).
                "below-cost-start": dataclasses.replace(
                    base, initial_price=prev.price_domestic * 0.05, demand_elasticity=base.demand_elasticity * 0.1
                ),
            }
            for name, mk in cases.items():
                k = clear_markets(mk, allow_nonconvergence=True)
                t = clear_markets_numpy(mk)
                d = compare(k, t, mk)
                d.update(size=size, seed=SEED + seed_offset, case=name, kernel_converged=bool(k.converged.all()))
                rows.append(d)
                # Where the kernel fails to converge the two need not agree (both iterate on after a
                # failure, and rounding decides where they stop); that is reported, not asserted.
                if d["kernel_converged"] and not _agrees(d):
                    raise AssertionError(
                        f"NumPy twin and kernel disagree at {size} seed {SEED + seed_offset} case {name!r}: {d}\n"
                        f"kernel iterations {k.iterations.tolist()}, twin {t.iterations.tolist()}\n"
                        "If sim/market/kernel.py changed its iteration on purpose, update benchmarks/numpy_twin.py to match."
                    )
    return rows


# ---------------------------------------------------------------------------------------------
# Child processes

CHILD_ENV_PATH = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)

STARTUP_CHILD = textwrap.dedent(
    """
    import time
    _t0 = time.perf_counter()
    import json, os, sys
    if os.environ.get("BENCH_STUB_SIM_PACKAGE"):
        # Diagnostic: import sim.market without running sim/__init__.py (as if that were lazy).
        import importlib.util, types
        _spec = importlib.util.find_spec("sim")
        _pkg = types.ModuleType("sim")
        _pkg.__path__ = list(_spec.submodule_search_locations)
        sys.modules["sim"] = _pkg
    import numpy
    _tn = time.perf_counter()
    import numba
    _tb = time.perf_counter()
    import sim.market
    from sim.market import clear_markets
    _t1 = time.perf_counter()
    from sim.market.synthetic import synthetic_market
    m = synthetic_market(3, 2, 20, seed=0)
    _t2 = time.perf_counter()
    clear_markets(m)
    _t3 = time.perf_counter()
    clear_markets(m)
    _t4 = time.perf_counter()
    heavy = sorted(n for n in ("mesa", "pandas", "hydra", "omegaconf", "matplotlib", "scipy", "networkx", "pyarrow") if n in sys.modules)
    print(json.dumps({"import_s": _t1 - _t0, "import_numpy_s": _tn - _t0, "import_numba_s": _tb - _tn,
                      "import_sim_market_s": _t1 - _tb, "first_clear_s": _t3 - _t2, "second_clear_s": _t4 - _t3,
                      "heavy_modules_imported": heavy}))
    """
)

MEMORY_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    def status():
        out = {}
        with open("/proc/self/status") as fh:
            for ln in fh:
                if ln.startswith(("VmRSS:", "VmHWM:")):
                    out[ln.split(":")[0]] = int(ln.split()[1]) * 1024
        out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return out
    def reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM (the peak RSS) to the current RSS
            return True
        except OSError:
            return False
    import numpy as np
    import dataclasses
    from sim.market import MarketInputs, MarketStructure, clear_markets
    from sim.market.synthetic import synthetic_market
    out = {"after_imports": status()}
    clear_markets(synthetic_market(3, 2, 20, seed=0))  # load the compiled kernel from the cache
    out["after_kernel_load"] = status()
    with np.load(sys.argv[1]) as d:
        m = MarketInputs(**{k: (int(d[k]) if k == "n_countries" else d[k]) for k in d.files})
    out["after_inputs"] = status()
    out["peak_reset"] = reset_peak()
    prev = clear_markets(m, allow_nonconvergence=True)
    st = MarketStructure.build(m)
    top = np.nan_to_num(prev.exports).argmax(axis=1)
    q = np.full(prev.exports.shape, np.inf)
    q[np.arange(q.shape[0]), top] = 0.6 * prev.exports[np.arange(q.shape[0]), top]
    sh = dataclasses.replace(m, export_quota=q, initial_price=prev.price_domestic, initial_rent=prev.quota_rent)
    clear_markets(sh, validate=False, structure=st, allow_nonconvergence=True)
    out["after_clearing"] = status()
    print(json.dumps(out))
    """
)

FLOOR_MODULE = textwrap.dedent(
    """
    from numba import njit

    @njit(cache=True)
    def total(a):
        return a.sum()
    """
)

FLOOR_CHILD = textwrap.dedent(
    """
    import time
    _t0 = time.perf_counter()
    import json, sys
    import numpy as np
    import numba
    _t1 = time.perf_counter()
    sys.path.insert(0, sys.argv[1])
    import bench_floor_module
    a = np.ones(3)
    _t2 = time.perf_counter()
    bench_floor_module.total(a)
    _t3 = time.perf_counter()
    print(json.dumps({"import_numpy_numba_s": _t1 - _t0, "first_call_s": _t3 - _t2, "total_s": _t1 - _t0 + _t3 - _t2}))
    """
)

REFERENCE_CHILD = textwrap.dedent(
    """
    import importlib.util, inspect, json, math, os, signal, statistics, sys, time, traceback
    import numpy as np
    from sim.market import clear_markets
    from sim.market.synthetic import synthetic_market

    path, sizes_json, candidates_json, seed, per_size_budget = sys.argv[1:6]
    sizes = json.loads(sizes_json); seed = int(seed); per_size_budget = float(per_size_budget)
    def emit(**kw):
        print(json.dumps(kw), flush=True)

    spec = importlib.util.spec_from_file_location("reference_solver", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reference_solver"] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        emit(status="import-error", error=f"{type(exc).__name__}: {exc}")
        sys.exit(0)
    wanted = os.environ.get("BENCH_REFERENCE_ENTRY")
    names = [wanted] if wanted else json.loads(candidates_json)
    fn = next((getattr(mod, n) for n in names if n and callable(getattr(mod, n, None))), None)
    if fn is None:
        emit(status="no-entry-point", error=f"none of {names} found; public names: {[n for n in dir(mod) if not n.startswith('_')]}")
        sys.exit(0)
    emit(status="loaded", entry=fn.__name__)

    def prices(res):
        for key in ("price_domestic", "prices", "price"):
            if isinstance(res, dict) and key in res:
                return np.asarray(res[key], float)
            if hasattr(res, key):
                return np.asarray(getattr(res, key), float)
        if isinstance(res, (tuple, list)) and res and np.ndim(res[0]) == 2:
            return np.asarray(res[0], float)
        if isinstance(res, np.ndarray) and res.ndim == 2:
            return res.astype(float)
        raise TypeError(f"cannot find domestic prices in a {type(res).__name__}")

    class Timeout(Exception):
        pass
    def on_alarm(signum, frame):
        raise Timeout()
    signal.signal(signal.SIGALRM, on_alarm)

    for size, (C, G, F, P) in sizes.items():
        m = synthetic_market(C, G, F, n_producers=P, seed=seed)
        k = clear_markets(m, allow_nonconvergence=True)
        signal.alarm(max(1, int(per_size_budget)))
        try:
            t0 = time.perf_counter()
            res = fn(m)
            first = time.perf_counter() - t0
            p = prices(res)
            ok = np.isfinite(p) & np.isfinite(k.price_domestic)
            both_nan = np.isnan(p) == np.isnan(k.price_domestic)
            rel = float(np.max(np.abs(p[ok] - k.price_domestic[ok]) / k.price_domestic[ok])) if ok.any() else math.nan
            times = []
            t_start = time.perf_counter()
            while len(times) < 5 and (time.perf_counter() - t_start) < 0.5 * per_size_budget:
                t0 = time.perf_counter()
                fn(m)
                times.append(time.perf_counter() - t0)
            signal.alarm(0)
            if not times:
                times = [first]
            emit(status="ok", size=size, first_call_s=first, median_s=statistics.median(times), min_s=min(times),
                 repeat=len(times), max_rel_price_diff_vs_kernel=rel, nan_pattern_equal=bool(both_nan.all()))
        except Timeout:
            emit(status="timeout", size=size, error=f"no result within {per_size_budget:.0f} s")
            break
        except Exception as exc:
            signal.alarm(0)
            emit(status="error", size=size, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc()[-1500:])
            break
    """
)


def _child_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = CHILD_ENV_PATH
    env.update(extra)
    return env


def _run_child(code: str, args=(), env=None, timeout=300) -> tuple[dict | list | None, float, str]:
    """Run ``code`` in a fresh interpreter; return (parsed JSON lines, wall seconds, stderr tail)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(code)
        script = fh.name
    try:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, script, *map(str, args)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                cwd=ROOT,
            )
            out, err = proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = f"timed out after {timeout} s"
        wall = time.perf_counter() - t0
    finally:
        os.unlink(script)
    parsed = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return parsed, wall, (err or "")[-2000:]


def measure_startup(cache_dir: str, warm_repeats: int) -> dict:
    """Compile time with an empty cache, then cache-load time with the cache it filled."""
    env = _child_env(NUMBA_CACHE_DIR=cache_dir)
    cold, wall, err = _run_child(STARTUP_CHILD, env=env, timeout=600)
    if not cold:
        return {"error": f"compile child failed: {err}"}
    c = cold[-1]
    result = {
        "compile": {
            **c,
            "import_plus_first_clear_s": c["import_s"] + c["first_clear_s"],
            "process_wall_s": wall,
        },
        "cache_load": [],
    }
    for _ in range(warm_repeats):
        w, wall, err = _run_child(STARTUP_CHILD, env=env, timeout=300)
        if not w:
            result["cache_load_error"] = err
            break
        w = w[-1]
        w["before_first_clearing_s"] = w["import_s"] + w["first_clear_s"] - w["second_clear_s"]
        w["process_wall_s"] = wall
        result["cache_load"].append(w)
    if result["cache_load"]:
        v = [w["before_first_clearing_s"] for w in result["cache_load"]]
        result["cache_load_median_s"] = statistics.median(v)
        result["cache_load_min_s"] = min(v)
    # Diagnostic: numba's own floor, a trivial cached @njit function in a fresh process.
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as mod_dir:
        (Path(mod_dir) / "bench_floor_module.py").write_text(FLOOR_MODULE)
        floor_env = {**env, "NUMBA_CACHE_DIR": str(Path(mod_dir) / "cache")}
        _run_child(FLOOR_CHILD, args=[mod_dir], env=floor_env, timeout=120)  # compile and cache
        floors = []
        for _ in range(max(1, warm_repeats - 1)):
            f, _, _ = _run_child(FLOOR_CHILD, args=[mod_dir], env=floor_env, timeout=120)
            if f:
                floors.append(f[-1])
        if floors:
            result["numba_floor"] = floors
            result["numba_floor_median_s"] = statistics.median(x["total_s"] for x in floors)
    # Diagnostic: the same with sim/__init__.py skipped (what a lazy top-level package would give).
    stub = []
    for _ in range(max(1, warm_repeats - 1)):
        w, wall, err = _run_child(STARTUP_CHILD, env={**env, "BENCH_STUB_SIM_PACKAGE": "1"}, timeout=300)
        if not w:
            break
        w = w[-1]
        w["before_first_clearing_s"] = w["import_s"] + w["first_clear_s"] - w["second_clear_s"]
        w["process_wall_s"] = wall
        stub.append(w)
    if stub:
        result["cache_load_without_sim_init"] = stub
        result["cache_load_without_sim_init_median_s"] = statistics.median(w["before_first_clearing_s"] for w in stub)
    return result


def measure_memory(market, cache_dir: str) -> dict:
    """Peak RSS of a fresh process that loads the L inputs and clears them (cold, then warm)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "market.npz"
        arrays = {
            f.name: getattr(market, f.name) for f in dataclasses.fields(market) if getattr(market, f.name) is not None
        }
        np.savez(path, **arrays)
        res, wall, err = _run_child(MEMORY_CHILD, args=[path], env=_child_env(NUMBA_CACHE_DIR=cache_dir), timeout=300)
    if not res:
        return {"error": err}
    r = res[-1]
    # Whole-process peak (ru_maxrss, the target) and the imports baseline (resident after imports).
    r["peak_bytes"] = r["after_clearing"]["ru_maxrss"]
    r["imports_rss_bytes"] = r["after_imports"]["VmRSS"]
    r["imports_peak_bytes"] = r["after_imports"]["ru_maxrss"]
    # Peak while clearing (VmHWM reset just before), above the imports baseline and above the inputs.
    if r.get("peak_reset"):
        clearing_peak = r["after_clearing"]["VmHWM"]
        r["clearing_peak_bytes"] = clearing_peak
        r["peak_above_imports_bytes"] = clearing_peak - r["imports_rss_bytes"]
        r["peak_above_inputs_bytes"] = clearing_peak - r["after_inputs"]["VmRSS"]
    else:
        r["peak_above_imports_bytes"] = r["peak_bytes"] - r["imports_rss_bytes"]
    r["inputs_nbytes"] = int(sum(a.nbytes for a in arrays.values() if isinstance(a, np.ndarray)))
    return r


def measure_reference(sizes: list[str], kernel_cold: dict) -> dict:
    """Time the scipy reference solver at S and M in a child process, if it is there and works."""
    path = ROOT / "tests" / "reference_solver.py"
    if not path.exists():
        return {"status": "missing", "note": f"{path.relative_to(ROOT)} not found; reference ratios skipped"}
    per_size = {s: SIZES[s] for s in sizes if s in ("S", "M")}
    budget = REFERENCE_TIMEOUT_S / max(len(per_size), 1)
    res, wall, err = _run_child(
        REFERENCE_CHILD,
        args=[path, json.dumps(per_size), json.dumps(REFERENCE_CANDIDATES), SEED, budget],
        env=_child_env(),
        timeout=REFERENCE_TIMEOUT_S + 60,
    )
    out = {"status": "unknown", "sizes": {}, "wall_s": wall}
    if not res:
        out.update(status="child-failed", error=err)
        return out
    for line in res:
        st = line.get("status")
        if st in ("import-error", "no-entry-point"):
            out.update(status=st, error=line.get("error"))
        elif st == "loaded":
            out.update(status="loaded", entry=line.get("entry"))
        elif "size" in line:
            s = line["size"]
            out["sizes"][s] = line
            if st == "ok" and s in kernel_cold:
                line["ratio_vs_kernel_cold"] = line["median_s"] / kernel_cold[s]["median_s"]
    for s in per_size:
        if s not in out["sizes"]:
            out["sizes"][s] = {
                "status": "not-run",
                "error": "an earlier size failed or the child stopped" + (f": {err}" if err else ""),
            }
    return out


# ---------------------------------------------------------------------------------------------
# Machine description


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "logical_cores": os.cpu_count(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        info["cores_available"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            models = [ln.split(":", 1)[1].strip() for ln in fh if ln.lower().startswith("model name")]
        info["cpu_model"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        with open("/proc/meminfo") as fh:
            for ln in fh:
                if ln.startswith("MemTotal:"):
                    info["memory_bytes"] = int(ln.split()[1]) * 1024
    except OSError:
        pass
    import numba

    info["numpy"] = np.__version__
    info["numba"] = numba.__version__
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:
        info["scipy"] = None
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "--stat", "HEAD", "--", "sim/market"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        info["sim_market_modified"] = diff.splitlines()[:-1] if diff else []
    except OSError:
        pass
    info["kernel_sha256"] = hashlib.sha256((ROOT / "sim" / "market" / "kernel.py").read_bytes()).hexdigest()[:16]
    info["threads"] = {v: os.environ.get(v) for v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    try:
        info["load_average_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# Report


def _ms(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    return f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.1f}"


def report(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m.get('cpu_model')} | {m.get('logical_cores')} logical cores | "
        f"{m.get('memory_bytes', 0) / 2**30:.1f} GiB | {m.get('platform')}",
        f"Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, scipy {m['scipy']} | {m['date']} | "
        f"commit {m.get('git_commit', '?')[:10]}{' + uncommitted sim/market changes' if m.get('sim_market_modified') else ''}, "
        f"kernel.py sha256 {m['kernel_sha256']} | single-threaded",
    ]
    la0, la1 = m.get("load_average_at_start"), m.get("load_average_at_end")
    if la0 and la1:
        lines.append(f"Load average (1 min) at start {la0[0]:.2f}, at end {la1[0]:.2f}")
        if max(la0[0], la1[0]) > 0.5 * (m.get("logical_cores") or 1) + 0.5:
            lines.append(
                "WARNING: the machine was busy with other work during the run; timings are inflated and noisy (min is the better guide)."
            )
    lines += ["", "Clearing time per step, all goods (ms; median / min over repeats):"]
    hdr = f"{'size':<4} {'scenario':<14} {'kernel med':>10} {'min':>9} {'iters tot/max':>13} {'twin med':>10} {'x twin':>7} {'ref med':>9} {'x ref':>7}"
    lines += [hdr, "-" * len(hdr)]
    for size, sres in results["sizes"].items():
        for sc in SCENARIOS:
            r = sres["scenarios"].get(sc)
            if r is None:
                continue
            k, t = r["kernel"], r.get("twin")
            ref_med = ref_ratio = "-"
            if sc == "cold":
                ref = results.get("reference", {}).get("sizes", {}).get(size)
                if ref and ref.get("status") == "ok":
                    ref_med, ref_ratio = _ms(ref["median_s"]), f"{ref['ratio_vs_kernel_cold']:.1f}"
                elif ref:
                    ref_med = ref.get("status", "-")
            it = f"{k['iterations']['total']}/{k['iterations']['max']}"
            conv = "" if k["converged"] else " NOT CONVERGED"
            twin_med = _ms(t["median_s"]) if t else "-"
            twin_ratio = f"{r['twin_ratio']:.1f}" if t else "-"
            lines.append(
                f"{size:<4} {sc:<14} {_ms(k['median_s']):>10} {_ms(k['min_s']):>9} {it:>13} "
                f"{twin_med:>10} {twin_ratio:>7} {ref_med:>9} {ref_ratio:>7}{conv}"
            )
        d = sres["dims"]
        lines.append(
            f"     ({d['countries']} countries, {d['goods']} goods, {d['firms']} firms, {d['rows']} purchase rows, "
            f"{d['producers']} producers, {d['edges']} edges; validate {_ms(sres['validate_s'])} ms, "
            f"structure build {_ms(sres['structure_build_s'])} ms)"
        )
    lines.append("")
    sc = results.get("self_check")
    if sc is not None:
        worst = max((r["price_domestic"] for r in sc), default=0.0)
        worst_rent = max((r["quota_rent_over_pref"] for r in sc), default=0.0)
        same_it = sum(r["iterations_equal"] for r in sc)
        conv = [r for r in sc if r["kernel_converged"]]
        worst = max((r["price_domestic"] for r in conv), default=0.0)
        worst_rent = max((r["quota_rent_over_pref"] for r in conv), default=0.0)
        lines.append(
            f"Twin self-check (S, M; {len(sc)} cases with/without quotas, bans, measures, flat rows): PASS, max rel price diff "
            f"{worst:.1e}, max rent diff/pref {worst_rent:.1e}, identical iteration counts in {same_it}/{len(sc)}"
        )
        diff_path = [f"{r['size']}/{r['seed']}/{r['case']}" for r in sc if not r["iterations_equal"]]
        if diff_path:
            lines.append(
                f"  WARNING: twin and kernel took different iteration counts in {len(diff_path)} case(s) ({', '.join(diff_path[:6])}): "
                "the twin no longer follows the kernel's path exactly; check benchmarks/numpy_twin.py against sim/market/kernel.py"
            )
        for r in sc:
            if not r["kernel_converged"]:
                lines.append(
                    f"  kernel did not converge on self-check case {r['size']} seed {r['seed']} {r['case']} "
                    f"(twin {'agrees' if _agrees(r) else 'differs'}; not asserted)"
                )
    ag = [
        (s, sc2, r["agreement"]["price_domestic"])
        for s, sr in results["sizes"].items()
        for sc2, r in sr["scenarios"].items()
        if "agreement" in r
    ]
    if ag:
        s, sc2, v = max(ag, key=lambda x: x[2])
        lines.append(f"Twin vs kernel on the timed markets: max rel price diff {v:.1e} ({s} {sc2})")
    ref = results.get("reference", {})
    lines.append(
        f"Reference solver (tests/reference_solver.py): {ref.get('status')}"
        + (f", entry {ref['entry']}" if ref.get("entry") else "")
        + (f" - {ref['note']}" if ref.get("note") else "")
        + (f" - {ref['error']}" if ref.get("error") else "")
    )
    for s, r in ref.get("sizes", {}).items():
        if r.get("status") == "ok":
            lines.append(
                f"  {s}: {_ms(r['median_s'])} ms median ({r['repeat']} calls), {r['ratio_vs_kernel_cold']:.1f}x the kernel's cold time; "
                f"max rel price diff vs kernel {r['max_rel_price_diff_vs_kernel']:.1e}"
            )
        else:
            lines.append(f"  {s}: {r.get('status')}: {r.get('error', '')}")
    st = results.get("startup", {})
    if "compile" in st:
        c = st["compile"]
        lines.append(
            f"Compile (fresh process, empty cache): import {c['import_s']:.2f} s + first clearing {c['first_clear_s']:.2f} s = "
            f"{c['import_plus_first_clear_s']:.2f} s (process wall {c['process_wall_s']:.2f} s)"
        )
    if st.get("cache_load"):
        w = st["cache_load"]
        lines.append(
            f"Cache load (fresh process, warm cache; import + first clearing - second clearing): median {st['cache_load_median_s']:.3f} s, "
            f"min {st['cache_load_min_s']:.3f} s over {len(w)} processes"
        )
        med = {
            key: statistics.median(x[key] for x in w)
            for key in (
                "import_numpy_s",
                "import_numba_s",
                "import_sim_market_s",
                "first_clear_s",
                "second_clear_s",
                "process_wall_s",
            )
        }
        lines.append(
            f"  of which: import numpy {med['import_numpy_s']:.3f} s, numba {med['import_numba_s']:.3f} s, sim.market {med['import_sim_market_s']:.3f} s; "
            f"first clearing {med['first_clear_s']:.3f} s vs second {med['second_clear_s'] * 1e3:.2f} ms; process wall {med['process_wall_s']:.2f} s"
        )
        heavy = w[0].get("heavy_modules_imported") or []
        if heavy:
            lines.append(f"  note: 'import sim.market' also imported {', '.join(heavy)} (sim/__init__.py runs first)")
    if "numba_floor_median_s" in st:
        fl = st["numba_floor"]
        lines.append(
            f"  diagnostic, numba's floor (trivial cached @njit function, fresh process): {st['numba_floor_median_s']:.3f} s "
            f"(import numpy + numba {statistics.median(x['import_numpy_numba_s'] for x in fl):.3f} s, "
            f"first call {statistics.median(x['first_call_s'] for x in fl):.3f} s)"
        )
    if "cache_load_without_sim_init_median_s" in st:
        w2 = st["cache_load_without_sim_init"]
        lines.append(
            f"  diagnostic, sim/__init__.py skipped: {st['cache_load_without_sim_init_median_s']:.3f} s before first clearing "
            f"(import {statistics.median(x['import_s'] for x in w2):.3f} s, first clearing {statistics.median(x['first_clear_s'] for x in w2):.3f} s)"
        )
    if "error" in st:
        lines.append(f"Startup measurement failed: {st['error']}")
    mem = results.get("memory")
    if mem and "peak_bytes" in mem:
        mib = 2**20
        lines.append(
            f"Memory at L (fresh child): peak {mem['peak_bytes'] / mib:.0f} MiB (ru_maxrss, whole process); imports baseline "
            f"{mem['imports_rss_bytes'] / mib:.0f} MiB resident ({mem['imports_peak_bytes'] / mib:.0f} MiB peak while importing)"
        )
        if "clearing_peak_bytes" in mem:
            lines.append(
                f"  peak while clearing L (cold + warm) {mem['clearing_peak_bytes'] / mib:.0f} MiB = imports baseline + "
                f"{mem['peak_above_imports_bytes'] / mib:.0f} MiB, of which inputs {mem['inputs_nbytes'] / mib:.0f} MiB and "
                f"clearing work {mem['peak_above_inputs_bytes'] / mib:.0f} MiB above the loaded inputs"
            )
    elif mem:
        lines.append(f"Memory measurement failed: {mem.get('error')}")
    lines += ["", "Targets:"]
    for t in results["targets"]:
        flag = {True: "PASS", False: "MISS", None: "n/a "}[t["pass"]]
        lines.append(f"  {flag}  {t['name']:<58} measured {t['measured']}")
    lines.append(f"\nTotal benchmark time {results['bench_wall_s']:.0f} s")
    return "\n".join(lines)


def targets(results: dict) -> list[dict]:
    out = []
    L = results["sizes"].get("L")
    for sc in ("cold", "warm-quota", "warm-capacity", "warm-steady"):
        if L and sc in L["scenarios"]:
            v = L["scenarios"][sc]["kernel"]["median_s"]
            vmin = L["scenarios"][sc]["kernel"]["min_s"]
            out.append(
                {
                    "name": f"L clearing <= 50 ms, all 50 goods, 1 core ({sc})",
                    "measured": f"{v * 1e3:.1f} ms median (min {vmin * 1e3:.1f})",
                    "value": v,
                    "pass": v <= TARGET_L_SECONDS,
                }
            )
    for sc in ("cold", "warm-quota", "warm-capacity"):
        if L and sc in L["scenarios"] and "twin_ratio" in L["scenarios"][sc]:
            v = L["scenarios"][sc]["twin_ratio"]
            out.append(
                {
                    "name": f">= 20x faster than the NumPy twin at L ({sc})",
                    "measured": f"{v:.1f}x",
                    "value": v,
                    "pass": v >= TARGET_TWIN_RATIO,
                }
            )
    st = results.get("startup", {})
    if "cache_load_median_s" in st:
        v = st["cache_load_median_s"]
        out.append(
            {
                "name": "< 1 s before first clearing, fresh process, warm cache",
                "measured": f"{v:.3f} s (median)",
                "value": v,
                "pass": v < TARGET_CACHE_LOAD_S,
            }
        )
    else:
        out.append(
            {
                "name": "< 1 s before first clearing, fresh process, warm cache",
                "measured": "not measured",
                "value": None,
                "pass": None,
            }
        )
    mem = results.get("memory")
    if mem and "peak_bytes" in mem:
        v = mem["peak_bytes"]
        out.append(
            {
                "name": "peak memory at L < 1 GiB",
                "measured": f"{v / 2**20:.0f} MiB",
                "value": v,
                "pass": v < TARGET_PEAK_BYTES,
            }
        )
    elif "L" in results["sizes"]:
        out.append({"name": "peak memory at L < 1 GiB", "measured": "not measured", "value": None, "pass": None})
    return out


# ---------------------------------------------------------------------------------------------


def bench_size(size: str, base, *, quick: bool) -> dict:
    """Kernel and twin timings for every scenario of one size."""
    repeat_k = 3 if quick else (5 if size == "L" else 7)
    repeat_t = 2 if quick else (3 if size == "L" else 5)
    min_time = 0.05 if quick else 0.2
    st = MarketStructure.build(base)
    prev = clear_markets(base, allow_nonconvergence=True)
    scenarios = {
        "cold": (base, lambda mk: clear_markets(mk, allow_nonconvergence=True), lambda mk: clear_markets_numpy(mk)),
        "warm-steady": (warm(base, prev), None, None),
        "warm-quota": (warm(shock_quota(base, prev), prev), None, None),
        "warm-capacity": (warm(shock_capacity(base, prev), prev), None, None),
    }
    out = {
        "dims": {
            "countries": int(base.n_countries),
            "goods": base.n_goods,
            "firms": int(base.firm_country.shape[0]),
            "rows": int(base.row_firm.shape[0]),
            "slots_per_row_max": int(base.sourcing_origin.shape[1]),
            "producers": int(base.producer_good.shape[0]),
            "edges": int(st.edge_good.shape[0]),
        },
        "validate_s": time_calls(base.validate, repeat=3, min_time=min_time)["median_s"],
        "structure_build_s": time_calls(lambda: MarketStructure.build(base), repeat=3, min_time=min_time)["median_s"],
        "scenarios": {},
    }
    for name, (mk, kfn, tfn) in scenarios.items():
        if kfn is None:
            kfn = lambda m_, st_=st: clear_markets(m_, validate=False, structure=st_, allow_nonconvergence=True)  # noqa: E731
            tfn = lambda m_, st_=st: clear_markets_numpy(m_, structure=st_)  # noqa: E731
        k_res = kfn(mk)
        k_time = time_calls(lambda kfn=kfn, mk=mk: kfn(mk), repeat=repeat_k, min_time=min_time)
        t_res = tfn(mk)
        t_time = time_calls(lambda tfn=tfn, mk=mk: tfn(mk), repeat=repeat_t, min_time=min_time)
        entry = {
            "description": SCENARIO_TEXT[name],
            "kernel": {**k_time, "iterations": _iters(k_res), "converged": bool(k_res.converged.all())},
            "twin": {**t_time, "iterations": _iters(t_res), "converged": bool(t_res.converged.all())},
            "twin_ratio": t_time["median_s"] / k_time["median_s"],
            "agreement": compare(k_res, t_res, mk),
        }
        out["scenarios"][name] = entry
        print(
            f"  {size} {name:<14} kernel {_ms(k_time['median_s'])} ms (min {_ms(k_time['min_s'])}), "
            f"twin {_ms(t_time['median_s'])} ms, x{entry['twin_ratio']:.1f}, iterations {entry['kernel']['iterations']['total']}",
            flush=True,
        )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and startup processes (for trying it out)")
    ap.add_argument("--sizes", default="S,M,L", help="comma-separated subset of S,M,L")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/kernel-*.json")
    args = ap.parse_args(argv)
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"unknown size(s) {bad}; choose from {list(SIZES)}")
    t_start = time.perf_counter()
    results: dict = {
        "machine": machine(),
        "config": {
            "seed": SEED,
            "sizes": {s: SIZES[s] for s in sizes},
            "quick": args.quick,
            "tolerance": 1e-10,
            "scenarios": SCENARIO_TEXT,
        },
    }
    print("Generating markets ...", flush=True)
    markets = {s: make_market(s) for s in sizes}
    clear_markets(markets[sizes[0]], allow_nonconvergence=True)  # compile or load the kernel before timing

    print("Self-check: NumPy twin vs kernel at S and M ...", flush=True)
    results["self_check"] = self_check(markets)

    results["sizes"] = {}
    for s in sizes:
        print(f"Timing size {s} ...", flush=True)
        results["sizes"][s] = bench_size(s, markets[s], quick=args.quick)

    print("Reference solver ...", flush=True)
    results["reference"] = measure_reference(
        sizes, {s: r["scenarios"]["cold"]["kernel"] for s, r in results["sizes"].items()}
    )

    with tempfile.TemporaryDirectory(prefix="numba-cache-bench-") as cache_dir:
        print("Startup: compile with an empty cache, then load it ...", flush=True)
        results["startup"] = measure_startup(cache_dir, warm_repeats=2 if args.quick else 3)
        if "L" in markets:
            print("Peak memory at L ...", flush=True)
            results["memory"] = measure_memory(
                markets["L"], cache_dir if "compile" in results["startup"] else os.environ["NUMBA_CACHE_DIR"]
            )

    try:
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    results["targets"] = targets(results)
    results["bench_wall_s"] = time.perf_counter() - t_start
    text = report(results)
    results["table"] = text
    print()
    print(text)
    if not args.no_save:
        out_dir = HERE / "results"
        out_dir.mkdir(exist_ok=True)
        path = out_dir / f"kernel-{_dt.datetime.now().strftime('%Y%m%d-%H%M')}.json"
        for sres in results["sizes"].values():  # keep the file small: drop per-repeat lists
            for r in sres["scenarios"].values():
                for impl in ("kernel", "twin"):
                    r[impl]["times_s"] = [round(x, 9) for x in r[impl]["times_s"]]
        path.write_text(json.dumps(results, indent=1, default=float) + "\n")
        print(f"\nWrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
