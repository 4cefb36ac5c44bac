"""Policy levers: what states do against coercion, each with its mechanism and its cost.

A run's levers come from the ``policy`` node of its config (``configs/policy/``; schema in
:mod:`sim.world.config`). Each lever is a small class below; its docstring says what it does, the units of
its parameters and the historical case or literature it follows. Levers act at fixed points of the
model's step (:mod:`sim.model.model`):

- **before the world is built**, levers that finance capacity (friend-shoring, recycling) add or commit
  capacity projects (:func:`expand_scenario`), so the projects' build lags and ramp-ups are the model's;
- **step 2, state actions** (:meth:`Lever.act`, run by each :class:`sim.model.agents.StateAgent` for its own
  country): stockpile releases and refill orders, shared stock, inventory credits, substitution R&D;
- **after market clearing** (:meth:`Lever.after_clear`): reserve purchases are booked at the prices paid;
- **after adaptation** (:meth:`Lever.after_adapt`): sourcing weights are capped, sped up or shifted
  toward a coerced partner.

Every lever books what it costs the state, US$ per month by country, in ``model.lever_cost``; the
recorder writes the total as the ``policy_cost`` variable and each lever's share as
``policy_cost_<lever>``. A lever at its neutral setting (zero months, zero shift, no budget...) leaves
the run identical to one without it.

No lever is a silent no-op: when the model is built each lever checks whether it can act in the scenario
(:meth:`Lever.inactive_reason`) and, at the end of the run, whether it did (:meth:`Lever.idle_reason`); if
not it warns with an :class:`InactiveLeverWarning` that names the lever, the reason and what would make it
act. Each lever records the months in which it acted (:attr:`Lever.acted`), reported as the metrics
``lever_active.<lever>`` (0/1) and ``lever_effect.<lever>`` (months).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, override

import numpy as np

from sim.coercion.measures import ExportBan, ImportTariff
from sim.model import kernels
from sim.world.calendar import MonthlyCalendar, parse_date, parse_month, ramp_share

__all__ = [
    "LEVER_NAMES",
    "Lever",
    "Stockpile",
    "Diversification",
    "InventoryIncentive",
    "Friendshoring",
    "CollectiveResponse",
    "CounterTariff",
    "CounterRestriction",
    "InactiveLeverWarning",
    "Substitution",
    "Recycling",
    "expand_scenario",
    "build_levers",
    "coercion_in_force",
    "check_levers_after_run",
    "shift_sourcing_toward",
]

#: Levers in the order they act within a phase: a state's own reserve releases before coalition partners
#: share theirs; the diversification subsidy scales the month's own sourcing adjustment before a
#: coalition shifts weights toward a coerced member (so the subsidy does not amplify that shift).
LEVER_NAMES: tuple[str, ...] = (
    "stockpile",
    "diversification",
    "collective_response",
    "inventory_incentive",
    "substitution",
    "friendshoring",
    "recycling",
)


def _calendar(scenario) -> MonthlyCalendar:
    return MonthlyCalendar(
        parse_month(scenario.start, field="scenario.start"), parse_month(scenario.end, field="scenario.end")
    )


def _step_of(value: str | None, cal: MonthlyCalendar, default: int = 0) -> int:
    if value is None:
        return default
    return cal.step_of(parse_date(value, field="date"))


def _lever_nodes(cfg) -> dict:
    policy = cfg.get("policy") if hasattr(cfg, "get") else getattr(cfg, "policy", None)
    if policy is None:
        return {}
    return {name: policy.get(name) for name in LEVER_NAMES if policy.get(name) is not None}


def _baseline_use(scenario) -> dict[tuple[str, str], float]:
    """Baseline use per (country, good), quantity per year, from the user sectors."""
    use: dict[tuple[str, str], float] = {}
    for u in scenario.user_sectors:
        for g, q in u.use.items():
            use[(u.country, g)] = use.get((u.country, g), 0.0) + float(q)
    return use


# --------------------------------------------------------------------------- scenario expansion
def _acting(node, scenario) -> list[str]:
    return list(node.countries) if node.countries else list(scenario.targets)


def _lever_goods(node, scenario) -> list[str]:
    return list(node.goods) if node.get("goods") else [g.id for g in scenario.goods]


def first_coercion_date(scenario, country: str) -> str:
    """Start of the coercer's first measure that names ``country`` (the scenario start if none)."""
    dates = [
        parse_date(m.start, field="start")
        for m in scenario.measures
        if m.imposer == scenario.coercer and country in list(m.targets)
    ]
    return min(dates).isoformat() if dates else str(scenario.start)


def _project_name(lever: str, country: str, good: str, host: str) -> str:
    return f"{lever}: {country} {good}" + (f" in {host}" if host != country else "")


class _With:
    """A read-only view of a config node with some attributes replaced (cheaper than a deep copy)."""

    def __init__(self, base, **replaced) -> None:
        self.__dict__["_base"] = base
        self.__dict__.update(replaced)

    def __getattr__(self, key):
        return getattr(self.__dict__["_base"], key)


def _financed_project(
    lever: str, financer: str, host: str, good: str, capacity: float, spec, ref: float, start, offtake: dict
):
    """A project a lever finances: ``spec`` gives its cost ratios and lags (unit cost and capex as
    multiples of the reference price ``ref``), committed on ``start``.
    """
    from sim.world.config import ProjectConfig

    return ProjectConfig(
        name=_project_name(lever, financer, good, host),
        country=host,
        good=good,
        capacity=capacity,
        unit_cost=float(spec.unit_cost_ratio) * ref,
        build_lag_months=int(spec.build_lag_months),
        ramp_up_months=int(spec.ramp_up_months),
        capex=float(spec.capex_ratio) * capacity * ref,
        committed_start=str(start),
        offtake=offtake,
    )


def expand_scenario(cfg):
    """What the world is built from: ``cfg`` with the capacity projects that friend-shoring and
    recycling levers finance added to (or committed in) the scenario. ``cfg`` itself is left unchanged
    (the result is a light view of it with a new project list); without such levers it is returned as
    is.
    """
    nodes = _lever_nodes(cfg)
    if "friendshoring" not in nodes and "recycling" not in nodes:
        return cfg
    s = cfg.scenario
    ref = {g.id: float(g.reference_price) for g in s.goods}
    use = _baseline_use(s)
    projects = list(s.projects)
    new = []
    if "friendshoring" in nodes:
        n = nodes["friendshoring"]
        for country in _acting(n, s):
            start = n.start or first_coercion_date(s, country)
            for spec in n.projects:
                if spec.project is not None:
                    for k, pj in enumerate(projects):
                        if pj.name == spec.project:
                            offtake = dict(pj.offtake)
                            offtake[country] = float(spec.offtake)
                            projects[k] = _With(pj, committed_start=str(start), offtake=offtake)
                    continue
                goods = [spec.good] if spec.good is not None else _lever_goods(n, s)
                host = spec.country or country
                for g in goods:
                    capacity = float(spec.capacity_share) * use.get((country, g), 0.0)
                    if capacity <= 0:
                        continue
                    offtake = {country: float(spec.offtake)} if spec.offtake > 0 else {}
                    new.append(
                        _financed_project("friendshoring", country, host, g, capacity, spec, ref[g], start, offtake)
                    )
    if "recycling" in nodes:
        n = nodes["recycling"]
        for country in _acting(n, s):
            for g in _lever_goods(n, s):
                share = float(n.recovery_share_by_good.get(g, n.recovery_share))
                capacity = share * use.get((country, g), 0.0)
                if capacity <= 0:
                    continue
                new.append(
                    _financed_project("recycling", country, country, g, capacity, n, ref[g], n.start or s.start, {})
                )
    projects += new
    return _With(cfg, scenario=_With(s, projects=projects))


# --------------------------------------------------------------------------- coercion signal
def coercion_in_force(model, t: int) -> tuple[np.ndarray, np.ndarray]:
    """``(export_side, import_side)``, each ``[G, C]`` bool: whether a discriminatory measure of the
    coercer (one that names some countries, not all) is in force in month ``t`` against the country's
    imports of the good (export side: bans, informal halts) or its exports to the coercer (import
    side: import bans, tariffs, informal restrictions).
    """
    G, C = len(model.world.goods), len(model.world.countries)
    exp = np.zeros((G, C), dtype=bool)
    imp = np.zeros((G, C), dtype=bool)
    for m in model.measures:
        if m.imposer != model.coercer_index or getattr(m, "counter_measure", False):
            continue
        if m.targets.size >= C - 1 or m.in_force(t) <= 0.0:
            continue
        side = m.classifier.get("side", "export")
        target = exp if side == "export" else imp
        target[np.ix_(m.goods, m.targets)] = True
    return exp, imp


# --------------------------------------------------------------------------- levers
class InactiveLeverWarning(UserWarning):
    """A policy lever that cannot act in the scenario (checked when the model is built) or did not act
    in the run (checked at its end). The message names the lever (``<lever>`` or ``<lever>.<part>``),
    the reason and what would make it act; the metrics ``lever_active.<lever>`` and
    ``lever_effect.<lever>`` record the same.
    """


def _names(codes, idx) -> str:
    return ", ".join(str(codes[int(i)]) for i in idx) or "(none)"


def _base_use(model) -> np.ndarray:
    """Baseline use per month ``[G, C]`` of every good by every country's firms."""
    w = model.world
    G, C = len(w.goods), len(w.countries)
    return np.bincount(
        w.row_good * C + model._row_destination,
        weights=w.row_requirement * w.firm_value_added[w.row_firm],
        minlength=G * C,
    ).reshape(G, C)


def _coercer_import_shares(model) -> tuple[np.ndarray, np.ndarray]:
    """The coercer's baseline imports: ``(total [G], by origin [G, C])``, quantities per month from its
    firms' baseline use and baseline sourcing weights.
    """
    w = model.world
    G, C = len(w.goods), len(w.countries)
    c0 = model.coercer_index
    rows = np.flatnonzero(model._row_destination == c0)
    by = np.zeros((G, C))
    if rows.size:
        q = (w.row_requirement * w.firm_value_added[w.row_firm])[rows]
        so, wt = w.slot_origin[rows], w.base_weights[rows]
        g = np.broadcast_to(w.row_good[rows][:, None], so.shape)
        foreign = (so >= 0) & (so != c0)
        np.add.at(by, (g[foreign], so[foreign]), (q[:, None] * wt)[foreign])
    return by.sum(axis=1), by


@dataclass
class _WhileMemberCoerced:
    """A coalition's counter-measure: in force while the coercer runs a discriminatory measure
    against any member of its :class:`CollectiveResponse` (``lever``) in ``model``.
    """

    lever: object = None
    model: object = None
    counter_measure: ClassVar[bool] = True

    def in_force(self, step: int) -> float:
        """1 while any coalition member is coerced, else 0."""
        return 1.0 if self.lever.any_member_coerced(self.model, step) else 0.0


@dataclass
class CounterTariff(_WhileMemberCoerced, ImportTariff):
    """A coalition member's counter-tariff on imports from the coercer, in force while the coercer runs a
    discriminatory measure against any member (see :class:`CollectiveResponse`).
    """

    classifier: ClassVar[dict] = {
        "instrument": "counter_tariff",
        "side": "import",
        "example": "G7 coordination platform, 2023",
    }


@dataclass
class CounterRestriction(_WhileMemberCoerced, ExportBan):
    """A coalition member's counter-restriction: it withholds ``intensity`` (the coalition's commitment
    strength) of its exports of the leverage goods to the coercer while the coercer runs a
    discriminatory measure against any member (see :class:`CollectiveResponse`).
    """

    classifier: ClassVar[dict] = {
        "instrument": "counter_restriction",
        "side": "export",
        "example": "collective resilience counter-threat (Cha 2023)",
    }


class Lever:
    """Base class: a lever acting for some countries on some goods.

    Attributes:
        name: Config key of the lever (``policy.<name>``).
        index: Row of the lever in ``model.lever_cost``.
        countries: Indices of the countries that run it.
        goods: Indices of the goods it covers.
    """

    name: ClassVar[str] = ""
    #: Months in which the lever acted (``[n_steps]`` bool; set by :func:`build_levers`).
    acted: np.ndarray

    def __init__(self, model, node, index: int) -> None:
        w, s = model.world, model.cfg.scenario
        self.index = index
        self.cfg = node
        ci = {c: i for i, c in enumerate(w.countries)}
        gi = {g: i for i, g in enumerate(w.goods)}
        countries = list(node.countries) if ("countries" in node and node.countries) else list(s.targets)
        self.countries = np.array([ci[c] for c in countries], dtype=np.int64)
        goods = list(node.goods) if ("goods" in node and node.goods) else list(w.goods)
        self.goods = np.array([gi[g] for g in goods], dtype=np.int64)
        cal = w.calendar
        self.start = _step_of(node.get("start"), cal, 0) if "start" in node else 0

    def rows(self, model, countries=None, goods=None) -> np.ndarray:
        """Purchase rows of the given (default: the lever's) countries and goods."""
        w = model.world
        countries = self.countries if countries is None else countries
        goods = self.goods if goods is None else goods
        return np.flatnonzero(np.isin(model._row_destination, countries) & np.isin(w.row_good, goods))

    def book(self, model, country: int, amount: float) -> None:
        """Book ``amount`` US$ of cost this month to ``country`` (never negative)."""
        if amount > 0:
            model.lever_cost[self.index, country] += amount

    def mark(self, model, part: str | None = None) -> None:
        """Record that the lever (or one of its parts) acted this month."""
        t = max(int(model.step_index), 0)
        self.acted[t] = True
        if part is not None:
            self.part_acted[part][t] = True

    # checks: no silent no-op levers
    #: Parts of a lever switched on in this run, each with its own ``acted`` months (collective response).
    part_acted: dict[str, np.ndarray]

    def link(self, model, levers: list[Lever]) -> None:
        """Called once all of the run's levers are built (a lever may use another's state)."""

    def inactive_reason(self, model) -> str | None:
        """Why the lever cannot act in this scenario and what would make it act (None: it can)."""
        return None

    def inactive_parts(self, model) -> dict[str, str]:
        """Parts switched on that cannot act though the lever can, each with its reason."""
        return {}

    def idle_reason(self, model) -> str:
        """Why a lever that could act did not in this run, and what would have made it act."""
        return "it never acted in this run"

    # hooks (no-ops by default)
    def act(self, model, state) -> None:
        """Step 2, for one state (``state.country``)."""

    def after_clear(self, model, t: int, result) -> None:
        """After market clearing (reserve purchases are known)."""

    def before_adapt(self, model, t: int) -> None:
        """Before sourcing adaptation."""

    def after_adapt(self, model, t: int, result) -> None:
        """After sourcing adaptation."""

    @property
    def acting_countries(self) -> np.ndarray:
        """Countries whose state runs :meth:`act`."""
        return self.countries


class Stockpile(Lever):
    """A state strategic reserve per country and good (Japan's national rare-metal stockpile: target
    60 days of consumption, 42 national + 18 private, IEA policy database; the IEA oil-stock model).

    Size: ``months`` x the country's baseline monthly use of the good. On the first month it holds
    ``initial_fill`` of that (bought at the reference price; booked as a cost when
    ``cost_initial_fill``). Release: when firms were short or rationed last month (``shortage``), when
    the price they paid last month was at least ``release_price_ratio`` x its first-month value
    (``price``) or either; at most ``max_release_rate`` x the target per month and no more than last
    month's gap (shortage rule) or one month of baseline use (price rule). Released stock goes to the
    country's firms before they plan purchases, so it lowers what they buy on the market. Refill: while
    the reserve is below ``refill_below`` x target and last month's price was at most
    ``refill_price_ratio`` x its first-month value, the state buys up to ``refill_rate`` x target per month
    on the market, through its firms' sourcing mix. Costs: purchases at the prices paid, and
    ``holding_cost`` per year of the reserve's value at the reference price. Sales to firms are recorded
    as ``policy_revenue``, not netted from the cost.
    """

    name = "stockpile"

    def __init__(self, model, node, index: int) -> None:
        super().__init__(model, node, index)
        w = model.world
        G, C = len(w.goods), len(w.countries)
        base = np.bincount(
            w.row_good * C + model._row_destination,
            weights=w.row_requirement * w.firm_value_added[w.row_firm],
            minlength=G * C,
        ).reshape(G, C)
        self.base_use = base
        mask = np.zeros((G, C), dtype=bool)
        mask[np.ix_(self.goods, self.countries)] = True
        self.mask = mask & (base > 0)
        self.target = np.where(self.mask, float(node.months) * base, 0.0)
        # The rules' numbers, read once (the configuration does not change during a run).
        self._release_on = str(node.release_on)
        self._release_price_ratio = float(node.release_price_ratio)
        self._max_release_rate = float(node.max_release_rate)
        self._refill_below = float(node.refill_below)
        self._refill_price_ratio = float(node.refill_price_ratio)
        self._refill_rate = float(node.refill_rate)
        self._holding_cost = float(node.holding_cost)
        # The goods it holds, by country (index arrays, as the compiled reserve passes take them).
        self._goods_of = [np.flatnonzero(self.mask[:, c]).astype(np.int64) for c in range(C)]
        self._rule = {
            "shortage": kernels.RESERVE_ON_SHORTAGE,
            "price": kernels.RESERVE_ON_PRICE,
            "either": kernels.RESERVE_ON_EITHER,
        }[self._release_on]

    @override
    def inactive_reason(self, model) -> str | None:
        w = model.world
        if float(self.cfg.months) <= 0:
            return "months is 0, so the reserve holds nothing; set months > 0"
        if not self.mask.any():
            return (
                f"the countries ({_names(w.countries, self.countries)}) have no baseline use of the goods "
                f"({_names(w.goods, self.goods)}), so there is no reserve to hold; cover goods they use"
            )
        return None

    @override
    def idle_reason(self, model) -> str:
        n = self.cfg
        return (
            f"the reserve never released (no month met its release rule, release_on={n.release_on}, while it "
            f"held stock) and never refilled; a disruption of the covered goods, release_on=either or an "
            f"initial_fill below refill_below ({n.refill_below}) would make it act"
        )

    @override
    def act(self, model, state) -> None:
        c, t = state.country, model.step_index
        goods = self._goods_of[c]
        if t < self.start or not goods.size:
            return
        n, w = self.cfg, model.world
        ref = w.reference_price
        if t == self.start:
            fill = float(n.initial_fill) * self.target[:, c]
            model.stockpile[:, c] += fill
            if n.cost_initial_fill:
                self.book(model, c, float((fill * ref).sum()))
        # Release, refill and the value held, good by good (sim.model.kernels.reserve_month), from last
        # month's gap and price paid against the first month's (no signal in the first month).
        gl = model.recorder.good_level
        last = max(t - 1, 0)
        acted, held_value = kernels.reserve_month(
            goods,
            model.stockpile[:, c],
            model.stockpile_release[:, c],
            model.stockpile_delivery[:, c],
            model.stockpile_order[:, c],
            model.policy_revenue,
            c,
            self.base_use[:, c],
            self.target[:, c],
            self.mask[:, c],
            ref,
            gl["shortage"][last, :, c],
            gl["rationed"][last, :, c],
            gl["price_paid"][0, :, c],
            gl["price_paid"][last, :, c],
            t > 0,
            self._rule,
            self._release_price_ratio,
            self._max_release_rate,
            self._refill_below,
            self._refill_price_ratio,
            self._refill_rate,
        )
        if acted:
            self.mark(model)
        self.book(model, c, self._holding_cost / 12.0 * held_value)

    @override
    def after_clear(self, model, t: int, result) -> None:
        bought, cost = model.stockpile_bought, model.stockpile_bought_value
        if not (np.count_nonzero(bought) or np.count_nonzero(cost)):  # not .any(): a call less a month
            return  # no refill delivered this month (most months): nothing to stock or book
        for c in self.countries.tolist():
            if not self._goods_of[c].size:
                continue
            # stockpile[goods, c] += bought[goods, c], and what they cost (sim.model.kernels.stock_bought)
            self.book(model, c, kernels.stock_bought(self._goods_of[c], c, model.stockpile, bought, cost))


class Diversification(Lever):
    """Diversification of firms' sourcing (Japan's aim of at most 50% of rare-earth imports from China
    by 2025, Nikkei Asian Review 2020; the EU Critical Raw Materials Act's 65% cap on one third
    country, 2024).

    A cap on any one foreign origin's share of a firm's sourcing weights falls linearly from 1 to
    ``max_share`` over ``months`` from ``start``; weight above it moves to the firm's other origins that
    have capacity now (in proportion to their capacity), as far as they exist. A subsidy multiplies the
    monthly sourcing adjustment rate by ``speed``. Cost: the state pays ``switching_cost`` x the
    reference price per unit of annual purchases the lever moves (supplier qualification, contracts).
    """

    name = "diversification"

    def __init__(self, model, node, index: int) -> None:
        super().__init__(model, node, index)
        self.row_idx = self.rows(model)
        w = model.world
        self.slots = w.slot_origin[self.row_idx]
        foreign = (self.slots >= 0) & (self.slots != model._row_destination[self.row_idx][:, None])
        self.foreign = foreign
        self.annual_value = (
            12.0
            * (w.row_requirement * w.firm_value_added[w.row_firm])[self.row_idx]
            * w.reference_price[w.row_good[self.row_idx]]
        )
        self._before: np.ndarray | None = None

    @override
    def inactive_reason(self, model) -> str | None:
        n, w = self.cfg, model.world
        if float(n.max_share) >= 1 and float(n.speed) == 1:
            return "max_share is 1 and speed is 1 (no cap, no subsidy); set max_share < 1 or speed > 1"
        if not self.foreign.any():
            return (
                f"firms of {_names(w.countries, self.countries)} buy the goods ({_names(w.goods, self.goods)}) "
                "from no foreign origin, so there is nothing to diversify; cover goods they import"
            )
        return None

    @override
    def idle_reason(self, model) -> str:
        return (
            f"no sourcing weight moved: no foreign origin's share exceeded the cap (max_share="
            f"{self.cfg.max_share}) and firms' sourcing never adapted for the subsidy to speed up; a lower "
            "max_share or a disruption that makes firms re-source would make it act"
        )

    def cap(self, t: int) -> float:
        """The cap on one foreign origin's share in month ``t``."""
        n = self.cfg
        if t < self.start:
            return 1.0
        months = int(n.months)
        done = 1.0 if months <= 0 else min(1.0, (t - self.start + 1) / months)
        return 1.0 - (1.0 - float(n.max_share)) * done

    @override
    def before_adapt(self, model, t: int) -> None:
        self._before = model.weights[self.row_idx].copy() if t >= self.start and self.row_idx.size else None

    @override
    def after_adapt(self, model, t: int, result) -> None:
        if self._before is None:
            return
        n = self.cfg
        adapted = model.weights[self.row_idx]
        w_new = adapted.copy()
        speed = float(n.speed)
        if speed != 1.0:
            w_new = np.maximum(self._before + speed * (adapted - self._before), 0.0)
            w_new /= np.maximum(w_new.sum(axis=1, keepdims=True), 1e-300)
        cap = self.cap(t)
        if cap < 1.0:
            w_new = self._apply_cap(model, w_new, cap)
        moved = 0.5 * np.abs(w_new - adapted).sum(axis=1)
        if moved.sum() > 1e-12:
            self.mark(model)
        model.weights[self.row_idx] = w_new
        cost = float(n.switching_cost) * moved * self.annual_value
        np.add.at(model.lever_cost[self.index], model._row_destination[self.row_idx], cost)

    def _apply_cap(self, model, weights: np.ndarray, cap: float) -> np.ndarray:
        w = model.world
        cap_now = model._capacity_by_origin()
        g = w.row_good[self.row_idx]
        slot_cap = np.where(self.slots >= 0, cap_now[g[:, None], np.maximum(self.slots, 0)], 0.0)
        out = weights.copy()
        capped = np.zeros_like(out, dtype=bool)
        for _ in range(out.shape[1]):
            over = self.foreign & (out > cap + 1e-12)
            if not over.any():
                break
            excess = np.where(over, out - cap, 0.0).sum(axis=1)
            out = np.where(over, cap, out)
            capped |= over
            room = (slot_cap > 0) & ~capped & (self.slots >= 0) & ~(self.foreign & (out >= cap - 1e-12))
            basis = np.where(room, slot_cap, 0.0)
            tot = basis.sum(axis=1)
            give = np.where(tot > 0, excess, 0.0)
            out = out + np.where(tot[:, None] > 0, basis / np.where(tot > 0, tot, 1.0)[:, None], 0.0) * give[:, None]
            # Rows with nowhere to move the excess keep it on the origins that had it.
            stuck = (tot <= 0) & (excess > 0)
            if stuck.any():
                out[stuck] = weights[stuck]
                capped[stuck] = True
        return out


class InventoryIncentive(Lever):
    """A tax credit for holding inventory: firms' target cover rises by ``extra_months`` of use from
    ``start`` to ``end``; the state pays ``credit_rate`` per year of the value (at the reference price) of
    the stock firms hold up to that extra cover. Firms build the stock through the market (their
    inventory adjustment), which raises demand while they do.
    """

    name = "inventory_incentive"

    def __init__(self, model, node, index: int) -> None:
        super().__init__(model, node, index)
        self.row_idx = self.rows(model)
        self.end = _step_of(node.end, model.world.calendar, model.n_steps) if node.end is not None else model.n_steps
        w = model.world
        self.base_need = (w.row_requirement * w.firm_value_added[w.row_firm])[self.row_idx]
        self.price = w.reference_price[w.row_good[self.row_idx]]

    @override
    def inactive_reason(self, model) -> str | None:
        w = model.world
        if float(self.cfg.extra_months) <= 0:
            return "extra_months is 0, so firms' target cover does not change; set extra_months > 0"
        if not np.any(self.base_need > 0):
            return (
                f"firms of {_names(w.countries, self.countries)} use none of the goods "
                f"({_names(w.goods, self.goods)}); cover goods they use"
            )
        return None

    @override
    def idle_reason(self, model) -> str:
        return "its window (start to end) holds no month of the run; move start or end into the run"

    @override
    def act(self, model, state) -> None:
        t = model.step_index
        if state.country != self.countries[0]:
            return  # rows of every country are handled once
        on = self.start <= t <= self.end
        extra = float(self.cfg.extra_months) if on else 0.0
        model.extra_cover[self.row_idx] = extra
        if not on or extra <= 0:
            return
        if np.any(self.base_need > 0):
            self.mark(model)
        held = np.minimum(model.inventory[self.row_idx], extra * self.base_need)
        cost = float(self.cfg.credit_rate) / 12.0 * held * self.price
        np.add.at(model.lever_cost[self.index], model._row_destination[self.row_idx], cost)


class _ProjectFinance(Lever):
    """Shared by levers that finance capacity projects: books the public money over the build lag.

    Subclasses fill ``finance`` with ``(producer index, financing country, US$)``.
    """

    finance: list[tuple[int, int, float]]

    @override
    def idle_reason(self, model) -> str:
        return (
            "no financed project delivered capacity within the run (its decision, build lag and ramp-up "
            "end after the scenario); an earlier start or a shorter build lag would make it act"
        )

    def after_adapt(self, model, t: int, result) -> None:
        # Projects start during adaptation (sim.model.model), so their spending is booked after it.
        capacity, starts = model.capacity, model.project_start
        for p, _, _ in self.finance:  # any financed project with capacity
            if capacity.item(p) > 0:
                self.mark(model)
                break
        for p, country, lag, monthly in self._spending(model):
            start = starts.item(p)
            if start <= t < start + lag:
                self.book(model, country, monthly)

    def _spending(self, model) -> list[tuple[int, int, int, float]]:
        """Each financed project with money: producer, financing country, build lag (at least a month)
        and the money per month of building; drawn up once per list of financed projects (a project's
        build lag is fixed with the world).
        """
        cached = self.__dict__.get("_spending_cache")
        if cached is None or cached[0] is not self.finance or cached[1] != len(self.finance):
            lags = model.world.build_lag
            rows = []
            for p, country, money in self.finance:
                if money <= 0:
                    continue
                lag = max(int(lags[p]), 1)
                rows.append((p, country, lag, money / lag))
            cached = (self.finance, len(self.finance), rows)
            self.__dict__["_spending_cache"] = cached
        return cached[2]


class Friendshoring(_ProjectFinance):
    """Reshoring and friend-shoring: public financing commits capacity projects at home or in partner
    countries (template: JOGMEC/Sojitz financing of Lynas, Nov 2010: first feed Q4 2012, nameplate by
    FY2016). The projects are added to (or committed in) the scenario before the world is built
    (:func:`expand_scenario`); they deliver after their build lag and ramp-up, and the financing country
    holds an offtake contract for ``offtake`` of their output. Cost: ``public_finance`` (or ``public_share``
    x capex) spread evenly over the build lag.
    """

    name = "friendshoring"

    def __init__(self, model, node, index: int) -> None:
        super().__init__(model, node, index)
        w = model.world
        self.finance = []
        for c in self.countries:
            code = w.countries[c]
            for spec in node.projects:
                if spec.project is not None:
                    names = [spec.project]
                else:
                    goods = [spec.good] if spec.good is not None else [w.goods[g] for g in self.goods]
                    names = [_project_name("friendshoring", code, g, spec.country or code) for g in goods]
                    names = [nm for nm in names if nm in w.producer_name]
                for nm in names:
                    p = w.producer_name.index(nm)
                    total = spec.public_finance if spec.public_finance is not None else spec.public_share * w.capex[p]
                    self.finance.append((p, int(c), float(total)))

    @override
    def inactive_reason(self, model) -> str | None:
        if self.finance:
            return None
        w = model.world
        return (
            f"there is no project to finance: capacity_share is 0 or {_names(w.countries, self.countries)} "
            f"has no baseline use of the goods ({_names(w.goods, self.goods)}), and no projects[i].project "
            "names a scenario project; set capacity_share > 0 or name a project"
        )


class Recycling(_ProjectFinance):
    """Recycling: public money builds domestic secondary supply of ``recovery_share`` of the country's
    baseline use of each good (end-of-life scrap bounds it), at ``unit_cost_ratio`` x the reference
    price, operating after ``build_lag_months`` and ramping up over ``ramp_up_months`` (Hitachi and
    Shin-Etsu magnet recycling, Honda/JMC recycling from vehicles, after 2010). Cost: ``public_share`` x
    capex (``capex_ratio`` x one year's output value) over the build lag.
    """

    name = "recycling"

    def __init__(self, model, node, index: int) -> None:
        super().__init__(model, node, index)
        w = model.world
        self.finance = []
        for c in self.countries:
            for g in self.goods:
                nm = _project_name("recycling", w.countries[c], w.goods[g], w.countries[c])
                if nm in w.producer_name:
                    p = w.producer_name.index(nm)
                    self.finance.append((p, int(c), float(node.public_share) * float(w.capex[p])))

    @override
    def inactive_reason(self, model) -> str | None:
        if self.finance:
            return None
        w = model.world
        return (
            f"no secondary supply to build: recovery_share (and recovery_share_by_good) is 0 for every covered "
            f"good that {_names(w.countries, self.countries)} uses ({_names(w.goods, self.goods)}); set "
            "recovery_share > 0"
        )


class Substitution(Lever):
    """Substitution R&D: each programme spends its ``budget`` evenly over ``spend_months`` from
    ``start``; the requirement per unit of output of the covered sectors falls with the spending, after
    ``lag_months``, reaching ``change`` when the budget is spent (Japan's switch from cerium to alumina
    in polishing, >15% of its rare-earth demand; Dy-lean magnets, 40% less Dy: TIME 2012).
    """

    name = "substitution"

    def __init__(self, model, node, index: int) -> None:
        self.index = index
        self.cfg = node
        w, s = model.world, model.cfg.scenario
        ci = {c: i for i, c in enumerate(w.countries)}
        gi = {g: i for i, g in enumerate(w.goods)}
        self.programmes = []
        countries_all: set[int] = set()
        for pr in node.programmes:
            countries = [ci[c] for c in (pr.countries or s.targets)]
            goods = [gi[g] for g in (pr.goods or w.goods)]
            rows = np.isin(model._row_destination, countries) & np.isin(w.row_good, goods)
            if pr.sectors:
                sec = [k for k, (c, name) in enumerate(w.sector_names) if name in list(pr.sectors)]
                rows &= np.isin(w.firm_sector[w.row_firm], sec)
            start = _step_of(pr.start, w.calendar, 0)
            self.programmes.append(
                (
                    np.flatnonzero(rows),
                    start,
                    int(pr.lag_months),
                    int(pr.spend_months),
                    float(pr.change),
                    float(pr.budget),
                    countries,
                )
            )
            countries_all.update(countries)
        self.countries = np.array(sorted(countries_all), dtype=np.int64)
        self._first_country = int(self.countries[0]) if self.countries.size else None  # whose act scales the rows
        self.goods = np.arange(len(w.goods))
        self.start = 0

    @override
    def inactive_reason(self, model) -> str | None:
        if any(idx.size and change < 0 for idx, _, _, _, change, _, _ in self.programmes):
            return None
        return (
            "no programme lowers a requirement: each has change 0 or covers no sector that uses its goods "
            "(its budget would be spent for nothing); set programmes[i].change < 0 on sectors that use the goods"
        )

    @override
    def idle_reason(self, model) -> str:
        return "no programme's effect began within the run (start + lag_months after its end); start earlier"

    @override
    def act(self, model, state) -> None:
        t = model.step_index
        first = state.country == self._first_country
        for idx, start, lag, spend, change, budget, countries in self.programmes:
            if first and idx.size:
                ramp = ramp_share(t, start + lag, spend)
                if ramp > 0:  # (before its effect begins a programme multiplies the requirement by 1)
                    # policy_requirement[idx] *= 1 + change x ramp (the rows are distinct)
                    kernels.scale_rows(model.policy_requirement, idx, 1.0 + change * ramp)
                    if change < 0:
                        self.mark(model)
            if state.country in countries and start <= t < start + spend and budget > 0:
                self.book(model, state.country, budget / spend / len(countries))


class CollectiveResponse(Lever):
    """A coalition's collective response to coercion.

    Modelled on the G7 Coordination Platform on Economic Coercion (Hiroshima, May 2023) and on the
    "collective resilience" argument (Cha 2023: a coalition deters by counter-threatening goods for which
    the coercer depends on it). While the coercer runs a discriminatory measure against a member:

    - **buy the target's exports** (``buy_target_exports``): when the coercer shuts out a member's exports
      of a good, the other members' firms move ``purchase_shift_rate`` of the gap to ``max_target_share``
      of their sourcing weight toward that member each month; cost: the price premium they pay on the
      extra purchases, against their average price paid;
    - **share stockpiles** (``share_stockpiles``): members release up to ``share_rate`` of their reserve
      per month to a coerced member whose firms were short last month (sold at its price). A member's
      reserve is its stockpile lever's, or, on goods where it runs none, a coalition stock of
      ``shared_stock_months`` of its own baseline use held from the start; cost of that stock:
      ``shared_stock_holding_cost`` per year of its value and, for what it gives, the value at the
      reference price of the stock it must rebuild (sales are ``policy_revenue``, not netted);
    - **counter-tariffs** (``counter_tariff`` > 0): every other member taxes imports from the coercer of
      the covered goods while the coercion lasts; cost: the tariff its own firms pay (a transfer to its
      treasury, but a burden on users);
    - **counter-restriction** (``counter_restriction`` > 0, the commitment strength): every other member
      withholds that share of its exports to the coercer of the leverage goods, the covered goods of
      which members supply at least ``dependence_threshold`` of the coercer's baseline imports; its cost
      is in the market (lost sales of the members' producers, in the usual outputs), not booked here.
    """

    name = "collective_response"
    #: Parts of the response, in the order they are reported.
    PARTS: ClassVar[tuple[str, ...]] = (
        "buy_target_exports",
        "share_stockpiles",
        "counter_tariff",
        "counter_restriction",
    )

    def __init__(self, model, node, index: int) -> None:
        self.index = index
        self.cfg = node
        w = model.world
        C = len(w.countries)
        members = [i for i, c in enumerate(model.cfg.scenario.countries) if node.coalition in list(c.coalitions)]
        self.countries = np.array([m for m in members if m != model.coercer_index], dtype=np.int64)
        gi = {g: i for i, g in enumerate(w.goods)}
        self.goods = np.array([gi[g] for g in node.goods] if node.goods else np.arange(len(w.goods)), dtype=np.int64)
        self.start = 0
        self._coerced_t = -1
        self._exp = self._imp = None
        self.base_use = _base_use(model)
        total, by = _coercer_import_shares(model)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.member_import_share = np.where(
                total > 0, by[:, self.countries].sum(axis=1) / np.where(total > 0, total, 1.0), 0.0
            )
        lev = np.zeros(len(w.goods), dtype=bool)
        lev[self.goods] = True
        self.leverage_goods = np.flatnonzero(
            lev & (total > 0) & (self.member_import_share >= float(node.dependence_threshold))
        )
        self.shared = np.zeros((len(w.goods), C), dtype=bool)  # cells holding a coalition stock
        self.tariffs = []
        cal = w.calendar
        if float(node.counter_tariff) > 0:
            for m in self.countries:
                self.tariffs.append(
                    CounterTariff(
                        imposer=int(m),
                        goods=self.goods.copy(),
                        targets=np.array([model.coercer_index], dtype=np.int64),
                        coverage=np.ones(cal.n_steps),
                        start=cal.first_day(0),
                        label=f"counter-tariff of {w.countries[m]} ({node.coalition})",
                        rate=float(node.counter_tariff),
                        lever=self,
                        model=model,
                    )
                )
            model.measures.extend(self.tariffs)
        self.restrictions = []
        if float(node.counter_restriction) > 0 and self.leverage_goods.size:
            for m in self.countries:
                self.restrictions.append(
                    CounterRestriction(
                        imposer=int(m),
                        goods=self.leverage_goods.copy(),
                        targets=np.array([model.coercer_index], dtype=np.int64),
                        coverage=np.ones(cal.n_steps),
                        start=cal.first_day(0),
                        label=f"counter-restriction of {w.countries[m]} ({node.coalition})",
                        intensity=float(node.counter_restriction),
                        lever=self,
                        model=model,
                    )
                )
            model.measures.extend(self.restrictions)
        self.base_edge_flow = None

    # ------------------------------------------------------------------ set-up
    @override
    def link(self, model, levers: list[Lever]) -> None:
        """Place the coalition stock: ``shared_stock_months`` of each donor member's baseline use of each
        covered good it runs no stockpile lever on.
        """
        n = self.cfg
        self.own_reserve = np.zeros_like(self.shared)
        for lv in levers:
            if isinstance(lv, Stockpile):
                self.own_reserve |= lv.mask
        if not n.share_stockpiles or float(n.shared_stock_months) <= 0:
            return
        # Held by the members the coercer does not name in the run (the donors): a coerced member's own
        # pre-measure stock is a stockpile lever of its own, not the coalition's.
        exp, imp = self._coercion_over_run(model)
        donors = np.setdiff1d(self.countries, np.flatnonzero((exp | imp).any(axis=0)))
        cells = np.zeros_like(self.shared)
        cells[np.ix_(self.goods, donors)] = True
        self.shared = cells & ~self.own_reserve & (self.base_use > 0)
        model.stockpile[self.shared] += float(n.shared_stock_months) * self.base_use[self.shared]

    def _coercion_over_run(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Cells ``[G, C]`` (covered goods, members) that some discriminatory measure of the coercer names
        at some time in the run: ``(export_side, import_side)``.
        """
        G, C = len(model.world.goods), len(model.world.countries)
        exp = np.zeros((G, C), dtype=bool)
        imp = np.zeros((G, C), dtype=bool)
        for m in model.measures:
            if m.imposer != model.coercer_index or getattr(m, "counter_measure", False):
                continue
            if m.targets.size >= C - 1 or not np.any(np.asarray(m.coverage) > 0):
                continue
            side = exp if m.classifier.get("side", "export") == "export" else imp
            side[np.ix_(m.goods, m.targets)] = True
        keep = np.zeros((G, C), dtype=bool)
        keep[np.ix_(self.goods, self.countries)] = True
        return exp & keep, imp & keep

    def _part_reasons(self, model) -> dict[str, str | None]:
        """Each part switched on, with why it cannot act (None: it can)."""
        n, w = self.cfg, model.world
        codes, goods = w.countries, w.goods
        coalition = n.coalition
        exp, imp = self._coercion_over_run(model)
        hit = exp | imp
        coerced_goods = np.flatnonzero(hit.any(axis=1))
        targets = np.flatnonzero(hit.any(axis=0))
        out: dict[str, str | None] = {}
        if n.buy_target_exports:
            reason = None
            if not imp.any():
                who = _names(codes, targets) if targets.size else "no member"
                reason = (
                    f"the coercer restricts no member's exports ({who} exports none of the coerced goods: "
                    f"{_names(goods, coerced_goods)})"
                )
            else:
                can = False
                for g, c in zip(*np.nonzero(imp), strict=True):
                    rows = (w.row_good == g) & np.isin(model._row_destination, self.countries)
                    rows &= model._row_destination != c
                    can |= bool(np.any(w.slot_origin[rows] == c))
                if not can:
                    reason = "no other member's firms can buy the shut-out member's goods (no sourcing slot)"
            out["buy_target_exports"] = reason
        if n.share_stockpiles:
            reason = None
            donors = self.own_reserve | self.shared
            can = False
            for g, c in zip(*np.nonzero(hit), strict=True):
                others = np.setdiff1d(self.countries, [c])
                can |= bool(donors[g, others].any())
            if not hit.any():
                reason = "no member is coerced, so no one needs stock"
            elif not can:
                reason = (
                    f"no member other than the coerced ({_names(codes, targets)}) runs a stockpile lever on the "
                    f"coerced goods ({_names(goods, coerced_goods)}) and shared_stock_months is "
                    f"{float(n.shared_stock_months):g}"
                )
            out["share_stockpiles"] = reason
        if float(n.counter_tariff) > 0:
            rows = np.isin(model._row_destination, self.countries) & np.isin(w.row_good, self.goods)
            buys = bool(np.any(w.slot_origin[rows] == model.coercer_index))
            out["counter_tariff"] = (
                None
                if buys
                else f"{coalition} members import none of the covered goods from {codes[model.coercer_index]}"
            )
        else:
            out["counter_tariff"] = "counter_tariff is 0"
        share = ", ".join(f"{goods[g]} {self.member_import_share[g]:.0%}" for g in self.goods)
        if float(n.counter_restriction) > 0:
            out["counter_restriction"] = (
                None
                if self.leverage_goods.size
                else (
                    f"{codes[model.coercer_index]} imports none of the covered goods mostly (>= "
                    f"{float(n.dependence_threshold):.0%}) from {coalition} (members' share of its baseline "
                    f"imports: {share})"
                )
            )
        else:
            out["counter_restriction"] = "counter_restriction is 0"
        return out

    _HINT: ClassVar[str] = (
        "set share_stockpiles with a member stockpile or shared_stock_months > 0, or counter_tariff > 0, or "
        "counter_restriction > 0 on goods the coercer imports mostly from the coalition"
    )

    @override
    def inactive_reason(self, model) -> str | None:
        n, w = self.cfg, model.world
        self.part_acted = {p: np.zeros(model.n_steps, dtype=bool) for p in self.PARTS}
        if self.countries.size == 0:
            return f"coalition {n.coalition} has no member besides the coercer; list members under countries.coalitions"
        exp, imp = self._coercion_over_run(model)
        if not (exp | imp).any():
            return (
                f"no measure of the coercer names a member of {n.coalition} ({_names(w.countries, self.countries)}) "
                f"on the covered goods, so the response is never triggered; it acts only against coercion of a member"
            )
        reasons = self._part_reasons(model)
        if any(r is None for r in reasons.values()):
            return None
        return "; ".join(reasons.values()) + f", so it cannot act; {self._HINT}"

    @override
    def inactive_parts(self, model) -> dict[str, str]:
        hints = {
            "buy_target_exports": "it acts when the coercer shuts out a member's exports",
            "share_stockpiles": "give a member a stockpile lever on the goods or set shared_stock_months > 0",
            "counter_tariff": "cover goods the members import from the coercer",
            "counter_restriction": (
                "add a good the coercer imports mostly from the coalition, or lower dependence_threshold"
            ),
        }
        n = self.cfg
        on = {
            "buy_target_exports": bool(n.buy_target_exports),
            "share_stockpiles": bool(n.share_stockpiles),
            "counter_tariff": float(n.counter_tariff) > 0,
            "counter_restriction": float(n.counter_restriction) > 0,
        }
        return {
            p: f"{r}, so this part cannot act; {hints[p]}"
            for p, r in self._part_reasons(model).items()
            if on[p] and r is not None
        }

    @override
    def idle_reason(self, model) -> str:
        return (
            "no part acted while a member was coerced (the coerced member's firms were never short when a donor "
            "held stock, members already put max_target_share or more of their sourcing on a shut-out member, "
            "and no counter-measure met a flow); " + self._HINT
        )

    # ------------------------------------------------------------------ monthly
    def coerced(self, model, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Members coerced in month ``t``: ``(export_side, import_side)`` ``[G, C]`` masks."""
        if self._coerced_t != t:
            exp, imp = coercion_in_force(model, t)
            keep = np.zeros(exp.shape[1], dtype=bool)
            keep[self.countries] = True
            gsel = np.zeros(exp.shape[0], dtype=bool)
            gsel[self.goods] = True
            self._exp, self._imp = exp & keep[None, :] & gsel[:, None], imp & keep[None, :] & gsel[:, None]
            self._coerced_t = t
        return self._exp, self._imp

    def any_member_coerced(self, model, t: int) -> bool:
        """Whether the coercer runs a discriminatory measure against any member in month ``t``."""
        exp, imp = self.coerced(model, t)
        return bool(exp.any() or imp.any())

    @override
    def act(self, model, state) -> None:
        n, t = self.cfg, model.step_index
        if not n.share_stockpiles:
            return
        donor = state.country
        ref = model.world.reference_price
        held = model.stockpile[:, donor] * self.shared[:, donor]
        self.book(model, donor, float(n.shared_stock_holding_cost) / 12.0 * float((held * ref).sum()))
        if t <= 0:
            return
        exp, imp = self.coerced(model, t)
        hit = exp | imp
        if not hit.any():
            return
        gl = model.recorder.good_level
        for g, c in zip(*np.nonzero(hit), strict=True):
            if c == donor:
                continue
            gap = float(np.nan_to_num(gl["shortage"][t - 1, g, c]) + np.nan_to_num(gl["rationed"][t - 1, g, c]))
            gap -= model.stockpile_delivery[g, c]
            q = min(float(n.share_rate) * model.stockpile[g, donor], gap)
            if q > 0:
                self.mark(model, "share_stockpiles")
                model.stockpile[g, donor] -= q
                model.stockpile_release[g, donor] += q
                model.stockpile_delivery[g, c] += q
                price = float(np.nan_to_num(gl["price_paid"][t - 1, g, c], nan=ref[g]))
                model.policy_revenue[donor] += q * price
                if self.shared[g, donor]:
                    # The coalition stock is not refilled by a lever: what it gives must be rebuilt.
                    self.book(model, donor, q * float(ref[g]))

    @override
    def after_clear(self, model, t: int, result) -> None:
        if self.base_edge_flow is None:
            self.base_edge_flow = result.edge_flow.copy()
        n = self.cfg
        exp, imp = self.coerced(model, t)
        dest_member = np.isin(result.edge_destination, self.countries)
        if n.buy_target_exports and imp.any():
            # Premium on purchases from a shut-out member above the buyers' first-month flows.
            hit = (
                imp[result.edge_good, result.edge_origin]
                & dest_member
                & (result.edge_origin != result.edge_destination)
            )
            if hit.any():
                C = len(model.world.countries)
                gc = model.world.row_good * C + model._row_destination
                G = len(model.world.goods)
                spend = np.bincount(gc, weights=result.expenditure, minlength=G * C).reshape(G, C)
                qty = np.bincount(gc, weights=result.delivered, minlength=G * C).reshape(G, C)
                with np.errstate(invalid="ignore", divide="ignore"):
                    avg_price = np.where(qty > 0, spend / np.where(qty > 0, qty, 1.0), np.nan)
                e = np.flatnonzero(hit)
                extra = np.maximum(result.edge_flow[e] - self.base_edge_flow[e], 0.0)
                prem = np.maximum(
                    result.edge_price[e] - avg_price[result.edge_good[e], result.edge_destination[e]], 0.0
                )
                cost = np.nan_to_num(extra * prem)
                np.add.at(model.lever_cost[self.index], result.edge_destination[e], cost)
        coerced = bool(exp.any() or imp.any())
        if self.tariffs and coerced:
            rate = float(n.counter_tariff)
            from_coercer = (
                (result.edge_origin == model.coercer_index) & dest_member & np.isin(result.edge_good, self.goods)
            )
            e = np.flatnonzero(from_coercer)
            paid = np.nan_to_num(result.edge_flow[e] * result.edge_price[e] * rate / (1.0 + rate))
            if paid.sum() > 0:
                self.mark(model, "counter_tariff")
            np.add.at(model.lever_cost[self.index], result.edge_destination[e], paid)
        if self.restrictions and coerced:
            self.mark(model, "counter_restriction")

    @override
    def after_adapt(self, model, t: int, result) -> None:
        n = self.cfg
        if not n.buy_target_exports:
            return
        _, imp = self.coerced(model, t)
        if not imp.any():
            return
        for g, target in zip(*np.nonzero(imp), strict=True):
            rate, goal = float(n.purchase_shift_rate), float(n.max_target_share)
            if shift_sourcing_toward(model, int(g), self.countries, int(target), rate, goal):
                self.mark(model, "buy_target_exports")


def shift_sourcing_toward(model, good: int, buyers: np.ndarray, origin: int, rate: float, max_share: float) -> bool:
    """Move buyers' sourcing of ``good`` toward ``origin`` (a coalition absorbing a coerced member's
    shut-out exports).

    Every purchase row of ``good`` in a ``buyers`` country (``origin`` itself excluded) that can buy
    from ``origin`` raises its weight on it by ``rate`` of the gap to ``max_share``; its other
    origins are scaled down in proportion, so its weights still sum to one.

    Returns:
        Whether any weight rose.
    """
    w = model.world
    dest = model._row_destination
    rows = np.flatnonzero((w.row_good == good) & np.isin(dest, buyers) & (dest != origin))
    if rows.size == 0:
        return False
    slot = w.slot_origin[rows] == origin
    has = slot.any(axis=1)
    rows, slot = rows[has], slot[has]
    if rows.size == 0:
        return False
    wts = model.weights[rows]
    cur = np.where(slot, wts, 0.0).sum(axis=1)
    new = cur + rate * np.maximum(max_share - cur, 0.0)
    others = 1.0 - cur
    scale = np.where(others > 0, (1.0 - new) / np.where(others > 0, others, 1.0), 1.0)
    model.weights[rows] = np.where(slot, new[:, None], wts * scale[:, None])
    return bool(np.any(new > cur + 1e-12))


_CLASSES: dict[str, type[Lever]] = {
    "stockpile": Stockpile,
    "diversification": Diversification,
    "inventory_incentive": InventoryIncentive,
    "friendshoring": Friendshoring,
    "collective_response": CollectiveResponse,
    "substitution": Substitution,
    "recycling": Recycling,
}


def _warn(message: str) -> None:
    warnings.warn(message, InactiveLeverWarning, stacklevel=3)


def build_levers(model) -> list[Lever]:
    """The levers of ``model.cfg.policy``, in :data:`LEVER_NAMES` order; each state agent gets the
    levers it runs. A lever that cannot act in the scenario warns (:class:`InactiveLeverWarning`).
    """
    nodes = _lever_nodes(model.cfg)
    levers = [_CLASSES[name](model, nodes[name], LEVER_NAMES.index(name)) for name in LEVER_NAMES if name in nodes]
    for lever in levers:
        lever.acted = np.zeros(model.n_steps, dtype=bool)
        if not hasattr(lever, "part_acted"):
            lever.part_acted = {}
        lever.link(model, levers)
    for lever in levers:
        reason = lever.inactive_reason(model)
        lever.can_act = reason is None
        if reason is not None:
            _warn(f"{lever.name}: {reason}")
        else:
            for part, why in lever.inactive_parts(model).items():
                _warn(f"{lever.name}.{part}: {why}")
        for c in lever.acting_countries:
            model.state_agents[int(c)].levers.append(lever)
    return levers


def check_levers_after_run(model) -> None:
    """Warn (:class:`InactiveLeverWarning`) for each lever that could act in the scenario but never did
    in the run, with the reason.
    """
    for lever in model.levers:
        if lever.can_act and not lever.acted.any():
            _warn(f"{lever.name}: did not act in this run: {lever.idle_reason(model)}")
