"""Historical data shipped with coercion-sim (CSV files for comparison figures); see ``README.md`` here."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR", "HISTORY_COLUMNS", "resolve_history"]

#: Where the shipped observation files live (a scenario's ``history`` may name a file here).
DATA_DIR = Path(__file__).resolve().parent
#: Columns a history file must have.
HISTORY_COLUMNS = ("series", "good", "element", "date", "value", "ratio_to_baseline", "basis", "source", "quality")


def resolve_history(path: str | os.PathLike) -> Path | None:
    """The file a scenario's ``history`` names: the path itself (relative to the working directory)
    if it exists, else the file of that name in :data:`DATA_DIR`; ``None`` if neither exists.
    """
    p = Path(path)
    if p.is_file():
        return p
    if (DATA_DIR / p).is_file():
        return DATA_DIR / p
    return None
