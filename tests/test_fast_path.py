"""The fast in-memory path (sim.world.plain, CaseRunner composing once): the same metrics as a full run
of the command-line path for the same configuration and seed, a changed number really changing the
run (no stale cache), interpolations following the numbers they refer to, and bad values failing as
they do on the reference path."""

from __future__ import annotations

import math

import pytest
from omegaconf.errors import ValidationError

from sim.api import compose_config, run_config
from sim.experiments import runner as rn
from sim.world.plain import PlainConfig, split_key, with_values
from sim.world.scenario import ScenarioError

#: Metrics that measure the machine, not the model.
TIMINGS = {"clearing_seconds", "wall_seconds", "cpu_seconds"}
FIXED = ["output.figures=false", "output.flows=false", "output.progress=never"]


def _assert_same_metrics(fast: dict, reference: dict, rtol: float = 1e-9) -> None:
    """Every metric equal to ``rtol`` (the two paths do the same arithmetic; only the configuration
    they read differs), NaNs where the other has NaN."""

    def walk(a, b, path):
        if isinstance(a, dict):
            assert set(a) == set(b), f"{path}: keys differ: {sorted(set(a) ^ set(b))}"
            for k in a:
                if k not in TIMINGS:
                    walk(a[k], b[k], f"{path}.{k}" if path else k)
        elif isinstance(a, float) and isinstance(b, float):
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12), (path, a, b)
        else:
            assert a == b, (path, a, b)

    walk(fast, reference, "")


@pytest.mark.parametrize(
    ("case", "values", "seed"),
    [
        ("rare_earth_2010", {"model.precaution": 2.5, "scenario.goods.0.armington_elasticity": 3.1}, 4),
        ("minimal", {"model.risk_aversion": 1.5}, 2),
    ],
)
def test_fast_path_equals_the_command_line_run(case, values, seed):
    fast = rn.CaseRunner(case).run(values, seed=seed)
    cfg = compose_config(case, [*FIXED, *(f"{k}={v}" for k, v in values.items()), f"seed={seed}"])
    reference = run_config(cfg).metrics
    _assert_same_metrics(fast, reference)


def test_a_changed_number_changes_the_run_and_leaves_the_base_as_it_was():
    runner = rn.CaseRunner("minimal")
    base = runner.run(seed=1)
    slow = runner.run({"model.sourcing_adjustment_rate": 0.001, "model.precaution": 0.0}, seed=1)
    assert slow["output_loss.JPN"] != pytest.approx(base["output_loss.JPN"], rel=1e-6)
    _assert_same_metrics(runner.run(seed=1), base, rtol=1e-12)
    cfg = runner.config({"model.precaution": 0.5}, seed=3)
    assert isinstance(cfg, PlainConfig) and cfg.model.precaution == 0.5 and cfg.seed == 3
    assert runner.config(seed=3).model.precaution != 0.5


def test_fast_and_reference_configs_hold_the_same_values():
    values = {"model.precaution": 1, "scenario.goods.0.armington_elasticity": 2.5}
    fast = rn.CaseRunner("minimal").config(values, seed=5)
    reference = rn.CaseRunner("minimal", fast=False).config(values, seed=5)
    from omegaconf import OmegaConf

    assert dict(fast) == OmegaConf.to_container(reference, resolve=True)
    assert isinstance(fast.model.precaution, float)  # converted as an override is: an int into a float field


def test_an_interpolated_value_follows_the_number_it_refers_to():
    runner = rn.CaseRunner("australia_2020")
    base = runner.config(seed=1)
    goods = [g.id for g in base.scenario.goods]
    raw = rn._plain_base("australia_2020", (), (), None).raw
    refs = [
        i
        for i, g in enumerate(raw["scenario"]["goods"])
        if g["armington_elasticity"] == "${parameters.armington.cereals}"
    ]
    assert refs, goods
    cfg = runner.config({"parameters.armington.cereals": 7.25}, seed=1)
    assert all(cfg.scenario.goods[i].armington_elasticity == 7.25 for i in refs)
    assert (
        runner.config(seed=1).scenario.goods[refs[0]].armington_elasticity
        == base.scenario.goods[refs[0]].armington_elasticity
    )


def test_only_interpolations_that_read_a_changed_value_are_resolved_again():
    """What each interpolation reads is found once (through chains of interpolations; unknown for a
    resolver or a relative reference, which are then always resolved again), so a run re-resolves only
    the values a changed key can move: the key itself, a key above it (a whole block) or below it."""
    raw = {
        "a": {"x": 1.0, "y": 2.0},
        "b": "${a.x}",
        "c": "${b}",
        "d": "${a.y} and ${a.x}",
        "e": "${oc.env:HOME}",
        "f": {"g": "${.h}", "h": 3.0},
        "i": "${a}",
        "k": {"z": "${a.y}"},
        "m": "${k}",
        "n": {"y": {"w": "${a.x}"}},
        "o": "${n.y.w}",
    }
    keys = ("b", "c", "d", "e", "f.g", "i", "k.z", "m", "n.y.w", "o")
    reads = rn._interpolation_reads(raw, keys)
    assert dict(zip(keys, reads, strict=True)) == {
        "b": (("a", "x"),),
        "c": (("a", "x"), ("b",)),
        "d": (("a", "x"), ("a", "y")),
        "e": None,
        "f.g": None,
        "i": (("a",),),
        "k.z": (("a", "y"),),
        "m": (("a", "y"), ("k",)),  # reads a block that holds an interpolation
        "n.y.w": (("a", "x"),),
        "o": (("a", "x"), ("n", "y", "w")),
    }
    base = rn._PlainBase(plain=None, raw=raw, interpolated=keys, scratch=None, reads=reads)
    assert base.stale(["a.x"]) == ["b", "c", "d", "e", "f.g", "i", "n.y.w", "o"]
    assert base.stale(["a.y"]) == ["d", "e", "f.g", "i", "k.z", "m"]
    assert base.stale(["a"]) == ["b", "c", "d", "e", "f.g", "i", "k.z", "m", "n.y.w", "o"]
    assert base.stale(["model.precaution"]) == ["e", "f.g"]
    assert base.stale([]) == ["e", "f.g"]
    # reading into an interpolated block: ``p`` reads inside ``q``, whose value is an interpolation
    raw2 = {"a": {"x": 1.0}, "q": "${a}", "p": "${q.x}"}
    reads2 = rn._interpolation_reads(raw2, ("q", "p"))
    assert reads2 == ((("a",),), (("a",), ("q", "x")))


@pytest.mark.parametrize(
    ("key", "one", "other"),
    [("parameters.armington.critical_minerals", 3.4, 2.6), ("parameters.supply_elasticity.coproduct", 0.45, 0.2)],
)
def test_skipping_unaffected_interpolations_keeps_the_reference_paths_values(key, one, other):
    from omegaconf import OmegaConf

    for values in ({key: one}, {key: other, "model.precaution": 1.5}, {"model.precaution": 1.5}):
        fast = rn.CaseRunner("rare_earth_2010").config(values, seed=2)
        reference = rn.CaseRunner("rare_earth_2010", fast=False).config(values, seed=2)
        assert dict(fast) == OmegaConf.to_container(reference, resolve=True)


def test_a_number_omegaconf_keeps_as_it_is_is_taken_as_it_is_the_next_time(monkeypatch):
    """A key where OmegaConf stored a float as it was takes later floats without the scratch (no write,
    no restore); a value of another type still goes through OmegaConf, and a key an interpolation
    reads always does, so that its readers follow it."""
    from omegaconf import OmegaConf

    runner = rn.CaseRunner("minimal")
    base = rn._plain_base("minimal", (), (), None)
    runner.config({"model.precaution": 0.75}, seed=1)
    assert base.kept.get("model.precaution") is float
    written = []
    update = OmegaConf.update
    monkeypatch.setattr(OmegaConf, "update", lambda cfg, key, *a, **k: (written.append(key), update(cfg, key, *a, **k)))
    assert runner.config({"model.precaution": 0.5}, seed=1).model.precaution == 0.5
    assert "model.precaution" not in written
    converted = runner.config({"model.precaution": 1}, seed=1).model.precaution
    assert isinstance(converted, float) and converted == 1.0 and "model.precaution" in written
    with pytest.raises(ValidationError):
        runner.config({"model.precaution": "plenty"}, seed=1)
    # a value of the same run that interpolates the kept key reads the run's number, not the base's
    linked = {"model.precaution": 0.3, "model.substitution_rate": "${model.precaution}"}
    fast = runner.config(linked, seed=1)
    assert fast.model.substitution_rate == 0.3
    assert (
        fast.model.substitution_rate
        == rn.CaseRunner("minimal", fast=False).config(linked, seed=1).model.substitution_rate
    )
    case = rn.CaseRunner("rare_earth_2010")
    key = "parameters.armington.critical_minerals"
    for value in (3.4, 2.6):
        cfg = case.config({key: value}, seed=1)
        assert cfg.scenario.goods[0].armington_elasticity == value
    assert key not in rn._plain_base("rare_earth_2010", (), (), None).kept


@pytest.mark.parametrize("fast", [True, False])
def test_bad_values_fail_as_on_the_reference_path(fast):
    runner = rn.CaseRunner("minimal", fast=fast)
    with pytest.raises(ScenarioError, match=r"model\.precaution"):
        runner.config({"model.precaution": -1.0}, seed=1)
    with pytest.raises(ValidationError):
        runner.config({"model.precaution": "plenty"}, seed=1)
    with pytest.raises(ScenarioError, match=r"model\.risk_aversion"):
        runner.config({"model.risk_aversion": math.inf}, seed=1)
    # A failed run leaves nothing behind: the next configuration is the case's own.
    assert (
        runner.config(seed=1).model.precaution == rn.CaseRunner("minimal", fast=False).config(seed=1).model.precaution
    )


def test_run_many_equals_runs_one_by_one():
    runner = rn.CaseRunner("minimal")
    points = [{"model.precaution": 1.0}, None, {"model.precaution": 3.0}]
    many = runner.run_many(points, [1, 2, 3])
    for metrics, point, seed in zip(many, points, [1, 2, 3], strict=True):
        _assert_same_metrics(metrics, runner.run(point, seed=seed), rtol=1e-12)
    with pytest.raises(rn.ExplorationError, match="seeds"):
        runner.run_many(points, [1, 2])


def test_plain_config_is_read_only_and_copies_only_the_changed_path():
    base = PlainConfig({"a": PlainConfig({"b": 1.0, "c": [PlainConfig({"d": 2.0})]}), "e": PlainConfig({"f": 3})})
    new = with_values(base, {"a.c.0.d": 5.0})
    assert new.a.c[0].d == 5.0 and base.a.c[0].d == 2.0
    assert new.e is base.e  # untouched nodes are shared
    assert split_key("scenario.goods[1].x") == ["scenario", "goods", 1, "x"] == split_key("scenario.goods.1.x")
    with pytest.raises(TypeError):
        new.a.b = 2.0
    with pytest.raises(TypeError):
        new["e"] = 1
    with pytest.raises(AttributeError):
        _ = new.a.nope


@pytest.mark.slow
def test_run_many_in_worker_processes_equals_one_process():
    """Worker processes each run a contiguous chunk: every result lands in its point's place, and a
    failing run raises its error, whichever chunk it is in."""
    runner = rn.CaseRunner("minimal")
    points = [{"model.precaution": 0.5 + 0.25 * i} for i in range(11)]
    seeds = list(range(1, 12))
    alone = runner.run_many(points, seeds)
    together = runner.run_many(points, seeds, n_jobs=3)
    for a, b in zip(together, alone, strict=True):
        _assert_same_metrics(a, b, rtol=1e-12)
    assert len({m["peak_export_price_ratio.ore"] for m in alone}) > 1  # the points differ
    bad = [{"model.precaution": 1.0}] * 10 + [{"model.precaution": -1.0}]  # in the last chunk
    with pytest.raises(ScenarioError, match=r"model\.precaution"):
        runner.run_many(bad, seeds, n_jobs=2)
    with pytest.raises(ScenarioError, match=r"model\.precaution"):  # in the first chunk (not the first
        runner.run_many([bad[0], bad[-1], *bad[1:-1]], seeds, n_jobs=2)  # point, which a forking parent checks)


def test_checks_skipped_for_shared_parts_still_catch_every_bad_value():
    """The fast path checks again only what a run changed (the parts of the configuration it shares
    with an earlier run that passed are not walked again, and selector matches in shared lists are
    reused): a bad value after many good runs still fails with the reference path's message."""
    fast, reference = rn.CaseRunner("rare_earth_2010"), rn.CaseRunner("rare_earth_2010", fast=False)
    for precaution in (1.5, 2.0):  # runs that fill the caches, the scenario shared
        fast.config({"model.precaution": precaution}, seed=1)
    fast.config({"scenario.goods.0.armington_elasticity": 3.5}, seed=1)
    bad_values = (
        {"scenario.goods.0.armington_elasticity": 6.0},  # outside its named assumption's range
        {"scenario.goods.1.demand_elasticity": math.nan},  # deep in a changed list
        {"scenario.goods.0.armington_elasticity": 1.0},  # the scenario's schema (must exceed 1)
        {"scenario.measures.0.start": "2031-01"},  # the scenario's relations (a date within the run)
        {"model.precaution": math.inf},
        {"model.precaution": -1.0},
    )
    for values in bad_values:
        with pytest.raises(ScenarioError) as got:
            fast.config(values, seed=1)
        with pytest.raises(ScenarioError) as want:
            reference.config(values, seed=1)
        assert str(got.value) == str(want.value)
    fast.config({"model.precaution": 1.5}, seed=1)  # and the good ones still pass


def test_a_scenario_shared_by_runs_is_validated_once_and_a_changed_one_again(monkeypatch):
    """Runs derived from one base that change model settings only share its scenario (read-only plain
    data): the schema does not validate it again (sim.world.schema.validate_run, ``read_only``); a run
    that changes a scenario value has a new scenario, validated in full."""
    from sim.world import schema

    runner = rn.CaseRunner("rare_earth_2010")
    runner.config({"model.precaution": 1.5}, seed=1)
    calls = []
    real = schema._check_scenario
    monkeypatch.setattr(schema, "_check_scenario", lambda s: calls.append(s) or real(s))
    for precaution in (1.7, 2.2, 2.9):
        runner.config({"model.precaution": precaution}, seed=4)
    assert calls == []
    runner.config({"scenario.goods.0.armington_elasticity": 3.5}, seed=4)
    assert len(calls) == 1
    with pytest.raises(ScenarioError, match=r"model\.precaution"):
        runner.config({"model.precaution": -1.0}, seed=4)  # the rest of the run is still checked


def test_a_changed_scenario_is_checked_in_its_changed_sections_and_in_all_its_relations(monkeypatch):
    """A run that changes one scenario value gets a new scenario whose other sections are shared with its
    base: the schema takes their validated models from an earlier run (sim.world.schema, reused
    sections), checks the changed section field by field and the scenario's relations in full, and
    fails as the reference path fails."""
    from sim.world import scenario as sc

    runner = rn.CaseRunner("rare_earth_2010")
    seen = []
    real = sc.validate_run
    monkeypatch.setattr(sc, "validate_run", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    runner.config({"scenario.goods.0.armington_elasticity": 3.0}, seed=1)
    runner.config({"scenario.goods.0.armington_elasticity": 3.5}, seed=2)
    first, second = (run.scenario for run in seen[-2:])
    assert second.goods[0].armington_elasticity == 3.5 and first.goods[0].armington_elasticity == 3.0
    assert second.goods[0] is not first.goods[0]  # the changed section: validated anew
    for section in ("countries", "producers", "measures", "user_sectors"):
        assert getattr(second, section), section
        assert all(a is b for a, b in zip(getattr(second, section), getattr(first, section), strict=True)), section

    # the changed section's own checks, and the relations that tie it to a reused one
    reference = rn.CaseRunner("rare_earth_2010", fast=False)
    for bad, where in (
        ({"scenario.goods.0.armington_elasticity": 0.5}, r"scenario\.goods\[0\]\.armington_elasticity"),
        ({"scenario.goods.0.reference_price": 1e-6}, r"scenario\.producers\[\d+\]\.unit_cost"),
    ):
        with pytest.raises(ScenarioError, match=where) as fast:
            runner.config(bad, seed=3)
        with pytest.raises(ScenarioError) as slow:
            reference.config(bad, seed=3)
        assert str(fast.value) == str(slow.value)


def test_a_run_leaves_its_configuration_as_it_was():
    """Runs derived from one base share its sections, and validation reuses what passed by identity
    (sim.world.schema.validate_run): building and running the model must not write to any of them,
    the lists included (a PlainConfig refuses writes to its mappings only)."""
    import pickle
    import warnings

    from sim.model.model import CoercionModel

    runner = rn.CaseRunner("rare_earth_2010", policies=("stockpile", "diversification", "collective_response"))
    cfg = runner.config({"scenario.goods.0.armington_elasticity": 3.0}, seed=1)
    before = pickle.dumps(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the coalition's inactive parts are reported, as in any run
        CoercionModel(cfg).run()
    assert pickle.dumps(cfg) == before


def test_the_runner_starts_without_the_ema_workbench_and_is_the_one_exploration_offers():
    """A worker that only runs the model (``run_many``'s spawned workers, ``make validate``'s pool)
    imports sim.experiments.runner, which must not pull in the EMA Workbench and its analysis stack
    (statsmodels, scipy.stats: most of the 3.2 s its import took); sim.experiments.exploration
    offers the same objects, not copies."""
    import subprocess
    import sys

    code = (  # what a worker imports to configure a run and build the model (a run would compile kernels)
        "import sys; from sim.experiments.runner import CaseRunner, run; "
        "import sim.model.model, sim.reporting.metrics; CaseRunner('minimal').config(seed=1); "
        "heavy = sorted(m for m in ('ema_workbench', 'statsmodels', 'scipy.stats') if m in sys.modules); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"sim.experiments.runner imported {out.strip()}"
    from sim.experiments import exploration as ex

    assert ex.CaseRunner is rn.CaseRunner and ex.ExplorationError is rn.ExplorationError and ex.run is rn.run
    assert ex.outcomes_in_memory is rn.outcomes_in_memory
