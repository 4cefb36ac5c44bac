"""Seeded synthetic world markets for tests, benchmarks and scaling studies.

The structure is meant to look like critical-goods trade: production of each good concentrated in a
few countries (a Zipf-like spread of capacity), firms sourcing from a handful of origins with skewed
weights, and capacity sized so that the market clears near the reference price at baseline.
"""

from __future__ import annotations

import numpy as np

from sim.market.clearing import MarketInputs

__all__ = ["synthetic_market"]


def synthetic_market(
    n_countries: int,
    n_goods: int,
    n_firms: int,
    *,
    n_producers: int | None = None,
    goods_per_firm: tuple[int, int] = (1, 3),
    max_origins: int = 8,
    seed: int | np.random.SeedSequence | None = 0,
) -> MarketInputs:
    """Build a random but realistic one-step market.

    Args:
        n_countries: Countries ``C``.
        n_goods: Goods ``G``.
        n_firms: User firms ``F``; each buys between ``goods_per_firm[0]`` and ``goods_per_firm[1]``
            goods.
        n_producers: Producers ``P`` (default ``max(G, C // 2) * 2``), spread over goods, and within a
            good concentrated in a few countries.
        goods_per_firm: Inclusive range of goods each firm uses.
        max_origins: ``K``, most origins a firm sources one good from.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A valid :class:`MarketInputs` with no measures in force, whose total capacity per good is
        about 1.3 times demand at the reference price.
    """
    rng = np.random.default_rng(seed)
    C, G, F = int(n_countries), int(n_goods), int(n_firms)
    P = int(n_producers) if n_producers is not None else max(G, C // 2) * 2
    P = max(P, G)
    K = int(max_origins)

    reference_price = rng.lognormal(mean=3.0, sigma=1.5, size=G)
    armington = rng.uniform(2.0, 6.0, size=G)

    # Producers: every good gets at least one; countries drawn with Zipf-like weights per good.
    producer_good = np.concatenate([np.arange(G), rng.integers(0, G, size=P - G)])
    rank_weight = 1.0 / np.arange(1, C + 1) ** 1.2
    producer_country = np.empty(P, dtype=np.int64)
    for g in range(G):
        members = np.flatnonzero(producer_good == g)
        perm = rng.permutation(C)
        producer_country[members] = perm[rng.choice(C, size=members.size, p=rank_weight / rank_weight.sum())]

    # Firms and their purchase rows.
    firm_country = rng.integers(0, C, size=F)
    lo, hi = goods_per_firm
    n_goods_of_firm = rng.integers(lo, hi + 1, size=F).clip(1, G)
    row_firm = np.repeat(np.arange(F), n_goods_of_firm)
    row_good = np.concatenate([rng.choice(G, size=n, replace=False) for n in n_goods_of_firm])
    R = row_firm.size
    planned = rng.lognormal(mean=0.0, sigma=1.0, size=R)
    demand_elasticity = rng.uniform(0.05, 0.8, size=R)

    producing = [np.unique(producer_country[producer_good == g]) for g in range(G)]
    sourcing_origin = np.full((R, K), -1, dtype=np.int64)
    sourcing_weights = np.zeros((R, K))
    for r in range(R):
        cands = producing[row_good[r]]
        n = int(rng.integers(1, min(K, cands.size) + 1))
        chosen = rng.choice(cands, size=n, replace=False)
        w = rng.dirichlet(np.full(n, 0.7))
        sourcing_origin[r, :n] = chosen
        sourcing_weights[r, :n] = w / w.sum()

    # Capacity: demand at reference price, spread over producers, with 30% headroom.
    demand_by_good = np.bincount(row_good, weights=planned, minlength=G)
    share = rng.lognormal(0.0, 1.0, size=P)
    for g in range(G):
        members = producer_good == g
        share[members] /= share[members].sum()
    capacity = share * demand_by_good[producer_good] * 1.3
    unit_cost = reference_price[producer_good] * rng.uniform(0.1, 0.5, size=P)
    full_capacity_price = reference_price[producer_good] * rng.uniform(1.3, 2.5, size=P)
    supply_elasticity = rng.uniform(0.3, 2.0, size=P)

    transport = rng.uniform(0.0, 0.05, size=(G, C, C)) * reference_price[:, None, None]
    for g in range(G):
        np.fill_diagonal(transport[g], 0.0)

    return MarketInputs(
        n_countries=C,
        reference_price=reference_price,
        armington_elasticity=armington,
        price_cap=np.full(G, 50.0),
        price_floor=np.full(G, 1e-3),
        producer_country=producer_country,
        producer_good=producer_good,
        capacity=capacity,
        unit_cost=unit_cost,
        full_capacity_price=full_capacity_price,
        supply_elasticity=supply_elasticity,
        firm_country=firm_country,
        row_firm=row_firm,
        row_good=row_good,
        planned_purchase=planned,
        demand_elasticity=demand_elasticity,
        sourcing_origin=sourcing_origin,
        sourcing_weights=sourcing_weights,
        ban_intensity=np.zeros((G, C, C)),
        export_quota=np.full((G, C), np.inf),
        export_duty=np.zeros((G, C)),
        import_tariff=np.zeros((G, C, C)),
        transport_cost=transport,
        stockpile_release=np.zeros((G, C)),
    )
