"""Domestic instruments (issue 12, item 1): what a state does to its own producers and market.

A small world built in the test: CHN produces with a formal and an informal class of producers and sells
at home and to JPN; AUS is a small exporter. Each instrument is run against the same world without it
(same seed) and checked by its stated mechanism:

* a crackdown on the informal class raises CHN's domestic price and lowers its exports;
* a production quota binds: the covered producers never produce more than the quota over its period;
* state purchases add to the state's stock and raise the domestic price while they last;
* a production tax raises the domestic price;
* every instrument books its cost to the imposing state: lost margin (quota, crackdown, halt) and
  purchase spending are >= 0, tax revenue is booked as a negative cost;
* bad fields fail validation with one message naming the field and the value.
"""

from __future__ import annotations

import copy

import helpers
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.api import run
from sim.coercion.measures import supply_curve
from sim.market.kernel import LINEAR_ONSET, producer_supply
from sim.world.config import ScenarioConfig
from sim.world.scenario import ScenarioError, validate_config

START, END = "2020-01", "2021-12"
FORMAL, INFORMAL = "CHN licensed mines", "CHN illegal mines"


def _world(measures: list[dict]) -> dict:
    """CHN: 80,000 t/yr licensed + 40,000 t/yr informal capacity; uses 60,000 t, exports ~32,000 t to JPN."""
    return {
        "name": "domestic_test",
        "start": START,
        "end": END,
        "coercer": "CHN",
        "targets": ["JPN"],
        "countries": [{"code": "CHN"}, {"code": "JPN"}, {"code": "AUS"}],
        "goods": [{"id": "ore", "reference_price": 10000.0, "demand_elasticity": 0.2, "armington_elasticity": 3.0}],
        "producers": [
            {
                "name": FORMAL,
                "country": "CHN",
                "good": "ore",
                "capacity": 80000.0,
                "unit_cost": 4000.0,
                "producer_class": "formal",
            },
            {
                "name": INFORMAL,
                "country": "CHN",
                "good": "ore",
                "capacity": 40000.0,
                "unit_cost": 4000.0,
                "producer_class": "informal",
            },
            {"name": "AUS mine", "country": "AUS", "good": "ore", "capacity": 12000.0, "unit_cost": 6000.0},
        ],
        "user_sectors": [
            {"country": "CHN", "sector": "industry", "n_firms": 4, "value_added": 5e10, "use": {"ore": 60000.0}},
            {"country": "JPN", "sector": "industry", "n_firms": 4, "value_added": 3e10, "use": {"ore": 40000.0}},
        ],
        "sourcing": [
            {"destination": "JPN", "good": "ore", "shares": {"CHN": 0.8, "AUS": 0.2}},
            {"destination": "CHN", "good": "ore", "shares": {"CHN": 1.0}},
        ],
        "measures": measures,
    }


def _cfg(measures: list[dict]):
    cfg = helpers.minimal_cfg(["output.figures=false"])
    cfg.scenario = OmegaConf.merge(OmegaConf.structured(ScenarioConfig), _world(measures))
    return cfg


def _run(measures: list[dict]):
    return run(_cfg(measures), seed=1, keep_model=True)


def _series(result, variable: str, country: str = "CHN", good: str = "ore"):
    ts = result.timeseries
    sel = ts[(ts.variable == variable) & (ts.country == country) & (ts.good == good)]
    return sel.set_index("date")["value"].sort_index()


CRACKDOWN = {
    "type": "crackdown",
    "imposer": "CHN",
    "goods": ["ore"],
    "producer_class": "informal",
    "start": "2020-07-01",
    "intensity": 0.8,
    "ramp_months": 3,
}
QUOTA = {
    "type": "production_quota",
    "imposer": "CHN",
    "goods": ["ore"],
    "producer_class": "formal",
    "start": "2020-07-01",
    "end": "2021-06-30",
    "quantity": 50000.0,
}
PURCHASE = {
    "type": "state_purchase",
    "imposer": "CHN",
    "goods": ["ore"],
    "start": "2020-07-01",
    "end": "2020-12-31",
    "quantity": 6000.0,
}
TAX = {
    "type": "production_tax",
    "imposer": "CHN",
    "goods": ["ore"],
    "producer_class": "formal",
    "start": "2020-07-01",
    "per_unit": 1500.0,
}
HALT = {
    "type": "production_halt",
    "imposer": "CHN",
    "goods": ["ore"],
    "producers": [FORMAL],
    "start": "2020-07-15",
    "end": "2020-09-14",
    "intensity": 0.5,
}


@pytest.fixture(scope="module")
def base():
    return _run([])


@pytest.fixture(scope="module")
def everything():
    return _run([CRACKDOWN, QUOTA, PURCHASE, TAX, HALT])


def test_without_domestic_measures_nothing_moves_before_or_after(base):
    price = _series(base, "price_domestic")
    assert np.allclose(price, price.iloc[0], rtol=1e-6)
    assert "domestic_measure_cost" not in set(base.timeseries.variable)


def test_a_crackdown_raises_the_coercers_domestic_price_and_lowers_its_exports(base):
    hit = _run([CRACKDOWN])
    window = slice("2020-09", "2021-12")
    assert (_series(hit, "price_domestic")[window] > 1.05 * _series(base, "price_domestic")[window]).all()
    assert _series(hit, "exports")[window].sum() < 0.97 * _series(base, "exports")[window].sum()
    # The informal class's capacity is what the market no longer sees: 80% of 40,000 t/yr from the ramp's end.
    offered = _series(hit, "capacity_offered")
    assert offered.loc["2020-09":].to_numpy() == pytest.approx((80000 + 0.2 * 40000) / 12, rel=1e-9)
    assert offered.loc[:"2020-06"].to_numpy() == pytest.approx(120000 / 12, rel=1e-9)
    cost = _series(hit, "domestic_cost_crackdown", good="all")
    assert (cost >= 0).all() and cost.loc["2020-09":].gt(0).all()
    assert hit.metrics["domestic_cost.crackdown.CHN"] == pytest.approx(cost.sum())


def test_a_production_quota_binds_and_is_never_exceeded():
    # With the informal class closed, CHN's output is the formal class's: the quota is all it may make.
    closed = {**CRACKDOWN, "intensity": 1.0, "ramp_months": 0, "start": "2020-01-01"}
    res = _run([closed, QUOTA])
    model = res.model
    quota = next(m for m in model.measures if m.classifier["instrument"] == "production_quota")
    produced = _series(res, "production")
    period = produced.loc["2020-07":"2021-06"]
    assert quota.produced == pytest.approx(period.sum(), rel=1e-9)
    assert period.sum() <= 50000.0 * (1 + 1e-9)
    # It binds: without it the formal class would make more than the paced quota.
    free = _series(_run([closed]), "production").loc["2020-07":"2021-06"]
    assert free.sum() > 51000.0
    assert period.sum() == pytest.approx(50000.0, rel=1e-3)
    assert (_series(res, "domestic_cost_production_quota", good="all") >= 0).all()


def test_state_purchases_fill_the_state_stock_and_raise_the_domestic_price(base):
    res = _run([PURCHASE])
    stock = _series(res, "stockpile")
    bought = _series(res, "stockpile_purchase")
    assert stock.loc[:"2020-06"].eq(0).all()
    assert stock.iloc[-1] == pytest.approx(bought.sum(), rel=1e-9)
    assert 0.9 * 6000.0 <= stock.iloc[-1] <= 6000.0 * (1 + 1e-9)
    assert res.metrics["state_purchased.ore.CHN"] == pytest.approx(stock.iloc[-1])
    assert res.metrics["state_stock_end.ore.CHN"] == pytest.approx(stock.iloc[-1])
    during = slice("2020-07", "2020-12")
    assert (_series(res, "price_domestic")[during] > _series(base, "price_domestic")[during]).all()
    spend = _series(res, "domestic_cost_state_purchase", good="all")
    assert (spend >= 0).all()
    assert spend.sum() == pytest.approx(res.metrics["domestic_cost.state_purchase.CHN"])
    assert spend.sum() >= 10000.0 * stock.iloc[-1] * 0.99  # paid at least about the reference price


def test_a_state_purchase_budget_buys_about_its_worth_at_the_price_before_it(base):
    res = _run([{**PURCHASE, "quantity": 0.0, "budget": 3.0e7}])
    stock = _series(res, "stockpile").iloc[-1]
    assert 0.9 * 3000.0 <= stock <= 3000.0 * (1 + 1e-9)  # US$30m at US$10,000/t


def test_a_production_tax_raises_the_domestic_price_and_books_revenue_as_a_negative_cost(base):
    res = _run([TAX])
    after = slice("2020-07", "2021-12")
    assert (_series(res, "price_domestic")[after] > 1.02 * _series(base, "price_domestic")[after]).all()
    cost = _series(res, "domestic_cost_production_tax", good="all")
    assert (cost.loc["2020-07":] < 0).all() and cost.loc[:"2020-06"].eq(0).all()


def test_a_halt_removes_the_named_producers_share_for_its_days(base):
    res = _run([HALT])
    offered = _series(res, "capacity_offered")
    full = 120000 / 12
    # 15 Jul - 14 Sep: 17/31 of July, all of August, 14/30 of September, half the formal capacity.
    expected = {
        "2020-07": full - 0.5 * 80000 / 12 * 17 / 31,
        "2020-08": full - 0.5 * 80000 / 12,
        "2020-09": full - 0.5 * 80000 / 12 * 14 / 30,
        "2020-10": full,
    }
    for month, value in expected.items():
        assert offered.loc[month].iloc[0] == pytest.approx(value, rel=1e-9)
    assert (_series(res, "price_domestic").loc["2020-08"] > _series(base, "price_domestic").loc["2020-08"]).all()


def test_every_instrument_books_its_cost_with_its_sign(everything):
    m = everything.metrics
    for kind in ("crackdown", "production_quota", "production_halt", "state_purchase"):
        assert m[f"domestic_cost.{kind}.CHN"] >= 0, kind
    assert m["domestic_cost.production_tax.CHN"] < 0
    parts = sum(
        m[f"domestic_cost.{k}.CHN"]
        for k in ("crackdown", "production_quota", "production_halt", "state_purchase", "production_tax")
    )
    assert m["domestic_cost.total.CHN"] == pytest.approx(parts)
    total = _series(everything, "domestic_measure_cost", good="all")
    assert total.sum() == pytest.approx(m["domestic_cost.total.CHN"])
    # Countries without domestic instruments book nothing.
    assert _series(everything, "domestic_measure_cost", country="JPN", good="all").eq(0).all()
    assert not any(k.endswith(".JPN") for k in m if k.startswith("domestic_cost"))


@helpers.model_runs()
@given(
    quantity=st.floats(20000.0, 90000.0),
    intensity=st.floats(0.0, 1.0),
    tax=st.floats(0.0, 3000.0),
)
def test_property_quota_output_never_above_the_quota_and_cost_signs_hold(quantity, intensity, tax):
    measures = [{**QUOTA, "quantity": quantity}, {**TAX, "per_unit": tax}, {**CRACKDOWN, "intensity": intensity}]
    res = _run(measures)
    quota = next(m for m in res.model.measures if m.classifier["instrument"] == "production_quota")
    assert quota.produced <= quantity * (1 + 1e-9)
    for m in res.model.domestic:
        if m.classifier["instrument"] == "production_tax":
            assert (m.cost <= 0).all()
        else:
            assert (m.cost >= 0).all()


@given(
    price=st.floats(0.0, 50000.0),
    capacity=st.floats(0.0, 1e5),
    unit_cost=st.floats(0.0, 9000.0),
    span=st.floats(1.0, 20000.0),
    eps=st.floats(0.1, 3.0),
)
def test_the_cost_accounting_supply_curve_is_the_kernels(price, capacity, unit_cost, span, eps):
    """The cost accounting's supply curve (compiled over producers) is the kernel's, and both are the
    documented curve: nothing at or below unit cost, the chord over the first LINEAR_ONSET of the span,
    capacity x u**eps above it, full capacity from the full-capacity price on."""
    full = unit_cost + span
    expected, _ = producer_supply(price, capacity, unit_cost, full, eps)
    u = (price - unit_cost) / span
    if capacity <= 0.0 or price <= unit_cost:
        formula = 0.0
    elif u >= 1.0:
        formula = capacity
    elif u < LINEAR_ONSET:
        formula = capacity * LINEAR_ONSET ** (eps - 1.0) * u
    else:
        formula = capacity * u**eps
    got = supply_curve(
        np.array([price]), np.array([capacity]), np.array([unit_cost]), np.array([full]), np.array([eps])
    )
    assert got[0] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert got[0] == pytest.approx(formula, rel=1e-9, abs=1e-9)
    # scalars and broadcasting, as NumPy expressions take them
    assert supply_curve(price, capacity, unit_cost, full, eps) == pytest.approx(got[0], rel=1e-15, abs=0.0)
    assert supply_curve(np.full(3, price), capacity, unit_cost, full, eps) == pytest.approx(np.full(3, got[0]))


# ---------------------------------------------------------------------------------------------- validation
def _bad(change: dict, index: int = 0):
    measure = copy.deepcopy([CRACKDOWN, QUOTA, PURCHASE, TAX, HALT][index])
    measure.update(change)
    return _cfg([measure])


@pytest.mark.parametrize(
    ("index", "change", "field", "value"),
    [
        (4, {"producers": ["Nobody's mine"]}, "scenario.measures[0].producers[0]", "Nobody's mine"),
        (4, {"producers": ["AUS mine"]}, "scenario.measures[0].producers[0]", "AUS mine"),
        (0, {"producer_class": "artisanal"}, "scenario.measures[0].producer_class", "artisanal"),
        (0, {"producer_class": ""}, "scenario.measures[0].producer_class", ""),
        (1, {"quantity": -5.0}, "scenario.measures[0].quantity", -5.0),
        (2, {"quantity": -1.0}, "scenario.measures[0].quantity", -1.0),
        (2, {"budget": -1.0, "quantity": 0.0}, "scenario.measures[0].budget", -1.0),
        (2, {"budget": 1e6}, "scenario.measures[0].quantity", 6000.0),
        (0, {"intensity": 1.5}, "scenario.measures[0].intensity", 1.5),
        (4, {"intensity": -0.2}, "scenario.measures[0].intensity", -0.2),
        (0, {"start": "2031-01-01"}, "scenario.measures[0].start", "2031-01-01"),
        (4, {"end": "2019-06-30"}, "scenario.measures[0].end", "2019-06-30"),
        (0, {"ramp_months": -1}, "scenario.measures[0].ramp_months", -1),
        (3, {"per_unit": -10.0}, "scenario.measures[0].per_unit", -10.0),
        (3, {"rate": 1.0}, "scenario.measures[0].rate", 1.0),
        (0, {"targets": ["JPN"]}, "scenario.measures[0].targets", ["JPN"]),
        (1, {"budget": 5.0}, "scenario.measures[0].budget", 5.0),
        (1, {"per_unit": 5.0}, "scenario.measures[0].per_unit", 5.0),
        (2, {"goods": ["ore", "ore"]}, "scenario.measures[0].goods", ["ore", "ore"]),
    ],
)
def test_bad_domestic_fields_fail_with_the_field_and_the_value(index, change, field, value):
    with pytest.raises(ScenarioError) as err:
        validate_config(_bad(change, index))
    msg = str(err.value)
    assert msg.startswith(field), msg
    assert repr(value) in msg or str(value) in msg, msg


def test_a_crackdown_of_intensity_zero_is_allowed_and_changes_nothing(base):
    """Intensity 0 is the neutral setting a sweep of the assumption needs."""
    res = _run([{**CRACKDOWN, "intensity": 0.0}])
    np.testing.assert_allclose(_series(res, "price_domestic"), _series(base, "price_domestic"), rtol=1e-12)
    assert res.metrics["domestic_cost.crackdown.CHN"] == 0.0


def test_domestic_fields_on_a_trade_measure_are_refused():
    cfg = _cfg(
        [{"type": "export_ban", "imposer": "CHN", "goods": ["ore"], "start": "2020-03-01", "producers": [FORMAL]}]
    )
    with pytest.raises(ScenarioError, match=r"^scenario\.measures\[0\]\.producers: .*only domestic instruments"):
        validate_config(cfg)


@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(0, 4))
def test_capacity_cuts_and_output_caps_are_the_numpy_formulation(seed, n_producers, n_covered):
    """The compiled steps of the capacity cuts and the production quota (``_CapacityCut.apply_domestic``,
    ``ProductionQuota.apply_domestic``) write and return what the NumPy expressions they replaced did:
    the withheld capacity, the producers' running shares and their output caps."""
    from sim.coercion.measures import _cap_output, _cut_capacity

    rng = np.random.default_rng(seed)
    P = n_producers
    p = rng.choice(P, min(n_covered, P), replace=False).astype(np.int64)
    capacity = np.where(rng.random(P) < 0.2, 0.0, rng.exponential(10.0, P))
    if rng.random() < 0.2:
        capacity[p] = 0.0  # none of the covered producers may run: the cap is split equally
    share0 = np.where(rng.random(P) < 0.5, 1.0, rng.uniform(0.0, 1.0, P))
    cap0 = np.where(rng.random(P) < 0.5, np.inf, rng.uniform(0.0, 12.0, P))
    s, cap = rng.uniform(0.0, 1.0), rng.uniform(0.0, 20.0)

    share, want_share = share0.copy(), share0.copy()
    withheld = _cut_capacity(p, capacity, share, s)
    want_withheld = capacity[p] * want_share[p] * s
    want_share[p] *= 1.0 - s
    np.testing.assert_allclose(withheld, want_withheld, rtol=1e-12)
    np.testing.assert_allclose(share, want_share, rtol=1e-12)

    output_cap, want_cap = cap0.copy(), cap0.copy()
    withheld = _cap_output(p, capacity, share0, output_cap, cap)
    run = capacity[p] * share0[p]
    total = float(run.sum())
    mine = cap * (run / total if total > 0 else np.full(len(p), 1.0 / max(len(p), 1)))
    want_withheld = np.maximum(np.minimum(run, want_cap[p]) - mine, 0.0)
    want_cap[p] = np.minimum(want_cap[p], mine)
    np.testing.assert_allclose(withheld, want_withheld, rtol=1e-12, atol=1e-12 * cap)
    np.testing.assert_allclose(output_cap, want_cap, rtol=1e-12)
