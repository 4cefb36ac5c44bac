"""Every shipped case scenario composes, validates and runs a short horizon through the command line.

The four out-of-sample cases of issue 5 (``australia_2020``, ``gallium_germanium_2023``,
``rare_earth_magnets_2025``, ``us_tariffs_2025``) are run with ``coercion-sim scenario=NAME
scenario.end=...`` into temporary folders (started together); each must exit 0, write its outputs, show
the shared parameters resolved in ``config.yaml`` and report the metrics its case is about.
"""

from __future__ import annotations

import json

import helpers
import pytest
from omegaconf import OmegaConf

from sim.reporting.files import OUTPUT_FILES
from sim.world.config import CONFIG_DIR
from sim.world.scenario import ScenarioError, validate_config

#: scenario -> (short end month: the last measure start must fit, validation requires it; metric keys)
CASES = {
    "australia_2020": (
        "2024-05",
        [
            "redirected_share_12m.barley.AUS",
            "export_price_received_ratio_12m.barley.AUS",
            "export_revenue_lost.AUS",
            "buyer_cost.barley.CHN",
        ],
    ),
    "gallium_germanium_2023": (
        "2024-12",
        ["peak_domestic_price_ratio.gallium", "peak_price_paid_ratio.gallium.JPN", "shortage.germanium.USA"],
    ),
    "rare_earth_magnets_2025": (
        "2025-06",
        [
            "first_output_loss_date.USA",
            "peak_price_paid_ratio.ndfeb_magnets.EU27",
            "peak_domestic_price_ratio.ndfeb_magnets",
        ],
    ),
    "us_tariffs_2025": (
        "2025-11",
        ["export_revenue_lost.CHN", "buyer_cost.ndfeb_magnets.USA", "import_hhi_end.ndfeb_magnets.USA"],
    ),
}


def test_every_case_file_is_listed():
    """Each scenario file except the calibration case and the format example is a tested case."""
    shipped = {p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml")} - {
        "rare_earth_2010",
        "minimal",
        "generated",
        "coercion_game",  # the strategic layer's world (tests/test_strategy.py), not a historical case
        "rare_earth_2010_game",  # the calibration case played by the strategic layer (tests/test_strategy_2010.py)
    }
    assert shipped == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_composes_and_validates_with_shared_parameters(name):
    """The full case composes and validates; its interpolated parameters resolve to numbers."""
    cfg = helpers.compose(name)
    validate_config(cfg)
    goods = OmegaConf.to_container(cfg.scenario.goods, resolve=True)
    for g in goods:
        assert isinstance(g["armington_elasticity"], float) and g["armington_elasticity"] > 1
    assert "nothing_tuned" in cfg.scenario.sources


def test_bad_shared_parameter_names_the_scenario_field():
    """A shared parameter out of range fails validation naming the scenario field it feeds."""
    cfg = helpers.compose("australia_2020", ["parameters.armington.cereals=0.5"])
    with pytest.raises(ScenarioError, match=r"scenario\.goods\[0\]\.armington_elasticity: 0\.5"):
        validate_config(cfg)


@pytest.fixture(scope="module")
def case_runs(tmp_path_factory):
    helpers.warm_numba_cache()
    root = tmp_path_factory.mktemp("cases")
    jobs = {
        name: (
            [f"scenario={name}", f"scenario.end={end}", "output.figures=false", "output.variables=[price_domestic]"],
            root / name,
        )
        for name, (end, _) in CASES.items()
    }
    return helpers.run_cli_many(jobs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_runs_through_the_cli(case_runs, name):
    run = case_runs[name]
    assert run.returncode == 0, f"coercion-sim {' '.join(run.args)} failed:\n{run.stderr}"
    for f in OUTPUT_FILES:
        assert (run.run_dir / f).is_file(), f
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    for key in CASES[name][1]:
        assert key in metrics, key
    cfg = OmegaConf.load(run.run_dir / "config.yaml")
    text = (run.run_dir / "config.yaml").read_text()
    assert "${parameters" not in text  # resolved values, not interpolations
    assert cfg.scenario.goods[0].armington_elasticity == cfg.parameters.armington[_kind(name)]


def _kind(name: str) -> str:
    return {
        "australia_2020": "cereals",
        "gallium_germanium_2023": "critical_minerals",
        "rare_earth_magnets_2025": "magnets",
        "us_tariffs_2025": "magnets",
    }[name]
