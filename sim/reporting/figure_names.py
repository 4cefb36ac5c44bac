"""Which figures a run draws, without importing Matplotlib.

The command asks this before the run, to decide whether and how many worker processes to start for
the figures (:mod:`sim.cli`); keeping it apart from :mod:`sim.reporting.figures` means a command that
draws its figures in worker processes never imports Matplotlib itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["run_figure_names"]


def run_figure_names(scenario: Mapping[str, Any]) -> list[str]:
    """Names of the figures a run draws: ``overview``, and ``history`` when the scenario names a
    file of historical observations.

    Args:
        scenario: The run's scenario (its configuration section or a plain mapping).

    Returns:
        The figure names, which are also the files' stems in ``figures/``.
    """
    return ["overview"] + (["history"] if scenario.get("history") else [])
