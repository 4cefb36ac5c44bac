"""A halt aimed at one buyer, through a value chain (issue 12, item 6): the target's magnet makers lose
output and a bystander's identical makers do not, unless input stocks cover the held orders.

The world is symmetric: CHN mines and separates most of the oxide (ROW a little); JPN and USA each have
the same magnet makers (0.3 t of oxide per t of magnet), the same magnet users buying only from them,
the same sourcing (oxide 90% from CHN) and the same stocks. The only difference is the measure: CHN
holds half of its oxide shipments to JPN for three months (``informal_restriction``, intensity 0.5).
No export quota binds here, so held orders do not free quota for other buyers (the mechanism that,
in rare_earth_2010, lowers the export price during the 2010 halt; docs/ODD.md 7.1.1).
"""

from __future__ import annotations

import helpers
import numpy as np
import pytest
from omegaconf import OmegaConf

from sim.model.model import CoercionModel
from sim.world.config import ScenarioConfig

HALT = {
    "type": "informal_restriction",
    "imposer": "CHN",
    "goods": ["oxide"],
    "targets": ["JPN"],
    "start": "2020-04-01",
    "end": "2020-06-30",
    "intensity": 0.5,
}
#: Months 2020-04 .. 2020-12: the halt and the months its held orders take to be re-ordered.
WINDOW = slice(3, 12)


def world(input_cover: float) -> dict:
    """Quantities in t/yr; oxide US$10,000/t, magnets US$50,000/t."""
    makers, users, sourcing = [], [], []
    for c in ("JPN", "USA"):
        makers.append(
            {"name": f"{c} magnets", "country": c, "good": "magnet", "capacity": 1000 / 0.8, "unit_cost": 35000.0}
        )
        users.append(
            {
                "country": c,
                "sector": "motors",
                "n_firms": 3,
                "value_added": 4 * 50000 * 1000.0,
                "use": {"magnet": 1000.0},
            }
        )
        sourcing += [
            {"destination": c, "good": "oxide", "shares": {"CHN": 0.9, "ROW": 0.1}},
            {"destination": c, "good": "magnet", "shares": {c: 1.0}},
        ]
    users.append({"country": "CHN", "sector": "other", "n_firms": 3, "value_added": 4e7, "use": {"oxide": 1000.0}})
    for u in users:
        u["inventory_months"] = 2.0
    sourcing.append({"destination": "CHN", "good": "oxide", "shares": {"CHN": 1.0}})
    goods = [
        {"id": "oxide", "reference_price": 10000.0, "demand_elasticity": 0.1, "armington_elasticity": 3.0},
        {
            "id": "magnet",
            "reference_price": 50000.0,
            "demand_elasticity": 0.1,
            "armington_elasticity": 3.0,
            "inputs": {"oxide": 0.3},
            "input_inventory_months": input_cover,
        },
    ]
    return {
        "name": "targeted_chain_test",
        "start": "2020-01",
        "end": "2021-06",
        "coercer": "CHN",
        "targets": ["JPN"],
        "countries": [{"code": "CHN"}, {"code": "JPN"}, {"code": "USA"}, {"code": "ROW"}],
        "goods": goods,
        "producers": [
            {"name": "CHN oxide", "country": "CHN", "good": "oxide", "capacity": 1560 / 0.8, "unit_cost": 5000.0},
            {"name": "ROW oxide", "country": "ROW", "good": "oxide", "capacity": 60 / 0.8, "unit_cost": 5000.0},
            *makers,
        ],
        "user_sectors": users,
        "sourcing": sourcing,
        "measures": [HALT],
    }


def run(input_cover: float) -> CoercionModel:
    cfg = helpers.minimal_cfg(["output.figures=false"])
    cfg.scenario = OmegaConf.merge(OmegaConf.structured(ScenarioConfig), world(input_cover))
    model = CoercionModel(cfg)
    model.run()
    return model


def _by_country(model: CoercionModel, values: np.ndarray, good: str) -> dict[str, float]:
    """Sum over the window of a producer-level record of the good's makers, per country."""
    w = model.world
    g = w.goods.index(good)
    return {c: float(values[WINDOW][:, g, w.countries.index(c)].sum()) for c in ("JPN", "USA")}


@pytest.fixture(scope="module")
def thin():
    """Makers hold 1.5 months of oxide: less than the halt holds (half of three months' orders)."""
    return run(1.5)


def test_a_targeted_halt_costs_the_targets_magnet_makers_output_and_not_the_bystanders(thin):
    """Half of JPN's oxide held for three months against 1.5 months of stock: JPN's makers run short
    (lost output over a tenth of a month's output), USA's identical makers lose nothing, and JPN's
    magnet users lose more value added than USA's."""
    rec, w = thin.recorder, thin.world
    lost = _by_country(thin, rec.good_level["lost_output"], "magnet")
    month_output = 1000.0 / 12
    assert lost["JPN"] > 0.1 * month_output, lost
    assert lost["USA"] == pytest.approx(0.0, abs=1e-6 * month_output), lost
    loss = rec.country_level["output_loss"][WINDOW].sum(axis=0)
    jpn, usa = w.countries.index("JPN"), w.countries.index("USA")
    assert loss[jpn] > 2 * loss[usa] + 0.001 * rec.baseline_value_added[jpn], (loss[jpn], loss[usa])


def test_stocks_that_cover_the_held_orders_absorb_a_targeted_halt():
    """The same halt against six months of oxide stock: JPN's makers never run short (the stock covers
    the 1.5 months of held orders), so JPN's magnet output is not lost for lack of inputs. This is
    why the Sep-Nov 2010 halt costs Japan's magnet makers no output in rare_earth_2010 (three months
    of cover against about half a month of held orders)."""
    model = run(6.0)
    lost = _by_country(model, model.recorder.good_level["lost_output"], "magnet")
    assert lost["JPN"] == pytest.approx(0.0, abs=1e-6 * 1000.0 / 12), lost
