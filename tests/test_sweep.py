"""Sweeps end to end through the real command line: the basic, joblib and submitit launchers, a failed
combination kept as a row, resume, replications, progress lines and the collected results table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import helpers
import pandas as pd
import pytest

from sim.experiments.sweep import replication_seed

#: Common to every sweep here: the small scenario, no figures or flows (fast).
FAST = ["scenario=minimal", "output.figures=false", "output.flows=false"]


def multirun(args, sweep_dir: Path) -> subprocess.CompletedProcess:
    sweep_dir = Path(sweep_dir)
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [helpers.coercion_sim_exe(), "-m", *FAST, *args, f"hydra.sweep.dir={sweep_dir}"],
        cwd=sweep_dir.parent,
        env=helpers.cli_env(),
        capture_output=True,
        text=True,
        timeout=helpers.CLI_TIMEOUT_S,
    )


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory):
    """A 2 x 2 sweep on the basic launcher in which one Armington value (0.5) fails validation."""
    helpers.warm_numba_cache()
    sweep_dir = tmp_path_factory.mktemp("basic") / "sweep"
    args = ["model.precaution=1,3", "scenario.goods.0.armington_elasticity=0.5,4", "seed=3"]
    proc = multirun(args, sweep_dir)
    return args, sweep_dir, proc


def test_each_job_logs_what_it_ran_into_its_folder(basic_sweep):
    """A job's ``coercion-sim.log`` says what it ran and how it ended (the summary, or the failure)."""
    _, sweep_dir, proc = basic_sweep
    ok(proc)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    for _, row in res.iterrows():
        log = (sweep_dir / str(row["job"]) / "coercion-sim.log").read_text()
        if row["status"] == "ok":
            assert (
                "scenario minimal, seed 3" in log and "output loss (share of each country's baseline value added" in log
            )
            assert "wrote timeseries.parquet" in log
        else:
            assert f"job {row['job']} failed" in log and "armington_elasticity" in log


def test_failed_combination_is_a_row_and_the_rest_is_kept(basic_sweep):
    _, sweep_dir, proc = basic_sweep
    out = ok(proc)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 4
    assert sorted(res["status"]) == ["failed", "failed", "ok", "ok"]
    failed = res[res["status"] == "failed"]
    assert (failed["scenario.goods.0.armington_elasticity"] == 0.5).all()
    for err in failed["error"]:
        assert "scenario.goods[0].armington_elasticity" in err and "0.5" in err and "> 1" in err
    good = res[res["status"] == "ok"]
    assert (good["scenario.goods.0.armington_elasticity"] == 4).all()
    assert sorted(good["model.precaution"]) == [1, 3]
    assert good["error"].isna().all()
    assert (good["seed"] == 3).all()
    assert good["output_loss_share.JPN"].notna().all() and (good["output_loss_share.JPN"] > 0).all()
    # Each job's own directory: complete outputs, or a failure marker and no provenance.
    for _, row in res.iterrows():
        job = sweep_dir / str(row["job"])
        assert (job / "provenance.json").exists() == (row["status"] == "ok")
        assert (job / "failed.json").exists() == (row["status"] == "failed")
    marker = json.loads((sweep_dir / str(failed["job"].iloc[0]) / "failed.json").read_text())
    assert marker["error_type"] == "ScenarioError"
    assert "scenario.goods.0.armington_elasticity=0.5" in marker["overrides"]
    assert helpers.temp_files_in(sweep_dir) == []
    # Progress after each job and the collector's summary at the end.
    for k in range(1, 5):
        assert f"[{k}/4] job" in out
    assert "2 ok, 2 failed, 0 pending" in out


def test_composition_error_in_one_combination_stops_the_sweep_before_any_job_runs(tmp_path):
    """A value Hydra cannot compose (an unknown scenario, a string for a float) in one combination:
    Hydra's basic sweeper composes every combination before launching, so the sweep exits non-zero
    naming the bad value and no job directory (no partial result) is written."""
    helpers.warm_numba_cache()
    for name, args, needle in [
        ("scenario", ["scenario=minimal,nope"], "nope"),
        ("type", ["model.precaution=1,abc"], "abc"),
    ]:
        sweep_dir = tmp_path / name / "sweep"
        proc = multirun(args, sweep_dir)
        assert proc.returncode != 0, name
        assert needle in proc.stdout + proc.stderr, (name, proc.stderr[-2000:])
        jobs = (
            [p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] if sweep_dir.exists() else []
        )
        assert jobs == [], (name, jobs)


def test_a_sweep_stopped_by_a_misspelt_key_leaves_no_plan(tmp_path):
    """A misspelt key stops the sweep while Hydra composes its jobs, after the plan (sweep.json) was
    written: the plan and the sweep folder it was alone in are removed, so ``coercion-sim-collect``
    cannot report jobs pending that will never run."""
    sweep_dir = tmp_path / "runs" / "sweep"
    proc = multirun(["model.precaution=1,3", "model.risk_avresion=2"], sweep_dir)
    assert proc.returncode != 0 and "risk_avresion" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not sweep_dir.exists(), sorted(str(p) for p in sweep_dir.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and list((tmp_path / "runs").iterdir()) == []


def test_discard_unstarted_plans_keeps_a_plan_whose_jobs_started(tmp_path, monkeypatch):
    from sim.experiments import sweep as sweep_mod

    monkeypatch.chdir(tmp_path)
    started, unstarted = tmp_path / "a" / "sweep", tmp_path / "b" / "sweep"
    for d in (started, unstarted):
        d.mkdir(parents=True)
        (d / "sweep.json").write_text("{}")
    (started / "0").mkdir()
    monkeypatch.setattr(sweep_mod, "_PLANS_WRITTEN", [started / "sweep.json", unstarted / "sweep.json"])
    assert sweep_mod.discard_unstarted_plans() == [unstarted / "sweep.json"]
    assert (started / "sweep.json").is_file()
    assert not (tmp_path / "b").exists()  # the emptied folders up to the working directory
    assert sweep_mod._PLANS_WRITTEN == []


def test_sweep_jobs_draw_no_figures_unless_asked(tmp_path):
    """``output.figures=auto`` (the default): a single run draws figures (test_cli), a sweep job does
    not; ``output.figures=true`` draws them in a sweep too."""
    helpers.warm_numba_cache()
    base = ["scenario=minimal", "output.flows=false", "seed=1"]
    for figures, expected in (("auto", False), ("true", True)):
        sweep_dir = tmp_path / figures / "sweep"
        sweep_dir.parent.mkdir(parents=True)
        proc = subprocess.run(
            [
                helpers.coercion_sim_exe(),
                "-m",
                *base,
                f"output.figures={figures}",
                "model.precaution=1,2",
                f"hydra.sweep.dir={sweep_dir}",
            ],
            cwd=sweep_dir.parent,
            env=helpers.cli_env(),
            capture_output=True,
            text=True,
            timeout=helpers.CLI_TIMEOUT_S,
        )
        ok(proc)
        for job in ("0", "1"):
            assert (sweep_dir / job / "metrics.json").is_file()
            assert (sweep_dir / job / "figures" / "overview.pdf").is_file() == expected, (figures, job)


def test_results_columns_are_overrides_then_metrics(basic_sweep):
    _, sweep_dir, _ = basic_sweep
    res = pd.read_parquet(sweep_dir / "results.parquet")
    cols = list(res.columns)
    assert cols[0] == "job"
    for key in ("scenario", "model.precaution", "scenario.goods.0.armington_elasticity", "seed", "status", "error"):
        assert key in cols
    # output.figures is overridden too, but does not change results (sim.experiments.sweep.NON_RESULT_KEYS): no column
    assert res.attrs["override_columns"] == [
        "scenario",
        "output.flows",
        "model.precaution",
        "scenario.goods.0.armington_elasticity",
        "seed",
    ]
    assert "run_seconds" in cols and (res.loc[res["status"] == "ok", "run_seconds"] > 0).all()
    row = res[res["status"] == "ok"].iloc[0]
    metrics = json.loads((sweep_dir / str(row["job"]) / "metrics.json").read_text())
    for key, value in metrics.items():
        if key in ("seed", "scenario"):
            continue
        assert key in cols, key
        if isinstance(value, float):
            assert pd.api.types.is_float_dtype(res[key]) and row[key] == pytest.approx(value)
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    assert plan["total"] == 4 and len(plan["jobs"]) == 4


def test_resume_skips_finished_jobs(basic_sweep):
    args, sweep_dir, first = basic_sweep
    ok(first)
    res = pd.read_parquet(sweep_dir / "results.parquet")
    done = res.loc[res["status"] == "ok", "job"].tolist()
    stamps = {j: (sweep_dir / j / "provenance.json").stat().st_mtime_ns for j in done}
    out = ok(multirun([*args, "resume=true"], sweep_dir))
    assert out.count("skipped (resume=true)") == 2
    for j in done:
        assert (sweep_dir / j / "provenance.json").stat().st_mtime_ns == stamps[j], f"job {j} was run again"
    again = pd.read_parquet(sweep_dir / "results.parquet")
    assert sorted(again["status"]) == ["failed", "failed", "ok", "ok"]
    assert "resume" not in again.columns  # the switch is not a result-relevant override
    # A changed configuration in the same directory is not skipped.
    other = ["model.precaution=1", "scenario.goods.0.armington_elasticity=4", "seed=4", "resume=true"]
    changed = ok(multirun(other, sweep_dir))
    assert "skipped" not in changed.split("sweep of 1 jobs")[-1]


def test_joblib_launcher_with_replications(tmp_path):
    helpers.warm_numba_cache()
    sweep_dir = tmp_path / "sweep"
    launcher = ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]
    proc = multirun([*launcher, "seed=5", "replication=range(0,3)"], sweep_dir)
    out = ok(proc)
    assert "Joblib.Parallel" in out
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 3 and (res["status"] == "ok").all()
    expected = [replication_seed(5, k) for k in range(3)]
    assert sorted(res["replication"]) == [0, 1, 2]
    assert list(res.sort_values("replication")["seed"]) == expected
    assert len(set(expected)) == 3 and (res["root_seed"] == 5).all()
    for _, row in res.iterrows():
        job = sweep_dir / str(row["job"])
        assert json.loads((job / "metrics.json").read_text())["seed"] == row["seed"]
        saved = (job / "config.yaml").read_text()
        assert "\nseed: 5\n" in f"\n{saved}" and f"replication: {row['replication']}" in saved
    # Replications differ (firm heterogeneity) and are summarised over.
    assert res["output_loss.JPN"].nunique() == 3
    summary = pd.read_parquet(sweep_dir / "results_summary.parquet")
    row = summary[summary["outcome"] == "output_loss.JPN"].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(res["output_loss.JPN"].mean())
    assert row["q50"] == pytest.approx(res["output_loss.JPN"].median())


def test_submitit_local_launcher(tmp_path):
    """The SLURM launcher's code path (submitit), run by its local executor."""
    helpers.warm_numba_cache()
    sweep_dir = tmp_path / "sweep"
    out = ok(multirun(["hydra/launcher=local_submitit", "seed=0,1"], sweep_dir))
    assert "Submitit 'local'" in out
    res = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(res) == 2 and (res["status"] == "ok").all()
    assert sorted(res["seed"]) == [0, 1]
    assert (sweep_dir / ".submitit").is_dir()
    assert "2 ok, 0 failed, 0 pending" in out


def test_single_run_replication_and_bad_replication(tmp_path):
    helpers.warm_numba_cache()
    runs = helpers.run_cli_many(
        {
            "good": (["scenario=minimal", "seed=9", "replication=2", "output.figures=false"], tmp_path / "good"),
            "bad": (["scenario=minimal", "seed=9", "replication=-1"], tmp_path / "bad"),
        }
    )
    good, bad = runs["good"], runs["bad"]
    assert good.returncode == 0, good.stderr
    metrics = json.loads((good.run_dir / "metrics.json").read_text())
    assert metrics["seed"] == replication_seed(9, 2)
    prov = json.loads((good.run_dir / "provenance.json").read_text())
    assert prov["root_seed"] == 9 and prov["replication"] == 2
    assert bad.returncode == 2
    assert "replication: -1 is invalid" in bad.stderr
    assert helpers.output_files_in(bad.run_dir) == []


@pytest.mark.parametrize(
    ("preset", "target", "expected"),
    [
        ("slurm", "SlurmLauncher", {"timeout_min": 20, "mem_gb": 4, "array_parallelism": 64, "partition": None}),
        ("local_submitit", "LocalLauncher", {"timeout_min": 20, "mem_gb": 4}),
        ("local_parallel", "JoblibLauncher", {"n_jobs": -1}),
    ],
)
def test_launcher_presets_compose(preset, target, expected):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sim.world.config import CONFIG_DIR, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith(target)
    for key, value in expected.items():
        assert launcher[key] == value, key
    assert cfg.hydra.callbacks.sweep._target_ == "sim.experiments.sweep.SweepCallback"
