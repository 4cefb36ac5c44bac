"""Exploratory modelling with the EMA Workbench: the simulator as an ``ema_workbench`` model.

The vocabulary is EMA Workbench's (Kwakkel 2017), the names are the simulator's configuration keys:

* an **uncertainty** is a scenario or model number with a range, named by its dotted Hydra key
  (``model.precaution``, ``scenario.goods.0.armington_elasticity``, ``scenario.measures.0.quantity``);
* a **lever** is a policy setting a decision maker chooses (``policy.stockpile.months``,
  ``policy.diversification.max_share``, ``policy.collective_response.counter_tariff``);
* an **outcome** is a key of a run's ``metrics.json`` (``output_loss_share.JPN``);
* **replications** are runs of the same experiment with different root seeds (``seed=``).

Underneath is one function, :func:`run` (``run(scenario, policy, *, seed) -> outcomes``): a point in
uncertainty space and a point in lever space in, the run's metrics out. It composes the case as the
command line does (:func:`sim.api.compose_config`, once per process), prepares and checks it once, and
derives each run's configuration as plain read-only data (:mod:`sim.world.plain`: the changed numbers
type-checked, interpolations re-resolved, every value checked by the same rules) before running it
in memory (:meth:`CaseRunner.run_many` for many runs, in worker processes), so the
EMA Workbench (:func:`ema_model`), SALib designs (:mod:`sim.experiments.sensitivity`) and scripts call the same
thing. On top of EMA's experiments this module adds what exploratory modelling is for:
:func:`discover` (PRIM scenario discovery of where a policy fails, boxes with coverage and
density), :func:`feature_scores` (extra-trees feature scoring) and :func:`regret` (a minimax-regret
robustness ranking of policies across scenarios).

EMA parameter and outcome names must be Python identifiers, so each dotted key gets the name
:func:`ema_name` gives it (``model.precaution`` -> ``model__precaution``) and carries the key as
its ``variable_name``; the tables this module returns use the dotted keys again (:func:`key_of`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# The single run lives in sim.experiments.runner (no EMA import there, for worker processes); its
# names are this module's too.
from sim.experiments.runner import CaseRunner, ExplorationError, _value, outcomes_in_memory, run

try:
    with warnings.catch_warnings():
        # ema_workbench 3.0 warns on import about optional parts this project does not use.
        warnings.filterwarnings("ignore", message="ipyparallel not installed", category=UserWarning)
        warnings.filterwarnings("ignore", message="altair based interactive", category=ImportWarning)
        import ema_workbench as ema
        from ema_workbench.analysis import feature_scoring, prim
        from ema_workbench.em_framework.outcomes import Outcome
        from ema_workbench.em_framework.parameters import Parameter
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"sim.experiments.exploration needs the EMA Workbench ({exc}); install it with: pip install 'coercion-sim[explore]'"
    ) from exc

__all__ = [
    "CaseRunner",
    "run",
    "outcomes_in_memory",
    "ema_name",
    "key_of",
    "parameter",
    "categorical",
    "outcome",
    "as_parameters",
    "as_outcomes",
    "point",
    "ema_model",
    "check_model",
    "perform_experiments",
    "results_table",
    "outcome_values",
    "discover",
    "feature_scores",
    "regret",
    "boxes_figure",
    "feature_scores_figure",
    "regret_figure",
    "ExplorationError",
]

#: Outcomes the runner adds to a run's metrics: its wall and CPU seconds.
_TIMING = ("wall_seconds", "cpu_seconds")
#: Separator that stands for a dot of a configuration key in EMA names.
_DOT = "__"


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------
def ema_name(key: str) -> str:
    """The EMA Workbench name of a dotted configuration or metric key (dots become ``__``)."""
    name = str(key).replace(".", _DOT)
    if not name.isidentifier():
        raise ExplorationError(
            f"{key!r}: not usable as a parameter or outcome name; allowed: a dotted key of letters, digits and underscores"
        )
    return name


def key_of(name: str) -> str:
    """The dotted key an EMA name stands for (the inverse of :func:`ema_name`)."""
    return str(name).replace(_DOT, ".")


def parameter(key: str, low: float, high: float, *, integer: bool = False) -> Parameter:
    """An uncertainty or a lever: the configuration key ``key`` drawn from ``[low, high]``.

    Args:
        key: Dotted Hydra key (list items by index: ``scenario.goods.0.armington_elasticity``).
        low: Lower end of the range.
        high: Upper end of the range (> ``low``).
        integer: Draw whole numbers (an ``IntegerParameter``) instead of reals.

    Returns:
        An EMA ``RealParameter`` (or ``IntegerParameter``) named :func:`ema_name` of ``key``.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ExplorationError(f"{key}: range [{low!r}, {high!r}] is invalid; allowed: finite low < high")
    if integer:
        return ema.IntegerParameter(ema_name(key), int(low), int(high), variable_name=key)
    return ema.RealParameter(ema_name(key), float(low), float(high), variable_name=key)


def categorical(key: str, values: Sequence[Any]) -> Parameter:
    """An uncertainty or a lever that takes one of ``values`` (``[False, True]``: a switch)."""
    values = list(values)
    if len(values) < 2:
        raise ExplorationError(f"{key}: values {values!r} are invalid; allowed: at least two values")
    if sorted(values, key=str) == [False, True]:
        return ema.BooleanParameter(ema_name(key), variable_name=key)
    return ema.CategoricalParameter(ema_name(key), values, variable_name=key)


def outcome(key: str) -> ema.ArrayOutcome:
    """An outcome: the metric ``key`` of ``metrics.json`` (``output_loss_share.JPN``), one value per
    replication (EMA's ``ArrayOutcome``: the experiments' outcomes have one column per seed).
    """
    return ema.ArrayOutcome(ema_name(key), variable_name=key)


def as_parameters(spec: Mapping[str, Any] | Iterable[Parameter] | None) -> list[Parameter]:
    """Parameters from a mapping ``key -> (low, high)`` (a range) or ``key -> [v1, v2, ...]`` (values),
    or EMA parameters as they are.
    """
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        out = []
        for key, value in spec.items():
            if isinstance(value, tuple) and len(value) == 2:
                out.append(parameter(key, *value))
            elif isinstance(value, list | set | frozenset):
                out.append(categorical(key, sorted(value, key=str) if not isinstance(value, list) else value))
            else:
                raise ExplorationError(f"{key}: {value!r} is invalid; allowed: a range (low, high) or a list of values")
        return out
    out = list(spec)
    for p in out:
        if not isinstance(p, Parameter):
            raise ExplorationError(f"{p!r} is invalid; allowed: an EMA parameter or a mapping key -> range")
    return out


def as_outcomes(spec: Iterable[str | Outcome]) -> list[Outcome]:
    """Outcomes from metric keys, or EMA outcome objects as they are (a ``ScalarOutcome`` with a
    ``function`` that reduces the replications, e.g. ``np.mean``).
    """
    return [o if isinstance(o, Outcome) else outcome(str(o)) for o in spec]


@contextlib.contextmanager
def _quiet_ema():
    """EMA Workbench 3.0's analysis code uses pandas idioms that pandas 3.1 deprecates; those
    warnings (attributed to ema_workbench's modules) are not the user's to act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ema_workbench\.")
        yield


def point(name: str, values: Mapping[str, Any]) -> ema.Sample:
    """A named scenario or policy: dotted key -> value (``point("stockpile 3 months",
    {"policy.stockpile.months": 3.0})``), as the EMA ``Sample`` that :func:`perform_experiments` takes.
    """
    return ema.Sample(str(name), **{ema_name(k): _value(v) for k, v in values.items()})


def _key(p: Parameter | Outcome) -> str:
    return p.variable_name[0]


# --------------------------------------------------------------------------------------------------
# The EMA model
# --------------------------------------------------------------------------------------------------
def ema_model(
    case: str,
    uncertainties: Mapping[str, Any] | Iterable[Parameter] = (),
    levers: Mapping[str, Any] | Iterable[Parameter] = (),
    outcomes: Iterable[str | Outcome] = (),
    *,
    policies: Sequence[str] = (),
    overrides: Sequence[str] = (),
    replications: int | Sequence[int] = 1,
    config_dir: str | os.PathLike | None = None,
    check: bool = True,
) -> ema.ReplicatorModel:
    """The case as an EMA Workbench model, its keys checked (:func:`check_model`).

    Args:
        case: Scenario file name (``"minimal"``, ``"rare_earth_2010"``).
        uncertainties: Mapping ``key -> (low, high)`` or ``key -> [values]``, or EMA parameters
            (see :func:`parameter`).
        levers: The same for policy settings (keys under ``policy.``).
        outcomes: Metric keys (or EMA outcomes, see :func:`as_outcomes`).
        policies: Policy groups selected in every run (the levers' defaults come from them).
        overrides: Other fixed Hydra overrides.
        replications: Number of replications (root seeds 1, 2, ...), or the seeds themselves.
            Every experiment runs on the same seeds (common random numbers).
        config_dir: Extra directory of config groups.
        check: Check keys and range ends before returning (:func:`check_model`).

    Returns:
        An ``ema_workbench.ReplicatorModel`` whose outcomes have one column per replication.
    """
    seeds = list(range(1, int(replications) + 1)) if isinstance(replications, int) else [int(s) for s in replications]
    if not seeds:
        raise ExplorationError(f"replications: {replications!r} is invalid; allowed: at least one seed")
    outs = as_outcomes(outcomes)
    runner = CaseRunner(
        case,
        tuple(policies),
        tuple(overrides),
        None if config_dir is None else str(config_dir),
        tuple(k for k in (_key(o) for o in outs) if k not in _TIMING),
    )
    model = ema.ReplicatorModel(ema_name(case), function=runner)
    model.uncertainties = as_parameters(uncertainties)
    model.levers = as_parameters(levers)
    model.outcomes = outs
    model.replications = [{"seed": s} for s in seeds]
    if check:
        check_model(model)
    return model


def _ends(p: Parameter) -> list:
    if isinstance(p, ema.CategoricalParameter):
        return [c.value for c in p.categories]
    return [p.lower_bound, p.upper_bound]


def check_model(model: ema.ReplicatorModel) -> None:
    """Every uncertainty and lever is a key of the case and every end of its range passes the
    configuration's checks, all before anything runs.

    Raises:
        ExplorationError: keys the case does not have (all named in one message), a name used twice.
        sim.world.scenario.ScenarioError: a range end the configuration rejects (names the field and value).
    """
    runner: CaseRunner = model.function
    params = [*model.uncertainties, *model.levers]
    keys = [_key(p) for p in params]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ExplorationError(f"{', '.join(twice)}: given more than once; allowed: each key once")
    seed = int(model.replications[0]["seed"])
    runner.config({k: _ends(p)[0] for k, p in zip(keys, params, strict=True)}, seed=seed)  # unknown keys: one error
    for key, p in zip(keys, params, strict=True):
        for end in _ends(p):
            runner.config({key: end}, seed=seed)


def perform_experiments(
    model: ema.ReplicatorModel,
    scenarios: int | Iterable = 16,
    policies: int | Iterable = 0,
    *,
    seed: int = 1,
    n_jobs: int = 1,
    sampling: str = "lhs",
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run the model over sampled scenarios and policies (EMA's full-factorial combination).

    Args:
        model: From :func:`ema_model`.
        scenarios: Number of scenarios to sample from the uncertainties, or named points (:func:`point`).
        policies: Number of policies to sample from the levers, named lever settings
            (:func:`point`, EMA ``Sample`` objects), or 0: the policy groups' defaults.
        seed: Seed of the samplers (the runs' seeds are the model's replications).
        n_jobs: Worker processes (EMA's ``MultiprocessingEvaluator``; 1: in this process).
        sampling: ``lhs`` (Latin hypercube), ``mc`` (Monte Carlo), ``sobol`` or ``morris`` (SALib).
        progress: Show EMA's progress bar (on stderr).

    Returns:
        EMA's ``(experiments, outcomes)``: a table of the sampled values (EMA names; columns
        ``scenario``, ``policy``, ``model``) and, per outcome name, an array of shape
        (experiments, replications).
    """
    samplers = {
        "lhs": ema.Samplers.LHS,
        "mc": ema.Samplers.MC,
        "sobol": ema.Samplers.SOBOL,
        "morris": ema.Samplers.MORRIS,
    }
    if sampling not in samplers:
        raise ExplorationError(f"sampling: {sampling!r} is invalid; allowed: {', '.join(samplers)}")
    rng = np.random.default_rng(seed)
    kwargs = {
        "scenarios": scenarios,
        "policies": policies,
        "uncertainty_sampling": samplers[sampling],
        "lever_sampling": samplers[sampling],
        "uncertainty_sampling_kwargs": {"rng": int(rng.integers(2**31))},
        "lever_sampling_kwargs": {"rng": int(rng.integers(2**31))},
        "log_progress": not progress,  # EMA: a tqdm bar on stderr unless progress goes to its log
    }
    if sampling == "sobol":
        for k in ("uncertainty_sampling_kwargs", "lever_sampling_kwargs"):
            kwargs[k]["calc_second_order"] = False
    logging.getLogger("MESA").setLevel(logging.WARNING)
    if n_jobs == 1:
        evaluator = ema.SequentialEvaluator(model)
    else:
        evaluator = ema.MultiprocessingEvaluator(model, n_processes=n_jobs)
    with evaluator:
        experiments, outcomes = evaluator.perform_experiments(**kwargs)
    return experiments, {k: np.asarray(v, dtype=float) for k, v in outcomes.items()}


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def _parameter_columns(experiments: pd.DataFrame) -> list[str]:
    return [c for c in experiments.columns if c not in ("scenario", "policy", "model")]


def outcome_values(outcomes: Mapping[str, np.ndarray], key: str, *, statistic: str = "mean") -> np.ndarray:
    """One value per experiment of the outcome ``key`` (dotted or EMA name): the ``mean``, ``max``
    or ``min`` over replications.
    """
    name = ema_name(key)
    if name not in outcomes:
        raise ExplorationError(
            f"{key}: not an outcome of these experiments; allowed: {', '.join(map(key_of, outcomes))}"
        )
    values = np.asarray(outcomes[name], dtype=float)
    if values.ndim == 1:
        return values
    funcs = {"mean": np.nanmean, "max": np.nanmax, "min": np.nanmin}
    if statistic not in funcs:
        raise ExplorationError(f"statistic: {statistic!r} is invalid; allowed: {', '.join(funcs)}")
    return funcs[statistic](values, axis=1)


def results_table(
    experiments: pd.DataFrame, outcomes: Mapping[str, np.ndarray], seeds: Sequence[int] | None = None
) -> pd.DataFrame:
    """Tidy results: one row per experiment and replication, dotted keys as column names.

    Columns: ``experiment``, the sampled values, ``scenario``, ``policy``, ``replication`` (and
    ``seed`` when ``seeds`` is given: the model's replication seeds), one column per outcome.
    """
    exp = experiments.rename(columns=key_of).reset_index(drop=True)
    exp.insert(0, "experiment", np.arange(len(exp)))
    first = np.asarray(next(iter(outcomes.values())))
    n_rep = 1 if first.ndim == 1 else first.shape[1]
    rows = exp.loc[exp.index.repeat(n_rep)].reset_index(drop=True)
    rows["replication"] = np.tile(np.arange(n_rep), len(exp))
    if seeds is not None:
        rows["seed"] = np.tile(np.asarray(list(seeds), dtype=int), len(exp))
    for name, values in outcomes.items():
        rows[key_of(name)] = np.asarray(values, dtype=float).reshape(len(exp), n_rep).ravel()
    return rows.drop(columns=["model"], errors="ignore")


# --------------------------------------------------------------------------------------------------
# Scenario discovery, feature scoring, robustness
# --------------------------------------------------------------------------------------------------
def discover(
    experiments: pd.DataFrame,
    cases_of_interest: np.ndarray,
    *,
    columns: Sequence[str] | None = None,
    min_density: float = 0.8,
    mass_min: float = 0.05,
    peel_alpha: float = 0.05,
    max_boxes: int = 3,
) -> pd.DataFrame:
    """PRIM scenario discovery: boxes of the input space where the cases of interest (e.g. "the
    policy fails") concentrate.

    For each box, the point of PRIM's peeling trajectory with the highest coverage among those
    with density >= ``min_density`` (the densest point if none reaches it) is reported; boxes are
    found one after another on the cases not yet covered, up to ``max_boxes`` or until a box adds
    nothing.

    Args:
        experiments: EMA's experiments table (or any table of inputs, EMA names or dotted keys).
        cases_of_interest: One boolean per experiment.
        columns: Inputs to search over (default: every sampled uncertainty and lever).
        min_density: Density the reported point should reach.
        mass_min: Smallest share of the experiments a box may hold.
        peel_alpha: Share peeled off per step.
        max_boxes: Most boxes to find.

    Returns:
        One row per box and restricted input: ``box``, ``input`` (dotted key), ``low``, ``high`` (the
        box's limits; for a categorical input, ``values``), ``coverage`` (share of all cases of
        interest inside the box), ``density`` (share of the box's experiments that are cases of
        interest), ``mass`` (share of all experiments in the box), ``n_cases`` (cases of interest in
        the box). An empty table if there are no cases of interest.
    """
    y = np.asarray(cases_of_interest, dtype=bool)
    x = experiments.reset_index(drop=True)
    cols = list(columns) if columns is not None else _parameter_columns(x)
    cols = [c if c in x.columns else ema_name(c) for c in cols]
    missing = [key_of(c) for c in cols if c not in x.columns]
    if missing:
        raise ExplorationError(f"columns: {missing!r} are not inputs of these experiments")
    if len(y) != len(x):
        raise ExplorationError(f"cases_of_interest: {len(y)} values for {len(x)} experiments; allowed: one each")
    x = x[cols].copy()
    for c in x.columns:  # PRIM peels floats and integers; booleans and categories as categories
        if x[c].dtype == bool:
            x[c] = x[c].astype("category")
    columns_out = ["box", "input", "low", "high", "values", "coverage", "density", "mass", "n_cases"]
    if not y.any():
        return pd.DataFrame(columns=columns_out)
    with _quiet_ema():
        alg = prim.Prim(x, y.copy(), peel_alpha=peel_alpha, mass_min=mass_min)
    n_total = int(y.sum())
    rows = []
    for b in range(max_boxes):
        with _quiet_ema():
            box = alg.find_box()
        if box is None:
            break
        traj = box.peeling_trajectory
        ok = traj[traj["density"] >= min_density]
        i = int(ok["coverage"].idxmax()) if len(ok) else int(traj["density"].idxmax())
        with _quiet_ema():
            box.select(i)
        inside = box.yi
        n_in = int(y[inside].sum())
        if n_in == 0:
            break
        lim = box.box_lims[i]
        stats = {
            "coverage": n_in / n_total,
            "density": n_in / len(inside),
            "mass": len(inside) / len(y),
            "n_cases": n_in,
        }
        restricted = _restricted(lim, alg.box_init)
        if not restricted:
            rows.append({"box": b, "input": None, "low": np.nan, "high": np.nan, "values": None, **stats})
        for c in restricted:
            lo, hi = lim.loc[0, c], lim.loc[1, c]
            if isinstance(lo, set):
                rows.append(
                    {"box": b, "input": key_of(c), "low": np.nan, "high": np.nan, "values": sorted(lo), **stats}
                )
            else:
                rows.append(
                    {"box": b, "input": key_of(c), "low": float(lo), "high": float(hi), "values": None, **stats}
                )
        if stats["coverage"] >= 1.0:
            break
    return pd.DataFrame(rows, columns=columns_out)


def _restricted(lim: pd.DataFrame, init: pd.DataFrame) -> list[str]:
    out = []
    for c in lim.columns:
        lo, hi = lim.loc[0, c], lim.loc[1, c]
        if isinstance(lo, set):
            if lo != init.loc[0, c]:
                out.append(c)
        elif lo > init.loc[0, c] or hi < init.loc[1, c]:
            out.append(c)
    return out


def feature_scores(
    experiments: pd.DataFrame,
    outcomes: Mapping[str, np.ndarray] | Mapping[str, Sequence[float]],
    *,
    columns: Sequence[str] | None = None,
    seed: int = 1,
    n_trees: int = 250,
) -> pd.DataFrame:
    """Feature scores (extra trees, EMA's ``get_feature_scores_all``): how much each input explains
    each outcome (mean over replications); columns sum to 1.

    A boolean outcome (e.g. a failure flag) is scored as a classification.

    Returns:
        A table with one row per input (dotted key) and one column per outcome (dotted key), rows
        sorted by the first outcome's score.
    """
    x = experiments.reset_index(drop=True)
    cols = list(columns) if columns is not None else _parameter_columns(x)
    cols = [c if c in x.columns else ema_name(c) for c in cols]
    x = x[cols].copy()
    for c in x.columns:
        if x[c].dtype == bool or isinstance(x[c].dtype, pd.CategoricalDtype) or x[c].dtype == object:
            x[c] = x[c].astype(str).astype("category").cat.codes
    frames = []
    for name, values in outcomes.items():
        y = np.asarray(values)
        if y.ndim == 2:
            y = y.mean(axis=1) if y.dtype != bool else y.any(axis=1)
        if y.dtype == bool:
            mode = feature_scoring.RuleInductionType.CLASSIFICATION
        else:
            mode = feature_scoring.RuleInductionType.REGRESSION
        with _quiet_ema():
            fs = feature_scoring.get_feature_scores_all(
                x, {key_of(name): y}, mode=mode, nr_trees=n_trees, random_state=seed
            )
        frames.append(fs)
    table = pd.concat(frames, axis=1)
    table.index = [key_of(i) for i in table.index]
    table.index.name = "input"
    return table.sort_values(table.columns[0], ascending=False)


def regret(
    experiments: pd.DataFrame,
    outcomes: Mapping[str, np.ndarray],
    objectives: Mapping[str, Sequence[str] | str],
) -> pd.DataFrame:
    """Robustness of policies across scenarios by minimax regret (Savage 1951; Lempert et al. 2006).

    An objective is an outcome, or the sum of several outcomes (``{"total cost":
    ["output_loss.JPN", "policy_cost.total.JPN"]}``), to be minimised; its value per experiment is
    the mean over replications. The regret of a policy in a scenario is its value minus the best
    (lowest) value any policy reached in that scenario; a robust policy has a small maximum regret
    over scenarios. Needs every policy run on every scenario (EMA's full-factorial design).

    Returns:
        One row per policy: ``policy``, per objective ``max_regret.<objective>`` and
        ``mean_regret.<objective>``, and ``rank`` (1 = smallest maximum regret on the first
        objective; ties broken by the mean regret), sorted by rank. The lever values of each policy
        are carried as columns (dotted keys).
    """
    if not objectives:
        raise ExplorationError("objectives: none given; allowed: a mapping name -> outcome key(s)")
    table = pd.DataFrame({"scenario": experiments["scenario"].astype(str).to_numpy()})
    table["policy"] = experiments["policy"].astype(str).to_numpy()
    for name, keys in objectives.items():
        keys = [keys] if isinstance(keys, str) else list(keys)
        table[name] = sum(outcome_values(outcomes, k) for k in keys)
    counts = table.groupby("policy")["scenario"].nunique()
    n_scen = table["scenario"].nunique()
    if (counts != n_scen).any():
        raise ExplorationError(
            "experiments: not every policy was run on every scenario; allowed: a full-factorial design"
        )
    rows = table.groupby(["scenario", "policy"], sort=False)[list(objectives)].mean().reset_index()
    for name in objectives:
        best = rows.groupby("scenario")[name].transform("min")
        rows[f"regret.{name}"] = rows[name] - best
    agg = {}
    for name in objectives:
        agg[f"max_regret.{name}"] = (f"regret.{name}", "max")
        agg[f"mean_regret.{name}"] = (f"regret.{name}", "mean")
    out = rows.groupby("policy", sort=False).agg(**agg).reset_index()
    first = next(iter(objectives))
    out = out.sort_values([f"max_regret.{first}", f"mean_regret.{first}"], kind="stable").reset_index(drop=True)
    out.insert(1, "rank", np.arange(1, len(out) + 1))
    # Lever values: the inputs that are constant within each policy and differ between policies.
    by_policy = experiments.assign(policy=experiments["policy"].astype(str)).groupby("policy")
    levers = [
        c
        for c in _parameter_columns(experiments)
        if (by_policy[c].nunique(dropna=False) <= 1).all() and experiments[c].nunique(dropna=False) > 1
    ]
    if levers:
        out = out.merge(by_policy[levers].first().rename(columns=key_of), left_on="policy", right_index=True)
    return out


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------
def boxes_figure(
    experiments: pd.DataFrame,
    cases_of_interest: np.ndarray,
    boxes: pd.DataFrame,
    *,
    box: int = 0,
    labels: Mapping[str, str] | None = None,
):
    """The experiments over the two inputs a PRIM box restricts most, cases of interest marked,
    and the box drawn (coverage and density in the title).

    Args:
        experiments: The inputs (EMA names or dotted keys).
        cases_of_interest: One boolean per experiment.
        boxes: From :func:`discover`.
        box: Which box to draw.
        labels: Display names for dotted keys.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from sim.reporting.figures import style

    labels = dict(labels or {})
    y = np.asarray(cases_of_interest, dtype=bool)
    x = experiments.reset_index(drop=True).rename(columns=key_of)
    rows = boxes[(boxes["box"] == box) & boxes["input"].notna() & boxes["low"].notna()]
    numeric = [c for c in _parameter_columns(x) if pd.api.types.is_numeric_dtype(x[c]) and x[c].dtype != bool]
    inputs = list(rows["input"])[:2]
    inputs += [c for c in numeric if c not in inputs][: 2 - len(inputs)]
    with style():
        fig = Figure(figsize=(4.2, 3.4))
        ax = fig.subplots()
        if len(inputs) < 2:
            ax.text(0.5, 0.5, "fewer than two numeric inputs", ha="center", transform=ax.transAxes)
            return fig
        a, b = inputs
        ax.scatter(x.loc[~y, a], x.loc[~y, b], s=9, color="0.7", label="policy holds", linewidths=0)
        ax.scatter(x.loc[y, a], x.loc[y, b], s=11, color="#D55E00", label="policy fails", linewidths=0)
        lim = rows.set_index("input")
        lo_a, hi_a = (lim.loc[a, "low"], lim.loc[a, "high"]) if a in lim.index else (x[a].min(), x[a].max())
        lo_b, hi_b = (lim.loc[b, "low"], lim.loc[b, "high"]) if b in lim.index else (x[b].min(), x[b].max())
        ax.add_patch(Rectangle((lo_a, lo_b), hi_a - lo_a, hi_b - lo_b, fill=False, lw=1.2, ec="k", label="PRIM box"))
        ax.set_xlabel(labels.get(a, a))
        ax.set_ylabel(labels.get(b, b))
        if len(rows):
            r = rows.iloc[0]
            ax.set_title(
                f"box {box}: coverage {r['coverage']:.0%}, density {r['density']:.0%}, "
                f"{len(rows)} input{'s' if len(rows) != 1 else ''} restricted",
                fontsize="medium",
            )
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def feature_scores_figure(scores: pd.DataFrame, *, labels: Mapping[str, str] | None = None):
    """Heat map of feature scores (inputs by outcomes, from :func:`feature_scores`), values printed."""
    from matplotlib.figure import Figure

    from sim.reporting.figures import style

    labels = dict(labels or {})
    values = scores.to_numpy(dtype=float)
    with style():
        fig = Figure(figsize=(1.6 + 1.1 * scores.shape[1], 0.9 + 0.32 * scores.shape[0]))
        ax = fig.subplots()
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=max(0.5, float(np.nanmax(values))), aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.3 else "k", fontsize="small")
        ax.set_xticks(range(scores.shape[1]), [labels.get(c, c) for c in scores.columns], rotation=30, ha="right")
        ax.set_yticks(range(scores.shape[0]), [labels.get(i, i) for i in scores.index])
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="feature score (extra trees)", shrink=0.8)
    return fig


def regret_figure(ranking: pd.DataFrame, *, unit: float = 1.0, unit_label: str = ""):
    """Maximum and mean regret of each policy (from :func:`regret`), one panel per objective,
    policies in rank order (most robust at the top).

    Args:
        ranking: From :func:`regret`.
        unit: Divide regrets by this (e.g. 1e6 for US$ million).
        unit_label: The unit's name for the axis (``"US$ million"``).
    """
    from matplotlib.figure import Figure

    from sim.reporting.figures import style

    objectives = [c.removeprefix("max_regret.") for c in ranking.columns if c.startswith("max_regret.")]
    with style():
        fig = Figure(figsize=(3.0 + 2.4 * len(objectives), 0.9 + 0.3 * len(ranking)))
        axes = fig.subplots(1, len(objectives), sharey=True, squeeze=False)[0]
        y = np.arange(len(ranking))
        for ax, name in zip(axes, objectives, strict=True):
            ax.barh(y - 0.2, ranking[f"max_regret.{name}"] / unit, height=0.4, label="maximum over scenarios")
            ax.barh(y + 0.2, ranking[f"mean_regret.{name}"] / unit, height=0.4, label="mean over scenarios")
            ax.set_title(f"regret: {name}", fontsize="medium")
            ax.set_xlabel(unit_label or "regret")
        axes[0].set_yticks(y, [f"{r}. {p}" for r, p in zip(ranking["rank"], ranking["policy"], strict=True)])
        axes[0].invert_yaxis()
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False)
    return fig
