"""Writing a run's files: atomically (temporary file, then rename), with provenance beside them, and
claiming an output folder so that two runs never write into the same one at once.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import errno
import fcntl
import io
import json
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_parquet",
    "write_json",
    "provenance",
    "remove_temp_files",
    "remove_empty_folders",
    "FolderInUseError",
    "OutputLock",
    "held_lock",
    "OUTPUT_FILES",
    "LOCK_FILE",
]

log = logging.getLogger("coercion-sim.outputs")

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


#: Lock file that claims an output folder for the run (or sweep, or sweep job) writing into it.
LOCK_FILE = ".coercion-sim.lock"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename, so a
    reader (or a crashed job) never sees a half-written file.

    Raises:
        OSError: the folder cannot be made or written (full, read-only, not a folder); the error names
            ``path`` and no temporary file is left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    return path


def _naming(exc: OSError, path: Path) -> OSError:
    """The same OS error (same type and errno) naming the file being written, not a temporary name."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


#: Files whose temporary files (left by a write killed before its rename) a run, a sweep job or a sweep
#: removes from its folder; figures' in ``figures/``.
_TEMP_OWNERS = (
    *OUTPUT_FILES,
    "episodes.parquet",
    "failed.json",
    "sweep.json",
    "results.parquet",
    "results_summary.parquet",
)
_FIGURE_STEMS = ("overview", "history")
_MKSTEMP = "[a-z0-9_]{8}"  # tempfile's random part
_TEMP_TOP = re.compile(rf"^\.(?:{'|'.join(map(re.escape, _TEMP_OWNERS))})\.{_MKSTEMP}\.tmp$")
_TEMP_FIGURE = re.compile(rf"^\.(?:{'|'.join(_FIGURE_STEMS)})\.{_MKSTEMP}\.(?:png|pdf)\.tmp$")


def remove_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that atomic writes killed before their rename left in an output
    folder: ``.metrics.json.<random>.tmp`` and the like for the files a run, a sweep job or a sweep
    writes, and ``figures/.overview.<random>.png.tmp``; nothing else (the folder may be the working
    directory). Call it only while holding the folder (:class:`OutputLock`): another run's write in
    progress looks the same. Returns the files removed.
    """
    directory = Path(directory)
    removed = []
    for folder, pattern in ((directory, _TEMP_TOP), (directory / "figures", _TEMP_FIGURE)):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if pattern.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


class FolderInUseError(RuntimeError):
    """Another live process holds the output folder (its lock file names the holder)."""

    def __init__(self, directory: Path, holder: dict | None):
        self.directory = Path(directory)
        self.holder = holder or {}
        who = _describe_holder(self.holder)
        super().__init__(f"{str(self.directory)!r} is in use by another run ({who})")


def remove_empty_folders(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and then each parent while it is empty, never ``stop`` or anything above or
    beside it (``stop`` is the working directory: a failed or abandoned run takes back the
    ``outputs/<name>/<time>/`` levels it made, and nothing of the user's).
    """
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _describe_holder(holder: dict) -> str:
    if not holder.get("pid"):
        return "owner unknown"
    text = f"pid {holder['pid']} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    return text


class OutputLock:
    """An exclusive claim on an output folder, so that two runs pointed at the same folder never write
    into it at once.

    The claim is an advisory lock (``flock``) on ``FOLDER/.coercion-sim.lock``, a file naming the holder
    (pid, host, start time, command). The operating system drops the lock when the holder's process
    ends, however it ends (even ``SIGKILL``), so a lock file left by a killed run is stale and the next
    run takes it over (logging whose it was); a live holder makes :meth:`acquire` raise
    :class:`FolderInUseError`. :meth:`release` (also run at interpreter exit) removes the file. On a
    file system without locks (``ENOLCK``) the folder is used unclaimed, with a warning.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.previous: dict | None = None  #: the stale holder taken over, if any
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the folder."""
        return self._fd is not None

    def acquire(self) -> OutputLock:
        """Claim the folder (creating it).

        Raises:
            FolderInUseError: another live process holds it.
            OSError: the folder or its lock file cannot be created.
        """
        if self._fd is not None:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _naming(exc, self.directory) from exc
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _naming(exc, self.path) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _NO_LOCKS:  # e.g. a cluster file system mounted without locking
                    log.warning(
                        "%s: the file system does not support locks (%s); a second run pointed at this "
                        "folder will not be detected",
                        self.directory,
                        exc,
                    )
                    with contextlib.suppress(OSError):
                        if self.path.stat().st_size == 0:  # the empty file just created: not a claim
                            self.path.unlink()
                    return self
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _naming(exc, self.path) from exc
                raise FolderInUseError(self.directory, _read_holder(self.path)) from None
            # The holder may have released (removed) the file between our open and flock: then the
            # lock is on a file nobody else will see; start again on the current file.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is None or not os.path.samestat(os.fstat(fd), current):
                os.close(fd)
                continue
            self.previous = _parse_holder(os.read(fd, 65536))
            me = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "command": sys.argv,
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            self._fd = fd
            _HELD.add(self)
            if self.previous:
                log.warning(
                    "%s: took over the lock of a run that ended without releasing it (%s)",
                    self.directory,
                    _describe_holder(self.previous),
                )
            return self
        raise FolderInUseError(self.directory, _read_holder(self.path))  # pragma: no cover (a livelock)

    def release(self) -> None:
        """Give the folder up: remove the lock file (if it is still ours) and drop the lock."""
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


_HELD: set[OutputLock] = set()
#: ``flock`` errors of file systems without locking: the folder is then used without a claim.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


def held_lock(directory: str | os.PathLike) -> OutputLock | None:
    """The lock this process holds on ``directory``, if any."""
    directory = Path(directory).absolute()
    for lock in list(_HELD):
        if lock.directory.absolute() == directory:
            return lock
    return None


@atexit.register
def _release_all() -> None:
    for lock in list(_HELD):
        lock.release()


def _parse_holder(data: bytes) -> dict | None:
    try:
        holder = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _read_holder(path: Path) -> dict | None:
    """The holder a lock file names; a moment's grace for a holder that has just locked it and is
    writing its name.
    """
    import time

    for _ in range(20):
        try:
            holder = _parse_holder(path.read_bytes())
        except OSError:
            return None
        if holder:
            return holder
        time.sleep(0.01)
    return None


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
