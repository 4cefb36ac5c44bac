"""The strategic layer: disputes, a coercer that decides by simulating the model, targets that concede
or resist, coalitions that respond, and outside rulings (``strategy.type: game``, ``scenario.game``).

Sources: ``docs/sources/strategic_coercion.md`` (base rates, China's cases, theory, the collective-
resilience leverage numbers; original URLs there).

**Disputes.** Each month (after a warm-up) a dispute arises between the coercer and each listed target
without an open one with probability ``1 - exp(-rate / 12)`` (a Poisson rate per pair and year). It
carries a stake: what the target's concession is worth to the coercer (US$, lognormal).

**The coercer decides by forward simulation.** At the end of a month it copies the whole model (a deep
copy: market, firms' stocks and sourcing, levers, open episodes) and runs each candidate over
``horizon_months``: no new action, each option (instrument on goods) at each intensity, lifting a
measure in force, escalating it. The target's pain of an action is the difference in its output loss
plus lost export revenue against the no-action run, as a share of its GDP per year; the coercer's cost
is the same difference for itself. The copies anticipate the coalition's announced response at its
expected strength (``commitment``). The coercer values an action at
``P(concede) x stake - cost``, with ``P(concede)`` from the resolve distribution it knows (a lognormal;
after a target resisted pain ``x`` it conditions on resolve > x). It threatens when the best option's
value is positive, imposes after ``threat_months`` unless backing down is worth more (a back-down costs
``reputation_loss x stake`` and lowers its credibility by that share), and reviews measures in force
every ``review_months``: hold, escalate to the next intensity, or lift. A measure without concession
after ``max_episode_months`` is lifted as a stalemate. ``lookahead: cached`` simulates each
(target, option, intensity) once and reuses the result (a surrogate table), for speed.

**Targets.** A target's resolve (pain it bears, share of GDP per year) is drawn per target from
``resolve`` x its ``resolve_multiplier`` and redrawn at a change of government (a Poisson event,
``government_change_rate_per_year``; the Philippines 2016 and Australia 2022 shifts). It concedes at
the threat when credibility x expected pain > resolve, and after imposition when the expected pain
(the coercer's simulation, now credible) or the pain it bears (trailing three months, per year) passes
its resolve.

**Coalitions.** When a member is hit, the coalition acts with probability ``commitment`` (drawn per
episode): the target and the members release game stocks to the target's firms, members shift their
sourcing toward the target's shut-out exports, and members ban their exports to the coercer of the
goods it imports for at least ``dependence_threshold`` from the coalition.

**Rulings.** An imposed measure goes to an outside ruling with ``ruling_probability``; the ruling ends
it ``ruling_delay_months`` after imposition.

Impositions are the trade measures of :mod:`sim.coercion.measures` added to ``model.measures``, so the market
feels them as it feels scheduled ones. Every episode is a row of :meth:`StrategicCoercer.episode_table`
(``episodes.parquet``).
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.coercion.measures import (
    ExportBan,
    ImportBan,
    ImportTariff,
    InformalExportRestriction,
    InformalImportRestriction,
)
from sim.policy.levers import InactiveLeverWarning, shift_sourcing_toward

__all__ = [
    "GAME_INSTRUMENTS",
    "OUTCOMES",
    "EPISODE_COLUMNS",
    "Episode",
    "InactiveCoalitionWarning",
    "StrategicCoercer",
    "validate_game",
    "lognormal_cdf",
]

#: Instruments the strategic coercer can impose, by option ``instrument``.
GAME_INSTRUMENTS = {
    "export_ban": ExportBan,
    "informal_restriction": InformalExportRestriction,
    "import_ban": ImportBan,
    "informal_import_restriction": InformalImportRestriction,
    "import_tariff": ImportTariff,
}

#: How an episode ends.
OUTCOMES = (
    "conceded_at_threat",
    "conceded_after_imposition",
    "coercer_backed_down",
    "stalemate",
    "ended_by_ruling",
    "ongoing",
)

#: Columns of the episode table, in order.
EPISODE_COLUMNS = (
    "episode",
    "coercer",
    "target",
    "trigger_date",
    "threat_date",
    "imposition_date",
    "end_date",
    "instruments",
    "goods",
    "intensity",
    "outcome",
    "duration_months",
    "target_cost",
    "coercer_cost",
    "coalition_support",
    "coalition_stock",
    "stake",
    "resolve",
    "credibility",
    "expected_pain",
    "expected_net_gain",
)


class InactiveCoalitionWarning(InactiveLeverWarning):
    """A coalition response of the strategic layer that cannot act in the scenario (e.g. a counter-threat
    without a leverage good); the metric ``game.leverage_goods`` records the same.
    """


def _warn(message: str) -> None:
    warnings.warn(message, InactiveCoalitionWarning, stacklevel=3)


def lognormal_cdf(x: float, median: float, sigma: float) -> float:
    """Probability that a lognormal variable (``median``, log standard deviation ``sigma``) is below ``x``."""
    if x <= 0:
        return 0.0
    if sigma <= 0:
        return 1.0 if x >= median else 0.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


# ---------------------------------------------------------------------------------------- validation
def validate_game(cfg) -> None:
    """Check ``scenario.game`` against the scenario (one clear error naming the field, before any run).

    Raises:
        sim.world.scenario.ScenarioError: a bad value; the message names the field's full path.
    """
    from sim.world.schema import ScenarioError

    def fail(path: str, value, allowed: str) -> None:
        raise ScenarioError(f"{path}: {value!r} is invalid; allowed: {allowed}")

    s = cfg.scenario
    st = s.strategy
    game = s.get("game")
    if st.type != "game":
        if game is not None:
            fail("scenario.game", "a game block", "only with scenario.strategy.type: game")
        return
    if game is None:
        fail("scenario.game", None, "a game block (the strategic layer's settings) for strategy.type: game")
    p = "scenario.game"
    codes = [c.code for c in s.countries]
    goods = [g.id for g in s.goods]
    coalitions = sorted({k for c in s.countries for k in c.coalitions})
    if not game.dispute_rate_per_year >= 0:
        fail(f"{p}.dispute_rate_per_year", game.dispute_rate_per_year, ">= 0 (disputes per pair and year)")
    for name in ("stake", "resolve"):
        d = game[name]
        if not d.median > 0:
            fail(f"{p}.{name}.median", d.median, "> 0")
        if not d.sigma >= 0:
            fail(f"{p}.{name}.sigma", d.sigma, ">= 0")
    for name in ("horizon_months", "review_months", "threat_months", "max_episode_months"):
        if not int(game[name]) >= 1:
            fail(f"{p}.{name}", game[name], "an integer >= 1 (months)")
    if not int(game.warmup_months) >= 0:
        fail(f"{p}.warmup_months", game.warmup_months, "an integer >= 0 (months)")
    if not int(game.ruling_delay_months) >= 1:
        fail(f"{p}.ruling_delay_months", game.ruling_delay_months, "an integer >= 1 (months)")
    ints = list(game.intensities)
    if not ints or any(not (0 < float(x) <= 1) for x in ints) or ints != sorted(ints) or len(set(ints)) != len(ints):
        fail(f"{p}.intensities", ints, "a non-empty increasing list of shares in (0, 1]")
    for name in ("initial_credibility", "reputation_loss", "reputation_gain", "ruling_probability"):
        if not 0 <= float(game[name]) <= 1:
            fail(f"{p}.{name}", game[name], "a share in [0, 1]")
    if not game.government_change_rate_per_year >= 0:
        fail(f"{p}.government_change_rate_per_year", game.government_change_rate_per_year, ">= 0 (per year)")
    if game.lookahead not in ("every_decision", "cached"):
        fail(f"{p}.lookahead", game.lookahead, "every_decision, cached")
    if not game.targets:
        fail(f"{p}.targets", [], "at least one target")
    seen = set()
    for i, tg in enumerate(game.targets):
        q = f"{p}.targets[{i}]"
        if tg.country not in codes:
            fail(f"{q}.country", tg.country, f"a country of scenario.countries ({', '.join(codes)})")
        if tg.country == s.coercer:
            fail(f"{q}.country", tg.country, "a country other than the coercer")
        if tg.country in seen:
            fail(f"{q}.country", tg.country, "each target once")
        seen.add(tg.country)
        if not tg.gdp > 0:
            fail(f"{q}.gdp", tg.gdp, "> 0 (US$ per year)")
        if not tg.resolve_multiplier > 0:
            fail(f"{q}.resolve_multiplier", tg.resolve_multiplier, "> 0")
        if not tg.options:
            fail(f"{q}.options", [], "at least one option (instrument and goods)")
        for j, o in enumerate(tg.options):
            r = f"{q}.options[{j}]"
            if o.instrument not in GAME_INSTRUMENTS:
                fail(f"{r}.instrument", o.instrument, ", ".join(GAME_INSTRUMENTS))
            if not o.goods:
                fail(f"{r}.goods", [], "at least one good")
            for g in o.goods:
                if g not in goods:
                    fail(f"{r}.goods", g, f"goods of scenario.goods ({', '.join(goods)})")
            if o.instrument == "import_tariff" and not o.rate > 0:
                fail(f"{r}.rate", o.rate, "> 0 for an import_tariff")
            if o.instrument != "import_tariff" and o.rate != 0:
                fail(f"{r}.rate", o.rate, f"0 (only an import_tariff has a rate; this option is {o.instrument})")
    for i, co in enumerate(game.coalitions):
        q = f"{p}.coalitions[{i}]"
        if co.coalition not in coalitions:
            fail(f"{q}.coalition", co.coalition, f"a coalition named in scenario.countries ({', '.join(coalitions)})")
        for name in ("commitment", "absorb_rate", "absorb_max_share", "share_rate", "dependence_threshold"):
            if not 0 <= float(co[name]) <= 1:
                fail(f"{q}.{name}", co[name], "a share in [0, 1]")
    labels = [m.label for m in s.measures if m.label]
    for i, label in enumerate(game.get("replaces_measures") or []):
        hits = [m for m in s.measures if m.label == label]
        if len(hits) != 1 or hits[0].imposer != s.coercer:
            fail(
                f"{p}.replaces_measures[{i}]",
                label,
                f"the label of exactly one scheduled measure of the coercer {s.coercer} "
                f"(scenario.measures labels: {', '.join(labels) or '(none)'})",
            )
    for code, by_good in game.stockpile_months.items():
        if code not in codes:
            fail(f"{p}.stockpile_months", code, f"countries of scenario.countries ({', '.join(codes)})")
        for g, months in by_good.items():
            if g not in goods:
                fail(f"{p}.stockpile_months.{code}", g, f"goods of scenario.goods ({', '.join(goods)})")
            if not months >= 0:
                fail(f"{p}.stockpile_months.{code}.{g}", months, ">= 0 (months of baseline use)")


# ---------------------------------------------------------------------------------------- state
@dataclass
class Episode:
    """One dispute that reached a threat: its dates (steps), choices, outcome and costs."""

    index: int
    target: int
    trigger_step: int
    stake: float
    resolve: float
    option: int
    intensity_level: int
    credibility: float
    expected_pain: float
    expected_net_gain: float
    threat_step: int
    imposition_step: int | None = None
    end_step: int | None = None
    outcome: str = "ongoing"
    #: Coalition support: 1 the coalition acts, 0 it does not, the commitment in a lookahead copy.
    support: float = 0.0
    ruling_step: int | None = None
    measures: list = field(default_factory=list)
    #: Quantity (all goods, their units) other coalition members' game stocks delivered to the target.
    coalition_stock: float = 0.0
    target_cost: float = 0.0
    coercer_cost: float = 0.0
    #: Highest pain (share of GDP per year) the target bore without conceding.
    pain_seen: float = 0.0
    last_review: int = 0

    @property
    def open(self) -> bool:
        """Whether the episode has not ended."""
        return self.end_step is None

    @property
    def imposed(self) -> bool:
        """Whether a measure is in force."""
        return self.imposition_step is not None and self.end_step is None


class _GameStocks:
    """The game's stock releases, run in step 2 (policy actions) through the coercer's state agent."""

    def __init__(self, strategy: StrategicCoercer) -> None:
        self.strategy = strategy

    def act(self, model, state) -> None:
        """Deliver this month's stock releases to coerced targets' firms."""
        self.strategy.release_stocks(model)


class StrategicCoercer:
    """The coercer of the strategic layer (see the module docstring).

    Attributes:
        episodes: Every episode so far, in order of threat.
        disputes: Number of disputes that arose (threatened or not).
        credibility: Share of a threatened pain targets expect (lowered by back-downs).
        frozen: True in a lookahead copy: no decisions, no random draws; measures and the coalition's
            response go on as they are.
        rollouts: Forward simulations run so far (months simulated in ``rollout_months``).
    """

    name = "game"

    def __init__(self, model) -> None:
        self.cfg = model.cfg.scenario.game
        g = self.cfg
        w = model.world
        ci = {c: i for i, c in enumerate(w.countries)}
        gi = {x: i for i, x in enumerate(w.goods)}
        self.coercer = int(w.coercer)
        self.targets = [ci[t.country] for t in g.targets]
        self.gdp = np.array([float(t.gdp) for t in g.targets])
        self.resolve_multiplier = np.array([float(t.resolve_multiplier) for t in g.targets])
        self.options = [
            [(o.instrument, np.array([gi[x] for x in o.goods], dtype=np.int64), float(o.rate)) for o in t.options]
            for t in g.targets
        ]
        self.intensities = [float(x) for x in g.intensities]
        self.H = int(g.horizon_months)
        self.rng = model.rng.spawn(1)[0]  # its own stream: the world's draws are unchanged
        self.resolve = np.array(
            [self._draw_resolve(k) for k in range(len(self.targets))]
        )  # drawn at the start, redrawn at a change of government
        self.credibility = float(g.initial_credibility)
        self.episodes: list[Episode] = []
        self.disputes = 0
        self.frozen = False
        self.rollouts = 0
        self.rollout_months = 0
        self.government_changes: list[tuple[int, int]] = []
        self._cache: dict = {}
        self._month_base: tuple[int, dict] | None = None
        # Coalitions: members (not the coercer), and the counter goods of each.
        self.coalitions = []
        C = len(w.countries)
        imports = self._coercer_imports(model)
        for co in g.coalitions:
            members = np.array(
                [i for i, c in enumerate(model.cfg.scenario.countries) if co.coalition in list(c.coalitions)],
                dtype=np.int64,
            )
            members = members[members != self.coercer]
            tot = imports.sum(axis=1)
            from_members = imports[:, members].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(tot > 0, from_members / np.where(tot > 0, tot, 1.0), 0.0)
            counter = np.flatnonzero(share >= float(co.dependence_threshold) - 1e-12)
            is_member = np.zeros(C, dtype=bool)
            is_member[members] = True
            self.coalitions.append({"cfg": co, "members": members, "is_member": is_member, "counter": counter})
            if co.counter_threat and counter.size == 0:
                shares = ", ".join(
                    f"{w.goods[x]} {share[x]:.0%}" if tot[x] > 0 else f"{w.goods[x]} not imported"
                    for x in range(len(w.goods))
                )
                _warn(
                    f"game.coalitions[coalition={co.coalition}].counter_threat: {w.countries[self.coercer]} imports "
                    f"none of the scenario's goods for >= {float(co.dependence_threshold):.0%} from "
                    f"{co.coalition} (members' share of its baseline imports: {shares}), so the counter-threat has "
                    "no leverage good and cannot act; add a good the coercer imports mostly from the coalition, "
                    "or lower dependence_threshold"
                )
        # Game stocks: months of baseline monthly use.
        G = len(w.goods)
        use = model.recorder._base_need_gc.reshape(G, C)
        self.base_use = use
        for code, by_good in g.stockpile_months.items():
            for x, months in by_good.items():
                model.stockpile[gi[x], ci[code]] += float(months) * use[gi[x], ci[code]]
        model.state_agents[self.coercer].levers.append(_GameStocks(self))

    # ------------------------------------------------------------------ helpers
    def _draw_resolve(self, k: int) -> float:
        r = self.cfg.resolve
        return float(r.median) * self.resolve_multiplier[k] * float(np.exp(float(r.sigma) * self.rng.standard_normal()))

    @staticmethod
    def _coercer_imports(model) -> np.ndarray:
        """``[G, C]`` the coercer's baseline purchases of each good by origin (abroad only)."""
        w = model.world
        G, C = len(w.goods), len(w.countries)
        rows = np.flatnonzero(w.firm_country[w.row_firm] == w.coercer)
        need = w.row_requirement[rows] * w.firm_value_added[w.row_firm[rows]]
        out = np.zeros((G, C))
        for r, q in zip(rows, need, strict=True):
            for k, o in enumerate(w.slot_origin[r]):
                if o >= 0 and o != w.coercer:
                    out[w.row_good[r], o] += q * w.base_shares[r, k]
        return out

    def _coalitions_of(self, target: int) -> list[dict]:
        return [c for c in self.coalitions if c["is_member"][target]]

    def _support_prob(self, target: int) -> float:
        cs = self._coalitions_of(target)
        return max((float(c["cfg"].commitment) for c in cs), default=0.0)

    @staticmethod
    def month_cost(model, t: int, c: int) -> float:
        """Country ``c``'s cost in month ``t`` against the baseline, US$: its firms' output loss plus its
        lost export revenue (baseline exports at reference export prices less this month's).
        """
        rec, w = model.recorder, model.world
        loss = float(np.nan_to_num(rec.country_level["output_loss"][t, c]))
        exp = np.nan_to_num(rec.good_level["exports"][t, :, c])
        pe = np.nan_to_num(rec.good_level["price_export"][t, :, c])
        base = w.baseline_exports[:, c] * w.reference_price * (1.0 + w.baseline_measures.export_duty[:, c])
        return loss + float((base - exp * pe).sum())

    def _pain_share(self, k: int, cost: float, months: int) -> float:
        """A cost over ``months`` months as a share of target ``k``'s GDP per year."""
        return cost * 12.0 / max(months, 1) / self.gdp[k]

    def _p_concede(self, k: int, pain: float, seen: float = 0.0) -> float:
        """The coercer's probability that target ``k`` concedes to ``pain`` given it resisted ``seen``."""
        r = self.cfg.resolve
        med, sig = float(r.median) * self.resolve_multiplier[k], float(r.sigma)
        f_seen = lognormal_cdf(seen, med, sig)
        if f_seen >= 1.0:
            return 0.0
        return max(lognormal_cdf(pain, med, sig) - f_seen, 0.0) / (1.0 - f_seen)

    # ------------------------------------------------------------------ measures
    def _impose(self, model, ep: Episode, t_start: int) -> None:
        """Add the episode's measure (and the coalition's counter-measures) from month ``t_start``."""
        w = model.world
        n = w.calendar.n_steps
        cov = np.zeros(n)
        cov[t_start:] = 1.0
        k = self.targets.index(ep.target)
        instrument, goods, rate = self.options[k][ep.option]
        x = self.intensities[ep.intensity_level]
        cls = GAME_INSTRUMENTS[instrument]
        kw = {"rate": rate * x} if instrument == "import_tariff" else {"intensity": x}
        label = f"game episode {ep.index}: {instrument} on {w.countries[ep.target]}"
        start = w.calendar.first_day(min(t_start, n - 1))
        m = cls(
            imposer=self.coercer,
            goods=goods.copy(),
            targets=np.array([ep.target], dtype=np.int64),
            coverage=cov,
            start=start,
            label=label,
            **kw,
        )
        ep.measures = [m]
        if ep.support > 0:
            for co in self._coalitions_of(ep.target):
                if not co["cfg"].counter_threat or co["counter"].size == 0:
                    continue
                for mem in co["members"]:
                    c = ExportBan(
                        imposer=int(mem),
                        goods=co["counter"].copy(),
                        targets=np.array([self.coercer], dtype=np.int64),
                        coverage=cov.copy(),
                        start=start,
                        label=f"counter-measure of {w.countries[mem]} ({co['cfg'].coalition}), episode {ep.index}",
                        intensity=float(ep.support),
                    )
                    c.counter_measure = True
                    ep.measures.append(c)
        model.measures.extend(ep.measures)

    @staticmethod
    def _end(model, ep: Episode, t_end: int) -> None:
        for m in ep.measures:
            m.ended_at = t_end

    def _set_intensity(self, ep: Episode, level: int) -> None:
        ep.intensity_level = level
        k = self.targets.index(ep.target)
        instrument, _, rate = self.options[k][ep.option]
        m = ep.measures[0]
        if instrument == "import_tariff":
            m.rate = rate * self.intensities[level]
        else:
            m.intensity = self.intensities[level]

    # ------------------------------------------------------------------ coalition actions
    def release_stocks(self, model) -> None:
        """Step 2: a target hit on the export side draws on its game stock, and committed members
        share theirs, up to the blocked share of its baseline use each month.
        """
        t = model.step_index
        for ep in self.episodes:
            if not ep.imposed or t < ep.imposition_step:
                continue
            k = self.targets.index(ep.target)
            instrument, goods, _ = self.options[k][ep.option]
            if GAME_INSTRUMENTS[instrument].classifier.get("side") != "export":
                continue
            x = self.intensities[ep.intensity_level]
            for g in goods:
                gap = x * self.base_use[g, ep.target] - model.stockpile_delivery[g, ep.target]
                donors = [(ep.target, 1.0)]
                if ep.support > 0:
                    for co in self._coalitions_of(ep.target):
                        if co["cfg"].share_stockpiles:
                            rate = float(co["cfg"].share_rate) * ep.support
                            donors += [(int(d), rate) for d in co["members"] if d != ep.target]
                for d, rate in donors:
                    if gap <= 0:
                        break
                    q = min(rate * model.stockpile[g, d], gap)
                    if q > 0:
                        model.stockpile[g, d] -= q
                        model.stockpile_release[g, d] += q
                        model.stockpile_delivery[g, ep.target] += q
                        gap -= q
                        if d != ep.target:
                            ep.coalition_stock += q

    def _absorb(self, model) -> None:
        """After the month: committed members move sourcing toward a target's shut-out exports."""
        for ep in self.episodes:
            if not ep.imposed or ep.support <= 0:
                continue
            k = self.targets.index(ep.target)
            instrument, goods, _ = self.options[k][ep.option]
            if GAME_INSTRUMENTS[instrument].classifier.get("side") != "import":
                continue
            for co in self._coalitions_of(ep.target):
                cc = co["cfg"]
                if not cc.absorb_exports:
                    continue
                buyers = co["members"][co["members"] != ep.target]
                rate = float(cc.absorb_rate) * ep.support
                for g in goods:
                    shift_sourcing_toward(model, int(g), buyers, ep.target, rate, float(cc.absorb_max_share))

    # ------------------------------------------------------------------ lookahead
    def _rollout(self, model, t: int, action) -> tuple[np.ndarray, int]:
        """Simulate months ``t+1 .. t+H`` from a copy of the model after ``action``; return each
        country's summed cost (US$, :meth:`month_cost`) and the months simulated.

        ``action``: ``None`` (nothing new), ``("impose", target, option, level)``, ``("lift", episode)``
        or ``("level", episode, level)``.
        """
        h = min(self.H, model.n_steps - 1 - t)
        C = len(model.world.countries)
        if h <= 0:
            return np.zeros(C), 0
        memo = self._shared(model)
        if not model.world.quota_chains:
            memo[id(model.world)] = model.world  # read-only once built (quota books live in it otherwise)
        # The recorder's edge-flow list grows by a month each step and no month of the copy reads it: the
        # copy starts with an empty one (restored on the original at once).
        rec = model.recorder
        flows, rec.flows = rec.flows, []
        try:
            rollout = copy.deepcopy(model, memo)
        finally:
            rec.flows = flows
        me: StrategicCoercer = rollout.strategy
        me.frozen = True
        if action is not None:
            kind = action[0]
            if kind == "impose":
                _, target, option, level = action
                ep = Episode(-1, target, t, 0.0, 0.0, option, level, 1.0, 0.0, 0.0, t, imposition_step=t + 1)
                ep.support = me._support_prob(target)
                me.episodes.append(ep)
                me._impose(rollout, ep, t + 1)
            elif kind == "lift":
                ep = me.episodes[self.episodes.index(action[1])]
                me._end(rollout, ep, t + 1)
                ep.end_step = t + 1
            else:
                ep = me.episodes[self.episodes.index(action[1])]
                me._set_intensity(ep, action[2])
        cost = np.zeros(C)
        advance = type(rollout).step  # the model's own month, not Mesa's event wrapper (bound to the original)
        for _ in range(h):
            advance(rollout)
            s = rollout.step_index
            cost += np.array([self.month_cost(rollout, s, c) for c in range(C)])
        self.rollouts += 1
        self.rollout_months += h
        return cost, h

    @staticmethod
    def _shared(model) -> dict:
        """Deep-copy memo of the configuration nodes the model and its parts hold (read-only once the
        model is built): a copy shares them instead of copying them, which is most of a copy's cost.
        """
        from omegaconf import Container

        memo: dict = {id(model.cfg): model.cfg}
        seen: set[int] = set()

        def scan(obj, depth: int) -> None:
            if id(obj) in seen or depth > 3:
                return
            seen.add(id(obj))
            if isinstance(obj, Container):
                memo[id(obj)] = obj
                return
            if isinstance(obj, dict):
                items = obj.values()
            elif isinstance(obj, (list, tuple)):
                items = obj
            elif hasattr(obj, "__dict__") and not isinstance(obj, type):
                items = vars(obj).values()
            else:
                return
            for v in items:
                if isinstance(v, (Container, dict, list, tuple)) or hasattr(v, "__dict__"):
                    if not isinstance(v, np.ndarray):
                        scan(v, depth + 1)

        scan(model, 0)
        return memo

    def _base(self, model, t: int) -> tuple[np.ndarray, int]:
        """The no-action rollout of month ``t`` (shared by every decision of the month)."""
        if self._month_base is None or self._month_base[0] != t:
            self._month_base = (t, self._rollout(model, t, None))
        return self._month_base[1]

    def _effect(self, model, t: int, action, key=None) -> tuple[float, float, int]:
        """``(target pain share, coercer cost US$, months)`` of ``action`` against no action (target
        of the action; a cached table entry under ``key`` in ``cached`` mode).
        """
        if self.cfg.lookahead == "cached" and key is not None and key in self._cache:
            return self._cache[key]
        base, h = self._base(model, t)
        cost, _ = self._rollout(model, t, action)
        target = action[1] if action[0] == "impose" else action[1].target
        k = self.targets.index(target)
        diff = cost - base
        out = (self._pain_share(k, diff[target], h), float(diff[self.coercer]), h)
        if key is not None:
            self._cache[key] = out
        return out

    def _value(self, k: int, stake: float, pain: float, cost: float, seen: float, credibility: float | None) -> float:
        """Expected net gain of an action to the coercer (US$): concession at the threat (when
        ``credibility`` is given) or after imposition, less the cost over the horizon.
        """
        p_after = self._p_concede(k, pain, seen)
        if credibility is None:
            return p_after * stake - cost
        p_threat = self._p_concede(k, credibility * pain, seen)
        p_rest = self._p_concede(k, pain, max(seen, credibility * pain))
        return p_threat * stake + (1.0 - p_threat) * (p_rest * stake - cost)

    def expected_net_gain(self, model, target: int, stake: float) -> tuple[float, int, int, float]:
        """The coercer's best ``(net gain, option, intensity level, pain)`` from threatening ``target``
        now with ``stake`` at stake, by forward simulation of every option and intensity.
        """
        t = model.step_index
        k = self.targets.index(target)
        best = (-math.inf, 0, 0, 0.0)
        for o in range(len(self.options[k])):
            for lv in range(len(self.intensities)):
                pain, cost, _ = self._effect(model, t, ("impose", target, o, lv), key=(target, o, lv))
                v = self._value(k, stake, pain, cost, 0.0, self.credibility)
                if v > best[0]:
                    best = (v, o, lv, pain)
        return best

    # ------------------------------------------------------------------ the month
    def decide(self, model, step: int) -> None:
        """Step 1: nothing; the strategic coercer decides at the end of each month (:meth:`after_step`)."""

    def after_step(self, model, t: int) -> None:
        """End of month ``t``: book costs, let targets, coalitions and the coercer act for month ``t+1``."""
        self._absorb(model)
        if self.frozen:
            return
        g = self.cfg
        n_imposed = sum(1 for ep in self.episodes if ep.imposed and t >= ep.imposition_step)
        coercer_cost = self.month_cost(model, t, self.coercer)
        for ep in self.episodes:
            if ep.imposed and t >= ep.imposition_step:
                ep.target_cost += self.month_cost(model, t, ep.target)
                ep.coercer_cost += coercer_cost / max(n_imposed, 1)
        if t + 1 >= model.n_steps:
            return
        # Changes of government redraw resolve.
        p_gov = 1.0 - math.exp(-float(g.government_change_rate_per_year) / 12.0)
        for k in range(len(self.targets)):
            if self.rng.random() < p_gov:
                self.resolve[k] = self._draw_resolve(k)
                self.government_changes.append((t, self.targets[k]))
        for ep in self.episodes:
            if ep.open:
                self._advance(model, t, ep)
        # New disputes.
        p_dispute = 1.0 - math.exp(-float(g.dispute_rate_per_year) / 12.0)
        busy = {ep.target for ep in self.episodes if ep.open}
        for k, target in enumerate(self.targets):
            draw = self.rng.random()
            stake_draw = self.rng.standard_normal()
            if t < int(g.warmup_months) or target in busy or draw >= p_dispute:
                continue
            self.disputes += 1
            stake = float(g.stake.median) * float(np.exp(float(g.stake.sigma) * stake_draw))
            value, option, level, pain = self.expected_net_gain(model, target, stake)
            if value <= 0:
                continue  # not worth a threat: the dispute stays diplomatic
            ep = Episode(
                len(self.episodes),
                target,
                t,
                stake,
                float(self.resolve[k]),
                option,
                level,
                self.credibility,
                pain,
                value,
                threat_step=t + 1,
            )
            self.episodes.append(ep)
            if self.credibility * pain > self.resolve[k]:
                self._finish(ep, t + 1, "conceded_at_threat")

    def _finish(self, ep: Episode, step: int, outcome: str, model=None) -> None:
        ep.end_step = step
        ep.outcome = outcome
        if model is not None:
            self._end(model, ep, step)
        g = self.cfg
        if outcome in ("conceded_at_threat", "conceded_after_imposition"):
            self.credibility += float(g.reputation_gain) * (1.0 - self.credibility)
        elif outcome == "coercer_backed_down":
            self.credibility *= 1.0 - float(g.reputation_loss)

    def _advance(self, model, t: int, ep: Episode) -> None:
        """One month of an open episode: impose or back down after the threat; concede, rule, review."""
        g = self.cfg
        k = self.targets.index(ep.target)
        backdown = -float(g.reputation_loss) * ep.stake
        if ep.imposition_step is None:
            if t + 1 < ep.threat_step + int(g.threat_months):
                return
            seen = ep.credibility * ep.expected_pain  # the target resisted this much
            pain, cost, _ = self._effect(
                model,
                t,
                ("impose", ep.target, ep.option, ep.intensity_level),
                key=(ep.target, ep.option, ep.intensity_level),
            )
            if self._value(k, ep.stake, pain, cost, seen, None) <= backdown:
                self._finish(ep, t + 1, "coercer_backed_down")
                return
            ep.imposition_step = t + 1
            ep.last_review = t + 1
            ep.pain_seen = seen
            ep.expected_pain = pain
            ep.support = float(self.rng.random() < self._support_prob(ep.target))
            if self.rng.random() < float(g.ruling_probability):
                ep.ruling_step = t + 1 + int(g.ruling_delay_months)
            self._impose(model, ep, t + 1)
            # The measure is now credible: a target whose resolve is below the expected pain gives in.
            if pain > self.resolve[k]:
                self._finish(ep, t + 1, "conceded_after_imposition", model)
            return
        months = t + 1 - ep.imposition_step
        lo = max(ep.imposition_step, t - 2)
        borne = sum(self.month_cost(model, s, ep.target) for s in range(lo, t + 1))
        pain_now = self._pain_share(k, borne, t + 1 - lo)
        if max(pain_now, ep.expected_pain) > self.resolve[k]:
            self._finish(ep, t + 1, "conceded_after_imposition", model)
            return
        ep.pain_seen = max(ep.pain_seen, pain_now)
        if ep.ruling_step is not None and t + 1 >= ep.ruling_step:
            self._finish(ep, t + 1, "ended_by_ruling", model)
            return
        if months >= int(g.max_episode_months):
            self._finish(ep, t + 1, "stalemate", model)
            return
        if t + 1 - ep.last_review < int(g.review_months):
            return
        ep.last_review = t + 1
        # Review: hold, escalate or lift, each by simulation (hold = lifting's opposite).
        seen = max(ep.pain_seen, ep.expected_pain)
        if g.lookahead == "cached":
            key = (ep.target, ep.option, ep.intensity_level)
            pain, cost, _ = self._effect(model, t, ("impose", *key), key=key)
        else:
            base, h = self._base(model, t)
            lifted, _ = self._rollout(model, t, ("lift", ep))
            d = base - lifted
            pain, cost = self._pain_share(k, d[ep.target], h), float(d[self.coercer])
        choices = [(self._value(k, ep.stake, pain, cost, seen, None), "hold", ep.intensity_level)]
        if ep.intensity_level + 1 < len(self.intensities):
            lv = ep.intensity_level + 1
            if g.lookahead == "cached":
                p2, c2, _ = self._effect(model, t, ("impose", ep.target, ep.option, lv), key=(ep.target, ep.option, lv))
            else:
                base, h = self._base(model, t)
                up, _ = self._rollout(model, t, ("level", ep, lv))
                d2 = up - base  # what escalating adds to holding
                p2 = self._pain_share(k, d[ep.target] + d2[ep.target], h)
                c2 = cost + float(d2[self.coercer])
            choices.append((self._value(k, ep.stake, p2, c2, seen, None), "escalate", lv))
        choices.append((backdown, "lift", ep.intensity_level))
        value, what, lv = max(choices, key=lambda c: c[0])
        ep.expected_net_gain = value
        if what == "lift":
            self._finish(ep, t + 1, "coercer_backed_down", model)
        elif what == "escalate":
            self._set_intensity(ep, lv)
            ep.expected_pain = p2

    # ------------------------------------------------------------------ outputs
    def episode_table(self, model) -> pd.DataFrame:
        """One row per episode (columns :data:`EPISODE_COLUMNS`); dates are first days of months."""
        w = model.world
        cal = w.calendar

        def day(s):
            return pd.Timestamp(cal.first_day(s)) if s is not None and s < cal.n_steps else pd.NaT

        rows = []
        for ep in self.episodes:
            k = self.targets.index(ep.target)
            instrument, goods, _ = self.options[k][ep.option]
            end = ep.end_step
            last = end if end is not None else model.step_index + 1
            rows.append(
                {
                    "episode": ep.index,
                    "coercer": w.countries[self.coercer],
                    "target": w.countries[ep.target],
                    "trigger_date": day(ep.trigger_step),
                    "threat_date": day(ep.threat_step),
                    "imposition_date": day(ep.imposition_step),
                    "end_date": day(end) if end is not None else pd.NaT,
                    "instruments": instrument,
                    "goods": ",".join(w.goods[x] for x in goods),
                    "intensity": self.intensities[ep.intensity_level],
                    "outcome": ep.outcome,
                    "duration_months": int(last - ep.threat_step),
                    "target_cost": ep.target_cost,
                    "coercer_cost": ep.coercer_cost,
                    "coalition_support": ep.support,
                    "coalition_stock": ep.coalition_stock,
                    "stake": ep.stake,
                    "resolve": ep.resolve,
                    "credibility": ep.credibility,
                    "expected_pain": ep.expected_pain,
                    "expected_net_gain": ep.expected_net_gain,
                }
            )
        df = pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
        for c in ("trigger_date", "threat_date", "imposition_date", "end_date"):
            df[c] = pd.to_datetime(df[c])
        df["outcome"] = pd.Categorical(df["outcome"], categories=list(OUTCOMES))
        for c in ("episode", "duration_months"):
            df[c] = df[c].astype("int64")
        for c in (
            "intensity",
            "target_cost",
            "coercer_cost",
            "coalition_support",
            "coalition_stock",
            "stake",
            "resolve",
            "credibility",
            "expected_pain",
            "expected_net_gain",
        ):
            df[c] = df[c].astype("float64")
        return df

    def metrics(self) -> dict:
        """Scalar outcomes of the game (``game.*`` metrics)."""
        eps = self.episodes
        n = len(eps)
        out = {
            "game.disputes": int(self.disputes),
            "game.episodes": n,
            "game.rollouts": int(self.rollouts),
            "game.rollout_months": int(self.rollout_months),
            "game.credibility_end": float(self.credibility),
            "game.government_changes": len(self.government_changes),
        }
        for o in OUTCOMES:
            out[f"game.outcome.{o}"] = sum(1 for e in eps if e.outcome == o)
        ended = [e for e in eps if e.outcome != "ongoing"]
        conceded = sum(1 for e in ended if e.outcome.startswith("conceded"))
        out["game.success_rate"] = conceded / len(ended) if ended else None
        out["game.coercer_cost"] = float(sum(e.coercer_cost for e in eps))
        out["game.target_cost"] = float(sum(e.target_cost for e in eps))
        out["game.coalition_support_episodes"] = sum(1 for e in eps if e.support > 0)
        out["game.coalition_stock"] = float(sum(e.coalition_stock for e in eps))
        out["game.counter_measures"] = sum(1 for e in eps for m in e.measures if getattr(m, "counter_measure", False))
        lev = [co["counter"] for co in self.coalitions if co["cfg"].counter_threat]
        out["game.leverage_goods"] = int(np.unique(np.concatenate(lev)).size) if lev else 0
        return out
