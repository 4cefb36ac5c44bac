"""Calibration with uncertainty (sim/experiments/calibration.py, experiments/validate.py; docs/calibration.md).

Fast tests check the statistics, the distance, the posterior's weights and that the report is rebuilt from
the files alone (synthetic files, no model run). Slow tests recover known parameters from data the model
made itself (the minimal world) and run ``make validate-quick`` end to end.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import helpers
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.experiments import calibration as cal
from sim.reporting.figures import load_history


@pytest.fixture(scope="module")
def obs():
    return cal.observations(load_history("rare_earth_2010_history.csv"), "2009-01", "2020-12")


def test_observations_are_unit_free_and_inside_the_run(obs):
    """Every observation is a ratio or a share in the run's window; the element baselines (ratio 1) and
    observations after the run's end (2022-2025 shares) are left out."""
    assert set(obs.group) == {
        "export_price.ree_light",
        "export_price.ree_heavy",
        "domestic_price.ree_light",
        "domestic_price.ree_heavy",
        "japan_china_share",
        "china_exports",
    }
    assert obs.date.min() >= pd.Timestamp("2009-01-01") and obs.date.max() <= pd.Timestamp("2020-12-31")
    assert (obs.observed > 0).all()
    share = obs[obs.group == "japan_china_share"].observed
    assert share.between(0, 1).all()
    assert not ((obs.group.str.startswith("export_price")) & (obs.observed == 1.0)).any()
    assert set(obs.quality_weight) <= {0.5, 1.0}


def test_distance_is_zero_at_the_observations_and_grows_with_the_error(obs):
    o, g, q = obs.observed.to_numpy(), obs.group.to_numpy(), obs.quality_weight.to_numpy()
    assert cal.distance(o, o, g, q) == 0.0
    near = np.where(obs.group == "japan_china_share", o + 0.05, o * 1.5)
    far = np.where(obs.group == "japan_china_share", o + 0.10, o * 3.0)
    assert 0 < cal.distance(near, o, g, q) < cal.distance(far, o, g, q)
    # a factor of 2 on every ratio and 10 points on every share is one unit of distance
    unit = np.where(obs.group == "japan_china_share", o + 0.10, o * 2.0)
    assert cal.distance(unit, o, g, q) == pytest.approx(1.0, rel=1e-9)
    bad = o.copy()
    bad[0] = np.nan
    assert cal.distance(bad, o, g, q) == math.inf


def test_an_unknown_group_is_refused():
    with pytest.raises(cal.CalibrationError, match=r"observations\.group: 'volume'"):
        cal.distance(np.ones(1), np.ones(1), np.array(["volume"]), np.ones(1))


def _posterior(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({p.name: rng.uniform(p.low, p.high, n) for p in cal.PARAMETERS})
    w = rng.uniform(0.1, 1.0, n)
    df["weight"] = w / w.sum()
    return df


@given(n=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_resampled_draws_come_from_the_posterior_and_weights_check(n, seed):
    post = _posterior(n, seed)
    cal.check_weights(post)
    draws = cal.resample(post, 25, seed)
    assert len(draws) == 25 and list(draws.columns) == [p.name for p in cal.PARAMETERS]
    assert draws.merge(post, on=list(draws.columns), how="left").weight.notna().all()


def test_invalid_weights_are_refused():
    post = _posterior(5)
    post.loc[0, "weight"] = -post.loc[0, "weight"]
    with pytest.raises(cal.CalibrationError, match="posterior.weight"):
        cal.check_weights(post)


def test_shrinkage_is_high_for_a_narrow_posterior_and_near_zero_for_the_prior():
    rng = np.random.default_rng(3)
    n = 4000
    post = pd.DataFrame({p.name: rng.uniform(p.low, p.high, n) for p in cal.PARAMETERS})
    first = cal.PARAMETERS[0]
    post[first.name] = rng.normal(first.default, first.prior_sd * 0.1, n)
    post["weight"] = 1.0 / n
    table, corr = cal.identifiability(post)
    t = table.set_index("parameter")
    assert t.loc[first.name, "shrinkage"] == pytest.approx(0.9, abs=0.02)
    assert t.loc[first.name, "verdict"] == "pinned down"
    others = t.drop(index=first.name)
    assert (others.shrinkage.abs() < 0.05).all() and (others.verdict == "not identified").all()
    assert np.allclose(np.diag(corr), 1.0)


def _synthetic_outputs(out):
    """A validation folder's files, made up (no model run): two draws of two cases, three levers."""
    post = _posterior(30)
    post.to_parquet(out / "posterior.parquet")
    dates = pd.date_range("2009-01-01", "2020-12-01", freq="MS")
    rows = []
    for case in ("rare_earth_2010", "australia_2020"):
        for d in (0, 1):
            for var, country, good in (
                ("price_export_ratio", "CHN", "ree_light"),
                ("price_export_ratio", "CHN", "ree_heavy"),
                ("price_domestic_ratio", "CHN", "ree_light"),
                ("price_domestic_ratio", "CHN", "ree_heavy"),
                ("coercer_import_share", "JPN", "all"),
                ("coercer_exports", "CHN", "all"),
            ):
                value = np.linspace(1.0, 2.0 + d, len(dates)) if var != "coercer_import_share" else 0.8 - 0.01 * d
                rows.append(
                    pd.DataFrame(
                        {
                            "case": case,
                            "kind": "draw",
                            "draw": d,
                            "seed": 1,
                            "quantile": np.nan,
                            "date": dates,
                            "country": country,
                            "good": good,
                            "variable": var,
                            "value": value,
                        }
                    )
                )
            rows.append(
                pd.DataFrame(
                    {
                        "case": [case],
                        "kind": "draw",
                        "draw": d,
                        "seed": 1,
                        "quantile": np.nan,
                        "date": pd.NaT,
                        "country": "",
                        "good": "",
                        "variable": "output_loss_share.JPN",
                        "value": 0.01 * (d + 1),
                    }
                )
            )
    draws = pd.concat(rows, ignore_index=True)
    q = cal.quantiles(draws[draws.date.notna()])
    pd.concat([draws, q[draws.columns]], ignore_index=True).to_parquet(out / "predictive.parquet")
    lever_rows = [
        {"variant": v, "draw": d, "seed": 1, "output_loss": loss - d, "output_loss_share": 0.01, "lever_cost": 1.0}
        for d in range(3)
        for v, loss in (("none", 100.0), ("stockpile", 60.0), ("diversification", 80.0), ("historical_mix", 50.0))
    ]
    cal.lever_table(lever_rows).to_parquet(out / "levers.parquet")
    (out / "provenance.json").write_text(json.dumps({"seed": 7, "budget": {"population": 30}}))


def test_report_is_rebuilt_from_the_files_alone(tmp_path):
    _synthetic_outputs(tmp_path)
    history = load_history("rare_earth_2010_history.csv")
    text = cal.write_report(tmp_path, history=history)
    assert (tmp_path / "report.md").read_text() == text
    for heading in (
        "## Method",
        "## Posterior",
        "## Identifiability",
        "## Calibration table (rare_earth_2010, posterior predictive)",
        "## In-sample case: rare_earth_2010",
        "## Out-of-sample case: australia_2020",
        "## Lever comparison over posterior draws",
    ):
        assert heading in text
    assert cal.write_report(tmp_path, history=history) == text  # the same files, the same report


def test_lever_ranking_counts_first_places_and_bands_the_damage_avoided():
    rows = [
        {"variant": v, "draw": d, "seed": 1, "output_loss": loss, "output_loss_share": 0.0, "lever_cost": 0.0}
        for d, (a, b) in enumerate([(60.0, 80.0), (70.0, 65.0), (50.0, 90.0), (55.0, 95.0)])
        for v, loss in (("none", 100.0), ("stockpile", a), ("diversification", b), ("historical_mix", 10.0))
    ]
    summary = cal.lever_summary(cal.lever_table(rows)).set_index("variant")
    assert summary.loc["stockpile", "share_ranked_first"] == pytest.approx(0.75)
    assert summary.loc["diversification", "share_ranked_first"] == pytest.approx(0.25)
    assert np.isnan(summary.loc["historical_mix", "share_ranked_first"])  # not ranked against single levers
    assert summary.loc["stockpile", "avoided_q05"] <= summary.loc["stockpile", "avoided_q50"]
    assert summary.loc["stockpile", "avoided_q50"] <= summary.loc["stockpile", "avoided_q95"]


# --------------------------------------------------------------------------------------------------
# Slow: parameter recovery and the quick target end to end
# --------------------------------------------------------------------------------------------------
#: Parameters recovered on the minimal world, their true values and the tolerance on the posterior mean.
RECOVERY = {"long_run_thrift": (1.4, 0.3), "sourcing_adjustment_rate": (0.06, 0.02)}


def _synthetic_history(paths) -> pd.DataFrame:
    """History rows in the format of sim/world/data/*_history.csv from a run's paths (the minimal world)."""
    dates = pd.to_datetime(paths["dates"])
    pe = paths[("price_export_ratio", "CHN", "ore")]
    share = paths[("coercer_import_share", "JPN", "all")]
    rows = []
    for k in range(12, len(dates), 2):
        d = dates[k] + pd.Timedelta(days=14)
        rows.append(("export_price", "ore", "ore", d, np.nan, pe[k], "synthetic", "model", "ok"))
        rows.append(("china_share_of_japan_imports", "", "all", d, share[k], np.nan, "monthly", "model", "ok"))
    return pd.DataFrame(
        rows, columns=["series", "good", "element", "date", "value", "ratio_to_baseline", "basis", "source", "quality"]
    )


@pytest.mark.slow
def test_abc_recovers_known_parameters_from_data_the_model_made(tmp_path):
    """ABC-SMC with a small budget (30 particles, 4 generations, <= 300 runs of the minimal world) puts
    the posterior mean of each parameter within its stated tolerance of the value that made the data
    (15 % of the prior width for thrift, 25 % for the sourcing rate) and shrinks thrift's spread by half."""
    params = tuple(p for p in cal.PARAMETERS if p.name in RECOVERY)
    truth = {name: v for name, (v, _) in RECOVERY.items()}
    _, paths = cal.simulate(cal._runner("minimal"), truth, 1, params)
    obs = cal.observations(_synthetic_history(paths), "2020-01", "2022-12")
    hist = cal.run_abc(
        str(tmp_path / "abc.db"),
        case="minimal",
        obs=obs,
        parameters=params,
        population=30,
        generations=4,
        max_simulations=300,
        seed=5,
    )
    post = cal.posterior_frame(hist, params)
    cal.check_weights(post)
    table = cal.identifiability(post, params)[0].set_index("parameter")
    for name, (value, tol) in RECOVERY.items():
        assert abs(table.loc[name, "mean"] - value) <= tol, table.loc[name].to_dict()
    assert table.loc["long_run_thrift", "shrinkage"] >= 0.5


@pytest.mark.slow
def test_validate_quick_runs_end_to_end(tmp_path):
    """``experiments/validate.py --budget quick`` (what ``make validate-quick`` runs) writes every output."""
    cmd = [
        sys.executable,
        "experiments/validate.py",
        "--budget",
        "quick",
        "--progress",
        "never",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(cmd, cwd=helpers.REPO_ROOT, check=True, timeout=3600)
    (out,) = list(tmp_path.iterdir())
    for name in ("posterior.parquet", "predictive.parquet", "levers.parquet", "report.md", "provenance.json"):
        assert (out / name).exists(), name
    for fig in ("corner", "fan_rare_earth_2010", "levers"):
        assert (out / "figures" / f"{fig}.png").exists() and (out / "figures" / f"{fig}.pdf").exists()
    post = pd.read_parquet(out / "posterior.parquet")
    cal.check_weights(post)
    pred = pd.read_parquet(out / "predictive.parquet")
    assert set(pred.case) == set(cal.SHIPPED_CASES)
    assert {"case", "kind", "draw", "quantile", "date", "country", "good", "variable", "value"} <= set(pred.columns)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 1 and prov["budget_name"] == "quick"


@pytest.mark.slow
def test_abc_is_reproducible_from_its_seed_whatever_the_number_of_workers(tmp_path):
    """The same seed and budget give the same posterior with one process and with two worker processes
    (particles are seeded from the main process, not by each worker)."""
    import multiprocessing as mp

    params = tuple(p for p in cal.PARAMETERS if p.name in RECOVERY)
    truth = {name: v for name, (v, _) in RECOVERY.items()}
    _, paths = cal.simulate(cal._runner("minimal"), truth, 1, params)
    obs = cal.observations(_synthetic_history(paths), "2020-01", "2022-12")
    kw = dict(case="minimal", obs=obs, parameters=params, population=6, generations=2, max_simulations=60, seed=3)
    serial = cal.posterior_frame(cal.run_abc(str(tmp_path / "a.db"), **kw), params)
    with mp.get_context("spawn").Pool(2) as pool:
        pooled = cal.posterior_frame(cal.run_abc(str(tmp_path / "b.db"), map_=pool.map, **kw), params)
    pd.testing.assert_frame_equal(serial, pooled, check_exact=False, rtol=1e-9)
