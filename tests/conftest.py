"""Shared test configuration: Hypothesis profiles and import paths.

Profiles (pick one with the ``HYPOTHESIS_PROFILE`` environment variable):

* ``ci`` (default): few examples, no deadline (the first call compiles the numba kernel),
  derandomized so CI runs are reproducible, no example database.
* ``dev``: many more random examples, for hunting bugs locally
  (``HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest tests/test_market_kernel.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Helpers (strategies, reference_solver) are plain modules next to the tests.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

# Keep numba's on-disk cache out of the source tree, as the Makefile does (set before numba loads).
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".venv" / "numba-cache"))

# Market strategies draw many values; generation time is not what the health check is about here.
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
settings.register_profile(
    "dev",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
