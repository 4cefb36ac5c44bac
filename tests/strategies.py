"""Hypothesis strategies (and a few fixed builders) for small, valid :class:`MarketInputs`.

Two families of markets come out of :func:`markets`:

* ``interior=True``: markets built so that most supplying origins' prices end up strictly between
  the floor and the cap (a wide band; unit costs keep prices off the floor); the equilibrium is then
  a square (piecewise smooth) system that :mod:`reference_solver` can solve independently (it
  raises ``NotInterior`` for the others, which the tests then discard after checking that the
  kernel clears them). Still wide: demand elasticities from 0 to 10, Armington elasticities up to
  10, supply elasticities up to 10, quotas from 0 to 2x exports, capacity at 0.9-1.1x demand,
  release-only origins, an origin whose only producer has no capacity.
* ``interior=False`` (the default): anything valid, including corner cases the reference solver does
  not cover: prices at the cap or the floor, capacity that binds, inelastic demand, zero quotas,
  zero planned purchases, release-only origins, producers with no capacity.

In both, every quantity (purchases, and supply and quotas sized from them) is multiplied by a drawn
scale from 1e-9 to 1e9: whether a market clears must not depend on its units.

Both include bans and partial bans, export quotas, duties, tariffs, transport costs, stockpile
releases, firms with several origins (in scattered slots, some empty) and countries without supply.
Supply and quotas are sized from demand at the reference price with the measures in force, so the
markets are neither trivially empty nor wildly out of balance.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from sim.market import MarketInputs

__all__ = ["markets", "market_and_edge", "example_markets", "demand_at_reference", "replace"]


def replace(market: MarketInputs, **changes) -> MarketInputs:
    """A copy of ``market`` with some fields replaced (arrays are copied, the original is untouched)."""
    kwargs = {}
    for name in MarketInputs.__dataclass_fields__:
        value = getattr(market, name)
        kwargs[name] = value.copy() if isinstance(value, np.ndarray) else value
    kwargs.update(changes)
    return MarketInputs(**kwargs)


def demand_at_reference(
    n_countries: int,
    reference_price: np.ndarray,
    armington_elasticity: np.ndarray,
    has_supply: np.ndarray,
    firm_country: np.ndarray,
    row_firm: np.ndarray,
    row_good: np.ndarray,
    planned_purchase: np.ndarray,
    sourcing_origin: np.ndarray,
    sourcing_weights: np.ndarray,
    ban_intensity: np.ndarray,
    export_duty: np.ndarray,
    import_tariff: np.ndarray,
    transport_cost: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Demand for and exports of each origin ``[G, C]`` if every producer price were the reference price.

    Only used to size supply and quotas so that generated markets are roughly balanced (demand
    elasticity is ignored: at the reference price index it does not matter much).
    """
    G, C = reference_price.shape[0], n_countries
    demand = np.zeros((G, C))
    exports = np.zeros((G, C))
    for r in range(row_good.shape[0]):
        g = row_good[r]
        d = firm_country[row_firm[r]]
        pref, sigma = reference_price[g], armington_elasticity[g]
        terms = []
        for k in range(sourcing_origin.shape[1]):
            o = sourcing_origin[r, k]
            if o < 0 or not has_supply[g, o]:
                continue
            w = sourcing_weights[r, k]
            if w <= 0 or ban_intensity[g, o, d] >= 1.0:
                continue  # a full ban closes the slot; an informal measure only holds goods at the border
            if o == d:
                p = pref
            else:
                p = (pref * (1 + export_duty[g, o]) + transport_cost[g, o, d]) * (1 + import_tariff[g, o, d])
            terms.append((o, w * p ** (1 - sigma), p, 1.0 - ban_intensity[g, o, d]))
        a = sum(t[1] for t in terms)
        for o, v, p, through in terms:
            # share v/a of expenditure at (roughly) the reference price index, divided by the price
            x = planned_purchase[r] * v / a * pref / p * through
            demand[g, o] += x
            if o != d:
                exports[g, o] += x
    return demand, exports


def _floats(lo: float, hi: float):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


@st.composite
def markets(
    draw,
    *,
    max_countries: int = 5,
    max_goods: int = 3,
    max_firms: int = 6,
    interior: bool = False,
    measures: bool = True,
    min_countries: int = 1,
    min_quotas: int = 0,
) -> MarketInputs:
    """A small valid market; see the module docstring for ``interior``.

    Args:
        max_countries, max_goods, max_firms: upper bounds on ``C``, ``G`` and ``F``.
        interior: build a market whose equilibrium prices lie strictly inside the floor/cap band, with
            smooth supply (no binding capacity) and elastic demand.
        measures: whether to put trade measures (bans, quotas, duties, tariffs) in force.
        min_countries: lower bound on ``C``.
        min_quotas: draw at least this many export quotas (mostly on origins that export).
    """
    C = draw(st.integers(min_countries, max_countries), label="n_countries")
    G = draw(st.integers(1, max_goods), label="n_goods")
    countries = st.integers(0, C - 1)

    # ---- Per-good parameters. ----
    reference_price = np.array(
        [draw(st.sampled_from([0.5, 1.0, 4.0, 30.0, 250.0])) * draw(_floats(0.8, 1.25)) for _ in range(G)]
    )
    armington = np.array(
        [draw(_floats(1.5, 5.0) | _floats(1.1, 10.0) if interior else _floats(1.05, 10.0)) for _ in range(G)]
    )
    # Units of the quantities: the same market in milligrams or in kilotonnes must clear alike.
    scale = 10.0 ** draw(st.integers(-9, 9) | st.just(0), label="quantity scale exponent")
    if interior:
        price_cap = np.full(G, 100.0)
        price_floor = np.full(G, 1e-4)
    else:
        price_cap = np.array([draw(st.sampled_from([1.5, 3.0, 100.0])) for _ in range(G)])
        price_floor = np.array([draw(st.sampled_from([1e-4, 0.1, 0.5])) for _ in range(G)])

    # ---- Where each good is produced (some countries produce nothing). ----
    prod_country: list[int] = []
    prod_good: list[int] = []
    prod_zero: list[bool] = []  # producer with no capacity this step
    for g in range(G):
        where = draw(st.lists(countries, min_size=1 if interior else 0, max_size=min(C, 3), unique=True))
        for c in where:
            for j in range(draw(st.integers(1, 2))):
                prod_country.append(c)
                prod_good.append(g)
                # a zero-capacity producer, sometimes the only one of its country and good
                prod_zero.append(draw(st.booleans()) if j > 0 else draw(st.integers(0, 7)) == 0)
    P = len(prod_country)
    producer_country = np.array(prod_country, dtype=np.int64)
    producer_good = np.array(prod_good, dtype=np.int64)
    zero_capacity = np.array(prod_zero, dtype=bool)

    # Stockpile releases, also on origins that produce nothing (release-only origins).
    release_mask = np.zeros((G, C), dtype=bool)
    for g in range(G):
        for c in range(C):
            produced = bool(np.any((producer_good == g) & (producer_country == c)))
            if (produced or draw(st.booleans())) and draw(st.integers(0, 4)) == 0:
                release_mask[g, c] = True
    has_supply = release_mask.copy()
    for p in range(P):
        if not zero_capacity[p]:
            has_supply[producer_good[p], producer_country[p]] = True

    # ---- Firms and purchase rows. ----
    F = draw(st.integers(1, max_firms), label="n_firms")
    firm_country = np.array([draw(countries) for _ in range(F)], dtype=np.int64)
    K = draw(st.integers(1, min(C, 4)), label="slots")
    row_firm_l, row_good_l, planned_l, elast_l, origin_rows, weight_rows = [], [], [], [], [], []
    for f in range(F):
        goods = draw(st.lists(st.integers(0, G - 1), min_size=1, max_size=G, unique=True))
        for g in goods:
            row_firm_l.append(f)
            row_good_l.append(g)
            if not interior and draw(st.integers(0, 9)) == 0:
                planned_l.append(0.0)
            else:
                planned_l.append(draw(_floats(0.2, 5.0)) * scale)
            if interior:
                elast_l.append(draw(_floats(0.3, 1.5) | st.just(0.0) | _floats(0.0, 10.0)))
            else:
                elast_l.append(draw(st.sampled_from([0.0, 0.3, 1.0]) | _floats(0.0, 2.0) | _floats(0.0, 10.0)))
            n = draw(st.integers(1, K))
            # Mostly origins that have supply of the good, sometimes any country at all.
            supplying = [c for c in range(C) if has_supply[g, c]]
            pool = st.sampled_from(supplying) if supplying and draw(_floats(0, 1)) < 0.8 else countries
            chosen = draw(st.lists(pool, min_size=1, max_size=n, unique=True))
            slots = draw(st.permutations(list(range(K))))[: len(chosen)]
            raw = [draw(_floats(0.05, 1.0)) for _ in chosen]
            orow = [-1] * K
            wrow = [0.0] * K
            total = float(np.sum(raw))
            for s, c, w in zip(slots, chosen, raw, strict=True):
                orow[s] = c
                wrow[s] = w / total
            origin_rows.append(orow)
            weight_rows.append(wrow)
    row_firm = np.array(row_firm_l, dtype=np.int64)
    row_good = np.array(row_good_l, dtype=np.int64)
    planned = np.array(planned_l)
    demand_elasticity = np.array(elast_l)
    sourcing_origin = np.array(origin_rows, dtype=np.int64).reshape(len(origin_rows), K)
    sourcing_weights = np.array(weight_rows).reshape(len(weight_rows), K)
    R = row_firm.shape[0]

    # ---- Trade costs and measures. ----
    transport = np.zeros((G, C, C))
    dist = np.abs(np.subtract.outer(np.arange(C), np.arange(C))) % 3 + 1.0
    for g in range(G):
        level = draw(st.sampled_from([0.0, 0.05]) | _floats(0.0, 0.2 if interior else 0.4))
        transport[g] = level * reference_price[g] * dist / 3.0
        np.fill_diagonal(transport[g], 0.0)
    ban = np.zeros((G, C, C))
    duty = np.zeros((G, C))
    tariff = np.zeros((G, C, C))
    used_edges = sorted(
        {
            (int(row_good[r]), int(sourcing_origin[r, k]), int(firm_country[row_firm[r]]))
            for r in range(R)
            for k in range(K)
            if sourcing_origin[r, k] >= 0
        }
    )
    foreign_edges = [e for e in used_edges if e[1] != e[2]]
    quota_spec = []
    if measures:
        if used_edges:
            for _ in range(draw(st.integers(0, 3))):
                g, o, d = draw(st.sampled_from(used_edges))
                # bans on foreign edges mostly; a domestic "ban" is legal input too
                if o == d and interior:
                    continue
                # full bans and informal measures (a share held at the border) about equally often
                ban[g, o, d] = draw(st.sampled_from([1.0, 0.5, 0.2]) | _floats(0.05, 0.95 if interior else 1.0))
        for _ in range(draw(st.integers(0, 2))):
            g, o = draw(st.integers(0, G - 1)), draw(countries)
            duty[g, o] = draw(_floats(0.0, 0.3 if interior else 1.0))
        if foreign_edges:
            for g, o, d in draw(st.lists(st.sampled_from(foreign_edges), max_size=3, unique=True)):
                tariff[g, o, d] = draw(_floats(0.0, 0.5 if interior else 2.0))
        n_quota = draw(st.integers(min_quotas, max(2, min_quotas)))
        exporters = sorted({(g, o) for g, o, _ in foreign_edges if has_supply[g, o]})
        for _ in range(n_quota):
            if exporters and draw(_floats(0, 1)) < 0.85:
                g, o = draw(st.sampled_from(exporters))
            else:
                g, o = draw(st.integers(0, G - 1)), draw(countries)
            factor = draw(
                st.sampled_from([0.5, 0.7, 1.5]) | _floats(0.4, 2.0) | _floats(0.0, 2.0)
                if interior
                else st.sampled_from([0.3, 0.7, 1.5]) | _floats(0.05, 2.0) | _floats(0.0, 2.0)
            )
            if draw(st.integers(0, 5)) == 0:
                factor = 0.0
            quota_spec.append((g, o, factor))
    # In the interior family keep ban + duty + tariff + transport from pushing one origin's share
    # of demand far from what its supply was sized for: sizing below uses demand at the reference
    # price with the measures in force.
    ref_demand, ref_exports = demand_at_reference(
        C, reference_price, armington, has_supply, firm_country, row_firm, row_good, planned,
        sourcing_origin, sourcing_weights, ban, duty, tariff, transport,
    )  # fmt: skip
    total_by_good = np.bincount(row_good, weights=planned, minlength=G) if R else np.zeros(G)

    # ---- Supply curves sized from demand at the reference price. ----
    capacity = np.zeros(P)
    unit_cost = np.zeros(P)
    fcp = np.zeros(P)
    eps = np.zeros(P)
    n_in_origin = np.zeros((G, C))
    for p in range(P):
        if not zero_capacity[p]:
            n_in_origin[producer_good[p], producer_country[p]] += 1
    for p in range(P):
        g, c = producer_good[p], producer_country[p]
        pref = reference_price[g]
        if interior:
            unit_cost[p] = pref * draw(_floats(0.05, 0.6))
            # the supply curve's linear onset, power segment and (rarely reached) capacity all occur
            fcp[p] = pref * draw(st.sampled_from([3.0, 10.0, 30.0])) * draw(_floats(1.0, 2.0))
            eps[p] = draw(_floats(0.4, 2.5) | _floats(0.2, 10.0))
        else:
            unit_cost[p] = pref * draw(st.sampled_from([0.0, 0.3]) | _floats(0.0, 0.9))
            fcp[p] = pref * draw(st.sampled_from([1.2, 150.0]) | _floats(1.0, 4.0))
            fcp[p] = max(fcp[p], unit_cost[p] + 0.05 * pref)
            eps[p] = draw(st.sampled_from([1.0]) | _floats(0.2, 3.0) | _floats(0.05, 10.0))
        if zero_capacity[p]:
            capacity[p] = 0.0
            continue
        base = ref_demand[g, c] if ref_demand[g, c] > 0 else max(total_by_good[g], scale) / max(1, n_in_origin[g].sum())
        if draw(st.integers(0, 3)) == 0:
            # capacity itself at 0.9-1.1x the origin's demand: it binds near the equilibrium
            capacity[p] = base * draw(_floats(0.9, 1.1)) / n_in_origin[g, c]
            continue
        target = base * draw(_floats(0.3, 3.0)) / n_in_origin[g, c]  # supply at the reference price
        if release_mask[g, c]:
            target *= 0.7
        capacity[p] = target * ((fcp[p] - unit_cost[p]) / (pref - unit_cost[p])) ** eps[p]
        if not interior and fcp[p] < pref:
            capacity[p] = target
    release = np.zeros((G, C))
    for g in range(G):
        for c in range(C):
            if release_mask[g, c]:
                base = ref_demand[g, c] if ref_demand[g, c] > 0 else max(total_by_good[g], scale)
                release[g, c] = base * draw(_floats(0.05, 0.3) if interior else _floats(0.05, 2.0))
    quota = np.full((G, C), np.inf)
    for g, o, factor in quota_spec:
        base = ref_exports[g, o] if ref_exports[g, o] > 0 else scale
        quota[g, o] = base * factor

    return MarketInputs(
        n_countries=C,
        reference_price=reference_price,
        armington_elasticity=armington,
        price_cap=price_cap,
        price_floor=price_floor,
        producer_country=producer_country,
        producer_good=producer_good,
        capacity=capacity,
        unit_cost=unit_cost,
        full_capacity_price=fcp,
        supply_elasticity=eps,
        firm_country=firm_country,
        row_firm=row_firm,
        row_good=row_good,
        planned_purchase=planned,
        demand_elasticity=demand_elasticity,
        sourcing_origin=sourcing_origin,
        sourcing_weights=sourcing_weights,
        ban_intensity=ban,
        export_quota=quota,
        export_duty=duty,
        import_tariff=tariff,
        transport_cost=transport,
        stockpile_release=release,
    )


@st.composite
def market_and_edge(draw, *, interior: bool = True, foreign: bool = True, **kwargs):
    """A market and one trade edge ``(good, origin, destination)`` that some purchase row uses.

    With ``foreign`` the edge crosses a border (origin != destination) and its origin has supply.
    Rejects (via ``assume``) markets without such an edge.
    """
    from hypothesis import assume

    market = draw(markets(interior=interior, min_countries=2 if foreign else 1, **kwargs))
    has_supply = np.zeros((market.n_goods, market.n_countries), dtype=bool)
    has_supply[market.producer_good[market.capacity > 0], market.producer_country[market.capacity > 0]] = True
    has_supply |= market.stockpile_release > 0
    edges = sorted(
        {
            (int(market.row_good[r]), int(o), int(market.firm_country[market.row_firm[r]]))
            for r in range(market.row_good.shape[0])
            for k, o in enumerate(market.sourcing_origin[r])
            if o >= 0 and market.sourcing_weights[r, k] > 0 and market.planned_purchase[r] > 0
        }
    )
    edges = [e for e in edges if has_supply[e[0], e[1]] and (not foreign or e[1] != e[2])]
    assume(edges)
    return market, draw(st.sampled_from(edges))


def example_markets() -> list[MarketInputs]:
    """A fixed handful of markets with every kind of measure, built with plain NumPy (no Hypothesis).

    Used for determinism checks, which must rebuild the very same inputs in a subprocess.
    """
    from sim.market.synthetic import synthetic_market

    out = []
    for seed, (C, G, F) in enumerate([(4, 2, 8), (5, 3, 12), (3, 1, 4)]):
        m = synthetic_market(C, G, F, max_origins=3, seed=seed)
        rng = np.random.default_rng(1000 + seed)
        ban = np.zeros((G, C, C))
        ban[0, 0, 1] = 1.0
        ban[G - 1, 1, 2] = 0.4
        quota = np.full((G, C), np.inf)
        quota[0, int(rng.integers(C))] = 0.3
        duty = np.zeros((G, C))
        duty[G - 1, 0] = 0.15
        tariff = rng.uniform(0, 0.3, size=(G, C, C)) * (rng.random((G, C, C)) < 0.3)
        release = np.zeros((G, C))
        release[0, C - 1] = 0.2
        out.append(
            replace(
                m,
                ban_intensity=ban,
                export_quota=quota,
                export_duty=duty,
                import_tariff=tariff,
                stockpile_release=release,
            )
        )
    # A release-only origin under a large quota it never reaches (the kernel once overflowed there
    # without the JIT: log((quota + 1e-300) / (0 + 1e-300)); found by Hypothesis under mutmut).
    one = np.ones(1)
    zero = np.zeros(1)
    idx = np.zeros(1, dtype=np.int64)
    out.append(
        MarketInputs(
            n_countries=1,
            reference_price=0.5 * one,
            armington_elasticity=2.0 * one,
            price_cap=1.5 * one,
            price_floor=1e-4 * one,
            producer_country=idx,
            producer_good=idx,
            capacity=zero,
            unit_cost=zero,
            full_capacity_price=0.6 * one,
            supply_elasticity=one,
            firm_country=idx,
            row_firm=idx,
            row_good=idx,
            planned_purchase=1e9 * one,
            demand_elasticity=zero,
            sourcing_origin=np.zeros((1, 1), dtype=np.int64),
            sourcing_weights=np.ones((1, 1)),
            ban_intensity=np.zeros((1, 1, 1)),
            export_quota=np.full((1, 1), 3e8),
            export_duty=np.zeros((1, 1)),
            import_tariff=np.zeros((1, 1, 1)),
            transport_cost=np.zeros((1, 1, 1)),
            stockpile_release=np.full((1, 1), 1e9),
        )
    )
    return out
