"""Fault injection: sweeps killed with SIGKILL and resumed, output folders that fail mid-write (full
disk, no permission, a path through a file), two runs pointed at the same folder, and a failing job
inside a sweep.

Faults are injected (``tests/fault_injection.py``): in-process by replacing ``os.open``/``os.fsync``
for one named output file, in real subprocesses through a ``sitecustomize`` module on ``PYTHONPATH``
(the tests run as root, so ``chmod`` cannot make a folder unwritable). Results are compared with an
uninterrupted sweep to a float tolerance, never bitwise.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fault_injection
import helpers
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.reporting.files import LOCK_FILE, OUTPUT_FILES, FolderInUseError, OutputLock

#: A small, fast sweep: four seeds of ``minimal``, no figures or flows.
SWEEP_ARGS = ["scenario=minimal", "output.figures=false", "output.flows=false", "seed=range(0,4)"]
N_JOBS = 4
#: Columns of results.parquet that measure time, not results.
TIME_COLUMNS = ("wall_seconds", "run_seconds", "started", "finished", "clearing_seconds")


# ------------------------------------------------------------------------------------------------
# Running the console script with a fault armed
# ------------------------------------------------------------------------------------------------
def start(args, cwd: Path, spec: str | None = None, site: Path | None = None) -> subprocess.Popen:
    """Start ``coercion-sim ARGS`` in its own process group, with the fault ``spec`` armed."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = fault_injection.fault_env(helpers.cli_env(), spec, site or cwd / ".site")
    return subprocess.Popen(
        [helpers.coercion_sim_exe(), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for a started run: ``(exit status, stdout, stderr)``."""
    try:
        out, err = proc.communicate(timeout=helpers.CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"coercion-sim {proc.args} did not finish in {helpers.CLI_TIMEOUT_S} s:\n{err[-2000:]}")
    return proc.returncode, out, err


def sweep(sweep_dir: Path, *extra: str, spec: str | None = None) -> tuple[int, str, str]:
    """Run the test sweep into ``sweep_dir`` to its end (or its injected death)."""
    args = ["-m", *SWEEP_ARGS, *extra, f"hydra.sweep.dir={sweep_dir}"]
    return finish(start(args, sweep_dir.parent, spec, site=sweep_dir.parent / f".site-{sweep_dir.name}"))


def sweep_killed_after(sweep_dir: Path, done: int) -> tuple[int, str, str]:
    """Run the test sweep and kill its whole process group with SIGKILL from outside as soon as
    ``done`` jobs have complete outputs (``done=0``: as soon as the first job folder appears).
    """
    proc = start(["-m", *SWEEP_ARGS, f"hydra.sweep.dir={sweep_dir}"], sweep_dir.parent)
    deadline = time.monotonic() + helpers.CLI_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        finished = len(list(sweep_dir.glob("*/provenance.json"))) if sweep_dir.exists() else 0
        started = len(list(sweep_dir.glob("*/.hydra"))) if sweep_dir.exists() else 0
        if (done and finished >= done) or (not done and started):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    return finish(proc)


def collected(sweep_dir: Path) -> pd.DataFrame:
    from sim.experiments.collect import collect

    return collect(sweep_dir, write=False)


def comparable(results: pd.DataFrame) -> pd.DataFrame:
    """A results table without the columns that measure time, one row per seed, sorted."""
    keep = [c for c in results.columns if c not in TIME_COLUMNS]
    out = results[keep].sort_values("seed").reset_index(drop=True)
    for col in out.columns:  # text columns: a missing value as None, however pandas stored it
        if not pd.api.types.is_numeric_dtype(out[col]) or out[col].isna().all():
            out[col] = pd.Series([None if pd.isna(v) else v for v in out[col]], dtype=object)
    return out


def assert_same_results(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same jobs, same statuses, same numbers (to float tolerance: runs in different processes)."""
    got, expected = comparable(got), comparable(expected)
    assert sorted(got.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(
        got[expected.columns], expected, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-12
    )


def leftovers(sweep_dir: Path) -> list[str]:
    """Temporary files and lock files anywhere under a folder (none may outlive a finished run)."""
    names = helpers.temp_files_in(sweep_dir)
    names += [str(p.relative_to(sweep_dir)) for p in Path(sweep_dir).rglob(LOCK_FILE)]
    return sorted(names)


def mtimes(sweep_dir: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in Path(sweep_dir).glob("*/provenance.json")}


# ------------------------------------------------------------------------------------------------
# SIGKILL mid-sweep, then resume
# ------------------------------------------------------------------------------------------------
#: Kill points of the fast suite: (name, how). ``("write", TARGET)`` kills the sweep from inside while
#: it writes TARGET (its temporary file written, not renamed); ``("after", k)`` from outside once k
#: jobs are complete.
FAST_KILL_POINTS = {
    "while job 2 writes metrics.json": ("write", "2/metrics.json"),
    "after 1 job": ("after", 1),
}
SLOW_KILL_POINTS = {
    "while job 0 writes timeseries.parquet": ("write", "0/timeseries.parquet"),
    "while job 1 writes provenance.json": ("write", "1/provenance.json"),
    "while job 3 writes config.yaml": ("write", "3/config.yaml"),
    "while the sweep writes results.parquet": ("write", "sweep/results.parquet"),
    "as the first job starts": ("after", 0),
    "after 2 jobs": ("after", 2),
    "after 3 jobs": ("after", 3),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The test sweep run without interruption: its results table."""
    helpers.warm_numba_cache()
    sweep_dir = tmp_path_factory.mktemp("reference") / "sweep"
    rc, out, err = sweep(sweep_dir)
    assert rc == 0, err[-3000:]
    assert leftovers(sweep_dir) == []
    results = pd.read_parquet(sweep_dir / "results.parquet")
    assert len(results) == N_JOBS and (results["status"] == "ok").all()
    return results


def kill(sweep_dir: Path, how: tuple[str, object]) -> None:
    """Run the test sweep into ``sweep_dir`` and kill it at ``how``."""
    kind, where = how
    if kind == "write":
        rc, _, err = sweep(sweep_dir, spec=f"kill:{where}")
    else:
        rc, _, err = sweep_killed_after(sweep_dir, int(where))
    assert rc == -signal.SIGKILL, f"the sweep was not killed ({rc}):\n{err[-2000:]}"


@pytest.fixture(scope="module")
def killed_in_job_2(tmp_path_factory):
    """A sweep killed while job 2 wrote its metrics (tests work on copies of it)."""
    helpers.warm_numba_cache()
    sweep_dir = tmp_path_factory.mktemp("killed") / "sweep"
    kill(sweep_dir, ("write", "2/metrics.json"))
    return sweep_dir


def kill_and_resume(root: Path, how: tuple[str, object], killed: Path | None = None) -> dict:
    """Run the test sweep, kill it at ``how`` (or start from a copy of the folder ``killed``), check
    the killed folder, resume it; returns what happened (for the figures in the report).
    """
    sweep_dir = root / "sweep"
    if killed is not None:
        shutil.copytree(killed, sweep_dir)
    else:
        kill(sweep_dir, how)
    # The killed folder: one row per planned job, nothing half-written counted as complete.
    before = collected(sweep_dir)
    assert len(before) == N_JOBS and before["job"].dropna().is_unique, before[["job", "seed", "status"]]
    assert sorted(before["seed"]) == list(range(N_JOBS)), before[["job", "seed", "status"]]
    complete = set(before.loc[before["status"] == "ok", "job"])
    for job in complete:
        assert json.loads((sweep_dir / job / "metrics.json").read_text())["seed"] == int(job)
    stamps = mtimes(sweep_dir)
    assert set(stamps) == complete
    # Resume as documented: the same command, same sweep folder, resume=true.
    rc, out, err = sweep(sweep_dir, "resume=true")
    assert rc == 0, err[-3000:]
    after = pd.read_parquet(sweep_dir / "results.parquet")
    assert leftovers(sweep_dir) == [], "temporary or lock files left after the resumed sweep"
    skipped = (out + err).count("skipped (resume=true)")
    rerun = [job for job in complete if mtimes(sweep_dir)[job] != stamps[job]]
    return {
        "before": before,
        "after": after,
        "complete_at_kill": len(complete),
        "skipped": skipped,
        "rerun": rerun,
        "lost": N_JOBS - int((after["status"] == "ok").sum()),
        "duplicated": len(after) - after["seed"].nunique(),
    }


def check_resumed(outcome: dict, reference: pd.DataFrame) -> None:
    after = outcome["after"]
    assert outcome["lost"] == 0 and outcome["duplicated"] == 0
    assert len(after) == N_JOBS and after["job"].is_unique and (after["status"] == "ok").all()
    assert outcome["rerun"] == [], "a job complete before the kill was run again"
    assert outcome["skipped"] == outcome["complete_at_kill"]
    assert_same_results(after, reference)


@pytest.mark.parametrize("point", list(FAST_KILL_POINTS))
def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(point, reference, killed_in_job_2, tmp_path):
    how = FAST_KILL_POINTS[point]
    outcome = kill_and_resume(tmp_path, how, killed_in_job_2 if how == ("write", "2/metrics.json") else None)
    check_resumed(outcome, reference)
    if point.startswith("while job 2"):
        # Jobs 0 and 1 were complete, job 2 died with its temporary file written, job 3 never began.
        before = outcome["before"].set_index("seed")["status"]
        assert list(before) == ["ok", "ok", "running", "missing"]


@pytest.mark.slow
def test_sigkill_at_more_points_then_resume(reference, tmp_path):
    """Every kill point of :data:`SLOW_KILL_POINTS` (printed as a table for the report)."""
    lines = []
    for i, (point, how) in enumerate(SLOW_KILL_POINTS.items()):
        outcome = kill_and_resume(tmp_path / f"k{i}", how)
        check_resumed(outcome, reference)
        lines.append(
            f"{point}: {outcome['complete_at_kill']} complete at the kill, {outcome['skipped']} skipped on resume, "
            f"{outcome['lost']} lost, {outcome['duplicated']} duplicated"
        )
    print("\n".join(lines))


@pytest.mark.slow
def test_sigkill_joblib_sweep_then_resume(reference, tmp_path):
    """The same on the joblib launcher (two worker processes, killed with the whole group)."""
    sweep_dir = tmp_path / "sweep"
    launcher = ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]
    rc, _, err = sweep(sweep_dir, *launcher, spec="kill:3/metrics.json")
    assert rc == -signal.SIGKILL, err[-2000:]
    assert len(collected(sweep_dir)) == N_JOBS
    rc, _, err = sweep(sweep_dir, *launcher, "resume=true")
    assert rc == 0, err[-3000:]
    after = pd.read_parquet(sweep_dir / "results.parquet")
    assert (after["status"] == "ok").all() and len(after) == N_JOBS
    assert leftovers(sweep_dir) == []
    assert_same_results(after, reference)


def test_collect_counts_a_job_killed_while_hydra_wrote_its_overrides_once(killed_in_job_2, tmp_path):
    """A job killed before Hydra finished ``.hydra/overrides.yaml`` is one ``running`` row (its
    overrides taken from the sweep's plan), not a row without overrides plus a ``missing`` one.
    """
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(killed_in_job_2, sweep_dir)
    victim = sweep_dir / "2"
    (victim / ".hydra" / "overrides.yaml").write_text("")  # killed as Hydra opened it
    shutil.rmtree(sweep_dir / "3", ignore_errors=True)
    rows = collected(sweep_dir)
    assert len(rows) == N_JOBS, rows[["job", "seed", "status"]]
    row = rows[rows["job"] == "2"].iloc[0]
    assert row["status"] == "running" and row["seed"] == 2
    assert list(rows.set_index("seed").sort_index()["status"]) == ["ok", "ok", "running", "missing"]


def test_collector_reports_a_results_table_it_cannot_write(killed_in_job_2, tmp_path, monkeypatch, capsys):
    from sim.experiments.collect import main

    sweep_dir = tmp_path / "sweep"
    shutil.copytree(killed_in_job_2, sweep_dir)
    with monkeypatch.context() as m:
        fault_injection.install("enospc:sweep/results.parquet", m.setattr)
        assert main([str(sweep_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the results table into ")
    assert str(sweep_dir / "results.parquet") in err and "No space left on device" in err
    assert not (sweep_dir / "results.parquet").exists() and list(sweep_dir.glob(".*.tmp")) == []
    assert main([str(sweep_dir)]) == 0 and (sweep_dir / "results.parquet").exists()


@pytest.mark.slow
def test_a_sweep_that_cannot_write_its_results_table_keeps_its_jobs(reference, tmp_path):
    sweep_dir = tmp_path / "sweep"
    rc, out, err = sweep(sweep_dir, spec="enospc:sweep/results.parquet")
    assert rc == 0, err[-3000:]
    assert "error: cannot write the results table into" in err and "No space left on device" in err
    assert "Traceback" not in err
    assert not (sweep_dir / "results.parquet").exists() and leftovers(sweep_dir) == []
    assert_same_results(collected(sweep_dir), reference)


# ------------------------------------------------------------------------------------------------
# A failing job in a sweep
# ------------------------------------------------------------------------------------------------
def test_a_job_that_cannot_write_fails_alone_and_resume_completes_it(reference, tmp_path):
    """A full disk while job 1 writes its metrics: job 1 is a ``failed`` row naming the file and the
    error, with no ``provenance.json``; the other jobs' results are kept; resume runs job 1 alone.
    """
    sweep_dir = tmp_path / "sweep"
    rc, out, err = sweep(sweep_dir, spec="enospc:1/metrics.json")
    assert rc == 0, err[-3000:]
    res = pd.read_parquet(sweep_dir / "results.parquet").set_index("job")
    assert sorted(res["status"]) == ["failed", "ok", "ok", "ok"]
    assert res.loc["1", "status"] == "failed"
    assert (
        "No space left on device" in res.loc["1", "error"]
        and str(sweep_dir / "1" / "metrics.json") in res.loc["1", "error"]
    )
    assert not (sweep_dir / "1" / "provenance.json").exists()
    assert helpers.output_files_in(sweep_dir / "1") == ["failed.json"]  # what it had written is removed
    assert leftovers(sweep_dir) == []
    ok_rows = res[res["status"] == "ok"].reset_index()
    assert_same_results(ok_rows, reference[reference["seed"] != 1])
    stamps = mtimes(sweep_dir)
    rc, out, err = sweep(sweep_dir, "resume=true")
    assert rc == 0, err[-3000:]
    assert (out + err).count("skipped (resume=true)") == 3
    assert {j: t for j, t in mtimes(sweep_dir).items() if j != "1"} == stamps
    assert not (sweep_dir / "1" / "failed.json").exists()
    assert_same_results(pd.read_parquet(sweep_dir / "results.parquet"), reference)


# ------------------------------------------------------------------------------------------------
# An output folder that fails mid-write
# ------------------------------------------------------------------------------------------------
#: Each file of a run, with the fault that strikes it (``eacces``: it cannot be created;
#: ``enospc``/``eio``: writing it to disk fails) and whether the run draws its figures.
WRITE_FAULTS = [
    ("timeseries.parquet", "enospc", False),
    ("flows.parquet", "eacces", False),
    ("metrics.json", "enospc", False),
    ("config.yaml", "eio", False),
    ("figures/overview.png", "eacces", True),
    ("figures/overview.pdf", "enospc", True),
    ("provenance.json", "enospc", True),
    ("provenance.json", "eacces", False),
]


@pytest.fixture(scope="module")
def minimal_result():
    return helpers.cached_run("minimal", (), 1)


@pytest.mark.parametrize(("target", "action", "figures"), WRITE_FAULTS)
def test_a_failed_write_leaves_no_folder_that_looks_complete(
    target, action, figures, minimal_result, tmp_path, monkeypatch
):
    from sim.cli import write_outputs

    outdir = tmp_path / "run"
    # An earlier complete run in the same folder: its provenance must not survive a failed rerun.
    write_outputs(minimal_result, outdir, figures=False)
    assert (outdir / "provenance.json").exists()
    before = set(helpers.output_files_in(outdir))
    with monkeypatch.context() as m:
        fault_injection.install(f"{action}:{target}", m.setattr)
        with pytest.raises(OSError) as info:
            write_outputs(minimal_result, outdir, figures=figures)
    code = {"enospc": errno.ENOSPC, "eacces": errno.EACCES, "eio": errno.EIO}[action]
    assert info.value.errno == code
    if not target.startswith("figures/"):  # matplotlib's own writes do not name the file
        assert str(outdir / target) in str(info.value)
    assert not (outdir / "provenance.json").exists()
    assert helpers.temp_files_in(outdir) == []
    left = set(helpers.output_files_in(outdir))
    assert "figures" not in left
    assert left <= before - {"provenance.json"}
    # The files written by the failed call are removed: those of the earlier run before the fault stay
    # only if the failed call had not replaced them yet.
    order = ["timeseries.parquet", "flows.parquet", "metrics.json", "config.yaml"]
    failed_at = order.index(target) if target in order else len(order)
    assert left == set(order[failed_at:]), left


def test_write_outputs_into_an_empty_folder_leaves_it_empty_on_failure(minimal_result, tmp_path, monkeypatch):
    from sim.cli import write_outputs

    outdir = tmp_path / "run"
    with monkeypatch.context() as m:
        fault_injection.install("enospc:provenance.json", m.setattr)
        with pytest.raises(OSError, match="No space left on device"):
            write_outputs(minimal_result, outdir, figures=False)
    assert helpers.output_files_in(outdir) == []


def test_a_failed_table_leaves_no_figure_a_worker_was_drawing(minimal_result, tmp_path, monkeypatch):
    """The figure worker draws while the tables are written; when a table fails, the command waits for
    the worker before removing what was written, so no figure appears after the cleanup."""
    from sim.cli import write_outputs
    from sim.reporting.figure_worker import FigureWorker

    outdir = tmp_path / "run"
    with FigureWorker(2) as worker, monkeypatch.context() as m:
        fault_injection.install("enospc:flows.parquet", m.setattr)
        with pytest.raises(OSError, match="No space left on device"):
            write_outputs(minimal_result, outdir, figures=True, workers=worker)
        assert helpers.output_files_in(outdir) == []
        # The worker is free again: the next run's figures come back as usual.
        m.undo()
        written = write_outputs(minimal_result, outdir, figures=True, workers=worker)
    assert {p.name for p in written} >= {"overview.png", "overview.pdf", "provenance.json"}


def _run_cli(args, run_dir: Path, spec: str | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run ``coercion-sim ARGS hydra.run.dir=RUN_DIR`` (in ``cwd``, default the folder above it)."""
    cwd = cwd or run_dir.parent
    return finish(start([*args, f"hydra.run.dir={run_dir}"], cwd, spec, site=cwd / f".site-{run_dir.parent.name}"))


def test_cli_reports_a_folder_it_cannot_write_and_leaves_nothing(tmp_path):
    """Through the console script: a full disk at metrics.json, no permission at provenance.json, and
    an output path through a regular file. Exit code 1, one ``error: cannot write`` line naming the
    path and the OS error, and no run folder left.
    """
    helpers.warm_numba_cache()
    args = ["scenario=minimal", "output.figures=false"]
    (tmp_path / "afile").write_text("not a folder")
    cases = {
        "full": (tmp_path / "full" / "run", "enospc:run/metrics.json", "metrics.json", "No space left on device"),
        "denied": (tmp_path / "denied" / "run", "eacces:run/provenance.json", "provenance.json", "Permission denied"),
        "through_a_file": (tmp_path / "afile" / "run", None, "afile", "Not a directory"),
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {
            name: pool.submit(_run_cli, args, run_dir, spec, tmp_path / name)
            for name, (run_dir, spec, _, _) in cases.items()
        }
        runs = {name: f.result() for name, f in futures.items()}
    for name, (run_dir, _, path_part, os_error) in cases.items():
        rc, out, err = runs[name]
        assert rc == 1, (name, err[-2000:])
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, (name, err[-2000:])
        assert "cannot write" in lines[0] and path_part in lines[0] and os_error in lines[0], (name, lines[0])
        assert "Traceback" not in err, name
        assert not run_dir.exists() or helpers.output_files_in(run_dir) == [], (name, helpers.output_files_in(run_dir))
        assert not run_dir.exists(), (name, sorted(p.name for p in run_dir.iterdir()))


# ------------------------------------------------------------------------------------------------
# Two runs pointed at the same output folder
# ------------------------------------------------------------------------------------------------
def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    """Run A (seed 1) is held while it writes its metrics; run B (seed 2) into the same folder exits
    with 2 naming A's pid and host, and changes nothing there; A then completes with its own outputs.
    """
    helpers.warm_numba_cache()
    run_dir = tmp_path / "run"
    args = ["scenario=minimal", "output.figures=false", f"hydra.run.dir={run_dir}"]
    a = start([*args, "seed=1"], tmp_path, "pause:run/metrics.json")
    paused = run_dir / "metrics.json.paused"
    deadline = time.monotonic() + helpers.CLI_TIMEOUT_S
    while not paused.exists() and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.exists(), finish(a)[2][-2000:]
    hydra_files = {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
    rc_b, out_b, err_b = finish(start([*args, "seed=2"], tmp_path))
    (run_dir / "metrics.json.go").write_text("")
    rc_a, out_a, err_a = finish(a)
    assert rc_b == 2, err_b[-2000:]
    assert f"hydra.run.dir: {str(run_dir)!r} is in use by another run (pid {a.pid} on host " in err_b
    assert "allowed: a folder no other run is writing" in err_b
    assert rc_a == 0, err_a[-2000:]
    assert {p.name: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == hydra_files
    assert json.loads((run_dir / "metrics.json").read_text())["seed"] == 1
    assert json.loads((run_dir / "provenance.json").read_text())["seed"] == 1
    assert not (run_dir / LOCK_FILE).exists()
    assert helpers.temp_files_in(run_dir) == []


def test_two_runs_started_together_into_one_folder_never_mix(tmp_path):
    """Two runs (seeds 1 and 2) started at the same moment: one is refused (exit code 2) or, if the
    first has ended before the second claims the folder, both succeed one after the other; either
    way the folder holds one run's outputs, all of the same seed.
    """
    helpers.warm_numba_cache()
    run_dir = tmp_path / "run"
    args = ["scenario=minimal", "output.figures=false", f"hydra.run.dir={run_dir}"]
    barrier = threading.Barrier(2)

    def go(seed):
        barrier.wait()
        return finish(start([*args, f"seed={seed}"], tmp_path, site=tmp_path / f".site{seed}"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(go, (1, 2)))
    codes = sorted(rc for rc, _, _ in results)
    assert codes in ([0, 2], [0, 0]), [(rc, err[-1000:]) for rc, _, err in results]
    for rc, _, err in results:
        if rc == 2:
            assert "is in use by another run (pid " in err
    seeds = {
        json.loads((run_dir / "metrics.json").read_text())["seed"],
        json.loads((run_dir / "provenance.json").read_text())["seed"],
    }
    assert len(seeds) == 1
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    """A run killed with SIGKILL while writing leaves its lock file and a temporary file; the next
    run into the folder takes the lock over (saying whose it was), removes the temporary file and
    completes.
    """
    helpers.warm_numba_cache()
    run_dir = tmp_path / "run"
    args = ["scenario=minimal", "output.figures=false", "seed=1"]
    killed = start([*args, f"hydra.run.dir={run_dir}"], tmp_path, "kill:run/metrics.json")
    rc, _, err = finish(killed)
    assert rc == -signal.SIGKILL, err[-2000:]
    assert (run_dir / LOCK_FILE).exists() and helpers.temp_files_in(run_dir) != []
    assert not (run_dir / "provenance.json").exists()
    rc, out, err = _run_cli(args, run_dir)
    assert rc == 0, err[-2000:]
    assert "took over the lock of a run that ended without releasing it" in out + err
    assert f"pid {killed.pid} on host" in out + err
    assert leftovers(run_dir) == []
    assert set(OUTPUT_FILES) <= set(helpers.output_files_in(run_dir))


def test_a_second_sweep_into_a_sweep_folder_in_use_is_refused(tmp_path):
    sweep_dir = tmp_path / "sweep"
    with OutputLock(sweep_dir):
        rc, out, err = sweep(sweep_dir)
    assert rc == 2, err[-2000:]
    assert f"hydra.sweep.dir: {str(sweep_dir)!r} is in use by another run (pid {os.getpid()} " in err
    assert sorted(p.name for p in sweep_dir.iterdir()) == []


@pytest.mark.slow
def test_a_sweep_job_whose_folder_is_in_use_is_left_to_its_holder(reference, tmp_path):
    """A job folder held by another live process (a cut-off sweep whose job still runs): the job is
    reported ``busy`` and its folder gets no outputs from this sweep; the other jobs complete.
    """
    sweep_dir = tmp_path / "sweep"
    with OutputLock(sweep_dir / "1"):
        rc, out, err = sweep(sweep_dir)
        assert (sweep_dir / "1" / LOCK_FILE).exists()
    assert rc == 0, err[-3000:]
    assert "job 1 not run: " in out + err and f"(pid {os.getpid()} on host " in out + err
    res = collected(sweep_dir).set_index("seed")
    assert list(res.sort_index()["status"]) == ["ok", "running", "ok", "ok"]
    assert helpers.output_files_in(sweep_dir / "1") == []


# ------------------------------------------------------------------------------------------------
# The lock itself
# ------------------------------------------------------------------------------------------------
def test_output_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    folder = tmp_path / "out"
    first = OutputLock(folder).acquire()
    with pytest.raises(FolderInUseError) as info:
        OutputLock(folder).acquire()
    assert f"pid {os.getpid()} on host " in str(info.value) and str(folder) in str(info.value)
    first.release()
    assert not (folder / LOCK_FILE).exists()
    with OutputLock(folder) as again:
        assert again.held and again.previous is None
    assert list(folder.iterdir()) == []


def test_output_lock_takes_over_a_stale_lock_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "elsewhere", "started": "then"}))
    with OutputLock(folder) as lock:
        assert lock.previous == {"pid": 999999, "host": "elsewhere", "started": "then"}
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_FILE).exists()


def test_output_lock_on_a_file_system_without_locks_warns_and_goes_on(tmp_path, monkeypatch, caplog):
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING", logger="coercion-sim.outputs"):
        lock = OutputLock(tmp_path / "out").acquire()
    assert not lock.held and list((tmp_path / "out").iterdir()) == []
    assert "does not support locks" in caplog.text and "will not be detected" in caplog.text
    lock.release()


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=30))
def test_output_lock_never_has_two_holders(tmp_path_factory, steps):
    """Any sequence of acquire/release by three claimants on one folder: at most one holds it, the
    lock file exists exactly while someone does, and a free folder can always be claimed.
    """
    folder = tmp_path_factory.mktemp("lock")
    locks = [OutputLock(folder) for _ in range(3)]
    try:
        for who, acquire in steps:
            lock = locks[who]
            if acquire:
                others_hold = any(lk.held for lk in locks if lk is not lock)
                if others_hold:
                    with pytest.raises(FolderInUseError):
                        lock.acquire()
                else:
                    lock.acquire()
                    assert lock.held
            else:
                lock.release()
            assert sum(lk.held for lk in locks) <= 1
            assert (folder / LOCK_FILE).exists() == any(lk.held for lk in locks)
    finally:
        for lk in locks:
            lk.release()


@given(st.sampled_from(["metrics.json", "timeseries.parquet", "provenance.json", "config.yaml"]))
def test_fault_injection_recognises_the_temporary_files_of_atomic_writes(tmp_path_factory, name):
    """The test harness itself: the temporary file of :func:`sim.reporting.files.atomic_write_bytes` maps to
    the file it stands for (otherwise the faults above would never strike).
    """
    import tempfile

    folder = tmp_path_factory.mktemp("names")
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    assert fault_injection.target_of_temp(tmp) == str(folder / name)
    fd, tmp = tempfile.mkstemp(prefix=".overview.", suffix=".pdf.tmp", dir=folder)
    os.close(fd)
    assert fault_injection.target_of_temp(tmp) == str(folder / "overview.pdf")


def test_only_the_temporary_files_of_our_own_writes_are_removed(tmp_path):
    """Left-over temporary files of a run's files (and figures) go; anything else in the folder, which
    may be the working directory, stays.
    """
    from sim.reporting.files import remove_temp_files

    ours = [".metrics.json.k3j_x9a2.tmp", ".results.parquet.abcdefgh.tmp", "figures/.overview.q1w2e3r4.pdf.tmp"]
    theirs = [
        ".notes.tmp",
        ".other.json.abcdefgh.tmp",
        "metrics.json",
        ".metrics.json.tmp",
        "sub/.config.yaml.abcdefgh.tmp",
    ]
    for name in ours + theirs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = remove_temp_files(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in removed) == sorted(ours)
    assert all((tmp_path / name).exists() for name in theirs)
