"""The strategic layer on the 2010 rare-earth case (``configs/scenario/rare_earth_2010_game.yaml``): the file
extends the calibration case, the coalition (G7) can act there by sharing stocks, and its counter-threat says
that it has no leverage good in 2010.

Expectations: with the coalition fully committed, the US and EU game stocks (0.7 months of their own use)
reach Japan's firms while China restricts Japan's rare-earth imports; with commitment 0 nothing leaves them.
China imports none of the case's goods, so no counter-measure can exist (a warning and
``game.leverage_goods = 0``).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

import sim
from sim.api import compose_config
from sim.coercion.strategy import Episode, InactiveCoalitionWarning
from sim.model.model import CoercionModel
from sim.world.scenario import ScenarioError, validate_config

HALT = "De facto halt of rare-earth shipments to Japan (customs delays)"
#: A dispute-free world (the tests pose the episode); no assumption list, so settings outside the
#: named ranges (a zero dispute rate) are allowed.
QUIET = ["scenario.assumptions=[]", "scenario.game.dispute_rate_per_year=0.0", "scenario.game.horizon_months=3"]
#: A low-resolve Japan (an experiment, not the case: median 0.01% of GDP) so that China threatens and
#: imposes within a few disputes; used for the whole-run checks.
PLAYED = [
    "scenario.assumptions=[]",
    "scenario.game.dispute_rate_per_year=0.5",
    "scenario.game.resolve.median=0.0001",
    "scenario.game.coalitions.0.commitment=1.0",
]


@functools.lru_cache(maxsize=4)
def _composed(*overrides: str):
    return compose_config("rare_earth_2010_game", list(overrides))


def test_the_2010_game_composes_from_the_case_and_validates():
    """The game file extends rare_earth_2010: same world and dated measures, strategy game, and the halt
    is left to the game (the world's measures lack it; every other measure is kept)."""
    cfg = _composed()
    base = compose_config("rare_earth_2010")
    validate_config(cfg)
    assert cfg.scenario.strategy.type == "game"
    assert [g.id for g in cfg.scenario.goods] == [g.id for g in base.scenario.goods]
    assert len(cfg.scenario.measures) == len(base.scenario.measures)
    assert cfg.policy.stockpile.countries == base.policy.stockpile.countries  # Japan's response still selected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InactiveCoalitionWarning)
        m = CoercionModel(_composed(*QUIET))
    labels = [x.label for x in m.measures]
    assert HALT not in labels
    assert len(labels) == len(base.scenario.measures) - 1


def test_a_replaced_measure_must_name_one_scheduled_measure():
    cfg = _composed("scenario.game.replaces_measures=[No such measure]")
    with pytest.raises(ScenarioError, match=r"scenario\.game\.replaces_measures\[0\]: 'No such measure' is invalid"):
        validate_config(cfg)


def test_counter_threat_without_leverage_good_warns_and_reports_zero():
    """China imports none of the 2010 goods (all its rare earths are domestic), so the G7's counter-threat
    has nothing to withhold: the model says so when built, naming the coalition and the reason."""
    with pytest.warns(InactiveCoalitionWarning, match=r"coalitions\[coalition=G7\]\.counter_threat: CHN imports none"):
        m = CoercionModel(_composed(*QUIET))
    assert m.strategy.coalitions[0]["counter"].size == 0
    assert m.strategy.metrics()["game.leverage_goods"] == 0


def _episode_on_japan(commitment: float) -> tuple[CoercionModel, Episode, np.ndarray]:
    """China threatens Japan (a stake it will not drop, a Japan that never concedes) in month 3; the
    coercer decides on imposition by its own lookahead and the coalition draws its support from
    ``commitment``; the model then runs four more months. Returns the model, the episode and the
    members' game stocks before the episode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InactiveCoalitionWarning)
        m = CoercionModel(_composed(*QUIET, f"scenario.game.coalitions.0.commitment={commitment}"))
    for _ in range(3):
        m.step()
    s = m.strategy
    jpn = m.world.countries.index("JPN")
    s.resolve[s.targets.index(jpn)] = 1.0  # bears any pain
    t = m.step_index
    ep = Episode(0, jpn, t, 5.0e10, 1.0, 1, len(s.intensities) - 1, 1.0, 0.0, 0.0, threat_step=t + 1)
    s.episodes.append(ep)
    before = m.stockpile.copy()
    for _ in range(5):
        m.step()
    return m, ep, before


@pytest.mark.parametrize("commitment", [1.0, 0.0])
def test_the_coalitions_shared_stock_reaches_japan_only_when_committed(commitment):
    m, ep, before = _episode_on_japan(commitment)
    w = m.world
    members = [w.countries.index(c) for c in ("USA", "EU27")]
    ree = [w.goods.index(g) for g in ("ree_light", "ree_heavy")]
    assert ep.imposition_step is not None and ep.outcome == "ongoing"
    drawn = (before - m.stockpile)[np.ix_(ree, members)]
    table = m.strategy.episode_table(m)
    if commitment == 1.0:
        assert ep.support == 1.0
        assert ep.coalition_stock > 0
        assert np.all(drawn > 0)  # both members gave both oxides
        assert np.isclose(drawn.sum(), ep.coalition_stock)
        assert table.coalition_support.iloc[0] == 1.0 and table.coalition_stock.iloc[0] > 0
    else:
        assert ep.support == 0.0
        assert ep.coalition_stock == 0.0
        assert np.all(drawn == 0)
        assert table.coalition_support.iloc[0] == 0.0 and table.coalition_stock.iloc[0] == 0.0


def test_a_played_2010_run_is_deterministic_and_the_coalition_acts():
    """Three whole 144-month runs (about 1-2 s each with the cached lookahead): the same seed gives the same episode table; with a
    committed coalition some episode has support and its stock delivered, and the metrics agree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InactiveCoalitionWarning)
        a = sim.run("rare_earth_2010_game", PLAYED, seed=3)
        b = sim.run("rare_earth_2010_game", PLAYED, seed=3)
        c = sim.run("rare_earth_2010_game", [*PLAYED[:-1], "scenario.game.coalitions.0.commitment=0.0"], seed=3)
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    imposed = a.episodes.dropna(subset=["imposition_date"])
    assert len(imposed) > 0
    assert (imposed.coalition_support == 1.0).all() and imposed.coalition_stock.iloc[0] > 0
    assert a.metrics["game.coalition_support_episodes"] == len(imposed)
    assert a.metrics["game.coalition_stock"] == pytest.approx(a.episodes.coalition_stock.sum())
    assert a.metrics["game.counter_measures"] == 0 and a.metrics["game.leverage_goods"] == 0
    assert c.metrics["game.coalition_stock"] == 0.0 and c.metrics["game.coalition_support_episodes"] == 0
