"""An independent, deliberately plain solver of the market-clearing equations, and closed forms.

Nothing here imports :mod:`sim.market.kernel`: the equations are re-implemented from their
statement (see ``sim/market/clearing.py`` and the kernel's module docstring) with dense NumPy
arrays and solved with SciPy, so that agreement with the kernel is evidence that both are right.

Per good ``g`` (sigma = Armington elasticity, Pref = reference price):

* every origin ``o`` with supply (a producer with capacity, or a stockpile release) and at least one
  buyer has a producer price ``p_o``; an origin under a finite export quota may carry a rent
  ``r_o >= 0``;
* delivered price ``p_od = p_o`` at home, else ``(p_o (1 + duty_o) + r_o + transport_od)(1 + tariff_od)``;
* a purchase row with open slots (weight ``w_k > 0``, origin with supply, edge not fully banned:
  ``ban < 1``) has ``A = sum w_k p_k^(1-sigma)``, ``P = A^(1/(1-sigma))``, ``X = planned (P/Pref)^(-e)``
  and orders ``x_k = w_k p_k^(-sigma) P^sigma X``;
* an informal measure (``0 < ban < 1``) does not change the order, but only ``(1 - ban) x_k`` gets
  through the border: that is what the origin sells and the buyer receives, the rest is rationed
  (``MarketInputs`` docstring); a full ban (``ban = 1``) closes the slot and buyers re-route;
* supply ``S_o(p) = release_o + sum capacity min(1, s(u))`` with ``u = (p - c)^+/(fcp - c)`` and
  ``s(u) = u^eps``, except over the linear onset ``u < 0.05`` where ``s(u) = 0.05^(eps-1) u`` (the
  chord, continuous at 0.05; ``producer_supply``'s docstring);
* equilibrium: ``D_o = S_o`` for every priced origin (``D_o``: what gets through from ``o``),
  ``E_o <= Q_o``, ``r_o >= 0``, ``r_o (Q_o - E_o) = 0``.

The solver works in log prices and handles the quota complementarity by active sets: the set ``B``
of binding quotas gets the rents as unknowns and ``log E_o = log Q_o`` as equations; it starts from
no binding quota, adds the violated ones and drops negative rents, and falls back to enumerating
every subset. It only covers equilibria strictly inside the price floor and cap (and the export
price cap); otherwise it raises :class:`NotInterior`, so tests can discard such markets.

An origin with supply but no buyer is not an unknown: any price at which it offers nothing
clears it, and by the kernel's convention its price is its reservation price (lowest unit cost
of a producer with capacity, 0 with a stockpile release) clipped to the floor/cap band.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = [
    "NotInterior",
    "ReferenceFailure",
    "ReferenceEquilibrium",
    "solve_reference",
    "evaluate",
    "origin_supply",
    "closed_form_isoelastic",
    "closed_form_binding_quota",
    "closed_form_symmetric_origins",
    "closed_form_partial_ban",
    "closed_form_release_only",
]

#: Accepted max-norm of the log residuals of the reference solution.
RESIDUAL_TOLERANCE = 1e-11
#: Relative tolerance for "exports exceed the quota" in the active-set logic.
QUOTA_TOLERANCE = 1e-9
#: Share of the span from unit cost to full-capacity price over which supply rises linearly.
LINEAR_ONSET = 0.05


class NotInterior(Exception):
    """The equilibrium touches the price floor, the price cap or the export price cap."""


class ReferenceFailure(RuntimeError):
    """The reference solver itself failed (no consistent active set, or no convergence)."""


@dataclass
class ReferenceEquilibrium:
    """Dense reference solution (same units and conventions as :class:`sim.market.MarketResult`)."""

    price: np.ndarray  # [G, C] producer price, NaN without supply
    rent: np.ndarray  # [G, C]
    supply: np.ndarray  # [G, C] S_o at the price
    demand_origin: np.ndarray  # [G, C] D_o
    exports: np.ndarray  # [G, C] E_o
    flow: np.ndarray  # [G, C, C] origin -> destination
    row_flow: np.ndarray  # [R, K] what gets through (orders times 1 - ban)
    demand: np.ndarray  # [R] orders
    delivered: np.ndarray  # [R]
    price_index: np.ndarray  # [R] NaN where the row has no open origin
    binding: np.ndarray  # [G, C] bool: quota binding (rent is an unknown)
    max_residual: float


# --------------------------------------------------------------------------------------------------
# Equations


def _has_supply(m) -> np.ndarray:
    G, C = m.n_goods, int(m.n_countries)
    out = m.stockpile_release > 0
    for p in range(m.capacity.shape[0]):
        if m.capacity[p] > 0:
            out[m.producer_good[p], m.producer_country[p]] = True
    return out.reshape(G, C)


def _supply(m, g: int, price: np.ndarray) -> np.ndarray:
    """``S_o(p_o)`` for every country (0 where the price is NaN)."""
    C = int(m.n_countries)
    s = m.stockpile_release[g].copy()
    for p in np.flatnonzero(m.producer_good == g):
        c = m.producer_country[p]
        if m.capacity[p] <= 0 or not np.isfinite(price[c]):
            continue
        u = max(price[c] - m.unit_cost[p], 0.0) / (m.full_capacity_price[p] - m.unit_cost[p])
        eps = m.supply_elasticity[p]
        share = LINEAR_ONSET ** (eps - 1.0) * u if u < LINEAR_ONSET else min(1.0, u**eps)
        s[c] += m.capacity[p] * share
    return s[:C]


class _Good:
    """The rows of one good as dense arrays, and the demand system at given prices and rents."""

    def __init__(self, m, g: int, has_supply: np.ndarray):
        self.m, self.g = m, g
        self.C = int(m.n_countries)
        self.pref = float(m.reference_price[g])
        self.sigma = float(m.armington_elasticity[g])
        self.rows = np.flatnonzero((m.row_good == g) & (m.planned_purchase > 0))
        origin = m.sourcing_origin[self.rows]
        self.dest = m.firm_country[m.row_firm[self.rows]]
        valid = origin >= 0
        self.origin = np.where(valid, origin, 0)
        ban = m.ban_intensity[g][self.origin, self.dest[:, None]]
        w = np.where(valid & has_supply[g][self.origin] & (ban < 1.0), m.sourcing_weights[self.rows], 0.0)
        self.w = w
        self.through = np.where(w > 0, 1.0 - ban, 0.0)  # share of an order that crosses the border
        self.open = w > 0
        self.foreign = self.origin != self.dest[:, None]
        self.has_buyer = np.zeros(self.C, dtype=bool)
        self.has_buyer[self.origin[self.open]] = True
        self.has_foreign_buyer = np.zeros(self.C, dtype=bool)
        self.has_foreign_buyer[self.origin[self.open & self.foreign]] = True

    def delivered(self, price: np.ndarray, rent: np.ndarray) -> np.ndarray:
        """Dense ``[C, C]`` delivered prices (NaN rows for origins without a price)."""
        m, g = self.m, self.g
        fob = price * (1.0 + m.export_duty[g]) + rent
        pd = (fob[:, None] + m.transport_cost[g]) * (1.0 + m.import_tariff[g])
        idx = np.arange(self.C)
        pd[idx, idx] = price
        return pd

    def flows(self, price: np.ndarray, rent: np.ndarray):
        """Orders ``[Rg, K]``, price indices ``[Rg]``, quantities ``[Rg]``, ``D_o`` and ``E_o``.

        ``D_o`` and ``E_o`` count what gets through the border (orders times ``1 - ban``).
        """
        m, sigma = self.m, self.sigma
        pd = self.delivered(price, rent)[self.origin, self.dest[:, None]]
        pd = np.where(self.open, pd, 1.0)
        with np.errstate(divide="ignore"):
            a = np.sum(np.where(self.open, self.w * pd ** (1.0 - sigma), 0.0), axis=1)
            big_p = np.where(a > 0, a, np.nan) ** (1.0 / (1.0 - sigma))
        e = m.demand_elasticity[self.rows]
        quantity = np.where(a > 0, m.planned_purchase[self.rows] * (big_p / self.pref) ** (-e), 0.0)
        x = np.where(self.open, self.w * pd ** (-sigma) * (big_p**sigma * quantity)[:, None], 0.0)
        x = np.where(np.isfinite(x), x, 0.0)
        passed = x * self.through
        d_o = np.bincount(self.origin.ravel(), weights=passed.ravel(), minlength=self.C)
        e_o = np.bincount(self.origin.ravel(), weights=(passed * self.foreign).ravel(), minlength=self.C)
        return x, big_p, quantity, d_o, e_o


# --------------------------------------------------------------------------------------------------
# Solver


def _solve_active_set(good: _Good, priced: np.ndarray, binding: list[int], reservation: np.ndarray, start: np.ndarray):
    """Solve the square system for one active set; returns ``(price, rent, max_residual)``.

    Unknowns are unconstrained: ``p_o = c_o + exp(y_o)`` (``c_o`` the reservation price, so supply
    is positive) and ``r_o = Pref exp(z_o)`` (a binding quota has a positive rent). Equations are
    ``log D_o - log S_o`` and ``log E_o - log Q_o``. Whether the solution respects the floor, the
    cap and the export price cap is checked by the caller.
    """
    m, g, C, pref = good.m, good.g, good.C, good.pref
    n_p = priced.size
    quota = m.export_quota[g]
    base = np.where(np.isfinite(reservation[priced]), reservation[priced], 0.0)

    def unpack(v):
        price = np.full(C, np.nan)
        rent = np.zeros(C)
        with np.errstate(over="ignore"):
            price[priced] = base + np.exp(v[:n_p])
            rent[binding] = pref * np.exp(v[n_p:])
        return price, rent

    def fun(v):
        price, rent = unpack(v)
        with np.errstate(all="ignore"):
            _, _, _, d_o, e_o = good.flows(price, rent)
            s_o = _supply(m, g, price)
            f = np.concatenate(
                [np.log(d_o[priced]) - np.log(s_o[priced]), np.log(e_o[binding]) - np.log(quota[binding])]
            )
        return np.where(np.isfinite(f), f, 1e3)

    def pack(price, rent_multiple):
        y = np.log(np.maximum(price[priced] - base, 1e-3 * pref))
        return np.concatenate([y, np.full(len(binding), np.log(rent_multiple))])

    best = None
    starts = [pack(start, 0.1), pack(start, 1.0), pack(np.full(C, pref), 0.01), pack(np.full(C, 3 * pref), 3.0)]
    # far starts too: an inelastic buyer of an origin with a long supply curve clears it far above Pref
    starts += [pack(np.full(C, 10 * pref), 1.0), pack(np.full(C, 30 * pref), 10.0)]
    for v0 in starts:
        for method in ("hybr", "lm"):
            with np.errstate(all="ignore"):
                sol = optimize.root(
                    fun,
                    v0,
                    method=method,
                    options={"xtol": 1e-15} | ({"maxfev": 4000} if method == "hybr" else {"maxiter": 4000}),
                )
            res = float(np.max(np.abs(fun(sol.x)))) if sol.x.size else 0.0
            if best is None or res < best[1]:
                best = (sol.x, res)
            if res <= RESIDUAL_TOLERANCE:
                price, rent = unpack(sol.x)
                return price, rent, res
    price, rent = unpack(best[0])
    return price, rent, best[1]


def _solve_good(good: _Good, has_supply: np.ndarray, margin: float):
    m, g, C, pref = good.m, good.g, good.C, good.pref
    priced = np.flatnonzero(has_supply[g] & good.has_buyer)
    floor, cap = float(m.price_floor[g]) * pref, float(m.price_cap[g]) * pref
    # Reservation price per origin: nothing is offered below it.
    reservation = np.full(C, np.inf)
    reservation[m.stockpile_release[g] > 0] = 0.0
    for p in np.flatnonzero((m.producer_good == g) & (m.capacity > 0)):
        c = m.producer_country[p]
        reservation[c] = min(reservation[c], m.unit_cost[p])
    candidates = [int(c) for c in priced if np.isfinite(m.export_quota[g, c]) and good.has_foreign_buyer[c]]

    def attempt(binding, start):
        price, rent, res = _solve_active_set(good, priced, binding, reservation, start)
        with np.errstate(all="ignore"):  # a failed attempt may leave prices that overflow a power
            _, _, _, _, e_o = good.flows(price, rent)
        over = [c for c in candidates if c not in binding and e_o[c] > m.export_quota[g, c] * (1 + QUOTA_TOLERANCE)]
        negative = [c for c in binding if rent[c] <= 1e-13 * pref]
        return price, rent, res, over, negative

    start = np.full(C, pref)
    tried = set()
    binding: list[int] = []
    solution = None
    for _ in range(2 * len(candidates) + 2):
        key = tuple(sorted(binding))
        if key in tried:
            break
        tried.add(key)
        price, rent, res, over, negative = attempt(binding, start)
        if res <= RESIDUAL_TOLERANCE:
            start = price
            if not over and not negative:
                solution = (price, rent, res, binding)
                break
        binding = sorted((set(binding) | set(over)) - set(negative))
    if solution is None:
        for n in range(len(candidates) + 1):
            for subset in itertools.combinations(candidates, n):
                if subset in tried:
                    continue
                price, rent, res, over, negative = attempt(list(subset), start)
                if not over and not negative and res <= RESIDUAL_TOLERANCE:
                    solution = (price, rent, res, list(subset))
                    break
            if solution is not None:
                break
    if solution is None:
        raise ReferenceFailure(f"good {g}: no consistent active set found")
    price, rent, res, binding = solution
    p = price[priced]
    if np.any(p <= floor * (1 + margin)) or np.any(p >= cap * (1 - margin)):
        raise NotInterior(f"good {g}: prices {p} outside ({floor}, {cap})")
    export_price = price[priced] * (1 + m.export_duty[g, priced]) + rent[priced]
    if np.any(export_price >= cap * (1 - margin)):
        raise NotInterior(f"good {g}: export price {export_price} at the cap {cap}")
    # Origins with supply but no buyer: reservation price, clipped to the band (kernel convention).
    for c in np.flatnonzero(has_supply[g] & ~good.has_buyer):
        price[c] = min(max(reservation[c], floor), cap)
    return price, rent, res, binding


def solve_reference(market, *, margin: float = 1e-6) -> ReferenceEquilibrium:
    """Solve ``market`` (small: a few countries and goods) with the plain dense reference solver.

    Raises:
        NotInterior: some price (or export price) is within ``margin`` (relative) of the floor or cap.
        ReferenceFailure: the reference solver could not find an equilibrium.
    """
    m = market
    G, C = m.n_goods, int(m.n_countries)
    R, K = m.sourcing_origin.shape
    has_supply = _has_supply(m)
    out = ReferenceEquilibrium(
        price=np.full((G, C), np.nan),
        rent=np.zeros((G, C)),
        supply=np.zeros((G, C)),
        demand_origin=np.zeros((G, C)),
        exports=np.zeros((G, C)),
        flow=np.zeros((G, C, C)),
        row_flow=np.zeros((R, K)),
        demand=np.zeros(R),
        delivered=np.zeros(R),
        price_index=np.full(R, np.nan),
        binding=np.zeros((G, C), dtype=bool),
        max_residual=0.0,
    )
    for g in range(G):
        good = _Good(m, g, has_supply)
        price, rent, res, binding = _solve_good(good, has_supply, margin)
        x, big_p, quantity, d_o, e_o = good.flows(np.where(good.has_buyer, price, np.nan), rent)
        out.price[g] = price
        out.rent[g] = rent
        out.binding[g, binding] = True
        out.supply[g] = _supply(m, g, price)
        out.demand_origin[g] = d_o
        out.exports[g] = e_o
        passed = x * good.through
        out.row_flow[good.rows] = passed
        out.demand[good.rows] = x.sum(axis=1)
        out.delivered[good.rows] = passed.sum(axis=1)
        out.price_index[good.rows] = big_p
        np.add.at(out.flow[g], (good.origin.ravel(), np.repeat(good.dest, K)), passed.ravel())
        out.max_residual = max(out.max_residual, res)
    return out


def origin_supply(market, price: np.ndarray) -> np.ndarray:
    """``S_o(p_o)`` ``[G, C]`` at producer prices ``price`` ``[G, C]`` (NaN price: no producer counted)."""
    return np.stack([_supply(market, g, price[g]) for g in range(market.n_goods)])


def evaluate(market, price: np.ndarray, rent: np.ndarray) -> dict:
    """The demand side at given producer prices and rents ``[G, C]`` (before any rationing).

    Returns dense arrays: ``orders [R, K]``, ``row_flow [R, K]`` (what gets through the border),
    ``demand [R]`` (orders), ``price_index [R]`` (NaN without an
    open origin), ``demand_origin [G, C]`` (``D_o``), ``exports [G, C]`` (``E_o``), ``delivered_price
    [G, C, C]``. Origins whose price is NaN are treated as having no supply.
    """
    m = market
    G, C = m.n_goods, int(m.n_countries)
    R, K = m.sourcing_origin.shape
    has_supply = np.isfinite(price)
    out = {
        "orders": np.zeros((R, K)),
        "row_flow": np.zeros((R, K)),
        "demand": np.zeros(R),
        "price_index": np.full(R, np.nan),
        "demand_origin": np.zeros((G, C)),
        "exports": np.zeros((G, C)),
        "delivered_price": np.full((G, C, C), np.nan),
    }
    for g in range(G):
        good = _Good(m, g, has_supply)
        x, big_p, _, d_o, e_o = good.flows(price[g], np.nan_to_num(rent[g]))
        out["orders"][good.rows] = x
        out["row_flow"][good.rows] = x * good.through
        out["demand"][good.rows] = x.sum(axis=1)
        out["price_index"][good.rows] = big_p
        out["demand_origin"][g] = d_o
        out["exports"][g] = e_o
        out["delivered_price"][g] = good.delivered(price[g], np.nan_to_num(rent[g]))
    return out


# --------------------------------------------------------------------------------------------------
# Closed forms


def closed_form_isoelastic(q: float, e: float, pref: float, capacity: float, fcp: float, eps: float) -> float:
    """One origin, one producer with zero unit cost (``S = A p^eps``, ``A = capacity / fcp^eps``,
    valid between the linear onset and capacity: ``0.05 fcp <= p <= fcp``) and one domestic firm with
    isoelastic demand ``q (p/Pref)^-e``: the price ``p* = (q Pref^e / A)^(1/(e + eps))``."""
    a = capacity / fcp**eps
    return (q * pref**e / a) ** (1.0 / (e + eps))


def closed_form_binding_quota(
    q_f: float, e: float, pref: float, quota: float, capacity: float, fcp: float, eps: float,
    duty: float = 0.0, tariff: float = 0.0, transport: float = 0.0,
) -> dict:  # fmt: skip
    """Exporter with no domestic demand under a binding quota ``Q``, one foreign firm (zero unit
    cost, price between the linear onset and capacity).

    The exporter sells exactly ``Q``: ``p_o = (Q/A)^(1/eps)``. The foreign firm buys ``Q`` at a
    delivered price ``pi' = Pref (q_f/Q)^(1/e)`` with ``pi' = (pi + t)(1 + tau)``, so the export (FOB)
    price is ``pi = pi'/(1 + tau) - t`` and the rent is ``pi - p_o (1 + duty)`` (must be > 0).
    """
    a = capacity / fcp**eps
    p_o = (quota / a) ** (1.0 / eps)
    delivered = pref * (q_f / quota) ** (1.0 / e)
    export_price = delivered / (1.0 + tariff) - transport
    rent = export_price - p_o * (1.0 + duty)
    return {"price": p_o, "export_price": export_price, "rent": rent, "delivered": delivered}


def closed_form_symmetric_origins(
    q: float, e: float, pref: float, capacity: float, fcp: float, eps: float, duty: float = 0.0, tariff: float = 0.0
) -> dict:
    """Two identical origins (one zero-unit-cost producer each, no transport cost, same duty and
    tariff) and one firm in a third country sourcing half-and-half from both.

    By symmetry both prices equal ``p``; the delivered price is ``k p`` with
    ``k = (1 + duty)(1 + tariff)``, the firm's CES index is ``k p`` too (weights sum to one), and
    each origin sells half the firm's quantity: ``A p^eps = (q/2) (k p / Pref)^-e``, so
    ``p = ((q/2) (Pref/k)^e / A)^(1/(eps + e))``.
    """
    a = capacity / fcp**eps
    k = (1.0 + duty) * (1.0 + tariff)
    p = ((q / 2.0) * (pref / k) ** e / a) ** (1.0 / (eps + e))
    quantity = q * (k * p / pref) ** (-e)
    return {"price": p, "price_index": k * p, "flow_each": quantity / 2.0}


def closed_form_partial_ban(
    q: float, e: float, pref: float, ban: float, capacity: float, fcp: float, eps: float,
    duty: float = 0.0, tariff: float = 0.0,
) -> dict:  # fmt: skip
    """One origin, one foreign firm sourcing only from it through an edge with an informal
    measure of intensity ``b < 1`` (no transport cost, zero unit cost).

    The firm's index is the delivered price ``P = k p`` (``k = (1 + duty)(1 + tariff)``; an informal
    measure does not change sourcing), it orders ``X = q (P/Pref)^-e`` and receives ``(1 - b) X``,
    which is what the origin sells: ``A p^eps = (1 - b) q (k p/Pref)^-e``, so
    ``p = ((1 - b) q (Pref/k)^e / A)^(1/(eps + e))``; ``b X`` is rationed at the border.
    """
    a = capacity / fcp**eps
    k = (1.0 + duty) * (1.0 + tariff)
    p = ((1.0 - ban) * q * (pref / k) ** e / a) ** (1.0 / (eps + e))
    order = q * (k * p / pref) ** (-e)
    return {"price": p, "price_index": k * p, "order": order, "flow": (1.0 - ban) * order, "rationed": ban * order}


def closed_form_release_only(q: float, e: float, pref: float, release: float) -> float:
    """One origin whose only supply is a stockpile release ``R`` (inelastic), one domestic firm:
    ``q (p/Pref)^-e = R`` so ``p = Pref (q/R)^(1/e)``."""
    return pref * (q / release) ** (1.0 / e)
