"""Mechanism tests that rely on no case's outcome (issue 5, item 8).

Small three-country worlds are built in the test (a coercer, a target exporter or importer, and the rest of
the world) and each is run with and without a measure, same seed. Properties checked over parameter ranges
(hypothesis; each example costs a few model runs, so the count is ``helpers.model_runs``):

* when a large buyer bans imports of a good from an exporter, the exporter's price falls and its sales to
  other buyers rise; the share of its lost sales re-sold elsewhere is larger when origins are more
  substitutable (higher Armington elasticity) and when the other buyers are larger (with the other sellers
  unchanged);
* an export restriction lowers the restricted good's price inside the restricting country and raises the
  price producers outside it receive (the world price outside). (The average price importers pay can
  fall under a partial ban: the blocked share is rationed at the border, not priced.)
"""

from __future__ import annotations

import helpers
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.api import run
from sim.world.config import ScenarioConfig

START, END, MEASURE_START = "2020-01", "2021-06", "2020-04-01"
# Each example is several model runs: the profile's budget for model-run properties.
MODEL_RUNS = helpers.model_runs()


def _world(
    *,
    sigma: float,
    buyer_use: float,
    other_use: float,
    exporter_share_buyer: float,
    exporter_share_other: float,
    measure: dict | None,
) -> dict:
    """A one-good world: CHN a buyer (and a producer, for export restrictions), AUS an exporter, ROW other
    buyers and other exporters. Quantities in t/yr, price US$100/t."""
    exporter_sales = buyer_use * exporter_share_buyer + other_use * exporter_share_other
    row_sales = buyer_use * (1 - exporter_share_buyer) + other_use * (1 - exporter_share_other)
    return {
        "name": "mechanism_test",
        "start": START,
        "end": END,
        "coercer": "CHN",
        "targets": ["AUS"],
        "countries": [{"code": "CHN"}, {"code": "AUS"}, {"code": "ROW"}],
        "goods": [
            {
                "id": "ore",
                "reference_price": 100.0,
                "demand_elasticity": 0.2,
                "armington_elasticity": sigma,
                "supply_elasticity": 0.5,
                "transport_cost_share": 0.05,
            }
        ],
        "producers": [
            {"name": "AUS", "country": "AUS", "good": "ore", "capacity": exporter_sales / 0.8, "unit_cost": 50.0},
            {"name": "ROW", "country": "ROW", "good": "ore", "capacity": row_sales / 0.8, "unit_cost": 50.0},
        ],
        "user_sectors": [
            {
                "country": "CHN",
                "sector": "users",
                "n_firms": 3,
                "value_added": 4 * 100 * buyer_use,
                "use": {"ore": buyer_use},
            },
            {
                "country": "ROW",
                "sector": "users",
                "n_firms": 3,
                "value_added": 4 * 100 * other_use,
                "use": {"ore": other_use},
            },
        ],
        "sourcing": [
            {
                "destination": "CHN",
                "good": "ore",
                "shares": {"AUS": exporter_share_buyer, "ROW": 1 - exporter_share_buyer},
            },
            {
                "destination": "ROW",
                "good": "ore",
                "shares": {"AUS": exporter_share_other, "ROW": 1 - exporter_share_other},
            },
        ],
        "measures": [measure] if measure else [],
    }


def _run(scenario: dict):
    cfg = helpers.minimal_cfg(["output.figures=false", "output.flows=true"])
    cfg.scenario = OmegaConf.merge(OmegaConf.structured(ScenarioConfig), scenario)
    return run(cfg, seed=1, keep_model=True)


def _series(result, variable: str, country: str) -> np.ndarray:
    return helpers.pivot(result.timeseries, variable, "ore")[country].to_numpy()


def _exports_to(result, origin: str, destination: str) -> np.ndarray:
    f = result.flows
    f = f[(f["origin"] == origin) & (f["destination"] == destination)]
    out = np.zeros(result.model.n_steps)
    np.add.at(out, f["step"].to_numpy(), f["quantity"].to_numpy())
    return out


IMPORT_BAN = {"type": "import_ban", "imposer": "CHN", "goods": ["ore"], "targets": ["AUS"], "start": MEASURE_START}


@MODEL_RUNS
@given(
    sigma=st.floats(1.5, 6.0),
    buyer_share=st.floats(0.3, 0.8),
    other_share=st.floats(0.05, 0.3),
    intensity=st.floats(0.5, 1.0),
)
def test_import_ban_lowers_exporter_price_and_raises_its_other_sales(sigma, buyer_share, other_share, intensity):
    common = dict(
        sigma=sigma,
        buyer_use=1000.0,
        other_use=3000.0,
        exporter_share_buyer=buyer_share,
        exporter_share_other=other_share,
    )
    base = _run(_world(**common, measure=None))
    ban = _run(_world(**common, measure={**IMPORT_BAN, "intensity": intensity}))
    months = slice(4, None)  # from the first full month of the ban
    p_base, p_ban = _series(base, "price_domestic", "AUS")[months], _series(ban, "price_domestic", "AUS")[months]
    assert np.all(p_ban < p_base * (1 - 1e-6))
    sales_base, sales_ban = _exports_to(base, "AUS", "ROW")[months], _exports_to(ban, "AUS", "ROW")[months]
    assert np.all(sales_ban > sales_base * (1 + 1e-6))
    assert np.all(_exports_to(ban, "AUS", "CHN")[months] < _exports_to(base, "AUS", "CHN")[months])


def _redirected(**kw) -> float:
    return _run(_world(**kw, measure=IMPORT_BAN)).metrics["redirected_share_12m.ore.AUS"]


@MODEL_RUNS
@given(sigma=st.floats(1.5, 4.0), factor=st.floats(1.5, 3.0), buyer_share=st.floats(0.3, 0.8))
def test_redirection_rises_with_substitutability_between_origins(sigma, factor, buyer_share):
    kw = dict(buyer_use=1000.0, other_use=3000.0, exporter_share_buyer=buyer_share, exporter_share_other=0.1)
    low, high = _redirected(sigma=sigma, **kw), _redirected(sigma=sigma * factor, **kw)
    assert 0 < low < high


@MODEL_RUNS
@given(sigma=st.floats(1.5, 4.0), factor=st.floats(1.5, 3.0), buyer_share=st.floats(0.3, 0.8))
def test_redirection_rises_with_size_of_other_buyers(sigma, factor, buyer_share):
    # Other buyers `factor` times larger, the exporter holding the same share of their purchases, and the
    # other SELLERS unchanged (capacity sized for the larger market in both runs). In these worlds ROW is
    # both the other buyers and the other sellers; growing both at once also makes the rival supply that
    # absorbs the coercer's diverted demand larger, so the rivals' price rises less and the exporter gains
    # less ground in third markets (a general-equilibrium effect that can outweigh the larger market).
    kw = dict(sigma=sigma, buyer_use=1000.0, exporter_share_buyer=buyer_share, exporter_share_other=0.1)
    other_small, other_large = 1000.0, 1000.0 * factor
    rival_capacity = (1000.0 * (1 - buyer_share) + other_large * 0.9) / 0.8

    def redirected(other_use: float) -> float:
        world = _world(other_use=other_use, measure=IMPORT_BAN, **kw)
        world["producers"][1]["capacity"] = rival_capacity
        return _run(world).metrics["redirected_share_12m.ore.AUS"]

    small, large = redirected(other_small), redirected(other_large)
    assert 0 < small < large


def _exporter_world(sigma: float, measure: dict | None) -> dict:
    """CHN produces most of the good and exports to JPN-like buyers (here ROW); AUS is a small rival."""
    return {
        "name": "export_restriction_test",
        "start": START,
        "end": END,
        "coercer": "CHN",
        "targets": ["ROW"],
        "countries": [{"code": "CHN"}, {"code": "AUS"}, {"code": "ROW"}],
        "goods": [
            {
                "id": "ore",
                "reference_price": 100.0,
                "demand_elasticity": 0.2,
                "armington_elasticity": sigma,
                "supply_elasticity": 0.5,
            }
        ],
        "producers": [
            {"name": "CHN", "country": "CHN", "good": "ore", "capacity": 2000 / 0.8, "unit_cost": 50.0},
            {"name": "AUS", "country": "AUS", "good": "ore", "capacity": 200 / 0.8, "unit_cost": 50.0},
        ],
        "user_sectors": [
            {"country": "CHN", "sector": "users", "n_firms": 3, "value_added": 4e5, "use": {"ore": 1000.0}},
            {"country": "ROW", "sector": "users", "n_firms": 3, "value_added": 4.4e5, "use": {"ore": 1200.0}},
        ],
        "sourcing": [
            {"destination": "CHN", "good": "ore", "shares": {"CHN": 1.0}},
            {"destination": "ROW", "good": "ore", "shares": {"CHN": 5 / 6, "AUS": 1 / 6}},
        ],
        "measures": [measure] if measure else [],
    }


def _check_export_restriction(sigma: float, kind: str, strength: float) -> None:
    measure = {"type": kind, "imposer": "CHN", "goods": ["ore"], "start": MEASURE_START}
    measure.update({"rate": strength} if kind == "export_duty" else {"intensity": strength})
    base = _run(_exporter_world(sigma, None))
    hit = _run(_exporter_world(sigma, measure))
    months = slice(4, None)
    inside_base, inside_hit = (
        _series(base, "price_domestic", "CHN")[months],
        _series(hit, "price_domestic", "CHN")[months],
    )
    assert np.all(inside_hit < inside_base * (1 - 1e-6))
    # Outside: the price the other origin's producers get (the world price of the good outside CHN).
    out_base, out_hit = _series(base, "price_domestic", "AUS")[months], _series(hit, "price_domestic", "AUS")[months]
    assert np.all(out_hit > out_base * (1 + 1e-6))


@MODEL_RUNS
@given(
    sigma=st.floats(1.5, 6.0),
    restriction=st.tuples(st.just("export_duty"), st.floats(0.3, 1.0)) | st.tuples(st.just("export_ban"), st.just(1.0)),
)
def test_export_restriction_lowers_price_inside_and_raises_it_outside(sigma, restriction):
    """Export duties of any rate and declared full bans (buyers re-route at once; partial and undeclared
    blocks hold orders instead: the test below)."""
    _check_export_restriction(sigma, *restriction)


@pytest.mark.parametrize("kind", ["export_ban", "informal_restriction"])
def test_a_partial_export_block_rations_the_target_and_buyers_learn_to_buy_elsewhere(kind):
    """The chosen treatment of blocked trade (docs/ODD.md, "Blocked trade"): orders are placed where buyers
    expect delivery; the blocked share of an order (a ban in force for part of a month, a customs hold, a
    refused licence) is held at the border and rationed, not re-ordered elsewhere within the month (orders
    run under contracts; finding and qualifying another supplier takes time; in Sep-Nov 2010 Japanese users
    drew down stocks and were rationed). Buyers learn from it: perceived risk moves their sourcing toward
    the other origin at the finite adjustment rate, so the price outside rises once they have re-sourced.
    (This replaces a strict xfail that asked for the other treatment, re-ordering within the month; in the
    block's first months the rival's price can fall, as the blocked origin's lower price draws orders that
    are then held.)
    """
    strength = 0.8647485384078664
    measure = {"type": kind, "imposer": "CHN", "goods": ["ore"], "start": MEASURE_START, "intensity": strength}
    base = _run(_exporter_world(3.440075432716471, None))
    hit = _run(_exporter_world(3.440075432716471, measure))
    on = slice(4, None)
    rationed = _series(hit, "rationed", "ROW")[on]
    from_chn = _exports_to(hit, "CHN", "ROW")[on]
    # Held share of ROW's orders on CHN = the intensity (nothing else rations in this world).
    np.testing.assert_allclose(rationed / (rationed + from_chn), strength, rtol=1e-6)
    assert _series(base, "rationed", "ROW").max() == 0.0
    # Buyers learn: ROW's purchases from AUS rise over the block, and AUS's price ends above baseline.
    from_aus = _exports_to(hit, "AUS", "ROW")
    assert from_aus[-1] > from_aus[4] * 1.05
    assert _series(hit, "price_domestic", "AUS")[-1] > _series(base, "price_domestic", "AUS")[-1] * (1 + 1e-6)


def test_redirection_is_counted_from_the_coercers_earliest_measure_on_the_good():
    """With several measures on a good, the redirection window opens at the coercer's earliest (here a
    small tariff two months before the ban); another state's measure, earlier still, does not count."""
    tariff = {"type": "import_tariff", "imposer": "CHN", "goods": ["ore"], "targets": ["AUS"], "start": "2020-02-01"}
    tariff["rate"] = 0.02
    other = {"type": "import_tariff", "imposer": "ROW", "goods": ["ore"], "targets": ["AUS"], "start": "2020-01-01"}
    other["rate"] = 0.0
    world = _world(
        sigma=3.0, buyer_use=1000.0, other_use=3000.0, exporter_share_buyer=0.6, exporter_share_other=0.1, measure=None
    )
    world["measures"] = [IMPORT_BAN, tariff, other]
    result = _run(world)
    to_chn, to_row = _exports_to(result, "AUS", "CHN"), _exports_to(result, "AUS", "ROW")
    window = slice(1, 13)  # February 2020 (the tariff) and the eleven months after
    lost = to_chn[0] * 12 - to_chn[window].sum()
    gained = to_row[window].sum() - to_row[0] * 12
    assert lost > 0
    assert result.metrics["redirected_share_12m.ore.AUS"] == pytest.approx(max(gained, 0.0) / lost, rel=1e-9)
