"""Compiled per-row kernels of the model's step (numba; pure functions over arrays, no Mesa).

Purchase rows are one user firm buying one good, with ``K`` sourcing slots each (origin ``-1`` for
an empty slot). These loops run every month over every row and slot, so they are compiled rather
than written as chains of NumPy expressions that each allocate a ``[R, K]`` temporary.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.market.kernel import supply_curve

# The entry points the model calls from Python (benchmarks/kernel_timing.py times exactly these);
# helpers that only kernels call (pairwise_sum, _pairwise_block, _nan_min, _nan_max,
# demand_scale_rows and purchase_elasticity_rows, which market_demand_rows calls, and reserve_signals,
# which reserve_month calls) are left out.
__all__ = [
    "price_index_rows",
    "adapt_sourcing",
    "group_sums",
    "international_totals",
    "project_capacity",
    "offtake_weights",
    "produce_rows",
    "spread_by_need",
    "nan_to_num",
    "mark_price_cap",
    "adapt_rows",
    "advance_projects",
    "plan_rows",
    "record_month",
    "coercer_month",
    "record_chain_month",
    "record_domestic_costs",
    "domestic_supply",
    "withheld_costs",
    "thrift_factor",
    "fit_margins",
    "market_demand_rows",
    "after_clearing",
    "rent_share_of_price",
    "update_expected_price",
    "producer_prices",
    "requirement_rows",
    "output_price_factor",
    "split_state_rows",
    "positive_flows",
    "production_tax_revenue",
    "reserve_month",
    "log_of",
    "scale_rows",
    "stock_bought",
    "take_state_purchases",
    "record_stocks_and_costs",
    "record_output_loss",
    "capacity_by_origin",
    "match_shares",
]


@njit(cache=True)
def price_index_rows(weights, prices, slot_origin, sigma):
    """CES delivered-price index of every row: ``(sum_k w_k p_k^(1-sigma))^(1/(1-sigma))``.

    NaN for a row with no open slot (positive weight and price).
    """
    n_rows, k_max = weights.shape
    out = np.empty(n_rows)
    for r in range(n_rows):
        s = sigma[r]
        a = 0.0
        for k in range(k_max):
            if slot_origin[r, k] >= 0 and weights[r, k] > 0.0 and prices[r, k] > 0.0:
                a += weights[r, k] * np.exp((1.0 - s) * np.log(prices[r, k]))
        out[r] = np.exp(np.log(a) / (1.0 - s)) if a > 0.0 else np.nan
    return out


@njit(cache=True)
def demand_scale_rows(weights, price_pow_1ms, price_pow_ms, slot_origin, sigma, log_reference_price, elasticity):
    """Factor turning a row's planned tonnes into the kernel's demand input.

    ``price_pow_1ms`` and ``price_pow_ms`` are the slots' reference delivered prices raised to
    ``1 - sigma`` and ``-sigma``, ``log_reference_price`` the log of each row's reference price
    (:func:`log_of`; all constant over a run, so computed once). With CES sourcing the
    kernel delivers ``sum_k w_k p_k^-sigma P^sigma X`` tonnes for composite demand
    ``X = q (P / reference)^-elasticity``; the factor is the ``q`` per planned tonne.
    """
    n_rows, k_max = weights.shape
    out = np.empty(n_rows)
    for r in range(n_rows):
        s = sigma[r]
        a = 0.0
        tonnes = 0.0
        for k in range(k_max):
            if slot_origin[r, k] >= 0 and weights[r, k] > 0.0:
                a += weights[r, k] * price_pow_1ms[r, k]
                tonnes += weights[r, k] * price_pow_ms[r, k]
        if a <= 0.0:
            out[r] = 0.0
            continue
        log_p = np.log(a) / (1.0 - s)
        tonnes *= np.exp(s * log_p)
        out[r] = np.exp(elasticity[r] * (log_p - log_reference_price[r])) / tonnes
    return out


@njit(cache=True)
def adapt_sourcing(
    weights,
    risk,
    affinity,
    contracted,
    slot_origin,
    row_good,
    row_destination,
    ban_intensity,
    order_blocked,
    rent_share,
    capacity,
    risk_decay,
    risk_aversion,
    rate,
):
    """One month of sourcing adaptation, in place.

    This month's hit on a slot is the share of its edge that is blocked (``ban_intensity``), the
    share of the row's own order on the slot that was refused (``order_blocked [R, K]``: export
    licences) or, for a foreign origin, the quota rent's share of the origin's export price
    (``rent_share [G, C]``), whichever is largest;
    perceived risk becomes ``max(hit, risk * risk_decay)``. The target weight of a slot is
    ``affinity x capacity of the origin x exp(-risk_aversion x risk)``, normalised, scaled to leave
    room for the weights reserved by offtake contracts (``contracted``), which are added on top.
    Weights move a share ``rate`` of the way to the target and are renormalised over the row's
    slots; a row whose origins all lack capacity keeps its weights.
    """
    n_rows, k_max = weights.shape
    target = np.empty(k_max)
    for r in range(n_rows):
        g = row_good[r]
        d = row_destination[r]
        total = 0.0
        reserved = 0.0
        for k in range(k_max):
            o = slot_origin[r, k]
            if o < 0:
                risk[r, k] = 0.0
                target[k] = 0.0
                continue
            hit = ban_intensity[g, o, d]
            if order_blocked[r, k] > hit:
                hit = order_blocked[r, k]
            if o != d and rent_share[g, o] > hit:
                hit = rent_share[g, o]
            v = risk[r, k] * risk_decay
            risk[r, k] = hit if hit > v else v
            # no perceived risk: exp(-0.0) is exactly 1 (skipped, the result the same)
            aversion = 1.0 if risk[r, k] == 0.0 else np.exp(-risk_aversion * risk[r, k])
            target[k] = affinity[r, k] * capacity[g, o] * aversion
            total += target[k]
            reserved += contracted[r, k]
        if total <= 0.0:
            continue
        free = 1.0 - reserved
        if free < 0.0:
            free = 0.0
        norm = 0.0
        for k in range(k_max):
            if slot_origin[r, k] < 0:
                weights[r, k] = 0.0
                continue
            t = target[k] / total * free + contracted[r, k]
            weights[r, k] = (1.0 - rate) * weights[r, k] + rate * t
            norm += weights[r, k]
        if norm > 0.0:
            for k in range(k_max):
                weights[r, k] /= norm


@njit(cache=True)
def group_sums(group, values, n_groups):
    """Sums of each array in ``values`` (a tuple of equally long 1-D arrays) by ``group``.

    Returns ``[len(values), n_groups]``; element by element in index order, like
    ``np.bincount(group, weights=v, minlength=n_groups)`` for each ``v``.
    """
    n_values = len(values)
    out = np.zeros((n_values, n_groups))
    for j in range(n_values):
        v = values[j]
        for i in range(group.size):
            out[j, group[i]] += v[i]
    return out


@njit(cache=True)
def nan_to_num(values):
    """``np.nan_to_num(values)`` as a new array (NaN to 0, infinities to the largest finite floats),
    without the ~10 us of NumPy's Python wrapper (the model calls it on every month's price arrays,
    which hold NaN where a country has no supply).
    """
    flat_in = values.ravel()
    flat_out = np.empty(flat_in.size)
    for i in range(flat_in.size):
        flat_out[i] = _finite(flat_in[i])
    return flat_out.reshape(values.shape)


@njit(cache=True)
def international_totals(edge_good, edge_origin, edge_destination, edge_flow, edge_price, n_goods, n_countries):
    """Trade between different countries, from the clearing's edges.

    Returns the quantity and value (flow x price, a NaN price counting as 0) of each good's
    international trade ``[G]`` and the quantity each country imports of each good ``[G, C]``.
    """
    quantity = np.zeros(n_goods)
    value = np.zeros(n_goods)
    imports = np.zeros((n_goods, n_countries))
    for e in range(edge_flow.size):
        o = edge_origin[e]
        d = edge_destination[e]
        if o == d:
            continue
        g = edge_good[e]
        f = edge_flow[e]
        p = _finite(edge_price[e])  # as np.nan_to_num
        quantity[g] += f
        value[g] += f * p
        imports[g, d] += f
    return quantity, value, imports


@njit(cache=True)
def project_capacity(capacity, started, project_start, build_lag, nameplate, ramp_up, step):
    """Capacity of every started project at ``step``: nameplate x the share of its linear ramp,
    which starts ``build_lag`` months after the project (in place).
    """
    for p in range(capacity.size):
        if not started[p]:
            continue
        first_output = project_start[p] + build_lag[p]
        ramp = ramp_up[p]
        if step < first_output:
            share = 0.0
        elif ramp <= 0:
            share = 1.0
        else:
            share = min(1.0, (step - first_output + 1) / ramp)
        capacity[p] = nameplate[p] * share


@njit(cache=True)
def offtake_weights(
    weights_shape,
    project,
    buyer,
    share,
    capacity,
    producer_good,
    producer_country,
    row_good,
    row_destination,
    slot_origin,
    use,
):
    """Weights reserved by offtake contracts ``[R, K]`` (capped at 1).

    Contract ``i`` gives ``buyer[i]`` a ``share[i]`` of project ``project[i]``'s current capacity:
    as a share of the buyer country's use of the good (its rows' ``use``, summed as ``np.sum``
    does), added to the weight of the slot of the project's country in each of those rows.
    Contracts of a project without capacity, or of a buyer without use, reserve nothing.
    """
    n_rows, k_max = weights_shape
    out = np.zeros((n_rows, k_max))
    rows = np.empty(n_rows, dtype=np.int64)
    buf = np.empty(n_rows)
    for i in range(project.size):
        p = project[i]
        if capacity[p] <= 0.0:
            continue
        g = producer_good[p]
        o = producer_country[p]
        d = buyer[i]
        n = 0
        for r in range(n_rows):
            if row_good[r] == g and row_destination[r] == d:
                rows[n] = r
                buf[n] = use[r]
                n += 1
        total = pairwise_sum(buf, 0, n)
        if total <= 0.0:
            continue
        contracted = min(1.0, share[i] * capacity[p] / total)
        for j in range(n):
            r = rows[j]
            k = 0
            for kk in range(k_max):  # first slot of the project's country (slot 0 if none, as np.argmax)
                if slot_origin[r, kk] == o:
                    k = kk
                    break
            out[r, k] += contracted
    for r in range(n_rows):
        for k in range(k_max):
            if out[r, k] > 1.0:
                out[r, k] = 1.0
    return out


@njit(cache=True)
def _pairwise_block(a, lo, n):
    """NumPy's pairwise-sum leaf (``n <= 128``): eight partial sums, then the remainder."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo+n]`` in NumPy's order (``np.add.reduce`` on a contiguous float64 array:
    halves split at a multiple of 8 down to blocks of at most 128, each summed with eight partial
    sums), so that results match ``np.sum`` bit for bit.

    Written without recursion (numba's on-disk cache does not handle recursive functions): the
    halves are evaluated left before right from an explicit stack, and added as NumPy adds them.
    """
    # NumPy adds the pairwise sum to the reduction's identity, 0.0: "0.0 +" turns an all-negative-zero
    # sum of 8 or more terms into 0.0, as np.sum gives it, and changes nothing else.
    if n <= 128:
        return 0.0 + _pairwise_block(a, lo, n)
    task_lo = np.empty(128, dtype=np.int64)
    task_n = np.empty(128, dtype=np.int64)
    task_split = np.zeros(128, dtype=np.bool_)
    partial = np.empty(128)
    sp = 0
    vp = 0
    task_lo[0] = lo
    task_n[0] = n
    task_split[0] = False
    sp = 1
    while sp > 0:
        top = sp - 1
        m = task_n[top]
        if m <= 128:
            partial[vp] = _pairwise_block(a, task_lo[top], m)
            vp += 1
            sp -= 1
        elif task_split[top]:  # both halves done: left + right
            partial[vp - 2] = partial[vp - 2] + partial[vp - 1]
            vp -= 1
            sp -= 1
        else:
            task_split[top] = True
            n2 = m // 2
            n2 -= n2 % 8
            l0 = task_lo[top]
            task_lo[sp], task_n[sp], task_split[sp] = l0 + n2, m - n2, False  # right half, second
            task_lo[sp + 1], task_n[sp + 1], task_split[sp + 1] = l0, n2, False  # left half, first
            sp += 2
    return 0.0 + partial[0]


@njit(cache=True)
def _nan_min(a, b):
    """``np.minimum`` for two floats (NaN if either is NaN)."""
    if a != a or b != b:
        return np.nan
    return a if a <= b else b


@njit(cache=True)
def _nan_max(a, b):
    """``np.maximum`` for two floats (NaN if either is NaN)."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@njit(cache=True)
def produce_rows(
    price_factor, baseline_output, inventory, delivered, requirement, row_firm, firm_row_order, firm_row_start
):
    """One month of Leontief production by every user firm.

    A firm plans its baseline output cut by the lowest ``price_factor`` of its rows (never raised
    above baseline); output is then limited by the scarcest input, ``(inventory + delivered) /
    requirement`` over its rows. Rows are grouped by firm through ``firm_row_order`` (starts at
    ``firm_row_start``; every firm has a row). Returns ``planned_output [F]``, ``output [F]``, and per
    row ``use``, the inventory left (``inventory + delivered - use``, at least 0) and the
    ``shortage`` (requirement for planned output not covered by inventory and deliveries).
    """
    n_firms = baseline_output.size
    n_rows = requirement.size
    planned = np.empty(n_firms)
    output = np.empty(n_firms)
    for f in range(n_firms):
        lo = firm_row_start[f]
        hi = firm_row_start[f + 1] if f + 1 < n_firms else n_rows
        r = firm_row_order[lo]
        pf = price_factor[r]
        req = requirement[r]
        possible = (inventory[r] + delivered[r]) / req if req > 0.0 else np.inf
        for i in range(lo + 1, hi):
            r = firm_row_order[i]
            pf = _nan_min(pf, price_factor[r])
            req = requirement[r]
            possible = _nan_min(possible, (inventory[r] + delivered[r]) / req if req > 0.0 else np.inf)
        planned[f] = baseline_output[f] * _nan_min(pf, 1.0)
        output[f] = _nan_min(planned[f], possible)
    use = np.empty(n_rows)
    left = np.empty(n_rows)
    shortage = np.empty(n_rows)
    for r in range(n_rows):
        f = row_firm[r]
        available = inventory[r] + delivered[r]
        use[r] = requirement[r] * output[f]
        left[r] = _nan_max(available - use[r], 0.0)
        shortage[r] = _nan_max(requirement[r] * planned[f] - available, 0.0)
    return planned, output, use, left, shortage


@njit(cache=True)
def spread_by_need(by_group, row_group, need):
    """Spread a quantity per (good, country) group (flattened ``[G * C]``) over the group's rows in
    proportion to their ``need`` (rows of a group without need get nothing).
    """
    total = np.zeros(by_group.size)
    for r in range(need.size):
        total[row_group[r]] += need[r]
    out = np.empty(need.size)
    for r in range(need.size):
        t = total[row_group[r]]
        share = need[r] / t if t > 0.0 else 0.0
        out[r] = by_group[row_group[r]] * share
    return out


@njit(cache=True)
def mark_price_cap(marked, price_domestic, price_export, level, edge_good, edge_origin, edge_destination, edge_flow):
    """Set ``marked[g, d]`` (``[G, C]``, booleans) where destination ``d`` bought good ``g`` this month
    (a positive flow) from an origin whose domestic or export price is at least ``level[g]``, prices
    taken as ``np.nan_to_num`` makes them (NaN as 0, infinities as the largest finite floats, so an
    infinite cap is never reached).
    """
    for e in range(edge_flow.size):
        if not edge_flow[e] > 0.0:
            continue
        g = edge_good[e]
        o = edge_origin[e]
        pd = _finite(price_domestic[g, o])
        pe = _finite(price_export[g, o])
        if pd >= level[g] or pe >= level[g]:
            marked[g, edge_destination[e]] = True


@njit(cache=True)
def adapt_rows(
    price_index,
    baseline_price_index,
    rationed,
    demand,
    scarcity,
    scarcity_weight,
    expectation,
    expectation_weight,
    requirement_multiplier,
    substitution_rate,
    substitution_floor,
):
    """A month's learning of every purchase row, in place (``CoercionModel._adapt``).

    Scarcity signal: the log rise of the row's delivered price index over baseline (at least 0; 1
    where the row got no price, a NaN index) plus its rationed share of demand, remembered
    exponentially (``scarcity += scarcity_weight * (signal - scarcity)``). Expected price index: this
    month's index (or the old expectation where NaN) remembered with ``expectation_weight``.
    Requirement multiplier: lowered by ``substitution_rate`` times the expected index's log excess
    over baseline (endogenous substitution), never below ``substitution_floor``.
    """
    for r in range(price_index.size):
        p = price_index[r]
        base = baseline_price_index[r]
        finite = np.isfinite(p)
        if finite:
            rise = np.log(p / base)
            if not rise > 0.0:
                rise = 0.0 if rise == rise else rise  # np.maximum(nan, 0) is nan
        else:
            rise = 1.0
        share = rationed[r] / demand[r] if demand[r] > 0.0 else 0.0
        scarcity[r] += scarcity_weight * ((rise + share) - scarcity[r])
        seen = p if finite else expectation[r]
        expectation[r] += expectation_weight * (seen - expectation[r])
        excess = np.log(expectation[r] / base)
        if not excess > 0.0:
            excess = 0.0 if excess == excess else excess
        m = requirement_multiplier[r] * (1.0 - substitution_rate * excess)
        requirement_multiplier[r] = m if (m >= substitution_floor or m != m) else substitution_floor


@njit(cache=True)
def advance_projects(
    step,
    never,
    is_project,
    project_start,
    signal_months,
    expected_price,
    producer_good,
    hurdle_price,
    earliest_start,
    committed_start,
    decision_months,
    capacity,
    build_lag,
    nameplate,
    ramp_up,
    lag,
    spend_while_building,
    producer_gc,
    investment,
):
    """Capacity projects' month, in place (``CoercionModel._adapt``).

    A project not yet started counts the months its good's expected price has stood at or above its
    hurdle price (from its earliest start; the count restarts at 0 when the price falls back) and
    starts in month ``step`` once the count reaches ``decision_months``, or on its committed start
    (financing), whichever is first; ``never`` marks a project not started. Then every started
    project's capacity follows its build lag and ramp (:func:`project_capacity`) and the capital
    spending of the projects being built is summed by (good, country) into ``investment`` (flat
    ``[G * C]``, overwritten), producer by producer in index order.
    """
    n = is_project.size
    for p in range(n):
        if is_project[p] and project_start[p] == never:
            if expected_price[producer_good[p]] >= hurdle_price[p] and step >= earliest_start[p]:
                signal_months[p] += 1
            else:
                signal_months[p] = 0
            if signal_months[p] >= decision_months:
                project_start[p] = step
            if committed_start[p] <= step:
                project_start[p] = min(committed_start[p], step)
        else:
            signal_months[p] = 0
    for i in range(investment.size):
        investment[i] = 0.0
    for p in range(n):
        if not is_project[p] or project_start[p] == never:
            continue
        first_output = project_start[p] + build_lag[p]
        ramp = ramp_up[p]
        if step + 1 < first_output:
            share = 0.0
        elif ramp <= 0:
            share = 1.0
        else:
            share = min(1.0, (step + 1 - first_output + 1) / ramp)
        capacity[p] = nameplate[p] * share
        if step >= project_start[p] and step < project_start[p] + lag[p]:
            investment[producer_gc[p]] += spend_while_building[p]


@njit(cache=True)
def plan_rows(
    need,
    inventory,
    weights,
    risk,
    scarcity,
    inventory_months,
    extra_cover,
    precaution,
    precaution_max_multiple,
    inventory_adjustment_months,
):
    """Each purchase row's planned purchase for the month (``CoercionModel._plan``): its ``need`` plus
    a share ``1 / inventory_adjustment_months`` of the gap between its target stock and its
    ``inventory`` (never negative). The target covers ``inventory_months`` of need, raised by
    precaution: times ``min(precaution_max_multiple, 1 + precaution * alarm)``, where the alarm is the
    larger of the row's remembered scarcity and the supply risk of its sourcing (the weighted sum of
    its origins' perceived risk); plus the months of ``extra_cover`` a lever pays for.
    """
    n_rows, k_max = weights.shape
    out = np.empty(n_rows)
    weighted = np.empty(k_max)
    for r in range(n_rows):
        for k in range(k_max):
            weighted[k] = weights[r, k] * risk[r, k]
        supply_risk = pairwise_sum(weighted, 0, k_max)  # np.sum's order, for any number of slots
        alarm = scarcity[r] if scarcity[r] >= supply_risk or scarcity[r] != scarcity[r] else supply_risk
        multiple = 1.0 + precaution * alarm
        if not multiple <= precaution_max_multiple:
            multiple = precaution_max_multiple if multiple == multiple else multiple
        cover = inventory_months[r] * multiple + extra_cover[r]
        q = need[r] + (cover * need[r] - inventory[r]) / inventory_adjustment_months
        out[r] = q if (q >= 0.0 or q != q) else 0.0
    return out


@njit(cache=True)
def record_month(
    t,
    gc_of_row,
    row_value_added,
    delivered,
    expenditure,
    demand,
    shortage,
    rationed,
    inventory,
    requirement,
    base_need,
    producer_gc,
    capacity,
    producer_output,
    offered,
    price_domestic,
    price_export,
    quota_rent,
    out_price_domestic,
    out_price_export,
    out_quota_rent,
    out_price_paid,
    out_demand,
    out_delivered,
    out_shortage,
    out_rationed,
    out_inventory,
    out_capacity,
    out_production,
    out_capacity_offered,
    out_requirement_index,
):
    """Month ``t`` of the recorder's (good, country) variables (``sim.reporting.recording.Recorder``),
    written into the ``out_*`` arrays ``[T, G, C]`` at ``t``.

    Prices as cleared (the quota rent NaN where the country has no supply); purchase rows' demand,
    deliveries, shortage, rationing and stocks summed by (good, destination) row by row in index
    order (``gc_of_row``, flat ``g * C + c``), the price paid their spending over their deliveries
    and the requirement index their requirement for this month's output (``requirement`` per unit of
    value added x ``row_value_added``) over ``base_need`` (NaN where nothing was delivered or nothing
    was needed at baseline); producers' capacity, output and offered capacity summed by (good, country).
    """
    n_goods, n_countries = price_domestic.shape
    n = n_goods * n_countries
    sums = np.zeros((7, n))
    for r in range(gc_of_row.size):
        i = gc_of_row[r]
        sums[0, i] += delivered[r]
        sums[1, i] += expenditure[r]
        sums[2, i] += demand[r]
        sums[3, i] += shortage[r]
        sums[4, i] += rationed[r]
        sums[5, i] += inventory[r]
        sums[6, i] += requirement[r] * row_value_added[r]
    made = np.zeros((3, n))
    for p in range(producer_gc.size):
        i = producer_gc[p]
        made[0, i] += capacity[p]
        made[1, i] += producer_output[p]
        made[2, i] += offered[p]
    for g in range(n_goods):
        for c in range(n_countries):
            i = g * n_countries + c
            pd = price_domestic[g, c]
            out_price_domestic[t, g, c] = pd
            out_price_export[t, g, c] = price_export[g, c]
            out_quota_rent[t, g, c] = quota_rent[g, c] if np.isfinite(pd) else np.nan
            out_delivered[t, g, c] = sums[0, i]
            out_price_paid[t, g, c] = sums[1, i] / sums[0, i] if sums[0, i] > 0.0 else np.nan
            out_demand[t, g, c] = sums[2, i]
            out_shortage[t, g, c] = sums[3, i]
            out_rationed[t, g, c] = sums[4, i]
            out_inventory[t, g, c] = sums[5, i]
            out_requirement_index[t, g, c] = sums[6, i] / base_need[i] if base_need[i] > 0.0 else np.nan
            out_capacity[t, g, c] = made[0, i]
            out_production[t, g, c] = made[1, i]
            out_capacity_offered[t, g, c] = made[2, i]


@njit(cache=True)
def _finite(v):
    """A price as ``np.nan_to_num`` makes it: NaN as 0, infinities as the largest finite floats."""
    big = np.finfo(np.float64).max
    return 0.0 if np.isnan(v) else min(max(v, -big), big)


@njit(cache=True)
def coercer_month(exports, price_export, price_paid, base_paid, delivered):
    """The coercer's export revenue this month and its firms' extra spending against baseline prices.

    ``exports`` and ``price_export`` are the coercer's exports and export prices per good, ``price_paid``
    the unit value its firms paid, ``base_paid`` that unit value in the first month and ``delivered``
    what its firms received (all ``[G]``). Prices count as ``np.nan_to_num`` makes them and NaN
    products as 0, summed in NumPy's order (:func:`pairwise_sum`), so the results are ``np.nansum``'s.
    """
    n = exports.size
    revenue = np.empty(n)
    extra = np.empty(n)
    for g in range(n):
        v = exports[g] * _finite(price_export[g])
        revenue[g] = 0.0 if np.isnan(v) else v
        x = (_finite(price_paid[g]) - base_paid[g]) * delivered[g]
        extra[g] = 0.0 if np.isnan(x) else x
    return pairwise_sum(revenue, 0, n), pairwise_sum(extra, 0, n)


@njit(cache=True)
def record_chain_month(
    t,
    producer_gc,
    usable_capacity,
    lost_output,
    chain_goods,
    input_goods,
    input_rows,
    gc_of_row,
    input_use,
    inventory,
    out_usable_capacity,
    out_lost_output,
    out_input_use,
    out_input_inventory,
):
    """Month ``t`` of the value-chain variables of the recorder (``[T, G, C]`` outputs): producers'
    usable capacity and output lost for lack of inputs summed by (good, country) for the chain goods,
    and the input buyers' use and stock of each input good by (good, country); NaN for the other
    goods. Sums run in index order (as ``np.bincount``).
    """
    n_goods, n_countries = out_usable_capacity.shape[1], out_usable_capacity.shape[2]
    n = n_goods * n_countries
    made = np.zeros((2, n))
    for p in range(producer_gc.size):
        made[0, producer_gc[p]] += usable_capacity[p]
        made[1, producer_gc[p]] += lost_output[p]
    used = np.zeros((2, n))
    for j in range(input_rows.size):
        r = input_rows[j]
        used[0, gc_of_row[r]] += input_use[r]
        used[1, gc_of_row[r]] += inventory[r]
    for g in range(n_goods):
        for c in range(n_countries):
            i = g * n_countries + c
            out_usable_capacity[t, g, c] = made[0, i] if chain_goods[g] else np.nan
            out_lost_output[t, g, c] = made[1, i] if chain_goods[g] else np.nan
            out_input_use[t, g, c] = used[0, i] if input_goods[g] else np.nan
            out_input_inventory[t, g, c] = used[1, i] if input_goods[g] else np.nan


@njit(cache=True)
def record_domestic_costs(t, cost, positions, imposer, kind_of, total_out, by_kind_out):
    """Month ``t``'s costs of the dated domestic instruments (rows ``positions`` of ``cost``
    ``[instruments, T]``) summed by imposing country into ``total_out[t]`` (``[T, C]``) and by instrument
    kind and imposer into ``by_kind_out[:, t]`` (``[kinds, T, C]``), instrument by instrument in order
    (as ``np.bincount``), in place.
    """
    n_kinds, _, n_countries = by_kind_out.shape
    for c in range(n_countries):
        total_out[t, c] = 0.0
        for k in range(n_kinds):
            by_kind_out[k, t, c] = 0.0
    for j in range(positions.size):
        i = positions[j]
        x = cost[i, t]
        total_out[t, imposer[i]] += x
        by_kind_out[kind_of[i], t, imposer[i]] += x


@njit(cache=True, error_model="numpy")  # taxes whose rates add up to 1 divide by zero: inf, as in NumPy
def domestic_supply(
    capacity, capacity_share, output_cap, unit_cost, full_capacity_price, supply_elasticity, tax_per_unit, tax_rate
):
    """The supply curves the market sees under this month's domestic instruments, per producer.

    A capacity share ``s`` scales the curve (capacity ``s x capacity``); an output cap ``Q`` below that
    cuts the curve at ``Q``: capacity ``Q`` and full-capacity price ``c0 + (f - c0) (Q / cap) ** (1 / e)``,
    the curve below ``Q`` unchanged (a cap of zero leaves no capacity and the price as it was); a tax
    ``t`` per unit and ``r`` ad valorem raises unit cost and full-capacity price to ``(x + t) / (1 - r)``.

    Returns ``(capacity, full_capacity_price_before_tax, unit_cost, full_capacity_price)``, new arrays.
    """
    n = capacity.size
    cap = np.empty(n)
    uncut_full = np.empty(n)
    cost = np.empty(n)
    full = np.empty(n)
    for p in range(n):
        c = capacity[p] * capacity_share[p]
        f = full_capacity_price[p]
        q = output_cap[p]
        if np.isfinite(q) and q < c:
            ratio = q / c if c > 0.0 else 0.0
            if ratio > 0.0:
                c0 = unit_cost[p]
                f = c0 + (f - c0) * ratio ** (1.0 / supply_elasticity[p])
                c = q
            else:
                c = 0.0
        cap[p] = c
        uncut_full[p] = f
        keep = 1.0 - tax_rate[p]
        cost[p] = (unit_cost[p] + tax_per_unit[p]) / keep
        full[p] = (f + tax_per_unit[p]) / keep
    return cap, uncut_full, cost, full


@njit(cache=True)
def withheld_costs(
    price, capacity, capacity_now, unit_cost, full_capacity_price, full_capacity_price_now, supply_elasticity,
    producers, withheld, bounds,
):  # fmt: skip
    """The margin each capacity measure cost this month (US$): the sales the measures prevented at
    the domestic ``price`` (the nominal curve's offer less the offer under this month's terms), times
    the margin over unit cost, split over the measures acting on a producer by the capacity each
    withheld. Measure ``i`` acts on ``producers[bounds[i]:bounds[i + 1]]`` and withheld
    ``withheld[bounds[i]:bounds[i + 1]]``; one cost per measure, its terms summed in NumPy's order.
    """
    n = price.size
    total_withheld = np.zeros(n)
    for j in range(producers.size):
        total_withheld[producers[j]] += withheld[j]
    nominal = supply_curve(price, capacity, unit_cost, full_capacity_price, supply_elasticity)
    after = supply_curve(price, capacity_now, unit_cost, full_capacity_price_now, supply_elasticity)
    per_unit = np.zeros(n)
    for p in range(n):
        if total_withheld[p] > 0.0:
            margin = max(price[p] - unit_cost[p], 0.0)
            per_unit[p] = max(nominal[p] - after[p], 0.0) * margin / total_withheld[p]
    terms = np.empty(producers.size)
    for j in range(producers.size):
        terms[j] = per_unit[producers[j]] * withheld[j]
    costs = np.empty(bounds.size - 1)
    for i in range(bounds.size - 1):  # each measure's terms summed in NumPy's order
        costs[i] = pairwise_sum(terms, bounds[i], bounds[i + 1] - bounds[i])
    return costs


@njit(cache=True)
def reserve_signals(shortage, rationed, first_price, last_price):
    """A reserve's release signals for one country, per good (``[G]`` each): last month's gap,
    shortage plus rationing (NaN counted as 0, infinities as the largest finite floats, as
    ``np.nan_to_num``), and the price paid last month over the first month's (1 unless both are
    finite and the first is positive).
    """
    n = shortage.size
    gap = np.empty(n)
    ratio = np.ones(n)
    for g in range(n):
        gap[g] = _finite(shortage[g]) + _finite(rationed[g])
        p0, p1 = first_price[g], last_price[g]
        if np.isfinite(p0) and np.isfinite(p1) and p0 > 0.0:
            ratio[g] = p1 / p0
    return gap, ratio


#: ``rule`` of :func:`reserve_month`: release on a shortage, on a price rise, or on either.
RESERVE_ON_SHORTAGE, RESERVE_ON_PRICE, RESERVE_ON_EITHER = 0, 1, 2


@njit(cache=True)
def reserve_month(
    goods,
    stock,
    release,
    delivery,
    order,
    policy_revenue,
    country,
    base_use,
    target,
    held_mask,
    reference_price,
    shortage,
    rationed,
    first_price,
    last_price,
    signals,
    rule,
    release_price_ratio,
    max_release_rate,
    refill_below,
    refill_price_ratio,
    refill_rate,
):
    """One country's strategic reserve in one month (``sim.policy.levers.Stockpile.act``), good by good.

    ``goods`` are the goods it holds; ``stock``, ``release``, ``delivery``, ``order``, ``base_use``,
    ``target`` and ``held_mask`` its ``[G]`` columns (the first four written in place). With
    ``signals`` (from the second month), last month's gap and price ratio come from
    :func:`reserve_signals`; before, there is no gap and the ratio is 1. A triggered good releases
    ``min(stock, max_release_rate x target, need)`` (need: last month's gap under the shortage rule or a
    shortage under ``either``, else a month of baseline use), sold at last month's price paid (the
    reference price where that is NaN, infinities as the largest floats) into
    ``policy_revenue[country]``; an untriggered good below ``refill_below`` x target at a price ratio of
    at most ``refill_price_ratio`` orders ``min(refill_rate x target, target - stock)``. Returns whether
    the reserve acted and the value of what it holds at reference prices (summed in NumPy's order).
    """
    n_goods = stock.shape[0]
    if signals:
        gap, ratio = reserve_signals(shortage, rationed, first_price, last_price)
    else:
        gap, ratio = np.zeros(n_goods), np.ones(n_goods)
    acted = False
    for i in range(goods.shape[0]):
        g = goods[i]
        have = stock[g]
        use = base_use[g]
        short = gap[g] > 1e-9 * max(use, 1e-300)
        pricey = ratio[g] >= release_price_ratio
        if rule == RESERVE_ON_SHORTAGE:
            trigger = short
        elif rule == RESERVE_ON_PRICE:
            trigger = pricey
        else:
            trigger = short or pricey
        goal = target[g]
        if trigger and have > 0:
            need = gap[g] if (rule == RESERVE_ON_SHORTAGE or (rule == RESERVE_ON_EITHER and short)) else use
            q = min(have, max_release_rate * goal, need)
            if q > 0:
                acted = True
                stock[g] -= q
                release[g] += q
                delivery[g] += q
                last = last_price[g] if signals else reference_price[g]
                last = reference_price[g] if np.isnan(last) else _finite(last)
                policy_revenue[country] += q * last
        elif have < refill_below * goal and ratio[g] <= refill_price_ratio:
            buy = min(refill_rate * goal, goal - have)
            if buy > 0:
                acted = True
                order[g] += buy
    value = np.empty(n_goods)
    for g in range(n_goods):
        value[g] = stock[g] * (1.0 if held_mask[g] else 0.0) * reference_price[g]
    return acted, pairwise_sum(value, 0, n_goods)


@njit(cache=True, error_model="numpy")  # a zero baseline price index gives inf or NaN, as in NumPy
def thrift_factor(multiplier, expected_index, baseline_index, row_eps, thrift, floor):
    """Each row's requirement factor with long-run thrift (``CoercionModel._requirement_factor``):
    ``max(floor, multiplier x (E / P0) ** -(thrift x eps))`` for an expected price index ``E`` above
    baseline ``P0``, ``max(floor, multiplier)`` otherwise.
    """
    out = np.empty(multiplier.size)
    for r in range(multiplier.size):
        excess = np.maximum(np.log(expected_index[r] / baseline_index[r]), 0.0)
        out[r] = np.maximum(floor, multiplier[r] * np.exp(-thrift * row_eps[r] * excess))
    return out


@njit(cache=True)
def purchase_elasticity_rows(need, inventory, row_eps, deferral_elasticity, max_cover_months):
    """Each row's short-run price elasticity of purchases (in :func:`market_demand_rows`):
    the good's elasticity of use plus ``deferral_elasticity`` x the months of need its stock covers,
    capped at ``max_cover_months`` (no cover where nothing is needed).
    """
    out = np.empty(need.size)
    for r in range(need.size):
        cover = inventory[r] / need[r] if need[r] > 0.0 else 0.0
        out[r] = row_eps[r] + deferral_elasticity * np.minimum(cover, max_cover_months)
    return out


@njit(cache=True)
def fit_margins(m, weight, col, pos, tol, max_iterations):
    """Iterative proportional fitting (Sinkhorn) of ``m`` ``[n, K]`` in place, as
    :func:`sim.world.scenario.match_margins` describes: columns ``pos`` scaled to the sums ``col``,
    then rows to the sums ``weight`` (a row summing to zero is set to zero), until every column in
    ``pos`` is within a relative ``tol`` of its target (or ``max_iterations``). Sums are taken in
    NumPy's order (columns row after row, each row's entries pairwise) as the NumPy loop this
    replaces did. Returns the iterations used.
    """
    n, k_max = m.shape
    cs = np.zeros(k_max)
    for i in range(n):
        for k in range(k_max):
            cs[k] += m[i, k]
    for it in range(max_iterations):
        for k in range(k_max):
            if pos[k]:
                f = col[k] / cs[k]
                for i in range(n):
                    m[i, k] *= f
        for i in range(n):
            rs = pairwise_sum(m[i], 0, k_max)
            f = weight[i] / rs if rs > 0.0 else 0.0
            for k in range(k_max):
                m[i, k] *= f
        # The column sums after this sweep: the stopping rule's, and the next sweep's starting point.
        for k in range(k_max):
            cs[k] = 0.0
        for i in range(n):
            for k in range(k_max):
                cs[k] += m[i, k]
        fitted = True
        for k in range(k_max):
            if pos[k] and not (abs(cs[k] / col[k] - 1.0) <= tol):
                fitted = False
                break
        if fitted:
            return it + 1
    return max_iterations


@njit(cache=True, error_model="numpy")  # a firm without use divides 0 by 0: NaN, as in NumPy
def match_shares(shares, use, target, tol, max_iterations):
    """:func:`sim.world.scenario.match_margins` compiled: the firms' shares ``[n, K]`` fitted to the use-weighted
    margins ``target`` (:func:`fit_margins`), with each step computed as its NumPy expressions did (sums in
    NumPy's order, :func:`pairwise_sum`). Returns a new array.
    """
    n, k_max = shares.shape
    pos = np.empty(k_max, dtype=np.bool_)
    kept = np.empty(k_max)
    n_pos = 0
    for k in range(k_max):
        pos[k] = target[k] > 0
        kept[k] = target[k] if pos[k] else 0.0
        n_pos += 1 if pos[k] else 0
    total = pairwise_sum(kept, 0, k_max)
    denominator = 1e-300 if 1e-300 > total else total  # max(total, 1e-300), as Python's max
    normalised = np.empty(k_max)
    for k in range(k_max):
        normalised[k] = kept[k] / denominator
    out = np.zeros((n, k_max))
    if n == 0 or n_pos <= 1:
        for i in range(n):
            for k in range(k_max):
                if pos[k]:
                    out[i, k] = 1.0
        return out
    weight = np.empty(n)
    for i in range(n):
        weight[i] = use[i] if use[i] > 0 else 0.0
    weight_sum = pairwise_sum(weight, 0, n)
    if weight_sum <= 0:
        for i in range(n):
            weight[i] = 1.0
        weight_sum = pairwise_sum(weight, 0, n)
    m = np.empty((n, k_max))
    for i in range(n):
        for k in range(k_max):
            mixed = (1.0 - 1e-6) * shares[i, k] + 1e-6 * normalised[k] if pos[k] else 0.0
            m[i, k] = mixed * weight[i]
    col = np.empty(k_max)
    for k in range(k_max):
        col[k] = weight_sum * normalised[k]
    fit_margins(m, weight, col, pos, tol, max_iterations)
    for i in range(n):
        for k in range(k_max):
            out[i, k] = m[i, k] / weight[i]
        row_sum = pairwise_sum(out[i], 0, k_max)
        for k in range(k_max):
            out[i, k] = out[i, k] / row_sum
    return out


@njit(cache=True)
def market_demand_rows(
    need,
    inventory,
    row_eps,
    deferral_elasticity,
    max_cover_months,
    purchase,
    weights,
    price_pow_1ms,
    price_pow_ms,
    slot_origin,
    sigma,
    log_reference_price,
):
    """The market's demand inputs of every row in one call (``CoercionModel._clear``): its short-run
    purchase elasticity (:func:`purchase_elasticity_rows`) and its planned purchase as the kernel's
    demand input, ``purchase`` x :func:`demand_scale_rows` at that elasticity.
    """
    elasticity = purchase_elasticity_rows(need, inventory, row_eps, deferral_elasticity, max_cover_months)
    scale = demand_scale_rows(weights, price_pow_1ms, price_pow_ms, slot_origin, sigma, log_reference_price, elasticity)
    planned = np.empty(purchase.size)
    for r in range(purchase.size):
        planned[r] = purchase[r] * scale[r]
    return elasticity, planned


@njit(cache=True)
def stock_bought(goods, country, stockpile, bought, cost):
    """A reserve's refill delivered this month (``Stockpile.after_clear``): ``stockpile[goods, country] +=
    bought[goods, country]`` in place (the goods are distinct), and the cost of those goods, summed in
    NumPy's order (:func:`pairwise_sum`) as ``cost[goods, country].sum()``.
    """
    n = goods.size
    paid = np.empty(n)
    for i in range(n):
        g = goods[i]
        stockpile[g, country] += bought[g, country]
        paid[i] = cost[g, country]
    return pairwise_sum(paid, 0, n)


@njit(cache=True)
def scale_rows(values, rows, factor):
    """``values[rows] *= factor`` in place, row by row (the rows are distinct): each value times the
    factor, as NumPy's fancy-indexed multiply computes it, without its gather and scatter.
    """
    for i in range(rows.size):
        r = rows[i]
        values[r] = values[r] * factor


@njit(cache=True)
def log_of(values):
    """``np.log`` of each value as the compiled kernels compute it (the math library's ``log``, which
    NumPy's vectorised ``np.log`` can differ from in the last bit): for logs computed once and read by
    kernels that used to compute them (:func:`demand_scale_rows`).
    """
    out = np.empty(values.size)
    for i in range(values.size):
        out[i] = np.log(values[i])
    return out


@njit(cache=True)
def after_clearing(price_domestic, iterations, residual):
    """What the model keeps from a month's clearing for the next (``CoercionModel._clear``): the
    domestic prices as next month's warm start (NaN where not finite), the goods that cleared without
    an iteration, and the most iterations and the largest residual of any good (0 without goods; a
    NaN residual is the largest, as ``np.max`` has it).
    """
    n_goods, n_countries = price_domestic.shape
    warm = np.empty((n_goods, n_countries))
    for g in range(n_goods):
        for c in range(n_countries):
            p = price_domestic[g, c]
            warm[g, c] = p if np.isfinite(p) else np.nan
    cleared = np.empty(iterations.size, dtype=np.bool_)
    most = 0
    for g in range(iterations.size):
        cleared[g] = iterations[g] == 0
        if iterations[g] > most:
            most = iterations[g]
    largest = 0.0
    for g in range(residual.size):
        v = residual[g]
        if np.isnan(largest):
            break
        if np.isnan(v) or v > largest:
            largest = v
    return warm, cleared, most, largest


@njit(cache=True, error_model="numpy")  # x / 0 is inf or NaN, as in NumPy, not an exception
def rent_share_of_price(quota_rent, price_export):
    """Each origin's quota rent as a share of its export price ``[G, C]``, as
    ``np.nan_to_num(quota_rent / price_export)`` (NaN to 0, infinities to the largest floats).
    """
    n_goods, n_countries = quota_rent.shape
    out = np.empty((n_goods, n_countries))
    for g in range(n_goods):
        for c in range(n_countries):
            out[g, c] = _finite(quota_rent[g, c] / price_export[g, c])
    return out


@njit(cache=True)
def update_expected_price(quantity, value, expected, smoothing):
    """Investors' expectation of each good's world import price (``CoercionModel._adapt``): this
    month's unit value of international trade (value / quantity; the expectation itself where
    nothing was traded) is returned, and ``expected`` moves ``smoothing`` of the way to it, in place.
    """
    world = np.empty(expected.size)
    for g in range(expected.size):
        world[g] = value[g] / quantity[g] if quantity[g] > 0.0 else expected[g]
        expected[g] += smoothing * (world[g] - expected[g])
    return world


@njit(cache=True)
def producer_prices(price_domestic, producer_good, producer_country):
    """Each producer's domestic price this month ``[P]`` from the clearing's ``[G, C]`` prices, 0 where
    its market has no finite price (``CoercionModel._book_domestic``).
    """
    out = np.empty(producer_good.size)
    for p in range(producer_good.size):
        v = price_domestic[producer_good[p], producer_country[p]]
        out[p] = v if np.isfinite(v) else 0.0
    return out


@njit(cache=True)
def requirement_rows(row_requirement, factor, scheduled, policy_requirement, planned_output, row_firm):
    """Each row's input requirement per unit of output this month and its need (``CoercionModel._plan``):
    the baseline requirement times the adaptation factor, the scenario's scheduled change and the
    levers' multiplier (in that order), and the need that requirement times its firm's planned output.
    """
    n_rows = row_requirement.size
    req = np.empty(n_rows)
    need = np.empty(n_rows)
    for r in range(n_rows):
        req[r] = row_requirement[r] * factor[r] * scheduled[r] * policy_requirement[r]
        need[r] = req[r] * planned_output[row_firm[r]]
    return req, need


@njit(cache=True, error_model="numpy")  # a zero baseline price index gives inf or NaN, as in NumPy
def output_price_factor(price_index, baseline_index, row_eps):
    """Each row's cut of its firm's planned output for the input's price (``CoercionModel._produce``):
    ``(P / P0) ** -eps`` at the delivered-price index ``P`` against baseline ``P0``, 1 where the row
    had no price this month (a NaN or infinite index).
    """
    out = np.empty(price_index.size)
    for r in range(price_index.size):
        p = price_index[r]
        out[r] = (p / baseline_index[r]) ** (-row_eps[r]) if np.isfinite(p) else 1.0
    return out


@njit(cache=True)
def split_state_rows(orders, purchase, delivered, expenditure):
    """The state's share of each row's deliveries when it buys through its firms
    (``CoercionModel._split_state_purchases``): its order as a share of the row's purchase (0 without
    a purchase). Returns what the state received and paid for per row, and what the firms received.
    """
    n_rows = orders.size
    state_delivered = np.empty(n_rows)
    state_value = np.empty(n_rows)
    firms = np.empty(n_rows)
    for r in range(n_rows):
        share = orders[r] / purchase[r] if purchase[r] > 0.0 else 0.0
        state_delivered[r] = delivered[r] * share
        state_value[r] = expenditure[r] * share
        firms[r] = delivered[r] * (1.0 - share)
    return state_delivered, state_value, firms


@njit(cache=True)
def positive_flows(edge_good, edge_origin, edge_destination, edge_flow, edge_price, index_like):
    """The trade edges that carried a positive flow this month (``Recorder.record``): their good, origin
    and destination (in the dtype of ``index_like``), quantity and value (quantity times delivered
    price), in edge order, as new arrays.
    """
    n = 0
    for e in range(edge_flow.size):
        if edge_flow[e] > 0:
            n += 1
    good = np.empty(n, dtype=index_like.dtype)
    origin = np.empty(n, dtype=index_like.dtype)
    destination = np.empty(n, dtype=index_like.dtype)
    flow = np.empty(n)
    value = np.empty(n)
    i = 0
    for e in range(edge_flow.size):
        if edge_flow[e] > 0:
            good[i] = edge_good[e]
            origin[i] = edge_origin[e]
            destination[i] = edge_destination[e]
            flow[i] = edge_flow[e]
            value[i] = edge_flow[e] * edge_price[e]
            i += 1
    return good, origin, destination, flow, value


@njit(cache=True)
def production_tax_revenue(per_unit, rate, share, price, output, producers):
    """A production tax's revenue this month (``CoercionModel._book_domestic``): ``(per_unit + rate x
    price) x share x output`` summed over its producers, in NumPy's order (:func:`pairwise_sum`), so the
    result is the NumPy expression's bit for bit.
    """
    n = producers.size
    due = np.empty(n)
    for i in range(n):
        p = producers[i]
        due[i] = (per_unit + rate * price[p]) * share * output[p]
    return pairwise_sum(due, 0, n)


@njit(cache=True)
def take_state_purchases(own_orders, orders, bought, bought_value, state_bought, state_value, stockpile):
    """What the states' own purchases (domestic instruments) got of the month's reserve purchases, in place.

    Of ``bought`` and ``bought_value`` (``[G, C]``, all reserve purchases that cleared) the states' own
    purchases take the share ``own_orders / orders`` they ordered (0 where nothing was ordered), written
    to ``state_bought`` and ``state_value``, taken off ``bought`` and ``bought_value`` (what remains is the
    stockpile levers') and added to the state's ``stockpile``: the NumPy expressions it replaced
    (``np.where``, products, differences), element by element.
    """
    n_goods, n_countries = orders.shape
    for g in range(n_goods):
        for c in range(n_countries):
            ordered = orders[g, c]
            own = own_orders[g, c] / ordered if ordered > 0 else 0.0
            got = bought[g, c] * own
            paid = bought_value[g, c] * own
            state_bought[g, c] = got
            state_value[g, c] = paid
            bought[g, c] = bought[g, c] - got
            bought_value[g, c] = bought_value[g, c] - paid
            stockpile[g, c] = stockpile[g, c] + got


@njit(cache=True)
def record_stocks_and_costs(
    t,
    stockpile,
    imports,
    exports,
    investment,
    release,
    bought,
    state_bought,
    stockpile_out,
    imports_out,
    exports_out,
    investment_out,
    release_out,
    purchase_out,
    policy_cost,
    policy_revenue,
    lever_cost,
    lever_index,
    policy_cost_out,
    policy_revenue_out,
    lever_out,
):
    """The recorder's copies of month ``t`` (``Recorder.record``), in place: the ``[G, C]`` reserves, imports,
    exports, investment, releases and reserve purchases (``bought + state_bought``) into their ``[T, G, C]``
    records, the ``[C]`` policy cost and revenue into their ``[T, C]`` records, and each lever's row
    ``lever_index[j]`` of ``lever_cost`` into ``lever_out[j, t]`` (``[levers, T, C]``).
    """
    n_goods, n_countries = stockpile.shape
    for g in range(n_goods):
        for c in range(n_countries):
            stockpile_out[t, g, c] = stockpile[g, c]
            imports_out[t, g, c] = imports[g, c]
            exports_out[t, g, c] = exports[g, c]
            investment_out[t, g, c] = investment[g, c]
            release_out[t, g, c] = release[g, c]
            purchase_out[t, g, c] = bought[g, c] + state_bought[g, c]
    for c in range(n_countries):
        policy_cost_out[t, c] = policy_cost[c]
        policy_revenue_out[t, c] = policy_revenue[c]
    for j in range(lever_index.size):
        for c in range(n_countries):
            lever_out[j, t, c] = lever_cost[lever_index[j], c]


@njit(cache=True)
def record_output_loss(t, country, sector, loss, output, loss_out, value_out, sector_loss, by_sector):
    """The user firms' output loss and output of month ``t`` summed by country into ``loss_out[t]`` and
    ``value_out[t]`` (``[T, C]``) and, where ``by_sector``, the month's loss summed by sector and added to
    the run's ``sector_loss``, in place; each sum firm by firm in order, as ``np.bincount``.
    """
    n_countries = loss_out.shape[1]
    for c in range(n_countries):
        loss_out[t, c] = 0.0
        value_out[t, c] = 0.0
    for f in range(country.size):
        loss_out[t, country[f]] += loss[f]
    for f in range(country.size):
        value_out[t, country[f]] += output[f]
    if by_sector:
        month = np.zeros(sector_loss.size)
        for f in range(sector.size):
            month[sector[f]] += loss[f]
        for s in range(sector_loss.size):
            sector_loss[s] = sector_loss[s] + month[s]


@njit(cache=True)
def capacity_by_origin(producer_gc, capacity, n_goods, n_countries):
    """``[G, C]`` capacity of each (good, country)'s producers (``producer_gc = good x C + country``), summed
    producer by producer in order, as ``np.bincount(producer_gc, weights=capacity).reshape(G, C)``.
    """
    out = np.zeros(n_goods * n_countries)
    for p in range(producer_gc.size):
        out[producer_gc[p]] += capacity[p]
    return out.reshape(n_goods, n_countries)
