"""Compiled market-clearing kernels (numba, no Python objects, no Mesa).

Everything here is a pure function over NumPy arrays and scalars, compiled once with
``njit(cache=True)`` (applied at the end of the module, see there). The public front end is :func:`sim.market.clear_markets`; read its docstring
and ``docs/ODD.md`` ("Submodels: market clearing") for the economics. Conventions:

* ``C`` countries, ``G`` goods, ``P`` producers, ``R`` purchase rows (one user firm buying one good),
  ``K`` the maximum number of origins a purchase row may source from, ``E`` trade edges
  (good, origin, destination) that at least one purchase row uses.
* Per good the unknowns are ``y_o = log p_o`` for every origin that has supply of the good, and
  ``rho_o = rent_o / reference_price`` for every supplying origin under a finite export quota.
* The equilibrium is a box-constrained mixed complementarity problem; each condition is written
  with the ``mid`` function (``y - mid(lower, upper, y + z) = 0``) and solved by semismooth Newton
  with an Armijo line search on the squared residual. Where Newton's direction does not decrease
  it, or Newton crawls, the good gets a fallback sweep: nonlinear Gauss-Seidel, which settles each
  unknown's own condition in turn by bracketing (each condition is monotone in its own unknown).
  Newton resumes from the swept point. The residual reported is the one evaluated at the returned
  point (the certificate); a good whose residual exceeds the tolerance is reported unconverged.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Relative excess demand below which a market counts as cleared (also the default tolerance).
DEFAULT_TOLERANCE = 1e-10
#: Newton iterations allowed per good before the solver reports failure.
DEFAULT_MAX_ITERATIONS = 200
#: Largest Jacobian entry (in relative excess demand per log price) of a row treated as flat.
FLAT_ROW = 1e-13
#: Step (in log price) taken by a variable whose residual is locally flat.
FLAT_STEP = 1.0
#: Relative distance above the lowest unit cost at which a market below cost restarts its search.
FLAT_ONSET = 1e-3
#: Quantity added to the denominator of a relative excess demand ``(D - S) / (D + S)`` so that it
#: is 0, not 0/0, where nothing is demanded or offered. It is far below any quantity that matters
#: (markets from 1e-9 to 1e9 units clear alike): conditions are relative per origin, not per good.
QUANTITY_FLOOR = 1e-300
#: Machine epsilon of float64.
EPSILON = 2.220446049250313e-16
#: Units in the last place of a log price within which an origin counts as cleared whatever its
#: residual: the residual reported beyond the tolerance is the part the price can resolve.
PRICE_RESOLUTION_ULPS = 8.0
#: Halvings of the Newton step tried by the line search before it counts as failed.
LINE_SEARCH_STEPS = 30
#: Consecutive Newton steps that each fail to cut the residual to ``SLOW_RATIO`` of what it was
#: before a fallback sweep is inserted (a crawl: damped steps that barely make progress).
SLOW_STEPS = 5
SLOW_RATIO = 0.9
#: A safeguard sweep inside Newton settles the unknowns whose residual is at least this share of
#: the largest.
SWEEP_SHARE = 0.1
#: Newton's trial point is evaluated without its Jacobian when the residual before the step is at most
#: this multiple of the square root of the tolerance: near the solution Newton converges quadratically
#: (the next residual about the square of this one; rare_earth_2010: within a factor 2), so that trial
#: is almost always the last and its Jacobian would never be used. Where it is not, the Jacobian is
#: evaluated at the accepted point before the next step: the iterates are the same either way.
FINAL_STEP_SHARE = 0.7
#: ``method`` of :func:`clear_all_goods`: semismooth Newton, with fallback sweeps where it stalls.
METHOD_NEWTON = 0
#: ``method`` of :func:`clear_all_goods`: the fallback (nonlinear Gauss-Seidel) alone, for testing.
METHOD_FALLBACK = 1


def build_structure(n_countries, n_goods, firm_country, row_firm, row_good, row_origin, producer_good):
    """Index the purchase rows, trade edges and producers by good.

    Returns ``(row_order, row_ptr, edge_good, edge_origin, edge_destination, row_edge, edge_ptr,
    producer_order, producer_ptr)``: rows and producers sorted by good with CSR-style pointers, the
    list of distinct trade edges used by some purchase row (contiguous by good) and, for every row and
    sourcing slot, the index of its edge (``-1`` for an empty slot).
    """
    n_rows, k_max = row_origin.shape
    row_order = np.argsort(row_good, kind="mergesort")
    row_ptr = np.zeros(n_goods + 1, dtype=np.int64)
    for r in range(n_rows):
        row_ptr[row_good[r] + 1] += 1
    for g in range(n_goods):
        row_ptr[g + 1] += row_ptr[g]

    # (origin, destination) -> edge id map for the good being indexed; rows are visited in good
    # order so edges of a good are contiguous, and only the keys a good touched are reset.
    edge_id = np.full(n_countries * n_countries, -1, dtype=np.int64)
    touched = np.empty(n_countries * n_countries, dtype=np.int64)
    row_edge = np.full((n_rows, k_max), -1, dtype=np.int64)
    n_edges = 0
    n_touched = 0
    current_good = -1
    for idx in range(n_rows):
        r = row_order[idx]
        g = row_good[r]
        if g != current_good:
            for t in range(n_touched):
                edge_id[touched[t]] = -1
            n_touched = 0
            current_good = g
        d = firm_country[row_firm[r]]
        for k in range(k_max):
            o = row_origin[r, k]
            if o < 0:
                continue
            key = o * n_countries + d
            e = edge_id[key]
            if e < 0:
                e = n_edges
                edge_id[key] = e
                touched[n_touched] = key
                n_touched += 1
                n_edges += 1
            row_edge[r, k] = e
    edge_good = np.empty(n_edges, dtype=np.int64)
    edge_origin = np.empty(n_edges, dtype=np.int64)
    edge_destination = np.empty(n_edges, dtype=np.int64)
    for r in range(n_rows):
        d = firm_country[row_firm[r]]
        for k in range(k_max):
            e = row_edge[r, k]
            if e >= 0:
                edge_good[e] = row_good[r]
                edge_origin[e] = row_origin[r, k]
                edge_destination[e] = d
    edge_ptr = np.zeros(n_goods + 1, dtype=np.int64)
    for e in range(n_edges):
        edge_ptr[edge_good[e] + 1] += 1
    for g in range(n_goods):
        edge_ptr[g + 1] += edge_ptr[g]

    producer_order = np.argsort(producer_good, kind="mergesort")
    producer_ptr = np.zeros(n_goods + 1, dtype=np.int64)
    for i in range(producer_good.shape[0]):
        producer_ptr[producer_good[i] + 1] += 1
    for g in range(n_goods):
        producer_ptr[g + 1] += producer_ptr[g]
    return (
        row_order,
        row_ptr,
        edge_good,
        edge_origin,
        edge_destination,
        row_edge,
        edge_ptr,
        producer_order,
        producer_ptr,
    )


#: Share of the span from unit cost to full-capacity price over which supply rises linearly, so the
#: curve has a finite slope at unit cost even when ``supply_elasticity < 1``.
LINEAR_ONSET = 0.05


def producer_supply(price, capacity, unit_cost, full_capacity_price, supply_elasticity):
    """Quantity one producer offers at ``price`` and its derivative with respect to ``log(price)``.

    With ``u = (price - unit_cost) / (full_capacity_price - unit_cost)`` the producer offers
    ``capacity * min(1, u ** supply_elasticity)``: nothing below unit cost, full capacity from
    ``full_capacity_price`` on. Over the first ``LINEAR_ONSET`` of the span the curve is the chord
    ``capacity * LINEAR_ONSET ** (supply_elasticity - 1) * u`` instead, so its slope stays finite at
    unit cost (a power below 1 would be vertical there and stall Newton's method). With
    ``unit_cost = 0`` and prices above the onset it is isoelastic below capacity.
    """
    if capacity <= 0.0 or price <= unit_cost:
        return 0.0, 0.0
    span = full_capacity_price - unit_cost
    u = (price - unit_cost) / span
    if u >= 1.0:
        return capacity, 0.0
    if u < LINEAR_ONSET:
        slope = capacity * LINEAR_ONSET ** (supply_elasticity - 1.0)
        return slope * u, price * slope / span
    q = capacity * u**supply_elasticity
    # dq/dlog p = p * dq/dp = p * eps * q / (p - c)
    return q, price * supply_elasticity * q / (price - unit_cost)


def supply_curve(price, capacity, unit_cost, full_capacity_price, supply_elasticity):
    """Quantity each producer offers at its ``price`` (arrays of one length): :func:`producer_supply`
    over producers, for cost accounting outside the kernel (lost margins of domestic supply cuts).

    Nothing is offered at a price that is not above unit cost (NaN included), by a producer without
    capacity, or where the full-capacity price does not lie above unit cost.
    """
    n = price.shape[0]
    out = np.zeros(n)
    for i in range(n):
        if capacity[i] > 0.0 and price[i] > unit_cost[i] and full_capacity_price[i] > unit_cost[i]:
            out[i], _ = producer_supply(
                price[i], capacity[i], unit_cost[i], full_capacity_price[i], supply_elasticity[i]
            )
    return out


def _unit_row(jac, i, n_vars):
    """Make row ``i`` of the Jacobian the unit row (an active bound or a flat residual)."""
    for j in range(n_vars):
        jac[i, j] = 0.0
    jac[i, i] = 1.0


def _lu_solve(a, b, n):
    """Solve ``a[:n, :n] x = b[:n]`` in place by Gaussian elimination with partial pivoting.

    Returns ``False`` when the matrix is numerically singular. Written out (not LAPACK) so the
    result is bit-reproducible on every machine and under ``NUMBA_DISABLE_JIT``.
    """
    for col in range(n):
        piv = col
        best = abs(a[col, col])
        for r in range(col + 1, n):
            v = abs(a[r, col])
            if v > best:
                best = v
                piv = r
        if best < 1e-300:
            return False
        if piv != col:
            for c in range(n):
                tmp = a[col, c]
                a[col, c] = a[piv, c]
                a[piv, c] = tmp
            tmp = b[col]
            b[col] = b[piv]
            b[piv] = tmp
        inv = 1.0 / a[col, col]
        for r in range(col + 1, n):
            f = a[r, col] * inv
            if f != 0.0:
                for c in range(col + 1, n):
                    a[r, c] -= f * a[col, c]
                b[r] -= f * b[col]
    for r in range(n - 1, -1, -1):
        s = b[r]
        for c in range(r + 1, n):
            s -= a[r, c] * b[c]
        b[r] = s / a[r, r]
    return True


def _evaluate_good(g, x, want_jacobian, n_price, n_vars, structure, data, work, residual, jac):
    """Residual (and optionally the generalised Jacobian) of good ``g``'s equilibrium conditions.

    ``x`` holds ``[y_o for supplying origins] + [rho_o for quota origins]``. ``structure``, ``data``
    and ``work`` are the tuples built by :func:`clear_all_goods` (index arrays, market inputs, work
    buffers). Fills the work buffers with prices, demands, exports and supplies at ``x``, and per
    unknown its gap (``gap``: relative excess demand of the origin for a price, export overshoot
    ``log(E/Q)`` for a rent; each non-increasing in its own unknown) and its upper bound (``upper``).
    Returns the max-norm of the residual, each price's entry less what ``PRICE_RESOLUTION_ULPS``
    units in the last place of its log price move it by (nothing, but for extremely steep supply).

    Callers pass ``want_jacobian`` as ``bool(True)`` or ``bool(False)``, never a bare ``True`` or
    ``False``: numba compiles a function once per literal argument, and this one, with the solver
    around it, takes seconds to compile (a cold start compiled it six times, three flags by two types of
    count; 99 s of CPU before, 65 s after, for the first ``rare_earth_2010`` run).
    """
    (
        var_country,
        price_var,
        quota_var,
        row_order,
        row_ptr,
        row_firm_country,
        row_edge,
        row_origin,
        edge_ptr,
        edge_origin,
        edge_destination,
        producer_order,
        producer_ptr,
    ) = structure
    (
        reference_price,
        sigma,
        cap_multiple,
        floor_multiple,
        producer_country,
        capacity,
        unit_cost,
        full_capacity_price,
        supply_elasticity,
        planned_purchase,
        demand_elasticity,
        sourcing_weights,
        slot_pass,
        ban_intensity,
        export_quota,
        export_duty,
        import_tariff,
        transport_cost,
        stockpile_release,
        quantity_scale,
    ) = data
    (
        price,
        rent,
        edge_price,
        edge_avail,
        edge_pass,
        edge_pw,
        edge_theta,
        edge_phi,
        demand_o,
        exports_o,
        supply_o,
        dsupply_o,
        d_demand,
        d_exports,
        flat,
        flat_target,
        reservation,
        gap,
        upper,
        allowance,
    ) = work
    pref = reference_price[g]
    log_pref = np.log(pref)
    lo = np.log(floor_multiple[g] * pref)
    hi = np.log(cap_multiple[g] * pref)
    one_minus_sigma = 1.0 - sigma
    n_quota = n_vars - n_price

    for i in range(n_price):
        c = var_country[i]
        price[c] = np.exp(x[i])
        rent[c] = 0.0
        demand_o[c] = 0.0
        exports_o[c] = 0.0
    for i in range(n_price, n_vars):
        c = var_country[i]
        rent[c] = x[i] * pref
    if want_jacobian:
        for i in range(n_price):
            for j in range(n_vars):
                d_demand[i, j] = 0.0
        for i in range(n_quota):
            for j in range(n_vars):
                d_exports[i, j] = 0.0

    # Delivered prices on every edge of this good.
    for e in range(edge_ptr[g], edge_ptr[g + 1]):
        o = edge_origin[e]
        d = edge_destination[e]
        if price_var[o] < 0:
            edge_avail[e] = 0.0
            continue
        # A full ban closes the edge: buyers re-route at once (weight 0). An informal restriction
        # (intensity < 1) leaves the weight but lets only (1 - intensity) of the order through.
        ban = ban_intensity[g, o, d]
        edge_avail[e] = 0.0 if ban >= 1.0 else 1.0
        edge_pass[e] = 1.0 - ban
        po = price[o]
        if o == d:
            pe = po
            edge_theta[e] = 1.0
            edge_phi[e] = 0.0
        else:
            fob = po * (1.0 + export_duty[g, o])
            base = fob + rent[o] + transport_cost[g, o, d]
            pe = base * (1.0 + import_tariff[g, o, d])
            edge_theta[e] = fob / base
            edge_phi[e] = pref / base
        edge_price[e] = pe
        edge_pw[e] = np.exp(one_minus_sigma * np.log(pe))

    k_max = row_edge.shape[1]
    # Scratch for one row's open sourcing slots: edge, weighted price term, flow, and for the
    # Jacobian the (sigma - eps) * share term, the price and quota variables of the origin and the
    # derivatives of the delivered log price.
    slot_edge = np.empty(k_max, dtype=np.int64)
    slot_through = np.empty(k_max)
    slot_v = np.empty(k_max)
    slot_x = np.empty(k_max)
    slot_s = np.empty(k_max)
    slot_pv = np.empty(k_max, dtype=np.int64)
    slot_qv = np.empty(k_max, dtype=np.int64)
    for idx in range(row_ptr[g], row_ptr[g + 1]):
        r = row_order[idx]
        q = planned_purchase[r]
        if q <= 0.0:
            continue
        n_open = 0
        a = 0.0
        for k in range(k_max):
            e = row_edge[r, k]
            if e < 0:
                continue
            v = sourcing_weights[r, k] * edge_avail[e]
            if v <= 0.0:
                continue
            v *= edge_pw[e]
            slot_edge[n_open] = e
            # Share of the order that gets through: the edge's (informal block) times the row's own
            # (licences approved for its destination and end use).
            slot_through[n_open] = edge_pass[e] * slot_pass[r, k]
            slot_v[n_open] = v
            n_open += 1
            a += v
        if a <= 0.0:
            continue  # every origin banned or without supply: the firm gets nothing
        log_p = np.log(a) / one_minus_sigma
        eps_d = demand_elasticity[r]
        # P = a^(1/(1-sigma)); X = q (P/Pref)^-eps; flows are x_k = v_k P X / (a p_k).
        scale = q * np.exp(log_p - eps_d * (log_p - log_pref)) / a
        d = row_firm_country[r]
        for t in range(n_open):
            e = slot_edge[t]
            o = edge_origin[e]
            xk = slot_v[t] * scale / edge_price[e] * slot_through[t]  # what gets through to the buyer
            slot_x[t] = xk
            demand_o[o] += xk
            if o != d:
                exports_o[o] += xk
        if want_jacobian:
            # d x_k / d log p_j = x_k * ((sigma - eps) * s_j - sigma * [j == k]) * dlog p_jd
            for t in range(n_open):
                e = slot_edge[t]
                o = edge_origin[e]
                slot_s[t] = (sigma - eps_d) * slot_v[t] / a
                slot_pv[t] = price_var[o]
                slot_qv[t] = quota_var[o] if o != d else -1
            for k in range(n_open):
                xk = slot_x[k]
                io = slot_pv[k]
                iq = slot_qv[k]
                for j in range(n_open):
                    ej = slot_edge[j]
                    coef = xk * slot_s[j]
                    if j == k:
                        coef -= sigma * xk
                    jp = slot_pv[j]
                    cy = coef * edge_theta[ej]
                    d_demand[io, jp] += cy
                    if iq >= 0:
                        d_exports[iq - n_price, jp] += cy
                    jq = slot_qv[j]
                    if jq >= 0:
                        cr = coef * edge_phi[ej]
                        d_demand[io, jq] += cr
                        if iq >= 0:
                            d_exports[iq - n_price, jq] += cr

    # Supply per origin: producers plus stockpile releases (price-inelastic).
    for i in range(n_price):
        c = var_country[i]
        supply_o[c] = stockpile_release[g, c]
        dsupply_o[c] = 0.0
    for idx in range(producer_ptr[g], producer_ptr[g + 1]):
        p = producer_order[idx]
        c = producer_country[p]
        s, ds = producer_supply(price[c], capacity[p], unit_cost[p], full_capacity_price[p], supply_elasticity[p])
        supply_o[c] += s
        dsupply_o[c] += ds

    # Residuals: mid(lower, upper, var + z) formulation of the box complementarity conditions.
    norm = 0.0
    if want_jacobian:
        for i in range(n_vars):
            flat[i] = False
    for i in range(n_price):
        c = var_country[i]
        dd = demand_o[c]
        ss = supply_o[c]
        iq = quota_var[c]
        over_quota = iq >= 0 and exports_o[c] > export_quota[g, c]
        if over_quota:
            # Exports beyond the quota cannot be sold (they are rationed when the rent is at its
            # ceiling), so the origin's market clears against the quota, not the export demand.
            dd -= exports_o[c] - export_quota[g, c]
        den = dd + ss + quantity_scale
        z = (dd - ss) / den  # relative excess demand in [-1, 1]
        gap[i] = z
        upper[i] = hi
        # Supply can be so steep (a huge capacity on a short linear onset) that one unit in the last
        # place of the log price moves the excess demand by more than the tolerance; what the
        # floating-point price cannot resolve does not count against convergence: the excess demand
        # the conditions see is shrunk toward 0 by that much (``allowance``).
        allowance[i] = 0.0
        if lo < x[i] < hi:
            allowance[i] = PRICE_RESOLUTION_ULPS * EPSILON * max(abs(x[i]), 1.0) * dsupply_o[c] / den
        if z > allowance[i]:
            z -= allowance[i]
        elif z < -allowance[i]:
            z += allowance[i]
        else:
            z = 0.0
        t = x[i] + z
        if t <= lo:
            residual[i] = x[i] - lo
            if want_jacobian:
                _unit_row(jac, i, n_vars)
        elif t >= hi:
            residual[i] = x[i] - hi
            if want_jacobian:
                _unit_row(jac, i, n_vars)
        else:
            residual[i] = -z
            if want_jacobian:
                # dz = (dD - dS)/den - (D - S)(dD + dS)/den^2 = (2 S dD - 2 D dS) / den^2, written
                # with shares of den so that it neither under- nor overflows for tiny or huge markets
                s_share = 2.0 * ss / den
                d_share = 2.0 * dd / den
                row_max = 0.0
                for j in range(n_vars):
                    dds = dsupply_o[c] if j == i else 0.0
                    ddd = d_demand[i, j] - d_exports[iq - n_price, j] if over_quota else d_demand[i, j]
                    jac[i, j] = -(s_share * (ddd / den) - d_share * (dds / den))
                    if abs(jac[i, j]) > row_max:
                        row_max = abs(jac[i, j])
                if row_max <= FLAT_ROW:
                    # Locally flat (e.g. inelastic demand against supply at capacity, or a tiny
                    # market below its producers' cost): no Newton information, so move the price
                    # one log unit (a factor e) the way excess demand points, within the bounds.
                    # A bounded step keeps one flat market from shortening everyone's line search.
                    _unit_row(jac, i, n_vars)
                    flat[i] = True
                    if z > 0.0 and ss <= 0.0 and reservation[c] > 0.0 and np.log(reservation[c]) >= x[i]:
                        # Below every producer's cost with buyers waiting: go to where supply starts
                        # (a step of one log unit would overshoot and oscillate around the cost).
                        flat_target[i] = min(np.log(reservation[c] * (1.0 + FLAT_ONSET)), hi)
                    elif z > 0.0:
                        flat_target[i] = min(x[i] + FLAT_STEP, hi)
                    else:
                        flat_target[i] = max(x[i] - FLAT_STEP, lo)
        a_res = abs(residual[i])
        if a_res > norm:
            norm = a_res
    for i in range(n_price, n_vars):
        c = var_country[i]
        allowance[i] = 0.0
        quota = export_quota[g, c]
        ee = exports_o[c]
        # Log slack: keeps its slope however far exports overshoot the quota (a relative slack
        # (Q - E)/(Q + E) flattens at -1 there and stalls Newton's method). A difference of logs, not
        # the log of the ratio: with no exports the ratio overflows for quotas above ~1.8e8
        # (quantity_scale is 1e-300), which the interpreter (NUMBA_DISABLE_JIT) reports as an error.
        slack = np.log(quota + quantity_scale) - np.log(ee + quantity_scale)
        fob_ratio = price[c] * (1.0 + export_duty[g, c]) / pref
        rho_max = cap_multiple[g] - fob_ratio
        if rho_max < 0.0:
            rho_max = 0.0
        gap[i] = -slack
        upper[i] = rho_max
        t = x[i] - slack
        if t <= 0.0:
            residual[i] = x[i]
            if want_jacobian:
                _unit_row(jac, i, n_vars)
        elif t >= rho_max:
            residual[i] = x[i] - rho_max
            if want_jacobian:
                _unit_row(jac, i, n_vars)
                if rho_max > 0.0:
                    jac[i, price_var[c]] += fob_ratio
        else:
            residual[i] = slack
            if want_jacobian:
                inv = 1.0 / (ee + quantity_scale)
                row_max = 0.0
                for j in range(n_vars):
                    jac[i, j] = -d_exports[i - n_price, j] * inv
                    if abs(jac[i, j]) > row_max:
                        row_max = abs(jac[i, j])
                if row_max <= FLAT_ROW:
                    # Exports do not respond to the rent (inelastic buyers): the rent goes to its
                    # ceiling if exports exceed the quota, to zero if they fall short.
                    _unit_row(jac, i, n_vars)
                    flat[i] = True
                    flat_target[i] = rho_max if slack < 0.0 else 0.0
        a_res = abs(residual[i])
        if a_res > norm:
            norm = a_res
    return norm


def _settle_unknown(g, i, x, lower, n_price, n_vars, structure, data, work, residual, jac, tol):
    """Solve the equilibrium condition of unknown ``i`` alone, the others held fixed.

    The unknown's gap (an origin's relative excess demand for a log price, its export overshoot
    ``log(E/Q)`` for a rent) never rises with the unknown itself: a higher price lowers what buyers
    take and raises what producers offer, a higher rent lowers exports. So the condition has one
    solution in the box ``[lower, upper]``: the box's bound where the gap keeps its sign across the
    whole box (a price at the floor over unsold supply, at the cap over rationed demand; a rent of
    zero on a quota that does not bind, at its ceiling on one that binds at any rent), else the
    root, found by bracketing (doubling steps from the current value) and the Illinois variant of
    regula falsi, to ``|gap| <= tol``. Leaves ``x[i]`` at the solution and the work buffers evaluated
    there; returns the number of evaluations.
    """
    gap = work[17]
    upper = work[18]
    allowance = work[19]
    n_eval = 1
    _evaluate_good(g, x, bool(False), n_price, n_vars, structure, data, work, residual, jac)
    hi = upper[i]
    a = min(max(x[i], lower), hi)
    if a != x[i]:
        x[i] = a
        n_eval += 1
        _evaluate_good(g, x, bool(False), n_price, n_vars, structure, data, work, residual, jac)
    fa = gap[i]
    # What the unknown's own condition misses by, less what its floating-point value cannot
    # resolve (a price just above a producer's cost can face supply orders of magnitude above
    # demand one unit in the last place higher and none at all one lower).
    if abs(fa) - allowance[i] <= tol:
        return n_eval
    # Bracket: step away from ``a`` the way the gap points, doubling the step, until the sign flips
    # or the bound is reached (then the bound is the solution).
    step = 1.0 if i < n_price else 0.5
    b = a
    fb = fa
    while True:
        b = min(a + step, hi) if fa > 0.0 else max(a - step, lower)
        x[i] = b
        n_eval += 1
        _evaluate_good(g, x, bool(False), n_price, n_vars, structure, data, work, residual, jac)
        fb = gap[i]
        if abs(fb) - allowance[i] <= tol:
            return n_eval
        if (fb > 0.0) != (fa > 0.0):
            break
        if b == hi or b == lower:
            return n_eval  # the gap keeps its sign up to the bound: the bound solves the condition
        a = b
        fa = fb
        step *= 2.0
    # Illinois iteration on the bracket [a, b] (gaps of opposite signs), with a bisection whenever
    # two steps did not halve the bracket (a gap that jumps, e.g. at a producer's unit cost, makes
    # regula falsi crawl).
    best_x = a if abs(fa) < abs(fb) else b
    best_f = min(abs(fa), abs(fb))
    side = 0
    width_before = abs(b - a)
    for n_illinois in range(400):
        lo_ab = min(a, b)
        hi_ab = max(a, b)
        if n_illinois % 2 == 1:
            width = hi_ab - lo_ab
            bisect = width > 0.5 * width_before
            width_before = width
        else:
            bisect = False
        c = 0.5 * (a + b) if bisect else (a * fb - b * fa) / (fb - fa)
        if not (c > lo_ab and c < hi_ab):
            c = 0.5 * (a + b)
            if not (c > lo_ab and c < hi_ab):
                break  # the bracket is two adjacent floating-point numbers
        x[i] = c
        n_eval += 1
        _evaluate_good(g, x, bool(False), n_price, n_vars, structure, data, work, residual, jac)
        fc = gap[i]
        miss = abs(fc) - allowance[i]
        if miss < best_f:
            best_f = miss
            best_x = c
        if miss <= tol:
            return n_eval
        if (fc > 0.0) == (fb > 0.0):
            b = c
            fb = fc
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a = c
            fa = fc
            if side == 1:
                fb *= 0.5
            side = 1
    x[i] = best_x
    n_eval += 1
    _evaluate_good(g, x, bool(False), n_price, n_vars, structure, data, work, residual, jac)
    return n_eval


def _fallback_sweep(g, x, lo, n_price, n_vars, structure, data, work, residual, jac, tol, selected):
    """One sweep of nonlinear Gauss-Seidel: settle each unknown in turn, the others held fixed.

    This is the solver's globally convergent fallback (each unknown's gap is monotone in its own
    value, see :func:`_settle_unknown`; for gross substitutes the excess supply is an M-function,
    for which nonlinear Gauss-Seidel converges from any start, Moré 1972). Prices are settled
    first, then rents; only those with ``selected[i]`` true (all of them for a full sweep; Newton's
    safeguard settles the unknowns with the largest residuals, so that one stuck origin does not cost a
    sweep over every origin of a large good). Leaves the work buffers, ``residual`` and (for Newton's
    next step) ``jac`` evaluated at the new point; returns the max-norm of the residual there.
    """
    for i in range(n_vars):
        if not selected[i]:
            continue
        lower = lo if i < n_price else 0.0
        _settle_unknown(g, i, x, lower, n_price, n_vars, structure, data, work, residual, jac, tol)
    return _evaluate_good(g, x, bool(True), n_price, n_vars, structure, data, work, residual, jac)


def clear_all_goods(
    n_countries,
    reference_price,
    armington_elasticity,
    price_cap,
    price_floor,
    producer_country,
    producer_good,
    capacity,
    unit_cost,
    full_capacity_price,
    supply_elasticity,
    firm_country,
    row_firm,
    row_good,
    planned_purchase,
    demand_elasticity,
    row_origin,
    sourcing_weights,
    order_pass,
    ban_intensity,
    export_quota,
    export_duty,
    import_tariff,
    transport_cost,
    stockpile_release,
    initial_price,
    initial_rent,
    check_warm_start,
    tolerance,
    max_iterations,
    row_order,
    row_ptr,
    edge_good,
    edge_origin,
    edge_destination,
    row_edge,
    edge_ptr,
    producer_order,
    producer_ptr,
    method,
    price_domestic,
    price_export,
    quota_rent,
    supply_offered,
    sold,
    exported,
    edge_flow,
    edge_delivered_price,
    row_demand,
    row_delivered,
    row_rationed,
    row_price_index,
    row_expenditure,
    row_flow,
    producer_output,
    release_used,
    iterations,
    residual_norm,
    converged,
):
    """Clear every good's market for one step. See :func:`sim.market.clear_markets`.

    ``check_warm_start`` ``[G]`` (booleans): for these goods a warm start (an initial price for every
    origin) is first checked without the Jacobian, which pays where it has often cleared already
    and costs a second evaluation at the same point where it has not; the others evaluate the
    Jacobian at once. Either way the iterates and the result are the same.

    Arguments ``row_order`` to ``producer_ptr`` are the index structure from :func:`build_structure`;
    ``method`` is :data:`METHOD_NEWTON` (semismooth Newton, with fallback sweeps where it stalls) or
    :data:`METHOD_FALLBACK` (fallback sweeps alone, for testing).

    The outputs, ``price_domestic`` to ``converged`` (the fields of :class:`sim.market.MarketResult` but the
    edges' goods and countries, in its order; ``[G, C]``, ``[E]``, ``[R]``, ``[R, K]``, ``[P]``, ``[G]``), are
    arrays the caller allocates, of any content: every element is written here. Returning fresh arrays
    cost about half a microsecond each to hand back to Python, 19 of them every month of a run.
    """
    n_goods = reference_price.shape[0]
    sqrt_tolerance = np.sqrt(tolerance)
    n_rows, k_max = row_origin.shape
    n_edges = edge_good.shape[0]
    # Work on copies of the purchase rows laid out by good, so every pass reads memory in order;
    # outputs are written back to the caller's row order through ``row_order``.
    sorted_rows = np.arange(n_rows)
    row_firm_country = np.empty(n_rows, dtype=np.int64)
    s_planned = np.empty(n_rows)
    s_elasticity = np.empty(n_rows)
    s_origin = np.empty((n_rows, k_max), dtype=np.int64)
    s_edge = np.empty((n_rows, k_max), dtype=np.int64)
    s_weights = np.empty((n_rows, k_max))
    s_pass = np.empty((n_rows, k_max))
    for idx in range(n_rows):
        r = row_order[idx]
        row_firm_country[idx] = firm_country[row_firm[r]]
        s_planned[idx] = planned_purchase[r]
        s_elasticity[idx] = demand_elasticity[r]
        for k in range(k_max):
            s_origin[idx, k] = row_origin[r, k]
            s_edge[idx, k] = row_edge[r, k]
            s_weights[idx, k] = sourcing_weights[r, k]
            s_pass[idx, k] = order_pass[r, k]

    # Outputs (the caller's arrays), set as np.full / np.zeros would make them.
    price_domestic.fill(np.nan)
    price_export.fill(np.nan)
    quota_rent.fill(0.0)
    supply_offered.fill(0.0)
    sold.fill(0.0)
    exported.fill(0.0)
    edge_flow.fill(0.0)
    edge_delivered_price.fill(0.0)
    row_demand.fill(0.0)
    row_delivered.fill(0.0)
    row_rationed.fill(0.0)
    row_price_index.fill(np.nan)
    row_expenditure.fill(0.0)
    row_flow.fill(0.0)
    producer_output.fill(0.0)
    release_used.fill(0.0)
    iterations.fill(0)
    residual_norm.fill(0.0)
    converged.fill(False)

    # Work buffers sized for the largest good: its supplying origins and their finite quotas.
    n_var_max = 1
    origin_mark = np.zeros(n_countries, dtype=np.int64)
    for g in range(n_goods):
        for c in range(n_countries):
            origin_mark[c] = 1 if stockpile_release[g, c] > 0.0 else 0
        for idx in range(producer_ptr[g], producer_ptr[g + 1]):
            p = producer_order[idx]
            if capacity[p] > 0.0:
                origin_mark[producer_country[p]] = 1
        n_g = 0
        for c in range(n_countries):
            if origin_mark[c] > 0:
                n_g += 2 if np.isfinite(export_quota[g, c]) else 1
        n_var_max = max(n_var_max, n_g)
    x = np.zeros(n_var_max)
    x_trial = np.zeros(n_var_max)
    step = np.zeros(n_var_max)
    residual = np.zeros(n_var_max)
    residual_trial = np.zeros(n_var_max)
    jac = np.zeros((n_var_max, n_var_max))
    jac_trial = np.zeros((n_var_max, n_var_max))
    flat = np.zeros(n_var_max, dtype=np.bool_)
    flat_target = np.zeros(n_var_max)
    d_demand = np.zeros((n_var_max, n_var_max))
    d_exports = np.zeros((n_var_max, n_var_max))
    gap = np.zeros(n_var_max)
    upper = np.zeros(n_var_max)
    allowance = np.zeros(n_var_max)
    selected = np.zeros(n_var_max, dtype=np.bool_)
    price = np.zeros(n_countries)
    rent = np.zeros(n_countries)
    demand_o = np.zeros(n_countries)
    exports_o = np.zeros(n_countries)
    supply_o = np.zeros(n_countries)
    dsupply_o = np.zeros(n_countries)
    edge_price = np.zeros(n_edges)
    edge_avail = np.zeros(n_edges)
    edge_pass = np.ones(n_edges)
    edge_pw = np.zeros(n_edges)
    edge_theta = np.zeros(n_edges)
    edge_phi = np.zeros(n_edges)
    var_country = np.zeros(n_var_max, dtype=np.int64)
    price_var = np.full(n_countries, -1, dtype=np.int64)
    quota_var = np.full(n_countries, -1, dtype=np.int64)
    has_supply = np.zeros(n_countries, dtype=np.bool_)
    has_buyer = np.zeros(n_countries, dtype=np.bool_)
    reservation = np.zeros(n_countries)
    structure = (
        var_country,
        price_var,
        quota_var,
        sorted_rows,
        row_ptr,
        row_firm_country,
        s_edge,
        s_origin,
        edge_ptr,
        edge_origin,
        edge_destination,
        producer_order,
        producer_ptr,
    )
    work = (
        price,
        rent,
        edge_price,
        edge_avail,
        edge_pass,
        edge_pw,
        edge_theta,
        edge_phi,
        demand_o,
        exports_o,
        supply_o,
        dsupply_o,
        d_demand,
        d_exports,
        flat,
        flat_target,
        reservation,
        gap,
        upper,
        allowance,
    )

    for g in range(n_goods):
        sigma = armington_elasticity[g]
        pref = reference_price[g]
        log_pref = np.log(pref)
        lo = np.log(price_floor[g] * pref)
        hi = np.log(price_cap[g] * pref)
        # Which origins offer the good this step: producers with capacity, or a stockpile release.
        for c in range(n_countries):
            has_supply[c] = stockpile_release[g, c] > 0.0
            price_var[c] = -1
            quota_var[c] = -1
        for idx in range(producer_ptr[g], producer_ptr[g + 1]):
            p = producer_order[idx]
            if capacity[p] > 0.0:
                has_supply[producer_country[p]] = True
        # Origins with supply that no purchase row can buy from have no market this step: they are
        # not unknowns, and their price is their reservation price (below it they offer nothing).
        for c in range(n_countries):
            has_buyer[c] = False
        for idx in range(row_ptr[g], row_ptr[g + 1]):
            if s_planned[idx] <= 0.0:
                continue
            d = row_firm_country[idx]
            for k in range(k_max):
                o = s_origin[idx, k]
                if o >= 0 and s_weights[idx, k] > 0.0 and ban_intensity[g, o, d] < 1.0:
                    has_buyer[o] = True
        # np.int64, not the literal 0: numba would type the helpers' calls once with the literal
        # (Literal[int](0)) before the loop widens it, and compile each helper twice (seconds each).
        n_price = np.int64(0)
        for c in range(n_countries):
            if has_supply[c] and has_buyer[c]:
                price_var[c] = n_price
                var_country[n_price] = c
                n_price += 1
        n_vars = n_price
        for c in range(n_countries):
            if price_var[c] >= 0 and np.isfinite(export_quota[g, c]):
                quota_var[c] = n_vars
                var_country[n_vars] = c
                n_vars += 1
        for c in range(n_countries):
            reservation[c] = np.inf
            if has_supply[c] and stockpile_release[g, c] > 0.0:
                reservation[c] = 0.0
        for idx in range(producer_ptr[g], producer_ptr[g + 1]):
            p = producer_order[idx]
            c = producer_country[p]
            if capacity[p] > 0.0 and unit_cost[p] < reservation[c]:
                reservation[c] = unit_cost[p]
        for c in range(n_countries):
            if has_supply[c] and price_var[c] < 0:
                pr = min(max(reservation[c], price_floor[g] * pref), price_cap[g] * pref)
                price_domestic[g, c] = pr
                price_export[g, c] = pr * (1.0 + export_duty[g, c])
                offered = stockpile_release[g, c]
                for idx in range(producer_ptr[g], producer_ptr[g + 1]):
                    p = producer_order[idx]
                    if producer_country[p] == c:
                        s_p, _ = producer_supply(
                            pr, capacity[p], unit_cost[p], full_capacity_price[p], supply_elasticity[p]
                        )
                        offered += s_p
                supply_offered[g, c] = offered
        if n_price == 0:
            converged[g] = True
            for e in range(edge_ptr[g], edge_ptr[g + 1]):
                edge_delivered_price[e] = np.nan  # no origin of this good is priced this step
            continue
        warm_start = True
        for i in range(n_price):
            c = var_country[i]
            p0 = initial_price[g, c]
            if not (p0 > 0.0 and np.isfinite(p0)):
                p0 = pref
                warm_start = False
            v = np.log(p0)
            x[i] = min(max(v, lo), hi)
        for i in range(n_price, n_vars):
            c = var_country[i]
            r0 = initial_rent[g, c]
            x[i] = r0 / pref if (r0 > 0.0 and np.isfinite(r0)) else 0.0

        data = (
            reference_price,
            sigma,
            price_cap,
            price_floor,
            producer_country,
            capacity,
            unit_cost,
            full_capacity_price,
            supply_elasticity,
            s_planned,
            s_elasticity,
            s_weights,
            s_pass,
            ban_intensity,
            export_quota,
            export_duty,
            import_tariff,
            transport_cost,
            stockpile_release,
            QUANTITY_FLOOR,
        )
        # A warm start (last step's prices) may be cleared already: where the caller expects it
        # (check_warm_start), check its residual before paying for the Jacobian. A cold start
        # (reference prices) practically never is. The residual does not depend on whether the
        # Jacobian is computed, so the iterates are the same either way.
        have_jacobian = not (warm_start and check_warm_start[g])
        norm = _evaluate_good(g, x, have_jacobian, n_price, n_vars, structure, data, work, residual, jac)
        it = 0
        slow = 0  # consecutive Newton steps that barely cut the residual
        skip_newton = 0  # Newton steps still to skip after a failed line search
        newton_failures = 0
        while norm > tolerance and it < max_iterations:
            it += 1
            # Newton has had half the budget (it can crawl without tripping the rules below, e.g.
            # beside a supply curve that jumps at unit cost): the fallback alone for the rest.
            rescue = it > max_iterations // 2
            sweep = method == METHOD_FALLBACK or rescue or skip_newton > 0 or slow >= SLOW_STEPS
            if skip_newton > 0:
                skip_newton -= 1
            if not sweep:
                if not have_jacobian:
                    norm = _evaluate_good(g, x, bool(True), n_price, n_vars, structure, data, work, residual, jac)
                    have_jacobian = True
                merit = 0.0
                any_flat = False
                for i in range(n_vars):
                    step[i] = flat_target[i] - x[i] if flat[i] else -residual[i]
                    merit += residual[i] * residual[i]
                    if flat[i] and step[i] != 0.0:
                        any_flat = True
                accepted = _lu_solve(jac, step, n_vars)
                if accepted:
                    accepted = False
                    alpha = 1.0
                    # Probably the last step (FINAL_STEP_SHARE): its trial point without the Jacobian.
                    trial_jacobian = not (norm <= FINAL_STEP_SHARE * sqrt_tolerance)
                    for _ in range(LINE_SEARCH_STEPS):
                        for i in range(n_vars):
                            x_trial[i] = x[i] + alpha * step[i]
                        for i in range(n_price):
                            x_trial[i] = min(max(x_trial[i], lo), hi)
                        for i in range(n_price, n_vars):
                            if x_trial[i] < 0.0:
                                x_trial[i] = 0.0
                        trial_norm = _evaluate_good(
                            g,
                            x_trial,
                            trial_jacobian,
                            n_price,
                            n_vars,
                            structure,
                            data,
                            work,
                            residual_trial,
                            jac_trial,
                        )
                        trial_merit = 0.0
                        for i in range(n_vars):
                            trial_merit += residual_trial[i] * residual_trial[i]
                        # Armijo decrease; a step that moves flat variables (no slope to promise a
                        # decrease) only has to not increase the merit: they move monotonically
                        # toward where their residual points.
                        if trial_merit <= (1.0 - 1e-4 * alpha) * merit or (any_flat and trial_merit <= merit):
                            accepted = True
                            break
                        alpha *= 0.5
                if accepted:
                    # Adopt the trial point without re-evaluating it; its Jacobian, where it was
                    # evaluated (else the next Newton step evaluates it at this point first).
                    for i in range(n_vars):
                        x[i] = x_trial[i]
                        residual[i] = residual_trial[i]
                    if trial_jacobian:
                        for i in range(n_vars):
                            for j in range(n_vars):
                                jac[i, j] = jac_trial[i, j]
                    have_jacobian = trial_jacobian
                    slow = 0 if trial_norm <= SLOW_RATIO * norm else slow + 1
                    norm = trial_norm
                    newton_failures = 0
                else:
                    # No descent along Newton's direction (a kink, a flat or singular Jacobian): do a
                    # fallback sweep now, and skip Newton for a while if it keeps failing.
                    sweep = True
                    newton_failures += 1
                    skip_newton = (1 << min(newton_failures, 6)) - 1
            if sweep:
                slow = 0
                tol_1d = max(0.1 * tolerance, 1e-3 * norm)
                # Newton's safeguard settles the unknowns whose residual is within a factor 10 of the
                # largest (at the last point evaluated at x); the fallback alone settles all of them.
                worst = 0.0
                for i in range(n_vars):
                    worst = max(worst, abs(residual[i]))
                n_selected = 0
                for i in range(n_vars):
                    selected[i] = method == METHOD_FALLBACK or rescue or abs(residual[i]) >= SWEEP_SHARE * worst
                    n_selected += 1 if selected[i] else 0
                before = norm
                norm = _fallback_sweep(
                    g, x, lo, n_price, n_vars, structure, data, work, residual, jac, tol_1d, selected
                )
                if n_selected < n_vars and norm > SLOW_RATIO * before:
                    # settling the worst unknowns alone did not help: sweep over all of them
                    for i in range(n_vars):
                        selected[i] = True
                    norm = _fallback_sweep(
                        g, x, lo, n_price, n_vars, structure, data, work, residual, jac, tol_1d, selected
                    )
                have_jacobian = True
        # Certificate: the residual reported is the one evaluated at the returned point.
        iterations[g] = it
        residual_norm[g] = norm
        converged[g] = norm <= tolerance

        # ---- Allocation at the solution: quota and capacity rationing, pro rata. ----
        export_ratio = np.ones(n_countries)
        supply_ratio = np.ones(n_countries)
        for i in range(n_price):
            c = var_country[i]
            quota = export_quota[g, c]
            exp_c = exports_o[c]
            if exp_c > quota:
                export_ratio[c] = quota / exp_c
            total = demand_o[c] - exp_c + exp_c * export_ratio[c]
            if total > supply_o[c]:
                supply_ratio[c] = supply_o[c] / total
        for idx in range(row_ptr[g], row_ptr[g + 1]):
            r = row_order[idx]  # position in the caller's order, for the outputs
            q = s_planned[idx]
            if q <= 0.0:
                continue
            a = 0.0
            for k in range(k_max):
                e = s_edge[idx, k]
                if e >= 0:
                    a += s_weights[idx, k] * edge_avail[e] * edge_pw[e]
            if a <= 0.0:
                continue
            log_big_p = np.log(a) / (1.0 - sigma)
            big_p = np.exp(log_big_p)
            quantity = q * np.exp(-s_elasticity[idx] * (log_big_p - log_pref))
            row_price_index[r] = big_p
            d = row_firm_country[idx]
            total_demand = 0.0
            total_delivered = 0.0
            spend = 0.0
            for k in range(k_max):
                e = s_edge[idx, k]
                if e < 0:
                    continue
                wk = s_weights[idx, k] * edge_avail[e]
                if wk <= 0.0:
                    continue
                o = s_origin[idx, k]
                xk = wk * edge_pw[e] / a * big_p * quantity / edge_price[e]
                ratio = supply_ratio[o] * edge_pass[e] * s_pass[idx, k]
                if o != d:
                    ratio *= export_ratio[o]
                delivered = xk * ratio
                total_demand += xk
                total_delivered += delivered
                spend += delivered * edge_price[e]
                row_flow[r, k] = delivered
                edge_flow[e] += delivered
                sold[g, o] += delivered
                if o != d:
                    exported[g, o] += delivered
            row_demand[r] = total_demand
            row_delivered[r] = total_delivered
            row_rationed[r] = max(total_demand - total_delivered, 0.0)
            row_expenditure[r] = spend
        for e in range(edge_ptr[g], edge_ptr[g + 1]):
            edge_delivered_price[e] = edge_price[e] if price_var[edge_origin[e]] >= 0 else np.nan
        for i in range(n_price):
            c = var_country[i]
            price_domestic[g, c] = price[c]
            price_export[g, c] = price[c] * (1.0 + export_duty[g, c]) + rent[c]
            quota_rent[g, c] = rent[c]
            supply_offered[g, c] = supply_o[c]
            used = sold[g, c] / supply_o[c] if supply_o[c] > 0.0 else 0.0
            if used > 1.0:
                used = 1.0
            release_used[g, c] = stockpile_release[g, c] * used
        for idx in range(producer_ptr[g], producer_ptr[g + 1]):
            p = producer_order[idx]
            c = producer_country[p]
            if price_var[c] < 0:
                continue
            s, _ = producer_supply(price[c], capacity[p], unit_cost[p], full_capacity_price[p], supply_elasticity[p])
            used = sold[g, c] / supply_o[c] if supply_o[c] > 0.0 else 0.0
            if used > 1.0:
                used = 1.0
            producer_output[p] = s * used


# Compiled here, after all definitions, rather than with ``@njit`` decorators: the functions stay plain
# in the source so that the mutation tester can change them (mutmut skips decorated functions; see
# docs/mutation.md). Numba resolves the calls between these globals when it compiles, at the first call,
# so every name below is already the compiled dispatcher by then. Under ``NUMBA_DISABLE_JIT=1`` ``njit``
# returns the plain function.
build_structure = njit(cache=True)(build_structure)
producer_supply = njit(cache=True)(producer_supply)
supply_curve = njit(cache=True)(supply_curve)
_unit_row = njit(cache=True)(_unit_row)
_lu_solve = njit(cache=True)(_lu_solve)
_evaluate_good = njit(cache=True)(_evaluate_good)
_settle_unknown = njit(cache=True)(_settle_unknown)
_fallback_sweep = njit(cache=True)(_fallback_sweep)
clear_all_goods = njit(cache=True)(clear_all_goods)
