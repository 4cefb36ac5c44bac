"""Fuzzed scenario files: each either runs and keeps the model's invariants, or is refused with one
message naming the field, and never leaves a traceback or partial outputs.

Scenarios are ``configs/scenario/minimal.yaml`` (now and then ``gallium_germanium_2023.yaml``), cut
to a few months, with Hypothesis mutations: wrong types, keys left out or unknown, dates out of range
or malformed, shares that do not sum to one, negative, zero, huge, infinite or NaN numbers, unknown
country and good ids, and valid changes of numbers (so that many mutated files still run). They go

* through :func:`sim.run` (in process): a result whose invariants hold (mass balance, non-negative
  quantities, producer prices within floor and cap), or a ``ValueError``/``HydraException`` whose
  message is one line naming a ``scenario`` field;
* a valid input on which the market solver fails (``MarketClearingError``: one line, exit 2, nothing
  written) is counted apart as ``market_failed``, printed, and fails the test: a finding for the
  solver, not an input error (the first, minimal.yaml cut to six months with ``armington_elasticity:
  3.3``, is now a regression test);
* through the command line's entry point :func:`sim.cli.main` in process, and through the installed
  ``coercion-sim`` script in subprocesses: exit 0 with complete outputs whose invariants hold, or
  exit 2 with exactly one ``error:`` line naming the field on stderr, no traceback, and no run
  folder left.

Each test counts the inputs it tried and their outcomes and prints them (``pytest -s``); the larger
runs are marked slow.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import helpers
import numpy as np
import pandas as pd
import pytest
import yaml
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import sim
from sim.market import MarketClearingError

#: A field path in a message: ``scenario``, ``scenario.goods[0].price_cap``, ...
FIELD = re.compile(r"\bscenario(?:\.[A-Za-z_][\w]*|\[\d+\])*\b")
#: Quantity variables of timeseries.parquet that are never negative.
QUANTITIES = (
    "demand",
    "delivered",
    "shortage",
    "rationed",
    "inventory",
    "capacity",
    "production",
    "imports",
    "exports",
)
#: Months a fuzzed run lasts (the end date is overridden in the file).
MONTHS = 6

_SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------------------------------------
# The scenarios
# ------------------------------------------------------------------------------------------------
def _short_minimal() -> dict:
    d = helpers.minimal_scenario_dict()
    d["end"] = "2020-06"
    d["measures"][0].update(start="2020-03-01", end="2020-05-31", quantity=4000)
    return d


def _short_gallium() -> dict:
    d = yaml.safe_load((helpers.CONFIG_DIR / "scenario" / "gallium_germanium_2023.yaml").read_text())
    d["end"] = "2023-06"
    d["measures"] = [m for m in d["measures"] if str(m["start"]) <= "2023-06-30"]
    for m in d["measures"]:
        if m.get("end") and str(m["end"]) > "2023-06-30":
            m["end"] = "2023-06-30"
    return d


BASES = {"minimal": _short_minimal(), "gallium": _short_gallium()}


def _paths(node, prefix=()):
    """Every key path in a loaded YAML document (mappings and list entries), leaves and inner nodes."""
    out = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return out
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


PATHS = {
    name: [p for p in _paths(d) if p[0] not in ("defaults", "sources", "description")] for name, d in BASES.items()
}

BAD_VALUES = st.sampled_from(
    [
        "lots",
        "",
        None,
        True,
        [],
        [1, 2],
        {},
        {"x": 1},
        -1,
        -1.0e6,
        0,
        0.0,
        1.0e300,
        math.inf,
        -math.inf,
        math.nan,
        "2019-01",
        "2030-01-01",
        "2021-13-01",
        "2020-02-30",
        "not a date",
        "XYZ",
        "KOR",
        "EU27",
        "tin",
        "${parameters.nope}",
        "???",
    ]
)


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def _exists(d, path) -> bool:
    try:
        _get(d, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


@st.composite
def mutation(draw, base: str):
    """One change to a scenario, as ``(description, function of the dict)``."""
    path = draw(st.sampled_from(PATHS[base]))
    kind = draw(
        st.sampled_from(["set_bad", "set_bad", "drop", "unknown_key", "scale", "scale", "shares", "swap_id", "date"])
    )
    if kind == "set_bad":
        value = draw(BAD_VALUES)
        return f"{path}={value!r}", lambda d: _set(d, path, value)
    if kind == "drop":
        return f"drop {path}", lambda d: _drop(d, path)
    if kind == "unknown_key":
        key = draw(st.sampled_from(["godos", "referense_price", "capacty", "x"]))
        return f"{path}+{key}", lambda d: _add_key(d, path, key)
    if kind == "scale":
        factor = draw(st.sampled_from([0.5, 0.9, 1.1, 2.0, -1.0, 0.0, 1e6]))
        return f"{path}*{factor}", lambda d: _scale(d, path, factor)
    if kind == "shares":
        factor = draw(st.sampled_from([0.5, 0.99, 1.0, 1.0000001, 1.5]))
        return f"shares*{factor}", lambda d: _scale_shares(d, factor)
    if kind == "swap_id":
        value = draw(st.sampled_from(["KOR", "XYZ", "chn", "tin", "ore", "CHN", "AUS", "JPN"]))
        return f"{path}={value!r}", lambda d: _set(d, path, value)
    value = draw(st.sampled_from(["2019-12", "2020-01", "2020-04-15", "2020-07", "2031-01-01", "2020/03/01", 2020]))
    return f"{path}={value!r}", lambda d: _set(d, path, value)


def _set(d, path, value):
    if _exists(d, path):
        _get(d, path[:-1])[path[-1]] = value


def _drop(d, path):
    if _exists(d, path):
        parent = _get(d, path[:-1])
        del parent[path[-1]]


def _add_key(d, path, key):
    if _exists(d, path) and isinstance(_get(d, path), dict):
        _get(d, path)[key] = 1


def _scale(d, path, factor):
    if _exists(d, path):
        v = _get(d, path)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            _get(d, path[:-1])[path[-1]] = v * factor


def _scale_shares(d, factor):
    for s in d.get("sourcing") or []:
        if isinstance(s, dict) and isinstance(s.get("shares"), dict):
            s["shares"] = {k: v * factor if isinstance(v, (int, float)) else v for k, v in s["shares"].items()}


@st.composite
def fuzzed_scenario(draw):
    """``(base, description, dict)``: a shipped scenario cut short, with zero to three mutations."""
    base = draw(st.sampled_from(["minimal"] * 5 + ["gallium"]))
    d = yaml.safe_load(yaml.safe_dump(BASES[base]))
    done = []
    for text, apply in draw(st.lists(mutation(base), min_size=0, max_size=3)):
        apply(d)
        done.append(text)
    return base, "; ".join(done) or "unchanged", d


def write_case(folder: Path, name: str, d: dict) -> Path:
    """Write scenario ``d`` as ``folder/scenario/<name>.yaml`` (its ``name`` set to the file's, unless
    a mutation dropped or changed it); returns ``folder``."""
    if isinstance(d, dict) and d.get("name") in ("minimal", "gallium_germanium_2023"):
        d["name"] = name
    path = folder / "scenario" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True))
    return folder


# ------------------------------------------------------------------------------------------------
# Invariants of a run
# ------------------------------------------------------------------------------------------------
def check_invariants(ts: pd.DataFrame, flows: pd.DataFrame, cfg) -> None:
    """Mass balance, non-negative quantities and producer prices within floor and cap."""
    ts = ts.assign(variable=ts["variable"].astype(str), good=ts["good"].astype(str), country=ts["country"].astype(str))
    scale = max(1.0, float(ts.loc[ts["variable"] == "demand", "value"].abs().max()))
    for var in QUANTITIES:
        v = ts.loc[ts["variable"] == var, "value"].dropna()
        assert (v >= -1e-9 * scale).all(), f"{var} negative: {v.min()}"
    assert (flows["quantity"] >= 0).all() and (flows["value"] >= 0).all()
    for g in cfg.scenario.goods:
        gid = str(g.id)
        tg = ts[ts["good"] == gid]

        def table(var, tg=tg):
            return tg[tg["variable"] == var].pivot_table(index="step", columns="country", values="value", aggfunc="sum")

        delivered, production = table("delivered"), table("production")
        fg = flows[flows["good"].astype(str) == gid]
        inflow = fg.pivot_table(index="step", columns="destination", values="quantity", aggfunc="sum", observed=True)
        outflow = fg.pivot_table(index="step", columns="origin", values="quantity", aggfunc="sum", observed=True)
        inflow.columns, outflow.columns = inflow.columns.astype(str), outflow.columns.astype(str)
        tol = 1e-6 * scale
        d, i = delivered.align(inflow, fill_value=0.0)
        np.testing.assert_allclose(d.fillna(0).to_numpy(), i.fillna(0).to_numpy(), atol=tol, err_msg="inflow")
        p, o = production.align(outflow, fill_value=0.0)
        np.testing.assert_allclose(p.fillna(0).to_numpy(), o.fillna(0).to_numpy(), atol=tol, err_msg="outflow")
        np.testing.assert_allclose(delivered.sum(axis=1), production.sum(axis=1), atol=tol, err_msg="world balance")
        price = tg.loc[tg["variable"] == "price_domestic", "value"].dropna()
        ref = float(g.reference_price)
        lo, hi = float(g.price_floor) * ref, float(g.price_cap) * ref
        assert ((price >= lo * (1 - 1e-9)) & (price <= hi * (1 + 1e-9))).all(), (gid, price.min(), price.max(), lo, hi)


def check_refusal(message: str) -> None:
    """One line naming a scenario field (or the scenario file)."""
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message
    assert FIELD.search(message), f"no field named: {message}"


# ------------------------------------------------------------------------------------------------
# Through sim.run
# ------------------------------------------------------------------------------------------------
def _fuzz_sim_run(n: int) -> Counter:
    helpers.warm_numba_cache()
    counts: Counter = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        @settings(max_examples=n, **_SETTINGS)
        @given(case=fuzzed_scenario())
        def check(case):
            base, what, d = case
            name = f"fz{counts.total()}"
            counts["tried"] += 1
            write_case(folder, name, d)
            try:
                result = sim.run(name, config_dir=folder, seed=1)
            except MarketClearingError as exc:  # valid input the solver fails on: the kernel's to fix
                assert "\n" not in str(exc).strip() and str(exc).startswith("market for good"), exc
                counts["market_failed"] += 1
                failures.append(f"{base}: {what}")
                return
            except (ValueError, HydraException) as exc:
                check_refusal(str(exc))
                counts["rejected"] += 1
                return
            check_invariants(result.timeseries, result.flows, result.config)
            counts["ran"] += 1

        check()
    print(f"\nsim.run fuzz: {dict(counts)}")
    for text in failures:
        print(f"  market did not clear: {text}")
    return counts


def test_fuzzed_scenarios_through_sim_run():
    counts = _fuzz_sim_run(150)
    assert counts["tried"] == 150
    assert counts["ran"] + counts["rejected"] + counts["market_failed"] == counts["tried"]
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 15 and counts["rejected"] >= 15, counts


@pytest.mark.slow
def test_many_fuzzed_scenarios_through_sim_run():
    counts = _fuzz_sim_run(1500)
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 100 and counts["rejected"] >= 100, counts


# ------------------------------------------------------------------------------------------------
# Through the command line
# ------------------------------------------------------------------------------------------------
def _check_cli_outcome(code, out: str, err: str, run_dir: Path) -> str:
    assert "Traceback" not in err, err
    if code == 0:
        for name in ("timeseries.parquet", "flows.parquet", "metrics.json", "config.yaml", "provenance.json"):
            assert (run_dir / name).is_file(), name
        cfg = OmegaConf.load(run_dir / "config.yaml")
        check_invariants(
            pd.read_parquet(run_dir / "timeseries.parquet"), pd.read_parquet(run_dir / "flows.parquet"), cfg
        )
        return "ran"
    assert code == 2, f"exit {code}: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert out == "", out
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())
    if lines[0].startswith("error: market for good"):  # valid input the solver fails on
        return "market_failed"
    check_refusal(lines[0])
    return "rejected"


def _main_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["coercion-sim", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            from sim.cli import main

            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def _fuzz_cli_in_process(n: int) -> Counter:
    helpers.warm_numba_cache()
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        @settings(max_examples=n, **_SETTINGS)
        @given(case=fuzzed_scenario())
        def check(case):
            _, _, d = case
            name = f"fz{counts.total()}"
            counts["tried"] += 1
            write_case(folder / "my", name, d)
            run_dir = folder / "runs" / name
            argv = ["--config-dir", str(folder / "my"), f"scenario={name}", f"hydra.run.dir={run_dir}"]
            code, out, err = _main_in_process([*argv, "output.figures=false"])
            counts[_check_cli_outcome(code, out, err, run_dir)] += 1

        check()
    print(f"\nin-process CLI fuzz: {dict(counts)}")
    return counts


def test_fuzzed_scenarios_through_the_cli_entry_point():
    counts = _fuzz_cli_in_process(40)
    assert counts["tried"] == 40 and counts["ran"] + counts["rejected"] + counts["market_failed"] == 40
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 5 and counts["rejected"] >= 5, counts


@pytest.mark.slow
def test_many_fuzzed_scenarios_through_the_cli_entry_point():
    counts = _fuzz_cli_in_process(400)
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 40 and counts["rejected"] >= 40, counts


def _fuzz_cli_subprocesses(n: int) -> Counter:
    """``n`` fuzzed files drawn by Hypothesis, then run through the installed script, a few at once."""
    helpers.warm_numba_cache()
    cases = []

    @settings(max_examples=n, **_SETTINGS)
    @given(case=fuzzed_scenario())
    def draw(case):
        cases.append(case)

    draw()
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = {}
        for i, (_, _, d) in enumerate(cases):
            write_case(folder / "my", f"fz{i}", d)
            args = ["--config-dir", str(folder / "my"), f"scenario=fz{i}", "output.figures=false"]
            jobs[f"fz{i}"] = (args, folder / "runs" / f"fz{i}")
        for run in helpers.run_cli_many(jobs).values():
            counts["tried"] += 1
            counts[_check_cli_outcome(run.returncode, run.stdout, run.stderr, run.run_dir)] += 1
        assert sorted(p.name for p in folder.iterdir()) == ["my", "runs"]
    print(f"\nsubprocess CLI fuzz: {dict(counts)}")
    return counts


def test_fuzzed_scenarios_through_the_installed_script():
    counts = _fuzz_cli_subprocesses(8)
    assert counts["tried"] == 8 and counts["ran"] + counts["rejected"] + counts["market_failed"] == 8
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 1 and counts["rejected"] >= 1, counts


@pytest.mark.slow
def test_many_fuzzed_scenarios_through_the_installed_script():
    counts = _fuzz_cli_subprocesses(60)
    assert counts["market_failed"] == 0, counts
    assert counts["ran"] >= 5 and counts["rejected"] >= 5, counts


# ------------------------------------------------------------------------------------------------
# A metric that does not apply is absent
# ------------------------------------------------------------------------------------------------
def test_the_coercers_import_share_from_itself_is_absent(tmp_path):
    """The coercer imports (a tenth of its use from AUS): its import HHI is there, its share of its
    own imports is not (the README: a key that does not apply is absent, not 0)."""

    def coercer_imports(d):
        d.update({k: v for k, v in _short_minimal().items() if k in ("end", "measures")})
        d["sourcing"][1]["shares"] = {"CHN": 0.9, "AUS": 0.1}
        d["producers"][1]["capacity"] = 24000

    helpers.write_scenario(tmp_path, "coercer_imports", coercer_imports)
    m = sim.run("coercer_imports", config_dir=tmp_path, seed=1).metrics
    assert "import_hhi_start.ore.CHN" in m and "import_hhi_start.ore.JPN" in m
    assert "coercer_import_share_start.ore.JPN" in m
    assert not [k for k in m if k.startswith("coercer_import_share") and k.endswith(".CHN")]


def test_a_valid_fuzzed_scenario_the_market_solver_failed_on_now_clears(tmp_path):
    """Regression, found by fuzzing: minimal.yaml cut to six months (the quota from March to May) with
    ``armington_elasticity: 3.3`` instead of 3.0 passes validation, and the market for ore did not
    clear in some month (residual 1 after 200 iterations) until the kernel gained its fallback sweeps."""
    d = _short_minimal()
    d["goods"][0]["armington_elasticity"] = 3.3
    write_case(tmp_path, "armington_3_3", d)
    result = sim.run("armington_3_3", config_dir=tmp_path, seed=1)
    check_invariants(result.timeseries, result.flows, result.config)
