"""Scenario validation and the world a scenario describes, as arrays.

:func:`validate_config` checks a composed configuration against the rules of :mod:`sim.world.schema` (the
pydantic models of scenarios, model behaviour, policy levers and outputs) and raises one
:class:`ScenarioError` naming the field, the bad value and what is allowed, before any run
starts. :func:`build_world` turns a valid scenario into a :class:`World`: countries, goods,
producers and projects, user firms generated from sector totals with seeded heterogeneity, their
purchase rows with calibrated Armington weights, and the compiled measure schedule.

Baseline calibration (the model starts in equilibrium at reference prices):

* a firm's sourcing shares are its sector's baseline shares perturbed by a Dirichlet draw;
* Armington weights reproduce those quantity shares at the baseline delivered prices
  (``w_o ∝ s_o p_od^σ``);
* each origin's producers are calibrated so that at the reference price they supply exactly the
  baseline demand on that origin (their full-capacity price follows from the implied utilisation).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.coercion.measures import DOMESTIC_TYPES, MEASURE_TYPES, ExportQuota, MeasureArrays, link_quota_years
from sim.model import kernels
from sim.world.calendar import MonthlyCalendar, parse_date, parse_month, ramp_share  # noqa: F401 (re-exported)
from sim.world.config import REQUIRED_HINTS, check_scenario_schema, is_generated
from sim.world.plain import PlainConfig
from sim.world.schema import (
    MAX_BASELINE_UTILISATION,
    MAX_DEMAND_ELASTICITY,
    MAX_ELASTICITY,
    MAX_MAGNITUDE,
    RECORDABLE_VARIABLES,
    ScenarioError,
    _fail,
    check_finite,
    validate_run,
    validate_run_settings,
)

__all__ = ["ScenarioError", "prepare_config", "validate_config", "World", "build_world", "RECORDABLE_VARIABLES"]

#: Utilisation at the reference price that new projects are built for.
PROJECT_UTILISATION_AT_REFERENCE = 0.85


# Re-exported from sim.world.schema, where the rules live (existing imports of these names keep working).
__all__ += ["MAX_BASELINE_UTILISATION", "MAX_MAGNITUDE", "MAX_DEMAND_ELASTICITY", "MAX_ELASTICITY"]


#: The last PlainConfig that passed prepare_config (read-only, so checking it again would change nothing).
_last_prepared: PlainConfig | None = None


def prepare_config(cfg):
    """The configuration a run uses: ``cfg.scenario`` checked against its kind's schema, a generated
    world expanded into its scenario (:func:`sim.world.generate.expand_config`), and everything validated.

    Raises:
        hydra.errors.ConfigCompositionException: an unknown key or a wrong type in the scenario.
        ScenarioError: a bad value (generator parameter, scenario field or model setting).
    """
    global _last_prepared
    if isinstance(cfg, PlainConfig):
        # Already composed, typed and resolved (sim.experiments.runner.CaseRunner): its values are
        # checked by the same rules, without the node checks that plain data cannot fail. A PlainConfig
        # is read-only (its lists are plain lists, but shared between the runs derived from one base
        # and never written), so the one just checked (CaseRunner.config, then the model it builds)
        # is not checked twice.
        if cfg is not _last_prepared:
            validate_config(cfg)
            _last_prepared = cfg
        return cfg
    cfg = check_scenario_schema(cfg)
    if is_generated(cfg.scenario):
        from sim.world.generate import expand_config

        cfg = expand_config(cfg)
    validate_config(cfg)
    return cfg


def _missing_paths(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _missing_paths(value, f"{path}.{key}" if path else str(key), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _missing_paths(value, f"{path}[{i}]", out)
    elif isinstance(node, str) and node == "???":
        out.append(path)


def _check_complete(resolved: Any) -> None:
    """No required field is left out: a scenario without ``start``, ``coercer`` or a producer's
    ``good`` (a field with no default, ``???`` after composition) is named here, before anything
    reads it. ``resolved`` is the configuration as plain data (:func:`_resolved`), where such a field
    holds ``???``.
    """
    missing: list[str] = []
    _missing_paths(resolved, "", missing)
    if missing:
        key = sorted(missing)[0]
        last = re.sub(r"\[\d+\]$", "", key.rsplit(".", 1)[-1])
        raise ScenarioError(f"{key}: missing; allowed: {REQUIRED_HINTS.get(last, 'a value (a required field)')}")


def _resolved(cfg: DictConfig) -> Any:
    """The configuration as plain data with interpolations resolved; one that does not resolve
    (``${parameters.nope}``) is named as a :class:`ScenarioError`.
    """
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        what = " ".join(str(exc).splitlines()[0].split())
        raise ScenarioError(
            f"{key}: does not resolve ({what}); allowed: a value, or an interpolation that resolves"
        ) from None


def validate_config(cfg) -> None:
    """Check a composed :class:`sim.world.config.Config` (or DictConfig); raise :class:`ScenarioError`.

    The configuration, with interpolations resolved, is validated by the pydantic models of
    :mod:`sim.world.schema` (every field's range, and what ties fields together); the named assumptions
    are checked by :mod:`sim.world.assumptions`. A generated world is checked by its parameters and then
    as the scenario they generate.
    """
    if isinstance(cfg, PlainConfig):
        # Plain data (sim.world.plain), made from a configuration that passed the node checks below: it
        # is resolved and complete; its values are checked again since a run may have changed them
        # (the parts it shares with an earlier run that passed are not walked again: _once).
        node = resolved = cfg
    else:
        node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
        resolved = _resolved(node)
        _check_complete(resolved)
    if is_generated(node.scenario):
        from sim.world.generate import expand_config

        check_finite(resolved)
        validate_run_settings(resolved)
        validate_config(expand_config(node))
        return
    from sim.world.assumptions import check_assumptions

    if isinstance(cfg, PlainConfig):
        # Every number finite (schema.check_finite), then the whole run by the schema: the parts of
        # the configuration a run shares with an earlier one that passed are not walked again.
        _check_finite_shared(cfg, "", 0)
        validate_run(resolved, finite_checked=True, read_only=True)
    else:
        validate_run(resolved)
    # The strategic layer's block (scenario.game), checked against the scenario it plays in.
    from sim.coercion.strategy import validate_game

    validate_game(cfg)

    # Named assumptions (sim.world.assumptions): each a path to one number of the scenario, with its
    # range; they read the scenario alone.
    if isinstance(cfg, PlainConfig):
        _once("assumptions", node.scenario, lambda: check_assumptions(node, _fail))
    else:
        check_assumptions(node, _fail)


#: Sections of :class:`PlainConfig` runs that passed a check, by kind of check and identity, with the
#: section itself (so that its id is not reused). Plain configurations are never written, and the
#: runs :class:`sim.experiments.runner.CaseRunner` derives from one base share every section they
#: did not change (sim.world.plain.with_values), so a calibration that changes model settings only
#: walks the scenario's numbers and assumptions once, not once per run.
_passed: dict[tuple[str, int], Any] = {}


def _once(kind: str, section: Any, check) -> None:
    """Run ``check()`` unless ``section`` (a dict or list) already passed this kind of check."""
    if not isinstance(section, dict | list):
        check()
        return
    key = (kind, id(section))
    if _passed.get(key) is section:
        return
    check()
    if len(_passed) >= 4096:  # a few bases at a time; the sections of earlier ones are dropped
        _passed.clear()
    _passed[key] = section


def _check_finite_shared(node: Any, path: str, depth: int) -> None:
    """:func:`sim.world.schema.check_finite` over a :class:`PlainConfig`, in the same order (so the
    same first error), skipping the containers of the top three levels that passed it before.
    """
    if depth >= 3 or not isinstance(node, dict | list):
        check_finite(node, path)
        return

    def walk() -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                _check_finite_shared(value, f"{path}.{key}" if path else str(key), depth + 1)
        else:
            for i, value in enumerate(node):
                _check_finite_shared(value, f"{path}[{i}]", depth + 1)

    _once("finite", node, walk)


@dataclass
class World:
    """A scenario as arrays (see module docstring). Quantities are per month from here on."""

    calendar: MonthlyCalendar
    countries: list[str]
    goods: list[str]
    good_units: list[str]
    price_units: list[str]
    coercer: int
    targets: np.ndarray
    # goods
    reference_price: np.ndarray
    demand_elasticity: np.ndarray
    armington_elasticity: np.ndarray
    price_cap: np.ndarray
    price_floor: np.ndarray
    transport_cost: np.ndarray  # [G, C, C]
    # producers (existing first, then projects)
    producer_name: list[str]
    producer_country: np.ndarray
    producer_good: np.ndarray
    nameplate: np.ndarray  # per month
    capacity0: np.ndarray  # per month at the start
    unit_cost: np.ndarray
    full_capacity_price: np.ndarray
    supply_elasticity: np.ndarray
    is_project: np.ndarray
    build_lag: np.ndarray
    ramp_up: np.ndarray
    hurdle: np.ndarray
    capex: np.ndarray
    committed_start: np.ndarray  # step, or a large number if none
    earliest_start: np.ndarray
    offtake: list[dict[int, float]]
    # user firms
    firm_country: np.ndarray
    firm_sector: np.ndarray
    firm_value_added: np.ndarray  # US$ per month at baseline
    sector_names: list[tuple[str, str]]
    # purchase rows (one firm, one good), sorted by good
    row_firm: np.ndarray
    row_good: np.ndarray
    row_requirement: np.ndarray  # quantity per US$ of value added
    row_inventory_months: np.ndarray
    slot_origin: np.ndarray  # [R, K]
    base_weights: np.ndarray  # [R, K] calibrated Armington weights
    base_shares: np.ndarray  # [R, K] firm quantity shares at baseline
    baseline_delivered_price: np.ndarray  # [R, K]
    # schedule
    measures: list
    quota_chains: list
    requirement_changes: list[tuple[np.ndarray, int, int, float]]
    # baseline
    baseline_measures: MeasureArrays
    baseline_exports: np.ndarray  # [G, C] per month
    sources: dict[str, str] = field(default_factory=dict)
    history: str | None = None
    # value chains (sim.model.chains): firms from n_user_firms on are producers' input buyers, whose
    # firm_value_added is their producer's baseline output (quantity per month) and whose rows'
    # row_requirement is the input coefficient (input per unit of output)
    n_user_firms: int = 0
    firm_producer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # -1: a user firm
    byproduct_host: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [G] -1: none
    byproduct_recovery: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [G]
    baseline_output: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [G, C] sold per month
    # [G, C] share of capacity the market saw at baseline (below 1 where inputs or host output bound)
    baseline_usable_share: np.ndarray = field(default_factory=lambda: np.ones((0, 0)))
    # [P] recycled producers (a by-product's recycled supply, not tied to its host)
    producer_recycled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _measure_step_zero(measures: list, G: int, C: int) -> MeasureArrays:
    arrays = MeasureArrays.empty(G, C)
    for m in measures:
        if not isinstance(m, ExportQuota):
            m.apply(0, arrays)
    return arrays


def match_margins(shares: np.ndarray, use: np.ndarray, target: np.ndarray, tol: float = 1e-13) -> np.ndarray:
    """Firms' sourcing shares adjusted so that their use-weighted mean is exactly ``target``.

    ``shares`` ``[n_firms, K]`` are draws around the sector's calibrated shares ``target`` ``[K]`` (rows
    summing to one), ``use`` the firms' baseline use. Iterative proportional fitting (Sinkhorn) of the
    matrix ``use x shares`` to row sums ``use`` and column sums ``total use x target`` keeps every firm's
    shares non-negative and summing to one, keeps zero where the draw or the target is zero, and makes the
    sector's purchases from each origin equal the calibrated total: heterogeneity redistributes the
    total, it never changes it. Draws are first mixed with ``target`` by a millionth so that every
    origin with a positive target has positive entries (a draw may underflow to zero).
    """
    # Compiled (sim.model.kernels.match_shares), each step as the NumPy expressions that were here computed it:
    # the target normalised over its positive entries; a single positive origin takes every firm's whole
    # share; the use x mixed shares fitted (kernels.fit_margins, tens of sweeps); rows renormalised.
    return kernels.match_shares(
        np.ascontiguousarray(shares, dtype=float),
        np.ascontiguousarray(use, dtype=float),
        np.ascontiguousarray(target, dtype=float),
        float(tol),
        10_000,
    )


def _licence_kwargs(mc, cal, start, end, ci: dict[str, int], user_sectors) -> dict[str, Any]:
    """An export licence's arrays: the days before approvals start, shares and exemptions by
    destination and by user sector (sectors in ``user_sectors`` order, matched by name).
    """
    C = len(ci)
    lag_days = int(round(float(mc.review_lag_months) * 365.25 / 12))
    first_approval = start + _dt.timedelta(days=lag_days)
    before_end = first_approval - _dt.timedelta(days=1)
    if end is not None and end < before_end:
        before_end = end
    before = cal.coverage(start, before_end) if lag_days > 0 else np.zeros(cal.n_steps)
    dest = np.full(C, np.nan)
    for code, share in mc.approval_by_destination.items():
        dest[ci[code]] = float(share)
    names = [u.sector for u in user_sectors]
    sector = np.array([float(mc.approval_by_sector.get(n, np.nan)) for n in names], dtype=float)
    exempt_dest = np.zeros(C, dtype=bool)
    exempt_dest[[ci[c] for c in mc.exempt_destinations]] = True
    exempt_sector = np.array([n in set(mc.exempt_sectors) for n in names], dtype=bool)
    return dict(
        before_approval=before,
        approval_share=float(mc.approval_share),
        destination_share=dest,
        sector_share=sector,
        exempt_destination=exempt_dest,
        exempt_sector=exempt_sector,
    )


def build_world(cfg, rng: np.random.Generator) -> World:
    """Build the arrays of a validated scenario; firm heterogeneity is drawn from ``rng``.

    Raises:
        ScenarioError: when the baseline cannot be calibrated (demand on an origin above its
            capacity).
    """
    s, mcfg = cfg.scenario, cfg.model
    cal = MonthlyCalendar(parse_month(s.start, field="scenario.start"), parse_month(s.end, field="scenario.end"))
    countries = [c.code for c in s.countries]
    goods = [g.id for g in s.goods]
    ci = {c: i for i, c in enumerate(countries)}
    gi = {g: i for i, g in enumerate(goods)}
    C, G = len(countries), len(goods)

    ref = np.array([g.reference_price for g in s.goods], dtype=float)
    sigma = np.array([g.armington_elasticity for g in s.goods], dtype=float)
    transport = np.zeros((G, C, C))
    for k, g in enumerate(s.goods):
        transport[k] = g.transport_cost_share * g.reference_price
        np.fill_diagonal(transport[k], 0.0)

    # ---- measures ----
    measures = []
    # The strategic layer decides the measures its game block replaces (scenario.game.replaces_measures).
    game = s.get("game") if s.strategy.type == "game" else None
    replaced = set(game.get("replaces_measures") or []) if game is not None else set()
    # The producers of each (country, good), in index order, with their names and classes: read once for
    # the domestic measures' matching.
    producers_of: dict[tuple[str, str], list[tuple[int, Any, Any]]] = {}
    for k, pr in enumerate(s.producers):
        producers_of.setdefault((pr.country, pr.good), []).append((k, pr.get("name"), pr.get("producer_class")))
    for mc in s.measures:
        if mc.label and mc.label in replaced:
            continue
        cls = MEASURE_TYPES[mc.type]
        start = parse_date(mc.start, field="start")
        end = parse_date(mc.end, field="end", end_of_period=True) if mc.end is not None else None
        targets = [ci[t] for t in mc.targets] if mc.targets else [c for c in range(C) if c != ci[mc.imposer]]
        kwargs: dict[str, Any] = dict(
            imposer=ci[mc.imposer],
            goods=np.array([gi[g] for g in mc.goods], dtype=np.int64),
            targets=np.array(targets, dtype=np.int64),
            coverage=cal.coverage(start, end),
            start=start,
            label=mc.label or mc.type,
        )
        if mc.type in (
            "export_ban",
            "import_ban",
            "informal_restriction",
            "informal_import_restriction",
            "crackdown",
            "production_halt",
        ):
            kwargs["intensity"] = float(mc.intensity)
        elif mc.type in ("export_duty", "import_tariff"):
            kwargs["rate"] = float(mc.rate)
        elif mc.type == "export_licence":
            kwargs.update(_licence_kwargs(mc, cal, start, end, ci, s.user_sectors))
        elif mc.type == "export_quota":
            kwargs["quantity"] = float(mc.quantity)
            kwargs["allocation"] = np.array([mc.allocation.get(g, np.nan) for g in mc.goods], dtype=float)
        if mc.type in DOMESTIC_TYPES:
            kwargs["targets"] = np.zeros(0, dtype=np.int64)
            names, producer_class = mc.producers, mc.producer_class
            # The imposer's producers of the listed goods (each good once), narrowed, in index order.
            kwargs["producers"] = np.array(
                sorted(
                    k
                    for good in dict.fromkeys(mc.goods)
                    for k, name, klass in producers_of.get((mc.imposer, good), ())
                    if (not names or name in names) and (not producer_class or klass == producer_class)
                ),
                dtype=np.int64,
            )
            kwargs["cost"] = np.zeros(cal.n_steps)
            if mc.type in ("crackdown", "production_halt"):
                kwargs["ramp_months"] = int(mc.ramp_months)
            elif mc.type == "production_quota":
                kwargs["quantity"] = float(mc.quantity)
            elif mc.type == "production_tax":
                kwargs["rate"] = float(mc.rate)
                kwargs["per_unit"] = float(mc.per_unit)
            elif mc.type == "state_purchase":
                kwargs["quantity"] = float(mc.quantity)
                kwargs["budget"] = float(mc.budget)
        measures.append(cls(**kwargs))
    baseline_measures = _measure_step_zero(measures, G, C)

    # ---- user firms (sizes drawn with seeded heterogeneity; totals preserved) ----
    sector_names = [(u.country, u.sector) for u in s.user_sectors]
    firm_country, firm_sector, firm_va = [], [], []
    firm_use: list[dict[int, float]] = []
    firm_cover: list[float] = []
    for k, u in enumerate(s.user_sectors):
        sizes = rng.lognormal(0.0, u.size_dispersion, size=u.n_firms) if u.size_dispersion > 0 else np.ones(u.n_firms)
        sizes = sizes / sizes.sum()
        if u.inventory_dispersion > 0:
            # Mean-preserving lognormal spread of inventory cover across the sector's firms.
            covers = u.inventory_months * rng.lognormal(
                -0.5 * u.inventory_dispersion**2, u.inventory_dispersion, size=u.n_firms
            )
            # The draws redistribute the sector's calibrated stock, never change it: rescale so that
            # the use-weighted mean cover is exactly ``inventory_months`` for every seed.
            covers = covers * (u.inventory_months / float(np.dot(sizes, covers)))
        else:
            covers = np.full(u.n_firms, float(u.inventory_months))
        # The sector's numbers read once; each firm's are the same expressions, evaluated as before.
        country, va_month = ci[u.country], u.value_added / 12.0
        use_month = [(gi[g], q / 12.0) for g, q in u.use.items() if q > 0]
        for size, cover in zip(sizes, covers, strict=True):
            firm_country.append(country)
            firm_sector.append(k)
            firm_va.append(va_month * size)
            firm_use.append({g: q * size for g, q in use_month})
            firm_cover.append(float(cover))
    F = len(firm_country)
    firm_country_a = np.array(firm_country, dtype=np.int64)

    # ---- candidate origins per good: every country with a producer or project of the good ----
    candidates: list[list[int]] = [[] for _ in range(G)]
    for pr in s.producers:
        if pr.capacity > 0 and ci[pr.country] not in candidates[gi[pr.good]]:
            candidates[gi[pr.good]].append(ci[pr.country])
    for pj in s.projects:
        if ci[pj.country] not in candidates[gi[pj.good]]:
            candidates[gi[pj.good]].append(ci[pj.country])
    candidates = [sorted(c) for c in candidates]
    capacity_of = np.zeros((G, C))
    for pr in s.producers:
        capacity_of[gi[pr.good], ci[pr.country]] += pr.capacity
    for pj in s.projects:
        capacity_of[gi[pj.good], ci[pj.country]] += pj.capacity
    k_cap = int(s.max_sourcing_origins)
    K = max(1, min(k_cap, max(len(c) for c in candidates)))
    shares_of = {(sc.destination, sc.good): dict(sc.shares) for sc in s.sourcing}

    # ---- purchase rows, by good: user firms' first ----
    conc = float(mcfg.sourcing_concentration)

    def origins(g: int, d: int) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Origins, sector shares (and which are positive) and delivered prices of rows of good ``g``
        bought in country ``d`` (:func:`row_origins`, derived once per pair).
        """
        if (g, d) not in origins_of:
            origins_of[g, d] = row_origins(g, d)
        return origins_of[g, d]

    def row_slots(g: int, d: int, weights: bool = True) -> tuple[list[int], np.ndarray, np.ndarray | None, np.ndarray]:
        """Origins, baseline quantity shares, Armington weights (``None`` unless ``weights``) and
        delivered prices of a producer's input buyer of good ``g`` in country ``d``: it takes its
        country's shares as they are (user firms draw theirs around their sector's, below).
        """
        cands, s_vec, pos, prices = origins(g, d)
        n_pos, _, s_pos = sourcing_of[g, d]
        firm_s = np.zeros(s_vec.size)
        firm_s[pos] = s_pos if n_pos > 1 else 1.0
        if not weights:
            return cands, firm_s, None, prices
        # w ∝ s p^σ, with prices relative to the highest so the power cannot overflow (same weights).
        w = firm_s * (prices / prices.max()) ** sigma[g]
        return cands, firm_s, w / w.sum(), prices

    # Every row of a good bought in a country has the same origins, sector shares and delivered prices.
    origins_of: dict[tuple[int, int], tuple[list[int], np.ndarray, np.ndarray, np.ndarray]] = {}
    sourcing_of: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}

    def row_origins(g: int, d: int) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Origins, their baseline quantity shares (and which are positive) and delivered prices for
        rows of good ``g`` bought in country ``d`` (see origins).
        """
        sector_shares = shares_of.get((countries[d], goods[g]), {countries[d]: 1.0})
        cands = candidates[g]
        if len(cands) > K:
            # Baseline origins first, then the largest other candidates (by capacity), in index order.
            base = [o for o in cands if sector_shares.get(countries[o], 0.0) > 0]
            others = sorted((o for o in cands if o not in base), key=lambda o: -capacity_of[g, o])
            cands = sorted((base + others)[:K])
        s_vec = np.array([sector_shares.get(countries[o], 0.0) for o in cands])
        prices = np.empty(len(cands))
        for k, o in enumerate(cands):
            if o == d:
                prices[k] = ref[g]
            else:
                fob = ref[g] * (1 + baseline_measures.export_duty[g, o])
                prices[k] = (fob + transport[g, o, d]) * (1 + baseline_measures.import_tariff[g, o, d])
        pos = s_vec > 0
        for a in (s_vec, pos, prices):
            a.flags.writeable = False  # shared by every row of (g, d)
        # The Dirichlet's concentration around the shares (the user firms' draws) and the shares
        # normalised (row_slots).
        sourcing_of[g, d] = (int(pos.sum()), conc * s_vec[pos] + 1e-9, s_vec[pos] / s_vec[pos].sum())
        return cands, s_vec, pos, prices

    rows = []
    for f in range(F):
        for g, q in firm_use[f].items():
            rows.append((g, f, q))
    rows.sort(key=lambda t: (t[0], t[1]))
    R = len(rows)
    row_good = np.array([r[0] for r in rows], dtype=np.int64)
    row_firm = np.array([r[1] for r in rows], dtype=np.int64)
    row_req = np.array([r[2] for r in rows], dtype=float) / np.asarray(firm_va)[row_firm]
    row_cover = np.asarray(firm_cover)[row_firm]
    slot_origin = np.full((R, K), -1, dtype=np.int64)
    base_w = np.zeros((R, K))
    base_s = np.zeros((R, K))
    base_price = np.zeros((R, K))
    # Consecutive rows of the same good and country share their origins and prices; their Dirichlet
    # draws are made together, one row after another, as row by row (the same random numbers).
    start = 0
    while start < R:
        g, d = rows[start][0], firm_country[rows[start][1]]
        end = start + 1
        while end < R and rows[end][0] == g and firm_country[rows[end][1]] == d:
            end += 1
        cands, _, pos, prices = origins(g, d)
        n_pos, alpha, _ = sourcing_of[g, d]
        n = len(cands)
        slot_origin[start:end, :n], base_price[start:end, :n] = cands, prices
        if n_pos > 1:
            base_s[start:end, np.flatnonzero(pos)] = rng.dirichlet(alpha, size=end - start)
        else:
            base_s[start:end, np.flatnonzero(pos)] = 1.0
        start = end
    # The firms' draws redistribute each sector's calibrated sourcing, never change it: the use-weighted
    # shares of a (sector, good) are exactly the scenario's shares for every seed (sim.world.scenario.match_margins).
    row_sector = np.asarray(firm_sector, dtype=np.int64)[row_firm] if R else np.zeros(0, dtype=np.int64)
    row_use = np.array([r[2] for r in rows], dtype=float)
    for key in np.unique(row_sector * G + row_good):
        idx = np.flatnonzero(row_sector * G + row_good == key)
        g, d = int(row_good[idx[0]]), firm_country[row_firm[idx[0]]]
        sector_shares = shares_of.get((countries[d], goods[g]), {countries[d]: 1.0})
        target = np.array([sector_shares.get(countries[o], 0.0) if o >= 0 else 0.0 for o in slot_origin[idx[0]]])
        base_s[idx] = match_margins(base_s[idx], row_use[idx], target)
    if R:
        # w ∝ s p^σ, with prices relative to each row's highest so the power cannot overflow (same
        # weights); a row's open slots come first, empty ones (origin -1) weigh nothing. All rows at
        # once, element by element as a loop over rows would compute them, and each row's weights
        # summed over its open slots only (rows grouped by their number of open slots), as such a
        # loop would sum them.
        open_slot = slot_origin >= 0
        row_max = np.where(open_slot, base_price, -np.inf).max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(open_slot, base_price / row_max[:, None], 0.0)
        w = np.where(open_slot, base_s * relative ** sigma[row_good][:, None], 0.0)
        n_open = open_slot.sum(axis=1)
        for n in np.unique(n_open):
            rows_n = np.flatnonzero(n_open == n)
            base_w[rows_n, :n] = w[rows_n, :n] / w[rows_n, :n].sum(axis=1, keepdims=True)

    # ---- baseline demand on each origin ----
    demand_on = np.zeros((G, C))
    exports0 = np.zeros((G, C))
    row_quantity = np.array([r[2] for r in rows], dtype=float)

    def add_demand(g_rows, d_rows, q_rows, s_rows, o_rows) -> None:
        on = (o_rows >= 0) & (s_rows > 0)
        q = q_rows[:, None] * s_rows
        np.add.at(demand_on, (np.broadcast_to(g_rows[:, None], on.shape)[on], o_rows[on]), q[on])
        foreign = on & (o_rows != d_rows[:, None])
        np.add.at(exports0, (np.broadcast_to(g_rows[:, None], on.shape)[foreign], o_rows[foreign]), q[foreign])

    add_demand(row_good, firm_country_a[row_firm], row_quantity, base_s, slot_origin)
    cap_by = np.zeros((G, C))
    recycled_by = np.zeros((G, C))  # recycled capacity: not tied to a by-product's host
    for pr in s.producers:
        cap_by[gi[pr.good], ci[pr.country]] += pr.capacity / 12.0
        if pr.recycled:
            recycled_by[gi[pr.good], ci[pr.country]] += pr.capacity / 12.0

    # ---- value chains: every producer of a good with inputs buys them (one input buyer each) ----
    # Downstream goods first, so the demand on a good is complete (user firms and the producers of
    # every good it goes into) when its own producers' output, and so their input purchases, are set.
    from sim.model.chains import chain_order

    inputs_of = {g.id: dict(g.inputs) for g in s.goods}
    cover_of = {g.id: float(g.input_inventory_months) for g in s.goods}
    # (good, country, capacity at the start, can ever produce): a listed producer without capacity
    # never produces (and needs no sourcing entry), a project may.
    producer_specs = [(pr.good, pr.country, pr.capacity, pr.capacity > 0) for pr in s.producers] + [
        (pj.good, pj.country, 0.0, True) for pj in s.projects
    ]
    n_user_firms = F
    firm_producer = [-1] * F
    chain_rows: list[tuple[int, int, float, float]] = []  # (good, firm, quantity, coefficient)
    chain_sector: dict[tuple[int, int], int] = {}
    for good_id in chain_order(goods, inputs_of):
        if not inputs_of[good_id]:
            continue
        g = gi[good_id]
        for p_index, (pgood, pcountry, pcap, active) in enumerate(producer_specs):
            if pgood != good_id or not active:
                continue
            c = ci[pcountry]
            output = demand_on[g, c] * (pcap / 12.0) / cap_by[g, c] if cap_by[g, c] > 0 else 0.0
            if (g, c) not in chain_sector:
                chain_sector[(g, c)] = len(sector_names)
                sector_names.append((pcountry, f"{good_id} producers"))
            f = len(firm_country)
            firm_country.append(c)
            firm_sector.append(chain_sector[(g, c)])
            firm_va.append(output)  # the input buyer's scale: its producer's baseline output per month
            firm_cover.append(cover_of[good_id])
            firm_producer.append(p_index)
            new = []
            for u_id, a in inputs_of[good_id].items():
                chain_rows.append((gi[u_id], f, a * output, a))
                new.append(chain_rows[-1])
            for u, _, q, _ in new:
                cands, firm_s, _, _ = row_slots(u, c, weights=False)
                for k, o in enumerate(cands):
                    demand_on[u, o] += q * firm_s[k]
                    if o != c:
                        exports0[u, o] += q * firm_s[k]
    if chain_rows:
        Rc = len(chain_rows)
        c_good = np.array([r[0] for r in chain_rows], dtype=np.int64)
        c_firm = np.array([r[1] for r in chain_rows], dtype=np.int64)
        c_slot = np.full((Rc, K), -1, dtype=np.int64)
        c_w, c_s, c_price = np.zeros((Rc, K)), np.zeros((Rc, K)), np.zeros((Rc, K))
        for r, (u, f, _, _) in enumerate(chain_rows):
            cands, firm_s, weights, prices = row_slots(u, firm_country[f])
            n = len(cands)
            c_slot[r, :n], c_s[r, :n], c_w[r, :n], c_price[r, :n] = cands, firm_s, weights, prices
        # One list of rows, sorted by good then firm (user firms' rows keep their order).
        order = np.lexsort((np.r_[row_firm, c_firm], np.r_[row_good, c_good]))
        row_good = np.r_[row_good, c_good][order]
        row_firm = np.r_[row_firm, c_firm][order]
        row_req = np.r_[row_req, [r[3] for r in chain_rows]][order]
        row_cover = np.asarray(firm_cover)[row_firm]
        slot_origin = np.r_[slot_origin, c_slot][order]
        base_w = np.r_[base_w, c_w][order]
        base_s = np.r_[base_s, c_s][order]
        base_price = np.r_[base_price, c_price][order]
        firm_country_a = np.array(firm_country, dtype=np.int64)

    # ---- capacity the market sees at baseline: limited by input stocks and by host output ----
    usable_by = cap_by.copy()
    for g, gc in enumerate(s.goods):
        if gc.inputs:
            # Producers' baseline input stock covers input_inventory_months of their output.
            usable_by[g] = np.minimum(usable_by[g], gc.input_inventory_months * demand_on[g])
    byproduct_host = np.full(G, -1, dtype=np.int64)
    byproduct_recovery = np.zeros(G)
    for g, gc in enumerate(s.goods):
        if gc.byproduct_of is not None:
            byproduct_host[g] = gi[gc.byproduct_of.good]
            byproduct_recovery[g] = float(gc.byproduct_of.recovery)
            usable_by[g] = np.minimum(
                usable_by[g], recycled_by[g] + byproduct_recovery[g] * demand_on[byproduct_host[g]]
            )
    for g in range(G):
        for c in range(C):
            if demand_on[g, c] > MAX_BASELINE_UTILISATION * usable_by[g, c] + 1e-12:
                if cap_by[g, c] <= 0:
                    continue  # validated: no baseline share on an origin without producers
                host_limit = (
                    recycled_by[g, c] + byproduct_recovery[g] * demand_on[byproduct_host[g], c]
                    if byproduct_host[g] >= 0
                    else np.inf
                )
                _baseline_overload(g, s.goods[g], countries[c], demand_on[g, c], cap_by[g, c], host_limit)
    names, pc, pg, nameplate, cap0, cost, full, eps = [], [], [], [], [], [], [], []
    is_proj, lag, ramp, hurdle, capex, committed, earliest, offtake = [], [], [], [], [], [], [], []
    far = 10**9
    for pr in s.producers:
        g, c = gi[pr.good], ci[pr.country]
        e = pr.supply_elasticity if pr.supply_elasticity is not None else s.goods[g].supply_elasticity
        # Utilisation of the capacity the market sees at baseline (all of it without a value chain).
        u0 = demand_on[g, c] / usable_by[g, c] if usable_by[g, c] > 0 else 0.0
        u0 = max(u0, 1e-6)
        names.append(pr.name or f"{pr.country} {pr.good}")
        pc.append(c)
        pg.append(g)
        nameplate.append(pr.capacity / 12.0)
        cap0.append(pr.capacity / 12.0)
        cost.append(pr.unit_cost)
        full.append(pr.unit_cost + (ref[g] - pr.unit_cost) / u0 ** (1.0 / e))
        eps.append(e)
        is_proj.append(False)
        lag.append(0)
        ramp.append(0)
        hurdle.append(np.inf)
        capex.append(0.0)
        committed.append(far)
        earliest.append(far)
        offtake.append({})
    for pj in s.projects:
        g, c = gi[pj.good], ci[pj.country]
        e = s.goods[g].supply_elasticity
        names.append(pj.name)
        pc.append(c)
        pg.append(g)
        nameplate.append(pj.capacity / 12.0)
        cap0.append(0.0)
        cost.append(pj.unit_cost)
        full_p = pj.unit_cost + (ref[g] - pj.unit_cost) / PROJECT_UTILISATION_AT_REFERENCE ** (1.0 / e)
        full.append(max(full_p, pj.unit_cost * 1.25, 1e-9))
        eps.append(e)
        is_proj.append(True)
        lag.append(int(pj.build_lag_months))
        ramp.append(int(pj.ramp_up_months))
        hurdle.append(float(pj.hurdle))
        capex.append(float(pj.capex))
        committed.append(
            cal.step_of(parse_date(pj.committed_start, field="committed_start")) if pj.committed_start else far
        )
        earliest.append(
            cal.step_of(parse_date(pj.earliest_start, field="earliest_start")) if pj.earliest_start else -far
        )
        offtake.append({ci[k]: float(v) for k, v in pj.offtake.items()})

    # ---- scheduled requirement changes ----
    req_changes = []
    for rc in s.requirement_changes:
        k = sector_names.index((rc.country, rc.sector))
        idx = np.flatnonzero((np.asarray(firm_sector)[row_firm] == k) & (row_good == gi[rc.good]))
        req_changes.append(
            (idx, cal.step_of(parse_date(rc.start, field="start")), int(rc.ramp_months), float(rc.change))
        )

    # ---- quota allocation over goods by baseline exports, and quota-year chains ----
    quotas = [m for m in measures if isinstance(m, ExportQuota)]
    for q in quotas:
        if np.isnan(q.allocation).any():
            base = exports0[q.goods, q.imposer]
            q.allocation = base / base.sum() if base.sum() > 0 else np.full(len(q.goods), 1.0 / len(q.goods))
        q.carried_in = np.zeros(len(q.goods))
        q.shipped = np.zeros(len(q.goods))
    chains = link_quota_years(quotas)

    return World(
        calendar=cal,
        countries=countries,
        goods=goods,
        good_units=[g.unit for g in s.goods],
        price_units=[g.price_unit for g in s.goods],
        coercer=ci[s.coercer],
        targets=np.array([ci[t] for t in s.targets], dtype=np.int64),
        reference_price=ref,
        demand_elasticity=np.array([g.demand_elasticity for g in s.goods], dtype=float),
        armington_elasticity=sigma,
        price_cap=np.array([g.price_cap for g in s.goods], dtype=float),
        price_floor=np.array([g.price_floor for g in s.goods], dtype=float),
        transport_cost=transport,
        producer_name=names,
        producer_country=np.array(pc, dtype=np.int64),
        producer_good=np.array(pg, dtype=np.int64),
        nameplate=np.array(nameplate, dtype=float),
        capacity0=np.array(cap0, dtype=float),
        unit_cost=np.array(cost, dtype=float),
        full_capacity_price=np.array(full, dtype=float),
        supply_elasticity=np.array(eps, dtype=float),
        is_project=np.array(is_proj, dtype=bool),
        build_lag=np.array(lag, dtype=np.int64),
        ramp_up=np.array(ramp, dtype=np.int64),
        hurdle=np.array(hurdle, dtype=float),
        capex=np.array(capex, dtype=float),
        committed_start=np.array(committed, dtype=np.int64),
        earliest_start=np.array(earliest, dtype=np.int64),
        offtake=offtake,
        firm_country=firm_country_a,
        n_user_firms=n_user_firms,
        firm_producer=np.array(firm_producer, dtype=np.int64),
        byproduct_host=byproduct_host,
        byproduct_recovery=byproduct_recovery,
        baseline_output=demand_on,
        producer_recycled=np.array([bool(pr.recycled) for pr in s.producers] + [False] * len(s.projects), dtype=bool),
        baseline_usable_share=np.where(cap_by > 0, usable_by / np.where(cap_by > 0, cap_by, 1.0), 1.0),
        firm_sector=np.array(firm_sector, dtype=np.int64),
        firm_value_added=np.array(firm_va, dtype=float),
        sector_names=sector_names,
        row_firm=row_firm,
        row_good=row_good,
        row_requirement=row_req,
        row_inventory_months=row_cover.astype(float),
        slot_origin=slot_origin,
        base_weights=base_w,
        base_shares=base_s,
        baseline_delivered_price=base_price,
        measures=measures,
        quota_chains=chains,
        requirement_changes=req_changes,
        baseline_measures=baseline_measures,
        baseline_exports=exports0,
        sources=dict(s.sources),
        history=s.history,
    )


def _baseline_overload(index: int, good, country: str, demand: float, capacity: float, host_limit: float) -> None:
    """Raise the error for an origin whose baseline demand exceeds what it can offer at baseline:
    its producers' capacity, the output their input stock allows, or its host good's output x
    recovery (monthly quantities).
    """
    per_year = f"{demand * 12:.4g} per year"
    input_limit = good.input_inventory_months * demand if good.inputs else np.inf
    most = MAX_BASELINE_UTILISATION
    if demand > most * capacity:
        raise ScenarioError(
            f"scenario.producers: baseline demand on {country} for {good.id} is {per_year}, {demand / capacity:.0%} "
            f"of its capacity {capacity * 12:.4g}; allowed: at most {most:.0%} (raise capacity or "
            f"lower the use or shares served by it)"
        )
    if input_limit <= host_limit:
        raise ScenarioError(
            f"scenario.goods[{index}].input_inventory_months: {good.input_inventory_months!r} is invalid; a month's "
            f"output is limited by the input stock held at its start, so the baseline output of {good.id} in "
            f"{country} ({per_year}) needs more than one month of input cover; allowed: >= {1 / most:.4g}"
        )
    b = good.byproduct_of
    raise ScenarioError(
        f"scenario.goods[{index}].byproduct_of: baseline output of {good.id} in {country} is {per_year}, more than "
        f"{most:.0%} of what its host allows ({b.good} output there x recovery {b.recovery:g}, plus any recycled "
        f"capacity = {host_limit * 12:.4g} per year); allowed: a recovery rate, host output or recycled capacity "
        f"that covers the by-product's baseline demand (or a lower demand for it)"
    )
