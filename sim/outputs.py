"""Writing a run's files: atomically (temporary file, then rename), with provenance beside them."""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

__all__ = ["atomic_write_bytes", "atomic_write_text", "write_parquet", "write_json", "provenance", "OUTPUT_FILES"]

#: Files a run writes into its output directory (figures go to ``figures/``).
OUTPUT_FILES = ("timeseries.parquet", "flows.parquet", "metrics.json", "config.yaml", "provenance.json")

_DEPENDENCIES = (
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "pandas",
    "pyarrow",
    "mesa",
    "hydra-core",
    "omegaconf",
    "matplotlib",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename, so a
    reader (or a crashed job) never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomic UTF-8 text write."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame as Parquet (pyarrow), atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False)
    return atomic_write_bytes(path, buf.getvalue())


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write JSON (sorted keys, 2-space indent), atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git_commit() -> dict:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def provenance(*, seed: int, wall_seconds: float, started: str, finished: str, extra: dict | None = None) -> dict:
    """What produced a run: package and dependency versions, git commit, machine, seed, wall time."""
    out = {
        "package": "coercion-sim",
        "version": _version("coercion-sim"),
        "git": _git_commit(),
        "python": sys.version.split()[0],
        "dependencies": {name: _version(name) for name in _DEPENDENCIES},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "command": sys.argv,
        "seed": int(seed),
        "started": started,
        "finished": finished,
        "wall_seconds": round(float(wall_seconds), 3),
    }
    if extra:
        out.update(extra)
    return out
