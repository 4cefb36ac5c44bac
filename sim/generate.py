"""Generated worlds: seeded random scenarios with the structure of critical-goods trade.

:func:`generated_scenario` returns an ordinary scenario (a :class:`sim.config.ScenarioConfig` as a
DictConfig), so generated worlds go through the same validation, calibration and model as the
historical cases. Structure: each good is produced in a few countries with a Zipf-like spread of
capacity (one dominant producer), countries buy each good mostly from its large producers (skewed
sourcing shares), and the dominant producer of the most goods is the coercer, which halves its
exports of its goods with a two-year quota starting a third of the way through the run. Country
codes are synthetic three-letter codes (``AAA``, ``AAB``, ...), not ISO countries.
"""

from __future__ import annotations

import itertools
import string

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.config import ScenarioConfig

__all__ = ["generated_scenario"]


def _codes(n: int) -> list[str]:
    letters = string.ascii_uppercase
    return ["".join(t) for t in itertools.islice(itertools.product(letters, repeat=3), n)]


def generated_scenario(
    n_countries: int = 20,
    n_goods: int = 5,
    n_firms: int = 400,
    *,
    n_producers: int | None = None,
    months: int = 120,
    seed: int = 0,
    max_sourcing_origins: int = 8,
) -> DictConfig:
    """A random but realistic scenario.

    Args:
        n_countries: Countries.
        n_goods: Critical goods.
        n_firms: User firms in total (spread over one sector per country).
        n_producers: Producers in total (default ``max(n_goods, n_countries // 2) * 2``).
        months: Length of the run in months (from 2020-01).
        seed: Seed of the structure (the model's own seed still draws firm heterogeneity).
        max_sourcing_origins: Most origins per purchase row.
    """
    rng = np.random.default_rng(seed)
    C, G = int(n_countries), int(n_goods)
    P = int(n_producers) if n_producers is not None else max(G, C // 2) * 2
    P = max(P, G)
    codes = _codes(C)
    goods = [f"good_{g:03d}" for g in range(G)]
    ref = rng.lognormal(np.log(10_000.0), 1.0, size=G)

    # Producers: each good gets producers in several countries, one of them dominant.
    per_good = np.bincount(np.concatenate([np.arange(G), rng.integers(0, G, size=P - G)]), minlength=G)
    producers, capacity_by = [], np.zeros((G, C))
    zipf = 1.0 / np.arange(1, C + 1) ** 1.3
    for g in range(G):
        n = int(min(per_good[g], C))
        where = rng.choice(C, size=n, replace=False, p=zipf / zipf.sum())
        shares = np.sort(rng.dirichlet(np.full(n, 0.5)))[::-1]
        for c, sh in zip(where, shares, strict=True):
            capacity_by[g, c] += sh
    # Demand: every country uses 1-3 goods; sizes lognormal.
    firms_per_country = np.maximum(1, rng.multinomial(n_firms - C, np.full(C, 1.0 / C)) + 1)
    use = np.zeros((G, C))
    for c in range(C):
        k = int(rng.integers(1, min(3, G) + 1))
        for g in rng.choice(G, size=k, replace=False):
            use[g, c] = rng.lognormal(np.log(1_000.0), 1.0) * firms_per_country[c] / max(1.0, n_firms / C)
    total_use = use.sum(axis=1)
    for g in range(G):
        cap_total = max(total_use[g], 1.0) * 1.35
        capacity_by[g] *= cap_total / capacity_by[g].sum()
        for c in np.flatnonzero(capacity_by[g] > 0):
            producers.append(
                {
                    "name": f"{codes[c]} {goods[g]}",
                    "country": codes[c],
                    "good": goods[g],
                    "capacity": float(capacity_by[g, c]),
                    "unit_cost": float(ref[g] * rng.uniform(0.3, 0.7)),
                }
            )
    # Sourcing: shares over the largest producers (own country first if it produces).
    sourcing = []
    for g in range(G):
        order = np.argsort(-capacity_by[g])
        producing = [int(c) for c in order if capacity_by[g, c] > 0]
        for c in np.flatnonzero(use[g] > 0):
            origins = producing[: max_sourcing_origins]
            if c in producing and c not in origins:
                origins = [int(c), *origins[:-1]]
            w = capacity_by[g, origins] * rng.lognormal(0.0, 0.5, size=len(origins))
            w = w / w.sum()
            w = np.round(w, 6)
            w[np.argmax(w)] += 1.0 - w.sum()
            sourcing.append({"destination": codes[c], "good": goods[g], "shares": {codes[o]: float(x) for o, x in zip(origins, w, strict=True) if x > 0}})
    # Keep baseline utilisation feasible: scale capacity where the calibrated demand would exceed it.
    demand_on = np.zeros((G, C))
    for sc in sourcing:
        g, d = goods.index(sc["good"]), codes.index(sc["destination"])
        for o, x in sc["shares"].items():
            demand_on[g, codes.index(o)] += use[g, d] * x
    for pr in producers:
        g, c = goods.index(pr["good"]), codes.index(pr["country"])
        pr["capacity"] = float(max(pr["capacity"], demand_on[g, c] * 2.0 + 1e-6))  # room for firm-level share noise
    # Projects: one per good outside the dominant producer.
    projects = []
    for g in range(G):
        dominant = int(np.argmax(capacity_by[g]))
        c = int(rng.choice([x for x in range(C) if x != dominant])) if C > 1 else dominant
        projects.append(
            {
                "name": f"project {goods[g]}",
                "country": codes[c],
                "good": goods[g],
                "capacity": float(0.2 * capacity_by[g].sum()),
                "unit_cost": float(ref[g] * 0.8),
                "build_lag_months": 24,
                "ramp_up_months": 12,
                "capex": float(0.2 * capacity_by[g].sum() * ref[g]),
            }
        )
    sectors = [
        {
            "country": codes[c],
            "sector": "industry",
            "n_firms": int(firms_per_country[c]),
            "value_added": float(use[:, c] @ ref * 10.0),
            "use": {goods[g]: float(use[g, c]) for g in np.flatnonzero(use[:, c] > 0)},
            "inventory_months": 2.0,
        }
        for c in range(C)
        if use[:, c].sum() > 0
    ]
    dominant_of = np.argmax(capacity_by, axis=1)
    coercer = int(np.bincount(dominant_of, minlength=C).argmax())
    coerced_goods = [goods[g] for g in range(G) if dominant_of[g] == coercer]
    start_year, start_month = 2020, 1
    last = start_month - 1 + months - 1
    end = f"{start_year + last // 12:04d}-{last % 12 + 1:02d}"
    q0 = months // 3
    q_start = f"{start_year + q0 // 12:04d}-{q0 % 12 + 1:02d}-01"
    q1 = min(q0 + 23, months - 1)
    q_end = f"{start_year + q1 // 12:04d}-{q1 % 12 + 1:02d}"
    exports = sum(demand_on[goods.index(g), coercer] - use[goods.index(g), coercer] for g in coerced_goods)
    measures = []
    if coerced_goods and exports > 0:
        measures.append(
            {
                "type": "export_quota",
                "imposer": codes[coercer],
                "goods": coerced_goods,
                "start": q_start,
                "end": q_end,
                "quantity": float(max(exports, 0.0) * 0.5 * 2.0),
                "label": "generated quota: half of baseline exports for two years",
            }
        )
    targets = sorted({sc["destination"] for sc in sourcing if sc["good"] in coerced_goods and sc["destination"] != codes[coercer]})[:3]
    data = {
        "name": "generated",
        "description": f"Generated world: {C} countries, {G} goods, {n_firms} firms (seed {seed})",
        "start": f"{start_year:04d}-{start_month:02d}",
        "end": end,
        "coercer": codes[coercer],
        "targets": targets,
        "countries": [{"code": c} for c in codes],
        "goods": [
            {
                "id": goods[g],
                "reference_price": float(ref[g]),
                "demand_elasticity": float(rng.uniform(0.1, 0.4)),
                "armington_elasticity": float(rng.uniform(2.0, 5.0)),
                "supply_elasticity": float(rng.uniform(0.5, 1.5)),
            }
            for g in range(G)
        ],
        "producers": producers,
        "projects": projects,
        "user_sectors": sectors,
        "sourcing": sourcing,
        "measures": measures,
        "max_sourcing_origins": int(max_sourcing_origins),
        "sources": {"all": f"generated by sim.generate.generated_scenario (seed {seed}); not data"},
    }
    return OmegaConf.merge(OmegaConf.structured(ScenarioConfig), data)
