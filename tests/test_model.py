"""The model on the ``minimal`` scenario: determinism, memory, Mesa agents, baseline and mechanisms.

``minimal``: CHN (the coercer, 120 kt/yr) and AUS (12 kt/yr) mine one good, ``ore``; CHN and JPN
firms use it, JPN buying ~80% from CHN. CHN caps its exports at 16 kt for 2021 (months 12-23, about
half its baseline exports); an AUS expansion project (20 kt/yr, 18-month build, 6-month ramp) can
start when prices justify it.
"""

from __future__ import annotations

import gc
import weakref

import helpers
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.api
from sim.api import run
from sim.model.agents import ProducerFirm, StateAgent, UserFirm
from sim.model.model import CoercionModel
from sim.reporting.recording import VARIABLES
from sim.world.scenario import RECORDABLE_VARIABLES

COUNTRIES = ["CHN", "JPN", "AUS"]
QUOTA_MONTHS = range(12, 24)  # 2021-01 .. 2021-12
BEFORE_QUOTA = range(0, 12)
QUOTA_QUANTITY = 16000.0
NEVER = np.iinfo(np.int64).max


@pytest.fixture(scope="module")
def quota_run():
    """``minimal`` as shipped, seed 1, model kept."""
    return helpers.cached_run()


@pytest.fixture(scope="module")
def baseline_run():
    """``minimal`` without measures, seed 1, model kept."""
    return helpers.cached_run("minimal", ("scenario.measures=[]",), 1)


def _assert_close(a, b, rtol=1e-9, atol=1e-9, what=""):
    a, b = a.align(b, join="outer", fill_value=0.0)
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=atol, err_msg=what)


# ------------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_results():
    a = run("minimal", seed=3)
    b = run("minimal", seed=3)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(a.flows, b.flows, check_exact=True)
    assert helpers.metrics_without_wall_time(a.metrics) == helpers.metrics_without_wall_time(b.metrics)
    assert set(a.metrics) - set(helpers.metrics_without_wall_time(a.metrics)) <= helpers.WALL_TIME_METRICS


def test_different_seeds_give_different_results(quota_run):
    other = run("minimal", seed=2, keep_model=True)
    w1, w2 = quota_run.model.world, other.model.world
    # Firm heterogeneity is seeded: sizes and sourcing shares differ, sector totals do not.
    assert not np.array_equal(w1.firm_value_added, w2.firm_value_added)
    assert not np.array_equal(w1.base_shares, w2.base_shares)
    np.testing.assert_allclose(w1.firm_value_added.sum(), w2.firm_value_added.sum(), rtol=1e-12)
    assert not quota_run.timeseries.equals(other.timeseries)
    assert not quota_run.flows.equals(other.flows)
    assert (
        quota_run.metrics["coercer_import_share_start.ore.JPN"] != other.metrics["coercer_import_share_start.ore.JPN"]
    )


def test_rng_argument_overrides_the_config_seed():
    m1 = CoercionModel(helpers.minimal_cfg(["seed=5"]))
    m2 = CoercionModel(helpers.minimal_cfg(), rng=5)
    np.testing.assert_array_equal(m1.world.firm_value_added, m2.world.firm_value_added)
    np.testing.assert_array_equal(m1.world.base_weights, m2.world.base_weights)


def _next_events(model) -> list[float]:
    return sorted(e.time for e in model._event_list._events if not e.CANCELED)


def test_run_advances_the_months_as_mesas_step_does():
    """``run()`` advances the months itself (not through Mesa's event per month): the same records,
    Mesa's clock where Mesa's own loop leaves it, and ``step()`` working after it as before."""
    cfg = helpers.minimal_cfg(["seed=3"])
    direct = CoercionModel(cfg)
    seen = []
    direct.run(progress=lambda step, n: seen.append((step, n, direct.steps, direct.time)))
    stepped = CoercionModel(cfg)
    while stepped.running:
        stepped.step()
    assert direct.recorder.timeseries().equals(stepped.recorder.timeseries())
    assert direct.recorder.flows_table().equals(stepped.recorder.flows_table())
    n = stepped.n_steps
    assert (
        (direct.steps, direct.time, direct.step_index)
        == (stepped.steps, stepped.time, stepped.step_index)
        == (
            n,
            float(n),
            n - 1,
        )
    )
    assert seen == [(k, n, k, float(k)) for k in range(1, n + 1)]
    assert _next_events(direct) == _next_events(stepped) == [n + 1.0]
    direct.step()
    stepped.step()
    assert (direct.steps, direct.time) == (stepped.steps, stepped.time) == (n + 1, n + 1.0)


def test_a_month_that_raises_leaves_the_schedule_as_mesas_loop_leaves_it(monkeypatch):
    model = CoercionModel(helpers.minimal_cfg(["seed=3"]))

    def broken(self):
        raise RuntimeError("a broken month")

    monkeypatch.setattr(CoercionModel, "step", broken)
    with pytest.raises(RuntimeError, match="a broken month"):
        model.run()
    assert _next_events(model) == []  # nothing rescheduled: a later step() only moves the clock, as in Mesa


def test_a_stopped_schedule_with_a_users_event_goes_through_mesas_loop():
    """One event scheduled, but a user's with the monthly schedule stopped: run() goes through Mesa's
    loop, so the event fires (here it ends the run) and no month runs."""
    model = CoercionModel(helpers.minimal_cfg(["seed=3"]))
    model._default_schedule.stop()
    fired = []

    def stop_the_run():
        fired.append(model.time)
        model.running = False

    model.schedule_event(stop_the_run, at=1.0)
    model.run()
    assert fired == [1.0] and model.step_index == -1


def test_a_copied_model_goes_on_recording_costs_as_the_original():
    """The strategic layer's look-ahead deep-copies a model; the domestic instruments' costs and the levers'
    cost records are views of stacked arrays, tied again in the copy (CoercionModel/Recorder.__setstate__)."""
    import copy

    model = CoercionModel(sim.api.compose_config("rare_earth_2010", ["policy=[stockpile]", "output.progress=never"]))
    for _ in range(30):
        model.step()
    clone = copy.deepcopy(model)
    model.run()
    clone.run()
    a, b = model.recorder.timeseries(), clone.recorder.timeseries()
    costs = a[a["variable"].str.startswith(("domestic_", "policy_cost"))]
    assert costs["value"].abs().sum() > 0, "rare_earth_2010 with a stockpile books domestic and lever costs"
    pd.testing.assert_frame_equal(a, b)


def test_run_goes_through_mesas_loop_when_something_else_is_scheduled():
    cfg = helpers.minimal_cfg(["seed=3"])
    model = CoercionModel(cfg)
    fired = []

    def note():  # a user's own event, two months in
        fired.append((model.time, model.step_index))

    model.schedule_event(note, at=2.5)
    model.run()
    assert fired == [(2.5, 1)]
    plain = CoercionModel(cfg).run()
    assert model.recorder.timeseries().equals(plain.recorder.timeseries())
    assert (model.steps, model.time) == (plain.steps, plain.time)


# ------------------------------------------------------------------------------------------------
# Memory: a finished model can be freed
# ------------------------------------------------------------------------------------------------
def _model_ref(cfg, steps: int) -> weakref.ref:
    model = CoercionModel(cfg)
    for _ in range(steps):
        model.step()
    # Touch what a user would: agent sets, views, tables.
    jpn = model.agents_by_type[UserFirm].select(lambda f: f.country == "JPN")
    assert all(f.inventory for f in jpn)
    model.recorder.timeseries()
    model.recorder.flows_table()
    return weakref.ref(model)


def test_model_is_garbage_collected_after_a_run():
    ref = _model_ref(helpers.minimal_cfg(), steps=4)
    gc.collect()
    assert ref() is None, f"model still referenced by {[type(r) for r in gc.get_referrers(ref())]}"


# ------------------------------------------------------------------------------------------------
# Mesa integration
# ------------------------------------------------------------------------------------------------
def test_agents_exist_by_type(quota_run):
    m = quota_run.model
    w = m.world
    states, producers, firms = (m.agents_by_type[t] for t in (StateAgent, ProducerFirm, UserFirm))
    assert len(states) == len(w.countries) == 3
    assert len(producers) == len(w.producer_name) == 3  # two producers, one project
    assert len(firms) == len(w.firm_country) == 10  # 5 CHN + 5 JPN
    assert len(m.agents) == len(states) + len(producers) + len(firms)
    assert len({a.unique_id for a in m.agents}) == len(m.agents)
    assert set(m.agents_by_type) == {StateAgent, ProducerFirm, UserFirm}


def test_state_agent_for_every_country_and_one_coercer(quota_run):
    m = quota_run.model
    states = list(m.agents_by_type[StateAgent])
    assert sorted(s.code for s in states) == sorted(COUNTRIES)
    coercers = [s for s in states if s.is_coercer]
    assert [s.code for s in coercers] == ["CHN"]
    assert coercers[0].strategy is m.strategy
    for s in states:
        assert s.stockpile == {"ore": 0.0}


def test_user_firms_are_selectable_by_country(quota_run):
    m = quota_run.model
    jpn = m.agents_by_type[UserFirm].select(lambda f: f.country == "JPN")
    assert len(jpn) == 5
    assert {f.sector for f in jpn} == {"industry"}
    # Firm sizes are heterogeneous but add up to the sector's value added (3e10 US$/yr).
    sizes = [f.baseline_value_added for f in jpn]
    assert len(set(sizes)) == 5
    np.testing.assert_allclose(sum(sizes), 3.0e10 / 12, rtol=1e-12)


def test_firm_views_read_the_model_arrays(quota_run):
    m = quota_run.model
    ts = quota_run.timeseries
    last = m.step_index
    for code in ("CHN", "JPN"):
        firms = m.agents_by_type[UserFirm].select(lambda f, code=code: f.country == code)
        inv = sum(f.inventory["ore"] for f in firms)
        rec = helpers.pivot(ts, "inventory", "ore").loc[last, code]
        np.testing.assert_allclose(inv, rec, rtol=1e-12)
        loss = sum(f.output_loss for f in firms)
        np.testing.assert_allclose(loss, helpers.pivot(ts, "output_loss").loc[last, code], rtol=1e-12, atol=1e-6)
        for f in firms:
            rows = m.rows_of_firm[f.index]
            assert f.inventory == {"ore": float(m.inventory[rows[0]])}
            np.testing.assert_allclose(f.output + f.output_loss, f.baseline_value_added, rtol=1e-12)


def test_sourcing_weights_sum_to_one_per_good(quota_run):
    for f in quota_run.model.agents_by_type[UserFirm]:
        weights = f.sourcing_weights
        assert set(weights) == {"ore"}
        for good, by_origin in weights.items():
            assert set(by_origin) <= set(COUNTRIES)
            assert all(x >= 0 for x in by_origin.values())
            assert sum(by_origin.values()) == pytest.approx(1.0, abs=1e-9), (f.country, good)
        if f.country == "JPN":
            # Japanese firms moved weight away from the coercer after its quota.
            m = f.model
            row = m.rows_of_firm[f.index][0]
            k = list(m.world.slot_origin[row]).index(m.world.countries.index("CHN"))
            assert 0 < weights["ore"]["CHN"] < m.world.base_weights[row, k]


def test_views_are_live_not_copies():
    m = CoercionModel(helpers.minimal_cfg())
    m.step()
    firm = m.agents_by_type[UserFirm].select(lambda f: f.country == "JPN").to_list()[0]
    before = firm.inventory["ore"]
    m.inventory[m.rows_of_firm[firm.index]] += 1.0
    assert firm.inventory["ore"] == pytest.approx(before + 1.0)
    producer = m.agents_by_type[ProducerFirm].select(lambda p: p.name == "AUS mine").to_list()[0]
    assert producer.capacity == pytest.approx(12000 / 12)
    assert producer.output == pytest.approx(float(m.producer_output[producer.index]))


def test_producer_views(quota_run):
    m = quota_run.model
    by_name = {p.name: p for p in m.agents_by_type[ProducerFirm]}
    assert set(by_name) == {"CHN mines", "AUS mine", "AUS expansion"}
    assert by_name["CHN mines"].country == "CHN" and by_name["CHN mines"].good == "ore"
    assert not by_name["AUS mine"].is_project and by_name["AUS mine"].started
    assert by_name["AUS expansion"].is_project
    assert by_name["CHN mines"].unit_cost == 4000
    production = helpers.pivot(quota_run.timeseries, "production", "ore").loc[m.step_index]
    for code in ("CHN", "AUS"):
        out = sum(p.output for p in by_name.values() if p.country == code)
        np.testing.assert_allclose(out, production[code], rtol=1e-12)


def test_producer_started_is_a_python_bool(quota_run):
    for p in quota_run.model.agents_by_type[ProducerFirm]:
        assert type(p.started) is bool, (p.name, type(p.started))


# ------------------------------------------------------------------------------------------------
# Baseline: without measures the world stays where it starts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["price_domestic", "price_export", "price_paid"])
def test_baseline_prices_are_stationary(baseline_run, variable):
    table = helpers.pivot(baseline_run.timeseries, variable, "ore")
    assert len(table) == 36 and not table.empty
    first = table.iloc[0]
    rel = ((table - first).abs() / first.abs()).to_numpy()
    assert np.nanmax(rel) <= 1e-8, f"{variable} drifts by {np.nanmax(rel):.3g}"


def test_baseline_has_no_output_loss_and_no_rent(baseline_run):
    ts = baseline_run.timeseries
    assert (helpers.pivot(ts, "output_loss").to_numpy() == 0).all()
    assert (helpers.pivot(ts, "quota_rent", "ore").to_numpy() == 0).all()
    assert (helpers.pivot(ts, "shortage", "ore").to_numpy() == 0).all()
    assert np.abs(helpers.pivot(ts, "rationed", "ore").to_numpy()).max() <= 1e-9


@pytest.mark.parametrize(
    "variable", ["demand", "delivered", "imports", "exports", "production", "inventory", "capacity"]
)
def test_baseline_quantities_are_stationary(baseline_run, variable):
    table = helpers.pivot(baseline_run.timeseries, variable, "ore")
    first = table.iloc[0]
    np.testing.assert_allclose(table.to_numpy(), np.broadcast_to(first.to_numpy(), table.shape), rtol=1e-8, atol=1e-9)


def test_baseline_metrics(baseline_run):
    m = baseline_run.metrics
    assert m["peak_export_price_ratio.ore"] == pytest.approx(1.0, abs=1e-8)
    assert m["output_loss_share.JPN"] == 0.0
    assert m["first_output_loss_date.JPN"] is None
    assert m["new_capacity.ore.AUS"] == pytest.approx(0.0, abs=1e-9)
    assert m["coercer_import_share_end.ore.JPN"] == pytest.approx(m["coercer_import_share_start.ore.JPN"], rel=1e-9)
    assert baseline_run.model.project_start[baseline_run.model.world.is_project].tolist() == [NEVER]


def test_baseline_reproduces_the_scenario_sourcing_shares():
    # With (almost) no firm heterogeneity, Japan's baseline imports split 80/20 as the scenario says.
    res = run("minimal", ["scenario.measures=[]", "scenario.end=2020-03", "model.sourcing_concentration=1e9"], seed=1)
    inflow = helpers.flow_matrix(res.flows[res.flows["destination"] == "JPN"], "origin").iloc[0]
    np.testing.assert_allclose(inflow["CHN"] / inflow.sum(), 0.8, rtol=1e-4)
    np.testing.assert_allclose(inflow.sum(), 40000 / 12, rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# Mechanisms on `minimal`
# ------------------------------------------------------------------------------------------------
def test_quota_raises_export_price_and_opens_a_rent(quota_run):
    ts = quota_run.timeseries
    pe, pdm = helpers.pivot(ts, "price_export", "ore")["CHN"], helpers.pivot(ts, "price_domestic", "ore")["CHN"]
    rent = helpers.pivot(ts, "quota_rent", "ore")["CHN"]
    base = pe.iloc[0]
    # No rent, export price = domestic price before the quota.
    assert (rent.loc[list(BEFORE_QUOTA)] == 0).all()
    np.testing.assert_allclose(pe.loc[list(BEFORE_QUOTA)], pdm.loc[list(BEFORE_QUOTA)], rtol=1e-12)
    # Under the quota: a rent opens and lifts the export price well above baseline ...
    during = list(QUOTA_MONTHS)
    assert (rent.loc[during] > 0).all()
    assert pe.loc[during].max() > 1.5 * base
    assert (pe.loc[during] > pdm.loc[during]).all()
    # ... while the coercer's domestic price does not rise (its producers lose export outlets).
    assert (pdm.loc[during] <= pdm.iloc[0] * (1 + 1e-9)).all()
    # Export price = domestic price + quota rent (no duty in minimal).
    np.testing.assert_allclose(pe, pdm + rent, rtol=1e-9)
    assert quota_run.metrics["peak_export_price_ratio.ore"] > 1.5


def test_quota_is_respected(quota_run):
    exports = helpers.pivot(quota_run.timeseries, "exports", "ore")["CHN"]
    shipped = exports.loc[list(QUOTA_MONTHS)].sum()
    assert shipped <= QUOTA_QUANTITY * (1 + 1e-6)
    baseline_year = exports.loc[list(BEFORE_QUOTA)].sum()
    assert shipped < 0.75 * baseline_year, "the quota binds: exports fall well below baseline"


def test_only_the_coercer_has_a_quota_rent(quota_run):
    rent = helpers.pivot(quota_run.timeseries, "quota_rent", "ore")
    others = rent.drop(columns=["CHN"])
    assert (others.fillna(0.0).to_numpy() == 0).all()


def test_japan_coercer_import_share_falls_after_the_quota(quota_run):
    flows = quota_run.flows
    into_jpn = helpers.flow_matrix(flows[flows["destination"] == "JPN"], "origin")
    share = into_jpn["CHN"] / into_jpn.sum(axis=1)
    before = share.loc[list(BEFORE_QUOTA)].mean()
    assert share.loc[list(QUOTA_MONTHS)].mean() < before - 0.05
    assert share.iloc[-12:].mean() < before, "diversification outlasts the quota"
    m = quota_run.metrics
    assert m["coercer_import_share_end.ore.JPN"] < m["coercer_import_share_start.ore.JPN"]
    np.testing.assert_allclose(m["coercer_import_share_start.ore.JPN"], before, rtol=1e-9)


def _step_and_watch(cfg):
    """Run a fresh model month by month; return (model, capacity used in each month's clearing
    [T, P], producers' output [T, P])."""
    m = CoercionModel(cfg)
    used, output = [], []
    while m.running:
        cap = m.capacity.copy()
        m.step()
        if m.step_index >= len(used):
            used.append(cap)
            output.append(m.producer_output.copy())
    return m, np.array(used), np.array(output)


@pytest.mark.parametrize(
    "overrides, expected_start",
    [((), None), (("scenario.projects.0.committed_start=2020-06",), 5)],
    ids=["private_start", "committed_start"],
)
def test_project_adds_capacity_only_after_its_build_lag(overrides, expected_start):
    m, used, output = _step_and_watch(helpers.minimal_cfg(list(overrides)))
    w = m.world
    (p,) = np.flatnonzero(w.is_project)
    start = int(m.project_start[p])
    assert start != NEVER, "the quota's high prices (or the financing date) start the AUS expansion"
    if expected_start is not None:
        assert start == expected_start
    else:
        assert start >= QUOTA_MONTHS[0], "no private start before prices rise"
    lag, ramp, nameplate = int(w.build_lag[p]), int(w.ramp_up[p]), float(w.nameplate[p])
    assert (lag, ramp) == (18, 6)
    first = start + lag
    T = len(used)
    assert (used[: min(first, T), p] == 0).all(), "capacity before the build lag is over"
    assert (output[: min(first, T), p] == 0).all()
    assert (output[:, p] <= used[:, p] * (1 + 1e-9) + 1e-9).all()
    if first < T:
        assert used[first, p] > 0
        assert (np.diff(used[first:, p]) >= -1e-12).all()
        assert used[:, p].max() <= nameplate * (1 + 1e-12)
    if first + ramp <= T - 1:
        assert used[first + ramp, p] == pytest.approx(nameplate)
    if expected_start is not None:
        assert first + ramp <= T - 1, "the committed case reaches nameplate within the run"


def test_recorded_capacity_is_the_capacity_each_month_cleared_with():
    cfg = helpers.minimal_cfg(["scenario.projects.0.committed_start=2020-06"])
    m, used, _ = _step_and_watch(cfg)
    recorded = m.recorder.good_level["capacity"][: len(used)]  # [T, G, C]
    expected = np.zeros_like(recorded)
    for t in range(len(used)):
        np.add.at(expected[t], (m.world.producer_good, m.world.producer_country), used[t])
    np.testing.assert_allclose(recorded, expected, rtol=1e-12)


def test_mass_balance_every_month(quota_run):
    ts, flows = quota_run.timeseries, quota_run.flows
    delivered = helpers.pivot(ts, "delivered", "ore")
    production = helpers.pivot(ts, "production", "ore")
    inflow = helpers.flow_matrix(flows, "destination", "ore")
    outflow = helpers.flow_matrix(flows, "origin", "ore")
    assert len(inflow) == len(outflow) == 36
    # Flows into a country = what its firms got; flows out of an origin = what its producers sold.
    _assert_close(inflow, delivered, rtol=1e-9, atol=1e-6, what="inflow vs delivered")
    _assert_close(outflow, production, rtol=1e-9, atol=1e-6, what="outflow vs production")
    # Imports and exports are the cross-border parts.
    cross = flows[(flows["good"] == "ore") & (flows["origin"].astype(str) != flows["destination"].astype(str))]
    _assert_close(
        helpers.flow_matrix(cross, "destination"), helpers.pivot(ts, "imports", "ore"), atol=1e-6, what="imports"
    )
    _assert_close(helpers.flow_matrix(cross, "origin"), helpers.pivot(ts, "exports", "ore"), atol=1e-6, what="exports")
    # No stockpiles in minimal: the world delivers what it produces, month by month.
    np.testing.assert_allclose(delivered.sum(axis=1), production.sum(axis=1), rtol=1e-9)
    # Demand is delivered or rationed.
    _assert_close(
        helpers.pivot(ts, "demand", "ore"), delivered + helpers.pivot(ts, "rationed", "ore"), atol=1e-6, what="demand"
    )


def _run_watching_use(cfg):
    """Run a fresh model to the end; return it, firms' inventory before the first month ``[G, C]`` and
    what firms used in production each month ``[T, G, C]`` (not a recorded variable)."""
    m = CoercionModel(cfg)
    w = m.world
    G, C = len(w.goods), len(w.countries)
    gc = w.row_good * C + m._row_destination

    def by_gc(rows):
        return np.bincount(gc, weights=rows, minlength=G * C).reshape(G, C)

    inventory_before = by_gc(m.inventory)
    used = []
    produce = m._produce

    def watched(req, result, delivered):
        out = produce(req, result, delivered)
        used.append(by_gc(out["use"]))
        return out

    m._produce = watched
    m.run()
    return m, inventory_before, np.array(used)


def assert_stock_flow_identities(m, inventory_before, used):
    """Firms' inventory and the state reserves are stocks fed only by their flows, every month:

    - inventory_end = inventory_start + delivered to firms + reserve stock released to them - used,
      per country and good (``delivered`` includes the reserve's own purchases, which go to the reserve);
    - stockpile_end = stockpile_start + initial fill + purchases - releases, per good over the world
      (a coalition partner's shared stock leaves the donor's reserve and reaches the member's firms), and
      per country when no reserve is shared.
    """
    gl = m.recorder.good_level
    T = m.n_steps
    inv, delivered = gl["inventory"][:T], gl["delivered"][:T]
    purchase, release = gl["stockpile_purchase"][:T], gl["stockpile_release"][:T]
    assert used.shape == inv.shape
    scale = max(float(np.max(inventory_before)), float(np.max(delivered)), 1.0)
    start = np.concatenate([inventory_before[None], inv[:-1]])
    firms_got = delivered - purchase
    assert (firms_got >= -1e-9 * scale).all() and (used >= 0).all() and (inv >= -1e-9 * scale).all()
    np.testing.assert_allclose(inv, start + firms_got + release - used, rtol=1e-9, atol=1e-9 * scale)

    pile = gl["stockpile"][:T]
    fill = np.zeros_like(pile)
    shared = False
    for lever in m.levers:
        if lever.name == "stockpile":
            fill[lever.start] += float(lever.cfg.initial_fill) * lever.target
        if lever.name == "collective_response" and lever.cfg.share_stockpiles:
            shared = True
            # The coalition stock is in place before the first month.
            fill[0] += float(lever.cfg.shared_stock_months) * lever.base_use * lever.shared
    pile_start = np.concatenate([np.zeros_like(pile[:1]), pile[:-1]])
    np.testing.assert_allclose(
        pile.sum(axis=2),
        (pile_start + fill + purchase - release).sum(axis=2),
        rtol=1e-9,
        atol=1e-9 * scale,
        err_msg="world reserve stock-flow",
    )
    if not shared:
        np.testing.assert_allclose(pile, pile_start + fill + purchase - release, rtol=1e-9, atol=1e-9 * scale)
    assert (pile >= -1e-9 * scale).all()


#: On ``minimal``: the shipped quota (a price spike), or a border halt to Japan (rationing).
MEASURES = {
    "quota": [],
    "halt": [
        "scenario.measures.0.type=informal_restriction",
        "scenario.measures.0.targets=[JPN]",
        "scenario.measures.0.intensity=0.6",
        "scenario.measures.0.end=2021-06-30",
    ],
}


# A reserve of 0 months, or one whose rule never fires under the drawn measure, warns that it cannot act or
# did not (sim.policy.levers.InactiveLeverWarning, tested in test_levers_active.py); here only the identities matter.
@pytest.mark.filterwarnings("ignore::sim.policy.levers.InactiveLeverWarning")
@helpers.model_runs()
@given(
    measures=st.sampled_from(sorted(MEASURES)),
    months=st.floats(0.0, 4.0),
    initial_fill=st.floats(0.0, 1.0),
    release_on=st.sampled_from(["shortage", "price", "either"]),
    max_release_rate=st.floats(0.05, 1.0),
    refill_rate=st.floats(0.0, 0.3),
    start=st.sampled_from(["2020-01", "2020-07", "2021-03"]),
    seed=st.integers(0, 2**16),
)
def test_inventory_and_reserve_stock_flow_identities_hold_every_month(
    measures, months, initial_fill, release_on, max_release_rate, refill_rate, start, seed
):
    cfg = helpers.minimal_cfg(
        [
            *MEASURES[measures],
            "policy=stockpile",
            f"policy.stockpile.months={months}",
            f"policy.stockpile.initial_fill={initial_fill}",
            f"policy.stockpile.release_on={release_on}",
            f"policy.stockpile.max_release_rate={max_release_rate}",
            f"policy.stockpile.refill_rate={refill_rate}",
            f"policy.stockpile.start={start}",
            "policy.stockpile.countries=[JPN,CHN]",
            f"seed={seed}",
            "output.figures=false",
        ]
    )
    m, inventory_before, used = _run_watching_use(cfg)
    assert_stock_flow_identities(m, inventory_before, used)


@pytest.mark.filterwarnings(
    "ignore::sim.policy.levers.InactiveLeverWarning"
)  # parts of the response cannot act in 2010
def test_stock_flow_identities_hold_with_shared_reserves():
    """``rare_earth_2010`` with G7 reserves in the USA and EU27 shared with a coerced member (Japan in
    the 2010 halt): stock moves between countries' reserves and firms, the world's stocks still add up."""
    from sim.api import compose_config

    cfg = compose_config(
        "rare_earth_2010",
        [
            "policy=[stockpile,collective_response]",
            "policy.stockpile.countries=[USA,EU27]",
            "policy.collective_response.share_stockpiles=true",
            "output.figures=false",
        ],
    )
    m, inventory_before, used = _run_watching_use(cfg)
    assert_stock_flow_identities(m, inventory_before, used)
    # Some reserve stock went to another country's firms: the per-country reserve balance does not hold.
    gl, T = m.recorder.good_level, m.n_steps
    pile = gl["stockpile"][:T]
    before = np.concatenate([np.zeros_like(pile[:1]), pile[:-1]])
    fill = np.zeros_like(pile)
    (stockpile,) = [lv for lv in m.levers if lv.name == "stockpile"]
    fill[stockpile.start] = float(stockpile.cfg.initial_fill) * stockpile.target
    moved = before + fill + gl["stockpile_purchase"][:T] - gl["stockpile_release"][:T] - pile
    assert np.abs(moved).max() > 1.0, "a partner's reserve was shared"


def test_flow_values_are_quantities_at_positive_prices(quota_run):
    f = quota_run.flows
    unit = f["value"] / f["quantity"]
    assert (unit > 0).all()
    domestic = f["origin"].astype(str) == f["destination"].astype(str)
    base = f[(f["step"] == 0) & domestic]
    np.testing.assert_allclose(base["value"] / base["quantity"], 10000.0, rtol=1e-9)


def test_recordable_variables_match_the_recorder():
    assert set(RECORDABLE_VARIABLES) == set(VARIABLES)
    assert set(helpers.REQUIRED_VARIABLES) <= set(VARIABLES)


def test_run_length_and_dates(quota_run):
    ts = quota_run.timeseries
    dates = ts.drop_duplicates("step").set_index("step")["date"]
    assert list(dates.index) == list(range(36))
    assert dates.iloc[0] == pd.Timestamp("2020-01-01") and dates.iloc[-1] == pd.Timestamp("2022-12-01")


def test_zero_unit_cost_producer_runs_cleanly():
    """A producer with zero unit cost is allowed (0 <= cost < reference price). Existing producers
    carry an infinite project hurdle, and the investment check used to multiply it by the cost
    (inf * 0: a RuntimeWarning, an error under this suite's filterwarnings)."""
    cfg = helpers.minimal_cfg(["scenario.producers.0.unit_cost=0", "output.figures=false"])
    res = sim.api.run_config(cfg, progress="never")
    assert np.isfinite(res.timeseries["value"]).all()
