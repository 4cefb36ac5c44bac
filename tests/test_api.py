"""The Python entry points (``sim.api``): composing configs, running in memory, and their errors."""

from __future__ import annotations

import gc
import io
import weakref

import helpers
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig

import sim.api
from sim.api import RunResult, compose_config, run
from sim.model.model import CoercionModel
from sim.reporting.progress import MonthProgress, announce
from sim.world.scenario import ScenarioError

#: A short run: six months without measures (the minimal quota starts in 2021).
SHORT = ["scenario.end=2020-06", "scenario.measures=[]"]


# ------------------------------------------------------------------------------------------------
# compose_config
# ------------------------------------------------------------------------------------------------
def test_compose_minimal():
    cfg = compose_config("minimal")
    assert isinstance(cfg, DictConfig)
    assert cfg.scenario.name == "minimal"
    assert cfg.seed == 0
    assert cfg.model.risk_aversion > 0
    assert [c.code for c in cfg.scenario.countries] == ["CHN", "JPN", "AUS"]


def test_compose_applies_overrides():
    cfg = compose_config("minimal", ["seed=7", "model.risk_aversion=1.5", "scenario.end=2021-06"])
    assert cfg.seed == 7
    assert cfg.model.risk_aversion == 1.5
    assert cfg.scenario.end == "2021-06"


def test_compose_default_scenario_is_the_configured_one():
    defaults = (helpers.CONFIG_DIR / "config.yaml").read_text()
    if not (helpers.SCENARIO_DIR / "rare_earth_2010.yaml").exists():
        pytest.skip("configs/scenario/rare_earth_2010.yaml is not there yet")
    assert "scenario: rare_earth_2010" in defaults
    assert compose_config().scenario.name == "rare_earth_2010"


def test_compose_from_own_config_dir(tmp_path):
    helpers.write_scenario(tmp_path, "mine", lambda d: d.update(description="my own"))
    cfg = compose_config("mine", config_dir=tmp_path)
    assert cfg.scenario.name == "mine"
    assert cfg.scenario.description == "my own"


def test_compose_leaves_no_global_hydra_state():
    from hydra.core.global_hydra import GlobalHydra

    compose_config("minimal")
    assert not GlobalHydra.instance().is_initialized()


# ------------------------------------------------------------------------------------------------
# run / run_config
# ------------------------------------------------------------------------------------------------
def test_run_returns_tables_and_metrics():
    res = helpers.cached_run()
    assert isinstance(res, RunResult)
    assert list(res.timeseries.columns) == helpers.TIMESERIES_COLUMNS
    assert list(res.flows.columns) == helpers.FLOWS_COLUMNS
    assert res.metrics["scenario"] == "minimal" and res.metrics["seed"] == 1
    assert res.config.seed == 1
    assert res.provenance["seed"] == 1 and res.provenance["wall_seconds"] >= 0
    assert isinstance(res.model, CoercionModel)
    assert res.model.step_index == res.model.n_steps - 1 == 35
    assert not res.model.running


def test_run_does_not_keep_the_model_by_default():
    res = run("minimal", SHORT, seed=1)
    assert res.model is None
    assert res.timeseries["step"].max() == 5


def test_run_accepts_a_composed_config_with_overrides_and_seed():
    cfg = compose_config("minimal", ["scenario.end=2020-04", "scenario.measures=[]"])
    res = run(cfg, ["model.risk_aversion=2.0"], seed=5)
    assert res.config.seed == 5
    assert res.config.model.risk_aversion == 2.0
    assert res.metrics["n_steps"] == 4
    assert cfg.seed == 0, "run() must not modify the config it was given"


def test_run_config_progress_callable_sees_every_month():
    seen = []
    cfg = compose_config("minimal", SHORT)
    sim.api.run_config(cfg, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 6) for k in range(1, 7)]


def test_run_is_silent_by_default(capfd):
    run("minimal", ["scenario.end=2020-03", "scenario.measures=[]"], seed=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _report_every_month(progress, total: int = 36) -> None:
    for done in range(1, total + 1):
        progress(done, total)


def test_auto_progress_is_silent_when_stderr_is_not_a_terminal(capsys):
    progress = MonthProgress("auto", "minimal", delay=0.0)  # stderr is pytest's capture: not a tty
    _report_every_month(progress)
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_a_tqdm_bar_left_at_the_last_month():
    for mode in ("auto", "always"):
        terminal = _Terminal()
        _report_every_month(MonthProgress(mode, "minimal", stream=terminal, delay=0.0))
        out = terminal.getvalue()
        assert "\r" in out and out.endswith("\n"), mode  # one line redrawn in place
        last = out.rstrip("\n").rsplit("\r", 1)[-1]
        assert last.startswith("[coercion-sim] minimal: 100%|") and "month 36/36" in last, mode


def test_always_progress_in_a_log_is_whole_lines_ending_at_the_last_month():
    log = io.StringIO()  # not a terminal: a batch job's log
    _report_every_month(MonthProgress("always", "minimal", stream=log))
    lines = log.getvalue().splitlines(keepends=True)
    assert "\r" not in log.getvalue() and all(line.endswith("\n") for line in lines)
    assert all(line.startswith("[coercion-sim] minimal: month ") for line in lines)
    assert lines[-1].startswith("[coercion-sim] minimal: month 36/36 (")


def test_never_progress_is_silent_even_on_a_terminal():
    terminal = _Terminal()
    _report_every_month(MonthProgress("never", "minimal", stream=terminal, delay=0.0))
    announce("drawing figures", "never", "minimal", stream=terminal)
    assert terminal.getvalue() == ""


def test_auto_progress_waits_before_showing_a_bar():
    terminal = _Terminal()
    _report_every_month(MonthProgress("auto", "minimal", stream=terminal, delay=3600.0))
    assert terminal.getvalue() == ""  # a run shorter than the delay leaves the terminal clean


def test_run_frees_the_model_unless_kept(monkeypatch):
    refs: list[weakref.ref] = []

    class TrackedModel(CoercionModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            refs.append(weakref.ref(self))

    monkeypatch.setattr(sim.api, "CoercionModel", TrackedModel)
    res = run("minimal", SHORT, seed=1)
    gc.collect()
    assert len(refs) == 1
    assert refs[0]() is None, "sim.api.run kept the model alive without keep_model"
    assert res.metrics["n_steps"] == 6

    kept = run("minimal", SHORT, seed=1, keep_model=True)
    gc.collect()
    assert refs[1]() is kept.model
    del kept
    gc.collect()
    assert refs[1]() is None


def test_package_exports_the_entry_points():
    import sim

    assert sim.run is sim.api.run
    assert sim.compose_config is sim.api.compose_config
    assert sim.RunResult is sim.api.RunResult


def test_dir_lists_the_lazy_entry_points():
    """Tab completion (``sim.<TAB>``) and ``dir(sim)`` show ``run`` and the submodules served on
    first use, and every name listed resolves."""
    import sim

    names = dir(sim)
    for name in [*sim.__all__, "world", "model", "market", "coercion", "policy", "reporting", "experiments"]:
        assert name in names, name
    for name in names:
        getattr(sim, name)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
def test_unknown_scenario_is_a_hydra_error():
    with pytest.raises(MissingConfigException, match="nope"):
        compose_config("nope")
    with pytest.raises(HydraException, match="nope"):
        run("nope")


@pytest.mark.parametrize("override", ["scenario.godos=1", "model.risk_avresion=1"])
def test_misspelt_key_is_a_hydra_error(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("minimal", [override])
    assert key in str(info.value)


def test_wrong_type_is_a_hydra_error():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("minimal", ["seed=abc"])
    assert "seed" in str(info.value) and "abc" in str(info.value)


def test_misspelt_key_in_a_scenario_file_is_a_hydra_error(tmp_path):
    helpers.write_scenario(tmp_path, "typo", extra="godos: 1\n")
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("typo", config_dir=tmp_path)
    assert "godos" in str(info.value) and "scenario" in str(info.value)


def test_wrong_type_in_a_scenario_file_is_a_hydra_error(tmp_path):
    helpers.write_scenario(tmp_path, "wrongtype", lambda d: d["producers"][0].update(capacity="lots"))
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("wrongtype", config_dir=tmp_path)
    assert "capacity" in str(info.value) and "lots" in str(info.value)


@pytest.fixture(scope="module")
def bad_config_dir(tmp_path_factory):
    return helpers.write_bad_scenarios(tmp_path_factory.mktemp("api_bad"))


@pytest.mark.parametrize("name", list(helpers.BAD_SCENARIOS))
def test_invalid_scenario_raises_scenario_error(bad_config_dir, name):
    # These files compose (the schema cannot see the problem); the run refuses them before it starts.
    _, path, value = helpers.BAD_SCENARIOS[name]
    with pytest.raises(ScenarioError) as info:
        run(name, config_dir=bad_config_dir)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith(path + ":"), msg
    assert value in msg


def test_invalid_override_raises_scenario_error():
    with pytest.raises(ScenarioError, match=r"scenario\.producers\[0\]\.capacity: -5\.0"):
        run("minimal", ["scenario.producers.0.capacity=-5"])


def test_baseline_above_capacity_raises_scenario_error():
    # Japan's use served 80% by CHN would exceed China's capacity: the baseline cannot be calibrated.
    with pytest.raises(ScenarioError, match=r"scenario\.producers: baseline demand on CHN for ore"):
        run("minimal", ["scenario.user_sectors.1.use.ore=400000"])


def test_run_result_tables_are_plain_dataframes():
    res = helpers.cached_run()
    assert isinstance(res.timeseries, pd.DataFrame) and isinstance(res.flows, pd.DataFrame)
    assert res.timeseries.index.equals(pd.RangeIndex(len(res.timeseries)))
