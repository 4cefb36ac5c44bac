"""Configuration schema: scenarios (case data), model behaviour (shared parameters), run settings.

These dataclasses are Hydra structured configs registered in the ConfigStore as
``coercion_sim_schema``; every YAML file under ``configs/`` (and any scenario a user keeps in their
own folder) is merged into them, so a misspelt key or a wrong type fails when the config is
composed, with the key's path in the message. The rules on values (ranges, unknown countries, shares
that do not sum to one, dates out of range, ...) are the pydantic models of :mod:`sim.world.schema`, one per
block here with the same fields and defaults (``tests/test_schema.py`` checks), applied by
:func:`sim.world.scenario.validate_config` before a run starts.

A scenario is one of two kinds, so the root :class:`Config` types ``scenario`` loosely and
:func:`check_scenario_schema` (called by :func:`sim.api.compose_config` and the command line right
after composition) checks it against the schema of its kind:

* a **written scenario** (a YAML file with the world's data) against :class:`ScenarioConfig`;
* a **generated world** (``kind: generated``; ``configs/scenario/generated.yaml`` extends
  :class:`GeneratedScenarioConfig`, registered as ``scenario/generated_schema``) against
  :class:`GeneratedScenarioConfig`: the generator's parameters, expanded into a full
  :class:`ScenarioConfig` by :func:`sim.world.generate.expand_config` before validation and world
  building.

Units: quantities in the good's ``unit`` (tonnes by default) per year unless a field says per month;
prices in US$ per quantity unit (``price_unit``); values in US$; dates as ``YYYY-MM`` or
``YYYY-MM-DD``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = [
    "CountryConfig",
    "GoodConfig",
    "ByproductConfig",
    "ProducerConfig",
    "ProjectConfig",
    "UserSectorConfig",
    "SourcingConfig",
    "MeasureConfig",
    "RequirementChangeConfig",
    "StrategyConfig",
    "GameConfig",
    "GameOptionConfig",
    "GameTargetConfig",
    "CoalitionRuleConfig",
    "DistributionConfig",
    "ScenarioConfig",
    "GeneratedScenarioConfig",
    "ModelConfig",
    "PolicyConfig",
    "StockpileConfig",
    "DiversificationConfig",
    "InventoryIncentiveConfig",
    "FinancedProjectConfig",
    "FriendshoringConfig",
    "CollectiveResponseConfig",
    "SubstitutionProgrammeConfig",
    "SubstitutionConfig",
    "RecyclingConfig",
    "OutputConfig",
    "Config",
    "register_configs",
    "check_scenario_schema",
    "lint_scenario_file",
    "scenario_name_problem",
    "shadowed_scenario_message",
    "MAX_SCENARIO_FILE_BYTES",
    "is_generated",
    "CONFIG_DIR",
]


@dataclass
class CountryConfig:
    """A country (ISO 3166 alpha-3 code) or an aggregate (``EU27``, ``ROW``)."""

    code: str = MISSING
    name: str = ""
    #: Coalitions the country belongs to (e.g. ``G7``); used by collective-response levers.
    coalitions: list[str] = field(default_factory=list)


@dataclass
class ByproductConfig:
    """The host good a by-product is recovered from, and how much per unit of host output."""

    #: Id of the host good (e.g. ``alumina`` for gallium).
    good: str = MISSING
    #: Units of the by-product recoverable per unit of the host good's output, > 0.
    recovery: float = MISSING


@dataclass
class GoodConfig:
    """A critical good and its market parameters."""

    id: str = MISSING
    name: str = ""
    #: Physical unit of quantities (capacities, demand, flows).
    unit: str = "t"
    #: Unit of prices; values are quantity x price, so prices are per quantity unit.
    price_unit: str = "USD/t"
    #: Baseline world (producer) price at the scenario start, in ``price_unit``.
    reference_price: float = MISSING
    #: Short-run price elasticity of firms' input demand (thrift), >= 0.
    demand_elasticity: float = MISSING
    #: Elasticity of substitution between origins (Armington), > 1.
    armington_elasticity: float = MISSING
    #: Default price elasticity (curvature) of producers' supply below capacity, > 0.
    supply_elasticity: float = 1.0
    #: Highest price as a multiple of the reference price; beyond it the market rations.
    price_cap: float = 40.0
    #: Lowest price as a multiple of the reference price.
    price_floor: float = 0.01
    #: Cost of shipping one unit between two countries, as a share of the reference price.
    transport_cost_share: float = 0.03
    #: Value chain: units of each input good used per unit of this good's output (Leontief). The
    #: good's producers buy the inputs on the same world markets, through the ``sourcing`` entries of
    #: their country, and hold input inventories; their output is limited by the input stock.
    inputs: dict[str, float] = field(default_factory=dict)
    #: Months of input use the good's producers hold at baseline (like a user sector's
    #: ``inventory_months``); only with ``inputs``.
    input_inventory_months: float = 2.0
    #: By-product: the good's capacity in each country is tied to the host good's output there last
    #: month times the recovery rate, and never exceeds it.
    byproduct_of: ByproductConfig | None = None


@dataclass
class ProducerConfig:
    """An existing producer (mine, refinery, or an aggregate of a country's producers)."""

    name: str = ""
    country: str = MISSING
    good: str = MISSING
    #: Capacity in quantity units per year.
    capacity: float = MISSING
    #: Unit cost in ``price_unit``: below it the producer supplies nothing. Must be below the
    #: reference price.
    unit_cost: float = MISSING
    #: Supply curvature; defaults to the good's ``supply_elasticity``.
    supply_elasticity: float | None = None
    #: Class label for domestic measures (e.g. ``formal``, ``informal``); a crackdown acts on one class.
    producer_class: str = ""
    #: Recycled (secondary) supply, e.g. gallium from scrap: where the good is a by-product
    #: (``byproduct_of``), this producer's capacity is not tied to the host good's output.
    recycled: bool = False


@dataclass
class ProjectConfig:
    """A potential capacity project: started when expected prices justify it, or on a set date
    when it is financed (``committed_start``), then delivering after its build lag.
    """

    name: str = MISSING
    country: str = MISSING
    good: str = MISSING
    #: Nameplate capacity in quantity units per year.
    capacity: float = MISSING
    unit_cost: float = MISSING
    #: Months from the start decision to first output.
    build_lag_months: int = MISSING
    #: Months from first output to nameplate capacity (linear ramp).
    ramp_up_months: int = 0
    #: Capital cost in US$ (for cost accounting).
    capex: float = 0.0
    #: Expected price / unit cost at which a private investor starts the project.
    hurdle: float = 1.5
    #: Date on which the project starts regardless of prices (public financing); null if none.
    committed_start: str | None = None
    #: Countries whose firms hold offtake contracts, with the contracted share of output (<= 1
    #: in total); firms there treat the project's country as a supplier once it produces.
    offtake: dict[str, float] = field(default_factory=dict)
    #: Earliest date on which a private start is possible (e.g. licensing); null for any time.
    earliest_start: str | None = None


@dataclass
class UserSectorConfig:
    """A downstream sector in one country; its firms are generated from these totals."""

    country: str = MISSING
    sector: str = MISSING
    #: Number of firms generated (sizes drawn with seeded heterogeneity; they sum to the totals).
    n_firms: int = 10
    #: Baseline value added of the sector in US$ per year.
    value_added: float = MISSING
    #: Baseline use of each critical good, quantity units per year (Leontief requirement).
    use: dict[str, float] = field(default_factory=dict)
    #: Inventory held at baseline, in months of use.
    inventory_months: float = 2.0
    #: Dispersion (lognormal sigma) of firm sizes.
    size_dispersion: float = 0.5
    #: Dispersion (lognormal sigma, mean kept) of firms' inventory cover around ``inventory_months``.
    inventory_dispersion: float = 0.5


@dataclass
class SourcingConfig:
    """Baseline import structure: shares of each origin (the destination itself included) in one
    country's purchases of one good. Shares sum to one.
    """

    destination: str = MISSING
    good: str = MISSING
    shares: dict[str, float] = field(default_factory=dict)


@dataclass
class MeasureConfig:
    """A trade measure in a schedule.

    ``type`` is one of ``export_quota``, ``export_ban``, ``export_duty``, ``export_licence``,
    ``import_ban``, ``import_tariff``, ``informal_restriction``, ``informal_import_restriction``, or a
    domestic instrument: ``production_quota``, ``crackdown``, ``production_halt``, ``production_tax``,
    ``state_purchase`` (see :mod:`sim.coercion.measures`). ``imposer`` is the
    country that imposes it; ``targets`` are destinations (export measures) or origins (import
    measures), all countries when empty (domestic instruments take none). ``end`` is the last day in
    force (null: to the end). Domestic instruments act on the imposer's producers of ``goods``,
    narrowed to ``producers`` (names) or ``producer_class``.
    """

    type: str = MISSING
    imposer: str = MISSING
    goods: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    start: str = MISSING
    end: str | None = None
    #: Ad-valorem rate for duties and tariffs (0.25 = 25%).
    rate: float = 0.0
    #: Share of the trade blocked for bans (1 = full ban; informal restrictions < 1); for crackdowns
    #: and production halts, the share of the covered producers' capacity removed.
    intensity: float = 1.0
    #: Export quota (or production quota, or state purchase) over the measure's period, quantity
    #: units (all listed goods together).
    quantity: float = 0.0
    #: Split of a multi-good quota over goods (shares summing to one); empty: by baseline exports.
    allocation: dict[str, float] = field(default_factory=dict)
    #: Export licence: months of review before any licence is approved (45 working days ~ 2.07).
    review_lag_months: float = 0.0
    #: Export licence: share of orders approved each month after the lag (default for destinations).
    approval_share: float = 1.0
    #: Export licence: approval share by destination country (overrides the default).
    approval_by_destination: dict[str, float] = field(default_factory=dict)
    #: Export licence: approval share by end use (user sector name); with a destination's share the
    #: lower one applies.
    approval_by_sector: dict[str, float] = field(default_factory=dict)
    #: Export licence: destinations under a general licence (their orders pass in full).
    exempt_destinations: list[str] = field(default_factory=list)
    #: Export licence: end uses (user sector names) under a general licence.
    exempt_sectors: list[str] = field(default_factory=list)
    #: Domestic instruments: names of the imposer's producers acted on (empty: all of the goods').
    producers: list[str] = field(default_factory=list)
    #: Domestic instruments: the producer class acted on (``crackdown`` needs one); empty: any.
    producer_class: str = ""
    #: Crackdowns: months over which the removed share rises linearly to ``intensity`` (0: at once).
    ramp_months: int = 0
    #: Production taxes: tax per quantity unit, in the good's price unit.
    per_unit: float = 0.0
    #: State purchases: US$ to spend over the period (instead of a ``quantity``).
    budget: float = 0.0
    label: str = ""
    source: str = ""


@dataclass
class RequirementChangeConfig:
    """A scheduled change in a sector's requirement per unit of output (e.g. substitution)."""

    country: str = MISSING
    sector: str = MISSING
    good: str = MISSING
    #: Relative change reached at the end of the ramp (-0.15 = 15% less of the good per unit).
    change: float = MISSING
    start: str = MISSING
    ramp_months: int = 12
    source: str = ""


@dataclass
class StrategyConfig:
    """How the coercer runs its measures.

    ``schedule`` applies the scenario's measures as dated; ``game`` runs the strategic layer
    (:mod:`sim.coercion.strategy`, settings in ``scenario.game``). ``rules`` keeps each measure of the
    coercer in force from its start while the target has not conceded and the coercer's own cost
    stays under its tolerance; the target concedes when its pain passes its threshold; an outside
    ruling ends measures ``ruling_delay_months`` after they start, if set.
    """

    type: str = "schedule"
    #: Coercer's tolerance: lost export revenue plus extra domestic cost, share of its baseline
    #: revenue from the coerced goods, over the trailing 12 months.
    coercer_cost_tolerance: float = 0.5
    #: Target's threshold: output loss as a share of the value added of its users of the goods,
    #: over the trailing 3 months.
    target_pain_threshold: float = 0.05
    #: Months after a measure starts when an outside ruling (e.g. WTO) ends it; null: never.
    ruling_delay_months: int | None = None


@dataclass
class GameOptionConfig:
    """One way the strategic coercer can hurt a target (:mod:`sim.coercion.strategy`): an instrument of
    :mod:`sim.coercion.measures` on some goods. Export-side instruments (``export_ban``, ``informal_restriction``,
    ``export_licence``) cut the coercer's exports to the target; import-side ones (``import_ban``,
    ``informal_import_restriction``, ``import_tariff``) shut the target's exports out of the coercer.
    """

    instrument: str = MISSING
    goods: list[str] = field(default_factory=list)
    #: Ad-valorem rate of an ``import_tariff`` at full intensity (0.8 = 80%).
    rate: float = 0.0


@dataclass
class GameTargetConfig:
    """A state the coercer may pick a dispute with, and what it can do to it."""

    country: str = MISSING
    #: Gross domestic product, US$ per year: pain is measured as a share of it.
    gdp: float = MISSING
    #: Multiplier on the resolve drawn from ``game.resolve`` (1: a typical target).
    resolve_multiplier: float = 1.0
    #: The coercer's options against this target.
    options: list[GameOptionConfig] = field(default_factory=list)


@dataclass
class CoalitionRuleConfig:
    """A coalition's announced response when the coercer imposes a measure on a member.

    With probability ``commitment`` (drawn once per episode) the members act: the target releases and
    the members share their stocks (``share_stockpiles``), the members buy the target's shut-out
    exports (``absorb_exports``), and they ban their exports to the coercer of the goods the coercer
    imports for at least ``dependence_threshold`` from the coalition (``counter_threat``). The
    coercer's lookahead anticipates the announced response at its expected strength (``commitment``).
    """

    coalition: str = MISSING
    commitment: float = 0.5
    absorb_exports: bool = True
    #: Share of the gap to ``absorb_max_share`` of the target in members' sourcing closed each month.
    absorb_rate: float = 0.3
    absorb_max_share: float = 0.5
    share_stockpiles: bool = True
    #: Share of a member's game stock it sends to a coerced member per month.
    share_rate: float = 0.2
    counter_threat: bool = True
    #: Coalition share of the coercer's imports of a good above which the coalition counter-threatens
    #: on it (collective resilience: goods China sources for more than 70% from the coalition).
    dependence_threshold: float = 0.7


@dataclass
class DistributionConfig:
    """A lognormal distribution by its median and the standard deviation of its log."""

    median: float = MISSING
    sigma: float = 0.0


@dataclass
class GameConfig:
    """The strategic layer (:mod:`sim.coercion.strategy`; ``strategy.type: game``): disputes, the coercer's
    monthly decision by forward simulation, targets' resolve, reputation, coalitions, rulings.
    """

    #: Disputes per coercer-target pair per year (a Poisson rate).
    dispute_rate_per_year: float = 0.2
    #: Value of a concession to the coercer, US$ (drawn per dispute).
    stake: DistributionConfig = field(default_factory=lambda: DistributionConfig(median=2e9, sigma=0.5))
    #: Target's resolve: the pain (share of its GDP over the horizon) it bears before conceding.
    resolve: DistributionConfig = field(default_factory=lambda: DistributionConfig(median=0.005, sigma=0.5))
    #: Months the coercer and the target look ahead when they weigh a measure.
    horizon_months: int = 6
    #: Months between the coercer's reviews of a measure in force (hold, escalate or lift).
    review_months: int = 3
    #: Intensities the coercer can choose (share of the trade blocked; share of ``rate`` for tariffs).
    intensities: list[float] = field(default_factory=lambda: [0.5, 1.0])
    #: Months from a threat to the coercer's decision to impose or back down.
    threat_months: int = 1
    #: Credibility of the coercer's first threat (share of the threatened pain a target expects).
    initial_credibility: float = 1.0
    #: Share of credibility lost on a back-down; share of the gap to 1 regained on a success.
    reputation_loss: float = 0.3
    reputation_gain: float = 0.2
    #: Changes of government per target per year; each redraws the target's resolve.
    government_change_rate_per_year: float = 0.2
    #: Probability that an imposed measure is taken to an outside ruling, and months to the ruling.
    ruling_probability: float = 0.3
    ruling_delay_months: int = 24
    #: Months after which a measure with no concession is lifted as a stalemate.
    max_episode_months: int = 72
    #: ``every_decision`` (simulate each candidate from the current state at each decision) or
    #: ``cached`` (simulate each candidate once from the first decision's state and reuse the table).
    lookahead: str = "every_decision"
    #: Months at the start with no new dispute (the baseline settles).
    warmup_months: int = 3
    targets: list[GameTargetConfig] = field(default_factory=list)
    coalitions: list[CoalitionRuleConfig] = field(default_factory=list)
    #: Game stocks by country and good, months of the country's baseline use (released when coerced).
    stockpile_months: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Labels of scheduled measures (``scenario.measures``) the game decides instead: left out of the
    #: schedule under ``strategy.type: game`` (e.g. a historical halt that becomes one of the coercer's
    #: options when a scenario file reuses a historical case).
    replaces_measures: list[str] = field(default_factory=list)


@dataclass
class AssumptionConfig:
    """A number of the scenario that no source gives, with the range it could plausibly take.

    ``path`` names the number inside ``scenario`` (see :mod:`sim.world.assumptions`, e.g.
    ``goods[id=ree_light].demand_elasticity``); ``low`` and ``high`` bound it (the scenario's value
    inside); ``reason`` says why it is assumed and why this range.
    ``experiments/assumption_sensitivity.py`` sweeps each over its range.
    """

    path: str = MISSING
    low: float = MISSING
    high: float = MISSING
    reason: str = ""


@dataclass
class ScenarioConfig:
    """A case: its world, its measures, and the sources of every calibrated number."""

    name: str = MISSING
    description: str = ""
    #: First and last simulated month, ``YYYY-MM``.
    start: str = MISSING
    end: str = MISSING
    #: Country imposing the coercive measures.
    coercer: str = MISSING
    #: Countries the coercion is aimed at (for outcome reporting and the rule-based strategy).
    targets: list[str] = field(default_factory=list)
    countries: list[CountryConfig] = field(default_factory=list)
    goods: list[GoodConfig] = field(default_factory=list)
    producers: list[ProducerConfig] = field(default_factory=list)
    projects: list[ProjectConfig] = field(default_factory=list)
    user_sectors: list[UserSectorConfig] = field(default_factory=list)
    sourcing: list[SourcingConfig] = field(default_factory=list)
    measures: list[MeasureConfig] = field(default_factory=list)
    requirement_changes: list[RequirementChangeConfig] = field(default_factory=list)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    #: The strategic layer's settings (``strategy.type: game``; :mod:`sim.coercion.strategy`); null otherwise.
    game: GameConfig | None = None
    #: Where every calibrated number comes from: key -> citation (title, URL).
    sources: dict[str, str] = field(default_factory=dict)
    #: Numbers no source gives, each with a plausible range (swept by experiments/assumption_sensitivity.py).
    assumptions: list[AssumptionConfig] = field(default_factory=list)
    #: Historical observations for comparison figures: file name in ``sim/world/data`` (optional).
    history: str | None = None
    #: Most origins one purchase row can source from: its baseline origins, then the other
    #: candidate origins (producers and projects of the good) by capacity.
    max_sourcing_origins: int = 8
    #: For a generated world: the generator parameters that built it (the seed actually used
    #: included), so a run's config.yaml records them; empty for a written scenario.
    generated_from: dict[str, Any] = field(default_factory=dict)


@dataclass
class GeneratedScenarioConfig:
    """Parameters of a generated world (:func:`sim.world.generate.generated_scenario`).

    Structure: each good is produced in a few countries, drawn with Zipf-like weights over the
    countries (``production_concentration``), with capacity shares from a Dirichlet draw
    (``producer_share_concentration``: lower means one dominant producer); each country uses 1 to
    ``max_goods_per_country`` goods and buys each mostly from its largest producers, with lognormal
    noise (``sourcing_dispersion``). The dominant producer of the most goods is the coercer; its
    measure (``measure``) covers the goods it dominates.
    """

    #: Marks a generated world (the only allowed value); a written scenario has no ``kind``.
    kind: str = "generated"
    name: str = "generated"
    description: str = ""
    #: Countries (synthetic codes AAA, AAB, ...), at least 2.
    countries: int = 20
    #: Critical goods (ids good_000, good_001, ...), at least 1.
    goods: int = 5
    #: User firms in total, at least one per country (one sector per country).
    firms: int = 400
    #: Producers in total; null: ``2 x max(goods, countries // 2)``. At least ``goods``.
    producers: int | None = None
    #: First month, ``YYYY-MM``.
    start: str = "2020-01"
    #: Length of the run in months; ``end`` (last month, ``YYYY-MM``) replaces it when set.
    months: int = 120
    end: str | None = None
    #: Seed of the world's structure; null: derived from the run's ``seed`` (a separate stream).
    #: The seed used is recorded in ``scenario.generated_from.seed`` of the run's config.yaml.
    seed: int | None = None
    #: Zipf exponent of the countries' chance to host production (higher: production in fewer,
    #: larger countries), > 0.
    production_concentration: float = 1.3
    #: Dirichlet concentration of capacity shares among a good's producers (lower: more dominant
    #: largest producer), > 0.
    producer_share_concentration: float = 0.5
    #: Lognormal sigma of the noise on sourcing shares around capacity shares, >= 0.
    sourcing_dispersion: float = 0.5
    #: Most origins per purchase row (and per baseline sourcing entry), >= 1.
    max_sourcing_origins: int = 8
    #: Most goods a country uses (each uses 1 to this many), >= 1.
    max_goods_per_country: int = 3
    #: Each good's capacity as a multiple of its world use, shared by capacity share (>= 1); a
    #: producing country gets more where the baseline demand on it needs it.
    capacity_headroom: float = 1.35
    #: The coercer's measure on its dominated goods: ``export_quota`` (its exports capped at
    #: ``measure_share`` of baseline), ``export_ban`` (exports to the targets blocked with intensity
    #: ``measure_share``) or ``none``.
    measure: str = "export_quota"
    measure_share: float = 0.5
    #: Month (from 0) the measure starts; null: a third of the way through the run.
    measure_start_month: int | None = None
    #: Months the measure lasts (cut at the end of the run), >= 1.
    measure_months: int = 24
    #: Countries named as targets: the first of the coercer's importers by code, >= 0.
    n_targets: int = 3


@dataclass
class ModelConfig:
    """Behavioural parameters shared by every scenario (one documented place; see docs/ODD.md)."""

    #: Months over which firms close the gap between inventory and its target.
    inventory_adjustment_months: float = 6.0
    #: Purchase deferral: extra price elasticity of a firm's purchases per month of inventory cover
    #: it holds (a firm with stock buys less while prices are high and draws the stock down).
    deferral_elasticity: float = 0.05
    #: Cover (months) beyond which holding more stock adds no deferral elasticity.
    deferral_max_cover_months: float = 6.0
    #: Precautionary buying: target cover rises by this multiple of the scarcity signal.
    precaution: float = 2.0
    #: Cap on the target cover as a multiple of its baseline.
    precaution_max_multiple: float = 2.5
    #: Memory (months, exponential) of the scarcity signal (price rise and rationing).
    scarcity_memory_months: float = 3.0
    #: Share of the gap to target sourcing weights closed per month (diversification speed).
    sourcing_adjustment_rate: float = 0.03
    #: Memory (months) of an origin's coercion in buyers' risk perception.
    risk_memory_months: float = 60.0
    #: How strongly perceived risk lowers an origin's target sourcing weight.
    risk_aversion: float = 3.0
    #: Weight of firms' sourcing noise: Dirichlet concentration of firm shares around sector
    #: shares (higher: less heterogeneity).
    sourcing_concentration: float = 200.0
    #: Substitution: monthly fall in requirements per unit of log price above reference.
    substitution_rate: float = 0.003
    #: Lowest requirement reachable by endogenous substitution, share of baseline.
    substitution_floor: float = 0.6
    #: Demand destruction at high prices (long-run thrift): users' price elasticity of use per unit
    #: output, on the price they expect, as a multiple of the good's short-run elasticity; 0 turns it off.
    long_run_thrift: float = 1.0
    #: Memory (months) of price expectations used by investors.
    expectation_memory_months: float = 12.0
    #: Months the expected price must stay above the hurdle before a private project starts.
    project_decision_months: int = 6
    #: Solver tolerance (relative excess demand) of the market-clearing kernel.
    clearing_tolerance: float = 1e-10


# ---------------------------------------------------------------------------- policy levers
# One dataclass per lever (sim/policy/levers.py has the mechanisms). Every lever names the countries that
# run it (empty: the scenario's targets) and the goods it covers (empty: every good); dates are
# ``YYYY-MM`` or ``YYYY-MM-DD`` (null: the scenario's first month). Units as in the scenario.


@dataclass
class StockpileConfig:
    """A state strategic reserve per country and good, in months of the country's baseline use.

    Follows Japan's national rare-metal stockpile (JOGMEC; target 60 days of consumption, IEA policy
    database) and the IEA oil-stock model (release on disruption, refill when prices are normal).
    """

    countries: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Target size, months of the country's baseline use of the good (0: no stockpile).
    months: float = 3.0
    #: Share of the target held on the lever's first month (bought before it, at the reference price).
    initial_fill: float = 1.0
    #: Book the initial fill's purchase (at the reference price) as a cost in the first month.
    cost_initial_fill: bool = True
    #: First month the lever runs (null: the scenario's first month).
    start: str | None = None
    #: When the reserve releases: ``shortage`` (firms were short or rationed last month), ``price``
    #: (the price firms paid last month was at least ``release_price_ratio`` x its first-month value)
    #: or ``either``.
    release_on: str = "either"
    #: Price trigger for releases (ratio to the first-month price paid); must exceed ``refill_price_ratio``.
    release_price_ratio: float = 2.0
    #: Most released per month, share of the target.
    max_release_rate: float = 0.25
    #: Refilling starts when the reserve is below this share of its target...
    refill_below: float = 0.9
    #: ...and the price paid last month is at most this ratio to its first-month value.
    refill_price_ratio: float = 1.2
    #: Most bought per month while refilling, share of the target.
    refill_rate: float = 0.05
    #: Holding cost per year, share of the reserve's value at the reference price (storage, capital).
    holding_cost: float = 0.05


@dataclass
class DiversificationConfig:
    """Diversification: a cap on any one foreign origin's share in firms' sourcing, reached over a set
    time, and a subsidy that speeds up the shift of sourcing weights (e.g. Japan's post-2010 aim of
    cutting China's share of its rare-earth imports to at most 50%, Nikkei 2020).
    """

    countries: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Cap on one foreign origin's share of a firm's sourcing weights (1: no cap).
    max_share: float = 1.0
    #: Months over which the cap falls linearly from 1 to ``max_share`` (0: at once).
    months: int = 60
    #: Multiplier (>= 1) on the sourcing adjustment rate paid for by the subsidy (1: no subsidy).
    speed: float = 1.0
    start: str | None = None
    #: Cost of moving sourcing, US$ per unit of annual purchases moved, as a share of the reference
    #: price (supplier qualification, contracts); paid by the state for the shift the lever causes.
    switching_cost: float = 0.25


@dataclass
class InventoryIncentiveConfig:
    """A tax credit for holding inventory: firms' target cover rises by ``extra_months``; the state
    pays ``credit_rate`` per year of the value (at the reference price) of the extra stock held.
    """

    countries: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Months of use added to firms' target inventory cover.
    extra_months: float = 1.0
    #: Credit per year, share of the value of the stock held up to the extra cover.
    credit_rate: float = 0.1
    start: str | None = None
    #: Last month of the incentive (null: to the end).
    end: str | None = None


@dataclass
class FinancedProjectConfig:
    """A capacity project a state finances: an existing scenario project (``project`` names it) or a
    new one described by the other fields (``country`` null: the financing country itself).
    """

    #: Name of a project in ``scenario.projects``; null for a new project.
    project: str | None = None
    #: Host country of a new project (null: the financing country, i.e. reshoring).
    country: str | None = None
    #: Good of a new project (null: every good the lever covers, one project each).
    good: str | None = None
    #: New project's capacity, share of the financing country's baseline use of the good.
    capacity_share: float = 0.1
    #: New project's unit cost as a multiple of the reference price.
    unit_cost_ratio: float = 1.2
    build_lag_months: int = 24
    ramp_up_months: int = 24
    #: New project's capital cost as a multiple of one year's output value at the reference price.
    capex_ratio: float = 3.0
    #: Public money (US$); null: ``public_share`` x the project's capex.
    public_finance: float | None = None
    public_share: float = 1.0
    #: Share of the project's output contracted to the financing country (offtake).
    offtake: float = 0.5


@dataclass
class FriendshoringConfig:
    """Reshoring and friend-shoring: public financing commits capacity projects at home or in partner
    countries on ``start``; they deliver after their build lag and ramp-up. Template: the JOGMEC /
    Sojitz financing of Lynas (Nov 2010; first output Q4 2012).
    """

    countries: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Financing decision (null: the first month a measure of the coercer names a financing country).
    start: str | None = None
    projects: list[FinancedProjectConfig] = field(default_factory=lambda: [FinancedProjectConfig()])


@dataclass
class CollectiveResponseConfig:
    """A coalition's response when the coercer targets a member (the G7 Coordination Platform on
    Economic Coercion, 2023; Cha's collective resilience, 2023): members buy the target's shut-out
    exports, share stockpiles (their own or a coalition stock), and may impose counter-tariffs or
    withhold goods the coercer imports mostly from them; each part can be switched on or off.
    """

    #: Coalition name (countries list it under ``coalitions`` in the scenario).
    coalition: str = "G7"
    goods: list[str] = field(default_factory=list)
    #: Members raise sourcing weights toward a target whose exports the coercer shuts out.
    buy_target_exports: bool = True
    #: Share of the gap to ``max_target_share`` closed per month while the coercion lasts.
    purchase_shift_rate: float = 0.2
    #: Most weight members put on the target origin.
    max_target_share: float = 0.5
    #: Members with a stockpile lever release to a coerced member short of the good.
    share_stockpiles: bool = True
    #: Most shared per month, share of the donor's reserve.
    share_rate: float = 0.25
    #: Counter-tariff on imports from the coercer while a member is coerced (0: none).
    counter_tariff: float = 0.0
    #: Stock each member that runs no stockpile lever on a good holds for the coalition before the
    #: coercion, in months of its own baseline use of the good (0: none); shared like a reserve.
    shared_stock_months: float = 0.0
    #: Holding cost per year of that shared stock, share of its value at the reference price.
    shared_stock_holding_cost: float = 0.05
    #: Commitment strength of the counter-restriction: share of members' exports to the coercer of the
    #: leverage goods (covered goods the coercer imports mostly from the coalition) withheld while a
    #: member is coerced (0: none, 1: all).
    counter_restriction: float = 0.0
    #: A covered good is a leverage good when members supply at least this share of the coercer's
    #: baseline imports of it (Cha 2023: goods for which China depends on one group of states for >70%).
    dependence_threshold: float = 0.7


@dataclass
class SubstitutionProgrammeConfig:
    """R&D on substitutes: requirements per unit of output fall by up to ``change`` as the budget is
    spent, after a lag (e.g. Japan's switch from cerium to alumina in glass polishing after 2010).
    """

    countries: list[str] = field(default_factory=list)
    #: Sectors (empty: every sector of the countries).
    sectors: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Relative change in requirement reached when the budget is spent (-0.2 = 20% less).
    change: float = -0.1
    start: str | None = None
    #: Months from spending to effect.
    lag_months: int = 6
    #: Months over which the budget is spent evenly (the effect ramps up with spending).
    spend_months: int = 24
    #: R&D budget, US$ in total.
    budget: float = 0.0


@dataclass
class SubstitutionConfig:
    """Substitution R&D programmes (a list, each with its own sectors, goods and budget)."""

    programmes: list[SubstitutionProgrammeConfig] = field(default_factory=lambda: [SubstitutionProgrammeConfig()])


@dataclass
class RecyclingConfig:
    """Recycling: public money builds domestic secondary supply, a share of the country's baseline use
    of the good, at a unit cost above the reference price, after a build lag (e.g. Hitachi and Shin-Etsu
    magnet recycling in Japan after 2010).
    """

    countries: list[str] = field(default_factory=list)
    goods: list[str] = field(default_factory=list)
    #: Secondary supply at full ramp, share of the country's baseline use of each good.
    recovery_share: float = 0.05
    #: Overrides of ``recovery_share`` per good.
    recovery_share_by_good: dict[str, float] = field(default_factory=dict)
    unit_cost_ratio: float = 1.5
    start: str | None = None
    build_lag_months: int = 12
    ramp_up_months: int = 12
    #: Capital cost as a multiple of one year's output value at the reference price.
    capex_ratio: float = 1.0
    #: Share of the capex paid by the state.
    public_share: float = 1.0


@dataclass
class PolicyConfig:
    """The policy levers of a run (``configs/policy/``; ``policy=none`` leaves them all off).

    Compose several with ``policy=[stockpile,diversification]``; sweep any parameter, e.g.
    ``policy.stockpile.months=0,1,3,6``.
    """

    stockpile: StockpileConfig | None = None
    diversification: DiversificationConfig | None = None
    inventory_incentive: InventoryIncentiveConfig | None = None
    friendshoring: FriendshoringConfig | None = None
    collective_response: CollectiveResponseConfig | None = None
    substitution: SubstitutionConfig | None = None
    recycling: RecyclingConfig | None = None


@dataclass
class OutputConfig:
    """What a run writes."""

    #: Variables recorded in timeseries.parquet: ``all`` or a list of variable names.
    variables: list[str] = field(default_factory=lambda: ["all"])
    #: Write flows.parquet (non-zero flows only).
    flows: bool = True
    #: Write the run's figures (PNG and PDF): ``auto`` (a single run draws them, a sweep job does
    #: not: two figures cost several times a run), ``true`` or ``false``.
    figures: Any = "auto"
    #: Show progress on stderr: ``auto`` (only when the run is long and stderr is a terminal),
    #: ``always`` or ``never``.
    progress: str = "auto"


@dataclass
class Config:
    """A run: scenario, model behaviour, seed and outputs."""

    #: A written scenario (:class:`ScenarioConfig`) or a generated world
    #: (:class:`GeneratedScenarioConfig`); typed loosely here and checked against its kind's
    #: schema by :func:`check_scenario_schema` right after composition.
    scenario: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    #: Shared market parameters by kind of good and of user (``configs/parameters/``): tables that
    #: scenario files refer to by interpolation (``${parameters.armington.cereals}``), so the same
    #: kind of good has the same value in every scenario. Free-form nested mapping.
    parameters: dict[str, Any] = field(default_factory=dict)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: Root seed of the run's random numbers (firm heterogeneity).
    seed: int = 0
    #: Free-form tags copied to provenance.json (e.g. an experiment name).
    tags: dict[str, Any] = field(default_factory=dict)
    #: Replication number: when set, the run's random numbers come from child ``replication`` of
    #: ``numpy.random.SeedSequence(seed)`` (``seed`` is then the root seed of the replications), so
    #: ``seed=7 replication='range(0,20)'`` gives 20 independent, reproducible replications. Applied
    #: by the ``coercion-sim`` command, single runs and multiruns; ``sim.run`` takes a plain seed
    #: (pass :func:`sim.experiments.sweep.replication_seed` ``(seed, k)``).
    replication: int | None = None
    #: In a multirun, skip a job whose output directory already holds complete outputs
    #: (``provenance.json``, written last) of the same configuration; rerun it otherwise.
    resume: bool = False


def _config_dir() -> Path:
    env = os.environ.get("COERCION_SIM_CONFIG_DIR")
    if env:
        return Path(env).resolve()
    package = Path(__file__).resolve().parents[1]  # sim/ (this module is sim/world/config.py)
    checkout = package.parent / "configs"
    if (package.parent / "pyproject.toml").is_file() and (checkout / "config.yaml").is_file():
        return checkout  # a checkout (editable install)
    packaged = package / "_configs"  # a regular install: the wheel's copy
    return packaged if (packaged / "config.yaml").is_file() else checkout


#: Directory of the shipped configs: ``configs/`` of a checkout (editable install), or the copy a
#: regular install carries as ``sim/_configs``; the ``COERCION_SIM_CONFIG_DIR`` environment variable
#: overrides both.
CONFIG_DIR = _config_dir()


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent): the root ``coercion_sim_schema``,
    ``scenario/schema`` (a written scenario extends it with ``defaults: [schema, _self_]``, so
    command-line overrides of fields the file leaves at their defaults work) and
    ``scenario/generated_schema``, which ``configs/scenario/generated.yaml`` extends.
    """
    cs = ConfigStore.instance()
    cs.store(name="coercion_sim_schema", node=Config)
    cs.store(group="scenario", name="schema", node=ScenarioConfig)
    cs.store(group="scenario", name="generated_schema", node=GeneratedScenarioConfig)


def is_generated(scenario) -> bool:
    """Whether a scenario node describes a generated world (``kind: generated``)."""
    return scenario is not None and "kind" in scenario and scenario["kind"] is not None


def schema_problem(value: Any, schema: Any, path: str) -> str | None:
    """The first place where plain data (a loaded YAML file, or a config as a container) does not fit
    ``schema`` (a dataclass or a type hint), as one message naming the full path, the bad value or
    key and what is allowed; ``None`` if nothing is found (OmegaConf then checks the rest).

    OmegaConf's own errors for entries of typed lists name only the last key (``full_key:
    reference_price``); this walk gives ``scenario.goods[0].referense_price: unknown key; allowed: id,
    name, ...``. Interpolations (``${...}``) and numbers written as strings are left to OmegaConf.
    """
    import dataclasses
    import types
    import typing

    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if isinstance(value, str) and value == "???":
        return None  # missing: see missing_problem
    if isinstance(value, str) and "${" in value:
        # An interpolation may stand for a value, not for a list or a mapping of fields (OmegaConf
        # refuses a string there, naming no path).
        if dataclasses.is_dataclass(schema) or origin in (list, dict):
            if dataclasses.is_dataclass(schema):
                allowed = "a mapping with the keys " + ", ".join(f.name for f in dataclasses.fields(schema))
            else:
                allowed = _type_words(schema)
            return f"{path}: {value!r} is invalid; allowed: {allowed}"
        return None
    if schema is Any or schema is object:
        return None
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        problems = [schema_problem(value, a, path) for a in options]
        return None if any(p is None for p in problems) else problems[0]
    if value is None:  # null for a field that is not optional (OmegaConf's message names no path)
        names = ", ".join(f.name for f in dataclasses.fields(schema)) if dataclasses.is_dataclass(schema) else ""
        allowed = f"a mapping with the keys {names}" if names else _type_words(schema)
        return f"{path}: None is invalid; allowed: {allowed}"
    if dataclasses.is_dataclass(schema):
        names = [f.name for f in dataclasses.fields(schema)]
        if not isinstance(value, dict):
            return f"{path}: {value!r} is invalid; allowed: a mapping with the keys {', '.join(names)}"
        hints = typing.get_type_hints(schema)
        for key, item in value.items():
            if key not in hints:
                return f"{path}.{key}: unknown key; allowed: {', '.join(names)}"
            problem = schema_problem(item, hints[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if origin is list:
        if not isinstance(value, list):
            return f"{path}: {value!r} is invalid; allowed: a list"
        for i, item in enumerate(value):
            problem = schema_problem(item, args[0] if args else Any, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"{path}: {value!r} is invalid; allowed: a mapping"
        for key, item in value.items():
            problem = schema_problem(item, args[1] if len(args) > 1 else Any, f"{path}.{key}")
            if problem:
                return problem
        return None
    if schema in (float, int):
        kind = "a number" if schema is float else "an integer"
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            return f"{path}: {value!r} is invalid; allowed: {kind}"
        try:
            if schema is int and isinstance(value, str):
                int(value)
            elif isinstance(value, str):
                float(value)
        except ValueError:
            return f"{path}: {value!r} is invalid; allowed: {kind}"
        if schema is int and isinstance(value, float):  # OmegaConf converts no float, not even 9.0
            return f"{path}: {value!r} is invalid; allowed: {kind} (written without a decimal point)"
        return None
    if schema is bool:
        if isinstance(value, (dict, list)) or (
            isinstance(value, str) and value.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0")
        ):
            return f"{path}: {value!r} is invalid; allowed: true or false"
        return None
    if schema is str and isinstance(value, (dict, list)):
        return f"{path}: {value!r} is invalid; allowed: a text value"
    return None


#: Largest scenario file read (bytes): the biggest shipped scenario is about 35 kB, and Hydra takes
#: minutes over a YAML file of tens of megabytes, so a bigger file is almost surely the wrong file.
MAX_SCENARIO_FILE_BYTES = 8 * 2**20

#: What a scenario file must be, for messages about a file that is not one.
_SCENARIO_FILE = "a UTF-8 YAML file with a mapping of the scenario's fields (see configs/scenario/minimal.yaml)"

#: Schemas in the ConfigStore's scenario group: what scenario files extend, not scenarios themselves.
SCHEMA_NAMES = ("schema", "generated_schema")

#: What a required field holds, by field name (for "missing" messages); the type otherwise.
REQUIRED_HINTS = {
    "name": "a text value (the scenario's name; it names the output folder)",
    "start": "a date, YYYY-MM (or YYYY-MM-DD in measures and requirement changes)",
    "end": "a month, YYYY-MM",
    "coercer": "a country code from scenario.countries",
    "country": "a country code from scenario.countries",
    "imposer": "a country code from scenario.countries",
    "destination": "a country code from scenario.countries",
    "good": "a good id from scenario.goods",
    "code": "an ISO 3166 alpha-3 code in capitals (CHN, JPN, USA) or EU27/ROW",
    "id": "a good id: lower-case letters, digits and _",
    "type": "a measure type (export_quota, export_ban, export_duty, import_ban, import_tariff, ...)",
}


def scenario_files(name: str, config_dirs: list[str | os.PathLike] = ()) -> list[Path]:
    """Every file ``scenario/<name>.yaml`` in Hydra's search order (the shipped configs, then
    ``config_dirs``); Hydra composes the first, so any later one is shadowed.
    """
    found: list[Path] = []
    for d in [CONFIG_DIR, *config_dirs]:
        try:
            path = Path(d) / "scenario" / f"{name}.yaml"
            if path.is_file() and path.resolve() not in [f.resolve() for f in found]:
                found.append(path)
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            continue
    return found


def available_scenarios(config_dirs: list[str | os.PathLike] = ()) -> list[str]:
    """Names of the scenarios found in the shipped configs and ``config_dirs`` (sorted, once each)."""
    names: set[str] = set()
    for d in [CONFIG_DIR, *config_dirs]:
        try:
            names.update(p.stem for p in (Path(d) / "scenario").glob("*.yaml"))
        except OSError:
            continue
    return sorted(names)


def _type_words(schema: Any) -> str:
    import typing

    if typing.get_origin(schema) is list:
        return "a list"
    if typing.get_origin(schema) is dict:
        return "a mapping"
    return {float: "a number", int: "an integer", str: "a text value", bool: "true or false"}.get(schema, "a value")


def missing_problem(value: Any, schema: Any, path: str, overridden: frozenset[str] = frozenset()) -> str | None:
    """The first required field (no default in the schema) that plain data leaves out or sets to
    ``???``, walking lists of entries too, as ``<path>: missing; allowed: <what it holds>``; ``None``
    if none is. Paths in ``overridden`` (set on the command line) count as given.
    """
    import dataclasses
    import typing

    if dataclasses.is_dataclass(schema) and isinstance(value, dict):
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            sub = f"{path}.{f.name}"
            given = f.name in value and value[f.name] != "???"
            required = f.default is MISSING and f.default_factory is dataclasses.MISSING
            # ``???`` for a field with a default would silently keep the default when composed.
            if (required or f.name in value) and not given and sub not in overridden:
                return f"{sub}: missing; allowed: {REQUIRED_HINTS.get(f.name, _type_words(hints[f.name]))}"
            if given:
                problem = missing_problem(value[f.name], hints[f.name], sub, overridden)
                if problem:
                    return problem
    elif typing.get_origin(schema) is list and isinstance(value, list):
        (item,) = typing.get_args(schema) or (Any,)
        for i, entry in enumerate(value):
            problem = missing_problem(entry, item, f"{path}[{i}]", overridden)
            if problem:
                return problem
    return None


def _read_scenario_text(path: Path) -> tuple[str | None, str | None]:
    """``(text, None)`` for a readable scenario file, ``(None, problem)`` for an empty, binary,
    oversized or unreadable one.
    """
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_FILE_BYTES:
            return None, (
                f"{size / 2**20:.1f} MiB is too large for a scenario file; allowed: at most "
                f"{MAX_SCENARIO_FILE_BYTES // 2**20} MiB ({_SCENARIO_FILE})"
            )
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__}); allowed: {_SCENARIO_FILE}"
    nul = raw.find(b"\0")
    if nul >= 0:
        return None, f"binary content (a NUL byte at offset {nul}); allowed: {_SCENARIO_FILE}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); allowed: {_SCENARIO_FILE}"
    return text, None


def _yaml_problem(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(getattr(exc, "problem", None) or exc).split())
    return f"invalid YAML{where} ({what}); allowed: {_SCENARIO_FILE}"


def lint_scenario_file(
    name: str, config_dirs: list[str | os.PathLike] = (), *, overridden: frozenset[str] = frozenset()
) -> str | None:
    """Check the scenario file ``scenario/<name>.yaml`` before Hydra composes it; return one line,
    ``"<file>: <problem>"``, or ``None``.

    The file is looked up as Hydra does (the shipped configs first, then ``config_dirs``). Any file
    found is refused if it is empty (or only comments), binary, not UTF-8, larger than
    :data:`MAX_SCENARIO_FILE_BYTES`, not valid YAML or not a mapping. A file that is a whole scenario
    (its defaults list names at most its schema, ``schema`` or ``generated_schema``, and ``_self_``;
    no ``# @package`` header) is also checked against its schema: unknown keys, wrong types, and
    required fields it leaves out (``name``, ``start``, ``coercer``, a producer's ``good``, ...)
    unless ``overridden`` (full paths set on the command line, ``scenario.start``) gives them. A file
    that extends another config is otherwise left to Hydra, as is a name not found. Never raises.
    """
    try:
        import yaml

        found = scenario_files(name, config_dirs)
        if not found:
            return None
        path = found[0]
        text, problem = _read_scenario_text(path)
        if problem:
            return f"{path}: {problem}"
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            return f"{path}: {_yaml_problem(exc)}"
        if data is None:
            return f"{path}: the file is empty (or only comments); allowed: {_SCENARIO_FILE}"
        if "@package" in text:
            return None
        if not isinstance(data, dict):
            return f"{path}: {type(data).__name__} {data!r:.60} at the top level is invalid; allowed: {_SCENARIO_FILE}"
        defaults = data.pop("defaults", [])
        entries = {
            d if isinstance(d, str) else repr(d) for d in (defaults if isinstance(defaults, list) else [defaults])
        }
        if entries <= {"schema", "_self_"} and "kind" not in data:
            schema = ScenarioConfig
        elif entries <= {"generated_schema", "_self_"} and data.get("kind") == "generated":
            schema = GeneratedScenarioConfig
        else:
            return None
        problem = schema_problem(data, schema, "scenario") or missing_problem(data, schema, "scenario", overridden)
        return f"{path}: {problem}" if problem else None
    except Exception:
        return None


def scenario_name_problem(name: str, config_dirs: list[str | os.PathLike] = ()) -> str | None:
    """Whether ``scenario=<name>`` names a scenario: ``None`` if a file ``scenario/<name>.yaml`` is
    found (see :func:`scenario_files`), else one line naming the value and the scenarios there are
    (``schema`` and ``generated_schema`` are what scenario files extend, not scenarios).
    """
    if scenario_files(name, config_dirs):
        return None
    allowed = ", ".join(n for n in available_scenarios(config_dirs) if n not in SCHEMA_NAMES)
    if name in SCHEMA_NAMES:
        return (
            f"scenario: {name!r} is the schema that scenario files extend, not a scenario; allowed: {allowed} "
            "(or your own file in a --config-dir folder)"
        )
    return (
        f"scenario: {name!r} is not a scenario file found; allowed: {allowed} "
        "(or your own file in a --config-dir folder)"
    )


def shadowed_scenario_message(name: str, config_dirs: list[str | os.PathLike] = ()) -> str | None:
    """When a user's ``scenario/<name>.yaml`` has the name of a file earlier in the search order (a
    shipped scenario), one line saying which file is used and which is ignored; else ``None``.
    """
    found = scenario_files(name, config_dirs)
    if len(found) < 2:
        return None
    ignored = ", ".join(str(p) for p in found[1:])
    return (
        f"scenario {name!r}: using {found[0]}; your {ignored} has the same name and is ignored "
        "(the shipped configs come first in the search order; rename your file to run it)"
    )


def check_scenario_schema(cfg):
    """Check ``cfg.scenario`` against the schema of its kind and return ``cfg`` with it typed.

    A node already typed by its schema (the usual case after a first check) is returned as it is.

    Raises:
        hydra.errors.ConfigCompositionException: a key the schema does not know, a value of the
            wrong type, or an unknown ``kind``; the message names the key (``scenario.<path>``).
    """
    from hydra.errors import ConfigCompositionException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    s = cfg.scenario
    if not isinstance(s, DictConfig):
        raise ConfigCompositionException(f"scenario: {s!r} is invalid; allowed: a scenario (a mapping of its fields)")
    if is_generated(s):
        if s.kind != "generated":
            raise ConfigCompositionException(
                f"scenario.kind: {s.kind!r} is invalid; allowed: generated (or no kind, for a written scenario)"
            )
        schema = GeneratedScenarioConfig
    else:
        schema = ScenarioConfig
    if OmegaConf.get_type(s) is schema:
        return cfg
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), s)
    except OmegaConfBaseException as exc:
        problem = schema_problem(OmegaConf.to_container(s, resolve=False), schema, "scenario")
        if problem:
            raise ConfigCompositionException(problem) from None
        key = f"scenario.{exc.full_key}" if getattr(exc, "full_key", None) else "scenario"
        msg = str(exc).splitlines()[0]
        raise ConfigCompositionException(f"{key}: {msg} (schema {schema.__name__})") from None
    out = cfg.copy()
    out.scenario = typed
    return out
