"""The strategic layer against history (slow): ``experiments/strategic_history.py`` on pooled replications
of ``coercion_game``. Nothing in the scenario is tuned to these numbers (docs/sources/strategic_coercion.md
sections 1-2 mark them as calibration and validation targets); the tolerances are stated per test.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests import helpers

SCRIPT = helpers.REPO_ROOT / "experiments" / "strategic_history.py"
REPLICATIONS = 8


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("strategic_history", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare(module.pooled_episodes(REPLICATIONS, seed=11))


@pytest.mark.slow
def test_success_rate_near_the_base_rates(report):
    """Historical success of imposed sanctions: 24% (HSE, after 1973) to 50% (GSDB authors' upper end); the
    data bases code imposed sanctions, so the model's number is the share of ended, imposed episodes that
    ended in concession. Tolerance: 0.1 on either side of that band (sampling over eight decades of runs
    and the model's coarser outcome coding). Concessions at the threat come on top and are reported."""
    assert report["ended"] >= 20
    assert 0.24 - 0.10 <= report["success_rate_imposed"] <= 0.50 + 0.10


@pytest.mark.slow
def test_imposed_episodes_last_months_to_years(report):
    """GSDB: median 3 years, interquartile range 1-7 years; China's cases: 17 days to six years. Tolerance:
    the median of imposed, ended episodes lies between one month and seven years."""
    assert 1 <= report["median_duration_months"] <= 84


@pytest.mark.slow
def test_small_dependent_targets_concede_faster_than_large_or_allied(report):
    """China's case table: Mongolia conceded within a month; Australia, Lithuania, the Philippines under
    Aquino did not, Japan and Korea only in part. Expected: Mongolia concedes more often and sooner than
    the coalition's members."""
    small, large = report["small_dependent"], report["large_or_allied"]
    assert small["episodes"] > 0 and large["episodes"] > 0
    assert small["conceded_share"] > large["conceded_share"]
    assert small["mean_months_to_end"] < large["mean_months_to_end"]
