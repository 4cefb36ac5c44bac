"""The pydantic schema (sim/world/schema.py): it agrees with Hydra's structured configs (sim/world/config.py) on
every block's fields and defaults, its errors name the full path, the value and what is allowed, and
the schema imports none of the modules that use it.
"""

import ast
import dataclasses
import typing
from pathlib import Path

import pytest
from omegaconf import MISSING, OmegaConf

from sim.world import config as C
from sim.world import schema as S

#: Hydra's dataclass for each pydantic model of sim.world.schema.
PAIRS = [
    (C.CountryConfig, S.Country),
    (C.ByproductConfig, S.Byproduct),
    (C.GoodConfig, S.Good),
    (C.ProducerConfig, S.Producer),
    (C.ProjectConfig, S.Project),
    (C.UserSectorConfig, S.UserSector),
    (C.SourcingConfig, S.Sourcing),
    (C.MeasureConfig, S.Measure),
    (C.RequirementChangeConfig, S.RequirementChange),
    (C.StrategyConfig, S.Strategy),
    (C.AssumptionConfig, S.Assumption),
    (C.ScenarioConfig, S.Scenario),
    (C.GeneratedScenarioConfig, S.GeneratedScenario),
    (C.ModelConfig, S.Model),
    (C.StockpileConfig, S.Stockpile),
    (C.DiversificationConfig, S.Diversification),
    (C.InventoryIncentiveConfig, S.InventoryIncentive),
    (C.FinancedProjectConfig, S.FinancedProject),
    (C.FriendshoringConfig, S.Friendshoring),
    (C.CollectiveResponseConfig, S.CollectiveResponse),
    (C.SubstitutionProgrammeConfig, S.SubstitutionProgramme),
    (C.SubstitutionConfig, S.Substitution),
    (C.RecyclingConfig, S.Recycling),
    (C.PolicyConfig, S.Policy),
    (C.OutputConfig, S.Output),
]


def _plain(value):
    """A default as plain data (pydantic model instances and dataclass instances alike)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value):
        return OmegaConf.to_container(OmegaConf.structured(value))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("dc, model", PAIRS, ids=[m.__name__ for _, m in PAIRS])
def test_schema_and_hydra_structure_agree_on_fields_and_defaults(dc, model):
    hydra_fields = {f.name: f for f in dataclasses.fields(dc)}
    assert list(model.model_fields) == list(hydra_fields), (
        f"{model.__name__} and {dc.__name__} list different fields: port the new field to sim/world/schema.py"
    )
    for name, info in model.model_fields.items():
        f = hydra_fields[name]
        if f.default is MISSING:
            assert info.is_required(), f"{dc.__name__}.{name} is required in Hydra's structure, not in the schema"
            continue
        assert not info.is_required(), f"{model.__name__}.{name} is required in the schema, not in Hydra's structure"
        hydra_default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        assert _plain(info.get_default(call_default_factory=True)) == _plain(hydra_default), f"{dc.__name__}.{name}"


def test_run_config_covers_the_root_fields():
    root = {f.name for f in dataclasses.fields(C.Config)}
    assert set(S.RunConfig.model_fields) == root


def _minimal() -> dict:
    from tests import helpers

    return OmegaConf.to_container(helpers.minimal_cfg(), resolve=True)


def test_a_valid_configuration_passes_and_comes_back_typed():
    run = S.validate_run(_minimal())
    assert isinstance(run.scenario, S.Scenario) and run.scenario.goods[0].reference_price > 0


@pytest.mark.parametrize(
    "where, value, message",
    [
        (
            ("scenario", "goods", 0, "reference_price"),
            -1.0,
            "scenario.goods[0].reference_price: -1.0 is invalid; allowed: > 0",
        ),
        (("model", "substitution_floor"), 0.0, "model.substitution_floor: 0.0 is invalid; allowed: in (0, 1]"),
        (("output", "progress"), "sometimes", "output.progress: 'sometimes' is invalid; allowed: auto, always, never"),
        (("seed",), -3, "seed: -3 is invalid; allowed: an integer >= 0"),
        (("scenario", "coercer"), "XXX", "scenario.coercer: unknown country 'XXX'; the scenario defines:"),
    ],
)
def test_errors_name_the_full_path_the_value_and_what_is_allowed(where, value, message):
    data = _minimal()
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(S.ScenarioError) as info:
        S.validate_run(data)
    assert str(info.value).startswith(message), str(info.value)


def test_a_dict_entry_is_named_by_its_key():
    data = _minimal()
    sector = data["scenario"]["user_sectors"][0]
    good = next(iter(sector["use"]))
    sector["use"][good] = -2.0
    with pytest.raises(S.ScenarioError, match=rf"^scenario\.user_sectors\[0\]\.use\.{good}: -2\.0 is invalid"):
        S.validate_run(data)


def test_generator_parameters_are_checked_with_their_relations():
    with pytest.raises(
        S.ScenarioError, match=r"^scenario\.firms: 3 is invalid; allowed: an integer >= scenario\.countries"
    ):
        S.validate_generator({"kind": "generated", "countries": 5, "firms": 3})
    with pytest.raises(S.ScenarioError, match=r"^scenario\.measure_share: inf is invalid; allowed: a finite number"):
        S.validate_generator({"kind": "generated", "measure_share": float("inf")})


# ---------------------------------------------------------------------------- import cycles
#: The modules that used to check configurations by hand and import one another for it.
CONFIG_MODULES = ("sim.world.config", "sim.world.scenario", "sim.policy.levers", "sim.world.generate")


def test_the_schema_imports_no_other_configuration_module():
    """The rules sit below the modules that use them (the whole package's import graph is checked
    for cycles in tests/test_architecture.py)."""
    tree = ast.parse(Path(S.__file__).read_text(encoding="utf-8"))
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not found & set(CONFIG_MODULES), sorted(found & set(CONFIG_MODULES))


def test_every_schema_field_type_is_what_hydra_gives():
    """The schema's fields have the types Hydra's structure converts values to, so pydantic validates
    composed configurations without coercing anything (a str field for a str, a float for a float).
    """
    for dc, model in PAIRS:
        hints = typing.get_type_hints(dc)
        for name, info in model.model_fields.items():
            hydra, ours = hints[name], info.annotation
            if hydra in (float, int, str, bool):
                assert ours is hydra, f"{model.__name__}.{name}: {ours} vs {hydra}"
