"""Sweeps: what a job of a Hydra multirun does besides running the model.

A sweep is a Hydra multirun (``coercion-sim -m ...``) on any launcher: the basic one (one job after
another), joblib (parallel processes on one machine; ``hydra/launcher=local_parallel``), submitit
(``hydra/launcher=slurm`` on a cluster, ``hydra/launcher=local_submitit`` to try the same path
locally). Each job writes its own output directory ``SWEEP_DIR/<job number>/``; this module adds:

* **Failure markers.** A job whose run fails (bad input in one combination, a market that does not
  clear) writes ``failed.json`` (the error and the job's overrides) into its directory and returns,
  so the rest of the sweep goes on; the collector shows it as a ``failed`` row.
* **Resume.** With ``resume=true``, a job whose directory already holds complete outputs of the
  same configuration (``provenance.json`` is written last, so its presence marks them complete) is
  skipped, so a sweep cut off halfway finishes without redoing work when it is run again with the
  same ``hydra.sweep.dir``.
* **Replications.** ``replication=k`` derives the run's seed from the root ``seed`` through
  :class:`numpy.random.SeedSequence` (:func:`replication_seed`): independent streams, reproducible
  from the root seed and the replication number alone.
* **Progress.** :class:`SweepCallback` (a Hydra callback, configured in ``configs/config.yaml``)
  writes the sweep's plan (``sweep.json``: the number of jobs and each job's overrides) when the
  multirun starts, logs ``[done/total]`` with the failures so far after every job, and gathers the
  sweep into ``results.parquet`` (:func:`sim.experiments.collect.collect`) when it ends.
* **One writer per folder.** The same callback claims the output folder (``hydra.run.dir`` of a
  single run, ``hydra.sweep.dir`` of a multirun; :func:`claim_output_folder`) before Hydra writes
  into it, and each job claims its own job folder while it runs, so a second run or sweep pointed
  at a folder in use stops at once (exit code 2, naming the holder) instead of mixing its files
  with the first one's. A claim dies with its process, so a sweep killed outright (``SIGKILL``)
  leaves nothing that blocks its resumption; the resumed jobs also remove the temporary files the
  killed ones left.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.experiments.jobs import (  # noqa: F401 (re-exported: the sweep's vocabulary)
    COMPLETE_FILE,
    FAILURE_FILE,
    NON_RESULT_KEYS,
    PLAN_FILE,
    job_status,
    replication_seed,
    replication_seeds,
    run_seed,
)

__all__ = [
    "COMPLETE_FILE",
    "FAILURE_FILE",
    "PLAN_FILE",
    "NON_RESULT_KEYS",
    "replication_seed",
    "replication_seeds",
    "run_seed",
    "job_status",
    "same_configuration",
    "write_failure",
    "sweep_plan",
    "count_finished",
    "claim_output_folder",
    "discard_unstarted_plans",
    "SweepCallback",
]

log = logging.getLogger("coercion-sim.sweep")


def _result_relevant(container: dict) -> dict:
    out = dict(container)
    for key in NON_RESULT_KEYS:
        head, _, tail = key.partition(".")
        if tail:
            if isinstance(out.get(head), dict):
                out[head] = {k: v for k, v in out[head].items() if k != tail}
        else:
            out.pop(head, None)
    return out


def same_configuration(job_dir: str | Path, cfg: DictConfig) -> bool:
    """Whether ``job_dir`` holds complete outputs of ``cfg`` (its saved, resolved ``config.yaml``
    equals ``cfg`` resolved, keys in :data:`NON_RESULT_KEYS` aside).
    """
    job_dir = Path(job_dir)
    saved = job_dir / "config.yaml"
    if not ((job_dir / COMPLETE_FILE).exists() and saved.exists()):
        return False
    try:
        before = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    except Exception:  # an unreadable file is not a complete output
        return False
    now = OmegaConf.to_container(cfg, resolve=True)
    return _result_relevant(before) == _result_relevant(now)


def write_failure(job_dir: str | Path, exc: BaseException, overrides: Sequence[str]) -> Path:
    """Write the failure marker ``failed.json`` (error, its type, the job's overrides, traceback)."""
    from sim.reporting.files import write_json

    return write_json(
        {
            "error": str(exc),
            "error_type": type(exc).__name__,
            "overrides": [str(o) for o in overrides],
            "traceback": "".join(traceback.format_exception(exc)),
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
        Path(job_dir) / FAILURE_FILE,
    )


def count_finished(sweep_dir: str | Path) -> tuple[int, int]:
    """``(finished, failed)`` job directories directly under ``sweep_dir``."""
    finished = failed = 0
    for d in Path(sweep_dir).iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        status = job_status(d)
        if status != "running":
            finished += 1
            failed += status == "failed"
    return finished, failed


# --------------------------------------------------------------------------------------------------
# The plan of a multirun
# --------------------------------------------------------------------------------------------------
_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_plan(config: DictConfig) -> list[list[str]] | None:
    """The jobs a multirun of Hydra's basic sweeper will launch (each job's overrides), expanded from
    the command line and ``hydra.sweeper.params`` as the sweeper does; ``None`` for other sweepers.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if OmegaConf.select(config, "hydra.sweeper._target_") != _BASIC_SWEEPER:
        return None
    args = [str(a) for a in config.hydra.overrides.task]
    params = OmegaConf.select(config, "hydra.sweeper.params")
    if params:
        args = [f"{k}={v}" for k, v in params.items()] + args
    parsed = OverridesParser.create().parse_overrides(args)
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(job) for batch in batches for job in batch]


def _read_total(sweep_dir: Path) -> int | None:
    import json

    try:
        return int(json.loads((sweep_dir / PLAN_FILE).read_text())["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim_output_folder(directory: str | Path, key: str):
    """Claim an output folder for this process (:class:`sim.reporting.files.OutputLock`, kept until the
    process ends or the lock is released), or stop: exit code 2 with ``error: KEY: 'DIR' is in use by
    another run (pid P on host H, started T); allowed: ...`` when another live process holds it, exit
    code 1 with ``error: cannot write ...`` when the folder cannot be created. ``key`` is the setting
    that named the folder (``hydra.run.dir``, ``hydra.sweep.dir``). A folder this process already
    holds is returned as it is.
    """
    from sim.reporting.files import FolderInUseError, OutputLock, held_lock

    directory = Path(directory).absolute()
    lock = held_lock(directory)
    if lock is not None:
        return lock
    try:
        return OutputLock(directory).acquire()
    except FolderInUseError as exc:
        print(
            f"error: {key}: {exc}; allowed: a folder no other run is writing "
            f"(wait for that run to end, or choose another {key})",
            file=sys.stderr,
        )
        sys.exit(2)
    except OSError as exc:
        print(f"error: cannot write to {key} {str(directory)!r}: {exc}", file=sys.stderr)
        sys.exit(1)


#: Plans written by this process (a sweep that stops before any job starts takes its plan back).
_PLANS_WRITTEN: list[Path] = []


def discard_unstarted_plans() -> list[Path]:
    """Remove the plans (``sweep.json``) this process wrote for sweeps that started no job, e.g. one
    stopped by a misspelt key while Hydra composed its jobs, so ``coercion-sim-collect`` does not
    report jobs pending that will never run; then the sweep folder and the folders above it that are
    left empty, up to the working directory. Returns the plans removed.
    """
    removed = []
    cwd = Path.cwd().resolve()
    while _PLANS_WRITTEN:
        plan = _PLANS_WRITTEN.pop()
        sweep_dir = plan.parent
        if not plan.is_file() or any(p.is_dir() and not p.name.startswith(".") for p in sweep_dir.iterdir()):
            continue  # a job has started: the plan tells what is still to run
        plan.unlink()
        removed.append(plan)
        from sim.reporting.files import held_lock, remove_empty_folders

        lock = held_lock(sweep_dir)  # this sweep's claim on its folder (sim.reporting.files.OutputLock)
        if lock is not None:
            lock.release()
        remove_empty_folders(sweep_dir.resolve(), cwd)
    return removed


class SweepCallback(Callback):
    """Hydra callback that claims a run's or sweep's output folder, makes a multirun's progress
    visible and gathers its results.

    Configured under ``hydra.callbacks`` in ``configs/config.yaml``. For a single run it only claims
    ``hydra.run.dir`` (:func:`claim_output_folder`) before Hydra writes into it.

    Args:
        collect: Write ``results.parquet`` (and print a summary) when the multirun ends.
        aggregate: Also write ``results_summary.parquet`` (mean and quantiles over replications):
            ``true``, ``false`` or ``auto`` (when the sweep has several seeds or replications).
    """

    def __init__(self, collect: bool = True, aggregate: Any = "auto") -> None:
        self.collect = bool(collect)
        self.aggregate = aggregate

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim the single run's output folder before Hydra writes its ``.hydra/`` and log there."""
        claim_output_folder(Path(str(config.hydra.run.dir)), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim the sweep folder, remove the temporary files a killed sweep left there, and write
        the sweep's plan (``sweep.json``) so every job can report ``done/total``.
        """
        from sim.reporting.files import remove_temp_files, write_json

        sweep_dir = Path(str(config.hydra.sweep.dir))
        claim_output_folder(sweep_dir, "hydra.sweep.dir")
        remove_temp_files(sweep_dir)
        try:
            jobs = sweep_plan(config)
        except Exception as exc:  # the sweeper itself will report a malformed sweep
            log.debug("no sweep plan: %s", exc)
            return
        if jobs is None:
            return
        _PLANS_WRITTEN.append(sweep_dir / PLAN_FILE)
        write_json(
            {
                "total": len(jobs),
                "jobs": jobs,
                "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            },
            sweep_dir / PLAN_FILE,
        )
        log.info("sweep of %d jobs -> %s", len(jobs), sweep_dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Log ``[done/total] job N <status>`` and the failures so far."""
        from hydra.core.utils import JobStatus
        from hydra.types import RunMode

        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        status = job_return.return_value if job_return.status == JobStatus.COMPLETED else "failed"
        done, failed = count_finished(sweep_dir)
        total = _read_total(sweep_dir)
        log.info(
            "[%d/%s] job %s %s; %d failed so far",
            done,
            total if total is not None else "?",
            config.hydra.job.num,
            status,
            failed,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Gather the sweep into ``results.parquet``, print its summary and give the folder up."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            if self.collect:
                from sim.experiments.collect import collect, summary

                aggregate = None if str(self.aggregate) == "auto" else bool(self.aggregate)
                try:
                    results = collect(sweep_dir, aggregate=aggregate)
                except OSError as exc:  # a full or read-only sweep folder: the jobs' files are kept
                    print(
                        f"error: cannot write the results table into {sweep_dir}: {exc}; the jobs' outputs "
                        f"are kept: run coercion-sim-collect {sweep_dir} once there is room",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
                print(summary(results, sweep_dir), flush=True)
        finally:
            from sim.reporting.files import held_lock

            lock = held_lock(sweep_dir)
            if lock is not None:
                lock.release()
