"""The strategic layer (:mod:`sim.coercion.strategy`): mechanism tests with stated expectations, determinism,
the episode table's schema and the ``scenario.game`` block's validation.

The world is ``tests/configs/scenario/game_toy.yaml`` (illustrative numbers): CHN can ban rare-earth
exports to JPN or shut AUS ore out; JPN, AUS and USA ("partners") supply 90% of CHN's nickel imports.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import sim
from sim.api import compose_config
from sim.coercion.strategy import EPISODE_COLUMNS, OUTCOMES, Episode, lognormal_cdf
from sim.model.model import CoercionModel
from sim.world.scenario import ScenarioError, validate_config
from tests.helpers import REPO_ROOT

TEST_CONFIGS = REPO_ROOT / "tests" / "configs"
STAKE = 2.0e9


@functools.lru_cache(maxsize=1)
def _composed():
    return compose_config("game_toy", config_dir=TEST_CONFIGS)


def _cfg(**game):
    cfg = copy.deepcopy(_composed())
    OmegaConf.set_struct(cfg, False)  # new keys in the game block's mappings (stockpile_months)
    for key, value in game.items():
        cfg = OmegaConf.merge(cfg, {"scenario": {"game": {key: value}}})
    return cfg


def _model(months: int = 3, **game) -> CoercionModel:
    """The toy world run ``months`` months with no dispute of its own (the tests pose the questions)."""
    m = CoercionModel(_cfg(dispute_rate_per_year=0.0, **game))
    for _ in range(months):
        m.step()
    return m


def _gain(m: CoercionModel, code: str) -> tuple[float, int, int, float]:
    return m.strategy.expected_net_gain(m, m.world.countries.index(code), STAKE)


def test_target_stock_lowers_pain_and_the_coercers_gain():
    """All else equal, six months of rare-earth stock in JPN lower the pain a ban would cause there
    and the coercer's expected net gain from targeting it."""
    bare = _gain(_model(), "JPN")
    stocked = _gain(_model(stockpile_months={"JPN": {"ree": 6.0}}), "JPN")
    assert stocked[3] < bare[3]
    assert stocked[0] < bare[0]


@pytest.mark.parametrize("code", ["JPN", "AUS"])
def test_committed_coalition_lowers_the_coercers_gain(code):
    """A fully committed coalition (shared stocks, absorption, counter-bans) lowers the coercer's
    expected net gain from targeting a member, against the same coalition with no commitment."""
    loose = _gain(_model(coalitions=[{"coalition": "partners", "commitment": 0.0}]), code)
    firm = _gain(_model(coalitions=[{"coalition": "partners", "commitment": 1.0}]), code)
    assert firm[0] < loose[0]


def test_credible_counter_threat_changes_the_choice():
    """Without a counter-threat a rare-earth ban on JPN is worth threatening (gain > 0); with the
    partners committed to ban nickel exports to CHN (CHN sources 90% of its nickel from them) it is not."""
    rule = {"coalition": "partners", "commitment": 1.0, "share_stockpiles": False, "absorb_exports": False}
    without = _gain(_model(coalitions=[{**rule, "counter_threat": False}]), "JPN")
    m = _model(coalitions=[{**rule, "counter_threat": True}])
    with_threat = _gain(m, "JPN")
    assert without[0] > 0
    assert with_threat[0] <= 0
    assert m.world.goods.index("nickel") in m.strategy.coalitions[0]["counter"]


def _impose_and_run(option: dict) -> Episode:
    """Impose ``option`` on an AUS that never concedes and let the coercer review it to the end."""
    targets = [
        {"country": "JPN", "gdp": 5.0e12, "options": [{"instrument": "export_ban", "goods": ["ree"]}]},
        {"country": "AUS", "gdp": 1.5e12, "options": [option]},
    ]
    m = _model(targets=targets, stake={"median": 2.0e10, "sigma": 0.5}, ruling_probability=0.0, intensities=[1.0])
    s = m.strategy
    aus = m.world.countries.index("AUS")
    s.resolve[s.targets.index(aus)] = 1e9  # never concedes
    t = m.step_index
    ep = Episode(0, aus, t, 2.0e10, 1e9, 0, 0, 1.0, 0.0, 0.0, threat_step=t + 1, imposition_step=t + 1)
    ep.last_review = t + 1
    s.episodes.append(ep)
    s._impose(m, ep, t + 1)
    m.run()
    return ep


def test_costlier_measure_is_lifted_sooner():
    """Shutting all AUS ore out (CHN's industry loses its main supplier) costs the coercer far more than
    a 5% tariff; against a target that does not give in, the ban is lifted first."""
    ban = _impose_and_run({"instrument": "import_ban", "goods": ["ore"]})
    tariff = _impose_and_run({"instrument": "import_tariff", "goods": ["ore"], "rate": 0.05})
    assert ban.coercer_cost / max(ban.end_step or 24, 1) > tariff.coercer_cost / max(tariff.end_step or 24, 1)
    assert ban.outcome == "coercer_backed_down"
    ban_end = ban.end_step
    tariff_end = tariff.end_step if tariff.end_step is not None else math.inf
    assert ban_end < tariff_end


@pytest.fixture(scope="module")
def runs():
    base = ["scenario.game.dispute_rate_per_year=3.0"]
    return {
        "a": sim.run("game_toy", base, seed=1, config_dir=TEST_CONFIGS),
        "b": sim.run("game_toy", base, seed=1, config_dir=TEST_CONFIGS),
        "c": sim.run("game_toy", base, seed=2, config_dir=TEST_CONFIGS),
    }


def test_same_seed_same_episodes_other_seed_differs(runs):
    """Disputes, draws and decisions come from the model's seeded stream only."""
    a, b, c = runs["a"].episodes, runs["b"].episodes, runs["c"].episodes
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    assert not (
        len(a) == len(c) and a[["trigger_date", "target", "stake"]].equals(c[["trigger_date", "target", "stake"]])
    )


def test_episode_table_schema(runs, tmp_path):
    """The columns the issue lists, with their types; outcomes from the fixed list; missing dates only
    where an episode never imposed or has not ended; the CLI writes it as episodes.parquet."""
    from sim.cli import write_outputs

    res = runs["a"]
    df = res.episodes
    assert tuple(df.columns) == EPISODE_COLUMNS
    for col in ("trigger_date", "threat_date", "imposition_date", "end_date"):
        assert pd.api.types.is_datetime64_any_dtype(df[col])
    assert set(df["outcome"].astype(str)) <= set(OUTCOMES)
    assert df["trigger_date"].notna().all() and df["threat_date"].notna().all()
    assert (df["end_date"].isna() == (df["outcome"] == "ongoing")).all()
    at_threat = df["outcome"].isin(["conceded_at_threat"])
    assert df.loc[at_threat, "imposition_date"].isna().all()
    assert (df["threat_date"] >= df["trigger_date"]).all()
    assert (df["coalition_support"].between(0, 1)).all()
    assert res.metrics["game.episodes"] == len(df)
    assert sum(res.metrics[f"game.outcome.{o}"] for o in OUTCOMES) == len(df)
    write_outputs(res, tmp_path, figures=False, flows=False)
    back = pd.read_parquet(tmp_path / "episodes.parquet")
    assert list(back.columns) == list(EPISODE_COLUMNS) and len(back) == len(df)


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("horizon_months", 0, "scenario.game.horizon_months"),
        ("lookahead", "sometimes", "scenario.game.lookahead"),
        ("intensities", [1.0, 0.5], "scenario.game.intensities"),
        ("resolve", {"median": -1.0, "sigma": 0.5}, "scenario.game.resolve.median"),
        ("reputation_loss", 1.5, "scenario.game.reputation_loss"),
        ("coalitions", [{"coalition": "nato", "commitment": 0.5}], "scenario.game.coalitions[0].coalition"),
        ("coalitions", [{"coalition": "partners", "commitment": 2.0}], "scenario.game.coalitions[0].commitment"),
        ("targets", [{"country": "XXX", "gdp": 1e12, "options": []}], "scenario.game.targets[0].country"),
        ("targets", [{"country": "CHN", "gdp": 1e12, "options": []}], "scenario.game.targets[0].country"),
        (
            "targets",
            [{"country": "JPN", "gdp": 1e12, "options": [{"instrument": "embargo", "goods": ["ree"]}]}],
            "scenario.game.targets[0].options[0].instrument",
        ),
        (
            "targets",
            [{"country": "JPN", "gdp": 1e12, "options": [{"instrument": "import_tariff", "goods": ["ree"]}]}],
            "scenario.game.targets[0].options[0].rate",
        ),
        ("stockpile_months", {"JPN": {"gold": 1.0}}, "scenario.game.stockpile_months.JPN"),
    ],
)
def test_game_block_errors_name_the_field(key, value, path):
    """One clear error naming the full path of the bad field, before any run."""
    with pytest.raises(ScenarioError, match=path.replace("[", r"\[").replace("]", r"\]")):
        validate_config(_cfg(**{key: value}))


def test_game_block_needs_game_strategy():
    cfg = _cfg()
    OmegaConf.update(cfg, "scenario.strategy.type", "schedule")
    with pytest.raises(ScenarioError, match="scenario.game"):
        validate_config(cfg)
    OmegaConf.update(cfg, "scenario.strategy.type", "game")
    cfg = OmegaConf.merge(cfg, {"scenario": {"game": None}})
    with pytest.raises(ScenarioError, match="scenario.game"):
        validate_config(cfg)


def test_lognormal_cdf():
    assert lognormal_cdf(1.0, 1.0, 0.5) == pytest.approx(0.5)
    assert lognormal_cdf(0.0, 1.0, 0.5) == 0.0
    assert lognormal_cdf(2.0, 1.0, 0.0) == 1.0
    xs = np.linspace(0.1, 5, 20)
    assert np.all(np.diff([lognormal_cdf(x, 1.0, 0.7) for x in xs]) >= 0)


def test_game_metrics_are_documented(runs):
    """Every ``game.*`` metric key is in METRIC_DOCS (the README's metric list)."""
    from tests.helpers import metric_key_regex

    res = runs["a"]
    w = res.config.scenario
    pattern = metric_key_regex([g.id for g in w.goods], [c.code for c in w.countries])
    game_keys = [k for k in res.metrics if k.startswith("game.")]
    assert game_keys and all(pattern.match(k) for k in game_keys)


@pytest.mark.parametrize("name", ["a", "c"])
def test_episode_invariants(runs, name):
    """Dates run trigger <= threat <= imposition <= end; a target has at most one open episode at a time;
    costs are finite; an episode conceded at the threat imposed nothing and cost nothing."""
    df = runs[name].episodes
    imposed = df["imposition_date"].notna()
    assert (df.loc[imposed, "imposition_date"] >= df.loc[imposed, "threat_date"]).all()
    ended = df["end_date"].notna()
    assert (df.loc[ended, "end_date"] >= df.loc[ended, "threat_date"]).all()
    assert (df.loc[ended & imposed, "end_date"] >= df.loc[ended & imposed, "imposition_date"]).all()
    for _, g in df.sort_values("threat_date").groupby("target", observed=True):
        ends, starts = g["end_date"], g["threat_date"]
        assert ends.iloc[:-1].notna().all()  # only the last may be open
        assert (starts.iloc[1:].to_numpy() >= ends.iloc[:-1].to_numpy()).all()
    assert np.isfinite(df[["target_cost", "coercer_cost", "stake", "resolve"]].to_numpy()).all()
    at_threat = df["outcome"] == "conceded_at_threat"
    assert (df.loc[at_threat, "target_cost"] == 0).all()
