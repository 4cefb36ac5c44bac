"""Shared helpers for the model, API, CLI, validation and notebook tests.

Plain functions (not fixtures), imported as ``import helpers`` (``tests/conftest.py`` puts this
directory on ``sys.path``). Results of in-memory runs are cached per process so that several test
modules can share one run of a scenario: treat the returned tables as read-only.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
CONFIG_DIR = REPO_ROOT / "configs"
SCENARIO_DIR = CONFIG_DIR / "scenario"
MINIMAL_YAML = SCENARIO_DIR / "minimal.yaml"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: Columns of timeseries.parquet and flows.parquet, in order (sim/reporting/recording.py).
TIMESERIES_COLUMNS = ["date", "step", "country", "good", "variable", "value"]
FLOWS_COLUMNS = ["date", "step", "good", "origin", "destination", "quantity", "value"]
#: Variables the brief requires in the time series (at least these).
REQUIRED_VARIABLES = (
    "price_domestic",
    "price_export",
    "price_paid",
    "demand",
    "delivered",
    "shortage",
    "rationed",
    "inventory",
    "stockpile",
    "capacity",
    "production",
    "imports",
    "exports",
    "output_loss",
)
#: Metrics that measure wall time (differ between otherwise identical runs).
WALL_TIME_METRICS = frozenset({"clearing_seconds"})
#: Examples per Hypothesis property whose every example runs the model (a few runs of ~0.2-1 s each), by
#: profile (``HYPOTHESIS_PROFILE``, see ``conftest.py``); cheap properties use the profile's own count.
MODEL_RUN_EXAMPLES = {"default": 8, "ci": 8, "thorough": 60, "dev": 60}
#: Timeout for one run of the console script (a cold numba cache compiles the kernel: ~40 s).
CLI_TIMEOUT_S = 300


def model_runs(*, shrink: bool | None = None):
    """Hypothesis settings for a property whose examples run the model: the active profile's budget for
    such properties (:data:`MODEL_RUN_EXAMPLES`). Shrinking (more model runs after a failure) is off in
    the default profile and on in ``thorough`` unless ``shrink`` says otherwise."""
    from hypothesis import Phase, settings

    profile = os.environ.get("HYPOTHESIS_PROFILE", "default")
    examples = MODEL_RUN_EXAMPLES[profile]
    if shrink is None:
        shrink = examples > MODEL_RUN_EXAMPLES["default"]
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, phases=phases)


# ------------------------------------------------------------------------------------------------
# Configurations and in-memory runs
# ------------------------------------------------------------------------------------------------
def compose(scenario: str | None = "minimal", overrides: Sequence[str] = (), config_dir=None):
    """``sim.api.compose_config`` (imported lazily so collection stays fast)."""
    from sim.api import compose_config

    return compose_config(scenario, list(overrides), config_dir=config_dir)


@functools.lru_cache(maxsize=1)
def _minimal_cfg():
    return compose("minimal")


def minimal_cfg(overrides: Sequence[str] = ()):
    """A fresh (mutable) copy of the composed ``minimal`` config, with ``overrides`` merged."""
    if overrides:
        return compose("minimal", overrides)
    return copy.deepcopy(_minimal_cfg())


@functools.lru_cache(maxsize=8)
def cached_run(scenario: str = "minimal", overrides: tuple[str, ...] = (), seed: int = 1):
    """``sim.api.run(scenario, overrides, seed=seed, keep_model=True)``, cached per process."""
    from sim.api import run

    return run(scenario, list(overrides), seed=seed, keep_model=True)


def warm_numba_cache() -> None:
    """Run ``minimal`` once in this process, so numba's on-disk cache is written before several
    console-script processes start at once (otherwise each would compile the kernel itself)."""
    cached_run()


def pivot(ts: pd.DataFrame, variable: str, good: str | None = None) -> pd.DataFrame:
    """One variable of a tidy time series as a table: index step, columns country."""
    d = ts[ts["variable"] == variable]
    if good is not None:
        d = d[d["good"] == good]
    out = d.pivot_table(index="step", columns="country", values="value", observed=True, aggfunc="sum")
    out.columns = out.columns.astype(str)
    return out


def flow_matrix(flows: pd.DataFrame, by: str, good: str | None = None) -> pd.DataFrame:
    """Flows summed by step and ``by`` (``origin`` or ``destination``): index step, columns country."""
    f = flows if good is None else flows[flows["good"] == good]
    out = f.groupby(["step", by], observed=True)["quantity"].sum().unstack(fill_value=0.0)
    out.columns = out.columns.astype(str)
    return out


def metric_key_regex(goods: Iterable[str], countries: Iterable[str]) -> re.Pattern:
    """A regex matching every key documented in ``METRIC_DOCS``, with ``<good>``, ``<country>`` and
    ``<lever>`` placeholders standing for the scenario's goods and countries and the policy levers
    (``<sector>``: any user sector's name)."""
    from sim.policy.levers import LEVER_NAMES
    from sim.reporting.metrics import METRIC_DOCS

    g = "(?:" + "|".join(re.escape(x) for x in goods) + ")"
    c = "(?:" + "|".join(re.escape(x) for x in countries) + ")"
    parts = []
    for key in METRIC_DOCS:
        lv = "(?:" + "|".join(LEVER_NAMES) + ")"
        pat = (
            re.escape(key)
            .replace(re.escape("<good>"), g)
            .replace(re.escape("<country>"), c)
            .replace(re.escape("<lever>"), lv)
            .replace(re.escape("<sector>"), r"[^.]+")
        )
        parts.append(pat)
    return re.compile("^(?:" + "|".join(parts) + ")$")


def metrics_without_wall_time(metrics: dict) -> dict:
    """Metrics minus the keys that measure wall time."""
    return {k: v for k, v in metrics.items() if k not in WALL_TIME_METRICS}


# ------------------------------------------------------------------------------------------------
# Scenario files
# ------------------------------------------------------------------------------------------------
def minimal_scenario_dict() -> dict:
    """``configs/scenario/minimal.yaml`` as a plain dict (a fresh copy)."""
    return yaml.safe_load(MINIMAL_YAML.read_text())


def write_scenario(
    config_dir: Path, name: str, mutate: Callable[[dict], object] | None = None, *, extra: str = ""
) -> Path:
    """Write ``<config_dir>/scenario/<name>.yaml``: minimal.yaml altered by ``mutate(dict)``, with
    raw YAML text ``extra`` appended (for keys that are not in the schema). Returns ``config_dir``."""
    data = minimal_scenario_dict()
    data["name"] = name
    if mutate is not None:
        mutate(data)
    path = Path(config_dir) / "scenario" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False) + extra)
    return Path(config_dir)


def _set_measure(**kw):
    def mutate(d):
        d["measures"][0].update(kw)

    return mutate


def _set_producer_capacity(d):
    d["producers"][0]["capacity"] = -120000


def _set_shares(d):
    d["sourcing"][0]["shares"] = {"CHN": 0.7, "AUS": 0.2}


#: Invalid scenarios (minimal.yaml altered): name -> (mutation, field path in the message, bad value as
#: the message prints it). They compose (the schema cannot see the problem); validation refuses them.
BAD_SCENARIOS: dict[str, tuple[Callable[[dict], object], str, str]] = {
    "unknown_country_in_measure": (_set_measure(targets=["KOR"]), "scenario.measures[0].targets", "'KOR'"),
    "unknown_imposer": (_set_measure(imposer="XYZ"), "scenario.measures[0].imposer", "'XYZ'"),
    "negative_capacity": (_set_producer_capacity, "scenario.producers[0].capacity", "-120000"),
    "shares_not_summing_to_one": (_set_shares, "scenario.sourcing[0].shares", "{'CHN': 0.7, 'AUS': 0.2}"),
    "measure_ends_before_start": (
        _set_measure(start="2021-06-01", end="2021-03-31"),
        "scenario.measures[0].end",
        "'2021-03-31'",
    ),
    "measure_date_after_scenario_end": (
        _set_measure(start="2030-01-01", end="2030-12-31"),
        "scenario.measures[0].start",
        "'2030-01-01'",
    ),
    "measure_not_a_date": (_set_measure(start="2021-13-01"), "scenario.measures[0].start", "'2021-13-01'"),
}


def write_bad_scenarios(config_dir: Path) -> Path:
    """Write every scenario of :data:`BAD_SCENARIOS` (and ``typo``: a misspelt key) into
    ``config_dir/scenario``; returns ``config_dir``."""
    for name, (mutate, _, _) in BAD_SCENARIOS.items():
        write_scenario(config_dir, name, mutate)
    write_scenario(config_dir, "typo", extra="godos: 1\n")
    write_scenario(config_dir, "nested_typo", _misspell_reference_price)
    write_scenario(config_dir, "wrong_type_in_file", _capacity_in_words)
    return Path(config_dir)


def _misspell_reference_price(d):
    d["goods"][0]["referense_price"] = d["goods"][0].pop("reference_price")


def _capacity_in_words(d):
    d["producers"][0]["capacity"] = "lots"


# ------------------------------------------------------------------------------------------------
# The console script
# ------------------------------------------------------------------------------------------------
def coercion_sim_exe() -> str:
    """Path of the installed ``coercion-sim`` console script (next to this interpreter first)."""
    beside = Path(sys.executable).parent / "coercion-sim"
    if beside.exists():
        return str(beside)
    found = shutil.which("coercion-sim")
    if found is None:
        raise FileNotFoundError("the coercion-sim console script is not installed (pip install -e .)")
    return found


def cli_env() -> dict[str, str]:
    """Environment for the console script: this one, minus anything that changes Hydra's output."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    env.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".venv" / "numba-cache"))
    return env


@dataclass(frozen=True)
class CliRun:
    """A finished console-script run."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path


def run_cli(args: Sequence[str], run_dir: Path, *, cwd: Path | None = None) -> CliRun:
    """Run ``coercion-sim ARGS hydra.run.dir=RUN_DIR`` in ``cwd`` (default: ``run_dir``'s parent)."""
    run_dir = Path(run_dir)
    cwd = Path(cwd) if cwd is not None else run_dir.parent
    cwd.mkdir(parents=True, exist_ok=True)
    full = [coercion_sim_exe(), *args, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(full, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    return CliRun(tuple(args), proc.returncode, proc.stdout, proc.stderr, run_dir)


def run_cli_many(jobs: dict[str, tuple[Sequence[str], Path]]) -> dict[str, CliRun]:
    """Run several console-script invocations at once (``name -> (args, run_dir)``)."""
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_cli, args, run_dir) for name, (args, run_dir) in jobs.items()}
        return {name: fut.result() for name, fut in futures.items()}


def output_files_in(run_dir: Path) -> list[str]:
    """Run outputs present in ``run_dir`` (anything but Hydra's own ``.hydra/`` and ``*.log``)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log")


def temp_files_in(run_dir: Path) -> list[str]:
    """Leftover temporary files of atomic writes (``.NAME.*.tmp``) anywhere under ``run_dir``."""
    return sorted(str(p.relative_to(run_dir)) for p in Path(run_dir).rglob(".*.tmp"))
