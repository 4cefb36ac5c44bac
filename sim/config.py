"""Configuration schema: scenarios (case data), model behaviour (shared parameters), run settings.

These dataclasses are Hydra structured configs registered in the ConfigStore as
``coercion_sim_schema``; every YAML file under ``configs/`` (and any scenario a user keeps in their
own folder) is merged into them, so a misspelt key or a wrong type fails when the config is
composed, with the key's path in the message. Domain rules that a type cannot express (unknown
countries, shares that do not sum to one, dates out of range, ...) are checked by
:func:`sim.scenario.validate_config` before a run starts.

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
    "ProducerConfig",
    "ProjectConfig",
    "UserSectorConfig",
    "SourcingConfig",
    "MeasureConfig",
    "RequirementChangeConfig",
    "StrategyConfig",
    "ScenarioConfig",
    "ModelConfig",
    "OutputConfig",
    "Config",
    "register_configs",
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


@dataclass
class ProjectConfig:
    """A potential capacity project: started when expected prices justify it, or on a set date
    when it is financed (``committed_start``), then delivering after its build lag."""

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
    country's purchases of one good. Shares sum to one."""

    destination: str = MISSING
    good: str = MISSING
    shares: dict[str, float] = field(default_factory=dict)


@dataclass
class MeasureConfig:
    """A trade measure in a schedule.

    ``type`` is one of ``export_quota``, ``export_ban``, ``export_duty``, ``import_ban``,
    ``import_tariff``, ``informal_restriction`` (see :mod:`sim.coercion`). ``imposer`` is the
    country that imposes it; ``targets`` are destinations (export measures) or origins (import
    measures), all countries when empty. ``end`` is the last day in force (null: to the end).
    """

    type: str = MISSING
    imposer: str = MISSING
    goods: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    start: str = MISSING
    end: str | None = None
    #: Ad-valorem rate for duties and tariffs (0.25 = 25%).
    rate: float = 0.0
    #: Share of the trade blocked for bans (1 = full ban; informal restrictions < 1).
    intensity: float = 1.0
    #: Export quota over the measure's period, quantity units (all listed goods together).
    quantity: float = 0.0
    #: Split of a multi-good quota over goods (shares summing to one); empty: by baseline exports.
    allocation: dict[str, float] = field(default_factory=dict)
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

    ``schedule`` applies the scenario's measures as dated. ``rules`` keeps each measure of the
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
    #: Where every calibrated number comes from: key -> citation (title, URL).
    sources: dict[str, str] = field(default_factory=dict)
    #: Historical observations for comparison figures: file name in ``sim/data`` (optional).
    history: str | None = None
    #: Most origins one purchase row can source from: its baseline origins, then the other
    #: candidate origins (producers and projects of the good) by capacity.
    max_sourcing_origins: int = 8


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
    #: Memory (months) of price expectations used by investors.
    expectation_memory_months: float = 12.0
    #: Months the expected price must stay above the hurdle before a private project starts.
    project_decision_months: int = 6
    #: Solver tolerance (relative excess demand) of the market-clearing kernel.
    clearing_tolerance: float = 1e-10


@dataclass
class OutputConfig:
    """What a run writes."""

    #: Variables recorded in timeseries.parquet: ``all`` or a list of variable names.
    variables: list[str] = field(default_factory=lambda: ["all"])
    #: Write flows.parquet (non-zero flows only).
    flows: bool = True
    #: Write the overview figures (PNG and PDF).
    figures: bool = True
    #: Show progress on stderr: ``auto`` (only when the run is long and stderr is a terminal),
    #: ``always`` or ``never``.
    progress: str = "auto"


@dataclass
class Config:
    """A run: scenario, model behaviour, seed and outputs."""

    scenario: ScenarioConfig = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: Root seed of the run's random numbers (firm heterogeneity).
    seed: int = 0
    #: Free-form tags copied to provenance.json (e.g. an experiment name).
    tags: dict[str, Any] = field(default_factory=dict)
    #: Replication number: when set, the run's random numbers come from child ``replication`` of
    #: ``numpy.random.SeedSequence(seed)`` (``seed`` is then the root seed of the replications), so
    #: ``seed=7 replication='range(0,20)'`` gives 20 independent, reproducible replications. Applied
    #: by the ``coercion-sim`` command, single runs and multiruns; ``sim.run`` takes a plain seed
    #: (pass :func:`sim.sweep.replication_seed` ``(seed, k)``).
    replication: int | None = None
    #: In a multirun, skip a job whose output directory already holds complete outputs
    #: (``provenance.json``, written last) of the same configuration; rerun it otherwise.
    resume: bool = False


def _config_dir() -> Path:
    env = os.environ.get("COERCION_SIM_CONFIG_DIR")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parent.parent / "configs").resolve()


#: Directory of the shipped configs (``configs/`` of the source tree; override with the
#: ``COERCION_SIM_CONFIG_DIR`` environment variable).
CONFIG_DIR = _config_dir()


def register_configs() -> None:
    """Register the schema in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="coercion_sim_schema", node=Config)
