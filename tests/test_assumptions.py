"""Named assumptions (``scenario.assumptions``, :mod:`sim.world.assumptions`) and their sensitivity sweep
(``experiments/assumption_sensitivity.py``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import helpers
import pandas as pd
import pytest

from sim.world.assumptions import assumption_value, parse_path, with_assumption
from sim.world.scenario import ScenarioError, validate_config

SCRIPT = helpers.REPO_ROOT / "experiments" / "assumption_sensitivity.py"
SHIPPED = sorted(p.stem for p in helpers.SCENARIO_DIR.glob("*.yaml") if p.stem not in ("generated", "schema"))


def _with(entries: list[str]):
    return helpers.compose("minimal", [f"scenario.assumptions=[{','.join(entries)}]"])


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("assumption_sensitivity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paths_address_list_entries_by_what_identifies_them():
    assert parse_path("user_sectors[country=JPN,sector=magnets].inventory_months") == [
        ("user_sectors", {"country": "JPN", "sector": "magnets"}),
        ("inventory_months", None),
    ]
    # A dot inside a selector belongs to the value (labels carry them).
    assert parse_path("measures[label=Quota 2010 (H2). cut].quantity")[0] == (
        "measures",
        {"label": "Quota 2010 (H2). cut"},
    )
    # A comma belongs to the value unless the next key and "=" follow it (labels carry commas).
    assert parse_path("measures[label=Baotou halt, Oct 2012,type=production_halt].intensity")[0] == (
        "measures",
        {"label": "Baotou halt, Oct 2012", "type": "production_halt"},
    )
    for bad in ("goods.0.x", "goods[id].x", "goods[id=a", "", "9goods.x"):
        with pytest.raises((ValueError, KeyError)):
            cfg = helpers.compose("minimal")
            assumption_value(cfg, bad)


def test_setting_an_assumption_changes_that_number_only():
    cfg = helpers.compose("minimal")
    good = cfg.scenario.goods[0].id
    path = f"goods[id={good}].demand_elasticity"
    before = assumption_value(cfg, path)
    changed = with_assumption(cfg, path, before * 2 + 0.1)
    assert assumption_value(changed, path) == pytest.approx(before * 2 + 0.1)
    assert assumption_value(cfg, path) == before  # the original is untouched
    changed.scenario.goods[0].demand_elasticity = before
    assert changed == cfg


@pytest.mark.parametrize(
    ("entry", "field", "says"),
    [
        ("{path: 'goods[id=nope].demand_elasticity', low: 0, high: 1, reason: r}", "assumptions[0].path", "0 entries"),
        ("{path: 'goods.0.demand_elasticity', low: 0, high: 1, reason: r}", "assumptions[0].path", "field name"),
        ("{path: name, low: 0, high: 1, reason: r}", "assumptions[0].path", "a path to a number"),
        ("{path: 'goods[id=g1].demand_elasticity', low: 5, high: 9, reason: r}", "assumptions[0].low/high", "contains"),
        ("{path: 'goods[id=g1].demand_elasticity', low: 0, high: 0, reason: r}", None, None),
        ("{path: 'goods[id=g1].demand_elasticity', low: 0, high: 1, reason: ''}", "assumptions[0].reason", "why"),
    ],
)
def test_a_bad_assumption_is_one_clear_error_naming_the_field(entry, field, says):
    cfg = helpers.compose("minimal")
    good = cfg.scenario.goods[0].id
    entry = entry.replace("g1", good)
    cfg = _with([entry])
    value = cfg.scenario.goods[0].demand_elasticity
    if field is None:  # low == high around the value: no range
        cfg = _with([entry.replace("low: 0, high: 0", f"low: {value}, high: {value}")])
        field, says = "assumptions[0].high", "above low"
    with pytest.raises(ScenarioError) as err:
        validate_config(cfg)
    assert f"scenario.{field}" in str(err.value) and says in str(err.value)


def test_a_whole_number_field_stays_whole_and_refuses_a_fractional_range():
    cfg = helpers.compose("rare_earth_2010")
    crackdown = next(m for m in cfg.scenario.measures if m.type == "crackdown")
    path = f"measures[label={crackdown.label}].ramp_months"
    changed = with_assumption(cfg, path, 31.0)
    assert next(m for m in changed.scenario.measures if m.type == "crackdown").ramp_months == 31
    with pytest.raises(ValueError, match="whole numbers"):
        with_assumption(cfg, path, 31.5)
    entry = f"{{path: '{path}', low: 30.5, high: 50, reason: r}}"
    bad = helpers.compose("rare_earth_2010", [f"scenario.assumptions=[{entry}]"])
    with pytest.raises(ScenarioError, match="whole numbers"):
        validate_config(bad)


def test_the_same_number_listed_twice_is_refused():
    cfg = helpers.compose("minimal")
    good = cfg.scenario.goods[0].id
    value = cfg.scenario.goods[0].demand_elasticity
    entry = f"{{path: 'goods[id={good}].demand_elasticity', low: 0, high: {value + 1}, reason: r}}"
    with pytest.raises(ScenarioError, match="listed once"):
        validate_config(_with([entry, entry]))


#: rare_earth_2010 lists 62 assumptions: validating its 125 configurations takes about a minute (slow suite);
#: rare_earth_2010_game composes that case 21 times (about ten seconds).
SHIPPED_PARAMS = [pytest.param(c, marks=pytest.mark.slow) if c.startswith("rare_earth_2010") else c for c in SHIPPED]


@pytest.mark.parametrize("case", SHIPPED_PARAMS)
def test_shipped_assumptions_resolve_and_their_ends_are_valid_scenarios(case, experiment):
    cfg, runs = experiment.plan(case)  # validates the base and every low/high config
    assert len(runs) == 1 + 2 * len(cfg.scenario.assumptions)


def test_the_sweep_moves_the_outcome_an_assumption_drives(experiment, tmp_path):
    """On the minimal case: the target's output loss falls as the coercer's export quota grows."""
    cfg = helpers.compose("minimal")
    target = cfg.scenario.targets[0]
    quota = next(m for m in cfg.scenario.measures if m.type == "export_quota")
    path = f"measures[label={quota.label}].quantity"
    entry = f"{{path: '{path}', low: {quota.quantity / 2}, high: {quota.quantity * 1.5}, reason: test}}"
    table = experiment.sweep("minimal", [1], overrides=[f"scenario.assumptions=[{entry}]"], jobs=1)
    loss = table[table.outcome == f"output_loss_share.{target}"].set_index("setting").result
    assert loss["low"] > loss["base"] > loss["high"]
    assert set(table.columns) == {"case", "seed", "path", "setting", "value", "outcome", "result"}
    assert table.set_index("setting").value.dropna().to_dict() == {
        "low": quota.quantity / 2,
        "high": quota.quantity * 1.5,
    }


def test_the_command_writes_table_and_figure(tmp_path):
    cfg = helpers.compose("minimal")
    good = cfg.scenario.goods[0].id
    value = float(cfg.scenario.goods[0].demand_elasticity)
    entry = f"{{path: 'goods[id={good}].demand_elasticity', low: {value / 2}, high: {value * 2 + 0.1}, reason: r}}"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "minimal",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
            f"scenario.assumptions=[{entry}]",
        ],
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in Path(tmp_path).iterdir()}
    assert names == {f"assumptions_minimal.{s}" for s in ("csv", "parquet", "png", "pdf")}
    back = pd.read_parquet(tmp_path / "assumptions_minimal.parquet")
    assert set(back.setting) == {"base", "low", "high"}
