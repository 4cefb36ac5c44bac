"""One case of the simulator as a function: a point in uncertainty and lever space in, the run's metrics out.

:class:`CaseRunner` composes a case as the command line does (:func:`sim.api.compose_config`, once per
process), prepares and checks it once, and derives each run's configuration as plain read-only data
(:mod:`sim.world.plain`: the changed numbers type-checked, interpolations re-resolved, every value
checked by the same rules) before running it in memory; :meth:`CaseRunner.run_many` runs many in
worker processes. :func:`run` is one experiment. The calibration (:mod:`sim.experiments.calibration`),
the SALib designs (:mod:`sim.experiments.sensitivity`) and the EMA Workbench model
(:mod:`sim.experiments.exploration`, which re-exports these names) all call it.

This module imports neither the EMA Workbench nor its analysis stack (statsmodels, scipy.stats,
matplotlib): a spawned worker of :meth:`CaseRunner.run_many`, which imports this module and not the
EMA one, starts in about 2.5 s instead of 5.7 (importing the runner took 3.2 s, now 0.1); ``make validate``'s workers (pyabc brings scipy.stats and
matplotlib) no longer load the EMA Workbench and statsmodels.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CaseRunner", "ExplorationError", "outcomes_in_memory", "run"]


class ExplorationError(ValueError):
    """A parameter, lever or outcome the case does not have, or a range it does not accept."""


@functools.lru_cache(maxsize=8)
def _base_config(case: str, policies: tuple[str, ...], overrides: tuple[str, ...], config_dir: str | None):
    """The composed configuration of a case, once per process."""
    from sim.api import compose_config

    fixed = ["output.figures=false", "output.flows=false", "output.progress=never"]
    if policies:
        fixed.append(f"policy=[{','.join(policies)}]")
    return compose_config(case, [*fixed, *overrides], config_dir=config_dir)


@dataclass
class _PlainBase:
    """A case composed, checked and turned into plain data once per process (see :mod:`sim.world.plain`).

    Attributes:
        plain: The prepared configuration as a :class:`sim.world.plain.PlainConfig` (resolved).
        raw: The prepared configuration as plain data with its interpolations unresolved.
        interpolated: Dotted keys of the values that are interpolations (``${parameters...}``):
            re-resolved in a run that changes a value they read.
        reads: For each of ``interpolated``, the keys (as :func:`sim.world.plain.split_key` segments)
            its value reads, directly or through other interpolations; ``None`` where that is not
            known (a resolver or a relative reference), so the value is re-resolved in every run that
            changes a value.
        scratch: A private copy of the prepared ``DictConfig``: a run's changed values are written
            into it (OmegaConf checks and converts their types as it does for an override), read
            back, and the original values restored.
        kept: Keys at which OmegaConf kept a number of a Python type (``int``, ``float``, ``bool``)
            as it was, by key, and which no interpolation reads: later values of that type at that
            key are taken as they are, without the scratch (writing a value and restoring an
            interpolated one costs about a millisecond, an ANTLR parse).
    """

    plain: Any
    raw: Any
    interpolated: tuple[str, ...]
    scratch: Any
    reads: tuple[tuple[tuple[str | int, ...], ...] | None, ...] = ()
    kept: dict[str, type] = field(default_factory=dict)

    def stale(self, changed: Sequence[str]) -> list[str]:
        """The interpolated keys whose value may differ once the ``changed`` keys have new values."""
        from sim.world.plain import split_key

        paths = [tuple(split_key(k)) for k in changed]

        def hits(read: tuple) -> bool:  # a changed key at, above or below a key the value reads
            return any(p[: len(read)] == read or read[: len(p)] == p for p in paths)

        reads = self.reads or (None,) * len(self.interpolated)
        return [k for k, r in zip(self.interpolated, reads, strict=True) if r is None or any(hits(x) for x in r)]


#: A value that only references other keys: ``${a.b}``, ``${a.b[0].c}`` (any number of them in a string).
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\[\]]*)\}")


def _interpolation_reads(raw: Any, interpolated: tuple[str, ...]):
    """What each interpolated value reads (see :class:`_PlainBase`), following references to other
    interpolated values until nothing new is added.
    """
    from sim.world.plain import split_key

    direct: dict[str, set[tuple] | None] = {}
    for key in interpolated:
        text = str(_raw_at(raw, key))
        refs = _REFERENCE.findall(text)
        if text.count("${") != len(refs):  # a resolver (``${oc.env:...}``), a relative or nested reference
            direct[key] = None
        else:
            direct[key] = {tuple(split_key(r)) for r in refs}
    paths = {k: tuple(split_key(k)) for k in interpolated}

    def overlaps(a: tuple, b: tuple) -> bool:  # one key is the other or lies inside it
        return a[: len(b)] == b or b[: len(a)] == a

    reads = {k: None if v is None else set(v) for k, v in direct.items()}
    grew = True
    while grew:  # a value that reads (into, or a block holding) another interpolation reads what it reads
        grew = False
        for key, mine in reads.items():
            if mine is None:
                continue
            for other, path in paths.items():
                if other == key or not any(overlaps(read, path) for read in mine):
                    continue
                theirs = reads[other]
                if theirs is None:
                    reads[key] = None
                    grew = True
                    break
                if not theirs <= mine:
                    mine |= theirs
                    grew = True
    return tuple(None if reads[k] is None else tuple(sorted(reads[k], key=repr)) for k in interpolated)


@functools.lru_cache(maxsize=8)
def _plain_base(case: str, policies: tuple[str, ...], overrides: tuple[str, ...], config_dir: str | None):
    """The case's prepared configuration as plain data, or None for a generated world (whose
    parameters are expanded into a scenario, so a run's changed values need the full preparation).
    """
    from omegaconf import OmegaConf

    from sim.world.config import is_generated
    from sim.world.plain import plain_config
    from sim.world.scenario import prepare_config

    base = _base_config(case, policies, overrides, config_dir)
    if is_generated(base.scenario):
        return None
    prepared = prepare_config(copy.deepcopy(base))
    raw = OmegaConf.to_container(prepared, resolve=False)
    interpolated = tuple(k for k, v in _leaves(raw) if isinstance(v, str) and "${" in v)
    reads = _interpolation_reads(raw, interpolated)
    return _PlainBase(plain_config(prepared), raw, interpolated, copy.deepcopy(prepared), reads)


def _leaves(data: Any, prefix: str = ""):
    """Dotted key and value of every leaf of plain data (list items by index)."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        yield prefix, data
        return
    for k, v in items:
        yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))


def _raw_at(raw: Any, key: str) -> Any:
    """The unresolved value at a dotted key of plain data."""
    from sim.world.plain import split_key

    node = raw
    for part in split_key(key):
        node = node[part]
    return node


def _value(value: Any) -> Any:
    """A sampled value as the configuration takes it (NumPy scalars to Python numbers)."""
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def outcomes_in_memory(cfg) -> dict:
    """Run a composed, prepared configuration (:func:`sim.world.scenario.prepare_config`) and return its
    metrics only.

    The same model run and :func:`sim.reporting.metrics.compute_metrics` as :func:`sim.api.run_config`, without
    the tidy tables, the resolved copy of the configuration and the provenance that a run's files
    need (about a third of the CPU time of a rare_earth_2010 run).
    """
    from sim.model.model import CoercionModel
    from sim.reporting.metrics import compute_metrics

    model = CoercionModel(cfg)
    model.run()
    metrics = compute_metrics(model)
    metrics.setdefault("clearing_max_iterations", int(model.clearing_max_iterations))
    metrics.setdefault("clearing_max_residual", float(model.clearing_max_residual))
    del model
    return metrics


@dataclass(frozen=True)
class CaseRunner:
    """A case of the simulator as a function of uncertainties and levers (what EMA calls the model).

    Attributes:
        case: Scenario file (``configs/scenario/<case>.yaml``, or in ``config_dir``).
        policies: Policy config groups selected for every run (``("stockpile", "diversification")``,
            as ``policy=[stockpile,diversification]``); their settings are the levers.
        overrides: Fixed Hydra overrides for every run.
        config_dir: Extra directory of config groups (your own scenarios).
        outcomes: Metric keys every run must have (checked after each run); empty: no check.
    """

    case: str = "rare_earth_2010"
    policies: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    config_dir: str | None = None
    outcomes: tuple[str, ...] = field(default=())
    fast: bool = True

    def config(self, scenario: Mapping[str, Any] | None = None, policy: Mapping[str, Any] | None = None, *, seed: int):
        """The composed and checked configuration of one run (no run).

        With ``fast`` (the default) the case is composed and checked once per process and each run's
        configuration is a :class:`sim.world.plain.PlainConfig` derived from it: the changed values are
        type-checked by OmegaConf as overrides are, every value is checked again by the same rules
        (:func:`sim.world.scenario.validate_config`; the parts shared with an earlier run that passed are
        not walked again), and interpolations are re-resolved. Without ``fast``
        (the reference path) every run deep-copies and fully prepares the composed ``DictConfig``.

        Raises:
            ExplorationError: a key the configuration does not have.
            sim.world.scenario.ScenarioError: a value the configuration does not accept.
        """
        from omegaconf import OmegaConf

        from sim.world.scenario import prepare_config

        key = (self.case, tuple(self.policies), tuple(self.overrides), self.config_dir)
        base = _base_config(*key)
        values = {**(scenario or {}), **(policy or {})}
        absent = object()  # a key set to null (``policy.stockpile.start``) is a key all the same
        missing = [k for k in values if OmegaConf.select(base, k, default=absent, throw_on_missing=False) is absent]
        if missing:
            raise ExplorationError(_unknown_keys_message(missing, base, self.case))
        plain = _plain_base(*key) if self.fast else None
        if plain is not None:
            return prepare_config(self._plain_config(plain, values, seed))
        cfg = copy.deepcopy(base)
        for key, value in values.items():
            OmegaConf.update(cfg, key, _value(value), merge=False)
        cfg.seed = int(seed)
        return prepare_config(cfg)

    @staticmethod
    def _plain_config(base: _PlainBase, values: Mapping[str, Any], seed: int):
        """``base`` with the run's values and seed, as plain data."""
        from omegaconf import OmegaConf

        from sim.world.plain import with_values

        changed: dict[str, Any] = {}
        if values:
            scratch, written = base.scratch, []
            values = {key: _value(value) for key, value in values.items()}
            # Only when every value is a number: a string or a block may interpolate a key set in the same
            # run, which must then be written into the scratch for it to read.
            numbers = all(type(v) in (int, float, bool) for v in values.values())
            try:
                for key, value in values.items():
                    kind = type(value)
                    if numbers and base.kept.get(key) is kind:  # OmegaConf keeps a number of this type here as it is
                        changed[key] = value
                        continue
                    written.append(key)
                    OmegaConf.update(scratch, key, value, merge=False)
                    changed[key] = _container(OmegaConf.select(scratch, key))
                    got = changed[key]
                    if kind in (int, float, bool) and type(got) is kind and got == value and not base.stale([key]):
                        base.kept[key] = kind
                for key in base.stale(written):  # values that read a changed one follow it
                    changed[key] = _container(OmegaConf.select(scratch, key))
            finally:
                for key in written:
                    OmegaConf.update(scratch, key, copy.deepcopy(_raw_at(base.raw, key)), merge=False)
        changed["seed"] = int(seed)
        return with_values(base.plain, changed)

    def run(self, scenario: Mapping[str, Any] | None = None, policy: Mapping[str, Any] | None = None, *, seed: int):
        """Run one experiment: ``scenario`` (uncertainty key -> value) and ``policy`` (lever key ->
        value) on root seed ``seed``; returns the run's metrics (the keys of ``metrics.json``).
        """
        metrics = outcomes_in_memory(self.config(scenario, policy, seed=seed))
        missing = [o for o in self.outcomes if o not in metrics]
        if missing:
            allowed = ", ".join(sorted(k for k in metrics if isinstance(metrics[k], int | float)))
            raise ExplorationError(f"outcomes: {missing!r} are not metrics of {self.case}; allowed: {allowed}")
        return metrics

    def run_many(
        self, points: Sequence[Mapping[str, Any] | None], seeds: Sequence[int], *, n_jobs: int = 1
    ) -> list[dict]:
        """Run many experiments of the case: ``points[i]`` (key -> value, uncertainties and levers
        together) on root seed ``seeds[i]``; returns their metrics in the same order, each equal to
        ``run(points[i], seed=seeds[i])``.

        The case is composed and checked once per process; with ``n_jobs`` > 1 the experiments are
        split into ``n_jobs`` contiguous chunks run by as many worker processes, and the results do
        not depend on ``n_jobs``. Workers are forked from this process (inheriting the composed case)
        only where it runs a single thread; a process with NumPy or SciPy imported usually runs
        OpenBLAS threads, and one with pandas pyarrow's jemalloc thread (unless ``OPENBLAS_NUM_THREADS=1``,
        ``OMP_NUM_THREADS=1`` and ``JE_ARROW_MALLOC_CONF=background_thread:false`` were set before
        they loaded), so workers are usually spawned: each then imports the model (not the EMA
        Workbench: this module does not load it) and composes the case itself, about 2.5 s of start-up
        on the 2-core machines of ``benchmarks/README.md``; worth it for a hundred runs or more.

        Raises:
            ExplorationError: ``points`` and ``seeds`` of different lengths, or ``n_jobs`` < 1.
        """
        points, seeds = list(points), [int(s) for s in seeds]
        if len(points) != len(seeds):
            raise ExplorationError(f"seeds: {len(seeds)} seeds for {len(points)} points; allowed: one seed per point")
        if int(n_jobs) < 1:
            raise ExplorationError(f"n_jobs: {n_jobs!r} is invalid; allowed: an integer >= 1")
        n_jobs = min(int(n_jobs), max(len(points), 1))
        if n_jobs == 1:
            return [self.run(p, seed=s) for p, s in zip(points, seeds, strict=True)]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        bounds = np.linspace(0, len(points), n_jobs + 1).round().astype(int)
        chunks = [(points[a:b], seeds[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        # Forked workers inherit the composed case (no start-up of seconds per worker); a process that
        # runs threads is not forked (the child could inherit a held lock).
        fork = "fork" in multiprocessing.get_all_start_methods() and _single_threaded()
        context = multiprocessing.get_context("fork" if fork else "spawn")
        if fork:
            self.config(points[0], seed=seeds[0])  # compose and check once, before forking
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
            parts = pool.map(_run_chunk, [self] * len(chunks), chunks)
            return [metrics for part in parts for metrics in part]

    def __call__(self, seed: int = 1, **values: Any) -> dict:
        """EMA Workbench's calling convention: every sampled key as a keyword, and the replication's
        ``seed``; returns the run's metrics (a missing value as NaN) and its ``wall_seconds`` and
        ``cpu_seconds``.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = self.run(values, seed=seed)
        out = {k: (np.nan if v is None else v) for k, v in metrics.items()}
        out["wall_seconds"] = time.perf_counter() - t0  # this run in its worker, composition excluded
        out["cpu_seconds"] = time.process_time() - c0
        return out


def _single_threaded() -> bool:
    """Whether this process runs one thread only, native threads (BLAS, numba) included."""
    import threading

    if threading.active_count() != 1:
        return False
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return any(line.split() == ["Threads:", "1"] for line in fh)
    except OSError:
        return False


def _run_chunk(runner: CaseRunner, chunk: tuple[list, list[int]]) -> list[dict]:
    """A worker's share of :meth:`CaseRunner.run_many`."""
    points, seeds = chunk
    return runner.run_many(points, seeds, n_jobs=1)


def _container(value: Any) -> Any:
    """A value read from a configuration as plain data (a node converted, a scalar as it is)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _unknown_keys_message(missing: Sequence[str], base, case: str) -> str:
    """One message for every unknown key, with the nearest keys the configuration has."""
    from omegaconf import OmegaConf

    def leaves(node, prefix=""):
        container = OmegaConf.to_container(node, resolve=False)
        stack = [(prefix, container)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, dict):
                stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))
            else:
                yield path

    known = list(leaves(base))
    parts = []
    for key in missing:
        near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        parts.append(f"{key}" + (f" (did you mean {', '.join(near)}?)" if near else ""))
    return (
        f"{'; '.join(parts)}: not a key of the {case} configuration; allowed: a dotted key of the "
        "composed config (`coercion-sim --cfg job scenario=...` prints them; a lever needs its policy group selected)"
    )


def run(
    scenario: Mapping[str, Any] | None = None,
    policy: Mapping[str, Any] | None = None,
    *,
    seed: int,
    case: str = "rare_earth_2010",
    policies: Sequence[str] = (),
    overrides: Sequence[str] = (),
    config_dir: str | os.PathLike | None = None,
) -> dict:
    """One experiment, in memory: uncertainties and levers in, outcomes (metrics) out.

    Args:
        scenario: Uncertainty key -> value (``{"model.precaution": 3.0}``).
        policy: Lever key -> value (``{"policy.stockpile.months": 2.0}``).
        seed: Root seed of the run.
        case: Scenario file name.
        policies: Policy config groups whose settings the levers change.
        overrides: Other fixed Hydra overrides.
        config_dir: Extra directory of config groups.

    Returns:
        The metrics of the run (the keys and values of ``metrics.json``).
    """
    runner = CaseRunner(case, tuple(policies), tuple(overrides), None if config_dir is None else str(config_dir))
    return runner.run(scenario, policy, seed=seed)
