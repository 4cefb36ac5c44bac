"""Global sensitivity analysis: SALib designs and indices on top of the EMA Workbench model.

The vocabulary is the EMA Workbench's (:mod:`sim.experiments.exploration`): an uncertainty or a lever is an EMA
parameter whose ``variable_name`` is a dotted config key (``model.precaution`` in [1, 3],
``scenario.goods.0.armington_elasticity`` in [2, 5], ``policy.stockpile.months`` in [0, 6]), made by
:func:`Uncertainty` / :func:`Lever` (the same thing, named for the reader); an outcome is a key of
``metrics.json`` (:func:`Outcome`).

* :func:`sample` draws a design with EMA's SALib samplers (``sobol``: Saltelli/Sobol' sequence;
  ``morris``: elementary-effect trajectories): one row per experiment, one column per config key;
* :func:`run_experiments` runs it through the EMA Workbench (:func:`sim.experiments.exploration.ema_model`,
  in process or on EMA's worker processes), each process composing the configuration once and
  running design points in memory (no files per run; ``benchmarks/bench_sweep.py`` measures it);
* :func:`analyze` turns the outcomes into SALib indices (a tidy table, one row per outcome and
  parameter) and :func:`indices_figure` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiments.exploration import outcome as _outcome
from sim.experiments.exploration import parameter
from sim.experiments.runner import outcomes_in_memory

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


def Uncertainty(name: str, low: float, high: float):  # noqa: N802 (a constructor, named as before)
    """A scenario or model parameter whose value is uncertain: the config key ``name`` in
    [``low``, ``high``] (an EMA ``RealParameter``, see :func:`sim.experiments.exploration.parameter`).
    """
    return parameter(name, low, high)


def Lever(name: str, low: float, high: float):  # noqa: N802
    """A policy setting a decision maker chooses (``policy.stockpile.months`` in [0, 6]); the same
    EMA parameter as :func:`Uncertainty`, sampled and analysed alike.
    """
    return parameter(name, low, high)


def Outcome(name: str):  # noqa: N802
    """A scalar outcome of a run: a key of ``metrics.json`` (an EMA outcome)."""
    return _outcome(name)


def _key(p) -> str:
    """The config or metric key of an EMA parameter or outcome, or a key given as a string."""
    return p.variable_name[0] if hasattr(p, "variable_name") else str(p)


def problem(parameters: Sequence) -> dict:
    """The SALib problem for ``parameters`` (names: config keys; bounds)."""
    names = [_key(p) for p in parameters]
    if len(set(names)) != len(names):
        raise ValueError(f"parameters: {names!r} is invalid; allowed: each config key once")
    return {"num_vars": len(parameters), "names": names, "bounds": [[p.lower_bound, p.upper_bound] for p in parameters]}


def sample(parameters: Sequence, method: str = "sobol", n: int = 64, *, seed: int = 1) -> pd.DataFrame:
    """A design: one row per experiment, one column per parameter (its config key).

    Args:
        parameters: Uncertainties and levers.
        method: ``sobol`` (``n * (D + 2)`` rows, first and total order; ``n`` a power of two) or
            ``morris`` (``n`` trajectories of ``D + 1`` points on a 4-level grid).
        n: Base sample size.
        seed: Seed of the sampler.
    """
    from ema_workbench.em_framework.salib_samplers import MorrisSampler, SobolSampler

    names = problem(parameters)["names"]
    if method == "sobol":
        if n < 2 or n & (n - 1):
            raise ValueError(f"n: {n!r} is invalid; allowed: a power of two >= 2 for Sobol' sampling")
        samples = SobolSampler().generate_samples(list(parameters), n, rng=seed, calc_second_order=False, scramble=True)
    elif method == "morris":
        if n < 2:
            raise ValueError(f"n: {n!r} is invalid; allowed: at least 2 Morris trajectories")
        samples = MorrisSampler().generate_samples(list(parameters), n, rng=seed, num_levels=MORRIS_LEVELS)
    else:
        raise ValueError(f"method: {method!r} is invalid; allowed: {', '.join(METHODS)}")
    return pd.DataFrame(np.asarray(samples.samples, dtype=float), columns=names)


# --------------------------------------------------------------------------------------------------
# Running a design
# --------------------------------------------------------------------------------------------------
def run_experiments(
    design: pd.DataFrame,
    outcomes: Sequence,
    *,
    scenario: str = "rare_earth_2010",
    overrides: Sequence[str] = (),
    seed: int = 1,
    n_jobs: int = 1,
    config_dir: str | Path | None = None,
    parameters: Sequence | None = None,
    policies: Sequence[str] = (),
) -> pd.DataFrame:
    """Run every row of ``design`` (columns: config keys) through the EMA Workbench and return the
    design with the outcomes.

    The rows are EMA scenarios of :func:`sim.experiments.exploration.ema_model` (one replication, root
    ``seed`` for every run: common random numbers, so differences come from the parameters); with
    ``n_jobs`` > 1 (-1: one per core) EMA's worker processes run them, each composing the
    configuration once. Nothing is written per run.

    Returns:
        ``design`` plus one column per outcome, ``wall_seconds`` and ``cpu_seconds`` (per run, in
        its worker).

    Raises:
        sim.experiments.exploration.ExplorationError: a design column the configuration does not have, or an
            outcome the metrics do not have.
        sim.world.scenario.ScenarioError: a range end that fails validation (checked before any run).
    """
    import os

    import ema_workbench as ema

    from sim.experiments.exploration import ema_model, ema_name, perform_experiments

    names = [_key(o) for o in outcomes]
    if parameters is None:
        parameters = [
            parameter(c, float(design[c].min()), float(np.nextafter(design[c].max(), np.inf))) for c in design.columns
        ]
    model = ema_model(
        scenario,
        uncertainties=parameters,
        outcomes=[*names, "wall_seconds", "cpu_seconds"],
        overrides=overrides,
        policies=policies,
        replications=[seed],
        config_dir=config_dir,
    )
    rows = design.to_dict(orient="records")
    if rows:  # the outcomes are metrics of the case: one run of the first point, before the design
        model.function.run(rows[0], seed=seed)
    points = [ema.Sample(f"design_{i}", **{ema_name(k): v for k, v in row.items()}) for i, row in enumerate(rows)]
    workers = max(1, n_jobs if n_jobs > 0 else (os.cpu_count() or 1))
    _, results = perform_experiments(model, points, seed=seed, n_jobs=min(workers, max(1, len(points))))
    out = design.reset_index(drop=True).copy()
    for name in [*names, "wall_seconds", "cpu_seconds"]:
        out[name] = np.asarray(results[ema_name(name)], dtype=float).reshape(len(out), -1)[:, 0]
    return out


# --------------------------------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------------------------------
def analyze(
    parameters: Sequence,
    experiments: pd.DataFrame,
    outcomes: Sequence,
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
    names = [_key(o) for o in outcomes]
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

    from sim.reporting.figures import style

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
