"""Fault injection for the reliability tests (``tests/test_faults.py``): make one chosen output file
of a run fail to be written, or kill the run while it writes that file.

A fault is a spec ``ACTION:TARGET``. ``TARGET`` is the end of the path of the file the run means to
write (``metrics.json``, ``2/metrics.json`` for job 2 of a sweep, ``figures/overview.pdf``); the run
writes it through a temporary file ``.NAME.<random>.tmp`` beside it (:mod:`sim.reporting.files`), and the
fault strikes when that temporary file is created or flushed to disk. ``ACTION`` is

* ``enospc``: flushing the file fails with ``OSError(ENOSPC)``, as on a full disk;
* ``eio``: the same with ``EIO`` (an I/O error of the device);
* ``eacces``: creating the file fails with ``PermissionError(EACCES)``, as in an unwritable folder;
* ``kill``: the process sends ``SIGKILL`` to its whole process group (the sweep and its workers)
  with the file half-done (its temporary file written, not yet renamed);
* ``pause``: the process writes ``TARGET_PATH.paused`` beside the file and waits (at most two
  minutes) until ``TARGET_PATH.go`` exists, so a test can act while the run holds its folder.

Subprocesses get it through :func:`fault_env` (a ``sitecustomize`` module on ``PYTHONPATH`` that
calls :func:`install_from_env`, so every process of a run, joblib workers included, has it);
in-process tests use :func:`install` with ``monkeypatch``. The tests run as root, so permissions
(``chmod``) cannot make a folder unwritable: the faults are injected instead.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import time
from pathlib import Path

#: Environment variable holding the fault spec for subprocesses.
ENV = "COERCION_SIM_TEST_FAULT"

#: Temporary names of atomic writes: ``.metrics.json.k3j_x9a2.tmp`` and, for figures,
#: ``.overview.k3j_x9a2.pdf.tmp`` (``tempfile.mkstemp``: eight random characters).
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}(?P<ext>\.[A-Za-z0-9]+)?\.tmp$")

_ERRNO = {"enospc": errno.ENOSPC, "eio": errno.EIO, "eacces": errno.EACCES}
ACTIONS = ("enospc", "eio", "eacces", "kill", "pause")

_SITECUSTOMIZE = """\
import sys
sys.path.insert(0, {tests_dir!r})
import fault_injection
fault_injection.install_from_env()
"""


def target_of_temp(path: str) -> str | None:
    """The file an atomic write's temporary file stands for (``None`` for any other file)."""
    head, base = os.path.split(path)
    m = _TEMP_NAME.match(base)
    if m is None:
        return None
    return os.path.join(head, m["stem"] + (m["ext"] or ""))


def _matches(target: str | None, wanted: str) -> bool:
    return target is not None and (target == wanted or target.endswith(os.sep + wanted))


def install(spec: str, patch=None) -> None:
    """Install the fault ``spec`` in this process; ``patch(obj, name, value)`` replaces the
    functions (``monkeypatch.setattr`` in a test, so they are restored; plain ``setattr`` by default).
    """
    action, _, wanted = spec.partition(":")
    if action not in ACTIONS or not wanted:
        raise ValueError(f"{ENV}: {spec!r} is invalid; allowed: ACTION:TARGET with ACTION one of {ACTIONS}")
    patch = patch or setattr
    real_open, real_fsync = os.open, os.fsync

    def strike(target: str) -> None:
        if action == "kill":
            os.killpg(os.getpgrp(), signal.SIGKILL)
        if action == "pause":
            Path(target + ".paused").write_text(str(os.getpid()))
            deadline = time.monotonic() + 120
            while not Path(target + ".go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        code = _ERRNO[action]
        raise OSError(code, os.strerror(code))

    def fault_open(path, flags, mode=0o777, *, dir_fd=None):
        if action == "eacces" and dir_fd is None and flags & os.O_CREAT:
            target = target_of_temp(os.fspath(path))
            if _matches(target, wanted):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def fault_fsync(fd):
        if action != "eacces":
            try:
                target = target_of_temp(os.readlink(f"/proc/self/fd/{int(fd)}"))
            except (OSError, ValueError, TypeError):
                target = None
            if _matches(target, wanted):
                strike(target)
        return real_fsync(fd)

    patch(os, "open", fault_open)
    patch(os, "fsync", fault_fsync)


def install_from_env() -> None:
    """Install the fault named by ``$COERCION_SIM_TEST_FAULT``, if set (called by ``sitecustomize``)."""
    spec = os.environ.get(ENV)
    if spec:
        install(spec)


def fault_env(base: dict[str, str], spec: str | None, site_dir: Path) -> dict[str, str]:
    """``base`` with the fault ``spec`` armed for every Python process started with it (a
    ``sitecustomize.py`` in ``site_dir``, put first on ``PYTHONPATH``); ``spec=None``: no fault.
    """
    env = dict(base)
    env.pop(ENV, None)
    if spec is None:
        return env
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(tests_dir=str(Path(__file__).resolve().parent)))
    env[ENV] = spec
    env["PYTHONPATH"] = os.pathsep.join([str(site_dir), *filter(None, [env.get("PYTHONPATH")])])
    return env


if __name__ == "__main__":  # pragma: no cover
    sys.exit("fault_injection is a helper module of the test suite")
