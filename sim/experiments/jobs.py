"""What a sweep's jobs leave on disk and the seeds of replications: the vocabulary that running a
sweep (:mod:`sim.experiments.sweep`) and collecting it (:mod:`sim.experiments.collect`) share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

#: Written last by :func:`sim.cli.write_outputs`: its presence marks a complete output directory.
COMPLETE_FILE = "provenance.json"
#: Written (atomically) by a job whose run failed.
FAILURE_FILE = "failed.json"
#: Written into the sweep directory when a multirun starts: its jobs and their overrides.
PLAN_FILE = "sweep.json"
#: Keys that do not change a run's results (ignored when resume compares configurations, and not
#: made columns of the results table): whether to resume, progress display, figures, free-form tags.
NON_RESULT_KEYS = ("resume", "output.progress", "output.figures", "tags")


# --------------------------------------------------------------------------------------------------
# Replications
# --------------------------------------------------------------------------------------------------
def replication_seed(root_seed: int, replication: int) -> int:
    """The seed of replication ``replication`` of root seed ``root_seed``.

    It is the first 63 bits of child ``replication`` of ``numpy.random.SeedSequence(root_seed)``
    (the child :meth:`~numpy.random.SeedSequence.spawn` would give), so replications draw
    independent streams and each can be reproduced from the root seed and its number alone.

    Raises:
        ValueError: a negative root seed or replication number.
    """
    if int(root_seed) < 0:
        raise ValueError(f"seed: {root_seed!r} is invalid; allowed: an integer >= 0 (the replications' root seed)")
    if int(replication) < 0:
        raise ValueError(f"replication: {replication!r} is invalid; allowed: an integer >= 0, or null")
    child = np.random.SeedSequence(entropy=int(root_seed), spawn_key=(int(replication),))
    return int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def replication_seeds(root_seed: int, n: int) -> list[int]:
    """Seeds of replications ``0..n-1`` of ``root_seed`` (see :func:`replication_seed`)."""
    return [replication_seed(root_seed, k) for k in range(int(n))]


def run_seed(cfg: DictConfig) -> int:
    """The seed a configuration's run uses: ``seed``, or the replication's seed if ``replication``
    is set.
    """
    replication = cfg.get("replication")
    if replication is None:
        return int(cfg.seed)
    return replication_seed(int(cfg.seed), int(replication))


# --------------------------------------------------------------------------------------------------
# Job directories
# --------------------------------------------------------------------------------------------------
def job_status(job_dir: str | Path) -> str:
    """``ok`` (complete outputs), ``failed`` (a failure marker) or ``running`` (started, neither)."""
    job_dir = Path(job_dir)
    if (job_dir / COMPLETE_FILE).exists():
        return "ok"
    if (job_dir / FAILURE_FILE).exists():
        return "failed"
    return "running"
