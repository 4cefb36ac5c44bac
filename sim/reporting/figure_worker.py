"""A warm process that draws a run's figures side by side while the command does the rest.

The command (:mod:`sim.cli`) starts one worker process (``spawn``: a fresh interpreter, nothing of the
command's state, threads or locks inherited) before the run. While the model simulates, the worker
imports Matplotlib and pandas and loads the fonts, the mathtext parser and the PDF font subsetter
(:func:`sim.reporting.figures.warm_up`), on a core the simulation leaves idle. When the run's tables
arrive, the worker forks one child per further figure, up to the number of figures it was told to
draw at once: each child starts warm (the fork copies the loaded interpreter) and draws its figure on
another core while the worker draws the first. Only one process pays for the imports, so the warm-up
takes a single idle core, and the drawing takes as many cores as there are figures. Children are
forked only on Linux and only while the worker runs a single thread; otherwise the worker draws the
figures one after another.

The figures are the same as drawn in the command's own process (:func:`sim.reporting.figures.draw_run_figure`);
only where the work happens changes. The worker keeps its BLAS and OpenMP pools to one thread, so it
holds no thread a fork could copy in a locked state.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FigureWorker", "FigureWorkerError"]

#: Threads a fork must not copy: BLAS and OpenMP pools of one thread, and no background thread in
#: the jemalloc that pyarrow (imported by pandas) brings. Set for the worker when it starts.
_SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}


class FigureWorkerError(RuntimeError):
    """A figure worker (or one of its children) stopped without drawing its figure."""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables while the block runs (for a child process started in it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class FigureWorker:
    """One warm worker process that draws up to ``parallel`` figures at once (see the module docstring).

    Use as a context manager, or call :meth:`close`.

    Args:
        parallel: How many figures are drawn at the same time (the worker and ``parallel - 1`` forked
            children); at least 1.
    """

    def __init__(self, parallel: int = 2) -> None:
        if parallel < 1:
            raise ValueError(f"parallel: {parallel!r} is invalid; allowed: a whole number >= 1")
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        with _environment(_SINGLE_THREAD_ENV):
            self._process = ctx.Process(target=_serve, args=(child_conn, int(parallel)), name="coercion-sim-figures")
            self._process.start()
        child_conn.close()
        self._pending: list[str] | None = None
        self._served = False  # whether the worker has answered a request (it is then warm and idle)

    def submit(self, names: Sequence[str], timeseries, flows, scenario: dict, figdir: Path) -> None:
        """Hand the worker the named figures to draw and return at once (:meth:`result` collects them),
        so the command can write its tables meanwhile.

        Raises:
            FigureWorkerError: the worker stopped, or a request is already pending.
        """
        if self._pending is not None:
            raise FigureWorkerError(f"figures {self._pending} are still being drawn; collect them first")
        try:
            self._conn.send((list(names), timeseries, flows, scenario, str(figdir)))
        except OSError as exc:
            raise self._stopped(names) from exc
        self._pending = list(names)

    def result(self) -> list[Path]:
        """Wait for the figures handed over by :meth:`submit`; return their paths (PNG, then PDF, of
        each) in the order they were named.

        Raises:
            Exception: what drawing or saving a figure raised (an ``OSError`` for a file that could not
                be written), after every figure has finished.
            FigureWorkerError: nothing is pending, or the worker or a child stopped without an answer.
        """
        if self._pending is None:
            raise FigureWorkerError("no figures were handed to the worker")
        names, self._pending = self._pending, None
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._stopped(names) from exc
        self._served = True
        if status == "error":
            raise payload
        return [Path(p) for p in payload]

    def draw(self, names: Sequence[str], timeseries, flows, scenario: dict, figdir: Path) -> list[Path]:
        """Draw the named figures and wait for them (:meth:`submit`, then :meth:`result`)."""
        self.submit(names, timeseries, flows, scenario, figdir)
        return self.result()

    def settle(self) -> None:
        """Wait for pending figures and drop their outcome (a failed command, before it removes its
        files, so the worker writes none after that).
        """
        if self._pending is not None:
            with contextlib.suppress(Exception):
                self.result()

    def _stopped(self, names) -> FigureWorkerError:
        code = self._process.exitcode
        return FigureWorkerError(f"the figure worker stopped (exit code {code}) before drawing {list(names)}")

    def close(self) -> None:
        """Stop the worker: it finishes the figures it is drawing first. A worker that never drew (the
        command stopped at a bad configuration or a failed run) is stopped at once, even while it is
        still loading Matplotlib, so a failing command does not wait for it.
        """
        self.settle()
        if not self._served:
            self._process.terminate()
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# In the worker process
# --------------------------------------------------------------------------------------------------
def _serve(conn, parallel: int) -> None:
    """The worker's loop: warm up, then draw every request until told to stop (``None``)."""
    os.environ.update(_SINGLE_THREAD_ENV)  # already set by the parent; kept for a worker started otherwise
    from sim.reporting.figures import warm_up

    warm_up()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the command went away
            return
        if request is None:
            # Every file is written and synced: leave at once, without tearing down the interpreter
            # (the command waits for this process to end).
            conn.close()
            os._exit(0)
        names, timeseries, flows, scenario, figdir = request
        try:
            conn.send(("ok", _draw_side_by_side(names, timeseries, flows, scenario, figdir, parallel)))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the command
            conn.send(("error", _picklable(exc)))


def _draw_side_by_side(names: list[str], timeseries, flows, scenario: dict, figdir: str, parallel: int) -> list[str]:
    """Draw ``names`` in batches of ``parallel``: the first of a batch here, the others in forked children.

    Raises the first figure's error (in the order of ``names``) after the whole batch has finished.
    """
    from sim.reporting.figures import draw_run_figure

    if not _can_fork():
        parallel = 1
    fork = multiprocessing.get_context("fork") if parallel > 1 else None
    paths: list[str] = []
    for start in range(0, len(names), parallel):
        batch = names[start : start + parallel]
        children = []
        for name in batch[1:]:
            receive, send = fork.Pipe(duplex=False)
            child = fork.Process(target=_draw_child, args=(send, name, timeseries, flows, scenario, figdir))
            child.start()
            send.close()
            children.append((name, child, receive))
        results: list[tuple[str, Any]] = []
        try:
            results.append(("ok", [str(p) for p in draw_run_figure(batch[0], timeseries, flows, scenario, figdir)]))
        except Exception as exc:  # finish the batch before raising
            results.append(("error", exc))
        for name, child, receive in children:
            try:
                results.append(receive.recv())
            except EOFError:
                child.join()
                results.append(
                    ("error", FigureWorkerError(f"figure {name!r}: its process stopped (exit code {child.exitcode})"))
                )
            child.join()
            receive.close()
        for status, payload in results:
            if status == "error":
                raise payload
            paths += payload
    return paths


def _can_fork() -> bool:
    """Whether forking this process is safe: on Linux, with a single thread (a thread holding a lock
    at the fork would leave the child's copy locked for ever). Elsewhere the figures are drawn one
    after another in the worker.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _draw_child(conn, name: str, timeseries, flows, scenario: dict, figdir: str) -> None:
    """A forked child: draw one figure and send back its paths or its error."""
    try:
        from sim.reporting.figures import draw_run_figure

        conn.send(("ok", [str(p) for p in draw_run_figure(name, timeseries, flows, scenario, figdir)]))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the worker
        conn.send(("error", _picklable(exc)))
    finally:
        conn.close()


def _picklable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a :class:`FigureWorkerError` with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return FigureWorkerError(text)
