"""Exploratory modelling with the EMA Workbench: the model on the small scenario (seeded,
reproducible, equal to the single run), PRIM and feature scoring on constructed cases whose answer
is known, the minimax-regret ranking, and bad names failing before anything runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.experiments import exploration as ex
from sim.experiments.exploration import ExplorationError
from sim.world.scenario import ScenarioError

UNCERTAINTIES = {"model.precaution": (1.0, 3.0), "scenario.goods.0.armington_elasticity": (2.0, 5.0)}
LEVERS = {"policy.stockpile.months": (0.0, 4.0)}
OUTCOMES = ["output_loss_share.JPN", "output_loss.JPN", "policy_cost.total.JPN"]


def _model(replications=(1, 2)):
    return ex.ema_model(
        "minimal", UNCERTAINTIES, LEVERS, OUTCOMES, policies=["stockpile"], replications=list(replications)
    )


@pytest.fixture(scope="module")
def tiny():
    """2 scenarios x 2 policies x 2 seeds = 8 runs of the minimal scenario."""
    model = _model()
    return model, *ex.perform_experiments(model, 2, 2, seed=3)


def test_the_model_speaks_ema(tiny):
    model, experiments, outcomes = tiny
    assert [p.name for p in model.uncertainties] == ["model__precaution", "scenario__goods__0__armington_elasticity"]
    assert [p.variable_name for p in model.levers] == [["policy.stockpile.months"]]
    assert len(experiments) == 4 and set(outcomes) == {ex.ema_name(k) for k in OUTCOMES}
    assert all(v.shape == (4, 2) for v in outcomes.values())
    assert np.isfinite(outcomes["output_loss_share__JPN"]).all()
    # Levers vary between policies, uncertainties between scenarios (full factorial).
    assert experiments.groupby("policy")["policy__stockpile__months"].nunique().eq(1).all()
    assert experiments["policy__stockpile__months"].nunique() == 2
    # Replications are seeds: the two seeds give different runs.
    assert not np.allclose(outcomes["output_loss__JPN"][:, 0], outcomes["output_loss__JPN"][:, 1])


def test_same_seed_same_outcomes(tiny):
    model, experiments, outcomes = tiny
    again_exp, again = ex.perform_experiments(_model(), 2, 2, seed=3)
    params = ["model__precaution", "scenario__goods__0__armington_elasticity", "policy__stockpile__months"]
    pd.testing.assert_frame_equal(experiments[params], again_exp[params])
    for name in outcomes:
        np.testing.assert_allclose(outcomes[name], again[name], rtol=1e-12)


def test_an_experiment_equals_the_single_run(tiny):
    _, experiments, outcomes = tiny
    row = experiments.iloc[1]
    metrics = ex.run(
        {"model.precaution": row["model__precaution"], "scenario.goods.0.armington_elasticity": row.iloc[1]},
        {"policy.stockpile.months": row["policy__stockpile__months"]},
        seed=2,
        case="minimal",
        policies=["stockpile"],
    )
    assert outcomes["output_loss__JPN"][1, 1] == pytest.approx(metrics["output_loss.JPN"], rel=1e-9)
    table = ex.results_table(experiments, outcomes, seeds=[1, 2])
    assert len(table) == 8 and list(table["seed"][:2]) == [1, 2]
    assert {"model.precaution", "policy.stockpile.months", "output_loss.JPN"} <= set(table.columns)


def test_bad_names_fail_with_one_message_before_running():
    with pytest.raises(ExplorationError) as err:
        ex.ema_model("minimal", {"model.precuation": (1.0, 3.0), "scenario.goods.0.no_such_field": (1.0, 2.0)})
    message = str(err.value)
    assert "model.precuation (did you mean model.precaution" in message
    assert "scenario.goods.0.no_such_field" in message and "not a key of the minimal configuration" in message
    # A lever needs its policy group selected.
    with pytest.raises(ExplorationError, match="policy.stockpile.months.*lever needs its policy group"):
        ex.ema_model("minimal", levers={"policy.stockpile.months": (0.0, 3.0)})
    # A key whose value is null in the file is a key (the check then applies the value).
    with pytest.raises(ScenarioError, match="policy.stockpile.start"):
        ex.ema_model("minimal", levers={"policy.stockpile.start": ["2021-01", "1999-01"]}, policies=["stockpile"])
    with pytest.raises(ExplorationError, match="given more than once"):
        ex.ema_model("minimal", {"model.precaution": (1.0, 2.0)}, [ex.parameter("model.precaution", 1.0, 3.0)])
    with pytest.raises(ScenarioError, match=r"armington_elasticity: 0.5 is invalid"):
        ex.ema_model("minimal", {"scenario.goods.0.armington_elasticity": (0.5, 3.0)})
    with pytest.raises(ExplorationError, match=r"range \[3.0, 1.0\] is invalid"):
        ex.parameter("model.precaution", 3.0, 1.0)
    with pytest.raises(ExplorationError, match="not metrics of minimal"):
        ex.CaseRunner("minimal", outcomes=("no.such",)).run(seed=1)


def _constructed(n=600, seed=5):
    """Inputs x1, x2, x3 on [0, 1] (Latin hypercube, EMA's sampler); the answer is known."""
    from ema_workbench.em_framework.samplers import LHSSampler

    params = [ex.parameter(f"x{i}", 0.0, 1.0) for i in (1, 2, 3)]
    samples = LHSSampler().generate_samples(params, n, rng=seed)
    return pd.DataFrame(samples.samples, columns=[p.name for p in params])


def test_prim_finds_the_box_where_failure_is_known():
    x = _constructed()
    fails = (x["x1"] > 0.7) & (x["x2"] < 0.5)  # the policy fails iff x1 > 0.7 and x2 < 0.5
    boxes = ex.discover(x, fails.to_numpy(), min_density=1.0)
    first = boxes[boxes["box"] == 0].set_index("input")
    assert set(first.index) == {"x1", "x2"}  # x3 plays no part
    assert first.loc["x1", "low"] == pytest.approx(0.7, abs=0.04) and first.loc["x1", "high"] == pytest.approx(
        1.0, abs=0.01
    )
    assert first.loc["x2", "high"] == pytest.approx(0.5, abs=0.04) and first.loc["x2", "low"] == pytest.approx(
        0.0, abs=0.01
    )
    assert first["coverage"].iloc[0] >= 0.85 and first["density"].iloc[0] == 1.0
    assert first["mass"].iloc[0] == pytest.approx(0.3 * 0.5, abs=0.05)
    # Nothing fails: no box.
    assert ex.discover(x, np.zeros(len(x), dtype=bool)).empty
    with pytest.raises(ExplorationError, match="one each"):
        ex.discover(x, fails.to_numpy()[:-1])


def test_feature_scores_rank_the_input_that_matters():
    x = _constructed(300)
    y = np.sin(3 * x["x2"].to_numpy()) + 0.01 * x["x1"].to_numpy()
    scores = ex.feature_scores(x, {"y": y, "fails": y > 0.8}, seed=1)
    assert list(scores.columns) == ["y", "fails"]
    assert scores.index[0] == "x2" and scores.loc["x2", "y"] > 0.6
    assert scores["fails"].idxmax() == "x2"
    assert scores.sum().to_numpy() == pytest.approx([1.0, 1.0])


def test_regret_ranks_a_dominated_lever_last():
    rng = np.random.default_rng(2)
    n_scen = 12
    scenarios = np.tile(np.arange(n_scen), 3)
    policies = np.repeat(["cheap", "robust", "dominated"], n_scen)
    levers = np.repeat([1.0, 2.0, 3.0], n_scen)
    experiments = pd.DataFrame({"x1": rng.uniform(size=n_scen)[scenarios], "policy__stockpile__months": levers}).assign(
        scenario=scenarios, policy=policies, model="m"
    )
    s = experiments["x1"].to_numpy()
    loss = np.where(policies == "cheap", 10 * s, np.where(policies == "robust", 3 + 2 * s, 3 + 2 * s + 1))
    cost = np.where(policies == "cheap", 0.0, 1.0)
    outcomes = {"loss": np.c_[loss, loss], "cost": cost}  # replications as columns, or one value
    table = ex.regret(experiments, outcomes, {"total": ["loss", "cost"], "loss": "loss"})
    assert table["policy"].iloc[-1] == "dominated" and list(table["rank"]) == [1, 2, 3]
    dominated = table.set_index("policy").loc["dominated"]
    assert dominated["max_regret.total"] > 0 and dominated["mean_regret.loss"] > 0
    assert table.set_index("policy").loc["dominated", "policy.stockpile.months"] == 3.0
    with pytest.raises(ExplorationError, match="full-factorial"):
        ex.regret(experiments.iloc[:-1], {k: np.asarray(v)[:-1] for k, v in outcomes.items()}, {"loss": "loss"})
    with pytest.raises(ExplorationError, match="not an outcome"):
        ex.regret(experiments, outcomes, {"x": "no.such"})


def test_categorical_levers_are_checked_value_by_value():
    import ema_workbench as ema

    model = ex.ema_model(
        "minimal",
        levers={
            "policy.stockpile.release_on": ["shortage", "price", "either"],
            "policy.stockpile.cost_initial_fill": [False, True],
        },
        policies=["stockpile"],
    )
    release, fill = model.levers
    assert isinstance(release, ema.CategoricalParameter) and isinstance(fill, ema.BooleanParameter)
    with pytest.raises(ScenarioError, match="release_on"):
        ex.ema_model("minimal", levers={"policy.stockpile.release_on": ["shortage", "never"]}, policies=["stockpile"])
