"""Generated worlds: seeded random scenarios with the structure of critical-goods trade.

:func:`generated_scenario` returns an ordinary scenario (a :class:`sim.world.config.ScenarioConfig` as a
DictConfig), so generated worlds go through the same validation, calibration and model as the
historical cases. From the command line a generated world is ``scenario=generated`` with the
generator's parameters as overrides (``scenario.countries=200 scenario.goods=50
scenario.firms=20000``; see ``configs/scenario/generated.yaml`` and
:class:`sim.world.config.GeneratedScenarioConfig`); :func:`expand_config` checks them
(:func:`check_generator`) and replaces them by the scenario they generate, recording them in
``scenario.generated_from``. The same parameters and seed always give the same world.

Structure: each good is produced in a few countries with a Zipf-like spread of capacity (one
dominant producer), countries buy each good mostly from its large producers (skewed sourcing
shares), and the dominant producer of the most goods is the coercer, which halves its
exports of its goods with a two-year quota starting a third of the way through the run. Country
codes are synthetic three-letter codes (``AAA``, ``AAB``, ...), not ISO countries.

Feasibility is the generator's job: every parameter set :func:`check_generator` accepts gives, for
every seed and size, a scenario that passes :func:`sim.world.scenario.validate_config` and whose baseline
calibrates in :func:`sim.world.scenario.build_world`. Each producing country's capacity is its share of
``capacity_headroom`` times the good's world use, raised where needed to cover the baseline demand
it will meet (:func:`_capacity_needed`). That demand is certain: the firms' random sourcing shares
redistribute their country's shares and add up to them exactly (:func:`sim.world.scenario.match_margins`).
"""

from __future__ import annotations

import itertools
import math
import string

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.world.config import GeneratedScenarioConfig, ScenarioConfig, is_generated
from sim.world.scenario import MAX_BASELINE_UTILISATION, MAX_MAGNITUDE

__all__ = [
    "generated_scenario",
    "check_generator",
    "expand_config",
    "generator_seed",
    "MAX_COUNTRIES",
    "MIN_SOURCING_SHARE",
]

#: Most countries a generated world can have (three-letter synthetic codes).
MAX_COUNTRIES = 26**3
#: Measures a generated coercer can impose.
GENERATED_MEASURES = ("export_quota", "export_ban", "none")
#: The generator's parameters that are real numbers (each must be finite).
_FLOAT_PARAMETERS = (
    "production_concentration",
    "producer_share_concentration",
    "sourcing_dispersion",
    "capacity_headroom",
    "measure_share",
)
#: Smallest capacity share of a good's producer (keeps every producer's capacity a sane number).
MIN_CAPACITY_SHARE = 1e-6
#: Smallest share of a country's purchases of a good an origin is listed with in its sourcing.
MIN_SOURCING_SHARE = 0.01
#: Relative slack on the capacity an origin needs, for rounding in the calibration's sums.
_SLACK = 1e-6
#: Entropy mixed into the run's seed to derive the structure's seed (a stream of its own).
_STRUCTURE_STREAM = 0x67656E


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
    start: str = "2020-01",
    production_concentration: float = 1.3,
    producer_share_concentration: float = 0.5,
    sourcing_dispersion: float = 0.5,
    max_goods_per_country: int = 3,
    capacity_headroom: float = 1.35,
    measure: str = "export_quota",
    measure_share: float = 0.5,
    measure_start_month: int | None = None,
    measure_months: int = 24,
    n_targets: int = 3,
    name: str = "generated",
    description: str = "",
) -> DictConfig:
    """A random but realistic scenario (parameters as in :class:`sim.world.config.GeneratedScenarioConfig`).

    Args:
        n_countries: Countries.
        n_goods: Critical goods.
        n_firms: User firms in total (spread over one sector per country).
        n_producers: Producers in total (default ``max(n_goods, n_countries // 2) * 2``).
        months: Length of the run in months (from ``start``).
        seed: Seed of the structure (the model's own seed still draws firm heterogeneity).
        max_sourcing_origins: Most origins per purchase row.
        start: First month, ``YYYY-MM``.
        production_concentration: Zipf exponent of where production is.
        producer_share_concentration: Dirichlet concentration of producers' capacity shares.
        sourcing_dispersion: Lognormal sigma of sourcing shares around capacity shares.
        max_goods_per_country: Most goods one country uses.
        capacity_headroom: World capacity / world use at baseline.
        measure: ``export_quota``, ``export_ban`` or ``none``.
        measure_share: Quota as a share of baseline exports, or the ban's intensity.
        measure_start_month: Month (from 0) the measure starts; default ``months // 3``.
        measure_months: Months the measure lasts.
        n_targets: Target countries named (first importers of the coerced goods by code).
        name: The scenario's name.
        description: Its description (default: a generated one).
    """
    rng = np.random.default_rng(seed)
    C, G = int(n_countries), int(n_goods)
    P = int(n_producers) if n_producers is not None else max(G, C // 2) * 2
    P = max(P, G)
    codes = _codes(C)
    goods = [f"good_{g:03d}" for g in range(G)]
    ref = rng.lognormal(np.log(10_000.0), 1.0, size=G)

    # Producers: each good gets producers in several countries, one of them dominant. The countries
    # are drawn without replacement with Zipf weights (Gumbel top-k on the log weights, so that any
    # exponent works), their capacity shares from a Dirichlet draw, largest first.
    per_good = np.bincount(np.concatenate([np.arange(G), rng.integers(0, G, size=P - G)]), minlength=G)
    with np.errstate(over="ignore"):  # an exponent so large that the weights underflow: -inf, never chosen first
        log_zipf = -float(production_concentration) * np.log(np.arange(1, C + 1))
    capacity_share = np.zeros((G, C))
    for g in range(G):
        n = int(min(per_good[g], C))
        where = np.argsort(-(log_zipf + rng.gumbel(size=C)), kind="stable")[:n]
        shares = np.sort(rng.dirichlet(np.full(n, producer_share_concentration)))[::-1]
        shares = np.maximum(shares, MIN_CAPACITY_SHARE)
        capacity_share[g, where] = shares / shares.sum()
    # Demand: every country uses 1 to max_goods_per_country goods; sizes lognormal.
    firms_per_country = np.maximum(1, rng.multinomial(n_firms - C, np.full(C, 1.0 / C)) + 1)
    use = np.zeros((G, C))
    for c in range(C):
        k = int(rng.integers(1, min(max_goods_per_country, G) + 1))
        for g in rng.choice(G, size=k, replace=False):
            use[g, c] = rng.lognormal(np.log(1_000.0), 1.0) * firms_per_country[c] / max(1.0, n_firms / C)
    total_use = use.sum(axis=1)
    # Sourcing: shares over the largest producers (own country first if it produces), lognormal
    # noise around their capacity shares (drawn in logs, so that any dispersion works); origins
    # below MIN_SOURCING_SHARE of a row are dropped.
    sourcing, rows = [], []
    for g in range(G):
        producing = [int(c) for c in np.argsort(-capacity_share[g], kind="stable") if capacity_share[g, c] > 0]
        for c in np.flatnonzero(use[g] > 0):
            origins = producing[:max_sourcing_origins]
            if c in producing and c not in origins:
                origins = [int(c), *origins[:-1]]
            origins = np.asarray(origins)
            with np.errstate(over="ignore"):
                noise = np.clip(float(sourcing_dispersion) * rng.normal(size=len(origins)), -1e300, 1e300)
            logw = np.log(capacity_share[g, origins]) + noise
            w = np.exp(logw - logw.max())
            w = w / w.sum()
            keep = w >= MIN_SOURCING_SHARE  # the largest always stays
            origins, w = origins[keep], w[keep] / w[keep].sum()
            w = np.round(w, 6)
            w[np.argmax(w)] += 1.0 - w.sum()
            rows.append((g, int(c), origins, w))
            sourcing.append(
                {
                    "destination": codes[c],
                    "good": goods[g],
                    "shares": {codes[o]: float(x) for o, x in zip(origins, w, strict=True)},
                }
            )
    # Capacity: each producing country gets its share of headroom x world use, and at least what
    # the calibration needs (see _capacity_needed).
    expected, needed = _capacity_needed(rows, use, G, C)
    capacity_by = np.maximum(capacity_share * (np.maximum(total_use, 1.0) * capacity_headroom)[:, None], needed)
    producers = [
        {
            "name": f"{codes[c]} {goods[g]}",
            "country": codes[c],
            "good": goods[g],
            "capacity": float(capacity_by[g, c]),
            "unit_cost": float(ref[g] * rng.uniform(0.3, 0.7)),
        }
        for g in range(G)
        for c in np.flatnonzero(capacity_share[g] > 0)
    ]
    # Projects: one per good outside the dominant producer, a fifth of the good's nominal capacity.
    nominal = np.maximum(total_use, 1.0) * capacity_headroom
    projects = []
    for g in range(G):
        dominant = int(np.argmax(capacity_by[g]))
        c = int(rng.choice([x for x in range(C) if x != dominant]))
        projects.append(
            {
                "name": f"project {goods[g]}",
                "country": codes[c],
                "good": goods[g],
                "capacity": float(0.2 * nominal[g]),
                "unit_cost": float(ref[g] * 0.8),
                "build_lag_months": 24,
                "ramp_up_months": 12,
                "capex": float(0.2 * nominal[g] * ref[g]),
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
    start_year, start_month = (int(x) for x in str(start).split("-")[:2])

    def month(step: int) -> str:
        m = start_month - 1 + step
        return f"{start_year + m // 12:04d}-{m % 12 + 1:02d}"

    end = month(months - 1)
    q0 = months // 3 if measure_start_month is None else int(measure_start_month)
    q1 = min(q0 + int(measure_months) - 1, months - 1)
    exports = sum(
        use[g, d] * w[list(origins).index(coercer)]
        for g, d, origins, w in rows
        if dominant_of[g] == coercer and d != coercer and coercer in origins
    )
    targets = sorted(
        {sc["destination"] for sc in sourcing if sc["good"] in coerced_goods and sc["destination"] != codes[coercer]}
    )[:n_targets]
    measures = []
    if measure == "export_quota" and coerced_goods and exports > 0 and q0 <= q1:
        measures.append(
            {
                "type": "export_quota",
                "imposer": codes[coercer],
                "goods": coerced_goods,
                "start": f"{month(q0)}-01",
                "end": month(q1),
                "quantity": float(max(exports, 0.0) * measure_share * ((q1 - q0 + 1) / 12)),
                "label": f"generated quota: {measure_share:.0%} of baseline exports for {q1 - q0 + 1} months",
            }
        )
    elif measure == "export_ban" and coerced_goods and targets and q0 <= q1:
        measures.append(
            {
                "type": "export_ban",
                "imposer": codes[coercer],
                "goods": coerced_goods,
                "targets": targets,
                "start": f"{month(q0)}-01",
                "end": month(q1),
                "intensity": float(measure_share),
                "label": f"generated ban on the targets (intensity {measure_share:g}) for {q1 - q0 + 1} months",
            }
        )
    data = {
        "name": name,
        "description": description or f"Generated world: {C} countries, {G} goods, {n_firms} firms (seed {seed})",
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
        "sources": {"all": f"generated by sim.world.generate.generated_scenario (seed {seed}); not data"},
    }
    return OmegaConf.merge(OmegaConf.structured(ScenarioConfig), data)


def _capacity_needed(rows, use, G: int, C: int):
    """The baseline demand on each (good, producing country) and the capacity it needs.

    The calibration refuses an origin whose baseline demand exceeds ``MAX_BASELINE_UTILISATION`` of
    its capacity. That demand is the countries' use times their sourcing shares, whatever the
    model's seed: firms' shares are drawn around their country's shares but fitted to add up to
    them exactly (:func:`sim.world.scenario.match_margins`), so the capacity needed is certain.

    Returns:
        ``(expected, needed)``, per year, each ``[G, C]``.
    """
    expected = np.zeros((G, C))
    for g, d, origins, w in rows:
        expected[g, origins] += use[g, d] * w
    needed = expected * (1.0 + _SLACK) / MAX_BASELINE_UTILISATION
    return expected, needed


def generator_seed(gen, run_seed: int) -> int:
    """The structure's seed: ``gen.seed`` when set, else derived from the run's seed through a
    stream of its own (so the structure's draws are independent of the firms' draws).
    """
    if gen.seed is not None:
        return int(gen.seed)
    return int(np.random.SeedSequence([int(run_seed), _STRUCTURE_STREAM]).generate_state(1)[0])


def check_generator(gen) -> None:
    """Check a generated world's parameters (a :class:`sim.world.config.GeneratedScenarioConfig` node).

    Raises:
        sim.world.scenario.ScenarioError: naming ``scenario.<parameter>``, the value and what is allowed.
    """
    from sim.world.calendar import parse_month
    from sim.world.scenario import ScenarioError

    def check(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            raise ScenarioError(f"scenario.{key}: {gen[key]!r} is invalid; allowed: {allowed}")

    check(
        2 <= gen.countries <= MAX_COUNTRIES,
        "countries",
        f"an integer from 2 (a coercer and a partner) to {MAX_COUNTRIES}",
    )
    check(gen.goods >= 1, "goods", "an integer >= 1")
    check(
        gen.firms >= gen.countries,
        "firms",
        f"an integer >= scenario.countries ({gen.countries}): one firm per country at least",
    )
    if gen.producers is not None:
        check(
            gen.producers >= gen.goods,
            "producers",
            f"null or an integer >= scenario.goods ({gen.goods}): a producer per good at least",
        )
    for key in ("start", "end"):
        if gen[key] is not None:
            try:
                parse_month(gen[key], field=f"scenario.{key}")
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None
    months = _months(gen)
    if gen.end is not None:
        check(months >= 1, "end", f"a month not before scenario.start ({gen.start})")
    check(gen.months >= 1, "months", "an integer >= 1")
    y0, m0 = (int(x) for x in str(gen.start).split("-")[:2])
    last = (9999 - y0) * 12 + (12 - m0) + 1  # the run ends by 9999-12, the last month a date can name
    if gen.end is None:
        check(months <= last, "months", f"a run ending by 9999-12: at most {last} months from {gen.start}")
    for key in _FLOAT_PARAMETERS:
        check(math.isfinite(gen[key]), key, "a finite number")
        # the rule for every number of a configuration (the parameters are kept in generated_from)
        check(abs(gen[key]) <= MAX_MAGNITUDE, key, f"a number of magnitude at most {MAX_MAGNITUDE:.0e}")
    if gen.seed is not None:
        check(gen.seed >= 0, "seed", "null (derived from the run's seed) or an integer >= 0")
    check(gen.production_concentration >= 0, "production_concentration", ">= 0 (0: any country as likely)")
    check(gen.producer_share_concentration > 0, "producer_share_concentration", "> 0")
    check(gen.sourcing_dispersion >= 0, "sourcing_dispersion", ">= 0")
    check(gen.max_sourcing_origins >= 1, "max_sourcing_origins", "an integer >= 1")
    check(gen.max_goods_per_country >= 1, "max_goods_per_country", "an integer >= 1")
    check(gen.capacity_headroom >= 1, "capacity_headroom", ">= 1 (world capacity / world use)")
    check(gen.measure in GENERATED_MEASURES, "measure", ", ".join(GENERATED_MEASURES))
    if gen.measure == "export_ban":
        check(0 < gen.measure_share <= 1, "measure_share", "in (0, 1] for an export ban (its intensity)")
    else:
        check(0 <= gen.measure_share <= 1, "measure_share", "in [0, 1] (the quota as a share of baseline exports)")
    if gen.measure_start_month is not None:
        check(
            0 <= gen.measure_start_month < months,
            "measure_start_month",
            f"null or a month index from 0 to {months - 1}",
        )
    check(gen.measure_months >= 1, "measure_months", "an integer >= 1")
    check(gen.n_targets >= 0, "n_targets", "an integer >= 0")


def _months(gen) -> int:
    if gen.end is None:
        return int(gen.months)
    y0, m0 = (int(x) for x in str(gen.start).split("-")[:2])
    y1, m1 = (int(x) for x in str(gen.end).split("-")[:2])
    return (y1 - y0) * 12 + (m1 - m0) + 1


def expand_config(cfg):
    """Return ``cfg`` with a generated world's parameters replaced by the scenario they generate.

    A written scenario is returned unchanged. The parameters (the structure's seed actually used
    included) are kept in ``scenario.generated_from``, so the run's config.yaml records them.

    Raises:
        sim.world.scenario.ScenarioError: a bad generator parameter (see :func:`check_generator`).
    """
    if not is_generated(cfg.scenario):
        return cfg
    gen = cfg.scenario
    if OmegaConf.get_type(gen) is not GeneratedScenarioConfig:
        gen = OmegaConf.merge(OmegaConf.structured(GeneratedScenarioConfig), gen)
    check_generator(gen)
    seed = generator_seed(gen, int(cfg.seed))
    months = _months(gen)
    scenario = generated_scenario(
        int(gen.countries),
        int(gen.goods),
        int(gen.firms),
        n_producers=None if gen.producers is None else int(gen.producers),
        months=months,
        seed=seed,
        max_sourcing_origins=int(gen.max_sourcing_origins),
        start=str(gen.start),
        production_concentration=float(gen.production_concentration),
        producer_share_concentration=float(gen.producer_share_concentration),
        sourcing_dispersion=float(gen.sourcing_dispersion),
        max_goods_per_country=int(gen.max_goods_per_country),
        capacity_headroom=float(gen.capacity_headroom),
        measure=str(gen.measure),
        measure_share=float(gen.measure_share),
        measure_start_month=None if gen.measure_start_month is None else int(gen.measure_start_month),
        measure_months=int(gen.measure_months),
        n_targets=int(gen.n_targets),
        name=str(gen.name),
        description=str(gen.description),
    )
    params = OmegaConf.to_container(gen)
    params.update({"seed": seed, "months": months})
    scenario.generated_from = params
    out = cfg.copy()
    out.scenario = scenario
    return out
