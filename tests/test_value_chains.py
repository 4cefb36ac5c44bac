"""Value chains (sim/model/chains.py): producers that buy inputs, input stocks, by-products, losses by stage.

The world is ``tests/configs/scenario/chain_toy.yaml``: ore is mined in CHN and the USA, separated
into oxide only in CHN (2 t of ore per t of oxide), and made into magnets in CHN, JPN and the USA
(0.3 t of oxide per t of magnet, two months of oxide in stock at baseline); gallium is recovered
from CHN's alumina (5e-5 t per t). Runs take about a second each.

Timing under test (docs/ODD.md, §7.9 "Value chains"): inputs delivered in month t are usable from
month t + 1; a producer's output in month t is limited by its input stock at the start of month t
over the coefficient, and its unit cost follows its input prices of month t - 1. A ban that stops a producer's input deliveries from month t0 therefore leaves its
output in month t0 untouched (it works from stock), cuts it from month t0 + 1, and stops it once the
stock is gone (about ``input_inventory_months`` months after the ban).
"""

from __future__ import annotations

from pathlib import Path

import helpers
import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.api import compose_config
from sim.model.model import CoercionModel
from sim.world.scenario import ScenarioError

TEST_CONFIGS = Path(__file__).resolve().parent / "configs"
CHAIN_YAML = TEST_CONFIGS / "scenario" / "chain_toy.yaml"
BAN_MONTH = 12  # 2021-01
OXIDE_BAN_TO_USA = (
    '+scenario.measures=[{type: export_ban, imposer: CHN, goods: [oxide], targets: [USA], start: "2021-01-01"}]'
)
ORE_BAN_TO_USA = (
    '+scenario.measures=[{type: export_ban, imposer: CHN, goods: [ore], targets: [USA], start: "2021-01-01"}]'
)
MAGNET_OXIDE = 0.3  # t of oxide per t of magnet (chain_toy.yaml)


def chain_run(overrides=(), seed: int = 1):
    return sim.run("chain_toy", list(overrides), seed=seed, config_dir=TEST_CONFIGS, keep_model=True)


def series(ts, variable: str, good: str, country: str) -> np.ndarray:
    sel = (ts.variable == variable) & (ts.good == good) & (ts.country == country)
    return ts[sel].sort_values("step").value.to_numpy()


@pytest.fixture(scope="module")
def baseline():
    return chain_run()


@pytest.fixture(scope="module")
def oxide_ban():
    return chain_run([OXIDE_BAN_TO_USA])


# ------------------------------------------------------------------------------------------------
# Baseline
# ------------------------------------------------------------------------------------------------
def test_baseline_is_stationary(baseline):
    """Without measures the chain stays at its baseline: reference prices, constant input stocks,
    no lost output, input purchases equal to output x coefficient."""
    ts, model = baseline.timeseries, baseline.model
    w = model.world
    for g, good in enumerate(w.goods):
        p = ts[(ts.variable == "price_domestic") & (ts.good == good)].value.to_numpy()
        np.testing.assert_allclose(p, w.reference_price[g], rtol=1e-6)
    assert np.nanmax(ts[ts.variable == "lost_output"].value.to_numpy()) < 1e-9
    stock = ts[(ts.variable == "input_inventory") & (ts.good == "oxide") & (ts.country == "USA")].value.to_numpy()
    np.testing.assert_allclose(stock, stock[0], rtol=1e-6)
    # Two months of the USA magnet makers' oxide use (their baseline output is the demand on them).
    use = series(ts, "input_use", "oxide", "USA")
    np.testing.assert_allclose(stock[0], 2.0 * use[0], rtol=1e-9)
    np.testing.assert_allclose(use[0], MAGNET_OXIDE * series(ts, "production", "magnet", "USA")[0], rtol=1e-6)
    rows = model.chains.input_rows
    np.testing.assert_allclose(model.delivered_to_firms[rows], model.input_use[rows], rtol=1e-6)


def test_input_buyers_are_not_user_firms(baseline):
    """Producers' input buyers trade on the markets but are not user firms: no UserFirm agents, no
    value added in output_loss / value_added, one per producer of a good with inputs."""
    model = baseline.model
    w = model.world
    with_inputs = [i for i, g in enumerate(w.goods) if g in ("oxide", "magnet")]
    assert len(w.firm_country) - w.n_user_firms == int(np.isin(w.producer_good, with_inputs).sum())
    assert len(model.firms) == w.n_user_firms
    usa_magnets = next(p for p in model.producers if p.name == "USA magnets")
    assert usa_magnets.input_inventory == pytest.approx({"oxide": 2.0 * MAGNET_OXIDE * usa_magnets.output}, rel=1e-6)
    assert usa_magnets.usable_capacity == pytest.approx(usa_magnets.capacity, rel=1e-12)
    assert next(p for p in model.producers if p.name == "USA mine").input_inventory == {}
    va = helpers.pivot(baseline.timeseries, "value_added")
    user_va = np.bincount(w.firm_country[: w.n_user_firms], w.firm_value_added[: w.n_user_firms], len(w.countries))
    np.testing.assert_allclose(va.iloc[0][list(w.countries)].to_numpy(), user_va, rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# A processing chokepoint
# ------------------------------------------------------------------------------------------------
def test_ban_on_processed_good_hurts_a_country_that_mines_the_raw_one(baseline, oxide_ban):
    """The USA mines ore but cannot separate it: a CHN ban on oxide to the USA stops US magnet
    making and costs US motor makers output, while a ban on ore, which the USA mines, costs nothing."""
    ts = oxide_ban.timeseries
    magnets = series(ts, "production", "magnet", "USA")
    base = series(baseline.timeseries, "production", "magnet", "USA")
    assert magnets[BAN_MONTH + 6] < 0.01 * base[BAN_MONTH + 6]
    assert series(ts, "production", "ore", "USA")[BAN_MONTH + 6] > 0
    loss = helpers.pivot(ts, "output_loss")["USA"].to_numpy()
    assert loss[: BAN_MONTH + 1].sum() == pytest.approx(0.0, abs=1.0)
    assert loss[BAN_MONTH + 3] > 0.01 * helpers.pivot(ts, "value_added")["USA"].iloc[0]
    assert oxide_ban.metrics["lost_output.magnet.USA"] > 0
    assert oxide_ban.metrics["lost_output_share.magnet.USA"] > 0.3
    assert oxide_ban.metrics["output_loss_sector.USA.motors"] > 0
    ore_ban = chain_run([ORE_BAN_TO_USA])
    assert ore_ban.metrics["output_loss.USA"] == pytest.approx(0.0, abs=1.0)
    assert ore_ban.metrics.get("lost_output.magnet.USA", 0.0) == pytest.approx(0.0, abs=1e-6)


def test_upstream_shortage_reaches_downstream_output_after_the_stock_runs_down(baseline, oxide_ban):
    """Timing: the month the oxide stops, US magnet makers produce from stock as before; from the
    next month their output is limited by the stock at the start of the month over the
    coefficient; with two months of stock it is nil within three months."""
    ts = oxide_ban.timeseries
    base = series(baseline.timeseries, "production", "magnet", "USA")
    made = series(ts, "production", "magnet", "USA")
    np.testing.assert_allclose(made[: BAN_MONTH + 1], base[: BAN_MONTH + 1], rtol=1e-6)
    assert made[BAN_MONTH + 1] < 0.95 * base[BAN_MONTH + 1]
    assert made[BAN_MONTH + 3] == pytest.approx(0.0, abs=1e-6 * base[0])
    stock = series(ts, "input_inventory", "oxide", "USA")
    usable = series(ts, "usable_capacity", "magnet", "USA")
    capacity = series(ts, "capacity", "magnet", "USA")
    np.testing.assert_allclose(usable[1:], np.minimum(capacity[1:], stock[:-1] / MAGNET_OXIDE), rtol=1e-9, atol=1e-6)
    assert np.all(made <= usable * (1 + 1e-8) + 1e-9)
    # Upstream, the US mine keeps selling ore to CHN: the chokepoint is processing, not mining.
    assert series(ts, "exports", "ore", "USA")[BAN_MONTH + 6] > 0


def test_input_costs_pass_through_to_downstream_prices():
    """A 100% CHN export duty on oxide raises what JPN and US magnet makers pay for it; from the next
    month their unit cost moves toward 0.3 x that rise at the pace of adaptive expectations
    (``model.expectation_memory_months``), so their magnet prices rise more than CHN's, whose makers pay
    the domestic price, and CHN's magnet makers gain sales."""
    duty = chain_run(
        ['+scenario.measures=[{type: export_duty, imposer: CHN, goods: [oxide], rate: 1.0, start: "2021-01-01"}]']
    )
    ts = duty.timeseries
    jpn, chn = series(ts, "price_domestic", "magnet", "JPN"), series(ts, "price_domestic", "magnet", "CHN")
    assert jpn[BAN_MONTH] == pytest.approx(jpn[0], rel=1e-6)  # costs follow last month's input prices
    later = BAN_MONTH + 18
    assert jpn[later] > 1.05 * jpn[0]
    assert jpn[later] / jpn[0] > chn[later] / chn[0]
    assert series(ts, "production", "magnet", "CHN")[later] > series(ts, "production", "magnet", "CHN")[0]
    assert duty.metrics["lost_output.magnet.JPN"] == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# Mass balance of input stocks
# ------------------------------------------------------------------------------------------------
def test_input_stocks_balance_month_by_month():
    """Start + deliveries - use = end for every input buyer's row, every month, and a month's use
    never exceeds the stock held at its start (deliveries count from the next month)."""
    cfg = compose_config("chain_toy", [OXIDE_BAN_TO_USA, "scenario.end=2021-12"], config_dir=TEST_CONFIGS)
    model = CoercionModel(cfg)
    rows = model.chains.input_rows
    producer = model.chains.input_row_producer
    while model.running:
        start = model.inventory[rows].copy()
        model.step()
        end, delivered, use = model.inventory[rows], model.delivered_to_firms[rows], model.input_use[rows]
        np.testing.assert_allclose(end, start + delivered - use, rtol=1e-12, atol=1e-9)
        assert np.all(use <= start * (1 + 1e-8) + 1e-9)
        assert np.all(end >= 0)
        # Inputs used in proportion to the producer's sales.
        sold = model.producer_output[producer]
        assert np.all((use > 0) == (sold > 0))


def test_trade_balances_with_producers_buying(oxide_ban):
    """Producers' input purchases are deliveries like any other: what each country received of a good
    is its inflow in flows.parquet, what its producers sold is its outflow, and the world balances."""
    ts, flows = oxide_ban.timeseries, oxide_ban.flows
    scale = float(ts[ts.variable == "demand"].value.max())
    for good in ("ore", "oxide", "magnet", "alumina", "gallium"):
        delivered, made = helpers.pivot(ts, "delivered", good), helpers.pivot(ts, "production", good)
        inflow = helpers.flow_matrix(flows, "destination", good)
        outflow = helpers.flow_matrix(flows, "origin", good)
        d, i = delivered.align(inflow, fill_value=0.0)
        np.testing.assert_allclose(d.fillna(0).to_numpy(), i.fillna(0).to_numpy(), atol=1e-6 * scale)
        p, o = made.align(outflow, fill_value=0.0)
        np.testing.assert_allclose(p.fillna(0).to_numpy(), o.fillna(0).to_numpy(), atol=1e-6 * scale)
    # Ore is bought only by CHN's separators: their input use is what CHN's ore deliveries feed.
    assert helpers.pivot(ts, "delivered", "ore")["CHN"].iloc[0] == pytest.approx(
        helpers.pivot(ts, "input_use", "ore")["CHN"].iloc[0], rel=1e-6
    )


# ------------------------------------------------------------------------------------------------
# By-products
# ------------------------------------------------------------------------------------------------
@helpers.model_runs()
@given(
    recovery=st.floats(4.5e-5, 2e-4),
    cut=st.floats(-0.9, 0.0),
    start=st.integers(1, 30),
    ban=st.booleans(),
)
def test_byproduct_never_outgrows_its_host(recovery, cut, start, ban):
    """Gallium sold in CHN never exceeds CHN's alumina output of the month before x recovery, whatever
    the recovery rate and however far the host's output falls (its users' requirement cut, an
    export ban on alumina)."""
    start_month = f"{2020 + start // 12}-{start % 12 + 1:02d}"
    overrides = [
        f"scenario.goods.4.byproduct_of.recovery={recovery!r}",
        f"+scenario.requirement_changes=[{{country: CHN, sector: smelting, good: alumina, change: {cut!r}, "
        f'start: "{start_month}", ramp_months: 3}}]',
    ]
    if ban:
        overrides.append(
            '+scenario.measures=[{type: export_ban, imposer: CHN, goods: [alumina], targets: [JPN], start: "2021-01-01"}]'
        )
    result = chain_run(overrides)
    ts, w = result.timeseries, result.model.world
    host = series(ts, "production", "alumina", "CHN")
    gallium = series(ts, "production", "gallium", "CHN")
    usable = series(ts, "usable_capacity", "gallium", "CHN")
    host_before = np.r_[w.baseline_output[w.goods.index("alumina"), w.countries.index("CHN")], host[:-1]]
    limit = recovery * host_before
    assert np.all(usable <= limit * (1 + 1e-9) + 1e-12)
    assert np.all(gallium <= limit * (1 + 1e-8) + 1e-12)


def test_byproduct_capacity_follows_a_host_cut():
    """Halving CHN's alumina use halves the gallium CHN can recover: its sales fall below the
    nameplate-free baseline and the lost output is reported."""
    cut = chain_run(
        [
            '+scenario.requirement_changes=[{country: CHN, sector: smelting, good: alumina, change: -0.6, start: "2021-01"}]'
        ]
    )
    ts = cut.timeseries
    gallium = series(ts, "production", "gallium", "CHN")
    assert gallium[-1] < 0.8 * gallium[0]
    assert cut.metrics["lost_output.gallium.CHN"] > 0


# ------------------------------------------------------------------------------------------------
# No chain, no change
# ------------------------------------------------------------------------------------------------
def _with_separate_chain(d: dict) -> None:
    """minimal.yaml plus a chain (feed -> widget, and a by-product) that shares nothing with ore."""
    d["goods"] += [
        {"id": "feed", "reference_price": 100.0, "demand_elasticity": 0.2, "armington_elasticity": 3.0},
        {
            "id": "widget",
            "reference_price": 500.0,
            "demand_elasticity": 0.2,
            "armington_elasticity": 3.0,
            "inputs": {"feed": 2.0},
        },
        {
            "id": "trace",
            "reference_price": 9000.0,
            "demand_elasticity": 0.2,
            "armington_elasticity": 3.0,
            "byproduct_of": {"good": "feed", "recovery": 0.01},
        },
    ]
    d["producers"] += [
        {"country": "AUS", "good": "feed", "capacity": 50000, "unit_cost": 50},
        {"country": "JPN", "good": "widget", "capacity": 12000, "unit_cost": 300},
        {"country": "AUS", "good": "trace", "capacity": 300, "unit_cost": 5000},
    ]
    d["user_sectors"].append(
        {
            "country": "JPN",
            "sector": "assembly",
            "n_firms": 3,
            "value_added": 1.0e9,
            "use": {"widget": 9000, "trace": 100},
            # No dispersion: the sector draws no random numbers, so ore's firms draw what they did.
            "size_dispersion": 0.0,
            "inventory_dispersion": 0.0,
        }
    )
    d["sourcing"] += [
        {"destination": "JPN", "good": "feed", "shares": {"AUS": 1.0}},
        {"destination": "JPN", "good": "trace", "shares": {"AUS": 1.0}},
    ]


def test_a_chain_elsewhere_leaves_other_goods_as_they_were(tmp_path):
    """Adding a separate value chain to minimal changes nothing for ore (same seed): chains enter
    only through the goods that declare them, and firms' random draws are unchanged."""
    helpers.write_scenario(tmp_path, "minimal_plus_chain", _with_separate_chain)
    plain = helpers.cached_run("minimal")
    chained = sim.run("minimal_plus_chain", [], seed=1, config_dir=tmp_path)
    assert chained.metrics["lost_output.widget.JPN"] == pytest.approx(0.0, abs=1e-6)

    def ore(ts):
        d = ts[ts.good == "ore"].sort_values(["variable", "step", "country"])
        return d.assign(variable=d.variable.astype(str), country=d.country.astype(str))

    a, b = ore(plain.timeseries), ore(chained.timeseries)
    assert list(zip(a.variable, a.step, a.country, strict=True)) == list(
        zip(b.variable, b.step, b.country, strict=True)
    )
    np.testing.assert_allclose(a.value.to_numpy(), b.value.to_numpy(), rtol=1e-12, atol=0)
    for key in ("output_loss.CHN", "peak_export_price_ratio.ore", "shortage.ore.CHN"):
        assert plain.metrics[key] == pytest.approx(chained.metrics[key], rel=1e-12, abs=1e-9)


def test_no_chain_no_chain_state():
    model = helpers.cached_run("minimal").model
    assert model.chains is None
    assert model.world.n_user_firms == len(model.world.firm_country)
    assert "lost_output" not in set(helpers.cached_run("minimal").timeseries.variable.astype(str))


def test_supply_at_prices_compiled_equals_python():
    """The compiled helper gives what its pure-Python body gives (NaN prices offer nothing)."""
    from sim.model.chains import supply_at_prices

    rng = np.random.default_rng(3)
    P, G, C = 40, 3, 4
    price = rng.uniform(50, 300, size=(G, C))
    price[0, 1] = np.nan
    args = (
        price,
        rng.uniform(0, 10, P),
        rng.uniform(0, 100, P),
        rng.uniform(150, 250, P),
        rng.uniform(0.3, 3, P),
        np.arange(0, P, 2),
        rng.integers(0, G, P),
        rng.integers(0, C, P),
    )
    np.testing.assert_allclose(supply_at_prices(*args), supply_at_prices.py_func(*args), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------
def _chain_dict() -> dict:
    return yaml.safe_load(CHAIN_YAML.read_text())


def _goods(d: dict) -> dict:
    return {g["id"]: g for g in d["goods"]}


def _cycle(d):
    _goods(d)["ore"]["inputs"] = {"magnet": 0.1}


def _unknown_input(d):
    _goods(d)["magnet"]["inputs"] = {"oxyde": 0.3}


def _negative(d):
    _goods(d)["magnet"]["inputs"] = {"oxide": -0.3}


def _self_input(d):
    _goods(d)["oxide"]["inputs"] = {"oxide": 0.5}


def _unknown_host(d):
    _goods(d)["gallium"]["byproduct_of"] = {"good": "bauxite", "recovery": 5e-5}


def _zero_recovery(d):
    _goods(d)["gallium"]["byproduct_of"]["recovery"] = 0.0


def _low_recovery(d):
    _goods(d)["gallium"]["byproduct_of"]["recovery"] = 1e-5


def _thin_stock(d):
    _goods(d)["magnet"]["input_inventory_months"] = 0.5


def _no_sourcing(d):
    d["sourcing"] = [s for s in d["sourcing"] if not (s["destination"] == "USA" and s["good"] == "oxide")]


BAD_CHAINS = {
    "cycle": (_cycle, r"^scenario\.goods: the inputs form a cycle (ore|magnet|oxide) -> .* -> .*; allowed"),
    "unknown_input": (_unknown_input, r"^scenario\.goods\[2\]\.inputs: unknown good 'oxyde'"),
    "negative": (_negative, r"^scenario\.goods\[2\]\.inputs\.oxide: -0\.3 is invalid; allowed: > 0"),
    "self_input": (_self_input, r"^scenario\.goods\[1\]\.inputs: 'oxide' is invalid; allowed: goods other than"),
    "unknown_host": (_unknown_host, r"^scenario\.goods\[4\]\.byproduct_of\.good: unknown good 'bauxite'"),
    "zero_recovery": (_zero_recovery, r"^scenario\.goods\[4\]\.byproduct_of\.recovery: 0\.0 is invalid; allowed: > 0"),
    "low_recovery": (_low_recovery, r"^scenario\.goods\[4\]\.byproduct_of: baseline output of gallium in CHN"),
    "thin_stock": (_thin_stock, r"^scenario\.goods\[2\]\.input_inventory_months: 0\.5 is invalid"),
    "no_sourcing": (
        _no_sourcing,
        r"^scenario\.sourcing: no entry for destination USA, good oxide, which the producers",
    ),
}


def test_a_listed_producer_without_capacity_needs_no_input_sourcing(tmp_path):
    """A magnet producer listed with capacity 0 never produces: it gets no input buyer and needs no
    sourcing entry for oxide in its country."""
    d = _chain_dict()
    d["name"] = "idle_maker"
    d["producers"].append(
        {"name": "AUS magnets", "country": "AUS", "good": "magnet", "capacity": 0, "unit_cost": 45000}
    )
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "idle_maker.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    model = CoercionModel(compose_config("idle_maker", ["scenario.end=2020-03"], config_dir=tmp_path))
    model.run()
    assert np.isfinite(model.inventory).all()
    assert len(model.world.firm_country) - model.world.n_user_firms == 4  # CHN oxide; CHN, JPN, USA magnets


@pytest.mark.parametrize("name", sorted(BAD_CHAINS))
def test_bad_value_chains_are_refused_with_the_field(tmp_path, name):
    mutate, pattern = BAD_CHAINS[name]
    d = _chain_dict()
    d["name"] = f"bad_{name}"
    mutate(d)
    path = tmp_path / "scenario" / f"bad_{name}.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ScenarioError, match=pattern):
        CoercionModel(compose_config(f"bad_{name}", [], config_dir=tmp_path))


def test_cycle_message_names_every_good_in_it(tmp_path):
    d = _chain_dict()
    _cycle(d)
    d["name"] = "bad_cycle_names"
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "bad_cycle_names.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        CoercionModel(compose_config("bad_cycle_names", [], config_dir=tmp_path))
    message = str(info.value)
    assert all(g in message for g in ("ore", "oxide", "magnet"))
