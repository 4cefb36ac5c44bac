"""``sim.world.scenario.validate_config``: every rule, each with a message naming the field and the value.

Each case alters a fresh copy of the composed ``minimal`` config and expects one
:class:`~sim.world.scenario.ScenarioError` whose message starts with the field's path and contains the bad
value as ``repr`` prints it.
"""

from __future__ import annotations

import copy
import dataclasses

import helpers
import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import sim
from sim.api import compose_config
from sim.world.config import MeasureConfig, RequirementChangeConfig, ScenarioConfig
from sim.world.scenario import ScenarioError, validate_config


def _node_and_key(cfg, dotted: str):
    *parents, last = dotted.split(".")
    node = cfg
    for k in parents:
        node = node[int(k)] if k.isdigit() else node[k]
    return node, (int(last) if last.isdigit() else last)


def setv(path: str, value):
    """Mutation: set ``path`` (dotted, list indices as numbers) to ``value``."""

    def mutate(cfg):
        node, key = _node_and_key(cfg, path)
        node[key] = value

    return mutate


def setmany(*pairs):
    """Mutation: several :func:`setv` in order."""

    def mutate(cfg):
        for path, value in pairs:
            setv(path, value)(cfg)

    return mutate


def _typed(schema, values: dict):
    return OmegaConf.merge(OmegaConf.structured(schema), values)


def append_copy(list_path: str, item_path: str, **changes):
    """Mutation: append a copy of the item at ``item_path`` (with ``changes``) to the list."""

    def mutate(cfg):
        node, key = _node_and_key(cfg, list_path)
        item = copy.deepcopy(OmegaConf.select(cfg, item_path))
        for k, v in changes.items():
            item[k] = v
        node[key].append(item)

    return mutate


def add_requirement_change(**changes):
    """Mutation: add a (valid unless ``changes`` break it) requirement change."""
    base = {
        "country": "JPN",
        "sector": "industry",
        "good": "ore",
        "change": -0.1,
        "start": "2021-01",
        "ramp_months": 12,
    }

    def mutate(cfg):
        cfg.scenario.requirement_changes.append(_typed(RequirementChangeConfig, {**base, **changes}))

    return mutate


def add_measure(**changes):
    """Mutation: add a second measure (an export ban on JPN in 2021) with ``changes``."""
    base = {
        "type": "export_ban",
        "imposer": "CHN",
        "goods": ["ore"],
        "targets": ["JPN"],
        "start": "2021-01-01",
        "end": "2021-06-30",
    }

    def mutate(cfg):
        cfg.scenario.measures.append(_typed(MeasureConfig, {**base, **changes}))

    return mutate


P0, PJ0, U0, SC0, M0 = (
    "scenario.producers.0",
    "scenario.projects.0",
    "scenario.user_sectors.0",
    "scenario.sourcing.0",
    "scenario.measures.0",
)

#: (id, mutation, field path in the message, bad value as printed)
CASES = [
    # ---- scenario period ----
    ("start_not_a_date", setv("scenario.start", "2020-13"), "scenario.start", "'2020-13'"),
    ("end_not_a_date", setv("scenario.end", "2022/12"), "scenario.end", "'2022/12'"),
    ("end_before_start", setv("scenario.end", "2019-12"), "scenario.end", "'2019-12'"),
    # ---- countries ----
    ("no_countries", setv("scenario.countries", []), "scenario.countries", "[]"),
    ("country_code_lower_case", setv("scenario.countries.1.code", "jpn"), "scenario.countries[1].code", "'jpn'"),
    ("country_code_too_long", setv("scenario.countries.2.code", "AUST"), "scenario.countries[2].code", "'AUST'"),
    ("country_twice", setv("scenario.countries.2.code", "JPN"), "scenario.countries[1].code", "'JPN'"),
    # ---- goods ----
    ("no_goods", setv("scenario.goods", []), "scenario.goods", "[]"),
    ("good_twice", append_copy("scenario.goods", "scenario.goods.0"), "scenario.goods[0].id", "'ore'"),
    ("good_id_format", setv("scenario.goods.0.id", "Ore"), "scenario.goods[0].id", "'Ore'"),
    ("reference_price", setv("scenario.goods.0.reference_price", 0.0), "scenario.goods[0].reference_price", "0.0"),
    (
        "demand_elasticity",
        setv("scenario.goods.0.demand_elasticity", -0.1),
        "scenario.goods[0].demand_elasticity",
        "-0.1",
    ),
    (
        "armington_elasticity",
        setv("scenario.goods.0.armington_elasticity", 1.0),
        "scenario.goods[0].armington_elasticity",
        "1.0",
    ),
    (
        "good_supply_elasticity",
        setv("scenario.goods.0.supply_elasticity", 0.0),
        "scenario.goods[0].supply_elasticity",
        "0.0",
    ),
    ("price_cap", setv("scenario.goods.0.price_cap", 1.0), "scenario.goods[0].price_cap", "1.0"),
    ("price_floor_one", setv("scenario.goods.0.price_floor", 1.0), "scenario.goods[0].price_floor", "1.0"),
    ("price_floor_zero", setv("scenario.goods.0.price_floor", 0.0), "scenario.goods[0].price_floor", "0.0"),
    (
        "transport_cost_share",
        setv("scenario.goods.0.transport_cost_share", -0.01),
        "scenario.goods[0].transport_cost_share",
        "-0.01",
    ),
    # ---- coercer and targets ----
    ("unknown_coercer", setv("scenario.coercer", "XYZ"), "scenario.coercer", "'XYZ'"),
    ("unknown_target", setv("scenario.targets", ["KOR"]), "scenario.targets[0]", "'KOR'"),
    # ---- producers ----
    ("producer_country", setv("scenario.producers.1.country", "NZL"), "scenario.producers[1].country", "'NZL'"),
    ("producer_good", setv(f"{P0}.good", "gold"), "scenario.producers[0].good", "'gold'"),
    ("producer_capacity", setv(f"{P0}.capacity", -1.0), "scenario.producers[0].capacity", "-1.0"),
    ("producer_cost_at_reference", setv(f"{P0}.unit_cost", 10000.0), "scenario.producers[0].unit_cost", "10000.0"),
    ("producer_cost_negative", setv(f"{P0}.unit_cost", -1.0), "scenario.producers[0].unit_cost", "-1.0"),
    (
        "producer_supply_elasticity",
        setv(f"{P0}.supply_elasticity", 0.0),
        "scenario.producers[0].supply_elasticity",
        "0.0",
    ),
    # ---- projects ----
    ("project_twice", append_copy("scenario.projects", PJ0), "scenario.projects[0].name", "'AUS expansion'"),
    ("project_country", setv(f"{PJ0}.country", "NZL"), "scenario.projects[0].country", "'NZL'"),
    ("project_good", setv(f"{PJ0}.good", "gold"), "scenario.projects[0].good", "'gold'"),
    ("project_capacity", setv(f"{PJ0}.capacity", -1.0), "scenario.projects[0].capacity", "-1.0"),
    ("project_unit_cost", setv(f"{PJ0}.unit_cost", -1.0), "scenario.projects[0].unit_cost", "-1.0"),
    ("project_build_lag", setv(f"{PJ0}.build_lag_months", -1), "scenario.projects[0].build_lag_months", "-1"),
    ("project_ramp_up", setv(f"{PJ0}.ramp_up_months", -1), "scenario.projects[0].ramp_up_months", "-1"),
    ("project_capex", setv(f"{PJ0}.capex", -1.0), "scenario.projects[0].capex", "-1.0"),
    ("project_hurdle", setv(f"{PJ0}.hurdle", 0.0), "scenario.projects[0].hurdle", "0.0"),
    (
        "project_committed_after_end",
        setv(f"{PJ0}.committed_start", "2030-01"),
        "scenario.projects[0].committed_start",
        "'2030-01'",
    ),
    (
        "project_committed_not_a_date",
        setv(f"{PJ0}.committed_start", "soon"),
        "scenario.projects[0].committed_start",
        "'soon'",
    ),
    (
        "project_earliest_after_end",
        setv(f"{PJ0}.earliest_start", "2023-01-01"),
        "scenario.projects[0].earliest_start",
        "'2023-01-01'",
    ),
    ("offtake_country", setv(f"{PJ0}.offtake", {"KOR": 0.5}), "scenario.projects[0].offtake", "'KOR'"),
    ("offtake_share", setv(f"{PJ0}.offtake", {"JPN": 1.5}), "scenario.projects[0].offtake.JPN", "1.5"),
    (
        "offtake_total",
        setv(f"{PJ0}.offtake", {"JPN": 0.6, "CHN": 0.6}),
        "scenario.projects[0].offtake",
        "{'JPN': 0.6, 'CHN': 0.6}",
    ),
    # ---- user sectors ----
    ("sector_country", setv(f"{U0}.country", "NZL"), "scenario.user_sectors[0].country", "'NZL'"),
    ("sector_twice", setv("scenario.user_sectors.1.country", "CHN"), "scenario.user_sectors[0].sector", "'industry'"),
    ("n_firms", setv(f"{U0}.n_firms", 0), "scenario.user_sectors[0].n_firms", "0"),
    ("value_added", setv(f"{U0}.value_added", 0.0), "scenario.user_sectors[0].value_added", "0.0"),
    ("inventory_months", setv(f"{U0}.inventory_months", -1.0), "scenario.user_sectors[0].inventory_months", "-1.0"),
    ("size_dispersion", setv(f"{U0}.size_dispersion", -0.1), "scenario.user_sectors[0].size_dispersion", "-0.1"),
    ("use_empty", setv(f"{U0}.use", {}), "scenario.user_sectors[0].use", "{}"),
    ("use_unknown_good", setv(f"{U0}.use", {"gold": 1.0}), "scenario.user_sectors[0].use", "'gold'"),
    ("use_negative", setv(f"{U0}.use", {"ore": -1.0}), "scenario.user_sectors[0].use.ore", "-1.0"),
    # ---- sourcing ----
    ("sourcing_destination", setv(f"{SC0}.destination", "NZL"), "scenario.sourcing[0].destination", "'NZL'"),
    ("sourcing_good", setv(f"{SC0}.good", "gold"), "scenario.sourcing[0].good", "'gold'"),
    ("sourcing_twice", setv("scenario.sourcing.1.destination", "JPN"), "scenario.sourcing[1]", "'JPN/ore'"),
    (
        "sourcing_unknown_origin",
        setv(f"{SC0}.shares", {"CHN": 0.8, "KOR": 0.2}),
        "scenario.sourcing[0].shares",
        "'KOR'",
    ),
    (
        "sourcing_negative_share",
        setv(f"{SC0}.shares", {"CHN": 1.2, "AUS": -0.2}),
        "scenario.sourcing[0].shares.AUS",
        "-0.2",
    ),
    (
        "sourcing_origin_without_producer",
        setv(f"{SC0}.shares", {"CHN": 0.8, "JPN": 0.2}),
        "scenario.sourcing[0].shares.JPN",
        "0.2",
    ),
    (
        "sourcing_not_summing_to_one",
        setv(f"{SC0}.shares", {"CHN": 0.7, "AUS": 0.2}),
        "scenario.sourcing[0].shares",
        "{'CHN': 0.7, 'AUS': 0.2}",
    ),
    ("sourcing_missing", lambda cfg: cfg.scenario.sourcing.pop(0), "scenario.sourcing", "destination JPN, good ore"),
    # ---- measures ----
    ("measure_type", setv(f"{M0}.type", "embargo"), "scenario.measures[0].type", "'embargo'"),
    ("measure_imposer", setv(f"{M0}.imposer", "XYZ"), "scenario.measures[0].imposer", "'XYZ'"),
    ("measure_no_goods", setv(f"{M0}.goods", []), "scenario.measures[0].goods", "[]"),
    ("measure_unknown_good", setv(f"{M0}.goods", ["gold"]), "scenario.measures[0].goods", "'gold'"),
    ("measure_unknown_target", setv(f"{M0}.targets", ["KOR"]), "scenario.measures[0].targets", "'KOR'"),
    ("measure_start_not_a_date", setv(f"{M0}.start", "2021-02-30"), "scenario.measures[0].start", "'2021-02-30'"),
    ("measure_end_not_a_date", setv(f"{M0}.end", "end of 2021"), "scenario.measures[0].end", "'end of 2021'"),
    (
        "measure_start_after_end_of_scenario",
        setv(f"{M0}.start", "2023-01-01"),
        "scenario.measures[0].start",
        "'2023-01-01'",
    ),
    ("measure_ends_before_it_starts", setv(f"{M0}.end", "2020-12-31"), "scenario.measures[0].end", "'2020-12-31'"),
    (
        "measure_ends_before_scenario",
        setmany((f"{M0}.start", "2019-01-01"), (f"{M0}.end", "2019-06-30")),
        "scenario.measures[0].end",
        "'2019-06-30'",
    ),
    ("measure_rate", add_measure(type="export_duty", rate=-0.1, end=None), "scenario.measures[1].rate", "-0.1"),
    ("measure_intensity_zero", add_measure(intensity=0.0), "scenario.measures[1].intensity", "0.0"),
    ("measure_intensity_above_one", add_measure(intensity=1.5), "scenario.measures[1].intensity", "1.5"),
    ("quota_quantity", setv(f"{M0}.quantity", -1.0), "scenario.measures[0].quantity", "-1.0"),
    ("quota_without_end", setv(f"{M0}.end", None), "scenario.measures[0].end", "None"),
    ("allocation_good", setv(f"{M0}.allocation", {"gold": 1.0}), "scenario.measures[0].allocation", "'gold'"),
    ("allocation_negative", setv(f"{M0}.allocation", {"ore": -1.0}), "scenario.measures[0].allocation.ore", "-1.0"),
    ("allocation_sum", setv(f"{M0}.allocation", {"ore": 0.5}), "scenario.measures[0].allocation", "{'ore': 0.5}"),
    # ---- requirement changes ----
    ("change_country", add_requirement_change(country="NZL"), "scenario.requirement_changes[0].country", "'NZL'"),
    ("change_sector", add_requirement_change(sector="cars"), "scenario.requirement_changes[0].sector", "'cars'"),
    ("change_good", add_requirement_change(good="gold"), "scenario.requirement_changes[0].good", "'gold'"),
    ("change_size", add_requirement_change(change=-1.0), "scenario.requirement_changes[0].change", "-1.0"),
    (
        "change_start_not_a_date",
        add_requirement_change(start="soon"),
        "scenario.requirement_changes[0].start",
        "'soon'",
    ),
    (
        "change_start_after_end",
        add_requirement_change(start="2024-01"),
        "scenario.requirement_changes[0].start",
        "'2024-01'",
    ),
    ("change_ramp", add_requirement_change(ramp_months=-1), "scenario.requirement_changes[0].ramp_months", "-1"),
    # ---- strategy ----
    ("strategy_type", setv("scenario.strategy.type", "random"), "scenario.strategy.type", "'random'"),
    (
        "strategy_tolerance",
        setv("scenario.strategy.coercer_cost_tolerance", 0.0),
        "scenario.strategy.coercer_cost_tolerance",
        "0.0",
    ),
    (
        "strategy_threshold",
        setv("scenario.strategy.target_pain_threshold", 0.0),
        "scenario.strategy.target_pain_threshold",
        "0.0",
    ),
    (
        "strategy_ruling",
        setv("scenario.strategy.ruling_delay_months", -1),
        "scenario.strategy.ruling_delay_months",
        "-1",
    ),
    (
        "rules_without_targets",
        setmany(("scenario.strategy.type", "rules"), ("scenario.targets", [])),
        "scenario.targets",
        "[]",
    ),
    # ---- model ----
    *[
        (f"model_{name}", setv(f"model.{name}", 0.0), f"model.{name}", "0.0")
        for name in (
            "inventory_adjustment_months",
            "scarcity_memory_months",
            "risk_memory_months",
            "expectation_memory_months",
            "sourcing_concentration",
            "clearing_tolerance",
        )
    ],
    *[
        (f"model_{name}", setv(f"model.{name}", -0.1), f"model.{name}", "-0.1")
        for name in ("precaution", "risk_aversion", "substitution_rate", "long_run_thrift")
    ],
    (
        "model_precaution_max_multiple",
        setv("model.precaution_max_multiple", 0.5),
        "model.precaution_max_multiple",
        "0.5",
    ),
    (
        "model_sourcing_adjustment_rate",
        setv("model.sourcing_adjustment_rate", 1.5),
        "model.sourcing_adjustment_rate",
        "1.5",
    ),
    ("model_substitution_floor_zero", setv("model.substitution_floor", 0.0), "model.substitution_floor", "0.0"),
    ("model_substitution_floor_above_one", setv("model.substitution_floor", 1.5), "model.substitution_floor", "1.5"),
    ("model_project_decision_months", setv("model.project_decision_months", 0), "model.project_decision_months", "0"),
    # ---- non-finite numbers anywhere (they used to crash or poison the run months into it) ----
    ("inf_model_parameter", setv("model.precaution", float("inf")), "model.precaution", "inf"),
    ("inf_capacity", setv("scenario.producers.0.capacity", float("inf")), "scenario.producers[0].capacity", "inf"),
    ("nan_price_cap", setv("scenario.goods.0.price_cap", float("nan")), "scenario.goods[0].price_cap", "nan"),
    ("inf_use", setv("scenario.user_sectors.0.use.ore", float("inf")), "scenario.user_sectors[0].use.ore", "inf"),
    # ---- random streams ----
    ("seed_negative", setv("seed", -1), "seed", "-1"),
    ("replication_negative", setv("replication", -2), "replication", "-2"),
    # ---- history file ----
    ("history_not_found", setv("scenario.history", "rare_earth_2010_histroy.csv"), "scenario.history", "histroy"),
    ("history_wrong_columns", setv("scenario.history", "README.md"), "scenario.history", "missing: series"),
    # ---- output ----
    ("output_variable", setv("output.variables", ["prices"]), "output.variables", "'prices'"),
    ("output_progress", setv("output.progress", "sometimes"), "output.progress", "'sometimes'"),
    ("output_figures_word", setv("output.figures", "yes"), "output.figures", "'yes'"),
    ("output_figures_number", setv("output.figures", 1), "output.figures", "1"),
    ("output_figures_none", setv("output.figures", None), "output.figures", "None"),
]


@pytest.mark.parametrize("mutate, path, value", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_rule(mutate, path, value):
    cfg = helpers.minimal_cfg()
    mutate(cfg)
    with pytest.raises(ScenarioError) as info:
        validate_config(cfg)
    msg = str(info.value)
    assert msg.startswith(path + ":"), msg
    assert value in msg, msg
    assert len(msg.splitlines()) == 1, "one line"


def test_model_rule_messages_name_the_value():
    cfg = helpers.minimal_cfg()
    cfg.model.risk_memory_months = 0.0
    with pytest.raises(ScenarioError, match=r"^model\.risk_memory_months: 0\.0 is invalid; allowed: > 0$"):
        validate_config(cfg)


def test_scenario_error_is_a_value_error():
    assert issubclass(ScenarioError, ValueError)


def test_messages_say_what_is_allowed():
    cfg = helpers.minimal_cfg()
    cfg.scenario.measures[0].targets = ["KOR"]
    with pytest.raises(ScenarioError) as info:
        validate_config(cfg)
    assert "CHN, JPN, AUS" in str(info.value)
    cfg = helpers.minimal_cfg()
    cfg.scenario.goods[0].price_floor = 2.0
    with pytest.raises(ScenarioError, match=r"allowed: in \(0, 1\)"):
        validate_config(cfg)


# ------------------------------------------------------------------------------------------------
# Valid input passes
# ------------------------------------------------------------------------------------------------
SHIPPED = sorted(p.stem for p in helpers.SCENARIO_DIR.glob("*.yaml"))


@pytest.mark.parametrize("scenario", SHIPPED)
def test_shipped_scenarios_are_valid(scenario):
    validate_config(helpers.compose(scenario))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(setv("scenario.goods.0.demand_elasticity", 0.0), id="demand_elasticity_zero"),
        pytest.param(setv("scenario.goods.0.price_floor", 0.999), id="price_floor_below_one"),
        pytest.param(setv(f"{M0}.start", "2019-06-01"), id="measure_started_before_the_scenario"),
        pytest.param(
            setmany((f"{M0}.start", "2019-06-01"), (f"{M0}.end", "2020-01-01")), id="measure_ends_on_the_first_day"
        ),
        pytest.param(
            setmany((f"{M0}.start", "2022-12-31"), (f"{M0}.end", "2022-12-31")), id="measure_starts_on_the_last_day"
        ),
        pytest.param(setv(f"{M0}.allocation", {"ore": 1.0}), id="allocation_one"),
        pytest.param(add_measure(intensity=1.0), id="intensity_one"),
        pytest.param(add_measure(type="informal_restriction", intensity=0.5), id="informal_restriction"),
        pytest.param(add_requirement_change(), id="requirement_change"),
        pytest.param(setv(f"{PJ0}.offtake", {"JPN": 0.5, "CHN": 0.5}), id="offtake_total_one"),
        pytest.param(setv(f"{PJ0}.committed_start", "2019-06"), id="committed_before_the_scenario"),
        pytest.param(
            setmany(("scenario.strategy.type", "rules"), ("scenario.strategy.ruling_delay_months", 6)), id="rules"
        ),
        pytest.param(setv("model.sourcing_adjustment_rate", 0.0), id="sourcing_adjustment_zero"),
        pytest.param(setv("model.sourcing_adjustment_rate", 1.0), id="sourcing_adjustment_one"),
        pytest.param(setv("model.substitution_floor", 1.0), id="substitution_floor_one"),
        pytest.param(setv("model.precaution_max_multiple", 1.0), id="precaution_max_multiple_one"),
        pytest.param(setv("output.variables", ["price_export", "output_loss"]), id="output_variables"),
    ],
)
def test_valid_edge_cases_pass(mutate):
    cfg = helpers.minimal_cfg()
    mutate(cfg)
    validate_config(cfg)


@pytest.mark.parametrize("code", ["EU27", "ROW"])
def test_aggregate_country_codes_are_valid(tmp_path, code):
    # Rename AUS everywhere in the scenario file.
    text = helpers.MINIMAL_YAML.read_text().replace("AUS", code).replace("name: minimal", "name: renamed")
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "renamed.yaml").write_text(text)
    cfg = helpers.compose("renamed", config_dir=tmp_path)
    assert code in [c.code for c in cfg.scenario.countries]
    validate_config(cfg)


def test_producer_with_zero_capacity_cannot_be_a_baseline_origin():
    cfg = helpers.minimal_cfg()
    cfg.scenario.producers[1].capacity = 0.0  # AUS: no capacity, but JPN buys 20% there
    with pytest.raises(
        ScenarioError, match=r"^scenario\.sourcing\[0\]\.shares\.AUS: 0\.2 is invalid; AUS has no producer"
    ):
        validate_config(cfg)


def test_measure_cannot_target_its_imposer():
    cfg = helpers.minimal_cfg()
    add_measure(targets=["CHN"])(cfg)
    with pytest.raises(ScenarioError) as info:
        validate_config(cfg)
    msg = str(info.value)
    assert msg.startswith("scenario.measures[1].targets") and "'CHN'" in msg


# ---------------------------------------------------------------------------------------------- schema lint
def test_every_shipped_scenario_file_passes_the_schema_lint():
    """The pre-composition lint (``sim.world.config.lint_scenario_file``) must not reject a valid file: it
    runs before every command that names a scenario."""
    from sim.world.config import lint_scenario_file

    for folder in (helpers.CONFIG_DIR, helpers.TESTS_DIR / "configs"):
        for path in sorted((folder / "scenario").glob("*.yaml")):
            assert lint_scenario_file(path.stem, [folder]) is None, path


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"goods": [{"id": "ore", "referense_price": 1.0}]},
            "scenario.goods[0].referense_price: unknown key; allowed: id,",
        ),
        (
            {"producers": [{}, {"capacity": "lots"}]},
            "scenario.producers[1].capacity: 'lots' is invalid; allowed: a number",
        ),
        ({"user_sectors": [{"n_firms": 2.5}]}, "scenario.user_sectors[0].n_firms: 2.5 is invalid; allowed: an integer"),
        (
            {"user_sectors": [{"use": {"ore": "much"}}]},
            "scenario.user_sectors[0].use.ore: 'much' is invalid; allowed: a number",
        ),
        ({"measures": [{"goods": "ore"}]}, "scenario.measures[0].goods: 'ore' is invalid; allowed: a list"),
        ({"strategy": {"typ": "rules"}}, "scenario.strategy.typ: unknown key; allowed: type,"),
        ({"countries": 3}, "scenario.countries: 3 is invalid; allowed: a list"),
    ],
)
def test_schema_problem_names_the_full_path_and_what_is_allowed(data, message):
    from sim.world.config import ScenarioConfig, schema_problem

    assert schema_problem(data, ScenarioConfig, "scenario").startswith(message)


@pytest.mark.parametrize(
    "data",
    [
        {"goods": [{"id": "ore", "reference_price": "${parameters.price}"}]},  # interpolation
        {"producers": [{"capacity": "1e5"}, {"capacity": 5}]},  # numbers as strings and ints for floats
        {"history": None, "projects": []},
    ],
)
def test_schema_problem_leaves_valid_forms_alone(data):
    from sim.world.config import ScenarioConfig, schema_problem

    assert schema_problem(data, ScenarioConfig, "scenario") is None


def test_schema_lint_leaves_files_it_cannot_judge_to_hydra(tmp_path):
    """The lint runs before every command: it must not block a file Hydra composes correctly, nor
    raise. Files that extend another config, files with a package header, a user's file shadowed by
    a shipped one of the same name (Hydra reads the shipped one first), odd names."""
    from sim.world.config import lint_scenario_file

    d = tmp_path / "my" / "scenario"
    d.mkdir(parents=True)
    (d / "big.yaml").write_text("defaults:\n  - generated\n  - _self_\ncountries: 6\n")
    (d / "pkg.yaml").write_text("# @package _global_\nscenario:\n  name: x\n")
    (d / "minimal.yaml").write_text("name: minimal\ngodos: 1\n")
    for name in ("big", "pkg", "minimal", "x" * 300, "../../etc/passwd", "nope"):
        assert lint_scenario_file(name, [tmp_path / "my"]) is None, name[:20]
    (d / "mine.yaml").write_text("defaults:\n  - schema\n  - _self_\nname: mine\ngodos: 1\n")
    problem = lint_scenario_file("mine", [tmp_path / "my"])
    assert problem == f"{d / 'mine.yaml'}: scenario.godos: unknown key; allowed: " + ", ".join(
        f.name for f in dataclasses.fields(ScenarioConfig)
    )


def test_history_file_with_a_byte_order_mark_or_quoted_header_is_accepted(tmp_path):
    from sim.world.data import HISTORY_COLUMNS
    from sim.world.scenario import _check_history

    good = tmp_path / "h.csv"
    good.write_text(",".join(f'"{c}"' for c in HISTORY_COLUMNS) + "\n", encoding="utf-8-sig")
    _check_history(str(good))
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"s\xe9ries,good\n")
    with pytest.raises(ScenarioError, match=r"^scenario.history: .*readable UTF-8 CSV"):
        _check_history(str(bad))


# ------------------------------------------------------------------------------ scenario-file mistakes
def _lint(tmp_path, name, text=None, data=None):
    from sim.world.config import lint_scenario_file

    path = tmp_path / "my" / "scenario" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        text = yaml.safe_dump(data)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path, lint_scenario_file(name, [tmp_path / "my"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty (or only comments); allowed: a UTF-8 YAML file"),
        ("# nothing yet\n", "the file is empty"),
        (b"\x00\x01\x02binary", "binary content (a NUL byte at offset 0)"),
        ("name: s\u00e9rie\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 7)"),
        ("name: x\ngoods: [\n", "invalid YAML at line 3, column 1"),
        ("[1, 2]\n", "list [1, 2] at the top level is invalid"),
        ("just words\n", "str 'just words' at the top level is invalid"),
    ],
    ids=["empty", "comments", "binary", "latin1", "bad_yaml", "list", "scalar"],
)
def test_a_file_that_is_no_scenario_is_named_with_the_problem(tmp_path, content, message):
    path, problem = _lint(tmp_path, "case", content)
    assert problem.startswith(f"{path}: {message}"), problem
    assert "\n" not in problem


def test_an_oversized_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    import sim.world.config

    monkeypatch.setattr(sim.world.config, "MAX_SCENARIO_FILE_BYTES", 1000)
    path, problem = _lint(tmp_path, "huge", data=helpers.minimal_scenario_dict())
    assert problem.startswith(f"{path}: 0.0 MiB is too large for a scenario file; allowed: at most 0 MiB"), problem


@pytest.mark.parametrize(
    "drop, message",
    [
        (("name",), "scenario.name: missing; allowed: a text value"),
        (("start",), "scenario.start: missing; allowed: a date, YYYY-MM"),
        (("coercer",), "scenario.coercer: missing; allowed: a country code from scenario.countries"),
        (("producers", 1, "good"), "scenario.producers[1].good: missing; allowed: a good id from scenario.goods"),
        (("goods", 0, "reference_price"), "scenario.goods[0].reference_price: missing; allowed: a number"),
        (("measures", 0, "start"), "scenario.measures[0].start: missing; allowed: a date"),
    ],
)
def test_a_required_field_left_out_is_named(tmp_path, drop, message):
    data = helpers.minimal_scenario_dict()
    node = data
    for key in drop[:-1]:
        node = node[key]
    del node[drop[-1]]
    path, problem = _lint(tmp_path, "case", data=data)
    assert problem.startswith(f"{path}: {message}"), problem


def test_a_required_field_set_on_the_command_line_counts_as_given(tmp_path):
    from sim.world.config import lint_scenario_file

    data = helpers.minimal_scenario_dict()
    del data["start"], data["producers"][0]["good"]
    _lint(tmp_path, "case", data=data)
    given = frozenset({"scenario.start", "scenario.producers[0].good"})
    assert lint_scenario_file("case", [tmp_path / "my"], overridden=given) is None
    assert "scenario.start: missing" in lint_scenario_file("case", [tmp_path / "my"])


@pytest.mark.parametrize(
    "data, message",
    [
        ({"goods": None}, "scenario.goods: None is invalid; allowed: a list"),
        ({"coercer": None}, "scenario.coercer: None is invalid; allowed: a text value"),
        ({"strategy": None}, "scenario.strategy: None is invalid; allowed: a mapping with the keys type,"),
        ({"projects": [{"build_lag_months": 9.0}]}, "scenario.projects[0].build_lag_months: 9.0 is invalid; allowed"),
        ({"user_sectors": [{"n_firms": "1e3"}]}, "scenario.user_sectors[0].n_firms: '1e3' is invalid"),
    ],
)
def test_values_omegaconf_refuses_without_a_path_are_named(data, message):
    from sim.world.config import ScenarioConfig, schema_problem

    assert schema_problem(data, ScenarioConfig, "scenario").startswith(message)


def test_schema_and_unknown_names_are_not_scenarios(tmp_path):
    from sim.world.config import scenario_name_problem

    assert scenario_name_problem("minimal") is None
    schema = scenario_name_problem("schema")
    assert schema.startswith("scenario: 'schema' is the schema that scenario files extend, not a scenario; allowed: ")
    assert "minimal" in schema and "generated_schema" not in schema
    (tmp_path / "my" / "scenario").mkdir(parents=True)
    (tmp_path / "my" / "scenario" / "mine.yaml").write_text("name: mine\n")
    nope = scenario_name_problem("nope", [tmp_path / "my"])
    assert nope.startswith("scenario: 'nope' is not a scenario file found; allowed: ") and "mine" in nope
    with pytest.raises(ConfigCompositionException, match="^scenario: 'schema' is the schema"):
        compose_config("schema")


def test_a_users_file_shadowed_by_a_shipped_one_is_named_in_a_warning(tmp_path):
    from sim.api import ScenarioShadowedWarning

    config_dir = helpers.write_scenario(tmp_path, "minimal", lambda d: d.update(description="mine"))
    with pytest.warns(ScenarioShadowedWarning, match="using .*configs/scenario/minimal.yaml; your .* is ignored"):
        cfg = compose_config("minimal", config_dir=config_dir)
    assert cfg.scenario.description != "mine"


def test_an_empty_file_through_sim_run_names_the_file(tmp_path):
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "empty.yaml").write_text("")
    with pytest.raises(ConfigCompositionException, match=r"empty\.yaml: the file is empty"):
        sim.run("empty", config_dir=tmp_path)


def test_a_missing_value_after_composition_is_a_scenario_error():
    cfg = helpers.minimal_cfg(["scenario.coercer=???"])
    with pytest.raises(ScenarioError, match=r"^scenario\.coercer: missing; allowed: a country code"):
        validate_config(cfg)


def test_an_interpolation_that_does_not_resolve_is_a_scenario_error():
    cfg = helpers.minimal_cfg(["scenario.goods.0.price_cap=${parameters.nope}"])
    with pytest.raises(ScenarioError, match=r"^scenario\.goods\[0\]\.price_cap: does not resolve"):
        validate_config(cfg)


@pytest.mark.parametrize(
    "override, message",
    [
        ("scenario.goods.0.reference_price=1e300", "scenario.goods[0].reference_price: 1e+300 is invalid"),
        ("scenario.goods.0.demand_elasticity=200000", "scenario.goods[0].demand_elasticity: 200000.0 is invalid"),
        ("scenario.goods.0.armington_elasticity=51", "scenario.goods[0].armington_elasticity: 51.0 is invalid"),
        ("scenario.producers.0.supply_elasticity=60", "scenario.producers[0].supply_elasticity: 60.0 is invalid"),
    ],
)
def test_numbers_too_large_for_the_model_are_refused(override, message):
    with pytest.raises(ScenarioError) as info:
        validate_config(helpers.minimal_cfg([override]))
    assert str(info.value).startswith(message), info.value


@pytest.mark.parametrize(
    "data, message",
    [
        ({"user_sectors": "???"}, "scenario.user_sectors: missing"),
        (
            {"user_sectors": ["${parameters.nope}"]},
            "scenario.user_sectors[0]: '${parameters.nope}' is invalid; allowed",
        ),
        ({"strategy": "${parameters.x}"}, "scenario.strategy: '${parameters.x}' is invalid; allowed: a mapping"),
    ],
    ids=["missing_list", "interpolation_for_an_entry", "interpolation_for_a_mapping"],
)
def test_fuzz_findings_are_named_at_the_lint(tmp_path, data, message):
    """Found by tests/test_fuzz_input.py: ``???`` for a list with a default composed to the default
    (an empty list: a world without firms), an interpolation where fields are expected gave
    OmegaConf's message without the path."""
    base = helpers.minimal_scenario_dict()
    base.update(data)
    path, problem = _lint(tmp_path, "case", data=base)
    assert problem.startswith(f"{path}: {message}"), problem


def test_a_world_without_user_sectors_is_refused():
    cfg = helpers.minimal_cfg()
    cfg.scenario.user_sectors = []
    cfg.scenario.sourcing = []
    with pytest.raises(ScenarioError, match=r"^scenario\.user_sectors: \[\] is invalid; allowed: at least one"):
        validate_config(cfg)
