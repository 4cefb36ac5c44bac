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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, override

import numpy as np

from sim.coercion.measures import ImportTariff
from sim.world.calendar import MonthlyCalendar, parse_date, parse_month

__all__ = [
    "LEVER_NAMES",
    "Lever",
    "Stockpile",
    "Diversification",
    "InventoryIncentive",
    "Friendshoring",
    "CollectiveResponse",
    "CounterTariff",
    "Substitution",
    "Recycling",
    "validate_policy",
    "expand_scenario",
    "build_levers",
    "coercion_in_force",
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


def _policy_error(path: str, value, allowed: str):
    from sim.world.scenario import ScenarioError

    return ScenarioError(f"{path}: {value!r} is invalid; allowed: {allowed}")


def _check(cond: bool, path: str, value, allowed: str) -> None:
    if not cond:
        raise _policy_error(path, value, allowed)


def _known(values, known: list[str], path: str, what: str) -> None:
    from sim.world.scenario import ScenarioError

    for i, v in enumerate(values):
        if v not in known:
            raise ScenarioError(f"{path}[{i}]: unknown {what} {v!r}; the scenario defines: {', '.join(known)}")


def _calendar(scenario) -> MonthlyCalendar:
    return MonthlyCalendar(
        parse_month(scenario.start, field="scenario.start"), parse_month(scenario.end, field="scenario.end")
    )


def _step_of(value: str | None, cal: MonthlyCalendar, default: int = 0) -> int:
    if value is None:
        return default
    return cal.step_of(parse_date(value, field="date"))


def _check_date(value, path: str, cal: MonthlyCalendar) -> None:
    if value is None:
        return
    try:
        d = parse_date(str(value), field=path)
    except ValueError as exc:
        raise _policy_error(path, value, "a date YYYY-MM or YYYY-MM-DD") from exc
    first, last = cal.first_day(0), cal.last_day(cal.n_steps - 1)
    _check(first <= d <= last, path, value, f"a date within the scenario ({first} to {last})")


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


# --------------------------------------------------------------------------- validation
def validate_policy(cfg) -> None:
    """Check every lever's settings against the scenario; raise :class:`sim.world.scenario.ScenarioError`
    naming the field (``policy.<lever>.<field>``), the value and what is allowed.
    """
    s = cfg.scenario
    cal = _calendar(s)
    codes = [c.code for c in s.countries]
    goods = [g.id for g in s.goods]
    coalitions = sorted({k for c in s.countries for k in c.coalitions})
    sectors = sorted({u.sector for u in s.user_sectors})
    projects = [pj.name for pj in s.projects]
    nodes = _lever_nodes(cfg)
    for name, node in nodes.items():
        p = f"policy.{name}"
        if "countries" in node:
            _known(list(node.countries), codes, f"{p}.countries", "country")
        if "goods" in node:
            _known(list(node.goods), goods, f"{p}.goods", "good")
        for key in ("start", "end"):
            if key in node:
                _check_date(node.get(key), f"{p}.{key}", cal)
        if name != "collective_response" and "countries" in node and not node.countries and not s.targets:
            raise _policy_error(
                f"{p}.countries", [], "a list of countries (the scenario names no targets to default to)"
            )

    if "stockpile" in nodes:
        n, p = nodes["stockpile"], "policy.stockpile"
        _check(n.months >= 0, f"{p}.months", n.months, ">= 0 (months of baseline use)")
        _check(0 <= n.initial_fill <= 1, f"{p}.initial_fill", n.initial_fill, "a share of the target in [0, 1]")
        _check(
            n.release_on in ("shortage", "price", "either"),
            f"{p}.release_on",
            n.release_on,
            "shortage, price or either",
        )
        _check(
            0 < n.max_release_rate <= 1,
            f"{p}.max_release_rate",
            n.max_release_rate,
            "a share of the target per month in (0, 1]",
        )
        _check(0 <= n.refill_below <= 1, f"{p}.refill_below", n.refill_below, "a share of the target in [0, 1]")
        _check(0 <= n.refill_rate <= 1, f"{p}.refill_rate", n.refill_rate, "a share of the target per month in [0, 1]")
        _check(n.refill_price_ratio > 0, f"{p}.refill_price_ratio", n.refill_price_ratio, "> 0")
        _check(
            n.release_price_ratio > n.refill_price_ratio,
            f"{p}.release_price_ratio",
            n.release_price_ratio,
            f"above refill_price_ratio ({n.refill_price_ratio}): a reserve that releases below its refill trigger "
            "would buy and sell at the same prices",
        )
        _check(n.holding_cost >= 0, f"{p}.holding_cost", n.holding_cost, ">= 0 (share of value per year)")
    if "diversification" in nodes:
        n, p = nodes["diversification"], "policy.diversification"
        _check(0 < n.max_share <= 1, f"{p}.max_share", n.max_share, "a share in (0, 1]")
        _check(n.months >= 0, f"{p}.months", n.months, ">= 0")
        rate = float(cfg.model.sourcing_adjustment_rate)
        _check(
            1 <= n.speed and n.speed * rate <= 1,
            f"{p}.speed",
            n.speed,
            f"a multiplier >= 1 with speed x model.sourcing_adjustment_rate ({rate}) <= 1",
        )
        _check(n.switching_cost >= 0, f"{p}.switching_cost", n.switching_cost, ">= 0")
    if "inventory_incentive" in nodes:
        n, p = nodes["inventory_incentive"], "policy.inventory_incentive"
        _check(n.extra_months >= 0, f"{p}.extra_months", n.extra_months, ">= 0 (months of use)")
        _check(n.credit_rate >= 0, f"{p}.credit_rate", n.credit_rate, ">= 0 (share of value per year)")
        if n.start is not None and n.end is not None:
            _check(
                parse_date(n.end, field="end") >= parse_date(n.start, field="start"),
                f"{p}.end",
                n.end,
                f"a date not before start ({n.start})",
            )
    if "friendshoring" in nodes:
        n, p = nodes["friendshoring"], "policy.friendshoring"
        _check(len(n.projects) > 0, f"{p}.projects", [], "at least one project")
        for i, pj in enumerate(n.projects):
            q = f"{p}.projects[{i}]"
            if pj.project is not None:
                if pj.project not in projects:
                    from sim.world.scenario import ScenarioError

                    raise ScenarioError(
                        f"{q}.project: unknown project {pj.project!r}; the scenario defines: {', '.join(projects) or '(none)'}"
                    )
            if pj.country is not None:
                _known([pj.country], codes, f"{q}.country", "country")
            if pj.good is not None:
                _known([pj.good], goods, f"{q}.good", "good")
            _check(
                pj.capacity_share >= 0,
                f"{q}.capacity_share",
                pj.capacity_share,
                ">= 0 (share of baseline use; 0: no new project)",
            )
            _check(
                pj.unit_cost_ratio > 0,
                f"{q}.unit_cost_ratio",
                pj.unit_cost_ratio,
                "> 0 (multiple of the reference price)",
            )
            _check(pj.build_lag_months >= 0, f"{q}.build_lag_months", pj.build_lag_months, ">= 0")
            _check(pj.ramp_up_months >= 0, f"{q}.ramp_up_months", pj.ramp_up_months, ">= 0")
            _check(pj.capex_ratio >= 0, f"{q}.capex_ratio", pj.capex_ratio, ">= 0")
            if pj.public_finance is not None:
                _check(pj.public_finance >= 0, f"{q}.public_finance", pj.public_finance, ">= 0 (US$)")
            _check(0 <= pj.public_share <= 1, f"{q}.public_share", pj.public_share, "a share in [0, 1]")
            _check(0 <= pj.offtake <= 1, f"{q}.offtake", pj.offtake, "a share in [0, 1]")
    if "collective_response" in nodes:
        n, p = nodes["collective_response"], "policy.collective_response"
        if n.coalition not in coalitions:
            from sim.world.scenario import ScenarioError

            raise ScenarioError(
                f"{p}.coalition: unknown coalition {n.coalition!r}; the scenario's countries belong to: {', '.join(coalitions) or '(none)'}"
            )
        _check(
            0 <= n.purchase_shift_rate <= 1,
            f"{p}.purchase_shift_rate",
            n.purchase_shift_rate,
            "a share per month in [0, 1]",
        )
        _check(0 <= n.max_target_share <= 1, f"{p}.max_target_share", n.max_target_share, "a share in [0, 1]")
        _check(0 <= n.share_rate <= 1, f"{p}.share_rate", n.share_rate, "a share per month in [0, 1]")
        _check(n.counter_tariff >= 0, f"{p}.counter_tariff", n.counter_tariff, ">= 0 (ad valorem)")
    if "substitution" in nodes:
        n, p = nodes["substitution"], "policy.substitution"
        for i, pr in enumerate(n.programmes):
            q = f"{p}.programmes[{i}]"
            _known(list(pr.countries), codes, f"{q}.countries", "country")
            _known(list(pr.goods), goods, f"{q}.goods", "good")
            _known(list(pr.sectors), sectors, f"{q}.sectors", "sector")
            _check_date(pr.start, f"{q}.start", cal)
            _check(
                -1 < pr.change <= 0,
                f"{q}.change",
                pr.change,
                "a relative change in (-1, 0] (less of the good per unit of output)",
            )
            _check(pr.lag_months >= 0, f"{q}.lag_months", pr.lag_months, ">= 0")
            _check(pr.spend_months >= 1, f"{q}.spend_months", pr.spend_months, ">= 1")
            _check(pr.budget >= 0, f"{q}.budget", pr.budget, ">= 0 (US$)")
            if not pr.countries and not s.targets:
                raise _policy_error(
                    f"{q}.countries", [], "a list of countries (the scenario names no targets to default to)"
                )
    if "recycling" in nodes:
        n, p = nodes["recycling"], "policy.recycling"
        _check(0 <= n.recovery_share < 1, f"{p}.recovery_share", n.recovery_share, "a share of baseline use in [0, 1)")
        for g, v in n.recovery_share_by_good.items():
            _known([g], goods, f"{p}.recovery_share_by_good", "good")
            _check(0 <= v < 1, f"{p}.recovery_share_by_good.{g}", v, "a share of baseline use in [0, 1)")
        _check(
            n.unit_cost_ratio > 0, f"{p}.unit_cost_ratio", n.unit_cost_ratio, "> 0 (multiple of the reference price)"
        )
        _check(n.build_lag_months >= 0, f"{p}.build_lag_months", n.build_lag_months, ">= 0")
        _check(n.ramp_up_months >= 0, f"{p}.ramp_up_months", n.ramp_up_months, ">= 0")
        _check(n.capex_ratio >= 0, f"{p}.capex_ratio", n.capex_ratio, ">= 0")
        _check(0 <= n.public_share <= 1, f"{p}.public_share", n.public_share, "a share in [0, 1]")


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
@dataclass
class CounterTariff(ImportTariff):
    """A coalition member's counter-tariff on imports from the coercer, in force while the coercer runs a
    discriminatory measure against any member (see :class:`CollectiveResponse`).
    """

    lever: object = None
    model: object = None
    counter_measure: ClassVar[bool] = True
    classifier: ClassVar[dict] = {
        "instrument": "counter_tariff",
        "side": "import",
        "example": "G7 coordination platform, 2023",
    }

    def in_force(self, step: int) -> float:
        """1 while any coalition member is coerced, else 0."""
        return 1.0 if self.lever.any_member_coerced(self.model, step) else 0.0


class Lever:
    """Base class: a lever acting for some countries on some goods.

    Attributes:
        name: Config key of the lever (``policy.<name>``).
        index: Row of the lever in ``model.lever_cost``.
        countries: Indices of the countries that run it.
        goods: Indices of the goods it covers.
    """

    name: ClassVar[str] = ""

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

    def _signals(self, model, t: int, c: int):
        rec = model.recorder
        if t <= 0:
            return np.zeros(len(model.world.goods)), np.ones(len(model.world.goods))
        gl = rec.good_level
        gap = np.nan_to_num(gl["shortage"][t - 1, :, c]) + np.nan_to_num(gl["rationed"][t - 1, :, c])
        p0, p1 = gl["price_paid"][0, :, c], gl["price_paid"][t - 1, :, c]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isfinite(p0) & np.isfinite(p1) & (p0 > 0), p1 / np.where(p0 > 0, p0, 1.0), 1.0)
        return gap, ratio

    @override
    def act(self, model, state) -> None:
        c, t = state.country, model.step_index
        if t < self.start or not self.mask[:, c].any():
            return
        n, w = self.cfg, model.world
        ref = w.reference_price
        if t == self.start:
            fill = float(n.initial_fill) * self.target[:, c]
            model.stockpile[:, c] += fill
            if n.cost_initial_fill:
                self.book(model, c, float(np.sum(fill * ref)))
        gap, ratio = self._signals(model, t, c)
        short = gap > 1e-9 * np.maximum(self.base_use[:, c], 1e-300)
        pricey = ratio >= float(n.release_price_ratio)
        rule = str(n.release_on)
        trigger = short if rule == "shortage" else pricey if rule == "price" else (short | pricey)
        for g in np.flatnonzero(self.mask[:, c]):
            stock = model.stockpile[g, c]
            if trigger[g] and stock > 0:
                need = gap[g] if (rule == "shortage" or (rule == "either" and short[g])) else self.base_use[g, c]
                q = min(stock, float(n.max_release_rate) * self.target[g, c], need)
                if q > 0:
                    model.stockpile[g, c] -= q
                    model.stockpile_release[g, c] += q
                    model.stockpile_delivery[g, c] += q
                    last = model.recorder.good_level["price_paid"][t - 1, g, c] if t > 0 else ref[g]
                    model.policy_revenue[c] += q * float(np.nan_to_num(last, nan=ref[g]))
            elif stock < float(n.refill_below) * self.target[g, c] and ratio[g] <= float(n.refill_price_ratio):
                order = min(float(n.refill_rate) * self.target[g, c], self.target[g, c] - stock)
                if order > 0:
                    model.stockpile_order[g, c] += order
        held = model.stockpile[:, c] * self.mask[:, c]
        self.book(model, c, float(n.holding_cost) / 12.0 * float(np.sum(held * ref)))

    @override
    def after_clear(self, model, t: int, result) -> None:
        bought, cost = model.stockpile_bought, model.stockpile_bought_value
        for c in self.countries:
            sel = self.mask[:, c]
            if not sel.any():
                continue
            model.stockpile[sel, c] += bought[sel, c]
            self.book(model, int(c), float(np.sum(cost[sel, c])))


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
    def act(self, model, state) -> None:
        t = model.step_index
        if state.country != self.countries[0]:
            return  # rows of every country are handled once
        on = self.start <= t <= self.end
        extra = float(self.cfg.extra_months) if on else 0.0
        model.extra_cover[self.row_idx] = extra
        if not on or extra <= 0:
            return
        held = np.minimum(model.inventory[self.row_idx], extra * self.base_need)
        cost = float(self.cfg.credit_rate) / 12.0 * held * self.price
        np.add.at(model.lever_cost[self.index], model._row_destination[self.row_idx], cost)


class _ProjectFinance(Lever):
    """Shared by levers that finance capacity projects: books the public money over the build lag.

    Subclasses fill ``finance`` with ``(producer index, financing country, US$)``.
    """

    finance: list[tuple[int, int, float]]

    def after_adapt(self, model, t: int, result) -> None:
        # Projects start during adaptation (sim.model.model), so their spending is booked after it.
        w = model.world
        for p, country, money in self.finance:
            if money <= 0:
                continue
            start = int(model.project_start[p])
            lag = max(int(w.build_lag[p]), 1)
            if start <= t < start + lag:
                self.book(model, country, money / lag)


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
        self.goods = np.arange(len(w.goods))
        self.start = 0

    @override
    def act(self, model, state) -> None:
        from sim.world.scenario import ramp_share

        t = model.step_index
        first = state.country == self.countries[0]
        for idx, start, lag, spend, change, budget, countries in self.programmes:
            if first and idx.size:
                model.policy_requirement[idx] *= 1.0 + change * ramp_share(t, start + lag, spend)
            if state.country in countries and start <= t < start + spend and budget > 0:
                self.book(model, state.country, budget / spend / len(countries))


class CollectiveResponse(Lever):
    """A coalition's collective response to coercion.

    Modelled on the G7 Coordination Platform on Economic Coercion (Hiroshima, May 2023). While the
    coercer runs a discriminatory measure against a member:

    - **buy the target's exports** (``buy_target_exports``): when the coercer shuts out a member's exports
      of a good, the other members' firms move ``purchase_shift_rate`` of the gap to ``max_target_share``
      of their sourcing weight toward that member each month; cost: the price premium they pay on the
      extra purchases, against their average price paid;
    - **share stockpiles** (``share_stockpiles``): members running a stockpile lever release up to
      ``share_rate`` of their reserve per month to a coerced member whose firms were short last month
      (sold at its price; no cost beyond the donor's own refilling later);
    - **counter-tariffs** (``counter_tariff`` > 0): every other member taxes imports from the coercer of
      the covered goods while the coercion lasts; cost: the tariff its own firms pay (a transfer to its
      treasury, but a burden on users).
    """

    name = "collective_response"

    def __init__(self, model, node, index: int) -> None:
        self.index = index
        self.cfg = node
        w = model.world
        members = [i for i, c in enumerate(model.cfg.scenario.countries) if node.coalition in list(c.coalitions)]
        self.countries = np.array([m for m in members if m != model.coercer_index], dtype=np.int64)
        gi = {g: i for i, g in enumerate(w.goods)}
        self.goods = np.array([gi[g] for g in node.goods] if node.goods else np.arange(len(w.goods)), dtype=np.int64)
        self.start = 0
        self._coerced_t = -1
        self._exp = self._imp = None
        self.tariffs = []
        if float(node.counter_tariff) > 0:
            cal = w.calendar
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
        self.base_edge_flow = None

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
        if not n.share_stockpiles or t <= 0:
            return
        donor = state.country
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
                model.stockpile[g, donor] -= q
                model.stockpile_release[g, donor] += q
                model.stockpile_delivery[g, c] += q
                price = float(np.nan_to_num(gl["price_paid"][t - 1, g, c], nan=model.world.reference_price[g]))
                model.policy_revenue[donor] += q * price

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
        if self.tariffs and (exp.any() or imp.any()):
            rate = float(n.counter_tariff)
            from_coercer = (
                (result.edge_origin == model.coercer_index) & dest_member & np.isin(result.edge_good, self.goods)
            )
            e = np.flatnonzero(from_coercer)
            paid = np.nan_to_num(result.edge_flow[e] * result.edge_price[e] * rate / (1.0 + rate))
            np.add.at(model.lever_cost[self.index], result.edge_destination[e], paid)

    @override
    def after_adapt(self, model, t: int, result) -> None:
        n = self.cfg
        if not n.buy_target_exports:
            return
        _, imp = self.coerced(model, t)
        if not imp.any():
            return
        w = model.world
        for g, target in zip(*np.nonzero(imp), strict=True):
            rows = np.flatnonzero(
                (w.row_good == g) & np.isin(model._row_destination, self.countries) & (model._row_destination != target)
            )
            if rows.size == 0:
                continue
            slot = w.slot_origin[rows] == target
            has = slot.any(axis=1)
            rows, slot = rows[has], slot[has]
            if rows.size == 0:
                continue
            wts = model.weights[rows]
            cur = np.where(slot, wts, 0.0).sum(axis=1)
            goal = float(n.max_target_share)
            new = cur + float(n.purchase_shift_rate) * np.maximum(goal - cur, 0.0)
            others = 1.0 - cur
            scale = np.where(others > 0, (1.0 - new) / np.where(others > 0, others, 1.0), 1.0)
            model.weights[rows] = np.where(slot, new[:, None], wts * scale[:, None])


_CLASSES: dict[str, type[Lever]] = {
    "stockpile": Stockpile,
    "diversification": Diversification,
    "inventory_incentive": InventoryIncentive,
    "friendshoring": Friendshoring,
    "collective_response": CollectiveResponse,
    "substitution": Substitution,
    "recycling": Recycling,
}


def build_levers(model) -> list[Lever]:
    """The levers of ``model.cfg.policy``, in :data:`LEVER_NAMES` order; each state agent gets the
    levers it runs.
    """
    nodes = _lever_nodes(model.cfg)
    levers = [_CLASSES[name](model, nodes[name], LEVER_NAMES.index(name)) for name in LEVER_NAMES if name in nodes]
    for lever in levers:
        for c in lever.acting_countries:
            model.state_agents[int(c)].levers.append(lever)
    return levers
