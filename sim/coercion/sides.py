"""Which side of trade a scenario's measures act on, known without importing the model.

The summary a run prints and the overview figure choose what to show by it: an export restriction
(the coercer limits what it sells) hurts the targets as buyers, an import measure (the coercer
limits what it buys) hurts them as sellers. The sets mirror ``classifier["side"]`` of the classes
in :mod:`sim.coercion.measures` (a test keeps them equal); this module stays free of numba and Mesa so the
command's summary and the figures' worker processes load fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["EXPORT_MEASURES", "IMPORT_MEASURES", "measure_kind", "measure_side"]

#: Measure types that restrict what the imposer sells (``side: export``).
EXPORT_MEASURES = frozenset({"export_ban", "informal_restriction", "export_quota", "export_licence", "export_duty"})
#: Measure types that restrict what the imposer buys (``side: import``).
IMPORT_MEASURES = frozenset({"import_ban", "informal_import_restriction", "import_tariff"})


def measure_side(measure_type: str) -> str | None:
    """``export``, ``import``, or None for a domestic instrument (or an unknown type)."""
    t = str(measure_type)
    return "export" if t in EXPORT_MEASURES else "import" if t in IMPORT_MEASURES else None


def measure_kind(measures: Iterable[Any] | None) -> str:
    """What a scenario's trade measures do: ``export`` (the coercer restricts what it sells: quotas,
    bans, licences, duties), ``import`` (it restricts what it buys: import bans, tariffs), ``both``,
    or ``none`` (no trade measure, or only domestic instruments).

    Args:
        measures: The scenario's measures (mappings with a ``type``); anything else is ignored.

    Returns:
        One of ``export``, ``import``, ``both``, ``none``.
    """
    sides = {measure_side(m.get("type")) for m in measures or () if isinstance(m, Mapping) or hasattr(m, "get")} - {
        None
    }
    return "both" if len(sides) == 2 else sides.pop() if sides else "none"
