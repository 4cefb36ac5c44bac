"""Sensitivity analysis: designs (EMA's SALib samplers), the EMA runner on the small scenario, indices
against a closed-form case (the Ishigami function), bad input, the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.experiments.exploration import ExplorationError
from sim.experiments.sensitivity import Outcome, Uncertainty, analyze, indices_figure, problem, run_experiments, sample
from sim.world.scenario import ScenarioError

PARAMS = [Uncertainty("model.precaution", 1.0, 3.0), Uncertainty("model.sourcing_adjustment_rate", 0.01, 0.09)]


def test_designs():
    d = sample(PARAMS, "sobol", 8, seed=3)
    keys = ["model.precaution", "model.sourcing_adjustment_rate"]
    assert d.shape == (8 * (2 + 2), 2) and list(d.columns) == keys
    for key, p in zip(keys, PARAMS, strict=True):
        assert d[key].between(p.lower_bound, p.upper_bound).all()
    pd.testing.assert_frame_equal(d, sample(PARAMS, "sobol", 8, seed=3))
    m = sample(PARAMS, "morris", 5, seed=3)
    assert m.shape == (5 * 3, 2)
    with pytest.raises(ValueError, match="power of two"):
        sample(PARAMS, "sobol", 6)
    with pytest.raises(ValueError, match="method: 'fast' is invalid"):
        sample(PARAMS, "fast", 8)
    with pytest.raises(ExplorationError, match=r"model.precaution: range \[2.0, 1.0\] is invalid"):
        Uncertainty("model.precaution", 2.0, 1.0)
    with pytest.raises(ValueError, match="each config key once"):
        problem([PARAMS[0], PARAMS[0]])


def test_sobol_indices_of_the_ishigami_function():
    """Closed form: S1 = (0.314, 0.442, 0), ST = (0.558, 0.442, 0.244) (Ishigami & Homma 1990)."""
    from SALib.test_functions import Ishigami

    params = [Uncertainty(f"x{i}", -np.pi, np.pi) for i in range(1, 4)]
    design = sample(params, "sobol", 2**12, seed=1)
    design["y"] = Ishigami.evaluate(design.to_numpy())
    idx = analyze(params, design, ["y"], "sobol", seed=1).set_index("parameter")
    assert idx["S1"].to_numpy() == pytest.approx([0.314, 0.442, 0.0], abs=0.03)
    assert idx["ST"].to_numpy() == pytest.approx([0.558, 0.442, 0.244], abs=0.03)
    morris_design = sample(params, "morris", 60, seed=1)
    morris_design["y"] = Ishigami.evaluate(morris_design[["x1", "x2", "x3"]].to_numpy())
    mi = analyze(params, morris_design, [Outcome("y")], "morris", seed=1).set_index("parameter")
    assert mi.loc["x2", "mu_star"] > mi.loc["x3", "mu_star"] > 0  # x3 acts only through its interaction
    fig = indices_figure(idx.reset_index())
    assert isinstance(fig, Figure) and len(fig.axes) == 1


def test_run_experiments_in_memory_matches_sim_run():
    import sim

    design = sample(PARAMS, "morris", 2, seed=1)
    out = run_experiments(
        design,
        ["output_loss_share.JPN", "peak_export_price_ratio.ore"],
        scenario="minimal",
        seed=2,
        n_jobs=1,
        parameters=PARAMS,
    )
    assert len(out) == len(design) and np.isfinite(out[["output_loss_share.JPN", "wall_seconds"]]).all().all()
    row = out.iloc[0]
    overrides = [f"{key}={float(row[key])!r}" for key in ("model.precaution", "model.sourcing_adjustment_rate")]
    ref = sim.run("minimal", overrides, seed=2)
    assert row["output_loss_share.JPN"] == pytest.approx(ref.metrics["output_loss_share.JPN"], rel=1e-9)
    assert row["peak_export_price_ratio.ore"] == pytest.approx(ref.metrics["peak_export_price_ratio.ore"], rel=1e-9)
    # The outcome responds to the parameters.
    assert out["peak_export_price_ratio.ore"].nunique() > 1


def test_bad_input_fails_before_running():
    design = sample(PARAMS, "morris", 2, seed=1)
    with pytest.raises(ExplorationError, match="model.no_such_key"):
        run_experiments(
            design.rename(columns={"model.precaution": "model.no_such_key"}),
            ["output_loss_share.JPN"],
            scenario="minimal",
        )
    bad = [Uncertainty("scenario.goods.0.armington_elasticity", 0.5, 3.0)]
    with pytest.raises(ScenarioError, match=r"scenario.goods\[0\].armington_elasticity: 0.5 is invalid"):
        run_experiments(sample(bad, "morris", 2), ["output_loss_share.JPN"], scenario="minimal", parameters=bad)
    with pytest.raises(ExplorationError, match="not metrics of minimal"):
        run_experiments(design.iloc[:1], ["output_loss_share.XXX"], scenario="minimal", parameters=PARAMS)


@pytest.mark.slow
def test_parallel_workers_give_the_same_outcomes():
    design = sample(PARAMS, "morris", 2, seed=4)
    one = run_experiments(design, ["output_loss_share.JPN"], scenario="minimal", n_jobs=1, parameters=PARAMS)
    two = run_experiments(design, ["output_loss_share.JPN"], scenario="minimal", n_jobs=2, parameters=PARAMS)
    pd.testing.assert_series_equal(one["output_loss_share.JPN"], two["output_loss_share.JPN"])


def test_outcomes_in_memory_equal_the_run_metrics():
    import helpers

    from sim.experiments.sensitivity import outcomes_in_memory

    ref = helpers.cached_run("minimal", (), 1).metrics
    got = outcomes_in_memory(helpers.minimal_cfg(["seed=1"]))
    assert helpers.metrics_without_wall_time(got) == helpers.metrics_without_wall_time(ref)
