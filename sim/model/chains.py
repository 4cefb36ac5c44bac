"""Value chains: producers that buy inputs, and by-products tied to their host good's output.

A good may declare ``inputs`` (units of other goods per unit of its output, Leontief) and
``byproduct_of`` (a host good and a recovery rate). Producers of a good with inputs are buyers on
the upstream goods' world markets: each producer (and capacity project) has one *input buyer*, a
firm with one purchase row per input, appended after the user firms (``World.n_user_firms``). Its
rows source, adapt, are rationed and buy for precaution exactly as user firms' rows do; its output
is what the market buys from the producer.

Timing (see ``docs/ODD.md``, "Submodels: value chains"): inputs delivered in month ``t`` are usable
from month ``t + 1``. The market of month ``t`` sees each producer's capacity limited by its input
stock at the start of the month divided by the coefficient (the scarcest input decides), and a
by-product's capacity in each country limited by the host good's output there in month ``t - 1``
times the recovery rate. Every good's market therefore clears once a month, on its own, as
before; a shortage upstream reaches downstream output after the downstream input stock runs down.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.market.kernel import producer_supply

__all__ = ["input_cycle", "chain_order", "ValueChains", "supply_at_prices"]

#: Usable capacity below this share of a producer's capacity counts as none (the market does not
#: see an origin that could offer only rounding error).
NEGLIGIBLE_CAPACITY_SHARE = 1e-9


def input_cycle(inputs: dict[str, dict[str, float]]) -> list[str] | None:
    """A cycle in the goods' ``inputs`` graph (goods in order, the first repeated at the end), or
    ``None`` if there is none. ``inputs`` maps a good to its input goods and coefficients.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(g: str) -> list[str] | None:
        state[g] = 1
        path.append(g)
        for u in inputs.get(g, {}):
            if state.get(u) == 1:
                return path[path.index(u) :] + [u]
            if state.get(u) is None:
                found = visit(u)
                if found:
                    return found
        path.pop()
        state[g] = 2
        return None

    for g in inputs:
        if state.get(g) is None:
            found = visit(g)
            if found:
                return found
    return None


def chain_order(goods: list[str], inputs: dict[str, dict[str, float]]) -> list[str]:
    """The goods ordered downstream first: every good comes before each of its inputs (the graph
    must have no cycle, see :func:`input_cycle`).
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(g: str) -> None:
        seen.add(g)
        for u in inputs.get(g, {}):
            if u not in seen:
                visit(u)
        order.append(g)

    for g in goods:
        if g not in seen:
            visit(g)
    return order[::-1]


@njit(cache=True)
def supply_at_prices(price, capacity, unit_cost, full_capacity_price, supply_elasticity, producers, good, country):
    """Quantity each listed producer would offer at its (good, country) price ``price[good, country]``
    with capacity ``capacity`` (0 where the price is not finite).
    """
    out = np.zeros(producers.size)
    for i in range(producers.size):
        p = producers[i]
        pr = price[good[p], country[p]]
        if pr == pr:
            out[i], _ = producer_supply(pr, capacity[p], unit_cost[p], full_capacity_price[p], supply_elasticity[p])
    return out


@njit(cache=True)
def usable_capacity_of(
    capacity,
    inventory,
    requirement,
    rows_by_producer,
    group_start,
    group_producer,
    byproduct_producers,
    gc,
    recovery,
    host,
    host_output,
    negligible_share,
):
    """``[P]`` capacity the market sees (:meth:`ValueChains.usable_capacity`), producer by producer.

    A producer with inputs (``group_producer[i]``, its input rows ``rows_by_producer[group_start[i]:
    group_start[i + 1]]``) runs at most its input stock over the coefficient, the scarcest input
    deciding (an input not needed allows any output); a by-product's producers (``byproduct_producers``)
    in a country share, by usable capacity, the host good's output there (``host_output[host[g], c]``)
    times the recovery rate; a usable capacity below ``negligible_share`` of capacity counts as none.
    """
    usable = capacity.copy()
    n_groups = group_start.size
    for i in range(n_groups):
        lo = group_start[i]
        hi = group_start[i + 1] if i + 1 < n_groups else rows_by_producer.size
        allowed = np.inf
        for j in range(lo, max(hi, lo + 1)):  # (an empty group reads its first row, as np.minimum.reduceat)
            r = rows_by_producer[j]
            a = inventory[r] / requirement[r] if requirement[r] > 0.0 else np.inf
            allowed = a if j == lo else np.minimum(allowed, a)
        p = group_producer[i]
        usable[p] = np.minimum(capacity[p], allowed)
    if byproduct_producers.size:
        n_countries = host_output.shape[1]
        total = np.zeros(recovery.size * n_countries)
        for p in byproduct_producers:
            total[gc[p]] += usable[p]
        for p in byproduct_producers:
            i = gc[p]
            g, c = i // n_countries, i % n_countries
            limit = recovery[g] * host_output[max(host[g], 0), c]
            if total[i] > limit:
                usable[p] = usable[p] * (limit / (total[i] if total[i] > 0.0 else 1.0))
    for p in range(usable.size):
        if usable[p] < negligible_share * capacity[p]:
            usable[p] = 0.0
    return usable


@njit(cache=True)
def lost_output_of(
    price,
    reference_price,
    unit_cost,
    full_capacity_price,
    cost_shift,
    supply_elasticity,
    producers,
    good,
    country,
    capacity,
    baseline_usable_share,
    usable_capacity,
    n_producers,
):
    """``[P]`` output lost for lack of inputs (:meth:`ValueChains.lost_output`), for the listed producers.

    Each offers at its (good, country) domestic price ``price`` (where not finite, the good's highest
    price elsewhere if that is finite, else its ``reference_price``) on its supply curve shifted by ``cost_shift``:
    with ``capacity`` times its baseline usable share, less with its ``usable_capacity``; never below 0.
    """
    n_goods, n_countries = price.shape
    prices = price.copy()
    for g in range(n_goods):
        best = np.nan
        for c in range(n_countries):
            v = price[g, c]
            if v == v and not (best >= v):  # NaN ignored, as np.fmax
                best = v
        fallback = best if np.isfinite(best) else reference_price[g]
        for c in range(n_countries):
            if not np.isfinite(price[g, c]):
                prices[g, c] = fallback
    cost, full = unit_cost + cost_shift, full_capacity_price + cost_shift
    reference = np.empty(capacity.size)
    for p in range(capacity.size):
        reference[p] = capacity[p] * baseline_usable_share[good[p], country[p]]
    whole = supply_at_prices(prices, reference, cost, full, supply_elasticity, producers, good, country)
    usable = supply_at_prices(prices, usable_capacity, cost, full, supply_elasticity, producers, good, country)
    out = np.zeros(n_producers)
    for i in range(producers.size):
        out[producers[i]] = max(whole[i] - usable[i], 0.0)
    return out


@njit(cache=True)
def planned_output_of(
    last_price, world_import_price, capacity, unit_cost, full_capacity_price, cost_shift, supply_elasticity,
    buyer_producer, good, country,
):  # fmt: skip
    """``[B]`` output each input buyer's producer plans for (:meth:`ValueChains.planned_output`): its
    offer at last month's domestic price (the world import price where its country had no supply) on
    its supply curve shifted by ``cost_shift``, with its full capacity (0 where no price is known).
    """
    prices = last_price.copy()
    for g in range(prices.shape[0]):
        for c in range(prices.shape[1]):
            if not np.isfinite(prices[g, c]):
                prices[g, c] = world_import_price[g]
    cost, full = unit_cost + cost_shift, full_capacity_price + cost_shift
    return supply_at_prices(prices, capacity, cost, full, supply_elasticity, buyer_producer, good, country)


@njit(cache=True)
def input_shortage(rows, row_producer, lost, requirement, shortage):
    """Each input row's shortage, the input its producer's lost output would have used, written in
    place: ``shortage[rows] = lost[row_producer] * requirement[rows]`` (the rows are distinct).
    """
    for i in range(rows.size):
        r = rows[i]
        shortage[r] = lost[row_producer[i]] * requirement[r]


@njit(cache=True)
def use_inputs(rows, row_producer, producer_output, requirement, inventory_start, delivered, use, inventory):
    """Input buyers' rows in a month (:meth:`ValueChains.produce`), written in place: each used its
    coefficient times its producer's sales from the stock held at the start of the month, and this
    month's deliveries join the stock (never below 0: sales may pass the usable capacity by the
    solver's tolerance).
    """
    for j in range(rows.size):
        r = rows[j]
        use[r] = producer_output[row_producer[j]] * requirement[r]
        inventory[r] = np.maximum(inventory_start[r] + delivered[r] - use[r], 0.0)


@njit(cache=True)
def input_cost_shift(price_index, baseline_index, requirement, rows, row_producer, price_change, smoothing, unit_cost):
    """Next month's input cost pass-through (:meth:`ValueChains.update_input_costs`): each input row's
    expected price change against baseline moves ``smoothing`` of the way to this month's (it stays
    where the input had no open origin); a producer's unit cost shifts by its coefficients times
    those changes, summed row by row in order, never below zero cost. Returns the rows' expected
    changes and the producers' shifts, as new arrays.
    """
    change = np.empty(rows.size)
    shift = np.zeros(unit_cost.size)
    for j in range(rows.size):
        r = rows[j]
        now = price_index[r]
        target = now - baseline_index[r] if np.isfinite(now) else price_change[j]
        change[j] = price_change[j] + smoothing * (target - price_change[j])
        shift[row_producer[j]] += requirement[r] * change[j]
    for p in range(unit_cost.size):
        shift[p] = np.maximum(shift[p], -unit_cost[p])
    return change, shift


class ValueChains:
    """The value-chain structure of a world and its monthly rules (built once per model).

    Attributes:
        buyer_producer: ``[B]`` producer index of each input buyer (firm ``n_user_firms + i``).
        input_rows: ``[Ri]`` purchase rows of input buyers; ``input_row_buyer`` their buyer index.
        limited: ``[P]`` whether the producer's capacity is limited by inputs.
        byproduct_goods: goods with ``byproduct_of``; ``host``/``recovery`` per good (``-1``/0 none).
        chain_goods: ``[G]`` goods with inputs or a host (their chain variables are recorded).
    """

    def __init__(self, world) -> None:
        w = world
        G, C = len(w.goods), len(w.countries)
        self.G, self.C = G, C
        self.n_user_firms = w.n_user_firms
        self.buyer_producer = w.firm_producer[w.n_user_firms :]
        buyer_of_row = w.row_firm - w.n_user_firms
        self.input_rows = np.flatnonzero(buyer_of_row >= 0)
        self.input_row_buyer = buyer_of_row[self.input_rows]
        self.input_row_producer = self.buyer_producer[self.input_row_buyer]
        # Rows grouped by producer, for the scarcest input (np.minimum.reduceat).
        order = np.argsort(self.input_row_producer, kind="stable")
        self._rows_by_producer = self.input_rows[order]
        prod_sorted = self.input_row_producer[order]
        starts = np.flatnonzero(np.r_[True, prod_sorted[1:] != prod_sorted[:-1]]) if order.size else np.array([], int)
        self._group_start = starts
        self._group_producer = prod_sorted[starts] if order.size else np.array([], dtype=np.int64)
        P = len(w.producer_name)
        self.limited = np.zeros(P, dtype=bool)
        self.limited[self._group_producer] = True
        self.host = w.byproduct_host
        self.recovery = w.byproduct_recovery
        self.byproduct_goods = np.flatnonzero(self.host >= 0)
        self.chain_goods = np.zeros(G, dtype=bool)
        self.chain_goods[np.unique(w.producer_good[self.limited]) if self.limited.any() else []] = True
        self.chain_goods[self.byproduct_goods] = True
        # Input goods used by producers (their input use and stock are recorded).
        self.input_goods = np.zeros(G, dtype=bool)
        self.input_goods[np.unique(w.row_good[self.input_rows])] = True
        # Recycled producers of a by-product are not tied to the host good's output.
        recycled = w.producer_recycled if w.producer_recycled.size else np.zeros(len(w.producer_good), dtype=bool)
        self._byproduct_producers = np.flatnonzero(np.isin(w.producer_good, self.byproduct_goods) & ~recycled)
        self._gc = w.producer_good * C + w.producer_country
        # Producers whose output inputs or host output can limit (see lost_output), fixed with the world.
        self._limitable = np.flatnonzero(self.limited | np.isin(w.producer_good, self.byproduct_goods))
        #: Host good's output per (good, country) last month (baseline at the start).
        self.host_output = w.baseline_output.copy()
        #: ``[P]`` change of each producer's unit cost from its inputs' prices against baseline (US$
        #: per unit of output), set from last month's input prices.
        self.cost_shift = np.zeros(P)
        self._price_change = np.zeros(self.input_rows.size)

    @staticmethod
    def present(world) -> bool:
        """Whether a world has any value chain (input buyers or by-products)."""
        return world.firm_producer.size > world.n_user_firms or bool((world.byproduct_host >= 0).any())

    def unit_costs(self, unit_cost: np.ndarray, full_capacity_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This month's unit cost and full-capacity price of every producer: a producer with inputs
        has its supply curve shifted by the change of its input costs (:meth:`update_input_costs`).
        """
        return unit_cost + self.cost_shift, full_capacity_price + self.cost_shift

    def update_input_costs(self, price_index, baseline_price_index, requirement, unit_cost, smoothing=1.0) -> None:
        """Input cost pass-through for next month: each producer's unit cost moves by
        ``sum_i a_i (E[P_i] - P_i0)``, its coefficients times the change of the input price it expects
        against baseline; never below zero cost. Expectations are adaptive like the rest of the
        model's (``smoothing`` = 1 - exp(-1 / ``model.expectation_memory_months``)): each month they
        move that share of the way to the delivered-price index just paid (where an input had no
        open origin, they stay). With ``smoothing`` = 1 the last month's price is passed on at once,
        and a chain whose producers plan on last month's prices and pass last month's input prices
        on turns into a cobweb (the magnets case: concentrate output alternating between full and zero).
        """
        if self.input_rows.size == 0:
            return
        self._price_change, self.cost_shift = input_cost_shift(
            price_index,
            baseline_price_index,
            requirement,
            self.input_rows,
            self.input_row_producer,
            self._price_change,
            smoothing,
            unit_cost,
        )

    def planned_output(self, model) -> np.ndarray:
        """``[B]`` output each input buyer's producer plans for: what it would offer at last month's
        domestic price with its full capacity (the reference price before the first month; the
        world import price where its country had no supply), so it buys inputs for the output the
        market asks for, not for what the inputs allowed last month.
        """
        w = model.world
        return planned_output_of(
            model._last_prices,
            model.world_import_price,
            model.capacity,
            w.unit_cost,
            w.full_capacity_price,
            self.cost_shift,
            w.supply_elasticity,
            self.buyer_producer,
            w.producer_good,
            w.producer_country,
        )

    def usable_capacity(self, capacity: np.ndarray, inventory: np.ndarray, requirement: np.ndarray) -> np.ndarray:
        """``[P]`` capacity the market sees this month: a producer's capacity limited by its input
        stock at the start of the month over the coefficient (the scarcest input), and a by-product's
        producers together limited in each country by the host good's output last month times the
        recovery rate (shared by capacity; recycled producers are not tied to it).
        """
        return usable_capacity_of(
            capacity,
            inventory,
            requirement,
            self._rows_by_producer,
            self._group_start,
            self._group_producer,
            self._byproduct_producers,
            self._gc,
            self.recovery,
            self.host,
            self.host_output,
            NEGLIGIBLE_CAPACITY_SHARE,
        )

    def record_host_output(self, producer_output: np.ndarray, producer_good, producer_country) -> None:
        """Keep this month's output per (good, country): next month's by-product limits."""
        if self.byproduct_goods.size:
            self.host_output = np.bincount(
                producer_good * self.C + producer_country, weights=producer_output, minlength=self.G * self.C
            ).reshape(self.G, self.C)

    def lost_output(self, model, result) -> np.ndarray:
        """``[P]`` output a producer could not make for lack of inputs (or of host output, for a
        by-product): what it would have offered at this month's domestic price with the share of its
        capacity usable at baseline (all of it, unless inputs or host output bound at the start), less
        what it offered with the capacity its inputs allowed. Where its country had no supply at all
        the good's highest domestic price elsewhere stands in (the reference price if none).
        """
        w = model.world
        return lost_output_of(
            result.price_domestic,
            w.reference_price,
            w.unit_cost,
            w.full_capacity_price,
            self.cost_shift,
            w.supply_elasticity,
            self._limitable,
            w.producer_good,
            w.producer_country,
            model.capacity_cleared,
            w.baseline_usable_share,
            model.usable_capacity,
            len(w.producer_name),
        )

    def produce(self, model, result, requirement, inventory_start, delivered, use, inventory, shortage):
        """The month's input use and stocks of producers' input buyers, written into the rows' ``use``,
        ``inventory`` (end of month) and ``shortage`` arrays (user firms' rows left as they are).

        A producer's sales used ``coefficient x sales`` of each input from the stock it held at the
        start of the month (sales never exceed the capacity that stock allowed); this month's
        deliveries join the stock for the next month. Its shortage of an input is the input its lost
        output would have used. Returns ``use, inventory, shortage, lost_output [P]``.
        """
        rows, p = self.input_rows, self.input_row_producer
        use_inputs(rows, p, result.producer_output, requirement, inventory_start, delivered, use, inventory)
        lost = self.lost_output(model, result)
        input_shortage(rows, p, lost, requirement, shortage)  # shortage[rows] = lost[p] * requirement[rows]
        return use, inventory, shortage, lost
