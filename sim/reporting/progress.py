"""Progress of a run on stderr, through tqdm, as ``output.progress`` asks.

* ``auto`` (the default): a progress bar on a terminal, for runs that last more than two seconds;
  nothing when stderr is not a terminal (a log file, a pipe, a sweep's job).
* ``always`` (batch jobs writing to a log): the bar on a terminal; in a log, one line per second at
  most, ``[coercion-sim] NAME: month k/n (t s)``, and the last month's line always.
* ``never``: nothing.

:class:`MonthProgress` is the ``progress(done, total)`` callable a model's run reports to;
:func:`announce` writes a one-line note (e.g. before drawing figures) under the same rule.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["MODES", "MonthProgress", "announce", "shown"]

#: The values of ``output.progress``.
MODES = ("auto", "always", "never")

_BAR = "[coercion-sim] {desc}: {percentage:3.0f}%|{bar}| month {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
_LINE = "[coercion-sim] {desc}: month {n_fmt}/{total_fmt} ({elapsed_s:.1f} s)"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def shown(mode: str, stream: TextIO | None = None) -> bool:
    """Whether progress is written to ``stream`` (default: stderr) in ``mode``."""
    stream = sys.stderr if stream is None else stream
    return mode == "always" or (mode == "auto" and _is_terminal(stream))


class _Lines:
    """A log's view of a tqdm bar: each refresh as a line of its own (tqdm redraws one line with
    carriage returns, which a log file keeps as one ever longer line).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip("\n")
        if text.strip() and text != self.last:  # closing redraws the last state
            self.stream.write(text + "\n")
            self.last = text

    def flush(self) -> None:
        self.stream.flush()


class _Bar(tqdm):
    """tqdm without its monitor thread (a bar per run; nothing to watch between updates)."""

    monitor_interval = 0


class MonthProgress:
    """Progress of a run's months: call it with ``(done, total)`` after each month.

    Args:
        mode: ``auto``, ``always`` or ``never`` (see the module docstring).
        label: What is running (the scenario's name).
        stream: Where to write (default: stderr at the time of the call).
        delay: Seconds before a bar appears in ``auto`` mode (short runs stay quiet).
    """

    def __init__(self, mode: str, label: str, *, stream: TextIO | None = None, delay: float = 2.0) -> None:
        if mode not in MODES:
            raise ValueError(f"output.progress: {mode!r} is invalid; allowed: {', '.join(MODES)}")
        self.stream = sys.stderr if stream is None else stream
        self.mode, self.label, self.delay = mode, label, delay
        self.enabled = shown(mode, self.stream)
        self.bar: _Bar | None = None

    def _open(self, total: int) -> _Bar:
        terminal = _is_terminal(self.stream)
        return _Bar(
            total=total,
            desc=self.label,
            unit="month",
            file=self.stream if terminal else _Lines(self.stream),
            bar_format=_BAR if terminal else _LINE,
            delay=self.delay if self.mode == "auto" else 0.0,
            mininterval=0.1 if terminal else 1.0,
            dynamic_ncols=terminal,
            ascii=not terminal,
            leave=True,
        )

    def __call__(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` months are simulated (the bar ends at the last)."""
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = self._open(total)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        """End the bar (its final state stays on screen or in the log)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def announce(what: str, mode: str, label: str, *, stream: TextIO | None = None) -> None:
    """One line ``[coercion-sim] LABEL: WHAT ...`` on stderr when ``mode`` shows progress, for a step
    that takes seconds without other output (drawing figures).
    """
    stream = sys.stderr if stream is None else stream
    if shown(mode, stream):
        tqdm.write(f"[coercion-sim] {label}: {what} ...", file=stream)
        stream.flush()
