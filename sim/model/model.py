"""The coercion model: states, firms and a coercer on Mesa, advancing one month per step.

One step, in the design's order (``docs/sources/model_design.md``; details and equations in ``docs/ODD.md``):

1. **Measures**: the coercer's strategy decides which of its measures stay in force; every measure in
   force writes this month's bans, quotas, duties and tariffs.
2. **Policy actions**: every state runs its policy levers (:mod:`sim.policy.levers`: stockpile releases and
   refill orders, shared stock, inventory credits, substitution R&D) and books their costs; then the
   domestic instruments (:class:`sim.coercion.measures.DomesticMeasure`: production quotas, crackdowns, halts,
   production taxes, state purchases) set the supply curves and state orders the market sees; after
   clearing they book what they bought and what they cost.
3. **Plans**: user firms plan output (baseline) and purchases: requirement for planned output plus a
   share of the gap to their inventory target; the target cover rises with the scarcity they have
   seen (precautionary buying).
4. **Market clearing**: the numba kernel (:mod:`sim.market`) clears every good's world market.
5. **Production**: firms use deliveries and inventory; output is limited by the scarcest input
   (Leontief); the shortfall against planned output is the output loss (value added).
6. **Adaptation**: perceived risk of each origin, sourcing weights moving toward available, safe
   origins at a finite rate, substitution that lowers requirements when prices stay high, capacity
   projects that start when expected prices justify them (or when financed) and deliver after their
   build lag.
7. **Records**: every tracked variable for the month.
"""

from __future__ import annotations

import itertools
import math
import time as _time

import mesa
import numpy as np

from sim.coercion.measures import (
    DomesticMeasure,
    ExportLicence,
    ExportQuota,
    MeasureArrays,
    ProductionQuota,
    ProductionTax,
    RuleBasedStrategy,
    ScheduleStrategy,
    StatePurchase,
    SupplyTerms,
)
from sim.market import MarketInputs, PreparedMarket
from sim.model import kernels
from sim.model.agents import ProducerFirm, StateAgent, UserFirm
from sim.model.chains import ValueChains
from sim.policy.levers import LEVER_NAMES, build_levers, check_levers_after_run, expand_scenario
from sim.reporting.recording import Recorder
from sim.world.calendar import ramp_share
from sim.world.scenario import World, build_world, prepare_config

__all__ = ["CoercionModel"]

_NEVER = np.iinfo(np.int64).max


class CoercionModel(mesa.Model):
    """An economic-coercion world built from a composed configuration.

    Args:
        cfg: A composed :class:`sim.world.config.Config` (or DictConfig with its fields).
        rng: Seed or generator for the model's random numbers (Mesa 3.5 ``rng``); defaults to
            ``cfg.seed``.

    Attributes:
        world: The scenario's arrays (:class:`sim.world.scenario.World`).
        states, producers, firms: The Mesa agent sets of each kind.
        step_index: Index of the month being (or last) simulated, from 0.
    """

    def __init__(self, cfg, rng=None) -> None:
        cfg = prepare_config(cfg)  # a generated world is expanded here; the model keeps the result
        super().__init__(rng=cfg.seed if rng is None else rng)
        self.cfg = cfg
        self.params = cfg.model
        # Monthly smoothing of expectations and scarcity, and monthly decay of perceived risk, from the
        # memories in months (exponential memory; computed once, read every month).
        prm = cfg.model
        self._expectation_smoothing = 1.0 - math.exp(-1.0 / prm.expectation_memory_months)
        self._scarcity_smoothing = 1.0 - math.exp(-1.0 / prm.scarcity_memory_months)
        self._risk_decay = math.exp(-1.0 / prm.risk_memory_months)
        # Levers that finance capacity add or commit projects in the world (not in self.cfg, which is
        # what a run writes as its resolved config and must compose the same run again).
        w: World = build_world(expand_scenario(cfg), self.rng)
        self.world = w
        G, C = len(w.goods), len(w.countries)
        P, F, R = len(w.producer_name), len(w.firm_country), len(w.row_firm)
        self.n_steps = w.calendar.n_steps
        self.step_index = -1

        # ---- agents ----
        strategy_cfg = cfg.scenario.strategy
        if strategy_cfg.type == "rules":
            strategy = RuleBasedStrategy(
                coercer_cost_tolerance=float(strategy_cfg.coercer_cost_tolerance),
                target_pain_threshold=float(strategy_cfg.target_pain_threshold),
                ruling_delay_months=strategy_cfg.ruling_delay_months,
            )
        else:
            strategy = ScheduleStrategy()  # a game's coercer replaces it once the model is built (below)
        self.strategy = strategy
        self.state_agents = [
            StateAgent(self, c, code, list(cfg.scenario.countries[c].coalitions), strategy if c == w.coercer else None)
            for c, code in enumerate(w.countries)
        ]
        for p in range(P):
            ProducerFirm(self, p)
        for f in range(w.n_user_firms):  # the rest are producers' input buyers (sim.model.chains)
            UserFirm(self, f)
        self.states = self.agents_by_type[StateAgent]
        self.producers = self.agents_by_type[ProducerFirm]
        self.firms = self.agents_by_type[UserFirm]
        order = np.argsort(w.row_firm, kind="stable")
        bounds = np.searchsorted(w.row_firm[order], np.arange(F + 1))
        self.rows_of_firm = [order[bounds[f] : bounds[f + 1]] for f in range(F)]
        # Rows grouped by firm, for per-firm minima with np.minimum.reduceat (every firm has a row).
        self._firm_row_order = order
        self._firm_row_start = bounds[:-1]

        # ---- state ----
        self.measures = list(w.measures)  # levers may add counter-measures
        self._offtake_contracts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._no_offtake: np.ndarray | None = None
        self._measure_kinds_of = -1  # len(self.measures) when _measure_kinds was last split
        self._measure_kinds_cache: tuple[list, list, list] = ([], [], [])
        self._quota_months_of: list | None = None  # the quota list _quotas_by_month was drawn up for
        self._quotas_by_month: list[list[ExportQuota]] = []
        self.coercer_index = w.coercer
        self.target_indices = w.targets
        self.measure_arrays = MeasureArrays.empty(G, C)
        # Export licences act on each purchase row's orders: the share of the order on each sourcing
        # slot that is refused this month ([R, K]; zero without licences).
        self.order_blocked = np.zeros_like(w.base_weights)
        self._order_pass = np.ones_like(w.base_weights)  # 1 - order_blocked, the kernel's input
        self._licences_set = False
        self._row_sector = w.firm_sector[w.row_firm]
        self._measure_shares: tuple | None = None
        self.capacity = w.capacity0.copy()
        self._producer_gc = w.producer_good * C + w.producer_country
        self.project_start = np.where(w.is_project, _NEVER, -1).astype(np.int64)
        self.project_signal_months = np.zeros(P, dtype=np.int64)
        self.producer_output = np.zeros(P)
        # Policy levers' state and this month's actions (see sim.policy.levers): reserves, what they release
        # (by the releasing country) and deliver (by the receiving country), refill orders and what
        # they bought at what value; each lever's cost by country; firms' extra target cover and
        # requirement multiplier set by levers.
        self.stockpile = np.zeros((G, C))
        self.stockpile_release = np.zeros((G, C))
        self.stockpile_delivery = np.zeros((G, C))
        self.stockpile_order = np.zeros((G, C))
        self.stockpile_bought = np.zeros((G, C))
        self.stockpile_bought_value = np.zeros((G, C))
        self.lever_cost = np.zeros((len(LEVER_NAMES), C))
        self.policy_cost = np.zeros(C)
        self.policy_revenue = np.zeros(C)
        self.extra_cover = np.zeros(R)
        self.policy_requirement = np.ones(R)
        self._no_release = np.zeros((G, C))
        self.weights = w.base_weights.copy()
        self.risk = np.zeros_like(self.weights)
        self.inventory = w.row_requirement * w.firm_value_added[w.row_firm] * w.row_inventory_months
        self.requirement_multiplier = np.ones(R)
        self._no_requirement_change: np.ndarray | None = None
        self.scarcity = np.zeros(R)
        self.firm_output = w.firm_value_added[: w.n_user_firms].copy()
        self.firm_output_loss = np.zeros(w.n_user_firms)
        # Value chains (sim.model.chains): None in a world without inputs or by-products.
        self.chains = ValueChains(w) if ValueChains.present(w) else None
        self.usable_capacity = self.capacity  # what the market sees; limited by inputs in a chain
        self.lost_output = np.zeros(P)
        self.input_use = np.zeros(R)
        self.delivered_to_firms = np.zeros(R)
        self._row_sigma = w.armington_elasticity[w.row_good]
        self._row_eps = w.demand_elasticity[w.row_good]
        # Each row's log reference price, as the demand kernel used to compute it every month (kernels.log_of).
        self._row_log_pref = kernels.log_of(np.ascontiguousarray(w.reference_price[w.row_good], dtype=float))
        self.baseline_price_index = self._price_index(self.weights, w.baseline_delivered_price)
        # Reference delivered prices raised to 1 - sigma and -sigma, once (see sim.model.kernels.demand_scale_rows).
        with np.errstate(divide="ignore"):
            log_p0 = np.log(np.where(w.slot_origin >= 0, w.baseline_delivered_price, 1.0))
        self._base_pow_1ms = np.exp((1.0 - self._row_sigma[:, None]) * log_p0)
        self._base_pow_ms = np.exp(-self._row_sigma[:, None] * log_p0)
        self._row_destination = w.firm_country[w.row_firm]
        self.price_index_expectation = self.baseline_price_index.copy()
        self.expected_price = w.reference_price.copy()
        self._affinity = self._calibrate_affinity()
        self._last_prices = np.full((G, C), np.nan)
        self._last_rent = np.zeros((G, C))
        # Goods whose market cleared at last month's prices without an iteration: this month their
        # warm start is checked before the solver pays for a Jacobian (a speed hint; MarketInputs).
        self._cleared_at_start: np.ndarray | None = None
        self._market: PreparedMarket | None = None  # the world's market, from the first month's inputs (_clear)
        # Quota periods by the month they close (last counted month, chain, position) and how many closed.
        self._quota_closings: list[tuple[int, int, int]] | None = None
        self._quotas_closed = 0
        self.last_result = None
        self._trade_totals_of = None
        self._trade_totals: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # Domestic instruments (production quotas, crackdowns, halts, taxes, state purchases): what
        # they do to the producers' supply curves this month, and what state purchases bought.
        self.domestic = sorted((m for m in self.measures if isinstance(m, DomesticMeasure)), key=lambda m: m.stage)
        # Their costs by month, one row each in that order (each instrument's ``cost`` is a view of its
        # row), for the recorder's sums by imposer (sim.model.kernels.record_domestic_costs).
        self.domestic_cost = np.zeros((len(self.domestic), self.n_steps))
        for i, dm in enumerate(self.domestic):
            self.domestic_cost[i] = dm.cost
            dm.cost = self.domestic_cost[i]
        self.supply_terms = SupplyTerms.empty(P, G, C)
        self._domestic_by_month: list[tuple[DomesticMeasure, ...]] | None = None
        self._domestic_positions: list[np.ndarray] | None = None
        # Per month, the dated production quotas, taxes and state purchases (with the two above).
        self._domestic_kinds: list[tuple[tuple, tuple, tuple]] | None = None
        # The producers of a set of capacity measures, concatenated, with their offsets (_book_domestic).
        self._cut_producers: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.state_purchase_bought = np.zeros((G, C))
        self.state_purchase_value = np.zeros((G, C))
        self.capacity_offered = self.capacity.copy()
        self._market_supply = (self.capacity, w.unit_cost, w.full_capacity_price)

        # Baseline export revenue of the coercer on the goods it coerces (for its cost accounting).
        duty0 = w.baseline_measures.export_duty[:, w.coercer]
        self.baseline_coercer_revenue = float(
            np.sum(w.baseline_exports[:, w.coercer] * w.reference_price * (1 + duty0))
        )
        self._investment = np.zeros((G, C))
        self._project_constants_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.world_import_price = w.reference_price.copy()
        self._row_gc = w.row_good * C + self._row_destination
        self._state_order_rows = np.zeros(R)
        self.recorder = Recorder(self)
        self.levers = build_levers(self)
        if strategy_cfg.type == "game":
            from sim.coercion.strategy import StrategicCoercer

            self.strategy = StrategicCoercer(self)
            self.state_agents[w.coercer].strategy = self.strategy
        self.clearing_seconds = 0.0
        self.clearing_max_iterations = 0
        self.clearing_max_residual = 0.0

    def __setstate__(self, state: dict) -> None:
        """Restore a copied (``copy.deepcopy``, the strategic layer's look-ahead) or unpickled model: each
        domestic instrument's ``cost`` is a row of ``domestic_cost``, and copying makes such views arrays
        of their own, so the rows are tied again (they hold the same numbers at that moment).
        """
        self.__dict__.update(state)
        for i, dm in enumerate(self.domestic):
            dm.cost = self.domestic_cost[i]

    # ------------------------------------------------------------------ helpers
    def _price_index(self, weights: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """CES price index of every purchase row for given weights and delivered prices ``[R, K]``."""
        return kernels.price_index_rows(weights, prices, self.world.slot_origin, self._row_sigma)

    def _calibrate_affinity(self) -> np.ndarray:
        """Per-slot affinity ``b`` so that ``b x capacity`` reproduces the baseline weights; origins
        without baseline capacity get the row's mean affinity of its foreign suppliers.
        """
        w = self.world
        cap = self._capacity_by_origin()
        slot_cap = np.where(w.slot_origin >= 0, cap[w.row_good[:, None], np.maximum(w.slot_origin, 0)], 0.0)
        aff = np.where((slot_cap > 0) & (self.weights > 0), self.weights / np.where(slot_cap > 0, slot_cap, 1.0), 0.0)
        foreign = (w.slot_origin >= 0) & (w.slot_origin != w.firm_country[w.row_firm][:, None]) & (slot_cap > 0)
        fw = np.where(foreign, self.weights, 0.0).sum(axis=1)
        fc = np.where(foreign, slot_cap, 0.0).sum(axis=1)
        mean_foreign = np.where(fc > 0, fw / np.where(fc > 0, fc, 1.0), aff.max(axis=1, initial=0.0))
        new = (w.slot_origin >= 0) & (slot_cap <= 0)
        return np.where(new, mean_foreign[:, None], aff)

    def _capacity_by_origin(self) -> np.ndarray:
        return kernels.capacity_by_origin(
            self._producer_gc, self.capacity, len(self.world.goods), len(self.world.countries)
        )

    @property
    def date(self):
        """First day of the month being (or last) simulated."""
        return self.world.calendar.first_day(max(self.step_index, 0))

    # ------------------------------------------------------------------ step phases
    def _close_quota_periods(self, t: int) -> None:
        """Carry unused licences of quota periods that ended into the next period of their year.

        A period closes in the first month after the last month it counts (:meth:`ExportQuota.months`);
        the periods are listed once in that order (their dates are fixed with the world), and those
        closing in the same month in the order of their chains, so a period receives what an earlier
        one carried in before it passes its own remainder on.
        """
        if self._quota_closings is None:
            closings = []
            for k, chain in enumerate(self.world.quota_chains):
                for i, q in enumerate(chain[:-1]):
                    last = q._timeline().last_counted  # the last of q.months(), -1 if none
                    if last >= 0:
                        closings.append((last, k, i))
            self._quota_closings = sorted(closings)
        closings = self._quota_closings
        while self._quotas_closed < len(closings) and closings[self._quotas_closed][0] < t:
            _, k, i = closings[self._quotas_closed]
            chain = self.world.quota_chains[k]
            chain[i + 1].carried_in = chain[i + 1].carried_in + chain[i].remaining()
            self._quotas_closed += 1

    def _measure_kinds(self) -> tuple[list, list, list]:
        """The measures (in list order) split into export quotas, the other trade measures (domestic instruments
        left out) and export licences; recomputed only when a lever added measures (the list only grows).
        """
        if self._measure_kinds_of != len(self.measures):
            quotas = [m for m in self.measures if isinstance(m, ExportQuota)]
            # Domestic instruments write nothing into the trade arrays (see _set_supply_terms).
            others = [m for m in self.measures if not isinstance(m, ExportQuota | DomesticMeasure)]
            licences = [m for m in self.measures if isinstance(m, ExportLicence)]
            self._measure_kinds_cache = (quotas, others, licences)
            self._measure_kinds_of = len(self.measures)
        return self._measure_kinds_cache

    def _quotas_counting(self, t: int) -> list[ExportQuota]:
        """The export quotas (in list order) whose period counts month ``t`` (:meth:`ExportQuota.months`);
        the others neither cap nor book exports that month. Drawn up once per list of quotas, as a
        quota's dates are fixed when it is made.
        """
        quotas = self._measure_kinds()[0]
        if self._quota_months_of is not quotas:
            by_month: list[list[ExportQuota]] = [[] for _ in range(self.n_steps)]
            for q in quotas:
                for month in q.months():
                    if month < self.n_steps:
                        by_month[month].append(q)
            self._quotas_by_month = by_month
            self._quota_months_of = quotas
        return self._quotas_by_month[t]

    def _set_measures(self, t: int) -> None:
        # What ``self.states.do("set_measures")`` does, in the same order (the agent set's is the order
        # of creation, ``state_agents``), for the states that decide (only the coercer has a strategy),
        # without the microseconds Mesa's ``AgentSet.do`` costs a call (twice a month).
        for state in self.state_agents:
            if state.strategy is not None:
                state.set_measures()
        self._close_quota_periods(t)
        arrays = self.measure_arrays
        _, others, _ = self._measure_kinds()
        # Bans, duties and tariffs depend only on each measure's share in force this month; rewrite
        # the (dense) arrays only when one of those shares changed. Quota caps are paced monthly.
        shares = tuple([m.in_force(t) for m in others])  # a list comprehension: no generator frame
        if shares != self._measure_shares:
            arrays.ban_intensity.fill(0.0)
            arrays.export_duty.fill(0.0)
            arrays.import_tariff.fill(0.0)
            for m in others:
                m.apply(t, arrays)
            self._measure_shares = shares
        arrays.export_quota.fill(np.inf)
        for m in self._quotas_counting(t):
            m.apply(t, arrays)
        self._set_licences(t)

    def _set_licences(self, t: int) -> None:
        """This month's refused share of each row's orders on each slot under the export licences in
        force (the largest where regimes overlap).
        """
        w = self.world
        licences = self._measure_kinds()[2]
        if not licences and not self._licences_set:
            return  # nothing to rewrite: no regime in force now or last month ([R, K] arrays, large worlds)
        self.order_blocked.fill(0.0)
        for m in licences:
            blocked = m.blocked_share(t, w.row_good, self._row_destination, self._row_sector, w.slot_origin)
            if blocked is not None:
                np.maximum(self.order_blocked, blocked, out=self.order_blocked)
        self._licences_set = bool(self.order_blocked.any())
        np.subtract(1.0, self.order_blocked, out=self._order_pass)

    def _set_supply_terms(self, t: int) -> None:
        """Run the domestic instruments in their stage order (capacity cuts, output caps, taxes,
        purchases) and derive the supply curves the market sees this month.

        A capacity share s scales a producer's curve (part of its plants stop); an output cap Q cuts
        the curve at Q (capacity and full-capacity price lowered together, the curve below Q
        unchanged); a tax per unit t and ad-valorem rate r raise unit cost and full-capacity price to
        (x + t) / (1 - r). Without domestic instruments the world's arrays are used as they are.
        """
        w = self.world
        if not self.domestic:
            self._market_supply = (self.capacity, w.unit_cost, w.full_capacity_price)
            self.capacity_offered = self.capacity
            return
        terms = self.supply_terms
        terms.reset()
        for m in self._domestic_dated(t):
            if isinstance(m, StatePurchase):
                last = self._last_prices[m.goods[0], m.imposer]
                m.last_price = float(last) if np.isfinite(last) else float(w.reference_price[m.goods[0]])
            m.apply_domestic(t, terms, self.capacity)
        # Capacity shares, output caps and taxes applied producer by producer (sim.model.kernels.domestic_supply).
        cap, uncut_full, cost, full = kernels.domestic_supply(
            self.capacity,
            terms.capacity_share,
            terms.output_cap,
            w.unit_cost,
            w.full_capacity_price,
            w.supply_elasticity,
            terms.tax_per_unit,
            terms.tax_rate,
        )
        self.capacity_offered = cap
        self._uncut_supply = (cap, uncut_full)
        self._market_supply = (cap, cost, full)

    def _domestic_dated(self, t: int) -> tuple[DomesticMeasure, ...]:
        """The domestic instruments (in stage order) whose dates cover some of month ``t``: the others
        change nothing that month (no capacity cut, cap, tax, order or cost). Drawn up once from the
        instruments' coverage, which is fixed when the world is built; months with the same instruments
        share one tuple.
        """
        if self._domestic_by_month is None:
            self._index_domestic_months()
        return self._domestic_by_month[t]

    def domestic_dated_positions(self, t: int) -> np.ndarray:
        """Positions in :attr:`domestic` of the instruments :meth:`_domestic_dated` lists for month ``t``
        (shared by the months with the same instruments: read it, do not write to it).
        """
        if self._domestic_positions is None:
            self._index_domestic_months()
        return self._domestic_positions[t]

    def _domestic_booking(self, t: int) -> tuple[tuple, tuple, tuple]:
        """The production quotas, production taxes and state purchases among the instruments dated in
        month ``t`` (the ones that book output, revenue or purchases after clearing), each in stage order.
        """
        if self._domestic_kinds is None:
            self._index_domestic_months()
        return self._domestic_kinds[t]

    def _index_domestic_months(self) -> None:
        covered = np.zeros((len(self.domestic), self.n_steps), dtype=bool)
        for i, m in enumerate(self.domestic):
            covered[i] = np.asarray(m.coverage) > 0
        # Which instruments book output, tax revenue and purchases after clearing (_book_domestic).
        booking = (ProductionQuota, ProductionTax, StatePurchase)
        kind_of = [next((k for k, kind in enumerate(booking) if isinstance(m, kind)), -1) for m in self.domestic]
        # Months with the same instruments dated share one position array and one tuple (rare_earth_2010:
        # 24 distinct sets in 144 months), each derived once.
        shared: dict[bytes, tuple[np.ndarray, tuple[DomesticMeasure, ...], tuple[tuple, tuple, tuple]]] = {}
        positions, by_month, kinds_by_month = [], [], []
        for month_covered in np.ascontiguousarray(covered.T):
            key = month_covered.tobytes()
            if key not in shared:
                at = np.flatnonzero(month_covered)
                dated = tuple(self.domestic[i] for i in at.tolist())
                kinds = tuple(
                    tuple(self.domestic[i] for i in at.tolist() if kind_of[i] == k) for k in range(len(booking))
                )
                shared[key] = (at, dated, kinds)
            positions.append(shared[key][0])
            by_month.append(shared[key][1])
            kinds_by_month.append(shared[key][2])
        self._domestic_positions = positions
        self._domestic_by_month = by_month
        self._domestic_kinds = kinds_by_month

    def _book_domestic(self, t: int, result) -> None:
        """After clearing: quotas book output, state purchases book what they bought (into the state's
        stock), and every domestic instrument books its cost to the state this month (US$).
        """
        w = self.world
        if not self.domestic:
            return
        price = kernels.producer_prices(result.price_domestic, w.producer_good, w.producer_country)
        out = result.producer_output
        dated = self._domestic_dated(t)
        cuts = [m for m in dated if getattr(m, "withheld", None) is not None]
        if cuts:
            # Sales the capacity measures prevented at this month's domestic price, and the margin lost,
            # split over the measures acting on a producer by the capacity each withheld.
            # (sim.model.kernels.withheld_costs: one cost per measure, producer by producer)
            key = tuple(map(id, cuts))  # the measures' producers, concatenated once per set of cuts
            producers = self._cut_producers.get(key)
            if producers is None:
                producers = self._cut_producers[key] = (
                    np.concatenate([m.producers for m in cuts]),
                    np.fromiter(
                        itertools.accumulate((len(m.producers) for m in cuts), initial=0), np.int64, len(cuts) + 1
                    ),
                )
            cap, full = self._uncut_supply
            costs = kernels.withheld_costs(
                price,
                self.capacity,
                cap,
                w.unit_cost,
                w.full_capacity_price,
                full,
                w.supply_elasticity,
                producers[0],
                np.concatenate([m.withheld for m in cuts]),
                producers[1],
            )
            for m, cost in zip(cuts, costs.tolist(), strict=True):
                m.cost[t] = cost
        quotas, taxes, purchases = self._domestic_booking(t)
        for m in quotas:
            m.record_output(t, out)
        for m in taxes:
            share = m.in_force(t)
            if share > 0.0:
                m.cost[t] = -kernels.production_tax_revenue(
                    float(m.per_unit), float(m.rate), float(share), price, out, m.producers
                )
        for m in purchases:
            g, c = m.goods[0], m.imposer
            mine = m.order(t)
            whole = self.supply_terms.state_order[g, c]
            if mine <= 0 or whole <= 0:
                continue
            part = mine / whole
            q = self.state_purchase_bought[g, c] * part
            v = self.state_purchase_value[g, c] * part
            m.bought += q
            m.spent += v
            m.cost[t] = v

    def _plan(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, prm = self.world, self.params
        planned_output = w.firm_value_added  # baseline output; demand for final goods is not modelled
        if self.chains is not None:
            # Producers' input buyers plan for the output the market asks of their producer.
            planned_output = planned_output.copy()
            planned_output[w.n_user_firms :] = self.chains.planned_output(self)
        req, need = kernels.requirement_rows(
            w.row_requirement,
            self._requirement_factor(),
            self._scheduled_requirement(t),
            self.policy_requirement,
            planned_output,
            w.row_firm,
        )
        # Stock released by states reaches firms before they plan, in proportion to their need.
        if np.count_nonzero(self.stockpile_delivery):
            self.inventory = self.inventory + self._spread(self.stockpile_delivery, need)
        # Precaution: the target cover rises with the larger of the scarcity the firm has seen
        # (recent price rise and rationing) and the supply risk it perceives in its own sourcing;
        # levers may pay for extra months of cover. Firms buy their need and close a share of the gap
        # to the target (sim.model.kernels.plan_rows).
        purchase = kernels.plan_rows(
            need,
            self.inventory,
            self.weights,
            self.risk,
            self.scarcity,
            w.row_inventory_months,
            self.extra_cover,
            float(prm.precaution),
            float(prm.precaution_max_multiple),
            float(prm.inventory_adjustment_months),
        )
        # States refilling reserves buy through their firms' sourcing mix (split off after clearing).
        if np.count_nonzero(self.stockpile_order):
            self._state_order_rows = self._spread(self.stockpile_order, need)
            purchase = purchase + self._state_order_rows
        else:
            self._state_order_rows.fill(0.0)
        return req, need, purchase

    def _spread(self, by_gc: np.ndarray, need: np.ndarray) -> np.ndarray:
        """Spread a ``[G, C]`` quantity over the purchase rows of each (good, country) by their need."""
        return kernels.spread_by_need(np.ascontiguousarray(by_gc).ravel(), self._row_gc, need)

    def _split_state_purchases(self, purchase: np.ndarray, result) -> np.ndarray:
        """The state's share of each row's deliveries (refill orders) goes to its reserve; returns what
        the firms received.
        """
        orders = self._state_order_rows
        self.stockpile_bought.fill(0.0)
        self.stockpile_bought_value.fill(0.0)
        if not np.count_nonzero(orders):
            return result.delivered
        state_delivered, state_value, firms = kernels.split_state_rows(
            orders, purchase, result.delivered, result.expenditure
        )
        bought, value = kernels.group_sums(self._row_gc, (state_delivered, state_value), self.stockpile_bought.size)
        self.stockpile_bought[...] = bought.reshape(self.stockpile_bought.shape)
        self.stockpile_bought_value[...] = value.reshape(self.stockpile_bought.shape)
        return firms

    def _scheduled_requirement(self, t: int) -> np.ndarray:
        """Each row's requirement multiplier in month ``t`` from the scenario's dated requirement changes
        (ones, shared and read-only, without any).
        """
        if not self.world.requirement_changes:
            if self._no_requirement_change is None:
                self._no_requirement_change = np.ones(len(self.world.row_firm))
                self._no_requirement_change.flags.writeable = False
            return self._no_requirement_change
        mult = np.ones(len(self.world.row_firm))
        for idx, start, ramp, change in self.world.requirement_changes:
            mult[idx] *= 1.0 + change * ramp_share(t, start, ramp)
        return mult

    def _requirement_factor(self) -> np.ndarray:
        """Each row's requirement per unit of output relative to its baseline, from adaptation: endogenous
        substitution times long-run thrift, never below the substitution floor.

        Long-run thrift (demand destruction at high prices) lowers the requirement by the expected price
        index, last month's expectation: ``(E_r / P0_r) ** -(long_run_thrift * eps_g)`` for an expected
        price above baseline, 1 otherwise. It is reversible: the requirement comes back as the expected
        price falls.
        """
        theta = float(self.params.long_run_thrift)
        if theta == 0.0:
            return self.requirement_multiplier
        return kernels.thrift_factor(
            self.requirement_multiplier,
            self.price_index_expectation,
            self.baseline_price_index,
            self._row_eps,
            theta,
            float(self.params.substitution_floor),
        )

    def _clear(self, purchase: np.ndarray, need: np.ndarray):
        w, prm = self.world, self.params
        m = self.measure_arrays
        # Each row's short-run price elasticity of purchases (the thrift elasticity of use plus the
        # deferral its stock allows: months of cover, capped) and its plan as the kernel's demand
        # input: scaled so that at the baseline delivered prices the kernel's CES demand delivers
        # exactly the planned tonnes, whatever the current weights (sim.model.kernels.market_demand_rows).
        elasticity, planned = kernels.market_demand_rows(
            need,
            self.inventory,
            self._row_eps,
            float(prm.deferral_elasticity),
            float(prm.deferral_max_cover_months),
            purchase,
            self.weights,
            self._base_pow_1ms,
            self._base_pow_ms,
            w.slot_origin,
            self._row_sigma,
            self._row_log_pref,
        )
        # Supply the market sees: the domestic instruments' curves (halts, crackdowns, output caps,
        # taxes: _set_supply_terms), within what input stocks allow and shifted by expected input
        # costs in a value chain (sim.model.chains).
        capacity, unit_cost, full_capacity_price = self._market_supply
        if self.chains is not None:
            capacity = np.minimum(capacity, self.usable_capacity)
            unit_cost, full_capacity_price = self.chains.unit_costs(unit_cost, full_capacity_price)
        # The month's quantities, prices and measures, cleared with the world's arrays as the first
        # month's inputs hold them, which were built and validated in full (PreparedMarket).
        month = dict(
            capacity=capacity,
            unit_cost=unit_cost,
            full_capacity_price=full_capacity_price,
            planned_purchase=planned,
            demand_elasticity=elasticity,
            sourcing_weights=self.weights,
            ban_intensity=m.ban_intensity,
            export_quota=m.export_quota,
            export_duty=m.export_duty,
            import_tariff=m.import_tariff,
            initial_price=self._last_prices,
            initial_rent=self._last_rent,
            order_pass=self._order_pass,
            check_warm_start=self._cleared_at_start,
        )
        if self._market is None:
            first = MarketInputs(
                n_countries=len(w.countries),
                reference_price=w.reference_price,
                armington_elasticity=w.armington_elasticity,
                price_cap=w.price_cap,
                price_floor=w.price_floor,
                producer_country=w.producer_country,
                producer_good=w.producer_good,
                supply_elasticity=w.supply_elasticity,
                firm_country=w.firm_country,
                row_firm=w.row_firm,
                row_good=w.row_good,
                sourcing_origin=w.slot_origin,
                transport_cost=w.transport_cost,
                stockpile_release=self._no_release,  # reserves reach firms directly (see _plan)
                **month,
            )
            self._market = PreparedMarket(first, tolerance=prm.clearing_tolerance)  # validates the inputs
        self.capacity_cleared = self.capacity.copy()  # what this month's market saw (adaptation changes it)
        t0 = _time.perf_counter()
        result = self._market.clear(**month)
        self.clearing_seconds += _time.perf_counter() - t0
        self._last_prices, self._cleared_at_start, most, largest = kernels.after_clearing(
            result.price_domestic, result.iterations, result.residual
        )
        self.clearing_max_iterations = max(self.clearing_max_iterations, int(most))
        self.clearing_max_residual = max(self.clearing_max_residual, float(largest))
        self._last_rent = result.quota_rent
        return result

    def _produce(self, req: np.ndarray, result, delivered: np.ndarray) -> dict[str, np.ndarray]:
        w = self.world
        # Leontief firms cannot save on an input in the short run; they respond to its price through
        # output: at a delivered-price index above baseline they plan less output by the good's
        # short-run demand elasticity (demand destruction), the most expensive input deciding.
        pidx = result.price_index
        price_factor = kernels.output_price_factor(pidx, self.baseline_price_index, self._row_eps)
        baseline_output = w.firm_value_added
        inventory_start = self.inventory
        # Output is then limited by the scarcest input: stock plus deliveries (sim.model.kernels.produce_rows).
        _, output, use, self.inventory, shortage = kernels.produce_rows(
            price_factor,
            baseline_output,
            self.inventory,
            delivered,
            req,
            w.row_firm,
            self._firm_row_order,
            self._firm_row_start,
        )
        n = w.n_user_firms
        self.firm_output = output[:n]
        self.firm_output_loss = baseline_output[:n] - output[:n]
        if self.chains is not None:
            # Producers' input buyers: their producer's sales used the inputs in stock at the start
            # of the month (this month's deliveries are stocked for the next), and what they could
            # not make for lack of inputs counts as their shortage of each input.
            use, self.inventory, shortage, self.lost_output = self.chains.produce(
                self, result, req, inventory_start, delivered, use, self.inventory, shortage
            )
        self.input_use = use
        return {"shortage": shortage, "use": use, "price_index": pidx, "requirement": req}

    def _adapt(self, t: int, result, production: dict[str, np.ndarray]) -> None:
        w, prm = self.world, self.params

        # Per row, in one compiled pass (sim.model.kernels.adapt_rows): the scarcity signal
        # (precaution: recent price rise and rationing, exponentially remembered), the expected price
        # index and endogenous substitution and recycling-by-design (requirements fall while the
        # expected price stays high). The scarcity seen here drives next month's plans.
        b = self._expectation_smoothing
        kernels.adapt_rows(
            production["price_index"],
            self.baseline_price_index,
            result.rationed,
            result.demand,
            self.scarcity,
            self._scarcity_smoothing,
            self.price_index_expectation,
            b,
            self.requirement_multiplier,
            float(prm.substitution_rate),
            float(prm.substitution_floor),
        )

        # Perceived risk of each origin: this month's hit (blocked share of the edge, or the quota
        # rent's share of the export price) or the remembered risk, whichever is larger. Sourcing
        # weights move toward targets: affinity x current capacity of the origin, lowered by
        # perceived risk, plus contracted offtake (see sim.model.kernels.adapt_sourcing).
        rent_share = kernels.rent_share_of_price(result.quota_rent, result.price_export)
        cap = self._capacity_by_origin()
        contracted = self._offtake_weights(need_by=production["use"], cap=cap)
        kernels.adapt_sourcing(
            self.weights,
            self.risk,
            self._affinity,
            contracted,
            w.slot_origin,
            w.row_good,
            self._row_destination,
            self.measure_arrays.ban_intensity,
            self.order_blocked,
            rent_share,
            cap,
            self._risk_decay,
            float(prm.risk_aversion),
            float(prm.sourcing_adjustment_rate),
        )

        # Investors: expected world import price per good; projects start when it passes their hurdle
        # for long enough, or on their financing date; capacity follows the build lag and ramp.
        qty, val, _ = self.trade_totals(result)
        self.world_import_price = kernels.update_expected_price(qty, val, self.expected_price, b)
        hurdle_price, lag, spend_while_building = self._project_constants()
        kernels.advance_projects(
            t,
            _NEVER,
            w.is_project,
            self.project_start,
            self.project_signal_months,
            self.expected_price,
            w.producer_good,
            hurdle_price,
            w.earliest_start,
            w.committed_start,
            int(prm.project_decision_months),
            self.capacity,
            w.build_lag,
            w.nameplate,
            w.ramp_up,
            lag,
            spend_while_building,
            self._producer_gc,
            self._investment.reshape(-1),
        )

    def _project_constants(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per producer, fixed with the world: the expected price at which a project passes its hurdle
        (hurdle x unit cost; 0 for existing producers), its build lag (at least a month) and its
        capital spending per month of building.
        """
        if self._project_constants_cache is None:
            w = self.world
            lag = np.maximum(w.build_lag, 1)
            self._project_constants_cache = (np.where(w.is_project, w.hurdle, 0.0) * w.unit_cost, lag, w.capex / lag)
        return self._project_constants_cache

    def trade_totals(self, result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """International trade of a clearing ``result`` (:func:`sim.model.kernels.international_totals`:
        quantity and value per good, imports per good and country); computed once per month, for the
        investors' expected price and the records.
        """
        if self._trade_totals_of is not result:
            w = self.world
            self._trade_totals = kernels.international_totals(
                result.edge_good,
                result.edge_origin,
                result.edge_destination,
                result.edge_flow,
                result.edge_price,
                len(w.goods),
                len(w.countries),
            )
            self._trade_totals_of = result
        return self._trade_totals

    def _offtake_weights(self, need_by: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """Weights reserved by offtake contracts: a project's contracted share of its current output
        as a share of the buying country's use of the good, spread over that country's firms.
        """
        w = self.world
        if self._offtake_contracts is None:  # the world's contracts are fixed when it is built
            contracts = [(p, d, share) for p in np.flatnonzero(w.is_project) for d, share in w.offtake[p].items()]
            self._offtake_contracts = (
                np.array([c[0] for c in contracts], dtype=np.int64),
                np.array([c[1] for c in contracts], dtype=np.int64),
                np.array([c[2] for c in contracts], dtype=np.float64),
            )
        project, buyer, share = self._offtake_contracts
        if project.size == 0:  # no contracts (most scenarios): one zero array, which nothing writes to
            if self._no_offtake is None or self._no_offtake.shape != self.weights.shape:
                self._no_offtake = np.zeros(self.weights.shape)
            return self._no_offtake
        return kernels.offtake_weights(
            self.weights.shape,
            project,
            buyer,
            share,
            self.capacity,
            w.producer_good,
            w.producer_country,
            w.row_good,
            self._row_destination,
            w.slot_origin,
            need_by,
        )

    # ------------------------------------------------------------------ Mesa step
    def step(self) -> None:
        """Advance the world by one month (see the module docstring for the order)."""
        t = self.step_index + 1
        if t >= self.n_steps:
            self.running = False
            return
        self.step_index = t
        self._set_measures(t)
        for a in (
            self.stockpile_release,
            self.stockpile_delivery,
            self.stockpile_order,
            self.lever_cost,
            self.policy_revenue,
        ):
            a.fill(0.0)
        self.policy_requirement.fill(1.0)
        for state in self.state_agents:  # self.states.do("act"), for the states with levers (_set_measures)
            if state.levers:
                state.act()
        self._set_supply_terms(t)
        own_orders = self.supply_terms.state_order if self.domestic else None
        # Whether the state purchases (domestic instruments) ordered this month (set above, read below).
        # np.count_nonzero here and in the month's other tests of small arrays: ndarray.any() goes
        # through a Python wrapper, about 1 us more a call.
        state_ordered = own_orders is not None and np.count_nonzero(own_orders) > 0
        if state_ordered:
            self.stockpile_order += own_orders
        req, need, purchase = self._plan(t)
        if self.chains is not None:
            self.usable_capacity = self.chains.usable_capacity(self.capacity, self.inventory, req)
        else:
            self.usable_capacity = self.capacity
        result = self._clear(purchase, need)
        delivered = self._split_state_purchases(purchase, result)
        # What the state purchases (domestic instruments) bought goes to the state's stock; the rest
        # of the reserve purchases belongs to the stockpile levers.
        if state_ordered:  # their share of the reserve purchases, every element written in one compiled pass
            kernels.take_state_purchases(
                own_orders,
                self.stockpile_order,
                self.stockpile_bought,
                self.stockpile_bought_value,
                self.state_purchase_bought,
                self.state_purchase_value,
                self.stockpile,
            )
        else:
            self.state_purchase_bought.fill(0.0)
            self.state_purchase_value.fill(0.0)
        self._book_domestic(t, result)
        self.delivered_to_firms = delivered
        for lever in self.levers:
            lever.after_clear(self, t, result)
        production = self._produce(req, result, delivered)
        for q in self._quotas_counting(t):
            q.record_exports(t, result.exports[:, q.imposer])
        self.producer_output = result.producer_output
        if self.chains is not None:
            self.chains.update_input_costs(
                result.price_index,
                self.baseline_price_index,
                req,
                self.world.unit_cost,
                self._expectation_smoothing,
            )
            self.chains.record_host_output(
                result.producer_output, self.world.producer_good, self.world.producer_country
            )
        for lever in self.levers:
            lever.before_adapt(self, t)
        self._adapt(t, result, production)
        for lever in self.levers:
            lever.after_adapt(self, t, result)
        np.add.reduce(self.lever_cost, axis=0, out=self.policy_cost)  # lever_cost.sum(axis=0), without its wrapper
        self.last_result = result
        self.recorder.record(t, result, production, purchase)
        after_step = getattr(self.strategy, "after_step", None)
        if after_step is not None:  # the strategic layer decides at the end of the month (sim.coercion.strategy)
            after_step(self, t)
        if t == self.n_steps - 1:
            self.running = False

    # ------------------------------------------------------------------ outcomes used by strategies
    def trailing_pain(self, country: int, months: int) -> float:
        """Output loss of a country's user firms as a share of their baseline value added, over the
        last ``months`` months.
        """
        return self.recorder.trailing_output_loss_share(country, months, self.step_index)

    def trailing_coercer_cost(self, months: int) -> float:
        """Coercer's cost over the last ``months`` months as a share of its baseline export revenue
        on the goods over the same months (lost export revenue plus its firms' extra input cost).
        """
        base = self.baseline_coercer_revenue * months
        if base <= 0:
            return 0.0
        return self.recorder.trailing_coercer_cost(months, self.step_index) / base

    def run(self, progress=None) -> CoercionModel:
        """Run every month of the scenario; ``progress(step, n_steps)`` is called after each.

        Mesa 3.5 advances ``step()`` through its event list (an event per month, rescheduled after each,
        a log record formatted each time: about 5 % of a rare_earth_2010 run). When the model's monthly
        schedule is the only thing scheduled, as in every run the simulator makes, the months are
        advanced here directly, with Mesa's clock (``time``, ``steps``) kept as its own loop keeps it and
        the schedule paused meanwhile and resumed after, so ``step()`` goes on as before. Anything else
        scheduled on the model (``schedule_event``) and the months go through Mesa's loop.
        """
        schedule = self._default_schedule
        # The one scheduled event is the monthly schedule's next month (not a user's, with it stopped).
        direct = len(self._event_list) == 1 and schedule.next_scheduled_time == self.time + 1.0
        if direct:
            schedule.pause()
        month = type(self).step  # the model's month, which Mesa wraps as self.step
        while self.running:
            if not direct:
                self.step()
            else:  # what Mesa's step does for its one event, less the event and the log record
                self.time += 1.0
                self.steps += 1
                month(self)
            if progress is not None and self.step_index >= 0:
                progress(self.step_index + 1, self.n_steps)
        if direct:
            # Rescheduled as Mesa's loop leaves it (a month that raised leaves it unscheduled, as there).
            schedule.resume()
        check_levers_after_run(self)
        return self
