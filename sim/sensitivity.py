"""Global sensitivity analysis in the EMA Workbench vocabulary: uncertainties in, outcomes out.

* An :class:`Uncertainty` is a config key with a range (``model.precaution`` in [1, 3],
  ``scenario.goods.0.armington_elasticity`` in [2, 5]); a **lever** is the same thing for a policy
  parameter (``policy.stockpile.months``), declared with :class:`Lever` and sampled alike.
* An :class:`Outcome` is a metric key (``output_loss_share.JPN``, see ``metrics.json``).
* :func:`sample` draws a design with SALib (``sobol``: Saltelli/Sobol' sequence; ``morris``:
  elementary-effect trajectories), :func:`run_experiments` runs it and :func:`analyze` turns the
  outcomes into indices (a tidy table, one row per outcome and parameter);
  :func:`indices_figure` draws them.

:func:`run_experiments` is the fast path for large designs: worker processes (joblib/loky) each
compose the configuration once, then run design point after design point in memory
(:func:`outcomes_in_memory`: the model and its metrics, no tables or files per run). A Hydra multirun would
start a process, compose and write outputs for every point; ``benchmarks/bench_sweep.py`` measures
both.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "Uncertainty",
    "Lever",
    "Outcome",
    "problem",
    "sample",
    "run_experiments",
    "outcomes_in_memory",
    "analyze",
    "indices_figure",
    "METHODS",
]

#: Sampling / analysis methods (SALib).
METHODS = ("sobol", "morris")
#: Levels of the Morris grid.
MORRIS_LEVELS = 4


@dataclass(frozen=True)
class Uncertainty:
    """A scenario or model parameter whose value is uncertain: a config key and its range.

    Args:
        name: Dotted config key (list items by index: ``scenario.goods.0.armington_elasticity``).
        low: Lower end of the range.
        high: Upper end of the range (> ``low``).
    """

    name: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"{self.name}: range [{self.low!r}, {self.high!r}] is invalid; allowed: finite low < high")


@dataclass(frozen=True)
class Lever(Uncertainty):
    """A policy parameter a decision maker sets (``policy.stockpile.months`` in [0, 6]); sampled and
    analysed like an :class:`Uncertainty`.
    """


@dataclass(frozen=True)
class Outcome:
    """A scalar outcome of a run: a key of ``metrics.json`` (``output_loss_share.JPN``)."""

    name: str


def problem(parameters: Sequence[Uncertainty]) -> dict:
    """The SALib problem for ``parameters`` (names, bounds)."""
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise ValueError(f"parameters: {names!r} is invalid; allowed: each config key once")
    return {"num_vars": len(parameters), "names": names, "bounds": [[p.low, p.high] for p in parameters]}


def sample(parameters: Sequence[Uncertainty], method: str = "sobol", n: int = 64, *, seed: int = 1) -> pd.DataFrame:
    """A design: one row per experiment, one column per parameter.

    Args:
        parameters: Uncertainties and levers.
        method: ``sobol`` (``n * (D + 2)`` rows, first and total order; ``n`` a power of two) or
            ``morris`` (``n`` trajectories of ``D + 1`` points on a 4-level grid).
        n: Base sample size.
        seed: Seed of the sampler.
    """
    prob = problem(parameters)
    if method == "sobol":
        from SALib.sample import sobol

        if n < 2 or n & (n - 1):
            raise ValueError(f"n: {n!r} is invalid; allowed: a power of two >= 2 for Sobol' sampling")
        x = sobol.sample(prob, n, calc_second_order=False, scramble=True, seed=seed)
    elif method == "morris":
        from SALib.sample import morris

        if n < 2:
            raise ValueError(f"n: {n!r} is invalid; allowed: at least 2 Morris trajectories")
        x = morris.sample(prob, n, num_levels=MORRIS_LEVELS, seed=seed)
    else:
        raise ValueError(f"method: {method!r} is invalid; allowed: {', '.join(METHODS)}")
    return pd.DataFrame(x, columns=prob["names"])


# --------------------------------------------------------------------------------------------------
# Running a design
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _base_config(scenario: str, overrides: tuple[str, ...], config_dir: str | None):
    """The composed configuration, once per worker process."""
    from sim.api import compose_config

    fixed = ["output.figures=false", "output.flows=false", "output.progress=never", *overrides]
    return compose_config(scenario, fixed, config_dir=config_dir)


def _configure(base, point: dict[str, float], seed: int):
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(base)
    for key, value in point.items():
        OmegaConf.update(cfg, key, float(value), merge=False)
    cfg.seed = int(seed)
    return cfg


def outcomes_in_memory(cfg) -> dict:
    """Run a composed, prepared configuration (:func:`sim.scenario.prepare_config`) and return its
    metrics only.

    The same model run and :func:`sim.metrics.compute_metrics` as :func:`sim.api.run_config`, without
    the tidy tables, the resolved copy of the configuration and the provenance that a run's files
    need (about a third of the CPU time of a rare_earth_2010 run).
    """
    from sim.metrics import compute_metrics
    from sim.model import CoercionModel

    model = CoercionModel(cfg)
    model.run()
    metrics = compute_metrics(model)
    metrics.setdefault("clearing_max_iterations", int(model.clearing_max_iterations))
    metrics.setdefault("clearing_max_residual", float(model.clearing_max_residual))
    del model
    return metrics


def _run_chunk(scenario, overrides, config_dir, seed, points, outcomes):
    """Worker: run design points in memory, return their outcomes, wall and CPU seconds."""
    import logging

    from sim.scenario import prepare_config

    logging.getLogger("MESA").setLevel(logging.WARNING)
    base = _base_config(scenario, tuple(overrides), config_dir)
    rows = []
    for point in points:
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = prepare_config(_configure(base, point, seed))
        metrics = outcomes_in_memory(cfg)
        missing = [o for o in outcomes if o not in metrics]
        if missing:
            raise KeyError(f"outcomes: {missing!r} are not metrics of {scenario}; allowed: keys of metrics.json")
        values = [float(metrics[o]) if metrics[o] is not None else np.nan for o in outcomes]
        rows.append([*values, time.perf_counter() - t0, time.process_time() - c0])
    return rows


def _check_parameters(scenario, overrides, config_dir, parameters: Sequence[Uncertainty], seed: int) -> None:
    """Every key exists and each end of every range passes validation, before anything runs."""
    from omegaconf import OmegaConf

    from sim.scenario import prepare_config

    base = _base_config(scenario, tuple(overrides), config_dir)
    for p in parameters:
        if OmegaConf.select(base, p.name) is None:
            raise KeyError(f"{p.name}: not a key of the {scenario} configuration; allowed: a dotted config key")
        for end in (p.low, p.high):
            prepare_config(_configure(base, {p.name: end}, seed))


def run_experiments(
    design: pd.DataFrame,
    outcomes: Sequence[str | Outcome],
    *,
    scenario: str = "rare_earth_2010",
    overrides: Sequence[str] = (),
    seed: int = 1,
    n_jobs: int = 1,
    config_dir: str | Path | None = None,
    parameters: Sequence[Uncertainty] | None = None,
) -> pd.DataFrame:
    """Run every row of ``design`` (columns: config keys) and return the design with the outcomes.

    Worker processes (``n_jobs``; -1 = one per core) each compose the configuration once and run
    their share of the rows in memory; nothing is written per run. All runs use the root ``seed``
    (common random numbers, so differences come from the parameters).

    Returns:
        ``design`` plus one column per outcome, ``wall_seconds`` and ``cpu_seconds`` (per run, in
        its worker).

    Raises:
        KeyError: a design column or an outcome that the configuration / metrics do not have.
        sim.scenario.ScenarioError: a range end that fails validation (checked before any run).
    """
    from joblib import Parallel, delayed

    names = [o.name if isinstance(o, Outcome) else str(o) for o in outcomes]
    if parameters is None:
        parameters = [
            Uncertainty(c, float(design[c].min()), float(np.nextafter(design[c].max(), np.inf))) for c in design.columns
        ]
    cfg_dir = None if config_dir is None else str(config_dir)
    _check_parameters(scenario, overrides, cfg_dir, parameters, seed)
    points = design.to_dict(orient="records")
    workers = max(1, n_jobs if n_jobs > 0 else (__import__("os").cpu_count() or 1))
    n_chunks = min(len(points), workers * 4) or 1
    chunks = [c.tolist() for c in np.array_split(np.arange(len(points)), n_chunks)]
    if workers == 1:
        results = [_run_chunk(scenario, tuple(overrides), cfg_dir, seed, [points[i] for i in c], names) for c in chunks]
    else:
        results = Parallel(n_jobs=workers, backend="loky")(
            delayed(_run_chunk)(scenario, tuple(overrides), cfg_dir, seed, [points[i] for i in c], names)
            for c in chunks
        )
    values = np.array([row for chunk in results for row in chunk], dtype=float).reshape(len(points), len(names) + 2)
    out = design.reset_index(drop=True).copy()
    for j, name in enumerate(names):
        out[name] = values[:, j]
    out["wall_seconds"] = values[:, -2]
    out["cpu_seconds"] = values[:, -1]
    return out


# --------------------------------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------------------------------
def analyze(
    parameters: Sequence[Uncertainty],
    experiments: pd.DataFrame,
    outcomes: Sequence[str | Outcome],
    method: str = "sobol",
    *,
    seed: int = 1,
) -> pd.DataFrame:
    """Sensitivity indices, tidy: one row per outcome and parameter.

    Sobol': ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (first-order and total-order indices with 95%
    bootstrap half-widths). Morris: ``mu``, ``mu_star``, ``mu_star_conf``, ``sigma`` (mean, mean
    absolute and standard deviation of the elementary effects).
    """
    prob = problem(parameters)
    names = [o.name if isinstance(o, Outcome) else str(o) for o in outcomes]
    x = experiments[prob["names"]].to_numpy(dtype=float)
    frames = []
    for name in names:
        y = experiments[name].to_numpy(dtype=float)
        if not np.isfinite(y).all():
            n_bad = int((~np.isfinite(y)).sum())
            raise ValueError(f"{name}: {n_bad} experiments have no value; allowed: finite outcomes")
        if method == "sobol":
            from SALib.analyze import sobol

            res = sobol.analyze(prob, y, calc_second_order=False, seed=seed)
            cols = ["S1", "S1_conf", "ST", "ST_conf"]
        elif method == "morris":
            from SALib.analyze import morris

            res = morris.analyze(prob, x, y, num_levels=MORRIS_LEVELS, seed=seed)
            cols = ["mu", "mu_star", "mu_star_conf", "sigma"]
        else:
            raise ValueError(f"method: {method!r} is invalid; allowed: {', '.join(METHODS)}")
        frame = pd.DataFrame({c: np.asarray(res[c], dtype=float) for c in cols})
        frame.insert(0, "parameter", prob["names"])
        frame.insert(0, "outcome", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def indices_figure(indices: pd.DataFrame, *, labels: dict[str, str] | None = None):
    """Bars of the indices, one panel per outcome: first- and total-order Sobol' indices (with
    their confidence half-widths), or Morris ``mu_star`` (with its half-width) and ``sigma``.
    """
    from matplotlib.figure import Figure

    from sim.figures import style

    labels = labels or {}
    sobol_like = "ST" in indices.columns
    outcomes = list(dict.fromkeys(indices["outcome"]))
    err = {"elinewidth": 0.6, "ecolor": "0.2"}  # 95% confidence half-widths
    with style():
        fig = Figure(figsize=(7.2, 1.0 + 0.32 * indices["parameter"].nunique()))
        axes = fig.subplots(1, len(outcomes), sharey=True, squeeze=False)[0]
        for ax, outcome in zip(axes, outcomes, strict=True):
            d = indices[indices["outcome"] == outcome]
            y = np.arange(len(d))
            if sobol_like:
                s1, st = d["S1"].clip(lower=0), d["ST"].clip(lower=0)
                ax.barh(y - 0.2, s1, height=0.4, xerr=d["S1_conf"], error_kw=err, label="first order $S_1$")
                ax.barh(y + 0.2, st, height=0.4, xerr=d["ST_conf"], error_kw=err, label="total order $S_T$")
                ax.set_xlim(0, max(1.0, float((d["ST"] + d["ST_conf"]).max()) * 1.05))
                ax.set_xlabel("index")
            else:
                mu = d["mu_star"]
                ax.barh(y - 0.2, mu, height=0.4, xerr=d["mu_star_conf"], error_kw=err, label=r"$\mu^*$")
                ax.barh(y + 0.2, d["sigma"], height=0.4, label=r"$\sigma$")
                ax.set_xlabel("elementary effect")
            ax.set_yticks(y, [labels.get(p, p) for p in d["parameter"]])
            ax.invert_yaxis()
            ax.set_title(labels.get(outcome, outcome), fontsize="medium")
        axes[0].legend(loc="lower right", frameon=False)
    return fig
