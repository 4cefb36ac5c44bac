"""Policy levers (sim/policy/levers.py): composition, neutral settings, directions of effect, costs, validation.

Direction tests are hypothesis properties over parameter ranges; each example is one or two model runs, so
their example count is the profile's budget for model-run properties (``helpers.model_runs``). Those that
read only metrics run through the in-memory path of sensitivity analyses
(:class:`sim.experiments.runner.CaseRunner`: the case composed and checked once, a run about a fifth of
a second; ``tests/test_fast_path.py`` shows it gives the command line's metrics), the others through
:func:`sim.run`. The coalition tests use a toy world in ``tests/configs/scenario/coalition_toy.yaml``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.experiments.runner import CaseRunner
from sim.policy.levers import LEVER_NAMES, InactiveLeverWarning
from sim.world.scenario import ScenarioError

TEST_CONFIGS = Path(__file__).resolve().parent / "configs"
POLICY_VARIABLES = {"policy_cost", "policy_revenue", *(f"policy_cost_{n}" for n in LEVER_NAMES)}


def run(overrides=(), scenario="rare_earth_2010", config_dir=None):
    return sim.run(scenario, list(overrides), seed=1, config_dir=config_dir)


def metrics_of(policies, levers, *fixed):
    """Metrics of a ``rare_earth_2010`` run (seed 1) with the policy groups ``policies``, the fixed
    overrides ``fixed`` and the lever values ``levers`` (dotted key -> value), through the in-memory path."""
    return CaseRunner("rare_earth_2010", policies=tuple(policies), overrides=fixed).run(policy=levers, seed=1)


@pytest.fixture(scope="module")
def without_levers():
    """``rare_earth_2010`` with ``policy=none`` (seed 1) through :func:`sim.run`, once per module and test
    session: the baseline of several tests, which only read it. (A fixture, not a process-wide cache:
    mutation testing runs the tests of each mutant in a fork of one process, and must not reuse a
    baseline run on unmutated code.)"""
    return run(["policy=none"])


def toy(overrides=()):
    return sim.run("coalition_toy", list(overrides), seed=1, config_dir=TEST_CONFIGS)


def series(ts: pd.DataFrame, variable: str, country: str, good: str | None = None) -> np.ndarray:
    sel = (ts.variable == variable) & (ts.country == country)
    if good is not None:
        sel &= ts.good == good
    return ts[sel].groupby("step", observed=True).value.sum().to_numpy()


def total(metrics: dict, prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix) and isinstance(v, float))


def same_run(a, b) -> None:
    """Identical outcomes apart from the policy bookkeeping variables and wall times."""

    def keep(ts):
        return ts[~ts.variable.isin(POLICY_VARIABLES)].reset_index(drop=True)

    pd.testing.assert_frame_equal(keep(a.timeseries), keep(b.timeseries))
    pd.testing.assert_frame_equal(a.flows, b.flows)

    def strip(m):
        return {
            k: v
            for k, v in m.items()
            if not k.startswith(("policy_", "stockpile_released", "clearing_seconds", "lever_"))
        }

    assert strip(a.metrics) == strip(b.metrics)


# ---------------------------------------------------------------------------------------------- composition
def test_rare_earth_2010_runs_japans_response_by_default_and_policy_none_turns_it_off():
    cfg = sim.compose_config("rare_earth_2010")
    assert {k for k, v in cfg.policy.items() if v is not None} == {
        "stockpile",
        "friendshoring",
        "substitution",
        "recycling",
    }
    off = sim.compose_config("rare_earth_2010", ["policy=none"])
    assert all(v is None for v in off.policy.values())
    assert all(v is None for v in sim.compose_config("minimal").policy.values())


def test_levers_compose_and_any_parameter_can_be_set():
    cfg = sim.compose_config(
        "minimal", ["policy=[stockpile,diversification]", "policy.stockpile.months=6", "policy.diversification.speed=3"]
    )
    assert cfg.policy.stockpile.months == 6 and cfg.policy.diversification.speed == 3
    assert cfg.policy.recycling is None


# ---------------------------------------------------------------------------------------------- neutral settings
NEUTRAL = {
    "stockpile": ["policy.stockpile.months=0"],
    "diversification": ["policy.diversification.max_share=1", "policy.diversification.speed=1"],
    "inventory_incentive": ["policy.inventory_incentive.extra_months=0"],
    "substitution": ["policy.substitution.programmes.0.change=0", "policy.substitution.programmes.0.budget=0"],
    "recycling": ["policy.recycling.recovery_share=0"],
    "friendshoring": ["policy.friendshoring.projects.0.capacity_share=0"],
}


@pytest.mark.parametrize("lever", sorted(NEUTRAL))
def test_a_lever_at_its_neutral_setting_reproduces_the_run_without_levers_and_says_so(lever, without_levers):
    base = without_levers
    with pytest.warns(InactiveLeverWarning, match=rf"^{lever}: .*(is 0|is 1|no project|no secondary|no programme)"):
        neutral = run([f"policy={lever}", *NEUTRAL[lever]])
    same_run(base, neutral)
    assert total(neutral.metrics, "policy_cost.total.") == 0.0
    assert neutral.metrics[f"lever_active.{lever}"] == 0
    assert neutral.metrics[f"lever_effect.{lever}"] == 0


def test_collective_response_switched_off_reproduces_the_run_without_levers():
    base = toy(["policy=none"])
    with pytest.warns(InactiveLeverWarning, match="^collective_response: .*so it cannot act"):
        off = toy(
            [
                "policy=collective_response",
                "policy.collective_response.coalition=partners",
                "policy.collective_response.buy_target_exports=false",
                "policy.collective_response.share_stockpiles=false",
                "policy.collective_response.counter_tariff=0",
                "policy.collective_response.counter_restriction=0",
            ]
        )
    same_run(base, off)
    assert off.metrics["lever_active.collective_response"] == 0


# ---------------------------------------------------------------------------------------------- directions
def japan_shortage(result) -> float:
    """Japan's unmet requirement plus demand rationed or held at the border, all goods, whole run
    (of a run's result or its metrics)."""
    metrics = result if isinstance(result, dict) else result.metrics
    return sum(v for k, v in metrics.items() if k.startswith(("shortage.", "rationed.")) and k.endswith(".JPN"))


@pytest.mark.filterwarnings("ignore::sim.policy.levers.InactiveLeverWarning")  # months may be 0: a reserve of nothing
@helpers.model_runs()
@given(st.floats(0.0, 4.0), st.floats(0.25, 4.0))
def test_a_larger_stockpile_never_increases_japans_shortage(months, extra):
    small = metrics_of(["stockpile"], {"policy.stockpile.months": months}, "policy.stockpile.countries=[JPN]")
    large = metrics_of(["stockpile"], {"policy.stockpile.months": months + extra}, "policy.stockpile.countries=[JPN]")
    assert japan_shortage(large) <= japan_shortage(small) * (1 + 1e-9) + 1e-6


@pytest.mark.filterwarnings("ignore::sim.policy.levers.InactiveLeverWarning")  # months may be 0: a reserve of nothing
@helpers.model_runs()
@given(st.floats(0.0, 4.0), st.floats(0.25, 4.0))
def test_a_larger_stockpile_that_is_not_refilled_never_increases_japans_output_loss(months, extra):
    # With refilling, a larger reserve buys more once prices are back near normal, which raises prices
    # and can cost output later (a real cost of the lever); without it, more stock only helps.
    fixed = ("policy.stockpile.countries=[JPN]", "policy.stockpile.refill_rate=0")
    small = metrics_of(["stockpile"], {"policy.stockpile.months": months}, *fixed)
    large = metrics_of(["stockpile"], {"policy.stockpile.months": months + extra}, *fixed)
    assert large["output_loss.JPN"] <= small["output_loss.JPN"] * (1 + 1e-9) + 1e-3


def test_a_stockpile_releases_in_the_halt_and_cuts_japans_shortage(without_levers):
    none = without_levers
    pile = run(["policy=stockpile", "policy.stockpile.countries=[JPN]", "policy.stockpile.months=3"])
    assert japan_shortage(none) > 0
    assert japan_shortage(pile) < japan_shortage(none)
    assert pile.metrics["output_loss.JPN"] < none.metrics["output_loss.JPN"]
    released = sum(v for k, v in pile.metrics.items() if k.startswith("stockpile_released.") and k.endswith(".JPN"))
    assert released > 0
    assert pile.metrics["policy_revenue.JPN"] > 0


def test_by_default_a_stockpile_also_releases_on_a_price_spike_without_rationing():
    """On ``minimal`` the quota works through the price: nobody is rationed, so a reserve released
    only on shortage sits unused (identical run), while the default rule (``either``: shortage or a
    price paid at 2x baseline) releases stock, lowers the peak price and Japan's output loss."""
    base = sim.run("minimal", ["policy=none"], seed=1)
    assert japan_shortage(base) < 1e-6  # tonnes over the run: rounding, not rationing
    with pytest.warns(InactiveLeverWarning, match="^stockpile: did not act in this run: the reserve never released"):
        shortage_only = sim.run("minimal", ["policy=stockpile", "policy.stockpile.release_on=shortage"], seed=1)
    assert shortage_only.metrics["lever_active.stockpile"] == 0
    assert shortage_only.metrics["output_loss.JPN"] == pytest.approx(base.metrics["output_loss.JPN"], rel=1e-6)
    pile = sim.run("minimal", ["policy=stockpile"], seed=1)
    assert sim.compose_config("minimal", ["policy=stockpile"]).policy.stockpile.release_on == "either"
    assert pile.metrics["stockpile_released.ore.JPN"] > 0
    assert pile.metrics["peak_price_paid_ratio.ore.JPN"] < base.metrics["peak_price_paid_ratio.ore.JPN"]
    assert pile.metrics["output_loss.JPN"] < base.metrics["output_loss.JPN"]


def test_a_reserve_releases_the_month_after_its_signal():
    """The state sees last month's outcomes: a reserve on the shortage rule first releases the month
    after Japan's firms are first rationed at the border; on the price rule, the month after the price
    they pay first reaches 2x its first-month level."""

    def first(x) -> int:
        return int(np.flatnonzero(np.asarray(x) > 1e-9)[0])

    halt = _reserve_run(HALT)
    gap = series(halt.timeseries, "rationed", "JPN", "ore") + series(halt.timeseries, "shortage", "JPN", "ore")
    on_shortage = _reserve_run(HALT, "shortage")
    assert first(series(on_shortage.timeseries, "stockpile_release", "JPN", "ore")) == first(gap) + 1
    spike = _reserve_run([])
    paid = series(spike.timeseries, "price_paid", "JPN", "ore")
    on_price = _reserve_run([], "price")
    assert first(series(on_price.timeseries, "stockpile_release", "JPN", "ore")) == first(paid >= 2 * paid[0]) + 1


def test_a_reserve_holds_only_the_goods_and_countries_it_covers():
    """Japan's reserve of light rare earths only: no heavy stock in Japan, no lever stock anywhere else
    (China's stock is only what its state purchases, a domestic measure of the scenario, bought)."""
    r = run(["policy=stockpile", "policy.stockpile.countries=[JPN]", "policy.stockpile.goods=[ree_light]"])
    ts = r.timeseries
    assert series(ts, "stockpile", "JPN", "ree_light")[0] > 0
    assert (series(ts, "stockpile", "JPN", "ree_heavy") == 0).all()
    others = ts[(ts.variable == "stockpile") & ~ts.country.isin(["JPN", "CHN"])]
    assert len(others) and (others.value == 0).all()
    for good in ("ree_light", "ree_heavy"):
        bought = np.cumsum(series(ts, "stockpile_purchase", "CHN", good))
        np.testing.assert_allclose(series(ts, "stockpile", "CHN", good), bought, rtol=1e-9, atol=1e-9)


#: On ``minimal``, CHN holds back half its ore shipments to JPN at the border for the first half of 2021
#: (an informal halt): Japanese firms are rationed, but the price they pay for what arrives barely moves.
HALT = [
    "scenario.measures.0.type=informal_restriction",
    "scenario.measures.0.targets=[JPN]",
    "scenario.measures.0.intensity=0.5",
    "scenario.measures.0.end=2021-06-30",
]
JAPANS_RESERVE = ["policy=stockpile", "policy.stockpile.countries=[JPN]"]


def _released(result) -> float:
    """Reserve stock delivered to Japan's firms over the run (the metric is absent when nothing was)."""
    return result.metrics.get("stockpile_released.ore.JPN", 0.0)


HALT_END = "2021-06"


def _loss_until(result, month: str) -> float:
    """Japan's output loss (US$) from the start to ``month`` (inclusive)."""
    ts = result.timeseries
    loss = ts[(ts.variable == "output_loss") & (ts.country == "JPN")].set_index("date").value
    return float(loss.loc[:month].sum())


def _reserve_run(measures, release_on=None):
    pol = ["policy=none"] if release_on is None else [*JAPANS_RESERVE, f"policy.stockpile.release_on={release_on}"]
    return sim.run("minimal", [*measures, *pol, "output.figures=false"], seed=1)


def test_a_price_rule_reserve_releases_on_a_price_spike_without_shortage_and_not_on_rationing_at_stable_prices():
    """``release_on: price`` answers the quota's price spike (nobody rationed) and ignores a border halt
    that rations firms at stable prices; ``shortage`` is the converse; ``either`` does both."""
    # The quota: a price spike without rationing.
    spike = _reserve_run([])
    assert spike.metrics["peak_price_paid_ratio.ore.JPN"] > 2.0 and japan_shortage(spike) < 1e-6
    on_price = _reserve_run([], "price")
    assert _released(on_price) > 0
    assert on_price.metrics["peak_price_paid_ratio.ore.JPN"] < spike.metrics["peak_price_paid_ratio.ore.JPN"]
    assert on_price.metrics["output_loss.JPN"] < spike.metrics["output_loss.JPN"]
    with pytest.warns(InactiveLeverWarning, match="release_on=shortage"):
        on_shortage = _reserve_run([], "shortage")
    assert _released(on_shortage) == 0.0
    assert on_shortage.metrics["output_loss.JPN"] == pytest.approx(spike.metrics["output_loss.JPN"], rel=1e-9)
    on_either = _reserve_run([], "either")
    assert _released(on_either) == pytest.approx(_released(on_price), rel=1e-9)

    # The halt: rationing at stable prices.
    halt = _reserve_run(HALT)
    assert halt.metrics["peak_price_paid_ratio.ore.JPN"] < 1.5 and japan_shortage(halt) > 1000.0
    with pytest.warns(InactiveLeverWarning, match="release_on=price"):
        on_price = _reserve_run(HALT, "price")
    assert _released(on_price) == 0.0
    assert on_price.metrics["output_loss.JPN"] == pytest.approx(halt.metrics["output_loss.JPN"], rel=1e-9)
    on_shortage = _reserve_run(HALT, "shortage")
    released = _released(on_shortage)
    assert released > 0
    # Released stock stands in for what the border holds back, never more than the gap it answers,
    # and spares Japan's firms the loss while the border holds orders back. (Over the whole run the
    # reserve's refill purchases after the halt can cost more than it spared: the buyers who learned to
    # avoid the origin bid for thin supply elsewhere; docs/ODD.md, stockpile lever.)
    assert released <= japan_shortage(halt) * (1 + 1e-9)
    assert _loss_until(on_shortage, HALT_END) < _loss_until(halt, HALT_END)
    on_either = _reserve_run(HALT, "either")
    assert _released(on_either) == pytest.approx(released, rel=1e-9)


# Where max_target_share is below the weight members already put on AUS (JPN 20%, USA 10%) the lever has
# nothing to do and warns that it did not act (sim.policy.levers.InactiveLeverWarning); the property holds either way.
@pytest.mark.filterwarnings("ignore::sim.policy.levers.InactiveLeverWarning")
@helpers.model_runs()
@given(st.floats(0.05, 0.5), st.floats(0.05, 0.5))
def test_a_coalition_that_buys_the_targets_exports_never_lowers_its_export_revenue(rate, share):
    def revenue(result):
        ts = result.timeseries
        return float((series(ts, "exports", "AUS") * series(ts, "price_export", "AUS")).sum())

    base = toy(["policy=none"])
    helped = toy(
        [
            "policy=collective_response",
            "policy.collective_response.coalition=partners",
            f"policy.collective_response.purchase_shift_rate={rate}",
            f"policy.collective_response.max_target_share={share}",
            "policy.collective_response.counter_restriction=0",  # barley: no leverage good at the 70% threshold
        ]
    )
    assert revenue(helped) >= revenue(base) * (1 - 1e-9)
    assert helped.metrics["redirected_share_12m.barley.AUS"] >= base.metrics["redirected_share_12m.barley.AUS"] - 1e-9


def test_counter_tariffs_cut_the_coercers_exports_to_members_while_the_coercion_lasts():
    base = run(["policy=none", "scenario.countries.0.coalitions=[]"])
    hit = run(
        [
            "policy=collective_response",
            "policy.collective_response.counter_tariff=0.5",
            "policy.collective_response.buy_target_exports=false",
            "policy.collective_response.share_stockpiles=false",
            "policy.collective_response.counter_restriction=0",
        ]
    )
    f0, f1 = base.flows, hit.flows

    def window(f):
        return f[
            (f.origin == "CHN")
            & f.destination.isin(["USA", "EU27"])
            & (f.date >= "2010-10-01")
            & (f.date < "2010-12-01")
        ]

    assert window(f1).quantity.sum() < window(f0).quantity.sum()
    cost = hit.metrics["policy_cost.collective_response.USA"]
    assert cost > 0
    before = f1[(f1.origin == "CHN") & (f1.destination == "USA") & (f1.date < "2010-09-01")]
    before0 = f0[(f0.origin == "CHN") & (f0.destination == "USA") & (f0.date < "2010-09-01")]
    np.testing.assert_allclose(before.quantity.to_numpy(), before0.quantity.to_numpy())


@helpers.model_runs()
@given(st.floats(1.0, 10.0))
def test_diversification_never_raises_japans_dependence_on_the_coercer(without_levers, speed):
    none = without_levers.metrics
    div = metrics_of(
        ["diversification"], {"policy.diversification.speed": speed}, "policy.diversification.max_share=0.6"
    )
    for good in ("ree_light", "ree_heavy"):
        key = f"coercer_import_share_end.{good}.JPN"
        assert div[key] <= none[key] + 1e-9
    assert div["policy_cost.diversification.JPN"] > 0


def test_inventory_incentive_raises_firm_stocks_and_costs_money(without_levers):
    none = without_levers
    inc = run(["policy=inventory_incentive", "policy.inventory_incentive.extra_months=2"])
    inv0 = series(none.timeseries, "inventory", "JPN")
    inv1 = series(inc.timeseries, "inventory", "JPN")
    assert inv1[6] > inv0[6]
    assert inc.metrics["policy_cost.inventory_incentive.JPN"] > 0
    assert inc.metrics["min_inventory_months.ree_light.JPN"] >= none.metrics["min_inventory_months.ree_light.JPN"]


def test_recycling_and_friendshoring_add_capacity_after_their_build_lag(without_levers):
    none = without_levers
    rec = run(["policy=recycling", "policy.recycling.start=2011-01", "policy.recycling.build_lag_months=12"])
    cap = series(rec.timeseries, "capacity", "JPN", "ree_light")
    assert cap[24 + 11] == 0 and cap[24 + 13] > 0  # first output in 2012-01 + ramp
    assert rec.metrics["policy_cost.recycling.JPN"] > 0
    fs = run(
        ["policy=friendshoring", "policy.friendshoring.projects.0.country=AUS", "policy.friendshoring.start=2010-11"]
    )
    assert fs.metrics["new_capacity.ree_heavy.AUS"] > none.metrics.get("new_capacity.ree_heavy.AUS", 0.0)
    assert fs.metrics["coercer_import_share_end.ree_heavy.JPN"] < none.metrics["coercer_import_share_end.ree_heavy.JPN"]


def test_substitution_lowers_requirements_as_the_budget_is_spent():
    sub = run(
        [
            "policy=substitution",
            "policy.substitution.programmes.0.change=-0.3",
            "policy.substitution.programmes.0.start=2010-01",
            "policy.substitution.programmes.0.lag_months=3",
            "policy.substitution.programmes.0.spend_months=12",
            "policy.substitution.programmes.0.budget=1.2e8",
        ]
    )
    req = series(sub.timeseries, "requirement_index", "JPN", "ree_light")
    assert req[12 + 2] == pytest.approx(1.0)  # the lag: nothing before April 2010
    assert req[12 + 3 + 11] <= 0.7 + 1e-9 + 0.01  # full effect once spent (endogenous substitution adds a little)
    assert sub.metrics["policy_cost.substitution.JPN"] == pytest.approx(1.2e8)


# ---------------------------------------------------------------------------------------------- costs
def test_costs_are_non_negative_and_add_up_by_lever_and_country():
    r = run(["policy=[japan_2010_response,diversification,inventory_incentive]"])
    ts = r.timeseries
    per_lever = ts[ts.variable.astype(str).str.startswith("policy_cost_")]
    totals = ts[ts.variable == "policy_cost"]
    assert (per_lever.value >= 0).all() and (totals.value >= 0).all()
    summed = per_lever.groupby(["step", "country"], observed=True).value.sum()
    tot = totals.set_index(["step", "country"]).value
    pd.testing.assert_series_equal(summed.reindex(tot.index).fillna(0.0), tot, check_names=False, rtol=1e-12)
    for code in ("JPN", "USA", "CHN"):
        parts = [
            v
            for k, v in r.metrics.items()
            if k.startswith("policy_cost.") and k.endswith(f".{code}") and not k.startswith("policy_cost.total")
        ]
        assert r.metrics[f"policy_cost.total.{code}"] == pytest.approx(sum(parts), rel=1e-12, abs=1e-6)
    # Japan's response: Lynas financing US$250m over its 24-month build lag, substitution R&D 2 x US$100m.
    assert r.metrics["policy_cost.friendshoring.JPN"] == pytest.approx(2.5e8)
    assert r.metrics["policy_cost.substitution.JPN"] == pytest.approx(2.0e8)


@pytest.mark.filterwarnings("ignore::sim.policy.levers.InactiveLeverWarning")  # parts of the response cannot act here
def test_every_metric_key_of_a_run_with_levers_is_documented():
    import helpers

    r = run(["policy=[japan_2010_response,diversification,inventory_incentive,collective_response]"])
    pattern = helpers.metric_key_regex(
        ["ree_light", "ree_heavy", "ndfeb_magnets"], ["CHN", "JPN", "USA", "EU27", "AUS", "ROW"]
    )
    assert sorted(k for k in r.metrics if not pattern.match(k)) == []
    assert {
        f"policy_cost.{n}.JPN"
        for n in ("stockpile", "diversification", "inventory_incentive", "friendshoring", "substitution", "recycling")
    } <= set(r.metrics)


def test_japans_response_lowers_japans_dependence_and_damage(without_levers):
    none = without_levers
    hist = run([])
    assert (
        hist.metrics["coercer_import_share_end.ree_light.JPN"] < none.metrics["coercer_import_share_end.ree_light.JPN"]
    )
    assert hist.metrics["output_loss.JPN"] < none.metrics["output_loss.JPN"]


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (["policy=stockpile", "policy.stockpile.months=-1"], "policy.stockpile.months", "-1"),
        (["policy=stockpile", "policy.stockpile.countries=[XYZ]"], "policy.stockpile.countries[0]", "XYZ"),
        (
            ["policy=stockpile", "policy.stockpile.release_price_ratio=1.1", "policy.stockpile.refill_price_ratio=1.5"],
            "policy.stockpile.release_price_ratio",
            "1.1",
        ),
        (["policy=stockpile", "policy.stockpile.start=2030-01"], "policy.stockpile.start", "2030-01"),
        (["policy=diversification", "policy.diversification.speed=100"], "policy.diversification.speed", "100"),
        (["policy=diversification", "policy.diversification.max_share=0"], "policy.diversification.max_share", "0"),
        (
            ["policy=friendshoring", "policy.friendshoring.projects.0.project=Nowhere"],
            "policy.friendshoring.projects[0].project",
            "Nowhere",
        ),
        (
            ["policy=collective_response", "policy.collective_response.coalition=NATO"],
            "policy.collective_response.coalition",
            "NATO",
        ),
        (
            ["policy=substitution", "policy.substitution.programmes.0.sectors=[cars]"],
            "policy.substitution.programmes[0].sectors[0]",
            "cars",
        ),
        (
            ["policy=recycling", "+policy.recycling.recovery_share_by_good.ore=0.1"],
            "policy.recycling.recovery_share_by_good[0]",
            "ore",
        ),
    ],
)
def test_bad_lever_settings_are_rejected_before_the_run(overrides, field, value):
    with pytest.raises(ScenarioError) as exc:
        run(overrides)
    message = str(exc.value)
    assert message.startswith(field) and value in message


def test_a_misspelt_lever_key_fails_at_composition():
    with pytest.raises(Exception, match="montsh"):
        sim.compose_config("minimal", ["policy=stockpile", "policy.stockpile.montsh=3"])


def test_bad_lever_setting_on_the_command_line_exits_2_with_one_message(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "policy=stockpile",
            "policy.stockpile.months=-2",
            f"hydra.run.dir={tmp_path}/out",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "policy.stockpile.months: -2.0 is invalid" in proc.stderr
    assert not (tmp_path / "out" / "timeseries.parquet").exists()


# ---------------------------------------------------------------------------------------------- coercion signal
def test_coercion_in_force_flags_the_coercers_discriminatory_measures_by_side():
    """What the collective response reacts to: a measure of the coercer that names some countries (not
    all), in force this month; export-side measures flag the target's imports, import-side ones its exports.
    Other countries' measures, coalition counter-measures and measures on everyone are not coercion."""
    import datetime as dt
    from types import SimpleNamespace

    from sim.coercion.measures import ExportBan, ExportDuty, ImportTariff, InformalImportRestriction
    from sim.policy.levers import CounterTariff, coercion_in_force
    from sim.world.calendar import MonthlyCalendar

    cal = MonthlyCalendar((2020, 1), (2020, 12))
    always = cal.coverage(dt.date(2020, 1, 1), None)

    def measure(cls, imposer, goods, targets, coverage=always, **kw):
        return cls(
            imposer=imposer,
            goods=np.array(goods),
            targets=np.array(targets),
            coverage=coverage,
            start=cal.first_day(0),
            **kw,
        )

    coercer = 0  # countries 0..3, goods 0..2
    model = SimpleNamespace(
        world=SimpleNamespace(goods=["a", "b", "c"], countries=["CHN", "JPN", "AUS", "USA"]), coercer_index=coercer
    )
    model.measures = [
        measure(ImportTariff, 2, [2], [0], rate=0.5),  # another country's tariff on the coercer: not coercion
        measure(ExportBan, coercer, [0], [1, 3]),  # names two of three partners: discriminatory
        measure(InformalImportRestriction, coercer, [1], [2], intensity=0.5),
        measure(ExportDuty, coercer, [2], [1, 2, 3], rate=0.2),  # on every partner: not discriminatory
        measure(ExportBan, coercer, [2], [2], coverage=cal.coverage(dt.date(2020, 6, 1), None)),  # from June
    ]
    model.measures.append(
        measure(CounterTariff, 3, [0], [coercer], rate=0.3, lever=SimpleNamespace(any_member_coerced=lambda m, t: True))
    )
    exp, imp = coercion_in_force(model, 2)
    expected_exp = np.zeros((3, 4), dtype=bool)
    expected_exp[0, [1, 3]] = True
    expected_imp = np.zeros((3, 4), dtype=bool)
    expected_imp[1, 2] = True
    np.testing.assert_array_equal(exp, expected_exp)
    np.testing.assert_array_equal(imp, expected_imp)
    exp, imp = coercion_in_force(model, 6)  # the June ban on good c to AUS is now in force
    expected_exp[2, 2] = True
    np.testing.assert_array_equal(exp, expected_exp)
    np.testing.assert_array_equal(imp, expected_imp)
    # A measure whose classifier names no side counts as export-side.
    plain = SimpleNamespace(
        imposer=coercer, targets=np.array([1]), goods=np.array([1]), classifier={}, in_force=lambda t: 1.0
    )
    model.measures = [plain]
    exp, imp = coercion_in_force(model, 0)
    assert exp[1, 1] and exp.sum() == 1 and not imp.any()
