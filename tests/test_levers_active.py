"""No silent no-op levers (issue 14, item 10): a policy lever that cannot act warns and says why.

Each lever checks when the model is built whether it can act in the scenario, and at the end of the run
whether it did; if not it raises :class:`sim.policy.levers.InactiveLeverWarning` naming the lever, the reason and
what would make it act, and the metrics ``lever_active.<lever>`` / ``lever_effect.<lever>`` record it.
The collective response gains a coalition stock and a counter-restriction, so it can act in a case like
rare_earth_2010 (China halts Japan's imports; Japan exports nothing China restricts). The coalition tests
use ``tests/configs/scenario/coalition_halt_toy.yaml``, a small world built to mirror that case (each run
about a second).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import sim
from sim.policy.levers import InactiveLeverWarning
from sim.world.scenario import ScenarioError

TEST_CONFIGS = Path(__file__).resolve().parent / "configs"


def minimal(overrides=()):
    return sim.run("minimal", ["output.figures=false", *overrides], seed=1)


def halt_toy(overrides=()):
    return sim.run("coalition_halt_toy", ["output.figures=false", *overrides], seed=1, config_dir=TEST_CONFIGS)


#: Settings under which each lever cannot act on ``minimal``, with the reason its warning must give.
CANNOT_ACT = {
    "stockpile": (["policy.stockpile.months=0"], "months is 0"),
    "diversification": (
        ["policy.diversification.max_share=1", "policy.diversification.speed=1"],
        "max_share is 1 and speed is 1",
    ),
    "inventory_incentive": (["policy.inventory_incentive.extra_months=0"], "extra_months is 0"),
    "friendshoring": (["policy.friendshoring.projects.0.capacity_share=0"], "no project to finance"),
    "recycling": (["policy.recycling.recovery_share=0"], "recovery_share .* is 0"),
    "substitution": (["policy.substitution.programmes.0.change=0"], "no programme lowers a requirement"),
}

#: Settings under which each lever acts on ``minimal`` within its three years.
CAN_ACT = {
    "stockpile": [],
    "diversification": [],
    "inventory_incentive": [],
    "friendshoring": ["policy.friendshoring.projects.0.build_lag_months=3", "policy.friendshoring.start=2020-06"],
    "recycling": [],
    "substitution": [],
}


@pytest.mark.parametrize("lever", sorted(CANNOT_ACT))
def test_a_lever_that_cannot_act_warns_with_its_reason_and_reports_it(lever):
    overrides, reason = CANNOT_ACT[lever]
    with pytest.warns(InactiveLeverWarning, match=rf"^{lever}: .*{reason}.*; set ") as record:
        r = minimal([f"policy={lever}", *overrides])
    # Warned once, at set-up: a lever that cannot act is not warned about again after the run.
    assert len([w for w in record if w.category is InactiveLeverWarning]) == 1
    assert r.metrics[f"lever_active.{lever}"] == 0
    assert r.metrics[f"lever_effect.{lever}"] == 0


@pytest.mark.parametrize("lever", sorted(CAN_ACT))
def test_a_lever_that_can_act_does_not_warn_and_reports_the_months_it_acted(lever):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InactiveLeverWarning)
        r = minimal([f"policy={lever}", *CAN_ACT[lever]])
    assert r.metrics[f"lever_active.{lever}"] == 1
    assert 1 <= r.metrics[f"lever_effect.{lever}"] <= r.metrics["n_steps"]


def test_a_lever_that_could_act_but_did_not_in_the_run_warns_after_it():
    """A project financed at the start (Jan 2020) with a 40-month build lag delivers after the scenario
    ends (Dec 2022): the lever can act in principle, but not in this run."""
    with pytest.warns(InactiveLeverWarning, match="^friendshoring: did not act in this run: no financed project"):
        r = minimal(["policy=friendshoring", "policy.friendshoring.projects.0.build_lag_months=40"])
    assert r.metrics["lever_active.friendshoring"] == 0
    assert r.metrics["policy_cost.friendshoring.JPN"] > 0  # the money is spent all the same


# ---------------------------------------------------------------------------------------------- collective response
ALL_OFF = [
    "policy=collective_response",
    "policy.collective_response.shared_stock_months=0",
    "policy.collective_response.counter_restriction=0",
]


def test_a_collective_response_that_cannot_act_names_every_reason():
    """As on rare_earth_2010 before this change: the coercer restricts Japan's imports (Japan exports
    nothing it restricts), no member runs a stockpile, no counter-measure is set."""
    with pytest.warns(InactiveLeverWarning) as record:
        r = halt_toy(ALL_OFF)
    (message,) = [str(w.message) for w in record if w.category is InactiveLeverWarning]
    assert message.startswith("collective_response: ")
    for reason in (
        "JPN exports none of the coerced goods: ore",
        "no member other than the coerced (JPN) runs a stockpile lever",
        "shared_stock_months is 0",
        "counter_tariff is 0",
        "counter_restriction is 0",
        "so it cannot act; set share_stockpiles",
    ):
        assert reason in message
    assert r.metrics["lever_active.collective_response"] == 0
    assert r.metrics["policy_cost.collective_response.USA"] == 0.0


def test_the_coalition_stock_lowers_japans_shortage_and_loss_at_a_cost_to_the_donor():
    """The USA, not coerced, holds 0.7 months of its ore use for the coalition; during the halt it
    releases up to a quarter a month to Japan's rationed firms: Japan's shortage and output loss fall, the
    USA books the stock's holding cost and the value of what it gave, and Japan gets no more than its gap."""
    with pytest.warns(InactiveLeverWarning, match="cannot act"):
        none = halt_toy(ALL_OFF)
    common = ["policy=collective_response", "policy.collective_response.counter_restriction=0"]
    with pytest.warns(InactiveLeverWarning, match="^collective_response.buy_target_exports: .*cannot act"):
        shared = halt_toy(common)
    released = shared.metrics["stockpile_released.ore.JPN"]
    gap = none.metrics["shortage.ore.JPN"] + none.metrics["rationed.ore.JPN"]
    assert 0 < released <= gap
    assert shared.metrics["shortage.ore.JPN"] < none.metrics["shortage.ore.JPN"]
    assert shared.metrics["output_loss.JPN"] < none.metrics["output_loss.JPN"]
    # Cost: at least the stock given up, valued at the reference price (US$10,000/t).
    assert shared.metrics["policy_cost.collective_response.USA"] >= released * 10_000.0 * (1 - 1e-9)
    assert shared.metrics["policy_cost.collective_response.JPN"] == 0.0  # the coerced member holds none
    assert shared.metrics["lever_active.collective_response.share_stockpiles"] == 1
    assert 1 <= shared.metrics["lever_effect.collective_response.share_stockpiles"] <= 3  # the halt's months


def test_the_counter_restriction_withholds_the_coercers_leverage_good_while_a_member_is_coerced():
    """China buys 90% of its chips from Japan and the USA (a leverage good at the 70% threshold): while the
    halt lasts members withhold half of them, China's firms run short and lose output; before and after
    the halt the flows are those of the run without it."""
    with pytest.warns(InactiveLeverWarning, match="cannot act"):
        none = halt_toy(ALL_OFF)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InactiveLeverWarning)  # every part switched on can act
        hit = halt_toy(
            [
                *ALL_OFF,
                "policy.collective_response.share_stockpiles=false",
                "policy.collective_response.buy_target_exports=false",
                "policy.collective_response.counter_restriction=0.5",
            ]
        )
    assert hit.metrics["lever_effect.collective_response.counter_restriction"] == 3
    assert hit.metrics["shortage.chips.CHN"] + hit.metrics["rationed.chips.CHN"] > 1.0
    assert hit.metrics["output_loss.CHN"] > none.metrics["output_loss.CHN"]

    def from_members(flows, before: bool):
        f = flows[(flows.good == "chips") & (flows.destination == "CHN") & flows.origin.isin(["JPN", "USA"])]
        f = f[f.date < "2021-03-01"] if before else f[(f.date >= "2021-03-01") & (f.date < "2021-06-01")]
        return f.quantity.sum()

    assert from_members(hit.flows, before=False) < 0.75 * from_members(none.flows, before=False)
    assert from_members(hit.flows, before=True) == pytest.approx(from_members(none.flows, before=True), rel=1e-9)


def test_a_leverage_good_below_the_dependence_threshold_is_not_restricted_and_says_so():
    with pytest.warns(
        InactiveLeverWarning, match=r"^collective_response: .*CHN imports none .*>= 95%.*chips 90%.*so it cannot act"
    ):
        r = halt_toy(
            [
                "policy=collective_response",
                "policy.collective_response.shared_stock_months=0",
                "policy.collective_response.share_stockpiles=false",
                "policy.collective_response.buy_target_exports=false",
                "policy.collective_response.counter_restriction=0.5",
                "policy.collective_response.dependence_threshold=0.95",
            ]
        )
    assert r.metrics["lever_active.collective_response"] == 0


def test_on_rare_earth_2010_the_collective_response_says_which_parts_cannot_act():
    """Built, not run: Japan exports no rare earths China restricts and China imports none from the G7,
    so buying Japan's exports and the counter-restriction cannot act; the coalition stock can."""
    from sim.model.model import CoercionModel

    cfg = sim.compose_config("rare_earth_2010", ["policy=collective_response"])
    with pytest.warns(InactiveLeverWarning) as record:
        CoercionModel(cfg)
    messages = sorted(str(w.message) for w in record if w.category is InactiveLeverWarning)
    assert len(messages) == 2
    assert messages[0].startswith("collective_response.buy_target_exports: ")
    assert "JPN exports none of the coerced goods: ree_light, ree_heavy" in messages[0]
    assert messages[1].startswith("collective_response.counter_restriction: CHN imports none of the covered goods")


@pytest.mark.slow
def test_collective_response_changes_japans_outcome_on_rare_earth_2010_at_a_cost():
    """The headline of item 10: ``policy=collective_response`` on rare_earth_2010 no longer reproduces
    the run without policy. The USA and the EU share their coalition stock while the halt rations Japan."""
    none = sim.run("rare_earth_2010", ["policy=none"], seed=1)
    with pytest.warns(InactiveLeverWarning):
        cr = sim.run("rare_earth_2010", ["policy=collective_response"], seed=1)
    assert cr.metrics["output_loss.JPN"] < none.metrics["output_loss.JPN"]
    assert cr.metrics["lever_active.collective_response.share_stockpiles"] == 1
    assert cr.metrics["policy_cost.collective_response.USA"] > 0
    assert cr.metrics["policy_cost.collective_response.EU27"] > 0


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("shared_stock_months", "-1"),
        ("shared_stock_holding_cost", "-0.1"),
        ("counter_restriction", "1.5"),
        ("dependence_threshold", "0"),
    ],
)
def test_bad_collective_response_settings_are_rejected_before_the_run(key, value):
    with pytest.raises(ScenarioError) as exc:
        halt_toy(["policy=collective_response", f"policy.collective_response.{key}={value}"])
    message = str(exc.value)
    assert message.startswith(f"policy.collective_response.{key}: ") and value in message and "allowed" in message
