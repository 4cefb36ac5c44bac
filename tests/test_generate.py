"""Generated worlds (``scenario=generated``): composition, parameter checks, expansion, determinism.

The command-line run of a small generated world is in ``tests/test_cli.py``
(``test_generated_world_runs_from_the_command_line``) and its bad-input cases in ``BAD_CLI`` there.
"""

from __future__ import annotations

import helpers
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.config import GeneratedScenarioConfig, ScenarioConfig
from sim.generate import expand_config, generated_scenario, generator_seed
from sim.scenario import ScenarioError, build_world, prepare_config, validate_config

SMALL = ["scenario.countries=8", "scenario.goods=3", "scenario.firms=40", "scenario.months=12"]


def _compose(*overrides: str):
    return helpers.compose("generated", [*SMALL, *overrides])


def _world_data(cfg) -> dict:
    """The expanded scenario as plain data, without the record of its parameters."""
    data = OmegaConf.to_container(cfg.scenario)
    data.pop("generated_from")
    return data


# ------------------------------------------------------------------------------------------------
# Composition: the generator's schema
# ------------------------------------------------------------------------------------------------
def test_composes_with_the_generator_schema():
    cfg = helpers.compose(
        "generated", ["scenario.countries=200", "scenario.goods=50", "scenario.firms=20000", "seed=3"]
    )
    assert OmegaConf.get_type(cfg.scenario) is GeneratedScenarioConfig
    assert (cfg.scenario.countries, cfg.scenario.goods, cfg.scenario.firms, cfg.seed) == (200, 50, 20000, 3)


def test_generated_yaml_documents_every_parameter():
    text = (helpers.SCENARIO_DIR / "generated.yaml").read_text()
    for name in GeneratedScenarioConfig.__dataclass_fields__:
        assert f"\n{name}:" in text, f"generated.yaml does not set {name}"


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("scenario.contries=3", ["scenario.contries"]),
        ("scenario.countries=many", ["scenario.countries", "many"]),
        ("scenario.measure_share=half", ["scenario.measure_share", "half"]),
    ],
)
def test_misspelt_or_mistyped_parameter_fails_to_compose(override, needles):
    with pytest.raises(ConfigCompositionException) as info:
        _compose(override)
    for needle in needles:
        assert needle in str(info.value)


def test_misspelt_key_in_a_users_generated_file_fails_to_compose(tmp_path):
    # A user's own generated world without the defaults list is still checked against the schema.
    path = tmp_path / "scenario" / "mygen.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("kind: generated\nname: mygen\ncountries: 5\ngods: 2\n")
    with pytest.raises(ConfigCompositionException) as info:
        helpers.compose("mygen", config_dir=tmp_path)
    assert "scenario.gods" in str(info.value)
    path.write_text("kind: generated\nname: mygen\ncountries: 5\ngoods: 2\nfirms: 20\nmonths: 6\n")
    cfg = prepare_config(helpers.compose("mygen", config_dir=tmp_path))
    assert len(cfg.scenario.countries) == 5 and cfg.scenario.name == "mygen"


def test_unknown_kind_fails_to_compose(tmp_path):
    # A user's file without the schema in its defaults list: checked right after composition.
    helpers.write_scenario(tmp_path, "kinded", lambda d: (d.pop("defaults"), d.update(kind="generatd")))
    with pytest.raises(ConfigCompositionException) as info:
        helpers.compose("kinded", config_dir=tmp_path)
    assert "scenario.kind" in str(info.value) and "generatd" in str(info.value)


# ------------------------------------------------------------------------------------------------
# Bad values: one ScenarioError naming the parameter, before any run
# ------------------------------------------------------------------------------------------------
BAD_VALUES = [
    ("countries", 1),
    ("countries", 26**3 + 1),
    ("goods", 0),
    ("firms", 7),
    ("producers", 2),
    ("months", 0),
    ("start", "2020-13"),
    ("end", "2019-12"),
    ("seed", -1),
    ("production_concentration", -0.5),
    ("producer_share_concentration", 0),
    ("sourcing_dispersion", -1),
    ("max_sourcing_origins", 0),
    ("max_goods_per_country", 0),
    ("capacity_headroom", 0.9),
    ("measure", "embargo"),
    ("measure_share", 1.5),
    ("measure_start_month", 12),
    ("measure_months", 0),
    ("n_targets", -1),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES, ids=[f"{k}={v}" for k, v in BAD_VALUES])
def test_bad_parameter_is_refused_before_the_run(key, value):
    cfg = _compose(f"scenario.{key}={value}")
    with pytest.raises(ScenarioError) as info:
        from sim.api import run

        run(cfg)
    msg = str(info.value)
    assert msg.startswith(f"scenario.{key}"), msg
    assert repr(value) in msg or str(value) in msg, msg
    assert "allowed" in msg or "use YYYY-MM" in msg, msg
    with pytest.raises(ScenarioError):
        validate_config(cfg)


def test_ban_needs_a_positive_intensity():
    with pytest.raises(ScenarioError, match=r"^scenario\.measure_share: 0\.0 .*export ban"):
        prepare_config(_compose("scenario.measure=export_ban", "scenario.measure_share=0.0"))


# ------------------------------------------------------------------------------------------------
# Expansion and determinism
# ------------------------------------------------------------------------------------------------
def test_expansion_is_a_valid_scenario_recording_its_parameters():
    cfg = prepare_config(_compose("seed=3"))
    assert OmegaConf.get_type(cfg.scenario) is ScenarioConfig
    gen = cfg.scenario.generated_from
    assert (gen.countries, gen.goods, gen.firms, gen.months) == (8, 3, 40, 12)
    assert gen.seed == generator_seed(OmegaConf.create({"seed": None}), 3)
    assert len(cfg.scenario.countries) == 8 and len(cfg.scenario.goods) == 3
    assert sum(u.n_firms for u in cfg.scenario.user_sectors) == 40
    assert (cfg.scenario.start, cfg.scenario.end) == ("2020-01", "2020-12")
    # The expansion equals the generator called with the recorded parameters.
    direct = generated_scenario(8, 3, 40, months=12, seed=int(gen.seed))
    direct.generated_from = OmegaConf.to_container(gen)
    assert OmegaConf.to_container(direct) == OmegaConf.to_container(cfg.scenario)


def test_same_seed_gives_the_same_world_and_run():
    a, b = prepare_config(_compose("seed=5")), prepare_config(_compose("seed=5"))
    assert _world_data(a) == _world_data(b)
    from sim.api import run

    ra, rb = run(_compose("seed=5")), run(_compose("seed=5"))
    assert ra.timeseries.equals(rb.timeseries)
    assert ra.flows.equals(rb.flows)


def test_run_seed_changes_the_world_unless_the_structure_seed_is_set():
    assert _world_data(prepare_config(_compose("seed=1"))) != _world_data(prepare_config(_compose("seed=2")))
    fixed1 = prepare_config(_compose("seed=1", "scenario.seed=11"))
    fixed2 = prepare_config(_compose("seed=2", "scenario.seed=11"))
    assert _world_data(fixed1) == _world_data(fixed2)
    assert fixed1.scenario.generated_from.seed == 11


def test_end_replaces_months():
    cfg = prepare_config(_compose("scenario.end=2021-06"))
    assert cfg.scenario.end == "2021-06" and cfg.scenario.generated_from.months == 18


def test_expand_leaves_a_written_scenario_alone():
    cfg = helpers.minimal_cfg()
    assert expand_config(cfg) is cfg


@pytest.mark.parametrize("measure", ["export_quota", "export_ban", "none"])
def test_measure_pattern(measure):
    cfg = prepare_config(
        _compose(f"scenario.measure={measure}", "scenario.measure_start_month=2", "scenario.measure_months=6")
    )
    s = cfg.scenario
    if measure == "none":
        assert len(s.measures) == 0
        return
    assert len(s.measures) == 1
    m = s.measures[0]
    assert (m.type, m.imposer, m.start, m.end) == (measure, s.coercer, "2020-03-01", "2020-08")
    if measure == "export_ban":
        assert list(m.targets) == list(s.targets) and m.intensity == 0.5


@settings(max_examples=15)
@given(
    countries=st.integers(2, 40),
    goods=st.integers(1, 6),
    extra_firms=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
    concentration=st.floats(0.0, 3.0),
    share_concentration=st.floats(0.05, 5.0),
    max_origins=st.integers(1, 10),
)
def test_any_generated_world_is_valid_and_calibrates(
    countries, goods, extra_firms, seed, concentration, share_concentration, max_origins
):
    """Every parameter set the checks accept gives a scenario that validates and whose baseline
    calibrates (every origin below the baseline utilisation limit); firms and countries add up."""
    cfg = _compose(
        f"scenario.countries={countries}",
        f"scenario.goods={goods}",
        f"scenario.firms={countries + extra_firms}",
        f"scenario.seed={seed}",
        f"scenario.production_concentration={concentration}",
        f"scenario.producer_share_concentration={share_concentration}",
        f"scenario.max_sourcing_origins={max_origins}",
    )
    cfg = prepare_config(cfg)
    s = cfg.scenario
    assert len(s.countries) == countries and len(s.goods) == goods
    assert sum(u.n_firms for u in s.user_sectors) == countries + extra_firms
    world = build_world(cfg, np.random.default_rng(0))
    assert len(world.countries) == countries
    assert np.all(world.capacity0 >= 0)
