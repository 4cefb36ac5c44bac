"""Python entry points for notebooks and sweeps: compose a configuration, run it, get tables back.

``run(scenario, policy..., seed)`` is the single entry point that the command line, sweeps and
sensitivity analyses share (the EMA Workbench shape: a scenario's uncertainties and a policy's levers
in, outcomes out).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sim.model.model import CoercionModel
from sim.reporting.files import provenance
from sim.reporting.metrics import compute_metrics
from sim.reporting.progress import MonthProgress
from sim.world.config import (
    CONFIG_DIR,
    SCHEMA_NAMES,
    check_scenario_schema,
    lint_scenario_file,
    register_configs,
    scenario_name_problem,
    shadowed_scenario_message,
)

__all__ = ["RunResult", "CONFIG_DIR", "ScenarioShadowedWarning", "compose_config", "run", "run_config"]


@dataclass
class RunResult:
    """What a run produced, in memory.

    Attributes:
        timeseries: Tidy table (``date, step, country, good, variable, value``).
        flows: Tidy trade flows (``date, step, good, origin, destination, quantity, value``).
        metrics: Scalar outcomes (see :data:`sim.reporting.metrics.METRIC_DOCS`).
        config: The resolved configuration.
        provenance: Versions, seed, wall time.
        model: The finished model if ``keep_model`` was set (else ``None``, so it can be freed).
        episodes: One row per coercion episode of the strategic layer (``strategy.type: game``,
            columns :data:`sim.coercion.strategy.EPISODE_COLUMNS`); ``None`` for other strategies.
    """

    timeseries: pd.DataFrame
    flows: pd.DataFrame
    metrics: dict
    config: DictConfig
    provenance: dict
    model: CoercionModel | None = None
    episodes: pd.DataFrame | None = None


def compose_config(
    scenario: str | None = None, overrides: Sequence[str] = (), *, config_dir: str | os.PathLike | None = None
) -> DictConfig:
    """Compose the configuration as the command line would (``scenario=NAME`` plus overrides).

    Args:
        scenario: Scenario name (a file ``configs/scenario/NAME.yaml`` or in ``config_dir``).
        overrides: Hydra overrides, e.g. ``["seed=3", "model.risk_aversion=2"]``.
        config_dir: An extra directory searched for config groups (your own scenarios), after the
            shipped configs, as Hydra's ``--config-dir`` is: use names the shipped configs do not.

    A generated world (``scenario="generated"``) comes back with its generator parameters; a run
    expands it into the scenario they generate (:func:`sim.world.scenario.prepare_config`).

    Raises:
        hydra.errors.HydraException: unknown scenario, misspelt key or bad value (the message names it).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    if isinstance(scenario, str):
        _check_scenario_file(scenario, overrides, config_dir)
    args = list(overrides)
    if scenario is not None:
        args = [f"scenario={scenario}", *args]
    if config_dir is not None:
        args.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    gh = GlobalHydra.instance()
    was_initialized = gh.is_initialized()
    if was_initialized:
        # Called from inside a Hydra app (or another compose): use a clean context of our own.
        gh.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=args)
        # The root types `scenario` loosely (written or generated); check it against its kind.
        return check_scenario_schema(cfg)
    finally:
        if was_initialized:
            GlobalHydra.instance().clear()


class ScenarioShadowedWarning(UserWarning):
    """A user's scenario file has the name of a shipped one, which Hydra reads instead."""


def _check_scenario_file(scenario: str, overrides: Sequence[str], config_dir) -> None:
    """Check the file of ``scenario`` before composing it (see :func:`sim.world.config.lint_scenario_file`):
    an empty, binary or oversized file, invalid YAML, a misspelt key, a wrong type or a required field
    left out raises one ``ConfigCompositionException`` naming the file and the field; a user's file
    shadowed by a shipped one of the same name gives a :class:`ScenarioShadowedWarning` saying which
    is used.
    """
    import re
    import warnings

    from hydra.errors import ConfigCompositionException

    dirs = [config_dir] if config_dir is not None else []
    overridden = frozenset(
        re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", str(o).lstrip("+").split("=", 1)[0])
        for o in overrides
        if str(o).lstrip("+").startswith("scenario.") and "=" in str(o)
    )
    if scenario in SCHEMA_NAMES:  # composes to a scenario of nothing but missing fields
        problem = scenario_name_problem(scenario, dirs)
        if problem:
            raise ConfigCompositionException(problem)
    problem = lint_scenario_file(scenario, dirs, overridden=overridden)
    if problem:
        raise ConfigCompositionException(f"Error in scenario file {problem}")
    shadowed = shadowed_scenario_message(scenario, dirs)
    if shadowed:
        warnings.warn(shadowed, ScenarioShadowedWarning, stacklevel=3)


def run_config(cfg: DictConfig, *, keep_model: bool = False, progress: str | Callable | None = None) -> RunResult:
    """Run a composed configuration in memory.

    Args:
        cfg: A composed config (see :func:`compose_config`).
        keep_model: Keep the finished model on the result (for inspecting agents).
        progress: ``"auto"``, ``"always"``, ``"never"`` (a tqdm bar on stderr, see
            :mod:`sim.reporting.progress`), a callable ``(done, total)``, or ``None`` to use ``cfg.output.progress``.
    """
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    model = CoercionModel(cfg)
    if progress is None or isinstance(progress, str):
        progress = MonthProgress(progress or cfg.output.progress, str(cfg.scenario.name))
    model.run(progress=progress)
    ts = model.recorder.timeseries()
    flows = model.recorder.flows_table()
    metrics = compute_metrics(model)
    metrics["clearing_max_iterations"] = int(model.clearing_max_iterations)
    metrics["clearing_max_residual"] = float(model.clearing_max_residual)
    wall = time.perf_counter() - t0
    tags = cfg.get("tags")
    prov = provenance(
        seed=int(cfg.seed),
        wall_seconds=wall,
        started=started,
        finished=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        extra={
            "scenario": str(cfg.scenario.name),
            "run_seconds": round(wall, 3),
            "tags": OmegaConf.to_container(tags, resolve=True) if tags is not None else {},
        },
    )
    # The model's config: a generated world expanded (its parameters in scenario.generated_from).
    resolved = OmegaConf.create(OmegaConf.to_container(model.cfg, resolve=True))
    episodes = model.strategy.episode_table(model) if hasattr(model.strategy, "episode_table") else None
    result = RunResult(ts, flows, metrics, resolved, prov, model if keep_model else None, episodes)
    del model
    return result


def run(
    scenario: str | DictConfig | None = None,
    overrides: Sequence[str] = (),
    *,
    seed: int | None = None,
    config_dir: str | os.PathLike | None = None,
    keep_model: bool = False,
    progress: str | Callable | None = "never",
) -> RunResult:
    """Run a scenario and return its tables and metrics in memory.

    Args:
        scenario: A scenario name (``"rare_earth_2010"``) or an already composed config.
        overrides: Hydra overrides (``["model.risk_aversion=2", "scenario.end=2012-12"]``).
        seed: Root seed (overrides ``seed`` in the config).
        config_dir: Extra directory with your own config groups (e.g. ``my_configs/scenario/x.yaml``).
        keep_model: Keep the finished model on the result.
        progress: See :func:`run_config` (default: silent).

    Example:
        >>> import sim
        >>> res = sim.run("minimal", seed=1)  # doctest: +SKIP
        >>> res.metrics["peak_export_price_ratio.ore"]  # doctest: +SKIP
    """
    if isinstance(scenario, DictConfig):
        cfg = scenario
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    else:
        cfg = compose_config(scenario, overrides, config_dir=config_dir)
    if seed is not None:
        cfg = OmegaConf.merge(cfg, {"seed": int(seed)})
    return run_config(cfg, keep_model=keep_model, progress=progress)
