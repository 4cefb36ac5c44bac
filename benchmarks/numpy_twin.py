"""NumPy twin of the numba market-clearing kernel, for benchmarks and cross-checks only.

:func:`clear_markets_numpy` runs the SAME iteration as :func:`sim.market.kernel.clear_all_goods`,
written as plain vectorised NumPy (no numba, no Python loop over purchase rows, sourcing slots,
edges or producers; the only Python loops are over goods, Newton iterations and line-search
trials):

* the same unknowns per good: ``y_o = log p_o`` for every origin with supply and at least one buyer,
  then ``rho_o = rent_o / reference_price`` for those of them under a finite export quota;
* the same residuals in the mid-function form (relative excess demand ``(D - S) / (D + S + scale)``
  with the kernel's ``quantity_scale``; log quota slack, exports beyond a quota not counted as sold; floor/cap and ``[0, rho_max]`` boxes);
* the same analytic (generalised) Jacobian, assembled by ``np.bincount`` over all ordered pairs of
  open sourcing slots of a purchase row, including the kernel's flat-row rule (``FLAT_ROW``,
  ``FLAT_STEP``, restart above the lowest unit cost at ``FLAT_ONSET``);
* the same Armijo backtracking (40 halvings, ``merit_trial <= (1 - 1e-4 alpha) merit``, or no increase
  when the step moves flat variables), the same
  projected tatonnement fallback, the same warm start and the same pro-rata allocation at the end.

One deliberate difference: the Newton system is solved with LAPACK (``np.linalg.solve``), as a
straightforward NumPy code would, instead of the kernel's hand-written elimination; the pivoting
rule is the same (partial pivoting) so the two agree to rounding. A singular system (LAPACK error or
a non-finite step) sends the twin to the tatonnement step, like a failed ``_lu_solve``.

It is slow on purpose: it is the yardstick for "what the numba kernel buys us" and a second
implementation to catch kernel bugs. Run ``python benchmarks/numpy_twin.py`` for a quick
agreement check against the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.market import kernel as _kernel
from sim.market.kernel import DEFAULT_MAX_ITERATIONS, DEFAULT_TOLERANCE, FLAT_ROW

__all__ = ["TwinStructure", "TwinResult", "build_structure", "clear_markets_numpy"]

#: Line-search halvings before the tatonnement fallback (as in the kernel).
LINE_SEARCH_STEPS = 40
#: Armijo constant on the squared residual (as in the kernel).
ARMIJO = 1e-4
#: Share of the supply span with a linear onset (0 = none; follows the kernel's constant if it has one).
LINEAR_ONSET = float(getattr(_kernel, "LINEAR_ONSET", 0.0))
#: Log-price step of a flat price row, and where a market below cost restarts (the kernel's constants).
FLAT_STEP = float(_kernel.FLAT_STEP)
FLAT_ONSET = float(_kernel.FLAT_ONSET)


@dataclass(frozen=True)
class TwinStructure:
    """Same fields and meaning as :class:`sim.market.MarketStructure` (a ``MarketStructure`` works too)."""

    row_order: np.ndarray
    row_ptr: np.ndarray
    edge_good: np.ndarray
    edge_origin: np.ndarray
    edge_destination: np.ndarray
    row_edge: np.ndarray
    edge_ptr: np.ndarray
    producer_order: np.ndarray
    producer_ptr: np.ndarray


@dataclass(frozen=True)
class TwinResult:
    """Same fields and meaning as :class:`sim.market.MarketResult`."""

    price_domestic: np.ndarray
    price_export: np.ndarray
    quota_rent: np.ndarray
    supply_offered: np.ndarray
    sold: np.ndarray
    exports: np.ndarray
    edge_good: np.ndarray
    edge_origin: np.ndarray
    edge_destination: np.ndarray
    edge_flow: np.ndarray
    edge_price: np.ndarray
    demand: np.ndarray
    delivered: np.ndarray
    rationed: np.ndarray
    price_index: np.ndarray
    expenditure: np.ndarray
    row_flow: np.ndarray
    producer_output: np.ndarray
    stockpile_release_used: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray


def _ptr(keys: np.ndarray, n: int) -> np.ndarray:
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr


def build_structure(market) -> TwinStructure:
    """NumPy version of :func:`sim.market.kernel.build_structure` (same edge numbering).

    Edges are numbered by first appearance when the purchase rows are visited sorted by good (stable)
    and their slots in order, exactly as the kernel numbers them, so edge arrays line up.
    """
    C, G = int(market.n_countries), int(market.reference_price.shape[0])
    row_good = market.row_good
    R, K = market.sourcing_origin.shape
    row_order = np.argsort(row_good, kind="stable")
    dest = market.firm_country[market.row_firm]
    so = market.sourcing_origin[row_order]
    valid = (so >= 0).ravel()
    keys = ((row_good[row_order][:, None] * C + so) * C + dest[row_order][:, None]).ravel()[valid]
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    sorted_edge = np.full(R * K, -1, dtype=np.int64)
    sorted_edge[valid] = rank[inverse.ravel()]
    row_edge = np.empty((R, K), dtype=np.int64)
    row_edge[row_order] = sorted_edge.reshape(R, K)
    ukeys = uniq[order]
    edge_good = ukeys // (C * C)
    producer_order = np.argsort(market.producer_good, kind="stable")
    return TwinStructure(
        row_order=row_order,
        row_ptr=_ptr(row_good, G),
        edge_good=edge_good,
        edge_origin=(ukeys // C) % C,
        edge_destination=ukeys % C,
        row_edge=row_edge,
        edge_ptr=_ptr(edge_good, G),
        producer_order=producer_order,
        producer_ptr=_ptr(market.producer_good, G),
    )


def _producer_supply(price, capacity, unit_cost, full_capacity_price, supply_elasticity):
    """Vectorised :func:`sim.market.kernel.producer_supply`: quantities and d/dlog p.

    Nothing at or below unit cost, a linear onset (the chord) over the first ``LINEAR_ONSET`` of the
    span, the power curve above it, full capacity from ``full_capacity_price`` on.
    """
    active = (capacity > 0.0) & (price > unit_cost)
    span = full_capacity_price - unit_cost
    u = (price - unit_cost) / span
    onset = active & (u < LINEAR_ONSET)
    part = active & ~onset & (u < 1.0)
    full = active & (u >= 1.0)
    u_safe = np.where(part, u, 1.0)
    slope = capacity * LINEAR_ONSET ** (supply_elasticity - 1.0) if LINEAR_ONSET > 0.0 else np.zeros_like(capacity)
    q = np.where(full, capacity, np.where(part, capacity * u_safe**supply_elasticity, np.where(onset, slope * u, 0.0)))
    gap = np.where(part, price - unit_cost, 1.0)
    dq = np.where(part, price * supply_elasticity * q / gap, np.where(onset, price * slope / span, 0.0))
    return q, dq


class _Good:
    """Everything about one good that stays fixed during its Newton iteration, plus ``evaluate``."""

    def __init__(self, m, g, st, rows, out):
        C = int(m.n_countries)
        self.g = g
        self.sigma = sigma = float(m.armington_elasticity[g])
        self.pref = pref = float(m.reference_price[g])
        self.log_pref = np.log(pref)
        self.lo = np.log(m.price_floor[g] * pref)
        self.hi = np.log(m.price_cap[g] * pref)
        self.cap_multiple = float(m.price_cap[g])
        self.oms = 1.0 - sigma

        r0, r1 = int(st.row_ptr[g]), int(st.row_ptr[g + 1])
        q, eps, origin, edge, w, dest = (a[r0:r1] for a in rows)
        self.row_global = st.row_order[r0:r1]
        self.n_rows = r1 - r0
        p0, p1 = int(st.producer_ptr[g]), int(st.producer_ptr[g + 1])
        prods = st.producer_order[p0:p1]
        pc = m.producer_country[prods]
        pcap = m.capacity[prods]
        release = m.stockpile_release[g]

        # Origins with supply (producers with capacity or a stockpile release) and with a buyer.
        has_supply = release > 0.0
        has_supply[pc[pcap > 0.0]] = True
        oo = np.where(origin >= 0, origin, 0)
        ban_slot = m.ban_intensity[g, oo, dest[:, None]]
        buyer = (q[:, None] > 0.0) & (origin >= 0) & (w > 0.0) & (ban_slot < 1.0)
        has_buyer = np.zeros(C, dtype=bool)
        has_buyer[origin[buyer]] = True
        is_var = has_supply & has_buyer
        self.vc = vc = np.flatnonzero(is_var)
        self.n_price = n_price = vc.size
        price_var = np.full(C, -1, dtype=np.int64)
        price_var[vc] = np.arange(n_price)
        quota = m.export_quota[g]
        self.vq = vq = vc[np.isfinite(quota[vc])]
        self.n_quota = n_quota = vq.size
        self.n_vars = n_vars = n_price + n_quota
        quota_var = np.full(C, -1, dtype=np.int64)
        quota_var[vq] = n_price + np.arange(n_quota)
        self.q_pv = price_var[vq]  # price variable of each quota origin

        # Reservation price per origin: 0 with a stockpile release, else the lowest unit cost of a
        # producer with capacity. Supplying origins nobody can buy from are priced at it.
        reservation = np.full(C, np.inf)
        reservation[has_supply & (release > 0.0)] = 0.0
        with_cap = pcap > 0.0
        np.minimum.at(reservation, pc[with_cap], m.unit_cost[prods][with_cap])
        self.reservation_v = reservation[vc]
        nonvar = np.flatnonzero(has_supply & ~is_var)
        if nonvar.size:
            pr = np.minimum(np.maximum(reservation[nonvar], m.price_floor[g] * pref), m.price_cap[g] * pref)
            out.price_domestic[g, nonvar] = pr
            out.price_export[g, nonvar] = pr * (1.0 + m.export_duty[g, nonvar])
            pr_c = np.zeros(C)
            pr_c[nonvar] = pr
            sel = np.flatnonzero((~is_var[pc]) & has_supply[pc])
            sp = prods[sel]
            s, _ = _producer_supply(
                pr_c[pc[sel]], m.capacity[sp], m.unit_cost[sp], m.full_capacity_price[sp], m.supply_elasticity[sp]
            )
            offered = np.bincount(np.concatenate([np.arange(C), pc[sel]]), np.concatenate([release, s]), minlength=C)
            out.supply_offered[g, nonvar] = offered[nonvar]
        if n_price == 0:
            return

        self.quantity_scale = 1e-14 * max(float(pcap.sum()) + float(release.sum()), float(q.sum())) + 1e-100
        self.release_v = release[vc]
        self.quota_q = quota[vq]
        self.quota_all = quota[vc]
        self.duty_q = m.export_duty[g, vq]
        self.duty_v = m.export_duty[g, vc]

        # Producers of origins with a price variable.
        psel = np.flatnonzero(price_var[pc] >= 0)
        self.prod = prods[psel]
        self.prod_pv = price_var[pc[psel]]
        self.prod_args = (
            m.capacity[self.prod],
            m.unit_cost[self.prod],
            m.full_capacity_price[self.prod],
            m.supply_elasticity[self.prod],
        )
        self.supply_index = np.concatenate([np.arange(n_price), self.prod_pv])

        # Active edges of the good (origin has a price variable) and their fixed data.
        e0, e1 = int(st.edge_ptr[g]), int(st.edge_ptr[g + 1])
        self.e0, self.e1 = e0, e1
        eo, ed = st.edge_origin[e0:e1], st.edge_destination[e0:e1]
        act = np.flatnonzero(price_var[eo] >= 0)
        self.edge_active = act
        ao, ad = eo[act], ed[act]
        self.ae_pv = price_var[ao]
        self.ae_dom = ao == ad
        self.ae_duty = m.export_duty[g, ao]
        self.ae_tc = m.transport_cost[g, ao, ad]
        self.ae_tariff = m.import_tariff[g, ao, ad]
        remap = np.full(e1 - e0, -1, dtype=np.int64)
        remap[act] = np.arange(act.size)

        # Open sourcing slots (kernel: row has planned > 0, slot has an edge, weight x availability
        # > 0, where availability is 0 for a full ban or an origin without a price variable and 1
        # otherwise). An informal measure (ban in (0, 1)) keeps the weight; only the share
        # ``1 - ban`` of the order gets through ("pass").
        pv_slot = np.where(origin >= 0, price_var[oo], -1)
        wa = w * np.where(ban_slot >= 1.0, 0.0, 1.0)
        open_ = (q[:, None] > 0.0) & (edge >= 0) & (pv_slot >= 0) & (wa > 0.0)
        ri, ki = np.nonzero(open_)  # row-major: grouped by row, slots in order
        self.slot_row, self.slot_k = ri, ki
        self.slot_ae = remap[edge[ri, ki] - e0]
        self.slot_edge = edge[ri, ki]
        self.slot_wa = wa[ri, ki]
        self.slot_pass = 1.0 - ban_slot[ri, ki]
        if m.order_pass is not None:  # export licences: the row's own approved share (kernel: slot_pass)
            self.slot_pass = self.slot_pass * m.order_pass[self.row_global[ri], ki]
        self.slot_pv = pv_slot[ri, ki]
        so = origin[ri, ki]
        self.slot_foreign = so != dest[ri]
        slot_qv = np.where(self.slot_foreign, quota_var[so], -1)
        self.slot_sigma_minus_eps = sigma - eps[ri]
        self.q = q
        self.eps = eps

        # All ordered pairs (k, j) of open slots of the same row, and where each pair's Jacobian
        # terms land: d_demand[pv_k, pv_j], d_demand[pv_k, qv_j], d_exports[qv_k, pv_j], d_exports[qv_k, qv_j].
        n_r = np.bincount(ri, minlength=self.n_rows)
        row_first = np.cumsum(n_r) - n_r
        rep = n_r[ri]
        n_pairs = int(rep.sum())
        pk = np.repeat(np.arange(ri.size), rep)
        block_start = np.repeat(np.cumsum(rep) - rep, rep)
        pj = row_first[ri[pk]] + (np.arange(n_pairs) - block_start)
        self.pair_k, self.pair_j = pk, pj
        self.pair_diag = np.flatnonzero(pk == pj)
        kpv, jpv, kqv, jqv = self.slot_pv[pk], self.slot_pv[pj], slot_qv[pk], slot_qv[pj]
        off = n_price * n_vars
        self.m_rq = np.flatnonzero(jqv >= 0)
        self.m_ex = np.flatnonzero(kqv >= 0)
        self.m_exr = np.flatnonzero((kqv >= 0) & (jqv >= 0))
        self.jac_target = np.concatenate(
            [
                kpv * n_vars + jpv,
                kpv[self.m_rq] * n_vars + jqv[self.m_rq],
                off + (kqv[self.m_ex] - n_price) * n_vars + jpv[self.m_ex],
                off + (kqv[self.m_exr] - n_price) * n_vars + jqv[self.m_exr],
            ]
        )
        self.jac_cells = off + n_quota * n_vars
        self.eye = np.eye(n_vars)

    # ------------------------------------------------------------------------------------------
    def evaluate(self, x):
        """Residual, generalised Jacobian, flat rows and the state at ``x`` (kernel: ``_evaluate_good``)."""
        n_price, n_vars, pref, sigma = self.n_price, self.n_vars, self.pref, self.sigma
        y = x[:n_price]
        rho = x[n_price:]
        price_v = np.exp(y)
        rent_v = np.zeros(n_price)
        rent_v[self.q_pv] = rho * pref

        # Delivered prices on the active edges.
        po = price_v[self.ae_pv]
        fob = po * (1.0 + self.ae_duty)
        base = fob + rent_v[self.ae_pv] + self.ae_tc
        pe = base * (1.0 + self.ae_tariff)
        theta = fob / base
        phi = pref / base
        dom = self.ae_dom
        pe[dom] = po[dom]
        theta[dom] = 1.0
        phi[dom] = 0.0
        pw = np.exp(self.oms * np.log(pe))

        # CES sourcing: flows per open slot.
        sr, sae = self.slot_row, self.slot_ae
        v = self.slot_wa * pw[sae]
        a = np.bincount(sr, v, minlength=self.n_rows)
        has = a > 0.0
        a_safe = np.where(has, a, 1.0)
        log_p = np.log(a_safe) / self.oms
        scale = np.where(has, self.q * np.exp(log_p - self.eps * (log_p - self.log_pref)) / a_safe, 0.0)
        xk = v * scale[sr] / pe[sae] * self.slot_pass  # what gets through to the buyer
        demand_v = np.bincount(self.slot_pv, xk, minlength=n_price)
        exports_v = np.bincount(self.slot_pv, np.where(self.slot_foreign, xk, 0.0), minlength=n_price)

        # Jacobian of demand and exports w.r.t. the unknowns, accumulated over slot pairs.
        s = self.slot_sigma_minus_eps * v / a_safe[sr]
        pk, pj = self.pair_k, self.pair_j
        xkk = xk[pk]
        coef = xkk * s[pj]
        dg = self.pair_diag
        coef[dg] -= sigma * xkk[dg]
        cy = coef * theta[sae[pj]]
        cr = coef * phi[sae[pj]]
        acc = np.bincount(
            self.jac_target,
            np.concatenate([cy, cr[self.m_rq], cy[self.m_ex], cr[self.m_exr]]),
            minlength=self.jac_cells,
        )
        off = n_price * n_vars
        d_demand = acc[:off].reshape(n_price, n_vars)
        d_exports = acc[off:].reshape(self.n_quota, n_vars)

        # Supply per origin: stockpile release first, then producers (kernel order).
        sq, dsq = _producer_supply(price_v[self.prod_pv], *self.prod_args)
        supply_v = np.bincount(self.supply_index, np.concatenate([self.release_v, sq]), minlength=n_price)
        dsupply_v = np.bincount(self.prod_pv, dsq, minlength=n_price)

        # Price rows: y - mid(lo, hi, y + z) with z the relative excess demand.
        residual = np.empty(n_vars)
        jac = np.empty((n_vars, n_vars))
        flat = np.zeros(n_vars, dtype=bool)
        flat_target = np.zeros(n_vars)
        # Exports beyond an origin's quota cannot be sold: its market clears against the quota.
        demand_eff = demand_v.copy()
        d_demand_eff = d_demand
        if self.n_quota:
            over = exports_v[self.q_pv] - self.quota_q
            over_idx = np.flatnonzero(over > 0.0)
            if over_idx.size:
                demand_eff[self.q_pv[over_idx]] -= over[over_idx]
                d_demand_eff = d_demand.copy()
                d_demand_eff[self.q_pv[over_idx]] -= d_exports[over_idx]
        den = demand_eff + supply_v + self.quantity_scale
        z = (demand_eff - supply_v) / den
        t = y + z
        low = t <= self.lo
        high = ~low & (t >= self.hi)
        mid = ~low & ~high
        residual[:n_price] = np.where(low, y - self.lo, np.where(high, y - self.hi, -z))
        inv = 1.0 / (den * den)
        dds = np.zeros((n_price, n_vars))
        dds[:, :n_price] = np.diag(dsupply_v)
        jp = -(2.0 * supply_v[:, None] * d_demand_eff - 2.0 * demand_eff[:, None] * dds) * inv[:, None]
        row_max = np.abs(jp).max(axis=1) if n_vars else np.zeros(n_price)
        is_flat = mid & (row_max <= FLAT_ROW)
        flat[:n_price] = is_flat
        # Flat row: one log unit the way excess demand points, within the bounds; a market below
        # every producer's cost with buyers waiting restarts just above the lowest unit cost.
        res_v = self.reservation_v
        with np.errstate(divide="ignore"):
            log_res = np.log(np.where(res_v > 0.0, res_v, 1.0))
        restart = (z > 0.0) & (supply_v <= 0.0) & (res_v > 0.0) & (log_res >= y)
        with np.errstate(divide="ignore", invalid="ignore"):
            restart_target = np.minimum(np.log(np.where(restart, res_v * (1.0 + FLAT_ONSET), 1.0)), self.hi)
        flat_target[:n_price] = np.where(
            restart,
            restart_target,
            np.where(z > 0.0, np.minimum(y + FLAT_STEP, self.hi), np.maximum(y - FLAT_STEP, self.lo)),
        )
        unit = ~mid | is_flat
        jp[unit] = self.eye[:n_price][unit]
        jac[:n_price] = jp

        # Quota rows: rho - mid(0, rho_max, rho - slack) with the log quota slack.
        if self.n_quota:
            ee = exports_v[self.q_pv]
            qq = self.quota_q
            slack = np.log((qq + self.quantity_scale) / (ee + self.quantity_scale))
            fob_ratio = price_v[self.q_pv] * (1.0 + self.duty_q) / pref
            rho_max = np.maximum(self.cap_multiple - fob_ratio, 0.0)
            tq = rho - slack
            qlow = tq <= 0.0
            qhigh = ~qlow & (tq >= rho_max)
            qmid = ~qlow & ~qhigh
            residual[n_price:] = np.where(qlow, rho, np.where(qhigh, rho - rho_max, slack))
            jq = -d_exports / (ee + self.quantity_scale)[:, None]
            # Flat rent row (exports do not respond to the rent): aim at the ceiling or at zero.
            q_row_max = np.abs(jq).max(axis=1) if n_vars else np.zeros(self.n_quota)
            q_flat = qmid & (q_row_max <= FLAT_ROW)
            flat[n_price:] = q_flat
            flat_target[n_price:] = np.where(slack < 0.0, rho_max, 0.0)
            jq[~qmid | q_flat] = self.eye[n_price:][~qmid | q_flat]
            up = np.flatnonzero(qhigh & (rho_max > 0.0))
            jq[up, self.q_pv[up]] += fob_ratio[up]
            jac[n_price:] = jq

        norm = float(np.abs(residual).max()) if n_vars else 0.0
        state = (price_v, rent_v, pe, pw, v, a, demand_v, exports_v, supply_v)
        return norm, residual, jac, flat, flat_target, state

    def project(self, x):
        """Clip prices to [log floor, log cap] and rents to >= 0, in place."""
        np.clip(x[: self.n_price], self.lo, self.hi, out=x[: self.n_price])
        np.maximum(x[self.n_price :], 0.0, out=x[self.n_price :])
        return x

    # ------------------------------------------------------------------------------------------
    def solve(self, m, initial_price, initial_rent, tolerance, max_iterations):
        """Semismooth Newton with Armijo line search and tatonnement fallback (kernel loop)."""
        g, pref = self.g, self.pref
        p0 = initial_price[g, self.vc]
        p0 = np.where((p0 > 0.0) & np.isfinite(p0), p0, pref)
        r0 = initial_rent[g, self.vq]
        x = np.concatenate(
            [
                np.minimum(np.maximum(np.log(p0), self.lo), self.hi),
                np.where((r0 > 0.0) & np.isfinite(r0), r0 / pref, 0.0),
            ]
        )
        norm, residual, jac, flat, flat_target, state = self.evaluate(x)
        it = 0
        while norm > tolerance and it < max_iterations:
            it += 1
            merit = float(residual @ residual)
            rhs = np.where(flat, flat_target - x, -residual)
            any_flat = bool(np.any(flat & (rhs != 0.0)))
            try:
                step = np.linalg.solve(jac, rhs)
                ok = bool(np.all(np.isfinite(step)))
            except np.linalg.LinAlgError:
                ok = False
            accepted = False
            if ok:
                alpha = 1.0
                for _ in range(LINE_SEARCH_STEPS):
                    x_trial = self.project(x + alpha * step)
                    trial = self.evaluate(x_trial)
                    r_t = trial[1]
                    m_t = float(r_t @ r_t)
                    if m_t <= (1.0 - ARMIJO * alpha) * merit or (any_flat and m_t <= merit):
                        accepted = True
                        break
                    alpha *= 0.5
            if accepted:
                x = x_trial
                norm, residual, jac, flat, flat_target, state = trial
            else:
                x = self.project(x - 0.5 * residual)
                norm, residual, jac, flat, flat_target, state = self.evaluate(x)
        return x, it, norm, state

    # ------------------------------------------------------------------------------------------
    def allocate(self, m, out, state):
        """Quota and capacity rationing, pro rata, at the solution (kernel: allocation block)."""
        g, pref, n_price = self.g, self.pref, self.n_price
        price_v, rent_v, pe, pw, v, a, demand_v, exports_v, supply_v = state
        vc = self.vc
        qa = self.quota_all
        with np.errstate(divide="ignore", invalid="ignore"):
            export_ratio = np.where(exports_v > qa, qa / exports_v, 1.0)
            total = demand_v - exports_v + exports_v * export_ratio
            supply_ratio = np.where(total > supply_v, supply_v / total, 1.0)

        sr, sae = self.slot_row, self.slot_ae
        has = a > 0.0
        a_safe = np.where(has, a, 1.0)
        big_p = np.exp(np.log(a_safe) / self.oms)
        quantity = self.q * np.exp(-self.eps * np.log(big_p / pref))
        live = has[sr]
        xk = np.where(live, self.slot_wa * pw[sae] / a_safe[sr] * big_p[sr] * quantity[sr] / pe[sae], 0.0)
        ratio = (
            supply_ratio[self.slot_pv] * self.slot_pass * np.where(self.slot_foreign, export_ratio[self.slot_pv], 1.0)
        )
        delivered = xk * ratio
        rows_g = self.row_global
        n_rows = self.n_rows
        row_has = has & (self.q > 0.0)
        out.price_index[rows_g[row_has]] = big_p[row_has]
        out.row_flow[rows_g[sr], self.slot_k] = delivered
        out.edge_flow += np.bincount(self.slot_edge, delivered, minlength=out.edge_flow.shape[0])
        sold_v = np.bincount(self.slot_pv, delivered, minlength=n_price)
        out.sold[g, vc] = sold_v
        out.exports[g, vc] = np.bincount(self.slot_pv, np.where(self.slot_foreign, delivered, 0.0), minlength=n_price)
        dem = np.bincount(sr, xk, minlength=n_rows)
        dlv = np.bincount(sr, delivered, minlength=n_rows)
        out.demand[rows_g] = dem
        out.delivered[rows_g] = dlv
        out.rationed[rows_g] = np.maximum(dem - dlv, 0.0)
        out.expenditure[rows_g] = np.bincount(sr, delivered * pe[sae], minlength=n_rows)

        ep = np.full(self.e1 - self.e0, np.nan)
        ep[self.edge_active] = pe
        out.edge_price[self.e0 : self.e1] = ep
        out.price_domestic[g, vc] = price_v
        out.price_export[g, vc] = price_v * (1.0 + self.duty_v) + rent_v
        out.quota_rent[g, vc] = rent_v
        out.supply_offered[g, vc] = supply_v
        with np.errstate(divide="ignore", invalid="ignore"):
            used = np.where(supply_v > 0.0, np.minimum(sold_v / np.where(supply_v > 0.0, supply_v, 1.0), 1.0), 0.0)
        out.stockpile_release_used[g, vc] = self.release_v * used
        sq, _ = _producer_supply(price_v[self.prod_pv], *self.prod_args)
        out.producer_output[self.prod] = sq * used[self.prod_pv]


class _Out:
    """Mutable output buffers (turned into a :class:`TwinResult` at the end)."""

    def __init__(self, G, C, R, K, P, st):
        E = st.edge_good.shape[0]
        self.price_domestic = np.full((G, C), np.nan)
        self.price_export = np.full((G, C), np.nan)
        self.quota_rent = np.zeros((G, C))
        self.supply_offered = np.zeros((G, C))
        self.sold = np.zeros((G, C))
        self.exports = np.zeros((G, C))
        self.edge_flow = np.zeros(E)
        self.edge_price = np.zeros(E)
        self.demand = np.zeros(R)
        self.delivered = np.zeros(R)
        self.rationed = np.zeros(R)
        self.price_index = np.full(R, np.nan)
        self.expenditure = np.zeros(R)
        self.row_flow = np.zeros((R, K))
        self.producer_output = np.zeros(P)
        self.stockpile_release_used = np.zeros((G, C))
        self.iterations = np.zeros(G, dtype=np.int64)
        self.residual = np.zeros(G)
        self.converged = np.zeros(G, dtype=bool)


def clear_markets_numpy(
    market,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    structure=None,
) -> TwinResult:
    """Clear every good's market like :func:`sim.market.clear_markets` (no validation, never raises).

    Args:
        market: A valid :class:`sim.market.MarketInputs` (``initial_price``/``initial_rent`` honoured).
        tolerance: Largest relative excess demand accepted as cleared.
        max_iterations: Newton iterations allowed per good.
        structure: A :class:`TwinStructure` or :class:`sim.market.MarketStructure`; built when omitted.
    """
    m = market
    C, G = int(m.n_countries), int(m.reference_price.shape[0])
    R, K = m.sourcing_origin.shape
    P = m.producer_good.shape[0]
    st = structure if structure is not None else build_structure(m)
    initial_price = m.initial_price if m.initial_price is not None else np.full((G, C), np.nan)
    initial_rent = m.initial_rent if m.initial_rent is not None else np.zeros((G, C))
    ro = st.row_order
    rows = (
        m.planned_purchase[ro],
        m.demand_elasticity[ro],
        m.sourcing_origin[ro],
        st.row_edge[ro],
        m.sourcing_weights[ro],
        m.firm_country[m.row_firm[ro]],
    )
    out = _Out(G, C, R, K, P, st)
    for g in range(G):
        good = _Good(m, g, st, rows, out)
        if good.n_price == 0:
            out.converged[g] = True
            continue
        _, it, norm, state = good.solve(m, initial_price, initial_rent, tolerance, max_iterations)
        out.iterations[g] = it
        out.residual[g] = norm
        out.converged[g] = norm <= tolerance
        good.allocate(m, out, state)
    return TwinResult(
        out.price_domestic,
        out.price_export,
        out.quota_rent,
        out.supply_offered,
        out.sold,
        out.exports,
        st.edge_good,
        st.edge_origin,
        st.edge_destination,
        out.edge_flow,
        out.edge_price,
        out.demand,
        out.delivered,
        out.rationed,
        out.price_index,
        out.expenditure,
        out.row_flow,
        out.producer_output,
        out.stockpile_release_used,
        out.iterations,
        out.residual,
        out.converged,
    )


if __name__ == "__main__":  # quick agreement check against the kernel
    from sim.market import clear_markets
    from sim.market.synthetic import synthetic_market

    for C, G, F in [(5, 3, 100), (20, 10, 2000)]:
        mk = synthetic_market(C, G, F, seed=1)
        ref = clear_markets(mk)
        tw = clear_markets_numpy(mk)
        rel = np.nanmax(np.abs(tw.price_domestic - ref.price_domestic) / ref.price_domestic)
        print(
            f"C={C} G={G} F={F}: max rel price diff {rel:.2e}; iterations kernel {ref.iterations.tolist()} twin {tw.iterations.tolist()}"
        )
