"""Tests of the market-clearing kernel (``sim.market.clear_markets``).

* invariants over generated markets (Hypothesis, :mod:`strategies`): mass balance, signs, bans,
  quotas and rents, the complementarity conditions, convergence;
* agreement with an independent dense solver (:mod:`reference_solver`) and with closed forms;
* comparative statics (bans, quotas, capacity, tariffs);
* determinism, in process and against the pure-Python kernel (``NUMBA_DISABLE_JIT=1``);
* input validation and non-convergence reporting.

Hypothesis profiles are set in ``conftest.py`` (``HYPOTHESIS_PROFILE=dev`` for a longer hunt).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, event, given, note, reject, settings
from hypothesis import strategies as st
from numba.core import config as numba_config
from numba.core.dispatcher import Dispatcher
from numpy.testing import assert_allclose
from reference_solver import (
    NotInterior,
    ReferenceFailure,
    closed_form_binding_quota,
    closed_form_isoelastic,
    closed_form_partial_ban,
    closed_form_release_only,
    closed_form_symmetric_origins,
    evaluate,
    origin_supply,
    solve_reference,
)
from scipy.optimize import brentq
from strategies import example_markets, market_and_edge, markets, replace

from sim.market import (
    MarketClearingError,
    MarketInputs,
    MarketResult,
    MarketStructure,
    PreparedMarket,
    clear_markets,
)
from sim.market import kernel as kernel_module

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

#: Relative slack for "never" in comparative statics (the kernel clears to 1e-10 relative).
STATICS_RTOL = 1e-9
#: Relative agreement of the compiled and pure-Python (``NUMBA_DISABLE_JIT``) kernels: both clear
#: to 1e-10 relative excess demand, so their prices and flows agree far closer than this.
NOJIT_RTOL = 1e-9


# ==================================================================================================
# Helpers


def has_supply(m: MarketInputs) -> np.ndarray:
    """``[G, C]``: a producer with capacity or a stockpile release."""
    out = m.stockpile_release > 0
    live = m.capacity > 0
    out[m.producer_good[live], m.producer_country[live]] = True
    return out


def has_buyer(m: MarketInputs) -> np.ndarray:
    """``[G, C]``: some purchase row with planned purchases can buy from the origin (kernel's rule)."""
    sup = has_supply(m)
    out = np.zeros_like(sup)
    for r in range(m.row_good.shape[0]):
        if m.planned_purchase[r] <= 0:
            continue
        g, d = m.row_good[r], m.firm_country[m.row_firm[r]]
        for k, o in enumerate(m.sourcing_origin[r]):
            if o >= 0 and m.sourcing_weights[r, k] > 0 and m.ban_intensity[g, o, d] < 1 and sup[g, o]:
                out[g, o] = True
    return out


def band(m: MarketInputs) -> tuple[np.ndarray, np.ndarray]:
    """Floor and cap prices ``[G, 1]``."""
    pref = m.reference_price[:, None]
    return m.price_floor[:, None] * pref, m.price_cap[:, None] * pref


def quantity_scale(m: MarketInputs) -> float:
    """A market-size scale for absolute tolerances on quantities (markets come in any units)."""
    return float(max(m.planned_purchase.sum(), m.stockpile_release.sum(), m.capacity.sum(), 1e-300))


def edge_index(res: MarketResult) -> dict[tuple[int, int, int], int]:
    return {
        (int(g), int(o), int(d)): e
        for e, (g, o, d) in enumerate(zip(res.edge_good, res.edge_origin, res.edge_destination, strict=True))
    }


def result_arrays(res: MarketResult) -> dict[str, np.ndarray]:
    return {f.name: np.asarray(getattr(res, f.name)) for f in fields(res)}


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


#: Iterations (sweeps) allowed to the fallback when it runs alone: it converges linearly.
FALLBACK_ITERATIONS = 5000


@pytest.fixture(params=["newton", "fallback"])
def method(request) -> str:
    """Solve with the default solver, and with its fallback sweeps alone (so that a bug in the
    fallback fails a test even where Newton alone would clear the market)."""
    return request.param


def clear(m: MarketInputs, method: str = "newton", **kwargs) -> MarketResult:
    """``clear_markets`` with ``method``; the fallback alone gets more iterations (sweeps)."""
    if method == "fallback":
        kwargs.setdefault("max_iterations", FALLBACK_ITERATIONS)
    return clear_markets(m, method=method, **kwargs)


def one_good_market(
    n_countries: int,
    *,
    producers: list[dict],
    firms: list[dict],
    pref: float = 1.0,
    sigma: float = 3.0,
    cap: float = 1e3,
    floor: float = 1e-4,
    quota: dict | None = None,
    duty: dict | None = None,
    tariff: dict | None = None,
    transport: dict | None = None,
    ban: dict | None = None,
    release: dict | None = None,
) -> MarketInputs:
    """A one-good market from short descriptions (dicts keyed by country or by (origin, destination)).

    ``producers``: dicts with ``country, capacity, unit_cost, fcp, eps``; ``firms``: dicts with
    ``country, q, e, origins, weights``.
    """
    C = n_countries
    K = max(len(f["origins"]) for f in firms)
    origin = np.full((len(firms), K), -1)
    weights = np.zeros((len(firms), K))
    for i, f in enumerate(firms):
        origin[i, : len(f["origins"])] = f["origins"]
        weights[i, : len(f["weights"])] = f["weights"]

    def dense(spec, shape, fill=0.0):
        a = np.full(shape, fill)
        for key, v in (spec or {}).items():
            a[(0, *key) if isinstance(key, tuple) else (0, key)] = v
        return a

    return MarketInputs(
        n_countries=C,
        reference_price=[pref],
        armington_elasticity=[sigma],
        price_cap=[cap],
        price_floor=[floor],
        producer_country=[p["country"] for p in producers],
        producer_good=[0] * len(producers),
        capacity=[p["capacity"] for p in producers],
        unit_cost=[p.get("unit_cost", 0.0) for p in producers],
        full_capacity_price=[p["fcp"] for p in producers],
        supply_elasticity=[p["eps"] for p in producers],
        firm_country=[f["country"] for f in firms],
        row_firm=list(range(len(firms))),
        row_good=[0] * len(firms),
        planned_purchase=[f["q"] for f in firms],
        demand_elasticity=[f["e"] for f in firms],
        sourcing_origin=origin,
        sourcing_weights=weights,
        ban_intensity=dense(ban, (1, C, C)),
        export_quota=dense(quota, (1, C), np.inf),
        export_duty=dense(duty, (1, C)),
        import_tariff=dense(tariff, (1, C, C)),
        transport_cost=dense(transport, (1, C, C)),
        stockpile_release=dense(release, (1, C)),
    )


# ==================================================================================================
# Invariants over generated markets


@given(markets())
def test_quantities_finite_nonnegative_and_prices_where_supply(market):
    # holds whether or not the solver converged: the allocation enforces it
    res = clear_markets(market, allow_nonconvergence=True)
    sup = has_supply(market)
    assert np.all(np.isfinite(res.price_domestic[sup])) and np.all(res.price_domestic[sup] > 0)
    assert np.all(np.isnan(res.price_domestic[~sup])), "price where there is no supply"
    assert np.all(np.isnan(res.price_export[~sup]))
    assert np.all(np.isfinite(res.price_export[sup])) and np.all(res.price_export[sup] >= res.price_domestic[sup])
    floor, cap = band(market)
    floor, cap = np.broadcast_to(floor, sup.shape), np.broadcast_to(cap, sup.shape)
    assert np.all(res.price_domestic[sup] >= floor[sup] * (1 - 1e-12))
    assert np.all(res.price_domestic[sup] <= cap[sup] * (1 + 1e-12))
    for name in (
        "quota_rent", "supply_offered", "sold", "exports", "edge_flow", "demand", "delivered", "rationed",
        "expenditure", "row_flow", "producer_output", "stockpile_release_used", "residual",
    ):  # fmt: skip
        arr = getattr(res, name)
        assert np.all(np.isfinite(arr)), name
        assert np.all(arr >= 0), name
    # price index: positive where the row had an open origin, NaN otherwise
    pi = res.price_index
    assert np.all((pi > 0) | np.isnan(pi))
    assert np.all(res.delivered[np.isnan(pi)] == 0)
    assert res.converged.dtype == np.bool_ and res.iterations.min() >= 0


@given(markets())
def test_mass_balance(market):
    # holds whether or not the solver converged: the allocation enforces it
    res = clear_markets(market, allow_nonconvergence=True)
    G, C = market.n_goods, int(market.n_countries)
    tol = 1e-12 * quantity_scale(market)
    flow = res.flow_matrix(G, C)
    # each purchase row: delivered is the sum of its slot flows, never above demand
    assert_allclose(res.delivered, res.row_flow.sum(axis=1), rtol=1e-12, atol=tol)
    assert np.all(res.delivered <= res.demand * (1 + 1e-12) + tol)
    assert_allclose(res.rationed, np.maximum(res.demand - res.delivered, 0), rtol=1e-9, atol=tol)
    # each destination receives what its rows received; edge flows are the row flows summed
    dest = market.firm_country[market.row_firm]
    received = np.zeros((G, C))
    np.add.at(received, (market.row_good, dest), res.delivered)
    assert_allclose(received, flow.sum(axis=1), rtol=1e-12, atol=tol)
    by_slot = np.zeros((G, C, C))
    for r, k in np.argwhere(market.sourcing_origin >= 0):
        by_slot[market.row_good[r], market.sourcing_origin[r, k], dest[r]] += res.row_flow[r, k]
    assert_allclose(by_slot, flow, rtol=1e-12, atol=tol)
    assert np.all(res.row_flow[market.sourcing_origin < 0] == 0)
    # each origin sold what flowed out of it, exported what crossed a border, within its supply
    assert_allclose(res.sold, flow.sum(axis=2), rtol=1e-12, atol=tol)
    foreign = flow * (1 - np.eye(C))[None]
    assert_allclose(res.exports, foreign.sum(axis=2), rtol=1e-12, atol=tol)
    assert np.all(res.sold <= res.supply_offered * (1 + 1e-12) + tol)
    # sales come from producers and the stockpile release, each within its own offer
    made = np.zeros((G, C))
    np.add.at(made, (market.producer_good, market.producer_country), res.producer_output)
    assert_allclose(made + res.stockpile_release_used, res.sold, rtol=1e-9, atol=tol)
    assert np.all(res.producer_output <= market.capacity * (1 + 1e-12))
    assert np.all(res.stockpile_release_used <= market.stockpile_release * (1 + 1e-12))
    # supply offered is the supply curve at the price
    sup = has_supply(market)
    assert_allclose(res.supply_offered[sup], origin_supply(market, res.price_domestic)[sup], rtol=1e-12, atol=tol)
    # what each row paid: delivered quantities times delivered prices
    edges = edge_index(res)
    spend = np.zeros_like(res.expenditure)
    for r, k in np.argwhere(res.row_flow > 0):
        e = edges[(int(market.row_good[r]), int(market.sourcing_origin[r, k]), int(dest[r]))]
        spend[r] += res.row_flow[r, k] * res.edge_price[e]
    assert_allclose(res.expenditure, spend, rtol=1e-12, atol=1e-300)


@given(markets())
def test_bans_quotas_and_rents(market):
    res = clear_markets(market, allow_nonconvergence=True)
    G, C = market.n_goods, int(market.n_countries)
    flow = res.flow_matrix(G, C)
    banned = market.ban_intensity == 1.0
    assert np.all(flow[banned] == 0), "flow on a fully banned edge"
    dest = market.firm_country[market.row_firm]
    for r, k in np.argwhere(market.sourcing_origin >= 0):
        if market.ban_intensity[market.row_good[r], market.sourcing_origin[r, k], dest[r]] == 1.0:
            assert res.row_flow[r, k] == 0
    quota = market.export_quota
    assert np.all(res.exports <= quota * (1 + 1e-9)), "exports above the quota"
    assert np.all(res.quota_rent >= 0)
    assert np.all(res.quota_rent[~np.isfinite(quota)] == 0), "rent without a quota"
    pref = market.reference_price[:, None]
    positive = res.quota_rent > 1e-12 * pref
    assert res.converged.all(), f"did not clear: residual {res.residual}"
    assert np.all(res.exports[positive] >= quota[positive] * (1 - 1e-8)), "rent on a quota that does not bind"
    sup = has_supply(market)
    expected_export = res.price_domestic * (1 + market.export_duty) + res.quota_rent
    assert_allclose(res.price_export[sup], expected_export[sup], rtol=1e-14)
    _, cap = band(market)
    # the rent stops where the export price reaches the cap (to the solver's tolerance)
    assert np.all(res.price_export[positive] <= np.broadcast_to(cap, positive.shape)[positive] * (1 + 1e-9))


@given(markets())
def test_equilibrium_conditions_at_kernel_prices(market):
    """Recompute demand from the kernel's own prices with the reference equations and check the
    row-level outputs and the complementarity conditions of every priced origin."""
    res = clear_markets(market)
    tol = 1e-12 * quantity_scale(market)
    ev = evaluate(market, res.price_domestic, res.quota_rent)
    assert_allclose(res.demand, ev["demand"], rtol=1e-9, atol=tol)
    assert_allclose(res.price_index, ev["price_index"], rtol=1e-12, equal_nan=True)
    # what got through: never more than the reference flow at these prices, equal unless the origin
    # rations (at the cap, or exports at the quota); informal measures are in both
    assert np.all(res.row_flow <= ev["row_flow"] * (1 + 1e-9) + tol)
    buyer = has_buyer(market)
    for e in range(res.edge_flow.shape[0]):
        g, o, d = res.edge_good[e], res.edge_origin[e], res.edge_destination[e]
        if buyer[g, o]:
            assert_allclose(res.edge_price[e], ev["delivered_price"][g, o, d], rtol=1e-12)
        elif buyer[g].any():  # an origin that has no market this step: no delivered price
            assert np.isnan(res.edge_price[e])
        # else: KNOWN KERNEL BUG, 0.0 instead of NaN (test_edge_price_without_any_priced_origin_is_nan)

    floor, cap = band(market)
    shape = res.sold.shape
    floor, cap = np.broadcast_to(floor, shape), np.broadcast_to(cap, shape)
    priced = has_buyer(market)
    p, sold, supply = res.price_domestic, res.sold, res.supply_offered
    # what the origin can sell: its demand, with exports beyond the quota taken out (rationed)
    demand = ev["demand_origin"] - np.maximum(ev["exports"] - market.export_quota, 0.0)
    at_floor = p <= floor * (1 + 1e-9)
    at_cap = p >= cap * (1 - 1e-9)
    inside = priced & ~at_floor & ~at_cap
    # interior: everything offered is sold (D = S)
    assert_allclose(sold[inside], supply[inside], rtol=1e-8, atol=tol)
    # at the cap: excess demand, rationed so that all supply is sold
    sel = priced & at_cap
    assert np.all(demand[sel] >= supply[sel] * (1 - 1e-8) - tol)
    assert_allclose(sold[sel], supply[sel], rtol=1e-8, atol=tol)
    # at the floor: no excess demand
    sel = priced & at_floor
    assert np.all(demand[sel] <= supply[sel] * (1 + 1e-8) + tol)
    # rows whose origins all clear inside the band without a quota get all that crosses the border
    dest = market.firm_country[market.row_firm]
    plain = inside & ~np.isfinite(market.export_quota)
    for r in range(market.row_good.shape[0]):
        g = market.row_good[r]
        slots = [k for k, o in enumerate(market.sourcing_origin[r]) if o >= 0]
        if all(plain[g, market.sourcing_origin[r, k]] for k in slots):
            assert_allclose(res.row_flow[r], ev["row_flow"][r], rtol=1e-8, atol=tol)
            held = sum(
                ev["orders"][r, k] * market.ban_intensity[g, market.sourcing_origin[r, k], dest[r]] for k in slots
            )
            # (up to the clearing tolerance: a market cleared to 1e-10 may ration that share)
            assert_allclose(res.rationed[r], held, rtol=1e-8, atol=tol + 1e-9 * res.demand[r])


#: Relative excess demand (or quota overshoot) accepted by the independent certificate: the kernel
#: clears to 1e-10 on its own arithmetic; the reference equations, evaluated separately, add rounding.
CERTIFICATE_TOL = 1e-9


def assert_certificate(m: MarketInputs, res: MarketResult) -> None:
    """Check the equilibrium conditions at the kernel's prices and rents with the reference equations.

    Per priced origin, with ``D`` what buyers take (exports above the quota taken out) and ``S`` the
    supply curve at the price, the relative excess demand ``z = (D - S) / (D + S)`` is ~0 strictly
    inside the band, ``<= 0`` at the floor (unsold supply only there) and ``>= 0`` at the cap
    (rationed demand only there); exports stay within the quota, a positive rent only on a quota
    that binds, and exports above the quota only with the export price at the cap (then rationed).
    """
    ev = evaluate(m, res.price_domestic, res.quota_rent)
    quota = m.export_quota
    demand = ev["demand_origin"] - np.maximum(ev["exports"] - quota, 0.0)
    supply = origin_supply(m, res.price_domestic)
    priced = has_buyer(m)
    floor, cap = band(m)
    floor, cap = np.broadcast_to(floor, priced.shape), np.broadcast_to(cap, priced.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(demand + supply > 0, (demand - supply) / (demand + supply), 0.0)
    p = res.price_domestic
    at_floor = priced & (p <= floor * (1 + 1e-12))
    at_cap = priced & (p >= cap * (1 - 1e-12))
    inside = priced & ~at_floor & ~at_cap
    for g, c in np.argwhere(inside & (np.abs(z) > CERTIFICATE_TOL)):
        # Supply so steep that the last bits of the price move z by more than the tolerance: the
        # kernel then only promises a sign change of z within 8 ulps of the log price; check that.
        delta = 8 * np.finfo(float).eps * max(abs(np.log(p[g, c])), 1.0)
        zs = [z[g, c]]
        for factor in (np.exp(-delta), np.exp(delta)):
            q = p.copy()
            q[g, c] *= factor
            e2 = evaluate(m, q, res.quota_rent)
            d2 = (e2["demand_origin"] - np.maximum(e2["exports"] - quota, 0.0))[g, c]
            s2 = origin_supply(m, q)[g, c]
            zs.append((d2 - s2) / (d2 + s2))
        assert min(zs) <= CERTIFICATE_TOL and max(zs) >= -CERTIFICATE_TOL, f"excess demand inside the band: {zs}"
    assert np.all(z[at_floor] <= CERTIFICATE_TOL), f"excess demand at the floor: {z[at_floor]}"
    assert np.all(z[at_cap] >= -CERTIFICATE_TOL), f"unsold supply at the cap: {z[at_cap]}"
    # quotas: overshoot log(E/Q) ~<= 0; a rent only where it binds; rationing only at the cap
    limited = priced & np.isfinite(quota)
    pe = res.price_export
    export_at_cap = pe >= cap * (1 - 1e-9)
    pref = m.reference_price[:, None]
    for g, c in np.argwhere(limited):
        e, q, rent = ev["exports"][g, c], quota[g, c], res.quota_rent[g, c]
        if e > q * (1 + CERTIFICATE_TOL):
            assert export_at_cap[g, c], f"exports {e} above the quota {q} below the price cap (good {g}, origin {c})"
        if rent > 1e-9 * pref[g, 0]:
            assert e >= q * (1 - CERTIFICATE_TOL), f"rent {rent} on a quota {q} that does not bind (exports {e})"
    # what the kernel reports sold is what the reference equations say buyers took
    assert_allclose(res.sold[priced], np.minimum(demand, supply)[priced], rtol=1e-8, atol=1e-12 * quantity_scale(m))


@given(markets())
def test_every_market_clears_with_an_independent_certificate(market):
    """Every generated market clears (``clear_markets`` raises otherwise), and its prices and rents
    meet the equilibrium conditions recomputed independently."""
    res = clear_markets(market)
    assert_certificate(market, res)
    assert np.all(res.iterations <= kernel_module.DEFAULT_MAX_ITERATIONS)


@pytest.mark.slow
@settings(max_examples=1500)
@given(markets())
def test_every_market_clears_wide_search(market):
    """The same over many more generated markets (``make test-slow``)."""
    assert_certificate(market, clear_markets(market))


# ==================================================================================================
# Agreement with the reference solver and closed forms


def touches_band(m: MarketInputs, res: MarketResult, margin: float = 1e-6) -> bool:
    """Whether some priced origin's price or export price is within ``margin`` of the floor or cap."""
    floor, cap = band(m)
    shape = res.price_domestic.shape
    floor, cap = np.broadcast_to(floor, shape), np.broadcast_to(cap, shape)
    priced = has_buyer(m)
    p, pe = res.price_domestic[priced], res.price_export[priced]
    return bool(
        np.any(p <= floor[priced] * (1 + margin))
        or np.any(p >= cap[priced] * (1 - margin))
        or np.any(pe >= cap[priced] * (1 - margin))
    )


def interior_gaps(m: MarketInputs, price: np.ndarray, rent: np.ndarray) -> np.ndarray:
    """Relative excess demand ``(D - S) / (D + S)`` of the priced origins strictly inside the band
    (0 elsewhere), from the reference equations; ``D`` net of exports above the quota."""
    ev = evaluate(m, price, rent)
    demand = ev["demand_origin"] - np.maximum(ev["exports"] - m.export_quota, 0.0)
    supply = origin_supply(m, price)
    floor, cap = band(m)
    inside = has_buyer(m) & (price > floor * (1 + 1e-9)) & (price < cap * (1 - 1e-9))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(demand + supply > 0, (demand - supply) / (demand + supply), 0.0)
    return np.where(inside, z, 0.0)


def origin_price_indeterminate(m: MarketInputs, res: MarketResult) -> bool:
    """Whether moving one origin's price by 0.1% leaves every condition of its good met: the
    equilibrium is then not unique (e.g. buyers with e = 0 that source only from an origin whose
    supply is at capacity), and the kernel and the reference may pick different points of it."""
    for g, o in np.argwhere(has_buyer(m)):
        for factor in (1.001, 0.999):
            q = res.price_domestic.copy()
            q[g, o] *= factor
            if np.all(np.abs(interior_gaps(m, q, res.quota_rent)[g]) <= CERTIFICATE_TOL):
                return True
    return False


def level_indeterminate(m: MarketInputs, res: MarketResult) -> bool:
    """Whether some good's price level is not unique: all its buyers perfectly inelastic (e = 0) and
    every priced origin's supply flat at the kernel's prices (at capacity, or a release only), so
    scaling all its prices a little clears it too (the kernel and the reference may pick different
    points of that ray; the certificate tests check the kernel's)."""
    priced = has_buyer(m)
    dest = m.firm_country[m.row_firm]
    for g in range(m.n_goods):
        # the buyers of the good's priced origins (a row with no open priced origin buys nothing)
        rows = [
            r
            for r in np.flatnonzero((m.row_good == g) & (m.planned_purchase > 0))
            if any(
                o >= 0 and m.sourcing_weights[r, k] > 0 and m.ban_intensity[g, o, dest[r]] < 1 and priced[g, o]
                for k, o in enumerate(m.sourcing_origin[r])
            )
        ]
        if not priced[g].any() or not np.all(m.demand_elasticity[rows] == 0):
            continue
        up = res.price_domestic.copy()
        up[g] *= 1 + 1e-6
        before, after = origin_supply(m, res.price_domestic)[g], origin_supply(m, up)[g]
        if np.all(after[priced[g]] == before[priced[g]]):
            return True
    return False


def assert_matches_reference(market: MarketInputs, res: MarketResult, rtol: float = 1e-6) -> None:
    if level_indeterminate(market, res) or origin_price_indeterminate(market, res):
        event("equilibrium not unique: not compared")
        reject()
    try:
        ref = solve_reference(market)
    except NotInterior:
        reject()
    except ReferenceFailure:
        # The reference solves the square system without the floor and cap, which has no solution
        # when the equilibrium sits on them (e.g. inelastic demand above a release). Its root finder
        # can also fail on an interior equilibrium (a handful of the wide-search markets, in the
        # slow test); then the kernel's point must still pass the independent certificate.
        assert_certificate(market, res)
        event("reference solver failed" + (" (band)" if touches_band(market, res) else " (interior)"))
        reject()
    G, C = market.n_goods, int(market.n_countries)
    event(f"binding quotas: {int(ref.binding.sum())}")
    event(f"informal measures: {int(((market.ban_intensity > 0) & (market.ban_intensity < 1)).sum())}")
    note(f"reference prices {ref.price}, rents {ref.rent}, binding {ref.binding}")
    note(f"kernel prices {res.price_domestic}, rents {res.quota_rent}")
    atol = 1e-10 * quantity_scale(market)
    pref = market.reference_price[:, None]
    assert_allclose(res.price_domestic, ref.price, rtol=rtol, equal_nan=True, err_msg="price")
    assert_allclose(res.quota_rent / pref, ref.rent / pref, rtol=rtol, atol=1e-8, err_msg="quota rent")
    assert np.array_equal(res.quota_rent > 1e-8 * pref, ref.binding & (ref.rent > 1e-8 * pref))
    assert_allclose(res.flow_matrix(G, C), ref.flow, rtol=rtol, atol=atol, err_msg="edge flows")
    assert_allclose(res.row_flow, ref.row_flow, rtol=rtol, atol=atol, err_msg="row flows")
    assert_allclose(res.demand, ref.demand, rtol=rtol, atol=atol, err_msg="row demand")
    assert_allclose(res.delivered, ref.delivered, rtol=rtol, atol=atol, err_msg="row delivered")
    assert_allclose(res.price_index, ref.price_index, rtol=rtol, equal_nan=True, err_msg="price index")
    assert_allclose(res.exports, ref.exports, rtol=rtol, atol=atol, err_msg="exports")
    assert_allclose(res.sold, ref.demand_origin, rtol=rtol, atol=atol, err_msg="sold")
    assert_allclose(res.supply_offered, ref.supply, rtol=rtol, atol=atol, err_msg="supply")


@given(markets(interior=True))
def test_kernel_matches_reference_solver(market):
    assert_matches_reference(market, clear_markets(market))


#: A market the Newton solver does not clear (found by Hypothesis, 2026-12-03; the code before that
#: day's changes fails on it the same way): good 1 has three supplying origins, a binding export quota on
#: country 1 and a tariff into country 2, with Armington elasticity 8; after 200 iterations the largest
#: relative excess demand is still about 1.5e-3.
UNCLEARED_MARKET = {
    "n_countries": 3,
    "reference_price": np.array([0.5, 0.5]),
    "armington_elasticity": np.array([2.0, 8.0]),
    "price_cap": np.array([100.0, 100.0]),
    "price_floor": np.array([0.0001, 0.0001]),
    "producer_country": np.array([0, 0, 2, 0, 1, 1]),
    "producer_good": np.array([0, 0, 1, 1, 1, 1]),
    "capacity": np.array([1.0, 0.0, 4.627189325569903, 2.7800803046679317, 5.02045304988104, 0.0]),
    "unit_cost": np.array([0.25, 0.25, 0.0390625, 0.25, 0.25, 0.25]),
    "full_capacity_price": np.array([1.5, 1.5, 7.8125, 1.5, 1.5, 1.5]),
    "supply_elasticity": np.array([1.0, 1.0, 0.5, 1.0, 1.0, 1.0]),
    "firm_country": np.array([0, 0, 0, 1, 1, 1]),
    "row_firm": np.array([0, 1, 1, 2, 3, 4, 5]),
    "row_good": np.array([0, 1, 0, 1, 1, 0, 1]),
    "planned_purchase": np.array([1.0, 3.875, 1.0, 4.75, 3.25, 1.0, 0.25]),
    "demand_elasticity": np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.3, 1.0]),
    "sourcing_origin": np.array(
        [[0, -1, -1], [1, 2, -1], [1, 2, -1], [0, 1, 2], [2, -1, -1], [0, -1, -1], [2, -1, -1]]
    ),
    "sourcing_weights": np.array(
        [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.0],
            [0.5, 0.5, 0.0],
            [0.2682926829268293, 0.34146341463414637, 0.3902439024390244],
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
        ]
    ),
    "ban_intensity": np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.zeros((3, 3))]),
    "export_quota": np.array([[np.inf, np.inf, np.inf], [np.inf, 2.51022652494052, np.inf]]),
    "export_duty": np.zeros((2, 3)),
    "import_tariff": np.array([np.zeros((3, 3)), [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.4375, 0.0, 0.0]]]),
    "transport_cost": np.array(
        [
            np.zeros((3, 3)),
            [
                [0.0, 0.04865517437344421, 0.07298276156016631],
                [0.04865517437344421, 0.0, 0.04865517437344421],
                [0.07298276156016631, 0.04865517437344421, 0.0],
            ],
        ]
    ),
    "stockpile_release": np.zeros((2, 3)),
}


@pytest.mark.xfail(
    strict=True,
    raises=MarketClearingError,
    reason="known solver miss: Newton and the fallback sweeps stall on this market (residual ~1.5e-3 after "
    "200 iterations); recorded so that a fix shows as an unexpected pass",
)
def test_the_known_uncleared_market_clears():
    market = MarketInputs(**UNCLEARED_MARKET)
    assert_matches_reference(market, clear_markets(market))


@given(markets(interior=True, min_countries=2, min_quotas=2))
def test_kernel_matches_reference_solver_with_quotas(market):
    assert_matches_reference(market, clear_markets(market))


@given(markets(interior=True, measures=False))
def test_kernel_matches_reference_solver_without_measures(market):
    assert_matches_reference(market, clear_markets(market))


@settings(max_examples=15)
@given(markets(interior=True, min_countries=2, min_quotas=2))
def test_fallback_alone_matches_reference_solver(market):
    """The fallback sweeps on their own (no Newton step) reach the reference equilibrium, rents included."""
    assert_matches_reference(market, clear(market, "fallback"))


@pytest.mark.slow
@settings(max_examples=300)
@given(markets(interior=True, min_countries=2, min_quotas=1))
def test_fallback_alone_matches_reference_solver_wide_search(market):
    """The same over many more generated markets (``make test-slow``)."""
    assert_matches_reference(market, clear(market, "fallback"))


def assert_power_segment(price: float, fcp: float) -> None:
    """The closed forms assume isoelastic supply: above the linear onset, below full capacity."""
    assert 0.05 * fcp < price < fcp


@pytest.mark.parametrize(
    "q, e, eps, target, pref",
    [(1.0, 0.5, 1.0, 1.0, 1.0), (3.0, 0.2, 2.0, 0.4, 25.0), (0.7, 1.5, 0.5, 2.5, 0.3), (10.0, 0.8, 1.3, 7.0, 200.0)],
)
def test_closed_form_isoelastic(q, e, eps, target, pref, method):
    fcp = 4.0 * target * pref  # price between the linear onset (5% of fcp) and capacity
    # choose the capacity so that the price lands near target * Pref
    a = q * pref**e / (target * pref) ** (e + eps)
    capacity = a * fcp**eps
    m = one_good_market(
        1,
        pref=pref,
        producers=[dict(country=0, capacity=capacity, unit_cost=0.0, fcp=fcp, eps=eps)],
        firms=[dict(country=0, q=q, e=e, origins=[0], weights=[1.0])],
    )
    expected = closed_form_isoelastic(q, e, pref, capacity, fcp, eps)
    assert_allclose(expected, target * pref, rtol=1e-12)  # the closed form inverts the construction
    assert_power_segment(expected, fcp)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], expected, rtol=1e-9)
    assert_allclose(res.sold[0, 0], q * (expected / pref) ** (-e), rtol=1e-9)
    assert_allclose(solve_reference(m).price[0, 0], expected, rtol=1e-9)


@pytest.mark.parametrize(
    "q_f, e, quota, duty, tariff, transport",
    [(5.0, 0.8, 1.0, 0.2, 0.1, 1.0), (2.0, 1.5, 1.2, 0.0, 0.0, 0.0), (8.0, 0.5, 3.0, 0.5, 0.3, 4.0)],
)
def test_closed_form_binding_quota(q_f, e, quota, duty, tariff, transport, method):
    pref, eps, fcp, p_target = 10.0, 1.2, 40.0, 8.0
    capacity = quota / p_target**eps * fcp**eps  # S(8) = quota
    m = one_good_market(
        2,
        pref=pref,
        producers=[dict(country=0, capacity=capacity, fcp=fcp, eps=eps)],
        firms=[dict(country=1, q=q_f, e=e, origins=[0], weights=[1.0])],
        quota={0: quota},
        duty={0: duty},
        tariff={(0, 1): tariff},
        transport={(0, 1): transport},
    )
    cf = closed_form_binding_quota(q_f, e, pref, quota, capacity, fcp, eps, duty, tariff, transport)
    assert cf["rent"] > 0
    assert_power_segment(cf["price"], fcp)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], cf["price"], rtol=1e-8)
    assert_allclose(res.quota_rent[0, 0], cf["rent"], rtol=1e-8)
    assert_allclose(res.price_export[0, 0], cf["export_price"], rtol=1e-8)
    assert_allclose(res.exports[0, 0], quota, rtol=1e-9)
    assert_allclose(res.edge_price, [cf["delivered"]], rtol=1e-8)
    ref = solve_reference(m)
    assert ref.binding[0, 0]
    assert_allclose([ref.price[0, 0], ref.rent[0, 0]], [cf["price"], cf["rent"]], rtol=1e-9)


@pytest.mark.parametrize("duty, tariff, e, eps", [(0.0, 0.0, 0.5, 1.0), (0.2, 0.35, 1.2, 0.6), (0.0, 1.0, 0.1, 2.0)])
def test_closed_form_symmetric_origins(duty, tariff, e, eps, method):
    pref, q = 4.0, 3.0
    fcp = 4.0 * pref
    capacity = q * (fcp / pref) ** eps
    producer = dict(capacity=capacity, fcp=fcp, eps=eps)
    m = one_good_market(
        3,
        pref=pref,
        sigma=4.0,
        producers=[dict(country=0, **producer), dict(country=1, **producer)],
        firms=[dict(country=2, q=q, e=e, origins=[1, 0], weights=[0.5, 0.5])],
        duty={0: duty, 1: duty},
        tariff={(0, 2): tariff, (1, 2): tariff},
    )
    cf = closed_form_symmetric_origins(q, e, pref, capacity, fcp, eps, duty, tariff)
    assert_power_segment(cf["price"], fcp)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, :2], [cf["price"], cf["price"]], rtol=1e-9)
    assert np.isnan(res.price_domestic[0, 2])
    assert_allclose(res.price_index, [cf["price_index"]], rtol=1e-9)
    assert_allclose(res.row_flow, [[cf["flow_each"], cf["flow_each"]]], rtol=1e-9)
    assert_allclose(solve_reference(m).price[0, :2], [cf["price"], cf["price"]], rtol=1e-9)


@pytest.mark.parametrize("ban, sigma, e", [(0.0, 2.0, 0.5), (0.5, 2.0, 0.5), (0.9, 4.0, 1.3), (0.3, 1.5, 0.0)])
def test_closed_form_informal_measure(ban, sigma, e, method):
    """An informal measure (0 < ban < 1) holds a share of the order at the border (see MarketInputs)."""
    pref, q, eps, duty, tariff = 2.0, 1.5, 1.0, 0.1, 0.2
    fcp = 4.0 * pref
    capacity = q * (fcp / pref) ** eps
    m = one_good_market(
        2,
        pref=pref,
        sigma=sigma,
        producers=[dict(country=0, capacity=capacity, fcp=fcp, eps=eps)],
        firms=[dict(country=1, q=q, e=e, origins=[0], weights=[1.0])],
        ban={(0, 1): ban},
        duty={0: duty},
        tariff={(0, 1): tariff},
    )
    cf = closed_form_partial_ban(q, e, pref, ban, capacity, fcp, eps, duty, tariff)
    assert_power_segment(cf["price"], fcp)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], cf["price"], rtol=1e-9)
    assert_allclose(res.price_index, [cf["price_index"]], rtol=1e-9)
    assert_allclose(res.edge_flow, [cf["flow"]], rtol=1e-9)
    assert_allclose(res.demand, [cf["order"]], rtol=1e-9)
    assert_allclose(res.rationed, [cf["rationed"]], rtol=1e-9, atol=1e-15)
    assert_allclose(solve_reference(m).price[0, 0], cf["price"], rtol=1e-9)


def test_full_ban_closes_the_only_origin(method):
    m = one_good_market(
        2,
        producers=[dict(country=0, capacity=5.0, fcp=4.0, eps=1.0)],
        firms=[
            dict(country=1, q=1.0, e=0.5, origins=[0], weights=[1.0]),
            dict(country=0, q=1.0, e=0.5, origins=[0], weights=[1.0]),
        ],
        ban={(0, 1): 1.0},
    )
    res = clear(m, method)
    assert np.isnan(res.price_index[0]) and res.delivered[0] == 0 and res.demand[0] == 0
    # the home firm alone clears the origin: 5 p / 4 = (p / 1)^-0.5
    assert_allclose(res.price_domestic[0, 0], (4.0 / 5.0) ** (1 / 1.5), rtol=1e-9)


@pytest.mark.parametrize("q, e, release", [(2.0, 0.5, 1.0), (1.0, 1.7, 3.0)])
def test_closed_form_release_only(q, e, release, method):
    pref = 3.0
    m = one_good_market(
        1, pref=pref, producers=[], firms=[dict(country=0, q=q, e=e, origins=[0], weights=[1.0])], release={0: release}
    )
    expected = closed_form_release_only(q, e, pref, release)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], expected, rtol=1e-9)
    assert_allclose(res.stockpile_release_used[0, 0], release, rtol=1e-9)
    assert_allclose(solve_reference(m).price[0, 0], expected, rtol=1e-9)


# ==================================================================================================
# Comparative statics


def restricted_rows(m: MarketInputs, g: int, o: int, d: int | None) -> np.ndarray:
    """Rows of good ``g`` with an open slot on origin ``o`` (in destination ``d``, or any foreign one):
    a positive weight on an edge that is not fully banned."""
    dest = m.firm_country[m.row_firm]
    open_edge = m.ban_intensity[g, o, dest] < 1.0
    slot = ((m.sourcing_origin == o) & (m.sourcing_weights > 0)).any(axis=1) & open_edge
    where = dest == d if d is not None else dest != o
    return np.flatnonzero((m.row_good == g) & where & slot & (m.planned_purchase > 0))


def never_lower(before: np.ndarray, after: np.ndarray) -> None:
    after = np.where(np.isnan(after), np.inf, after)  # no open origin left: infinitely expensive
    assert np.all(np.isfinite(before))
    assert np.all(after >= before * (1 - STATICS_RTOL)), f"before {before}, after {after}"


@given(market_and_edge(interior=True))
def test_full_ban_never_lowers_restricted_price_index(case):
    """Under gross substitutes (every buyer's demand elasticity at most the Armington elasticity).
    With more elastic buyers a ban can lower some restricted buyers' price index: buyers of the good
    compete for the remaining origins, and when a very elastic buyer's demand collapses under the ban
    the others find those origins cheaper (test_full_ban_can_lower_an_index_when_buyers_are_elastic)."""
    market, (g, o, d) = case
    assume(market.ban_intensity[g, o, d] < 1)
    assume(np.all(market.demand_elasticity <= market.armington_elasticity[market.row_good]))
    ban = market.ban_intensity.copy()
    ban[g, o, d] = 1.0
    before = clear_markets(market)
    after = clear_markets(replace(market, ban_intensity=ban))
    rows = restricted_rows(market, g, o, d)
    never_lower(before.price_index[rows], after.price_index[rows])


def test_full_ban_can_lower_an_index_when_buyers_are_elastic():
    """The counterexample the full-ban property excludes (found by hypothesis): one destination whose
    three buyers share a release-only origin (1) with origin 4 (a producer); buyer 2 (e = 3 > sigma =
    1.5) splits half-and-half, buyer 1 (e = 2) buys mostly from origin 1. Banning origin 4 leaves both
    on origin 1's fixed release: buyer 2's index jumps (x 3.5) and its demand collapses, so origin 1's
    price falls and buyer 1, also restricted, pays less. A market equilibrium, not a solver failure:
    both clearings pass the independent certificate."""
    m = one_good_market(
        5,
        pref=0.5,
        sigma=1.5,
        cap=100.0,
        floor=1e-4,
        producers=[
            dict(country=0, capacity=1.0, unit_cost=0.25, fcp=1.5, eps=1.0),
            dict(country=4, capacity=1.0 / 0.9, unit_cost=0.25, fcp=1.5, eps=1.0),
        ],
        firms=[
            dict(country=0, q=1.0, e=0.0, origins=[0], weights=[1.0]),
            dict(country=0, q=1.0, e=2.0, origins=[4, 1], weights=[1 / 9, 8 / 9]),
            dict(country=0, q=2.0, e=3.0, origins=[1, 4], weights=[0.5, 0.5]),
        ],
        release={0: 0.25, 1: 17 / 36},
    )
    ban = m.ban_intensity.copy()
    ban[0, 4, 0] = 1.0
    before, after = clear_markets(m), clear_markets(replace(m, ban_intensity=ban))
    for market, res in ((m, before), (replace(m, ban_intensity=ban), after)):
        assert_certificate(market, res)
    assert after.price_domestic[0, 1] < 0.8 * before.price_domestic[0, 1]  # origin 1 cheaper after the ban
    assert after.price_index[2] > 3 * before.price_index[2]  # the elastic buyer's index jumps
    assert after.price_index[1] < before.price_index[1] * (1 - 1e-3)  # and the other's falls


@given(market_and_edge(interior=True), st.sampled_from([1.0, 0.5]) | st.floats(0.01, 1.0))
def test_ban_or_informal_measure_never_raises_flow_on_edge(case, fraction):
    """A stronger measure on an edge never lets more through it. (Under the documented semantics an
    informal measure does not enter the price index, and it can lower it: the origin's price falls
    when less of its sales get through; see test_closed_form_informal_measure.)"""
    market, (g, o, d) = case
    b0 = market.ban_intensity[g, o, d]
    assume(b0 < 1)
    ban = market.ban_intensity.copy()
    ban[g, o, d] = b0 + (1 - b0) * fraction
    before = clear_markets(market)
    after = clear_markets(replace(market, ban_intensity=ban))
    G, C = market.n_goods, int(market.n_countries)
    fb, fa = before.flow_matrix(G, C)[g, o, d], after.flow_matrix(G, C)[g, o, d]
    assert fa <= fb * (1 + STATICS_RTOL) + 1e-14 * quantity_scale(market), (fb, fa)
    if ban[g, o, d] == 1.0:
        assert fa == 0


@given(market_and_edge(interior=True), st.floats(0.05, 0.95))
def test_tighter_quota_never_lowers_importers_price_index(case, fraction):
    market, (g, o, _) = case
    before = clear_markets(market)
    assume(before.exports[g, o] > 0)
    # With a binding quota the rent may lift the export price p (1 + duty) + rent only up to the cap
    # (ODD 7.4.4: the rent's ceiling); without a quota an origin priced at the cap exports at
    # cap x (1 + duty). Where that duty-inclusive price was above the cap, the rent ceiling lowers it
    # (found by the random search: a release-only origin at the cap, duty 0.25, importers' index
    # 62.5 -> 50 at cap 50). A property of the cap's definition, not a solver failure.
    cap = market.price_cap[g] * market.reference_price[g]
    assume(before.price_export[g, o] <= cap * (1 + 1e-12))
    quota = market.export_quota.copy()
    quota[g, o] = min(quota[g, o], before.exports[g, o]) * fraction
    after = clear_markets(replace(market, export_quota=quota))
    assert after.exports[g, o] <= quota[g, o] * (1 + 1e-9)
    rows = restricted_rows(market, g, o, None)
    never_lower(before.price_index[rows], after.price_index[rows])


@given(markets(interior=True), st.data())
def test_more_capacity_never_raises_producer_prices(market, data):
    """Under gross substitutes (every buyer's demand elasticity at most the Armington elasticity, so
    a cheaper origin never raises what is bought from the others); with e > sigma origins are gross
    complements and a rival's price may rise with more capacity elsewhere."""
    assume(np.all(market.demand_elasticity <= market.armington_elasticity[market.row_good]))
    live = np.flatnonzero(market.capacity > 0)
    assume(live.size)
    p = data.draw(st.sampled_from(live.tolist()))
    factor = data.draw(st.floats(1.001, 5.0))
    capacity = market.capacity.copy()
    capacity[p] *= factor
    before = clear_markets(market)
    after = clear_markets(replace(market, capacity=capacity))
    g = market.producer_good[p]
    pb, pa = before.price_domestic[g], after.price_domestic[g]
    assert np.array_equal(np.isnan(pb), np.isnan(pa))
    ok = np.isnan(pb) | (pa <= pb * (1 + STATICS_RTOL))
    assert ok.all(), f"prices rose: before {pb}, after {pa}"


@given(market_and_edge(interior=True), st.floats(0.01, 1.0))
def test_higher_tariff_never_raises_flow_on_edge(case, delta):
    market, (g, o, d) = case
    tariff = market.import_tariff.copy()
    tariff[g, o, d] += delta
    before = clear_markets(market)
    after = clear_markets(replace(market, import_tariff=tariff))
    G, C = market.n_goods, int(market.n_countries)
    fb, fa = before.flow_matrix(G, C)[g, o, d], after.flow_matrix(G, C)[g, o, d]
    assert fa <= fb * (1 + STATICS_RTOL) + 1e-14 * quantity_scale(market), (fb, fa)


# ==================================================================================================
# Structure, warm starts, row order


@given(markets(interior=True), st.randoms(use_true_random=False))
def test_row_order_and_slot_order_do_not_matter(market, rnd):
    R, K = market.sourcing_origin.shape
    perm = list(range(R))
    rnd.shuffle(perm)
    perm = np.array(perm, dtype=np.int64)
    slot = np.array([rnd.sample(range(K), K) for _ in range(R)], dtype=np.int64).reshape(R, K)
    origin = np.take_along_axis(market.sourcing_origin[perm], slot[perm], axis=1)
    weights = np.take_along_axis(market.sourcing_weights[perm], slot[perm], axis=1)
    shuffled = replace(
        market,
        row_firm=market.row_firm[perm],
        row_good=market.row_good[perm],
        planned_purchase=market.planned_purchase[perm],
        demand_elasticity=market.demand_elasticity[perm],
        sourcing_origin=origin,
        sourcing_weights=weights,
    )
    a, b = clear_markets(market), clear_markets(shuffled)
    assert_allclose(b.price_domestic, a.price_domestic, rtol=1e-9, equal_nan=True)
    assert_allclose(b.quota_rent, a.quota_rent, rtol=1e-9, atol=1e-9 * market.reference_price.max())
    assert_allclose(b.demand, a.demand[perm], rtol=1e-8)
    assert_allclose(b.price_index, a.price_index[perm], rtol=1e-9, equal_nan=True)
    G, C = market.n_goods, int(market.n_countries)
    assert_allclose(b.flow_matrix(G, C), a.flow_matrix(G, C), rtol=1e-8, atol=1e-12 * quantity_scale(market))
    assert_allclose(b.row_flow, np.take_along_axis(a.row_flow[perm], slot[perm], axis=1), rtol=1e-8, atol=1e-300)


@given(markets())
def test_prebuilt_structure_and_warm_start(market):
    res = clear_markets(market)
    structure = MarketStructure.build(market)
    again = clear_markets(market, structure=structure)
    # same compiled code on the same inputs in one process: bit for bit
    for name, arr in result_arrays(res).items():
        assert bitwise_equal(arr, getattr(again, name)), name
    warm = clear_markets(replace(market, initial_price=res.price_domestic, initial_rent=res.quota_rent))
    assert np.all(warm.iterations <= 1)
    assert_allclose(warm.price_domestic, res.price_domestic, rtol=1e-9, equal_nan=True)


@given(markets())
def test_updated_inputs_are_the_constructed_ones(market):
    """MarketInputs.updated (the model's monthly inputs): the given arrays replaced and converted as the
    constructor converts them, the others shared, and the same clearing as inputs built in full."""
    res = clear_markets(market, allow_nonconvergence=True)
    before = {f.name: getattr(market, f.name) for f in fields(MarketInputs)}
    changes = dict(
        planned_purchase=(1.2 * market.planned_purchase).tolist(),  # a list: converted to float64
        capacity=0.8 * market.capacity,
        initial_price=res.price_domestic,
        initial_rent=res.quota_rent,
        check_warm_start=np.ones(market.n_goods, dtype=np.int8),  # converted to booleans
    )
    got = market.updated(**changes)
    want = replace(market, **changes)
    for f in fields(MarketInputs):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name == "n_countries":
            assert a == b
        elif f.name in changes:
            assert a.dtype == b.dtype and a.flags.c_contiguous and bitwise_equal(a, b), f.name
        else:
            assert a is getattr(market, f.name), f.name  # shared, not copied
        assert getattr(market, f.name) is before[f.name]  # the original keeps its own
    x = clear_markets(got, allow_nonconvergence=True)
    y = clear_markets(want, allow_nonconvergence=True)
    for name, arr in result_arrays(x).items():
        assert bitwise_equal(arr, getattr(y, name)), name
    with pytest.raises(TypeError, match="'n_countries' is not an array input"):
        market.updated(n_countries=3)
    with pytest.raises(TypeError, match="'capacty' is not an array input"):
        market.updated(capacty=market.capacity)


def _step_arrays(market) -> dict:
    """The arrays of ``market`` that change from step to step (PreparedMarket.clear's arguments)."""
    names = ("capacity", "unit_cost", "full_capacity_price", "planned_purchase", "demand_elasticity")
    names += ("sourcing_weights", "ban_intensity", "export_quota", "export_duty", "import_tariff")
    names += ("initial_price", "initial_rent", "order_pass", "check_warm_start")
    return {name: getattr(market, name) for name in names}


@given(markets())
def test_a_prepared_market_clears_each_step_as_clear_markets_does(market):
    """PreparedMarket (the model's month): a step's arrays on the prepared world, converted as the
    constructor converts them, give what clear_markets gives on the updated inputs, bit for bit (the same
    compiled code in one process), and a market that does not clear raises the same error."""
    first = clear_markets(market, allow_nonconvergence=True)
    prepared = PreparedMarket(market)
    step = dict(
        capacity=(0.8 * market.capacity).tolist(),  # a list: converted to float64
        unit_cost=market.unit_cost,
        full_capacity_price=market.full_capacity_price,
        planned_purchase=1.2 * market.planned_purchase,
        demand_elasticity=market.demand_elasticity,
        sourcing_weights=market.sourcing_weights,
        ban_intensity=market.ban_intensity,
        export_quota=market.export_quota,
        export_duty=market.export_duty,
        import_tariff=market.import_tariff,
        initial_price=first.price_domestic,
        initial_rent=first.quota_rent,
        order_pass=market.order_pass,
        check_warm_start=np.ones(market.n_goods, dtype=np.int8),  # converted to booleans
    )
    try:
        want = clear_markets(market.updated(**step), validate=False, structure=prepared.structure)
    except MarketClearingError as error:
        with pytest.raises(MarketClearingError, match=re.escape(str(error))):
            prepared.clear(**step)
        return
    got = prepared.clear(**step)
    for name, arr in result_arrays(want).items():
        assert bitwise_equal(arr, getattr(got, name)), name
    # the optional arrays left out default as in MarketInputs
    cold = {
        k: v for k, v in step.items() if k not in ("initial_price", "initial_rent", "order_pass", "check_warm_start")
    }
    try:
        want = clear_markets(replace(market, **cold, initial_price=None, initial_rent=None, order_pass=None))
    except MarketClearingError:
        return
    got = prepared.clear(**cold)
    for name, arr in result_arrays(want).items():
        assert bitwise_equal(arr, getattr(got, name)), name


def test_a_prepared_market_result_holds_until_the_step_after_next():
    """PreparedMarket's results use two sets of arrays in turn (documented): a step's result keeps its
    values through the next step, and its arrays are written again by the step after."""
    market = example_markets()[1]
    prepared = PreparedMarket(market)
    first = prepared.clear(**_step_arrays(market))
    kept = {name: arr.copy() for name, arr in result_arrays(first).items() if isinstance(arr, np.ndarray)}
    shifted = dict(_step_arrays(market), planned_purchase=0.7 * market.planned_purchase)
    second = prepared.clear(**shifted)
    assert all(bitwise_equal(getattr(first, name), arr) for name, arr in kept.items())
    assert second.price_domestic is not first.price_domestic
    third = prepared.clear(**shifted)
    assert third.price_domestic is first.price_domestic and bitwise_equal(third.price_domestic, second.price_domestic)
    # each step's result is the one clear_markets gives for it
    want = clear_markets(market.updated(**shifted))
    for name, arr in result_arrays(want).items():
        assert bitwise_equal(arr, getattr(third, name)), name


def test_a_prepared_market_validates_its_first_step():
    market = example_markets()[0]
    with pytest.raises(ValueError, match="tolerance: must be > 0"):
        PreparedMarket(market, tolerance=0.0)
    with pytest.raises(ValueError, match="capacity"):
        PreparedMarket(replace(market, capacity=-market.capacity - 1.0))
    other = example_markets()[1]
    with pytest.raises(ValueError, match="structure: was built for a market of other sizes"):
        PreparedMarket(market, structure=MarketStructure.build(other))
    assert bitwise_equal(
        PreparedMarket(market).clear(**_step_arrays(market)).price_domestic, clear_markets(market).price_domestic
    )


def test_warm_start_after_a_shock_reaches_the_cold_equilibrium():
    # Last step's prices as the start after demand moved: the first evaluation at a warm start skips
    # the Jacobian, so Newton must build it there before its first step (no hypothesis test had a warm
    # start that needed a step; found by mutation testing, docs/mutation.md).
    for m in example_markets():
        before = clear_markets(m)
        shocked = replace(m, planned_purchase=1.3 * m.planned_purchase)
        cold = clear_markets(shocked)
        warm = clear_markets(replace(shocked, initial_price=before.price_domestic, initial_rent=before.quota_rent))
        assert warm.converged.all()
        assert warm.iterations.max() >= 1
        assert_allclose(warm.price_domestic, cold.price_domestic, rtol=1e-6, equal_nan=True)


@given(markets(), st.data())
def test_warm_start_hint_changes_nothing_but_the_work(market, data):
    # check_warm_start only decides whether the first evaluation at a warm start skips the Jacobian;
    # the iterates, and so the result, must be the same for any hint, at the equilibrium and after a shock.
    G = market.n_goods
    res = clear_markets(market, allow_nonconvergence=True)
    factor = data.draw(st.sampled_from([1.0, 0.7, 1.3]), label="demand factor")
    hint = np.array(data.draw(st.lists(st.booleans(), min_size=G, max_size=G), label="hint"))
    start = replace(
        market,
        planned_purchase=factor * market.planned_purchase,
        initial_price=res.price_domestic,
        initial_rent=res.quota_rent,
    )
    runs = [
        clear_markets(replace(start, check_warm_start=h), allow_nonconvergence=True)
        for h in (None, np.ones(G, bool), np.zeros(G, bool), hint)
    ]
    for other in runs[1:]:
        for name, arr in result_arrays(runs[0]).items():
            assert_allclose(getattr(other, name), arr, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


@settings(max_examples=40)
@given(markets(), st.sampled_from([1.0, 0.7, 1.3]), st.sampled_from([0.7, 1e3]))
def test_last_newton_trial_without_jacobian_changes_nothing_but_the_work(market, factor, share):
    # Near the solution Newton's trial point is evaluated without its Jacobian (FINAL_STEP_SHARE); where
    # that trial is not the last, the Jacobian is evaluated at the accepted point before the next step.
    # The iterates, and so the result, must be those of a solver that always evaluates the Jacobian
    # (share 0). The solver's loop runs interpreted here (its module constant read at each call), the
    # evaluations compiled as always; share 1e3 takes every trial without its Jacobian.
    res = clear_markets(market, allow_nonconvergence=True)
    start = replace(
        market,
        planned_purchase=factor * market.planned_purchase,
        initial_price=res.price_domestic,
        initial_rent=res.quota_rent,
    )
    solver = getattr(kernel_module.clear_all_goods, "py_func", kernel_module.clear_all_goods)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernel_module, "clear_all_goods", solver)
        patch.setattr(kernel_module, "FINAL_STEP_SHARE", 0.0)
        always = clear_markets(start, allow_nonconvergence=True)
        patch.setattr(kernel_module, "FINAL_STEP_SHARE", share)
        skipping = clear_markets(start, allow_nonconvergence=True)
    for name, arr in result_arrays(always).items():
        assert_allclose(getattr(skipping, name), arr, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


# ==================================================================================================
# Determinism


@given(markets())
def test_identical_inputs_bitwise_identical_outputs(market):
    copy = replace(market)
    snapshot = {
        f.name: np.copy(getattr(market, f.name))
        for f in fields(market)
        if isinstance(getattr(market, f.name), np.ndarray)
    }
    first = clear_markets(market, allow_nonconvergence=True)
    second = clear_markets(copy, allow_nonconvergence=True)
    third = clear_markets(market, allow_nonconvergence=True)
    # one code path on one machine: bit for bit (across code paths see test_same_results_without_jit)
    for name, arr in result_arrays(first).items():
        assert bitwise_equal(arr, getattr(second, name)), name
        assert bitwise_equal(arr, getattr(third, name)), name
    for name, arr in snapshot.items():
        assert bitwise_equal(arr, getattr(market, name)), f"clear_markets modified its input {name}"


_NOJIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from dataclasses import fields
    import numpy as np
    sys.path.insert(0, {tests!r})
    from strategies import example_markets
    from sim.market import clear_markets, kernel
    out = {{"jit_disabled": np.array(not hasattr(kernel.clear_all_goods, "py_func"))}}
    for i, m in enumerate(example_markets()):
        res = clear_markets(m)
        for f in fields(res):
            out[f"{{i}}:{{f.name}}"] = np.asarray(getattr(res, f.name))
    np.savez(sys.argv[1], **out)
    """
)


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="the JIT is disabled: njit returns plain functions")
def test_every_kernel_function_is_compiled_and_cached_on_disk():
    # The kernel binds njit(cache=True) at the end of its module rather than as decorators (so that
    # mutation testing can change the functions). A function left out would run interpreted (or fail
    # to be called from compiled code), and one bound without cache=True recompiles on every run.
    names = [n for n, v in vars(kernel_module).items() if getattr(v, "__module__", None) == kernel_module.__name__]
    assert "clear_all_goods" in names
    for name in names:
        value = getattr(kernel_module, name)
        assert isinstance(value, Dispatcher), f"{name} is not compiled"
        assert type(value._cache).__name__ != "NullCache", f"{name} is compiled without cache=True"


_COLD_START_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    from numba.core.dispatcher import Dispatcher
    from strategies import example_markets
    from sim.market import clear_markets
    from sim.market import kernel
    clear_markets(example_markets()[0])
    print(json.dumps({{
        name: [str(sig) for sig in value.overloads]
        for name, value in vars(kernel).items()
        if isinstance(value, Dispatcher) and value.overloads
    }}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="the JIT is disabled: njit returns plain functions")
def test_a_cold_start_compiles_each_kernel_function_once(tmp_path):
    """From an empty numba cache, the first clearing compiles every function of the kernel once.

    Numba compiles a function once per set of argument types, and a literal argument (a bare ``True``,
    or a count typed as the literal 0 before a loop widens it) is a type of its own: the solver's
    residual was compiled six times and its helpers twice, 99 s of CPU for a cold
    ``rare_earth_2010`` run where 65 s now do (``_evaluate_good``'s docstring).
    """
    script = tmp_path / "cold.py"
    script.write_text(_COLD_START_SCRIPT.format(tests=str(TESTS_DIR)))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "the script printed nothing"
    compiled = json.loads(proc.stdout.splitlines()[-1])
    assert "clear_all_goods" in compiled and "_evaluate_good" in compiled
    several = {name: sigs for name, sigs in compiled.items() if len(sigs) > 1}
    assert not several, f"compiled more than once (one per signature): {several}"


def test_same_results_without_jit(tmp_path):
    path = tmp_path / "nojit.npz"
    script = tmp_path / "nojit.py"
    script.write_text(_NOJIT_SCRIPT.format(tests=str(TESTS_DIR)))
    env = dict(os.environ)
    env["NUMBA_DISABLE_JIT"] = "1"
    env.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".venv" / "numba-cache"))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # -W error: the pure-Python kernel must run warning-free, as the test suite itself does
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script), str(path)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(path) as data:
        nojit = {k: data[k] for k in data.files}
    assert bool(nojit.pop("jit_disabled")), "the subprocess did not run the pure-Python kernel"
    # Not bit for bit (the house rule for numba kernels: equal to NUMBA_DISABLE_JIT=1 to a tolerance):
    # LLVM may fuse multiply-adds depending on the CPU, and
    # the pure-Python run takes exp/log from NumPy (possibly SIMD code) where the compiled kernel
    # calls libm, so the two iterate through points that differ in the last bits. Both clear every
    # good to the solver tolerance (1e-10 relative excess demand), so their equilibria agree to
    # NOJIT_RTOL; quantities get an absolute floor of 1e-12 of the market's size.
    for i, m in enumerate(example_markets()):
        res = clear_markets(m)
        atol = 1e-12 * quantity_scale(m)
        pref = m.reference_price[:, None]
        for name, arr in result_arrays(res).items():
            other = nojit[f"{i}:{name}"]
            msg = f"market {i}, {name}: compiled and pure-Python kernels differ"
            assert np.shape(arr) == np.shape(other), msg
            if name == "iterations":
                # a last-bit difference may cost or save the final Newton step, never more
                assert np.all(np.abs(arr - other) <= 1), msg
            elif name == "tolerance" or np.asarray(arr).dtype.kind in "iub":
                assert np.array_equal(arr, other), msg  # edge indices, flags, settings: exactly equal
            elif name == "residual":
                assert np.all(other <= res.tolerance) and np.all(arr <= res.tolerance), msg
            elif name == "quota_rent":
                assert_allclose(arr / pref, other / pref, rtol=NOJIT_RTOL, atol=NOJIT_RTOL, err_msg=msg)
            elif name.startswith("price") or name in ("edge_price", "price_index"):
                assert_allclose(arr, other, rtol=NOJIT_RTOL, atol=0, equal_nan=True, err_msg=msg)
            else:
                assert_allclose(arr, other, rtol=NOJIT_RTOL, atol=atol, equal_nan=True, err_msg=msg)


# ==================================================================================================
# Bad input


def _base_market() -> MarketInputs:
    return one_good_market(
        3,
        producers=[
            dict(country=0, capacity=2.0, unit_cost=0.1, fcp=3.0, eps=1.0),
            dict(country=1, capacity=1.0, fcp=2.0, eps=0.7),
        ],
        firms=[
            dict(country=2, q=1.0, e=0.5, origins=[0, 1], weights=[0.5, 0.4 + 0.1]),
            dict(country=0, q=1.0, e=0.3, origins=[0], weights=[1.0]),
        ],
    )


def _set(field: str, index, value):
    def mutate(m: MarketInputs) -> MarketInputs:
        arr = getattr(m, field).copy()
        arr[index] = value
        return replace(m, **{field: arr})

    return mutate


BAD_INPUTS = {
    "capacity shape": (lambda m: replace(m, capacity=m.capacity[:1]), ["capacity", "(1,)", "shape"]),
    "ban_intensity shape": (lambda m: replace(m, ban_intensity=np.zeros((1, 3, 4))), ["ban_intensity", "(1, 3, 4)"]),
    "sourcing_weights shape": (
        lambda m: replace(m, sourcing_weights=m.sourcing_weights[:, :1]),
        ["sourcing_weights", "(2, 1)"],
    ),
    "reference_price shape": (lambda m: replace(m, reference_price=[1.0, 2.0]), ["armington_elasticity", "(1,)"]),
    "check_warm_start shape": (
        lambda m: replace(m, check_warm_start=np.ones(m.n_goods + 1, bool)),
        ["check_warm_start", "shape"],
    ),
    "negative capacity": (_set("capacity", 1, -1.5), ["capacity", "-1.5", "(1,)"]),
    "nan unit_cost": (_set("unit_cost", 0, np.nan), ["unit_cost", "nan"]),
    "nan sourcing weight": (_set("sourcing_weights", (0, 1), np.nan), ["sourcing_weights", "nan"]),
    "nan export_quota": (_set("export_quota", (0, 2), np.nan), ["export_quota", "nan"]),
    "inf transport_cost": (_set("transport_cost", (0, 0, 2), np.inf), ["transport_cost", "inf"]),
    "weights sum below one": (_set("sourcing_weights", (0, 1), 0.4), ["sourcing_weights", "0.9", "row 0"]),
    "weights sum above one": (_set("sourcing_weights", (1, 0), 1.25), ["sourcing_weights", "1.25", "row 1"]),
    "unknown firm country": (_set("firm_country", 1, 3), ["firm_country", "3"]),
    "negative producer country": (_set("producer_country", 0, -1), ["producer_country", "-1"]),
    "unknown sourcing origin": (_set("sourcing_origin", (0, 0), 7), ["sourcing_origin", "7"]),
    "duplicate sourcing origin": (_set("sourcing_origin", (0, 1), 0), ["sourcing_origin", "[0, 0]"]),
    "unknown row firm": (_set("row_firm", 0, 5), ["row_firm", "5"]),
    "unknown row good": (_set("row_good", 0, 1), ["row_good", "1"]),
    "ban above one": (_set("ban_intensity", (0, 0, 2), 1.5), ["ban_intensity", "1.5"]),
    "armington not above one": (_set("armington_elasticity", 0, 1.0), ["armington_elasticity", "1.0"]),
    "floor not below one": (_set("price_floor", 0, 1.0), ["price_floor", "1.0"]),
    "negative planned purchase": (_set("planned_purchase", 1, -2.0), ["planned_purchase", "-2.0"]),
    "negative tariff": (_set("import_tariff", (0, 1, 2), -0.1), ["import_tariff", "-0.1"]),
    "full capacity price below cost": (_set("full_capacity_price", 0, 0.05), ["full_capacity_price", "0.05"]),
    "negative release": (_set("stockpile_release", (0, 1), -1.0), ["stockpile_release", "-1.0"]),
}


@pytest.fixture
def no_kernel(monkeypatch):
    """Make any call into the compiled kernel fail loudly."""

    def boom(*args, **kwargs):
        raise AssertionError("the kernel ran before the input was rejected")

    monkeypatch.setattr(kernel_module, "clear_all_goods", boom)
    monkeypatch.setattr(kernel_module, "build_structure", boom)


def test_base_market_is_valid():
    m = _base_market()
    m.validate()
    assert clear_markets(m).converged.all()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_value_error_naming_the_field(case, no_kernel):
    mutate, expected = BAD_INPUTS[case]
    bad = mutate(_base_market())
    with pytest.raises(ValueError) as validated:
        bad.validate()
    with pytest.raises(ValueError) as cleared:
        clear_markets(bad)
    for msg in (str(validated.value), str(cleared.value)):
        for fragment in expected:
            assert fragment in msg, f"{fragment!r} not in {msg!r}"


@pytest.mark.parametrize("tolerance", [0.0, -1e-9, np.nan])
def test_bad_tolerance(tolerance, no_kernel):
    with pytest.raises(ValueError, match="tolerance"):
        clear_markets(_base_market(), tolerance=tolerance)


def test_bad_method_names_the_field_the_value_and_the_choices(no_kernel):
    with pytest.raises(ValueError) as err:
        clear_markets(_base_market(), method="bisection")
    for fragment in ("method", "'bisection'", "fallback", "newton"):
        assert fragment in str(err.value)


# ==================================================================================================
# Non-convergence


def test_unconvergeable_request_raises_or_reports():
    m = _base_market()
    with pytest.raises(MarketClearingError, match="good 0 did not clear"):
        clear_markets(m, max_iterations=0)
    res = clear_markets(m, max_iterations=0, allow_nonconvergence=True)
    assert res.converged.tolist() == [False]
    assert res.iterations.tolist() == [0]
    assert np.isfinite(res.residual[0]) and res.residual[0] > res.tolerance
    # the (unconverged) allocation is still a consistent set of numbers
    assert np.all(np.isfinite(res.sold)) and np.all(res.sold >= 0)
    # and with iterations allowed the same market clears
    ok = clear_markets(m)
    assert ok.converged.all() and ok.iterations[0] > 0


def test_tight_tolerance_unreachable_in_one_iteration_reports():
    m = _base_market()
    res = clear_markets(m, max_iterations=1, tolerance=1e-300, allow_nonconvergence=True)
    assert not res.converged[0] and res.iterations[0] == 1
    with pytest.raises(MarketClearingError):
        clear_markets(m, max_iterations=1, tolerance=1e-300)


# ==================================================================================================
# Kernel bugs found by these tests: regressions (the last six were strict xfails until the solver got
# its fallback sweeps; two of their hand calculations were wrong and are corrected below)


def _export_cap_market(**overrides) -> MarketInputs:  # used by a regression test below
    """Exporter (country 0) with a stockpile release and a producer, a home firm and a foreign firm,
    export quota 0: the foreign firm's demand cannot be cut to the quota by any rent below the cap."""
    spec = dict(
        pref=0.5,
        sigma=2.0,
        cap=1.5,
        floor=1e-4,
        producers=[dict(country=0, capacity=4.0, unit_cost=0.15, fcp=0.6, eps=1.0)],
        firms=[
            dict(country=0, q=4.0, e=0.5, origins=[0], weights=[1.0]),
            dict(country=1, q=1.0, e=0.5, origins=[0], weights=[1.0]),
        ],
        quota={0: 0.0},
        release={0: 5.0},
    )
    spec.update(overrides)
    return one_good_market(2, **spec)


def test_export_price_cap_rationing_clears_home_market(method):
    """Regression (fixed in 9c67a87): with the export price at the cap and exports rationed to the
    quota, the home market clears against the quota, not the unrationed export demand (before:
    p = 0.2803 with 0.82 of supply unsold at an interior price)."""
    m = _export_cap_market()
    res = clear(m, method)
    pref = 0.5
    # expected: exports are rationed to the quota (0), so the home market alone must clear:
    # 4 (p/Pref)^-0.5 = 5 + 4 min(1, (p - 0.15)/0.45)^1
    home = lambda p: 4.0 * (p / pref) ** -0.5 - 5.0 - 4.0 * min(1.0, max(p - 0.15, 0.0) / 0.45)  # noqa: E731
    p_star = brentq(home, 1e-4 * pref, 1.5 * pref, xtol=1e-15)
    assert res.exports[0, 0] == 0
    assert_allclose(res.price_domestic[0, 0], p_star, rtol=1e-8)
    assert_allclose(res.sold[0, 0], res.supply_offered[0, 0], rtol=1e-8)


def test_export_price_cap_inelastic_demand_converges(method):
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=1.5,
        floor=1e-4,
        producers=[],
        firms=[
            dict(country=0, q=1.0, e=0.0, origins=[0, 1], weights=[16 / 17, 1 / 17]),
            dict(country=0, q=3.0, e=0.0, origins=[0], weights=[1.0]),
            dict(country=1, q=1.0, e=0.0, origins=[0], weights=[1.0]),
        ],
        quota={0: 0.3},
        release={0: 5.0, 1: 0.1},
    )
    res = clear(m, method)
    floor = 1e-4 * 0.5
    # exports rationed to 0.3; home demand 3 + 16/17 + 0.3 < 5 and 1/17 < 0.1 at the floor
    assert_allclose(res.price_domestic[0], [floor, floor], rtol=1e-12)
    assert_allclose(res.exports[0, 0], 0.3, rtol=1e-9)
    assert_allclose(res.sold[0], [3 + 16 / 17 + 0.3, 1 / 17], rtol=1e-9)


def test_edge_price_without_any_priced_origin_is_nan():
    """Regression (fixed in da0f349): a good with no priced origin reported edge prices of 0.0."""
    m = one_good_market(
        2,
        producers=[dict(country=1, capacity=1.0, fcp=2.0, eps=1.0)],
        firms=[dict(country=1, q=1.0, e=0.5, origins=[0], weights=[1.0])],  # buys only from 0: no supply
    )
    res = clear_markets(m)
    assert np.isnan(res.price_domestic[0, 0]) and np.isnan(res.price_index[0])
    assert np.isnan(res.edge_price).all(), res.edge_price  # was [0.]


def test_flat_small_excess_demand_reaches_cap(method):
    """Regression (fixed in da0f349): inelastic demand against a release with a small gap; the flat
    row's one-log-unit step was rejected by the Armijo test and the price crawled (residual 1.96e-3
    after 200 iterations at p = 0.548)."""
    m = one_good_market(
        1,
        pref=0.5,
        sigma=1.25,
        cap=3.0,
        producers=[],
        firms=[dict(country=0, q=1.0, e=0.0, origins=[0], weights=[1.0])],
        release={0: 0.99609375},
    )
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], 1.5, rtol=1e-12)  # demand 1 > release: at the cap, rationed
    assert_allclose(res.delivered, [0.99609375], rtol=1e-12)


def test_binding_quota_with_exporter_at_capacity_converges(method):
    """Regression (fixed in 9c67a87): exporter without home demand, binding quota just below its
    capacity; the solver used to stall in the capacity region (p = 1.93, residual 0.023)."""
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=100.0,
        producers=[dict(country=0, capacity=0.52976747, unit_cost=0.125, fcp=1.5, eps=0.40625)],
        firms=[dict(country=1, q=1.0, e=0.3125, origins=[0], weights=[1.0])],
        quota={0: 0.5},
    )
    # expected, by hand: S(p) = 0.5 and 1 * (pi / 0.5)^-0.3125 = 0.5 for the export price pi
    p = 0.125 + 1.375 * (0.5 / 0.52976747) ** (1 / 0.40625)
    rent = 0.5 * 2 ** (1 / 0.3125) - p
    ref = solve_reference(m)
    assert_allclose([ref.price[0, 0], ref.rent[0, 0]], [p, rent], rtol=1e-9)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], p, rtol=1e-8)
    assert_allclose(res.quota_rent[0, 0], rent, rtol=1e-8)
    assert_allclose(res.exports[0, 0], 0.5, rtol=1e-9)


@pytest.mark.parametrize("planned, quota", [(3000.0, 0.1), (1.0, 0.001)])
def test_quota_far_below_export_demand_converges_and_clears_against_the_quota(planned, quota, method):
    """Regression (fixed in 9c67a87; benchmarks/README.md "Solver findings"): a quota thousands of
    times below export demand. With the old relative slack the quota row flattened, Newton crawled
    and (3000, 0.1) failed after 200 iterations; with the rent at its ceiling the producer price
    stayed at 0.628 over unsold supply. Now it converges quickly, exports equal the quota and the
    exporter (no home demand) sells at the bottom of its supply curve: the price at which it offers
    exactly the quota, a hair above its unit cost 0.2."""
    m = MarketInputs(
        n_countries=2,
        reference_price=[1.0],
        armington_elasticity=[3.0],
        price_cap=[50.0],
        price_floor=[1e-3],
        producer_country=[0],
        producer_good=[0],
        capacity=[3900.0],
        unit_cost=[0.2],
        full_capacity_price=[2.0],
        supply_elasticity=[1.0],
        firm_country=[1],
        row_firm=[0],
        row_good=[0],
        planned_purchase=[planned],
        demand_elasticity=[0.3],
        sourcing_origin=[[0]],
        sourcing_weights=[[1.0]],
        ban_intensity=np.zeros((1, 2, 2)),
        export_quota=[[quota, np.inf]],
        export_duty=np.zeros((1, 2)),
        import_tariff=np.zeros((1, 2, 2)),
        transport_cost=np.zeros((1, 2, 2)),
        stockpile_release=np.zeros((1, 2)),
    )
    res = clear(m, method)
    if method == "newton":
        assert res.iterations[0] <= 30
    assert_allclose(res.exports[0, 0], quota, rtol=1e-8)
    # supply (p - c) / (fcp - c) * capacity = quota at the producer price
    assert_allclose(res.price_domestic[0, 0], 0.2 + 1.8 * quota / 3900.0, rtol=1e-7)


def test_inelastic_export_demand_rent_reaches_ceiling(method):
    """Regression (fixed in da0f349): the flat rent row of an inelastic export demand stalled at
    rent 0.301 (residual 1.204 after 200 iterations)."""
    m = one_good_market(
        2,
        pref=0.5,
        sigma=3.0,
        cap=100.0,
        producers=[dict(country=0, capacity=0.84, unit_cost=0.0, fcp=0.6, eps=1.0)],
        firms=[dict(country=1, q=1.0, e=0.0, origins=[0], weights=[1.0])],
        quota={0: 0.3},
        release={0: 1.0},
    )
    res = clear(m, method)
    # export demand 1 > 0.3 at any rent: export price at the cap (50), exports rationed to 0.3;
    # at home 0.3 is sold against supply >= 1, so the producer price sits at the floor (5e-5)
    assert_allclose(res.price_domestic[0, 0], 5e-5, rtol=1e-12)
    assert_allclose(res.price_export[0, 0], 50.0, rtol=1e-12)
    assert_allclose(res.exports[0, 0], 0.3, rtol=1e-12)


def test_rent_reaches_ceiling_when_rival_at_capacity(method):
    producer = dict(capacity=0.6, unit_cost=0.0, fcp=0.6, eps=1.0)
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=100.0,
        producers=[dict(country=0, **producer), dict(country=1, **producer)],
        firms=[dict(country=1, q=1.0, e=0.0, origins=[0, 1], weights=[0.5, 0.5])],
        quota={0: 0.15},
    )
    res = clear(m, method)
    # export price at the cap (50); the home origin sells its capacity 0.6 to the CES order
    # (e = 0, sigma = 2: A = 0.5/50 + 0.5/p1, P = 1/A, x1 = 0.5 p1^-2 P^2 = 2 / (1 + p1/50)^2):
    # 0.6 = 2 / (1 + p1/50)^2  ->  p1 = 50 (sqrt(10/3) - 1); the exporter sells the quota, S0(p0) = p0 = 0.15.
    # (The hand calculation this test had while it was an xfail, p1 = 50 sqrt(2/3), took the CES
    # quantities to sum to the order; the reference equations, evaluate(), give 0.606 at that price.)
    p1 = 50 * (np.sqrt(10 / 3) - 1)
    assert_allclose(evaluate(m, np.array([[0.15, p1]]), np.array([[49.85, 0.0]]))["demand_origin"][0, 1], 0.6)
    assert_allclose(res.price_domestic[0], [0.15, p1], rtol=1e-8)
    assert_allclose(res.price_export[0, 0], 50.0, rtol=1e-12)
    assert_allclose(res.exports[0, 0], 0.15, rtol=1e-9)
    assert_allclose(res.delivered, [0.75], rtol=1e-9)


def test_quota_just_above_capacity_converges(method):
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=100.0,
        producers=[dict(country=0, capacity=0.49811412, unit_cost=0.09375, fcp=1.5, eps=0.40625)],
        firms=[dict(country=1, q=1.0, e=0.375, origins=[0], weights=[1.0])],
        quota={0: 0.5},
    )
    # the quota cannot bind: the exporter sells its capacity where (p / 0.5)^-0.375 = 0.49811412
    p = 0.5 * 0.49811412 ** (-1 / 0.375)
    assert_allclose(solve_reference(m).price[0, 0], p, rtol=1e-9)
    res = clear(m, method)
    assert_allclose(res.price_domestic[0, 0], p, rtol=1e-8)
    assert res.quota_rent[0, 0] == 0


def test_inelastic_market_reaches_floor(method):
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=1.5,
        floor=1e-4,
        producers=[],
        firms=[dict(country=0, q=1.0, e=0.0, origins=[0, 1], weights=[0.5, 0.5])],
        release={0: 1.0, 1: 0.25},
    )
    res = clear(m, method)
    # origin 1 sells its 0.25; origin 0 sits at the floor p0 with supply unsold. CES with e = 0,
    # sigma = 2: x_k = 0.5 p_k^-2 P^2, P = 1/A, A = 0.5/p0 + 0.5/p1, so x1 = 2 / (1 + p1/p0)^2 = 0.25
    # -> p1 = p0 (2 sqrt(2) - 1), and x0 = 2 / (1 + p0/p1)^2 < 1. (The hand calculation this test had
    # while it was an xfail took the CES quantities to sum to the order: p1 = p0 sqrt(3).)
    p0 = 5e-5
    p1 = p0 * (2 * np.sqrt(2) - 1)
    x0 = 2 / (1 + p0 / p1) ** 2
    ev = evaluate(m, np.array([[p0, p1]]), np.zeros((1, 2)))
    assert_allclose(ev["demand_origin"][0], [x0, 0.25])  # the closed form solves the reference equations
    assert_allclose(res.price_domestic[0], [p0, p1], rtol=1e-8)
    assert_allclose(res.sold[0], [x0, 0.25], rtol=1e-8)
    assert res.sold[0, 0] < res.supply_offered[0, 0]


def test_release_origin_reaches_floor_beside_costly_rival(method):
    m = one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=1.5,
        floor=1e-4,
        producers=[dict(country=1, capacity=0.25714286, unit_cost=0.15, fcp=0.6, eps=1.0)],
        firms=[dict(country=0, q=1.0, e=0.0, origins=[1, 0], weights=[0.2, 0.8])],
        release={0: 1.6},
    )
    res = clear(m, method)
    # origin 0 at the floor: its sales 0.8 p0^-2 P^2 stay below 1/0.8 = 1.25 < 1.6 for any p1;
    # origin 1 sells x1 = 0.2 p1^-2 P^2 = S1(p1) = 0.25714286 (p1 - 0.15) / 0.45 just above its cost
    p0 = 5e-5

    def excess(p1):
        big_p = 1.0 / (0.8 / p0 + 0.2 / p1)
        return 0.2 * big_p**2 / p1**2 - 0.25714286 * (p1 - 0.15) / 0.45

    p1 = brentq(excess, 0.15, 0.6, xtol=1e-16, rtol=1e-15)
    assert_allclose(res.price_domestic[0], [p0, p1], rtol=1e-8)
    assert res.sold[0, 0] < res.supply_offered[0, 0]


def test_market_below_quantity_scale_converges(method):
    m = one_good_market(
        1,
        pref=0.5,
        sigma=2.0,
        cap=100.0,
        producers=[dict(country=0, capacity=4.007211229506424e-17, unit_cost=0.0, fcp=0.6, eps=1.0)],
        firms=[dict(country=0, q=1.0, e=0.3, origins=[0], weights=[1.0])],
        ban={(0, 0): 1 - 2**-53},
    )
    res = clear(m, method)
    # at capacity: 2^-53 * (p / 0.5)^-0.3 = capacity
    p = 0.5 * (4.007211229506424e-17 / 2**-53) ** (-1 / 0.3)
    assert_allclose(res.price_domestic[0, 0], p, rtol=1e-6)


def test_demand_below_price_resolution_settles_just_above_cost(method):
    # Found by the random search (residual 1 after 200 iterations): the release-only origin 1 sits at
    # the floor, so with sigma = 10 the demand left for origin 0 (cost 0.15) is ~1e-35, far below what
    # its supply curve offers one unit in the last place above its cost. The only floating-point
    # equilibrium is the price just above the cost (supply there outruns demand; one ulp lower there is
    # none); the fallback's bracket used to stop on either side of that jump by chance.
    m = one_good_market(
        3,
        pref=0.5,
        sigma=10.0,
        cap=1.5,
        floor=1e-4,
        producers=[
            dict(country=0, capacity=1 / 3, unit_cost=0.15, fcp=0.6, eps=1.0),
            dict(country=1, capacity=0.0, unit_cost=0.0, fcp=0.6, eps=1.0),
        ],
        firms=[dict(country=0, q=1.0, e=0.0, origins=[0, 1], weights=[1 / 3, 2 / 3])],
        release={1: 4 / 3},
    )
    res = clear(m, method)
    assert res.converged.all()
    assert 0.15 < res.price_domestic[0, 0] <= 0.15 * (1 + 1e-14)
    assert_allclose(res.price_domestic[0, 1], 5e-5, rtol=1e-12)
    assert_certificate(m, res)


def test_complements_with_tiny_demand_settle_just_above_cost(method):
    # Found by the random search (residual 1): eps = 5 > sigma = 1.125 and the row's one open origin has
    # weight 1/17, so its CES price index is 17^8 times the origin's price and it buys ~1e-37; the
    # equilibrium price is the unit cost 0.15 to the last bits, as above.
    m = one_good_market(
        2,
        pref=0.5,
        sigma=1.125,
        cap=1.5,
        floor=1e-4,
        producers=[dict(country=1, capacity=1.0, unit_cost=0.15, fcp=0.6, eps=1.0)],
        firms=[dict(country=0, q=1.0, e=5.0, origins=[1, 0], weights=[1 / 17, 16 / 17])],
    )
    res = clear(m, method)
    assert res.converged.all()
    assert 0.15 < res.price_domestic[0, 1] <= 0.15 * (1 + 1e-14)
    assert_certificate(m, res)


def _supply_jump_market(release: float, jump_capacity: float, jump_cost: float, jump_eps: float) -> MarketInputs:
    """Origin 0: a stockpile release; origin 1: a small producer from cost 0 and a huge one from
    ``jump_cost`` (its supply jumps within the last bits of the price); one inelastic order of 1,
    half-and-half. Found by the slow wide search inside the full slow suite."""
    return one_good_market(
        2,
        pref=0.5,
        sigma=2.0,
        cap=1.5,
        floor=0.5,
        producers=[
            dict(country=1, capacity=jump_capacity, unit_cost=jump_cost, fcp=75.0, eps=jump_eps),
            dict(country=1, capacity=0.25, unit_cost=0.0, fcp=0.6, eps=1.0),
        ],
        firms=[dict(country=0, q=1.0, e=0.0, origins=[0, 1], weights=[0.5, 0.5])],
        release={0: release},
    )


def test_a_supply_jump_at_unit_cost_clears_at_the_cost(method):
    # Newton used to crawl 200 steps below the cost 0.4375 (residual 0.466) without handing over to
    # the fallback: the point just above the cost, where the last bits of the price cannot resolve the
    # jump, did not count as cleared through the mid condition. Both origins sell 0.5 at the cost.
    m = _supply_jump_market(0.5, 1.45997173e30, 0.4375, 10.0)
    res = clear(m, method)
    assert res.converged.all()
    assert_allclose(res.price_domestic[0], [0.4375, 0.4375], rtol=1e-9)
    assert_allclose(res.sold[0], [0.5, 0.5], rtol=1e-9)
    assert_certificate(m, res)


def test_unsold_release_at_the_floor_beside_a_supply_jump(method):
    # The kernel used to accept origin 1 at 3.4e-8 above the floor over unsold supply (z = -0.5): the
    # last-bits allowance was subtracted from the distance to the bound, a different unit. The release
    # (1.0, half of it bought) sits at the floor; origin 1 just above it, where its huge producer
    # (cost = the floor) offers what the small one lacks.
    m = _supply_jump_market(1.0, 1.59701691e19, 0.25, 8.0)
    res = clear(m, method)
    assert res.converged.all()
    assert res.price_domestic[0, 0] == pytest.approx(0.25, rel=1e-12)
    assert 0.25 <= res.price_domestic[0, 1] <= 0.25 * (1 + 1e-8)
    assert_allclose(res.sold[0], [0.5, 0.5], rtol=1e-6)
    assert_certificate(m, res)


def test_a_result_from_the_kernel_is_the_dataclass_it_would_construct():
    # clear_markets builds its MarketResult without the frozen dataclass's __init__ (a cost every
    # month): the same fields, in the same order, still frozen.
    import dataclasses

    for market in example_markets():
        res = clear_markets(market, allow_nonconvergence=True)
        built = MarketResult(**{f.name: getattr(res, f.name) for f in fields(MarketResult)})
        assert [f.name for f in fields(res)] == [f.name for f in fields(built)]
        for f in fields(MarketResult):
            assert getattr(res, f.name) is getattr(built, f.name)
        assert res.tolerance == kernel_module.DEFAULT_TOLERANCE
        with pytest.raises(dataclasses.FrozenInstanceError):
            res.price_domestic = None
        assert isinstance(res.price_domestic, np.ndarray) and res.price_domestic.shape == (
            market.n_goods,
            market.n_countries,
        )
