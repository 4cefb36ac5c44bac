"""Generated worlds (``scenario=generated``): composition, parameter checks, expansion, determinism.

The command-line run of a small generated world is in ``tests/test_cli.py``
(``test_generated_world_runs_from_the_command_line``) and its bad-input cases in ``BAD_CLI`` there.
"""

from __future__ import annotations

import copy
import functools

import helpers
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.world.config import GeneratedScenarioConfig, ScenarioConfig
from sim.world.generate import GENERATED_MEASURES, expand_config, generated_scenario, generator_seed
from sim.world.scenario import MAX_BASELINE_UTILISATION, ScenarioError, prepare_config, validate_config

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
    ("production_concentration", "nan"),
    ("capacity_headroom", "inf"),
    ("sourcing_dispersion", 1e300),  # every number of a configuration is at most 1e15 in magnitude
    ("months", 100_000),
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


# ------------------------------------------------------------------------------------------------
# Valid by construction: every parameter set the checks accept gives a world that passes the
# checks and the baseline calibration a run applies before its first month (issue 11)
# ------------------------------------------------------------------------------------------------
def _extremes_or(values, ranged):
    """The schema's extreme values or an ordinary draw."""
    return st.one_of(st.sampled_from(values), ranged)


@st.composite
def generator_parameters(draw, max_countries: int, max_goods: int, max_extra_firms: int) -> dict:
    """Generator parameters over the whole range the checks accept (extremes included), a run
    seed and the model's firm sourcing noise (``model.sourcing_concentration``, which must not matter:
    the firms' draws add up to their country's shares).
    """
    countries = draw(st.integers(2, max_countries))
    goods = draw(st.integers(1, max_goods))
    months = draw(st.integers(1, 24))
    measure = draw(st.sampled_from(GENERATED_MEASURES))
    share = st.floats(0.0, 1.0, exclude_min=True) if measure == "export_ban" else st.floats(0.0, 1.0)
    return {
        "scenario.countries": countries,
        "scenario.goods": goods,
        "scenario.firms": countries + draw(st.integers(0, max_extra_firms)),
        "scenario.producers": draw(st.none() | st.integers(goods, 4 * goods + countries)),
        "scenario.months": months,
        "scenario.seed": draw(st.none() | st.integers(0, 2**63)),
        "scenario.production_concentration": draw(_extremes_or([0.0, 1e15], st.floats(0.0, 5.0))),
        "scenario.producer_share_concentration": draw(_extremes_or([1e-300, 1e15], st.floats(0.01, 10.0))),
        "scenario.sourcing_dispersion": draw(_extremes_or([0.0, 1e15], st.floats(0.0, 3.0))),
        "scenario.max_sourcing_origins": draw(st.integers(1, 10)),
        "scenario.max_goods_per_country": draw(st.integers(1, 8)),
        "scenario.capacity_headroom": draw(_extremes_or([1.0], st.floats(1.0, 3.0))),
        "scenario.measure": measure,
        "scenario.measure_share": draw(share),
        "scenario.measure_start_month": draw(st.none() | st.integers(0, months - 1)),
        "scenario.measure_months": draw(st.integers(1, 36)),
        "scenario.n_targets": draw(st.integers(0, 5)),
        "model.sourcing_concentration": draw(_extremes_or([0.05, 200.0, 1e6], st.floats(1.0, 1000.0))),
        "seed": draw(st.integers(0, 2**31)),
    }


@functools.lru_cache(maxsize=1)
def _generated_base():
    return helpers.compose("generated")


def _configured(params: dict):
    """The composed ``generated`` config with ``params`` (dotted keys) set, as overrides would."""
    cfg = copy.deepcopy(_generated_base())
    for key, value in params.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def _check_world_as_a_run_would(params: dict):
    """Build the model the way a run does (:class:`sim.model.model.CoercionModel`: the scenario checks of
    :func:`sim.world.scenario.prepare_config`, then the baseline calibration of
    :func:`sim.world.scenario.build_world`), which raises on any failed check, and check what the
    generator promises on top: the sizes asked for, world capacity at least ``capacity_headroom``
    times world use, every origin's baseline demand within the calibration's limit, and a coercer
    that is the largest producer of the goods its measure covers.
    """
    from sim.model.model import CoercionModel

    model = CoercionModel(_configured(params))
    s, w = model.cfg.scenario, model.world
    gen = s.generated_from
    assert (len(s.countries), len(s.goods)) == (gen.countries, gen.goods)
    assert sum(u.n_firms for u in s.user_sectors) == gen.firms == len(w.firm_country)
    world_use = sum(q for u in s.user_sectors for q in u.use.values())
    world_capacity = sum(p.capacity for p in s.producers)
    assert world_capacity >= gen.capacity_headroom * world_use * (1 - 1e-12)
    # Baseline demand on each origin from the firms' drawn shares, against its capacity.
    G, C = len(w.goods), len(w.countries)
    demand, capacity = np.zeros((G, C)), np.zeros((G, C))
    quantity = w.row_requirement * w.firm_value_added[w.row_firm]
    for k in range(w.slot_origin.shape[1]):
        o = w.slot_origin[:, k]
        np.add.at(demand, (w.row_good[o >= 0], o[o >= 0]), (quantity * w.base_shares[:, k])[o >= 0])
    existing = ~w.is_project
    np.add.at(capacity, (w.producer_good[existing], w.producer_country[existing]), w.capacity0[existing])
    assert np.all(demand <= MAX_BASELINE_UTILISATION * capacity * (1 + 1e-9))
    for m in s.measures:
        for g in m.goods:
            largest = max((p for p in s.producers if p.good == g), key=lambda p: p.capacity)
            assert largest.country == m.imposer == s.coercer
    return model


@settings(max_examples=100)
@given(params=generator_parameters(max_countries=12, max_goods=6, max_extra_firms=60))
def test_every_small_generated_world_passes_the_checks_of_a_run(params):
    """Small worlds (2 to 12 countries, 1 to 6 goods), the generator's whole parameter range (100
    derandomized examples, extremes included; ``make test-slow`` draws 600 more)."""
    _check_world_as_a_run_would(params)


@pytest.mark.slow
@settings(max_examples=600)
@given(params=generator_parameters(max_countries=12, max_goods=6, max_extra_firms=60))
def test_many_small_generated_worlds_pass_the_checks_of_a_run(params):
    """The same over many more small worlds (``make test-slow``)."""
    _check_world_as_a_run_would(params)


@pytest.mark.slow
@settings(max_examples=30)
@given(params=generator_parameters(max_countries=60, max_goods=15, max_extra_firms=1500))
def test_every_medium_generated_world_passes_the_checks_of_a_run(params):
    """Medium worlds (up to 60 countries, 15 goods and some 1500 firms)."""
    _check_world_as_a_run_would(params)


#: Corner cases of the generator's schema, each over several seeds: (id, parameters).
CORNERS = [
    ("smallest", {"scenario.countries": 2, "scenario.goods": 1, "scenario.firms": 2}),
    ("one_origin_no_headroom", {"scenario.max_sourcing_origins": 1, "scenario.capacity_headroom": 1.0}),
    ("no_headroom", {"scenario.capacity_headroom": 1.0, "scenario.max_sourcing_origins": 10}),
    ("one_firm_per_country", {"scenario.countries": 30, "scenario.goods": 2, "scenario.firms": 30}),
    ("uniform_production", {"scenario.production_concentration": 0.0, "scenario.producers": 60}),
    ("production_in_one_country", {"scenario.production_concentration": 1e15}),
    ("one_dominant_producer", {"scenario.producer_share_concentration": 1e-300}),
    ("equal_producers", {"scenario.producer_share_concentration": 1e15}),
    ("random_sourcing", {"scenario.sourcing_dispersion": 1e15}),
    ("noisy_firms", {"model.sourcing_concentration": 0.05, "scenario.firms": 12}),
    ("one_month", {"scenario.months": 1, "scenario.measure_start_month": 0}),
    ("ban_on_every_good", {"scenario.measure": "export_ban", "scenario.measure_share": 1.0, "scenario.n_targets": 20}),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("params", [p for _, p in CORNERS], ids=[name for name, _ in CORNERS])
def test_corner_of_the_parameter_space_gives_a_valid_world(params, seed):
    """Each corner, with ten countries and three goods unless it says otherwise, builds as a run
    builds it; the same parameters and seed give the same world again."""
    params = {"scenario.countries": 10, "scenario.goods": 3, "scenario.firms": 50, "seed": seed, **params}
    model = _check_world_as_a_run_would(params)
    assert _world_data(model.cfg) == _world_data(prepare_config(_configured(params)))


def test_generated_worlds_keep_the_structure_of_critical_goods_trade():
    """The capacity the calibration needs does not flatten the structure: over default worlds of 30
    countries and 8 goods, a good's largest producer holds most of its capacity, a country buys
    most of a good from one origin, the first tenth of the countries (the largest Zipf weights)
    holds most capacity, and world capacity stays near ``capacity_headroom`` times world use."""
    dominant, top_origin, first_tenth, ratio = [], [], [], []
    for seed in range(10):
        s = generated_scenario(30, 8, 600, months=12, seed=seed)
        codes = [c.code for c in s.countries]
        capacity = np.zeros((8, 30))
        for p in s.producers:
            capacity[int(p.good.removeprefix("good_")), codes.index(p.country)] += p.capacity
        dominant.extend(capacity.max(axis=1) / capacity.sum(axis=1))
        top_origin.extend(max(sc.shares.values()) for sc in s.sourcing)
        first_tenth.append(capacity.sum(axis=0)[:3].sum() / capacity.sum())
        ratio.append(capacity.sum() / sum(q for u in s.user_sectors for q in u.use.values()))
    assert np.median(dominant) > 0.45
    assert np.median(top_origin) > 0.5
    assert np.median(first_tenth) > 0.4
    assert 1.35 <= min(ratio) and max(ratio) < 2.0


@pytest.mark.parametrize("measure", ["export_quota", "export_ban", "none"])
def test_small_generated_world_runs(measure):
    """A year of a small world: the run finishes with finite, non-negative quantities and positive
    prices, and no origin produces more than its capacity."""
    from sim.api import run_config

    params = {"scenario.countries": 10, "scenario.goods": 3, "scenario.firms": 60, "scenario.months": 12}
    params |= {"scenario.measure": measure, "scenario.measure_start_month": 2, "seed": 7}
    result = run_config(_configured(params))
    ts = result.timeseries
    assert len(ts) > 0 and np.isfinite(ts["value"]).all()
    quantities = ts[ts["variable"].isin(["demand", "delivered", "production", "capacity", "exports", "imports"])]
    assert (quantities["value"] >= -1e-9).all()
    assert (ts.loc[ts["variable"].str.startswith("price_"), "value"] > 0).all()
    wide = ts[ts["variable"].isin(["production", "capacity"])].pivot_table(
        index=["step", "country", "good"], columns="variable", values="value"
    )
    assert (wide["production"] <= wide["capacity"] * (1 + 1e-6) + 1e-9).all()
    assert result.metrics is not None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_large_generated_world_builds_and_runs(seed):
    """The README's large world (200 countries, 50 goods, 20000 firms; seed 3 failed its baseline
    calibration before issue 11) passes the checks of a run, calibrates and runs three months."""
    from sim.api import run_config

    params = {"scenario.countries": 200, "scenario.goods": 50, "scenario.firms": 20_000, "scenario.months": 3}
    _check_world_as_a_run_would({**params, "seed": seed})
    result = run_config(_configured({**params, "seed": seed}))
    assert result.timeseries["step"].max() == 2 and np.isfinite(result.timeseries["value"]).all()
