"""The rules a configuration must follow, as pydantic (v2) models: scenarios, generated worlds, model
behaviour, policy levers and output settings, in one place.

Two layers check a configuration:

1. **Structure** (Hydra): the dataclasses in :mod:`sim.world.config` are Hydra's structured configs; when a
   config is composed they refuse an unknown key or a value of the wrong type. They stay the shape
   that Hydra composes (defaults lists, command-line overrides, sweeps).
2. **Values** (this module): :func:`validate_run` checks the composed configuration, resolved to plain
   data, against the pydantic models below: ranges and allowed values of single fields (a
   :func:`rule` on the field), and what ties fields together (shares summing to one, countries and
   goods the scenario defines, dates within the run) in model validators.

Every problem is raised as one :class:`ScenarioError` naming the full path of the field
(``scenario.goods[0].reference_price``), the bad value and what is allowed; the command line exits
with status 2 before any run.

Adding a field: add it to the dataclass in :mod:`sim.world.config` (with its default and a ``#:`` comment)
and to the model of the same block here, with the same default and a :func:`rule` for its range
(``Annotated[float, rule(lambda v: v >= 0, ">= 0 (US$)")]``); a check that involves other fields goes
into the block's ``model_validator`` (or :func:`_check_scenario` / :func:`_check_policy` when it needs
the whole scenario). ``tests/test_schema.py`` checks that the two agree on fields and defaults.

This module imports no other configuration module (:mod:`sim.world.config`, :mod:`sim.world.scenario`,
:mod:`sim.policy.levers`, :mod:`sim.world.generate` import it), so there is no import cycle among them.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from sim.coercion.measures import DOMESTIC_TYPES, MEASURE_TYPES
from sim.reporting.recording import VARIABLES
from sim.world.calendar import MonthlyCalendar, parse_date, parse_month

__all__ = [
    "ScenarioError",
    "rule",
    "validate_run",
    "validate_generator",
    "validate_run_settings",
    "check_finite",
    "RunConfig",
    "RunSettings",
    "Scenario",
    "GeneratedScenario",
    "Model",
    "Policy",
    "Output",
    "MAX_MAGNITUDE",
    "MAX_DEMAND_ELASTICITY",
    "MAX_ELASTICITY",
    "MAX_BASELINE_UTILISATION",
    "MAX_COUNTRIES",
    "GENERATED_MEASURES",
    "RECORDABLE_VARIABLES",
]

#: Variables :mod:`sim.reporting.recording` can write to timeseries.parquet.
RECORDABLE_VARIABLES = tuple(VARIABLES)
#: Largest magnitude of any number in a configuration: beyond it quantities x prices overflow the
#: model's arithmetic (world GDP is about 1e14 US$ a year; the largest mineral flows about 1e10 t).
MAX_MAGNITUDE = 1e15
#: Highest short-run demand (thrift) elasticity of a good: the shipped scenarios use 0.1 to 0.5, and
#: far above 10 demand at prices off the reference overflows (found by fuzzing the input).
MAX_DEMAND_ELASTICITY = 10.0
#: Highest Armington or supply elasticity: prices raised to such powers stay representable.
MAX_ELASTICITY = 50.0
#: Highest baseline utilisation an origin may run at (demand on it / its capacity).
MAX_BASELINE_UTILISATION = 0.98
#: Most countries of a generated world (three-letter synthetic codes AAA..ZZZ).
MAX_COUNTRIES = 26**3
#: Measures a generated world's coercer can take.
GENERATED_MEASURES = ("export_quota", "export_ban", "none")

_COUNTRY_CODE = re.compile(r"^(?:[A-Z]{3}|EU27)$")
_GOOD_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class ScenarioError(ValueError):
    """Invalid scenario or model setting; the message names the field, the value and what is allowed."""


# ---------------------------------------------------------------------------- helpers
def _fail(path: str, value: Any, allowed: str) -> None:
    raise ScenarioError(f"{path}: {value!r} is invalid; allowed: {allowed}")


def _check(cond: bool, path: str, value: Any, allowed: str) -> None:
    if not cond:
        _fail(path, value, allowed)


def _known(value: str, known: Iterable[str], path: str, what: str) -> None:
    known = list(known)
    if value not in known:
        raise ScenarioError(f"{path}: unknown {what} {value!r}; the scenario defines: {', '.join(known)}")


def _date(value: str, path: str, *, end: bool = False):
    try:
        return parse_date(value, field=path, end_of_period=end)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def rule(ok: Callable[[Any], bool], allowed: str) -> AfterValidator:
    """A check of one field's value: ``ok(value)`` must hold, else the error says ``allowed``."""

    def check(value):
        if not ok(value):
            raise PydanticCustomError("invalid", "{allowed}", {"allowed": allowed})
        return value

    return AfterValidator(check)


def _ge(low: float, allowed: str | None = None) -> AfterValidator:
    return rule(lambda v: v >= low, allowed or f">= {low:g}")


def _gt(low: float, allowed: str | None = None) -> AfterValidator:
    return rule(lambda v: v > low, allowed or f"> {low:g}")


def _within(low: float, high: float, allowed: str) -> AfterValidator:
    return rule(lambda v: low <= v <= high, allowed)


def _one_of(options: Iterable[str], allowed: str | None = None) -> AfterValidator:
    options = tuple(options)
    return rule(lambda v: v in options, allowed or ", ".join(options))


Share = Annotated[float, _within(0, 1, "a share in [0, 1]")]
NonNegative = Annotated[float, _ge(0)]
NonNegativeInt = Annotated[int, _ge(0)]


#: The scenario model :func:`validate_run` is reusing, whose relations passed when it was validated.
_reused_scenario: ContextVar[Any] = ContextVar("reused_scenario", default=None)


class _Schema(BaseModel):
    """Base of the models: fields a model does not list are left to the block's own checks (and to
    Hydra's structure, which already refuses unknown keys).
    """

    model_config = ConfigDict(extra="ignore", validate_default=False, revalidate_instances="never")


# ---------------------------------------------------------------------------- scenario
class Country(_Schema):
    """``scenario.countries[i]``."""

    code: Annotated[
        str,
        rule(
            lambda v: bool(_COUNTRY_CODE.match(v)), "an ISO 3166 alpha-3 code in capitals (CHN, JPN, USA) or EU27/ROW"
        ),
    ]
    name: str = ""
    coalitions: list[str] = []


class Byproduct(_Schema):
    """``scenario.goods[i].byproduct_of``."""

    good: str
    recovery: Annotated[float, _gt(0, "> 0 (units of the by-product per unit of the host's output)")]


class Good(_Schema):
    """``scenario.goods[i]``."""

    id: Annotated[str, rule(lambda v: bool(_GOOD_ID.match(v)), "lower-case letters, digits and _")]
    name: str = ""
    unit: str = "t"
    price_unit: str = "USD/t"
    reference_price: Annotated[float, _gt(0)]
    demand_elasticity: Annotated[float, _within(0, MAX_DEMAND_ELASTICITY, f">= 0 and <= {MAX_DEMAND_ELASTICITY:g}")]
    armington_elasticity: Annotated[float, rule(lambda v: 1 < v <= MAX_ELASTICITY, f"> 1 and <= {MAX_ELASTICITY:g}")]
    supply_elasticity: Annotated[float, rule(lambda v: 0 < v <= MAX_ELASTICITY, f"> 0 and <= {MAX_ELASTICITY:g}")] = 1.0
    price_cap: Annotated[float, _gt(1, "> 1 (a multiple of the reference price)")] = 40.0
    price_floor: Annotated[float, rule(lambda v: 0 < v < 1, "in (0, 1)")] = 0.01
    transport_cost_share: NonNegative = 0.03
    inputs: dict[
        str, Annotated[float, _gt(0, "> 0 (units of the input per unit of output; leave out inputs not used)")]
    ] = {}
    input_inventory_months: Annotated[float, _ge(0, ">= 0 (months of input use held at baseline)")] = 2.0
    byproduct_of: Byproduct | None = None


class Producer(_Schema):
    """``scenario.producers[i]``."""

    name: str = ""
    country: str
    good: str
    capacity: Annotated[float, _ge(0, ">= 0 (quantity per year)")]
    unit_cost: float
    supply_elasticity: (
        Annotated[float, rule(lambda v: 0 < v <= MAX_ELASTICITY, f"> 0 and <= {MAX_ELASTICITY:g}")] | None
    ) = None
    producer_class: str = ""
    recycled: bool = False


class Project(_Schema):
    """``scenario.projects[i]``."""

    name: str
    country: str
    good: str
    capacity: Annotated[float, _ge(0, ">= 0 (quantity per year)")]
    unit_cost: NonNegative
    build_lag_months: NonNegativeInt
    ramp_up_months: NonNegativeInt = 0
    capex: NonNegative = 0.0
    hurdle: Annotated[float, _gt(0)] = 1.5
    committed_start: str | None = None
    offtake: dict[str, Share] = {}
    earliest_start: str | None = None


class UserSector(_Schema):
    """``scenario.user_sectors[i]``."""

    country: str
    sector: str
    n_firms: Annotated[int, _ge(1)] = 10
    value_added: Annotated[float, _gt(0, "> 0 (US$ per year)")]
    use: dict[str, Annotated[float, _ge(0, ">= 0 (quantity per year)")]] = {}
    inventory_months: NonNegative = 2.0
    size_dispersion: NonNegative = 0.5
    inventory_dispersion: NonNegative = 0.5


class Sourcing(_Schema):
    """``scenario.sourcing[i]``."""

    destination: str
    good: str
    shares: dict[str, NonNegative] = {}


class Measure(_Schema):
    """``scenario.measures[i]`` (which fields a type takes is checked with the scenario)."""

    type: Annotated[str, _one_of(MEASURE_TYPES)]
    imposer: str
    goods: list[str] = []
    targets: list[str] = []
    start: str
    end: str | None = None
    rate: Annotated[float, _ge(0, ">= 0 (ad valorem, 0.25 = 25%)")] = 0.0
    intensity: float = 1.0
    quantity: float = 0.0
    allocation: dict[str, NonNegative] = {}
    review_lag_months: float = 0.0
    approval_share: float = 1.0
    approval_by_destination: dict[str, float] = {}
    approval_by_sector: dict[str, float] = {}
    exempt_destinations: list[str] = []
    exempt_sectors: list[str] = []
    producers: list[str] = []
    producer_class: str = ""
    ramp_months: int = 0
    per_unit: float = 0.0
    budget: float = 0.0
    label: str = ""
    source: str = ""


class RequirementChange(_Schema):
    """``scenario.requirement_changes[i]``."""

    country: str
    sector: str
    good: str
    change: Annotated[float, _gt(-1, "> -1 (a relative change)")]
    start: str
    ramp_months: NonNegativeInt = 12
    source: str = ""


class Strategy(_Schema):
    """``scenario.strategy``."""

    type: Annotated[str, _one_of(("schedule", "rules", "game"))] = "schedule"
    coercer_cost_tolerance: Annotated[float, _gt(0)] = 0.5
    target_pain_threshold: Annotated[float, _gt(0)] = 0.05
    ruling_delay_months: Annotated[int, _ge(0, ">= 0 or null")] | None = None


class Assumption(_Schema):
    """``scenario.assumptions[i]`` (its path and range are checked by :mod:`sim.world.assumptions`)."""

    path: str
    low: float
    high: float
    reason: str = ""


class Scenario(_Schema):
    """``scenario``: a written scenario (or a generated world once expanded)."""

    name: str
    description: str = ""
    start: str
    end: str
    coercer: str
    targets: list[str] = []
    countries: list[Country] = []
    goods: list[Good] = []
    producers: list[Producer] = []
    projects: list[Project] = []
    user_sectors: list[UserSector] = []
    sourcing: list[Sourcing] = []
    measures: list[Measure] = []
    requirement_changes: list[RequirementChange] = []
    strategy: Strategy = Strategy()
    #: The strategic layer's block (``strategy.type: game``): its rules need the model's own
    #: quantities, so :func:`sim.coercion.strategy.validate_game` checks it, after these models.
    game: dict[str, Any] | None = None
    sources: dict[str, str] = {}
    assumptions: list[Assumption] = []
    history: str | None = None
    max_sourcing_origins: Annotated[int, _ge(1)] = 8
    generated_from: dict[str, Any] = {}

    @model_validator(mode="after")
    def _relations(self) -> Scenario:
        # Pydantic runs an "after" validator on an instance it does not revalidate too; the scenario
        # validate_run reuses (read-only runs) has passed this already.
        if _reused_scenario.get() is not self:
            _check_scenario(self)
        return self


# ---------------------------------------------------------------------------- generated worlds
class GeneratedScenario(_Schema):
    """``scenario`` of a generated world (``kind: generated``): the generator's parameters."""

    kind: str = "generated"
    name: str = "generated"
    description: str = ""
    countries: Annotated[
        int, _within(2, MAX_COUNTRIES, f"an integer from 2 (a coercer and a partner) to {MAX_COUNTRIES}")
    ] = 20
    goods: Annotated[int, _ge(1, "an integer >= 1")] = 5
    firms: int = 400
    producers: int | None = None
    start: str = "2020-01"
    months: Annotated[int, _ge(1, "an integer >= 1")] = 120
    end: str | None = None
    seed: Annotated[int, _ge(0, "null (derived from the run's seed) or an integer >= 0")] | None = None
    production_concentration: Annotated[float, _ge(0, ">= 0 (0: any country as likely)")] = 1.3
    producer_share_concentration: Annotated[float, _gt(0)] = 0.5
    sourcing_dispersion: NonNegative = 0.5
    max_sourcing_origins: Annotated[int, _ge(1, "an integer >= 1")] = 8
    max_goods_per_country: Annotated[int, _ge(1, "an integer >= 1")] = 3
    capacity_headroom: Annotated[float, _ge(1, ">= 1 (world capacity / world use)")] = 1.35
    measure: Annotated[str, _one_of(GENERATED_MEASURES)] = "export_quota"
    measure_share: float = 0.5
    measure_start_month: int | None = None
    measure_months: Annotated[int, _ge(1, "an integer >= 1")] = 24
    n_targets: Annotated[int, _ge(0, "an integer >= 0")] = 3

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        # The parameters are kept in generated_from, so the rule for every number applies to them.
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, float):
                    _check(math.isfinite(value), f"scenario.{key}", value, "a finite number")
                    _check(
                        abs(value) <= MAX_MAGNITUDE,
                        f"scenario.{key}",
                        value,
                        f"a number of magnitude at most {MAX_MAGNITUDE:.0e}",
                    )
        return data

    def run_months(self) -> int:
        """Length of the run in months: ``months``, or from ``start`` to ``end`` when ``end`` is set."""
        if self.end is None:
            return int(self.months)
        y0, m0 = (int(x) for x in str(self.start).split("-")[:2])
        y1, m1 = (int(x) for x in str(self.end).split("-")[:2])
        return (y1 - y0) * 12 + (m1 - m0) + 1

    @model_validator(mode="after")
    def _relations(self) -> GeneratedScenario:
        def bad(key: str, allowed: str) -> None:
            _fail(f"scenario.{key}", getattr(self, key), allowed)

        if self.firms < self.countries:
            bad("firms", f"an integer >= scenario.countries ({self.countries}): one firm per country at least")
        if self.producers is not None and self.producers < self.goods:
            bad("producers", f"null or an integer >= scenario.goods ({self.goods}): a producer per good at least")
        for key in ("start", "end"):
            if getattr(self, key) is not None:
                try:
                    parse_month(getattr(self, key), field=f"scenario.{key}")
                except ValueError as exc:
                    raise ScenarioError(str(exc)) from None
        months = self.run_months()
        if self.end is not None and months < 1:
            bad("end", f"a month not before scenario.start ({self.start})")
        y0, m0 = (int(x) for x in str(self.start).split("-")[:2])
        last = (9999 - y0) * 12 + (12 - m0) + 1  # the run ends by 9999-12, the last month a date can name
        if self.end is None and months > last:
            bad("months", f"a run ending by 9999-12: at most {last} months from {self.start}")
        if self.measure == "export_ban":
            if not 0 < self.measure_share <= 1:
                bad("measure_share", "in (0, 1] for an export ban (its intensity)")
        elif not 0 <= self.measure_share <= 1:
            bad("measure_share", "in [0, 1] (the quota as a share of baseline exports)")
        if self.measure_start_month is not None and not 0 <= self.measure_start_month < months:
            bad("measure_start_month", f"null or a month index from 0 to {months - 1}")
        return self


# ---------------------------------------------------------------------------- model behaviour
_Positive = Annotated[float, _gt(0)]


class Model(_Schema):
    """``model``: behavioural parameters shared by every scenario."""

    inventory_adjustment_months: _Positive = 6.0
    deferral_elasticity: NonNegative = 0.05
    deferral_max_cover_months: NonNegative = 6.0
    precaution: NonNegative = 2.0
    precaution_max_multiple: Annotated[float, _ge(1)] = 2.5
    scarcity_memory_months: _Positive = 3.0
    sourcing_adjustment_rate: Annotated[float, _within(0, 1, "in [0, 1] per month")] = 0.03
    risk_memory_months: _Positive = 60.0
    risk_aversion: NonNegative = 3.0
    sourcing_concentration: _Positive = 200.0
    substitution_rate: NonNegative = 0.003
    substitution_floor: Annotated[float, rule(lambda v: 0 < v <= 1, "in (0, 1]")] = 0.6
    long_run_thrift: NonNegative = 1.0
    expectation_memory_months: _Positive = 12.0
    project_decision_months: Annotated[int, _ge(1)] = 6
    clearing_tolerance: _Positive = 1e-10


# ---------------------------------------------------------------------------- policy levers
_TargetShare = Annotated[float, _within(0, 1, "a share of the target in [0, 1]")]
_RatePerMonth = Annotated[float, _within(0, 1, "a share per month in [0, 1]")]
_Months = Annotated[int, _ge(0)]
_CostRatio = Annotated[float, _gt(0, "> 0 (multiple of the reference price)")]


class Stockpile(_Schema):
    """``policy.stockpile``."""

    countries: list[str] = []
    goods: list[str] = []
    months: Annotated[float, _ge(0, ">= 0 (months of baseline use)")] = 3.0
    initial_fill: _TargetShare = 1.0
    cost_initial_fill: bool = True
    start: str | None = None
    release_on: Annotated[str, _one_of(("shortage", "price", "either"), "shortage, price or either")] = "either"
    release_price_ratio: float = 2.0
    max_release_rate: Annotated[float, rule(lambda v: 0 < v <= 1, "a share of the target per month in (0, 1]")] = 0.25
    refill_below: _TargetShare = 0.9
    refill_price_ratio: Annotated[float, _gt(0)] = 1.2
    refill_rate: Annotated[float, _within(0, 1, "a share of the target per month in [0, 1]")] = 0.05
    holding_cost: Annotated[float, _ge(0, ">= 0 (share of value per year)")] = 0.05

    @model_validator(mode="after")
    def _triggers(self) -> Stockpile:
        _check(
            self.release_price_ratio > self.refill_price_ratio,
            "policy.stockpile.release_price_ratio",
            self.release_price_ratio,
            f"above refill_price_ratio ({self.refill_price_ratio}): a reserve that releases below its refill "
            "trigger would buy and sell at the same prices",
        )
        return self


class Diversification(_Schema):
    """``policy.diversification`` (its ``speed`` is checked with the model's adjustment rate)."""

    countries: list[str] = []
    goods: list[str] = []
    max_share: Annotated[float, rule(lambda v: 0 < v <= 1, "a share in (0, 1]")] = 1.0
    months: _Months = 60
    speed: float = 1.0
    start: str | None = None
    switching_cost: NonNegative = 0.25


class InventoryIncentive(_Schema):
    """``policy.inventory_incentive``."""

    countries: list[str] = []
    goods: list[str] = []
    extra_months: Annotated[float, _ge(0, ">= 0 (months of use)")] = 1.0
    credit_rate: Annotated[float, _ge(0, ">= 0 (share of value per year)")] = 0.1
    start: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _period(self) -> InventoryIncentive:
        if self.start is not None and self.end is not None:
            try:
                end, start = parse_date(self.end, field="end"), parse_date(self.start, field="start")
            except ValueError:
                return self  # a date that does not parse is named with the scenario (_check_policy)
            _check(end >= start, "policy.inventory_incentive.end", self.end, f"a date not before start ({self.start})")
        return self


class FinancedProject(_Schema):
    """``policy.friendshoring.projects[i]``."""

    project: str | None = None
    country: str | None = None
    good: str | None = None
    capacity_share: Annotated[float, _ge(0, ">= 0 (share of baseline use; 0: no new project)")] = 0.1
    unit_cost_ratio: _CostRatio = 1.2
    build_lag_months: _Months = 24
    ramp_up_months: _Months = 24
    capex_ratio: NonNegative = 3.0
    public_finance: Annotated[float, _ge(0, ">= 0 (US$)")] | None = None
    public_share: Share = 1.0
    offtake: Share = 0.5


class Friendshoring(_Schema):
    """``policy.friendshoring``."""

    countries: list[str] = []
    goods: list[str] = []
    start: str | None = None
    projects: Annotated[list[FinancedProject], rule(bool, "at least one project")] = [FinancedProject()]


class CollectiveResponse(_Schema):
    """``policy.collective_response``."""

    coalition: str = "G7"
    goods: list[str] = []
    buy_target_exports: bool = True
    purchase_shift_rate: _RatePerMonth = 0.2
    max_target_share: Share = 0.5
    share_stockpiles: bool = True
    share_rate: _RatePerMonth = 0.25
    counter_tariff: Annotated[float, _ge(0, ">= 0 (ad valorem)")] = 0.0
    shared_stock_months: Annotated[float, _ge(0, ">= 0 (months of each member's baseline use)")] = 0.0
    shared_stock_holding_cost: Annotated[float, _ge(0, ">= 0 (share of value per year)")] = 0.05
    counter_restriction: Annotated[
        float,
        _within(
            0,
            1,
            "a commitment strength in [0, 1] (share of members' exports of leverage goods to the coercer withheld)",
        ),
    ] = 0.0
    dependence_threshold: Annotated[
        float,
        rule(
            lambda v: 0 < v <= 1,
            "a share in (0, 1] (members' share of the coercer's imports that makes a good a leverage good)",
        ),
    ] = 0.7


class SubstitutionProgramme(_Schema):
    """``policy.substitution.programmes[i]``."""

    countries: list[str] = []
    sectors: list[str] = []
    goods: list[str] = []
    change: Annotated[
        float, rule(lambda v: -1 < v <= 0, "a relative change in (-1, 0] (less of the good per unit of output)")
    ] = -0.1
    start: str | None = None
    lag_months: _Months = 6
    spend_months: Annotated[int, _ge(1)] = 24
    budget: Annotated[float, _ge(0, ">= 0 (US$)")] = 0.0


class Substitution(_Schema):
    """``policy.substitution``."""

    programmes: list[SubstitutionProgramme] = [SubstitutionProgramme()]


_RecoveryShare = Annotated[float, rule(lambda v: 0 <= v < 1, "a share of baseline use in [0, 1)")]


class Recycling(_Schema):
    """``policy.recycling``."""

    countries: list[str] = []
    goods: list[str] = []
    recovery_share: _RecoveryShare = 0.05
    recovery_share_by_good: dict[str, _RecoveryShare] = {}
    unit_cost_ratio: _CostRatio = 1.5
    start: str | None = None
    build_lag_months: _Months = 12
    ramp_up_months: _Months = 12
    capex_ratio: NonNegative = 1.0
    public_share: Share = 1.0


class Policy(_Schema):
    """``policy``: the levers of a run (null: off)."""

    stockpile: Stockpile | None = None
    diversification: Diversification | None = None
    inventory_incentive: InventoryIncentive | None = None
    friendshoring: Friendshoring | None = None
    collective_response: CollectiveResponse | None = None
    substitution: Substitution | None = None
    recycling: Recycling | None = None


# ---------------------------------------------------------------------------- outputs and the run
class Output(_Schema):
    """``output``: what a run writes."""

    variables: list[
        Annotated[str, rule(lambda v: v == "all" or v in RECORDABLE_VARIABLES, "all, " + ", ".join(VARIABLES))]
    ] = ["all"]
    flows: bool = True
    figures: Annotated[
        Any,
        rule(
            lambda v: isinstance(v, bool) or (isinstance(v, str) and v.lower() in ("auto", "true", "false")),
            "auto (a single run draws figures, a sweep job does not), true or false",
        ),
    ] = "auto"
    progress: Annotated[str, _one_of(("auto", "always", "never"))] = "auto"


class RunSettings(_Schema):
    """The run's random streams: NumPy seeds are non-negative integers (:mod:`sim.experiments.sweep`)."""

    seed: Annotated[int, _ge(0, "an integer >= 0")] = 0
    replication: Annotated[int, _ge(0, "an integer >= 0, or null")] | None = None


class RunConfig(RunSettings):
    """A composed configuration of a run with a written (or expanded) scenario."""

    scenario: Scenario
    model: Model = Model()
    policy: Policy | None = Policy()
    parameters: dict[str, Any] = {}
    output: Output = Output()
    tags: dict[str, Any] = {}
    resume: bool = False

    @model_validator(mode="after")
    def _levers(self) -> RunConfig:
        if self.policy is not None:
            _check_policy(self)
        return self


# ---------------------------------------------------------------------------- entry points
def check_finite(node: Any, path: str = "") -> None:
    """Every number in the configuration is finite and at most :data:`MAX_MAGNITUDE` in magnitude: an
    ``inf``, ``nan`` or ``1e300`` typed into any field (a capacity, an elasticity, a model parameter, a
    lever setting) is named here, before the run, instead of surfacing as a NaN price or a solver error
    months into it.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            check_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_finite(value, f"{path}[{i}]")
    elif isinstance(node, float):
        _check(math.isfinite(node), path, node, "a finite number")
        _check(abs(node) <= MAX_MAGNITUDE, path, node, f"a number of magnitude at most {MAX_MAGNITUDE:.0e}")


def _path(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _message(error: dict, prefix: str) -> str:
    """One pydantic error as ``<full path>: <value> is invalid; allowed: <what is>``."""
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, ScenarioError):
        return str(cause)
    path = _path(prefix, error["loc"])
    if error["type"] == "invalid":
        return f"{path}: {error['input']!r} is invalid; allowed: {ctx['allowed']}"
    if error["type"] == "missing":
        return f"{path}: missing; allowed: a value (a required field)"
    return f"{path}: {error['input']!r} is invalid; allowed: {error['msg']}"


def _validate[T: BaseModel](model: type[T], data: Any, prefix: str = "") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_message(exc.errors(include_url=False)[0], prefix)) from None


#: Scenarios of read-only runs that passed :func:`validate_run`, by identity: the scenario as given (so
#: that its id is not reused) and its validated model.
_scenarios_passed: dict[int, tuple[Any, Scenario]] = {}


def validate_run(data: dict, *, finite_checked: bool = False, read_only: bool = False) -> RunConfig:
    """Check a run's configuration (plain data: ``OmegaConf.to_container(cfg, resolve=True)``, with a
    written or expanded scenario) and return it as a :class:`RunConfig`. ``finite_checked``: the caller
    has already run :func:`check_finite` on it.

    ``read_only``: ``data`` and its scenario are never written (a :class:`sim.world.plain.PlainConfig`,
    whose runs derived from one base share every section they did not change). A scenario that passed
    before, the same object, is then not validated again: its model from then is given to
    :class:`RunConfig` (pydantic takes a model instance as it is), and every other field, and what ties
    the levers to the scenario, is checked as usual. In a design that changes model settings only, this
    skips the scenario's schema and relations, most of the validation of a run (1.7 ms of
    ``rare_earth_2010``'s, down to 0.3). A run that changes a scenario value has a new scenario: the
    sections it shares with one that passed are taken as validated (:func:`_with_passed_sections`), the
    changed ones and the scenario's relations are checked (1.6 ms down to 1.0).

    Raises:
        ScenarioError: the first problem, naming the full path, the value and what is allowed.
    """
    if not finite_checked:
        check_finite(data)
    if not read_only:
        return _validate(RunConfig, data)
    scenario = data.get("scenario")
    passed = _scenarios_passed.get(id(scenario))
    if passed is not None and passed[0] is scenario:
        _scenarios_passed[id(scenario)] = _scenarios_passed.pop(id(scenario))  # the most recently used last
        token = _reused_scenario.set(passed[1])
        try:
            return _validate(RunConfig, {**data, "scenario": passed[1]})
        finally:
            _reused_scenario.reset(token)
    out = _validate(RunConfig, _with_passed_sections(data, scenario))
    if len(_scenarios_passed) >= 4:  # a few at a time, the least recently used dropped (more, kept alive, slow the GC)
        _scenarios_passed.pop(next(iter(_scenarios_passed)))
    _scenarios_passed[id(scenario)] = (scenario, out.scenario)
    return out


def _with_passed_sections(data: Mapping, scenario: Any) -> Mapping:
    """``data`` with each section of its (new) scenario that is the same object as in the scenario of an
    earlier run that passed (the most recent first) replaced by that run's validated section.

    A run that changes one scenario value (a calibration's Armington elasticity) gets a new scenario
    whose other sections (countries, producers, measures, history...) are shared with its base
    (:func:`sim.world.plain.with_values`); pydantic takes their validated models as they are, so only
    the changed sections are checked field by field, and the scenario's relations are checked in full.
    Like the reuse of a whole scenario, this relies on the runs' configurations being read-only: a
    :class:`sim.world.plain.PlainConfig` refuses writes to its mappings, and building and running the
    model leave its lists as they were (``tests/test_fast_path.py`` checks both).
    """
    if not isinstance(scenario, Mapping):
        return data
    for raw, model in reversed(_scenarios_passed.values()):
        if not isinstance(raw, Mapping):
            continue
        reused = {
            key: getattr(model, key)
            for key, value in scenario.items()
            if isinstance(value, list) and value and key in Scenario.model_fields and raw.get(key) is value
        }
        if reused:
            return {**data, "scenario": {**scenario, **reused}}
    return data


def validate_run_settings(data: dict) -> RunSettings:
    """Check the seed and replication of a run (a generated world's, before it is expanded)."""
    return _validate(RunSettings, data)


def validate_generator(params: dict) -> GeneratedScenario:
    """Check a generated world's parameters (the ``scenario`` node as plain data).

    Raises:
        ScenarioError: naming ``scenario.<parameter>``, the value and what is allowed.
    """
    return _validate(GeneratedScenario, params, "scenario")


# ---------------------------------------------------------------------------- relations in a scenario
def _check_scenario(s: Scenario) -> None:
    """What ties a scenario's fields together: countries and goods it defines, dates within the run,
    shares summing to one, which fields each measure type takes, value chains.
    """
    try:
        start = parse_month(s.start, field="scenario.start")
        end = parse_month(s.end, field="scenario.end")
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    _check(end >= start, "scenario.end", s.end, f"a month not before scenario.start ({s.start})")
    cal = MonthlyCalendar(start, end)
    first, last = cal.first_day(0), cal.last_day(cal.n_steps - 1)

    codes = [c.code for c in s.countries]
    _check(len(codes) > 0, "scenario.countries", [], "at least one country")
    counts = Counter(codes)
    for i, code in enumerate(codes):
        _check(counts[code] == 1, f"scenario.countries[{i}].code", code, "each country once")
    goods = [g.id for g in s.goods]
    _check(len(goods) > 0, "scenario.goods", [], "at least one good")
    counts = Counter(goods)
    for i, g in enumerate(goods):
        _check(counts[g] == 1, f"scenario.goods[{i}].id", g, "each good once")
    ref = {g.id: g.reference_price for g in s.goods}

    _known(s.coercer, codes, "scenario.coercer", "country")
    for i, t in enumerate(s.targets):
        _known(t, codes, f"scenario.targets[{i}]", "country")

    producing: set[tuple[str, str]] = set()
    for i, pr in enumerate(s.producers):
        p = f"scenario.producers[{i}]"
        _known(pr.country, codes, f"{p}.country", "country")
        _known(pr.good, goods, f"{p}.good", "good")
        _check(
            0 <= pr.unit_cost < ref[pr.good],
            f"{p}.unit_cost",
            pr.unit_cost,
            f">= 0 and below the good's reference price ({ref[pr.good]})",
        )
        if pr.capacity > 0:
            producing.add((pr.country, pr.good))
    names = [pj.name for pj in s.projects]
    for i, pj in enumerate(s.projects):
        p = f"scenario.projects[{i}]"
        _check(names.count(pj.name) == 1, f"{p}.name", pj.name, "each project name once")
        _known(pj.country, codes, f"{p}.country", "country")
        _known(pj.good, goods, f"{p}.good", "good")
        for key in ("committed_start", "earliest_start"):
            value = getattr(pj, key)
            if value is not None:
                d = _date(value, f"{p}.{key}")
                _check(d <= last, f"{p}.{key}", value, f"a date up to the scenario end ({last})")
        for c in pj.offtake:
            _known(c, codes, f"{p}.offtake", "country")
        _check(sum(pj.offtake.values()) <= 1 + 1e-9, f"{p}.offtake", dict(pj.offtake), "shares summing to at most 1")

    sectors = [(u.country, u.sector) for u in s.user_sectors]
    _check(len(sectors) > 0, "scenario.user_sectors", [], "at least one user sector (the firms that use the goods)")
    use_pairs: set[tuple[str, str]] = set()
    for i, u in enumerate(s.user_sectors):
        p = f"scenario.user_sectors[{i}]"
        _known(u.country, codes, f"{p}.country", "country")
        _check(sectors.count((u.country, u.sector)) == 1, f"{p}.sector", u.sector, "each (country, sector) once")
        for g, q in u.use.items():
            _known(g, goods, f"{p}.use", "good")
            if q > 0:
                use_pairs.add((u.country, g))
        _check(
            any(q > 0 for q in u.use.values()), f"{p}.use", dict(u.use), "at least one good with a positive annual use"
        )
    sourced: set[tuple[str, str]] = set()
    for i, sc in enumerate(s.sourcing):
        p = f"scenario.sourcing[{i}]"
        _known(sc.destination, codes, f"{p}.destination", "country")
        _known(sc.good, goods, f"{p}.good", "good")
        _check(
            (sc.destination, sc.good) not in sourced,
            p,
            f"{sc.destination}/{sc.good}",
            "one entry per (destination, good)",
        )
        sourced.add((sc.destination, sc.good))
        total = 0.0
        for o, share in sc.shares.items():
            _known(o, codes, f"{p}.shares", "country")
            if share > 0 and (o, sc.good) not in producing:
                raise ScenarioError(
                    f"{p}.shares.{o}: {share!r} is invalid; {o} has no producer of {sc.good} with capacity at "
                    f"the start, so it cannot be a baseline origin (add a producer or set the share to 0)"
                )
            total += share
        if abs(total - 1.0) > 1e-6:
            raise ScenarioError(f"{p}.shares: {dict(sc.shares)} sums to {total:.6g}; the shares must sum to 1")
    for country, good in sorted(use_pairs):
        if (country, good) not in sourced and (country, good) not in producing:
            raise ScenarioError(
                f"scenario.sourcing: no entry for destination {country}, good {good}, which its user sectors use; "
                f"add one with the baseline shares of each origin"
            )
    _check_value_chains(s, goods, producing, sourced)

    for i, m in enumerate(s.measures):
        p = f"scenario.measures[{i}]"
        _known(m.imposer, codes, f"{p}.imposer", "country")
        _check(len(m.goods) > 0, f"{p}.goods", list(m.goods), "at least one good")
        for g in m.goods:
            _known(g, goods, f"{p}.goods", "good")
        for t in m.targets:
            _known(t, codes, f"{p}.targets", "country")
            _check(t != m.imposer, f"{p}.targets", t, f"partner countries other than the imposer {m.imposer}")
        d0 = _date(m.start, f"{p}.start")
        _check(d0 <= last, f"{p}.start", m.start, f"a date up to the scenario end ({last})")
        if m.end is not None:
            d1 = _date(m.end, f"{p}.end", end=True)
            _check(d1 >= d0, f"{p}.end", m.end, f"a date not before the measure's start ({m.start})")
            _check(d1 >= first, f"{p}.end", m.end, f"a date not before the scenario start ({first})")
        if m.type in ("crackdown", "production_halt"):
            _check(0 <= m.intensity <= 1, f"{p}.intensity", m.intensity, "in [0, 1] (share of the capacity removed)")
        else:
            _check(0 < m.intensity <= 1, f"{p}.intensity", m.intensity, "in (0, 1] (1 = full ban)")
        _check(
            m.type != "informal_restriction" or m.intensity < 1,
            f"{p}.intensity",
            m.intensity,
            "in (0, 1) for an informal restriction (its held orders are rationed; a complete stop buyers "
            "cannot plan around is an export_licence with approval_share 0, a declared one an export_ban)",
        )
        if m.type in DOMESTIC_TYPES:
            _check_domestic(m, p, s)
        else:
            for key in ("producers", "producer_class", "ramp_months", "per_unit", "budget"):
                value = getattr(m, key)
                _check(
                    not value,
                    f"{p}.{key}",
                    value,
                    f"left out: only domestic instruments ({', '.join(DOMESTIC_TYPES)}) take it",
                )
        if m.type == "export_quota":
            _check(m.quantity >= 0, f"{p}.quantity", m.quantity, ">= 0 (quantity over the period)")
            if m.end is None:
                raise ScenarioError(f"{p}.end: None is invalid; an export quota needs the end of its period")
        _check_licence(m, p, codes, sectors)
        if m.allocation:
            for g in m.allocation:
                _check(g in m.goods, f"{p}.allocation", g, f"one of the measure's goods {list(m.goods)}")
            tot = sum(m.allocation.values())
            if abs(tot - 1) > 1e-6:
                raise ScenarioError(f"{p}.allocation: {dict(m.allocation)} sums to {tot:.6g}; the shares must sum to 1")

    for i, rc in enumerate(s.requirement_changes):
        p = f"scenario.requirement_changes[{i}]"
        _known(rc.country, codes, f"{p}.country", "country")
        _check(
            (rc.country, rc.sector) in sectors, f"{p}.sector", rc.sector, f"a sector of {rc.country} in user_sectors"
        )
        _known(rc.good, goods, f"{p}.good", "good")
        d0 = _date(rc.start, f"{p}.start")
        _check(d0 <= last, f"{p}.start", rc.start, f"a date up to the scenario end ({last})")

    if s.history is not None:
        _check_history(str(s.history))

    for i, sc in enumerate(s.sourcing):
        n = sum(1 for v in sc.shares.values() if v > 0)
        _check(
            n <= s.max_sourcing_origins,
            f"scenario.sourcing[{i}].shares",
            dict(sc.shares),
            f"at most scenario.max_sourcing_origins ({s.max_sourcing_origins}) origins with a positive share",
        )
    if s.strategy.type == "rules":
        _check(
            len(s.targets) > 0, "scenario.targets", list(s.targets), "at least one target for the rule-based strategy"
        )


def _check_history(name: str) -> None:
    """``scenario.history``: a readable CSV of observations with the expected columns, found as a
    path or in ``sim/world/data``, so a mistyped name fails before the run, not when the figure is drawn.
    """
    from sim.world.data import DATA_DIR, HISTORY_COLUMNS, resolve_history

    path = resolve_history(name)
    shipped = ", ".join(sorted(p.name for p in DATA_DIR.glob("*.csv")))
    _check(
        path is not None,
        "scenario.history",
        name,
        f"a CSV file path (relative to the working directory) or a file in sim/world/data ({shipped}), or null",
    )
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: a byte-order mark as Excel writes it
            header = [c.strip() for c in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail("scenario.history", name, f"a readable UTF-8 CSV file ({type(exc).__name__}: {exc})")
    missing = [c for c in HISTORY_COLUMNS if c not in header]
    _check(
        not missing,
        "scenario.history",
        name,
        "a CSV with the columns " + ", ".join(HISTORY_COLUMNS) + f" (missing: {', '.join(missing)})",
    )


def _check_value_chains(
    s: Scenario, goods: list[str], producing: set[tuple[str, str]], sourced: set[tuple[str, str]]
) -> None:
    """Goods' ``inputs`` and ``byproduct_of``: known goods, no cycle, and a sourcing entry for every
    input the producers of a good buy abroad.
    """
    from sim.model.chains import input_cycle

    for i, g in enumerate(s.goods):
        p = f"scenario.goods[{i}]"
        for u in g.inputs:
            _known(u, goods, f"{p}.inputs", "good")
            _check(u != g.id, f"{p}.inputs", u, f"goods other than {g.id} itself")
        if g.byproduct_of is not None:
            b = g.byproduct_of
            _known(b.good, goods, f"{p}.byproduct_of.good", "good")
            _check(b.good != g.id, f"{p}.byproduct_of.good", b.good, f"a host good other than {g.id} itself")
    cycle = input_cycle({g.id: dict(g.inputs) for g in s.goods})
    if cycle:
        raise ScenarioError(
            f"scenario.goods: the inputs form a cycle {' -> '.join(cycle)}; allowed: value chains without "
            "cycles (a good cannot be, directly or through other goods, an input of itself)"
        )
    makers = {(pr.country, pr.good) for pr in s.producers if pr.capacity > 0} | {
        (pj.country, pj.good) for pj in s.projects
    }
    for g in s.goods:
        for u in g.inputs:
            for country in sorted(c for c, good in makers if good == g.id):
                if (country, u) not in sourced and (country, u) not in producing:
                    raise ScenarioError(
                        f"scenario.sourcing: no entry for destination {country}, good {u}, which the producers of "
                        f"{g.id} in {country} use as an input; add one with the baseline shares of each origin"
                    )


def _check_domestic(m: Measure, p: str, s: Scenario) -> None:
    """Fields of a domestic instrument (production quota, crackdown, halt, tax, state purchase)."""
    _check(
        not m.targets, f"{p}.targets", list(m.targets), "none: a domestic instrument acts on the imposer's own market"
    )
    own = [pr for pr in s.producers if pr.country == m.imposer and pr.good in m.goods]
    names = [pr.name for pr in own]
    for k, name in enumerate(m.producers):
        _check(
            name in names,
            f"{p}.producers[{k}]",
            name,
            f"a producer of {m.imposer} making {', '.join(m.goods)}: {', '.join(map(repr, names)) or 'none in scenario.producers'}",
        )
    classes = sorted({pr.producer_class for pr in own if pr.producer_class})
    if m.producer_class:
        _check(
            m.producer_class in classes,
            f"{p}.producer_class",
            m.producer_class,
            f"a class of {m.imposer}'s producers of {', '.join(m.goods)}: {', '.join(classes) or 'none set'}",
        )
    _check(m.ramp_months >= 0, f"{p}.ramp_months", m.ramp_months, ">= 0 (months)")
    if m.type == "crackdown":
        _check(
            bool(m.producer_class),
            f"{p}.producer_class",
            m.producer_class,
            f"one of {classes or 'the classes'} (the class closed)",
        )
    if m.type in ("production_quota", "state_purchase"):
        _check(m.quantity >= 0, f"{p}.quantity", m.quantity, ">= 0 (quantity over the period)")
        if m.end is None:
            raise ScenarioError(f"{p}.end: None is invalid; a {m.type} needs the end of its period")
    if m.type != "state_purchase":
        selected = [
            pr
            for pr in own
            if (not m.producers or pr.name in m.producers)
            and (not m.producer_class or pr.producer_class == m.producer_class)
        ]
        _check(bool(selected), f"{p}.goods", list(m.goods), f"goods that {m.imposer} produces (in scenario.producers)")
    if m.type == "production_tax":
        _check(m.per_unit >= 0, f"{p}.per_unit", m.per_unit, ">= 0 (price units per quantity unit)")
        _check(m.rate < 1, f"{p}.rate", m.rate, "in [0, 1) (ad valorem, 0.1 = 10% of the producer price)")
    else:
        _check(not m.per_unit, f"{p}.per_unit", m.per_unit, "left out: only production_tax takes it")
    if m.type == "state_purchase":
        _check(len(m.goods) == 1, f"{p}.goods", list(m.goods), "one good (one state_purchase entry per good)")
        _check(m.budget >= 0, f"{p}.budget", m.budget, ">= 0 (US$ over the period)")
        _check(
            (m.quantity > 0) != (m.budget > 0),
            f"{p}.quantity",
            m.quantity,
            f"> 0 with no budget, or 0 with a budget > 0 (budget is {m.budget})",
        )
        _check(
            not m.producers and not m.producer_class,
            f"{p}.producers",
            list(m.producers) or m.producer_class,
            "none: the state buys on the market",
        )
    else:
        _check(not m.budget, f"{p}.budget", m.budget, "left out: only state_purchase takes it")
    if m.type not in ("crackdown", "production_halt"):
        _check(m.intensity == 1, f"{p}.intensity", m.intensity, "left out: only bans, crackdowns and halts take it")
        _check(
            not m.ramp_months or m.type == "crackdown",
            f"{p}.ramp_months",
            m.ramp_months,
            "left out: only crackdown takes it",
        )
    if m.type == "production_halt":
        _check(not m.ramp_months, f"{p}.ramp_months", m.ramp_months, "left out: only crackdown takes it")
    _check(not m.allocation, f"{p}.allocation", dict(m.allocation), "left out: only export_quota takes it")
    if m.type != "production_tax":
        _check(not m.rate, f"{p}.rate", m.rate, "left out: only duties, tariffs and production_tax take it")


_LICENCE_DEFAULTS = {
    "review_lag_months": 0.0,
    "approval_share": 1.0,
    "approval_by_destination": {},
    "approval_by_sector": {},
    "exempt_destinations": [],
    "exempt_sectors": [],
}


def _check_licence(m: Measure, p: str, codes: list[str], sectors: list[tuple[str, str]]) -> None:
    """An export licence's review lag, approval shares and exemptions (other measure types leave them
    at their defaults).
    """
    if m.type != "export_licence":
        for key, default in _LICENCE_DEFAULTS.items():
            value = getattr(m, key)
            _check(value == default, f"{p}.{key}", value, f"only for type export_licence (this measure is {m.type})")
        return
    sector_names = sorted({name for _, name in sectors})
    _check(0 <= m.review_lag_months <= 120, f"{p}.review_lag_months", m.review_lag_months, "months in [0, 120]")
    _check(0 <= m.approval_share <= 1, f"{p}.approval_share", m.approval_share, "a share in [0, 1]")
    for code, share in m.approval_by_destination.items():
        _known(code, codes, f"{p}.approval_by_destination", "country")
        _check(0 <= share <= 1, f"{p}.approval_by_destination.{code}", share, "a share in [0, 1]")
    for name, share in m.approval_by_sector.items():
        _known(name, sector_names, f"{p}.approval_by_sector", "user sector")
        _check(0 <= share <= 1, f"{p}.approval_by_sector.{name}", share, "a share in [0, 1]")
    for code in m.exempt_destinations:
        _known(code, codes, f"{p}.exempt_destinations", "country")
    for name in m.exempt_sectors:
        _known(name, sector_names, f"{p}.exempt_sectors", "user sector")


# ---------------------------------------------------------------------------- levers against the scenario
_LEVERS = (
    "stockpile",
    "diversification",
    "collective_response",
    "inventory_incentive",
    "substitution",
    "friendshoring",
    "recycling",
)


def _known_all(values: Iterable[str], known: list[str], path: str, what: str) -> None:
    for i, v in enumerate(values):
        if v not in known:
            raise ScenarioError(f"{path}[{i}]: unknown {what} {v!r}; the scenario defines: {', '.join(known)}")


def _check_lever_date(value: str | None, path: str, first, last) -> None:
    if value is None:
        return
    try:
        d = parse_date(str(value), field=path)
    except ValueError as exc:
        raise ScenarioError(f"{path}: {value!r} is invalid; allowed: a date YYYY-MM or YYYY-MM-DD") from exc
    _check(first <= d <= last, path, value, f"a date within the scenario ({first} to {last})")


def _check_policy(cfg: RunConfig) -> None:
    """Every lever's settings against the scenario: countries, goods, sectors, projects and coalitions
    it defines, dates within the run, and the diversification speed against the model's adjustment rate.
    """
    s, policy = cfg.scenario, cfg.policy
    cal = MonthlyCalendar(parse_month(s.start, field="scenario.start"), parse_month(s.end, field="scenario.end"))
    first, last = cal.first_day(0), cal.last_day(cal.n_steps - 1)
    codes = [c.code for c in s.countries]
    goods = [g.id for g in s.goods]
    nodes = {name: getattr(policy, name) for name in _LEVERS if getattr(policy, name, None) is not None}
    for name, node in nodes.items():
        p = f"policy.{name}"
        if "countries" in type(node).model_fields:
            _known_all(node.countries, codes, f"{p}.countries", "country")
        if "goods" in type(node).model_fields:
            _known_all(node.goods, goods, f"{p}.goods", "good")
        for key in ("start", "end"):
            if key in type(node).model_fields:
                _check_lever_date(getattr(node, key), f"{p}.{key}", first, last)
        if name != "collective_response" and "countries" in type(node).model_fields:
            if not node.countries and not s.targets:
                _fail(f"{p}.countries", [], "a list of countries (the scenario names no targets to default to)")

    if policy.diversification is not None:
        n, rate = policy.diversification, cfg.model.sourcing_adjustment_rate
        _check(
            1 <= n.speed and n.speed * rate <= 1,
            "policy.diversification.speed",
            n.speed,
            f"a multiplier >= 1 with speed x model.sourcing_adjustment_rate ({rate}) <= 1",
        )
    if policy.friendshoring is not None:
        projects = [pj.name for pj in s.projects]
        for i, pj in enumerate(policy.friendshoring.projects):
            q = f"policy.friendshoring.projects[{i}]"
            if pj.project is not None and pj.project not in projects:
                raise ScenarioError(
                    f"{q}.project: unknown project {pj.project!r}; the scenario defines: {', '.join(projects) or '(none)'}"
                )
            if pj.country is not None:
                _known_all([pj.country], codes, f"{q}.country", "country")
            if pj.good is not None:
                _known_all([pj.good], goods, f"{q}.good", "good")
    if policy.collective_response is not None:
        coalitions = sorted({k for c in s.countries for k in c.coalitions})
        n = policy.collective_response
        if n.coalition not in coalitions:
            raise ScenarioError(
                f"policy.collective_response.coalition: unknown coalition {n.coalition!r}; the scenario's countries "
                f"belong to: {', '.join(coalitions) or '(none)'}"
            )
    if policy.substitution is not None:
        # Producers of a good with inputs buy them as the sector '<good> producers' (sim.model.chains), which a
        # substitution programme may name (e.g. Dy-lean magnets at the magnet makers).
        sectors = sorted({u.sector for u in s.user_sectors} | {f"{g.id} producers" for g in s.goods if g.inputs})
        for i, pr in enumerate(policy.substitution.programmes):
            q = f"policy.substitution.programmes[{i}]"
            _known_all(pr.countries, codes, f"{q}.countries", "country")
            _known_all(pr.goods, goods, f"{q}.goods", "good")
            _known_all(pr.sectors, sectors, f"{q}.sectors", "sector")
            _check_lever_date(pr.start, f"{q}.start", first, last)
            if not pr.countries and not s.targets:
                _fail(f"{q}.countries", [], "a list of countries (the scenario names no targets to default to)")
    if policy.recycling is not None:
        for g in policy.recycling.recovery_share_by_good:
            _known_all([g], goods, "policy.recycling.recovery_share_by_good", "good")
