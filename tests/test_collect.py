"""The sweep collector on hand-made sweep directories (no model runs): statuses, columns, types,
re-collection while jobs finish, aggregation over replications, the console script; replication
seeds; resume's configuration check; failure markers."""

from __future__ import annotations

import json
from pathlib import Path

import helpers
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim.experiments.collect import aggregate, collect, main, override_columns, summary
from sim.experiments.sweep import (
    count_finished,
    job_status,
    replication_seed,
    replication_seeds,
    run_seed,
    same_configuration,
    write_failure,
)


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    *,
    status: str,
    metrics: dict | None = None,
    seed: int = 0,
    replication: int | None = None,
    error: str = "boom",
) -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    cfg = {"seed": seed, "replication": replication, "model": {"precaution": 2.0}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if status == "ok":
        (job / "config.yaml").write_text(yaml.safe_dump(cfg))
        m = {
            "seed": seed if replication is None else replication_seed(seed, replication),
            "scenario": "minimal",
            **(metrics or {}),
        }
        (job / "metrics.json").write_text(json.dumps(m))
        (job / "provenance.json").write_text(
            json.dumps(
                {"wall_seconds": 1.5, "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:00:02+00:00"}
            )
        )
    elif status == "failed":
        write_failure(job, ValueError(error), overrides)
    return job


@pytest.fixture
def sweep(tmp_path):
    s = tmp_path / "sweep"
    make_job(
        s,
        0,
        ["model.precaution=1", "seed=0"],
        status="ok",
        metrics={
            "output_loss_share.JPN": 0.1,
            "peak_export_price_date.ore": "2021-03",
            "conceded": False,
            "concession_date": None,
        },
    )
    make_job(s, 1, ["model.precaution=3", "seed=0"], status="failed", error="model.precaution: 3 is invalid")
    make_job(s, 2, ["model.precaution=1", "seed=1"], status="running", seed=1)
    plan = [
        ["model.precaution=1", "seed=0"],
        ["model.precaution=3", "seed=0"],
        ["model.precaution=1", "seed=1"],
        ["model.precaution=3", "seed=1"],
    ]
    (s / "sweep.json").write_text(json.dumps({"total": 4, "jobs": plan}))
    return s


def test_statuses_columns_and_types(sweep):
    res = collect(sweep)
    assert list(res["status"]) == ["ok", "failed", "running", "missing"]
    assert list(res["job"][:3]) == ["0", "1", "2"] and pd.isna(res["job"].iloc[3])
    assert list(res["model.precaution"]) == [1, 3, 1, 3]
    assert list(res["seed"]) == [0, 0, 1, 1]
    assert res["error"].iloc[1] == "model.precaution: 3 is invalid" and res["error"].isna().sum() == 3
    assert res["output_loss_share.JPN"].iloc[0] == 0.1 and res["output_loss_share.JPN"].iloc[1:].isna().all()
    assert res["wall_seconds"].iloc[0] == 1.5
    back = pd.read_parquet(sweep / "results.parquet")
    pd.testing.assert_frame_equal(back, res, check_dtype=False)
    assert back.attrs["override_columns"] == ["model.precaution", "seed"]
    assert not (sweep / "results_summary.parquet").exists()  # aggregate=False by default
    assert helpers.temp_files_in(sweep) == []
    text = summary(res, sweep)
    assert "4 jobs" in text and "1 ok, 1 failed, 2 pending (1 running, 1 missing)" in text
    assert "failed: job 1: model.precaution: 3 is invalid" in text


def test_started_and_finished_are_utc_datetimes(sweep):
    """``started``/``finished`` are datetimes (in memory and in the Parquet file), ``NaT`` for jobs
    without complete outputs, so a sweep's timing is arithmetic, not string parsing."""
    res = collect(sweep)
    back = pd.read_parquet(sweep / "results.parquet")
    for table in (res, back):
        for col in ("started", "finished"):
            assert isinstance(table[col].dtype, pd.DatetimeTZDtype) and str(table[col].dt.tz) == "UTC", col
        assert table["started"].iloc[0] == pd.Timestamp("2026-01-01T00:00:00", tz="UTC")
        assert (table["finished"] - table["started"]).iloc[0] == pd.Timedelta(seconds=2)
        assert table["started"].iloc[1:].isna().all()
    assert "first start to last finish 2 s" in summary(res, sweep)


def test_collect_again_while_jobs_finish(sweep):
    assert collect(sweep)["status"].tolist().count("ok") == 1
    assert count_finished(sweep) == (2, 1)
    # Job 2 finishes, job 3 starts and fails.
    job2 = sweep / "2"
    (job2 / "config.yaml").write_text(yaml.safe_dump({"seed": 1}))
    (job2 / "metrics.json").write_text(json.dumps({"seed": 1, "output_loss_share.JPN": 0.3}))
    assert job_status(job2) == "running"  # metrics alone are not complete outputs
    (job2 / "provenance.json").write_text(json.dumps({"wall_seconds": 1.0}))
    make_job(sweep, 3, ["model.precaution=3", "seed=1"], status="failed", seed=1)
    res = collect(sweep)
    assert res["status"].tolist() == ["ok", "failed", "ok", "failed"]
    assert res.loc[2, "output_loss_share.JPN"] == 0.3
    assert count_finished(sweep) == (4, 2)


def test_replication_rows_carry_root_and_derived_seed(tmp_path):
    s = tmp_path / "s"
    for k in range(3):
        make_job(
            s,
            k,
            ["seed=7", f"replication={k}"],
            status="ok" if k < 2 else "failed",
            seed=7,
            replication=k,
            metrics={"output_loss.JPN": float(k)},
        )
    res = collect(s, aggregate=None)
    assert list(res["seed"]) == replication_seeds(7, 3)
    assert list(res["root_seed"]) == [7, 7, 7] and list(res["replication"]) == [0, 1, 2]
    summ = pd.read_parquet(s / "results_summary.parquet")  # auto: the sweep varies the replication
    row = summ[summ["outcome"] == "output_loss.JPN"].iloc[0]
    assert row["n"] == 2 and row["mean"] == 0.5


@pytest.mark.parametrize(
    "seeds, summary_written",
    [([1, 1], False), ([1, 2], True)],
    ids=["fixed_seed", "two_seeds"],
)
def test_summary_only_when_the_sweep_varies_the_seed(tmp_path, seeds, summary_written):
    """``aggregate=None`` (the sweep's default): ``seed=1`` among the overrides of every job is one
    run per combination, nothing to aggregate (n = 1, std NaN): no results_summary.parquet."""
    s = tmp_path / "s"
    for k, seed in enumerate(seeds):
        make_job(
            s, k, [f"model.precaution={k}", f"seed={seed}"], status="ok", seed=seed, metrics={"output_loss.JPN": 1.0}
        )
    res = collect(s, aggregate=None)
    assert "seed" in override_columns(res)
    assert (s / "results_summary.parquet").exists() == summary_written
    assert ("summary_file" in res.attrs) == summary_written


@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12),
    groups=st.integers(1, 3),
)
def test_aggregate_matches_numpy(values, groups):
    n = len(values)
    res = pd.DataFrame(
        {
            "job": [str(i) for i in range(n)],
            "lever": [i % groups for i in range(n)],
            "seed": list(range(n)),
            "status": "ok",
            "error": None,
            "loss": values,
        }
    )
    res.attrs["override_columns"] = ["lever", "seed"]
    out = aggregate(res, quantiles=(0.05, 0.5, 0.95))
    assert set(out.columns) == {"lever", "outcome", "n", "mean", "std", "q05", "q50", "q95"}
    for _, row in out.iterrows():
        v = np.array([x for i, x in enumerate(values) if i % groups == row["lever"]])
        assert row["n"] == len(v)
        assert row["mean"] == pytest.approx(v.mean(), rel=1e-9, abs=1e-6)
        assert row["q50"] == pytest.approx(np.quantile(v, 0.5), rel=1e-9, abs=1e-6)
        assert row["q05"] <= row["q50"] <= row["q95"]


def test_console_script(sweep, capsys, tmp_path):
    assert main([str(sweep), "--aggregate"]) == 0
    out = capsys.readouterr().out
    assert "1 ok, 1 failed, 2 pending" in out
    assert (sweep / "results_summary.parquet").exists()
    assert f"-> {sweep / 'results_summary.parquet'}" in out
    # --check: status 1 unless every job finished ok
    assert main([str(sweep), "--check"]) == 1
    done = tmp_path / "done"
    make_job(done, 0, ["model.precaution=1"], status="ok")
    assert main([str(done), "--check"]) == 0
    capsys.readouterr()
    assert main([str(sweep / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main([str(sweep), "--quantiles", "0.5,2"]) == 2
    assert "--quantiles: '0.5,2' is invalid" in capsys.readouterr().err


@given(root=st.integers(0, 2**63), k=st.integers(0, 10_000))
def test_replication_seed_is_the_seedsequence_child(root, k):
    child = np.random.SeedSequence(root).spawn(k + 1)[k]
    assert replication_seed(root, k) == int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    assert 0 <= replication_seed(root, k) < 2**63


def test_replication_seeds_distinct_and_reproducible():
    seeds = replication_seeds(42, 2000)
    assert len(set(seeds)) == 2000
    assert seeds == replication_seeds(42, 2000)
    assert set(seeds).isdisjoint(replication_seeds(43, 2000))
    with pytest.raises(ValueError, match="replication: -1 is invalid"):
        replication_seed(1, -1)
    cfg = OmegaConf.create({"seed": 3, "replication": None})
    assert run_seed(cfg) == 3
    cfg.replication = 4
    assert run_seed(cfg) == replication_seed(3, 4)


def test_same_configuration(tmp_path):
    cfg = helpers.minimal_cfg()
    job = tmp_path / "job"
    job.mkdir()
    assert not same_configuration(job, cfg)
    (job / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    assert not same_configuration(job, cfg)  # no provenance.json: not complete
    (job / "provenance.json").write_text("{}")
    assert same_configuration(job, cfg)
    cfg.resume = True
    cfg.output.progress = "never"
    assert same_configuration(job, cfg)  # neither changes results
    cfg.model.precaution = 2.5
    assert not same_configuration(job, cfg)
