"""Coercion instruments and the coercer's strategies.

Each instrument is a small class that writes its effect for one month into the step's measure arrays
(:class:`MeasureArrays`); its docstring says what it does and which historical case it follows, and
its ``classifier`` dict carries metadata (instrument family, the side of trade it acts on, the
historical example). Domestic instruments (:class:`DomesticMeasure`: production quotas, crackdowns,
production halts, production taxes, state stockpile purchases) act on the imposer's own producers and
market through the kernel's supply inputs (:class:`SupplyTerms`) instead of trade. Measures are built from scenario entries (:class:`sim.world.config.MeasureConfig`) by
:func:`build_measure`. A strategy decides each month which of the coercer's measures stay in force:
:class:`ScheduleStrategy` follows the dates, :class:`RuleBasedStrategy` follows the design's rules
(coercer cost tolerance, target concession, outside ruling).

Conventions: indices are ``[good, origin, destination]``; a month's ``coverage`` is the share of its
days a measure is in force, so a ban from the 21st of a 30-day month blocks a third of that month's
shipments.
"""

from __future__ import annotations

import datetime as _dt
import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numba import njit

from sim.market.kernel import supply_curve as _kernel_supply_curve
from sim.model.kernels import pairwise_sum as _pairwise_sum

__all__ = [
    "MeasureArrays",
    "Measure",
    "ExportBan",
    "InformalExportRestriction",
    "InformalImportRestriction",
    "ImportBan",
    "ExportQuota",
    "ExportLicence",
    "ExportDuty",
    "ImportTariff",
    "SupplyTerms",
    "DomesticMeasure",
    "ProductionQuota",
    "Crackdown",
    "ProductionHalt",
    "StatePurchase",
    "ProductionTax",
    "DOMESTIC_TYPES",
    "supply_curve",
    "MEASURE_TYPES",
    "ScheduleStrategy",
    "RuleBasedStrategy",
]


@dataclass
class MeasureArrays:
    """The trade measures in force in one month, in the kernel's layout."""

    ban_intensity: np.ndarray  # [G, C, C]
    export_quota: np.ndarray  # [G, C], inf where none
    export_duty: np.ndarray  # [G, C]
    import_tariff: np.ndarray  # [G, C, C]

    @classmethod
    def empty(cls, n_goods: int, n_countries: int) -> MeasureArrays:
        """No measure in force."""
        G, C = n_goods, n_countries
        return cls(np.zeros((G, C, C)), np.full((G, C), np.inf), np.zeros((G, C)), np.zeros((G, C, C)))

    def reset(self) -> None:
        """Clear all measures (in place, to reuse the arrays)."""
        self.ban_intensity.fill(0.0)
        self.export_quota.fill(np.inf)
        self.export_duty.fill(0.0)
        self.import_tariff.fill(0.0)


@dataclass(frozen=True)
class _Timeline:
    """A measure's coverage by month, read in every month of a run.

    Attributes:
        coverage: The ``[n_steps]`` coverage array it was derived from.
        shares: The coverage as a list of floats (share of each month in force).
        counted_left: ``[n_steps]`` list: months that count for a paced period (covered at least
            half) from each month on, that month included.
        first_covered: The first month with any coverage (0 when none).
        last_counted: The last month that counts for a paced period (-1 when none).
    """

    coverage: np.ndarray
    shares: list
    counted_left: list
    first_covered: int
    last_counted: int

    @classmethod
    def of(cls, coverage: np.ndarray) -> _Timeline:
        values = np.ascontiguousarray(coverage, dtype=float)
        return cls(coverage, *_timeline_parts(values.tobytes()))


@functools.lru_cache(maxsize=1024)
def _timeline_parts(coverage: bytes) -> tuple[list, list, int, int]:
    """:class:`_Timeline`'s numbers for a coverage (float64 bytes): the shares, the months counted from
    each month on, the first covered month and the last counted one. Kept per distinct coverage, as
    each run of a case builds its measures again from the same dates (rare_earth_2010: 47 measures,
    28 distinct coverages); the lists are shared, so read them only.
    """
    values = np.frombuffer(coverage, dtype=float)
    counted = values >= 0.5
    left = np.cumsum(counted[::-1])[::-1]
    first = int(np.argmax(values > 0)) if values.size else 0
    counted_at = np.flatnonzero(counted)
    last = int(counted_at[-1]) if counted_at.size else -1
    return values.tolist(), left.tolist(), first, last


@dataclass
class Measure(ABC):
    """A dated trade measure imposed by one country on some goods and partner countries.

    Attributes:
        imposer: Index of the imposing country.
        goods: Indices of the goods covered.
        targets: Indices of the partner countries (destinations for export measures, origins for
            import measures).
        coverage: ``[n_steps]`` share of each month the measure is in force, from its dates.
        label: Free text shown in outputs (e.g. "2010 quota, second half").
        start: First day in force.
    """

    imposer: int
    goods: np.ndarray
    targets: np.ndarray
    coverage: np.ndarray
    start: _dt.date
    label: str = ""
    #: Set by a strategy when it ends the measure early (no effect from this step on).
    ended_at: int | None = None

    classifier: ClassVar[dict] = {}

    def in_force(self, step: int) -> float:
        """Share of the month ``step`` the measure applies (0 once a strategy ended it)."""
        if self.ended_at is not None and step >= self.ended_at:
            return 0.0
        return self._timeline().shares[step]

    def _timeline(self) -> _Timeline:
        """The coverage as Python numbers, with the counts every month's pacing needs (see
        :class:`_Timeline`); derived once per coverage array (a measure's dates do not change
        during a run) instead of with NumPy calls in every month.
        """
        cached = self.__dict__.get("_timeline_cache")
        if cached is None or cached.coverage is not self.coverage:
            cached = _Timeline.of(self.coverage)
            self.__dict__["_timeline_cache"] = cached
        return cached

    @abstractmethod
    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Write this month's effect into ``arrays``."""


@dataclass
class _EdgeBlock(Measure):
    intensity: float = 1.0
    export_side: ClassVar[bool] = True

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Block ``intensity`` x coverage of the trade on the covered edges (largest block wins)."""
        share = self.in_force(step)
        if share <= 0.0:
            return
        value = self.intensity * share
        g = self.goods[:, None]
        if self.export_side:
            idx = (g, self.imposer, self.targets[None, :])
        else:
            idx = (g, self.targets[None, :], self.imposer)
        arrays.ban_intensity[idx] = np.maximum(arrays.ban_intensity[idx], value)


@dataclass
class ExportBan(_EdgeBlock):
    """Export ban: the imposer stops exports of the goods to the named targets.

    A ban in force for the whole month has intensity 1: buyers in the target re-route their
    purchases to other origins at once (their Armington weight on the imposer drops to zero). A ban
    in force for part of a month blocks that share of the month's shipments.
    Example: China's ban on gallium, germanium and antimony exports to the USA (3 Dec 2024).
    """

    classifier: ClassVar[dict] = {
        "instrument": "export_ban",
        "side": "export",
        "example": "CHN Ga/Ge/Sb to USA, Dec 2024",
    }


@dataclass
class InformalExportRestriction(_EdgeBlock):
    """Informal export restriction (customs delays, paperwork): a share ``intensity`` of the
    shipments to the targets is held at the border; buyers do not re-route within the month (they
    expect the goods to clear) and learn from the shortfall (sourcing adaptation).
    Example: the de facto halt of Chinese rare-earth shipments to Japan, 21 Sep - ~20 Nov 2010
    (Global Trade Alert state act 2092; Japan Times/AP 13 Oct 2010).
    """

    classifier: ClassVar[dict] = {
        "instrument": "informal_restriction",
        "side": "export",
        "example": "CHN rare earths to JPN, Sep-Nov 2010",
    }


@dataclass
class InformalImportRestriction(_EdgeBlock):
    """Informal import restriction (verbal instructions to buyers, inspections): a share
    ``intensity`` of the imports from the targets is blocked.
    Example: China's informal ban on Australian coal from Oct 2020 (SCMP; ABC).
    """

    export_side: ClassVar[bool] = False
    classifier: ClassVar[dict] = {
        "instrument": "informal_restriction",
        "side": "import",
        "example": "CHN on AUS coal, Oct 2020",
    }


@dataclass
class ImportBan(_EdgeBlock):
    """Import ban: the imposer stops imports of the goods from the named origins.
    Example: China's suspension of Australian timber (logs) imports, late 2020 (SCMP).
    """

    export_side: ClassVar[bool] = False
    classifier: ClassVar[dict] = {"instrument": "import_ban", "side": "import", "example": "CHN on AUS logs, 2020"}


@dataclass
class ExportDuty(Measure):
    """Ad-valorem export duty levied by the imposer on the goods (all destinations); it raises the
    export price above the domestic price.
    Example: China's 15% (light) and 25% (heavy) rare-earth export duties, 2008 - 1 May 2015 (JMB;
    Reuters).
    """

    rate: float = 0.0
    classifier: ClassVar[dict] = {
        "instrument": "export_duty",
        "side": "export",
        "example": "CHN rare earths, 2008-2015",
    }

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Add the day-weighted rate to the imposer's export duty on each good."""
        share = self.in_force(step)
        if share > 0.0:
            arrays.export_duty[self.goods, self.imposer] += self.rate * share


@dataclass
class ImportTariff(Measure):
    """Ad-valorem import tariff (or anti-dumping and countervailing duties) levied by the imposer on
    imports of the goods from the targets.
    Example: China's 80.5% duties on Australian barley from 19 May 2020 (TRT/Reuters).
    """

    rate: float = 0.0
    classifier: ClassVar[dict] = {"instrument": "import_tariff", "side": "import", "example": "CHN on AUS barley, 2020"}

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Add the day-weighted rate to the tariff on each covered edge."""
        share = self.in_force(step)
        if share > 0.0:
            arrays.import_tariff[self.goods[:, None], self.targets[None, :], self.imposer] += self.rate * share


@dataclass
class ExportQuota(Measure):
    """Export quota: the imposer licenses at most ``quantity`` of exports of the goods over the
    measure's period (all destinations together).

    Licences are valid to the end of the calendar year in which they are issued, so quantity left
    unused at the end of a period carries over to later quota periods of the same imposer, goods and
    year (e.g. the 2010 rare-earth quota was issued in two batches). Licence holders pace exports:
    each month they may ship what is left divided by the months left in the period. The monthly cap
    is what the kernel enforces; when it binds, a quota rent opens between export and domestic
    prices. A month counts for a period when the period covers at least half of it.
    Example: China's rare-earth export quotas, 2005-2014, cut by ~40% in July 2010 (JMB; China
    Daily); abolished 1 Jan 2015 after WTO DS431-433.
    """

    quantity: float = 0.0
    #: Share of the quantity per covered good (same order as ``goods``).
    allocation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Quantity (per good) carried in from earlier periods; set by the quota book.
    carried_in: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Exports shipped under this period so far (per good).
    shipped: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classifier: ClassVar[dict] = {
        "instrument": "export_quota",
        "side": "export",
        "example": "CHN rare earths, 2005-2014",
    }

    def months(self) -> np.ndarray:
        """Steps that count for this period (covered at least half)."""
        return np.flatnonzero(self.coverage >= 0.5)

    def remaining(self) -> np.ndarray:
        """Licences left per good."""
        return np.maximum(self.quantity * self.allocation + self.carried_in - self.shipped, 0.0)

    def _months_left(self, step: int) -> int | None:
        """The months of :meth:`months` from ``step`` on, or ``None`` if the period does not count
        ``step`` (not one of its months, or ended by a strategy).
        """
        if self.ended_at is not None and step >= self.ended_at:
            return None
        line = self._timeline()
        if not 0 <= step < len(line.shares) or line.shares[step] < 0.5:  # not one of months()
            return None
        return line.counted_left[step]

    def monthly_cap(self, step: int) -> np.ndarray | None:
        """Per-good export cap in month ``step``, or ``None`` if the period does not count it."""
        left = self._months_left(step)
        if left is None:
            return None
        return self.remaining() / max(left, 1)

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Cap the imposer's exports of each good at this month's paced licences (tightest wins)."""
        left = self._months_left(step)
        if left is None:
            return
        # monthly_cap, and the tighter of it and the cap in place, in one compiled pass
        _cap_exports(
            self.goods,
            self.imposer,
            arrays.export_quota,
            float(self.quantity),
            self.allocation,
            self.carried_in,
            self.shipped,
            left,
        )

    def record_exports(self, step: int, exports_by_good: np.ndarray) -> None:
        """Book the imposer's exports of the covered goods in month ``step`` (``[G]`` array)."""
        if self._months_left(step) is not None:  # a month the period counts (monthly_cap not None)
            self.shipped = self.shipped + exports_by_good[self.goods]


@dataclass
class ExportLicence(Measure):
    """Export licence regime: the imposer's exporters of the goods need a licence per shipment to the
    targets, and the licensing authority approves only part of the applications.

    Applications are reviewed for ``review lag`` before any approval: until then nothing covered gets
    through. After it, a share of each month's orders is approved: ``approval_share`` by default, a
    destination's own share where the regime names one, an end use's (user sector's) own share where
    it names one; where both a destination and an end use are named, the stricter (lower) share
    decides. General licences exempt some destinations or end uses: their orders pass in full from
    the first day. Unapproved orders are not re-placed elsewhere in the month (buyers do not know
    which applications will be refused); they are rationed (the market's ``rationed``), and buyers
    learn from them through perceived risk and sourcing adaptation (:func:`sim.model.kernels.adapt_sourcing`),
    as for shipments held by an informal restriction. Day-weighted like every measure: in a month
    partly before the lag ends the blocked share is the pre-lag share of its days plus the post-lag
    share times the refused share.
    Example: China's dual-use export licences on gallium and germanium (from 1 Aug 2023) and on seven
    heavy rare earths and magnets (from 4 Apr 2025; statutory review up to 45 working days).
    """

    #: ``[n_steps]`` share of each month in force before the review lag has passed (nothing approved).
    before_approval: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: Default monthly approval share after the lag.
    approval_share: float = 1.0
    #: ``[C]`` approval share by destination (NaN: the default).
    destination_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: ``[S]`` approval share by user sector (NaN: not named).
    sector_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: ``[C]`` destinations under a general licence (exempt).
    exempt_destination: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: ``[S]`` user sectors (end uses) under a general licence (exempt).
    exempt_sector: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    classifier: ClassVar[dict] = {
        "instrument": "export_licence",
        "side": "export",
        "example": "CHN Ga/Ge from Aug 2023; CHN heavy rare earths and magnets from Apr 2025",
    }

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Nothing on the trade edges: licences act on each buyer's orders (see :meth:`blocked_share`)."""

    def blocked_share(
        self,
        step: int,
        row_good: np.ndarray,
        row_destination: np.ndarray,
        row_sector: np.ndarray,
        slot_origin: np.ndarray,
    ) -> np.ndarray | None:
        """``[R, K]`` share of each purchase row's order on each sourcing slot refused this month, or
        ``None`` when the regime blocks nothing this month.
        """
        in_force = self.in_force(step)
        if in_force <= 0.0:
            return None
        before = min(float(self.before_approval[step]), in_force)
        after = in_force - before
        C = self.destination_share.shape[0]
        covered_dest = np.zeros(C, dtype=bool)
        covered_dest[self.targets] = True
        covered_dest[self.imposer] = False
        covered_good = np.zeros(int(max(row_good.max(initial=0), self.goods.max(initial=0))) + 1, dtype=bool)
        covered_good[self.goods] = True
        row_on = covered_good[row_good] & covered_dest[row_destination]
        # End-use rules name user sectors; producers' input buyers (value chains) come after them in the
        # sector index and are never exempt by end use nor given an end-use share.
        n_sectors = len(self.exempt_sector)
        user_row = row_sector < n_sectors
        sector_of = np.where(user_row, row_sector, 0)
        exempt_by_use = user_row & self.exempt_sector[sector_of] if n_sectors else np.zeros(len(row_sector), bool)
        row_on &= ~self.exempt_destination[row_destination] & ~exempt_by_use
        if not row_on.any():
            return None
        share = np.where(np.isnan(self.destination_share), self.approval_share, self.destination_share)[row_destination]
        by_sector = (
            np.where(user_row, self.sector_share[sector_of], np.nan) if n_sectors else np.full(len(row_sector), np.nan)
        )
        share = np.where(np.isnan(by_sector), share, np.minimum(share, by_sector))
        refused = before + after * (1.0 - share)
        slot_on = row_on[:, None] & (slot_origin == self.imposer)
        return np.where(slot_on, refused[:, None], 0.0)


def supply_curve(price, capacity, unit_cost, full_capacity_price, supply_elasticity) -> np.ndarray:
    """Quantity each producer offers at ``price`` (arrays or numbers, broadcast): the kernel's supply curve
    (:func:`sim.market.kernel.producer_supply`, compiled over producers by
    :func:`sim.market.kernel.supply_curve`), for cost accounting outside the kernel.
    """
    args = [np.asarray(a, dtype=float) for a in (price, capacity, unit_cost, full_capacity_price, supply_elasticity)]
    if all(a.ndim == 1 and a.shape == args[0].shape for a in args):
        return _kernel_supply_curve(*args)
    # Scalars and arrays of other shapes broadcast against each other, as NumPy expressions would.
    shaped = np.broadcast_arrays(*args)
    return _kernel_supply_curve(*(np.ascontiguousarray(a).ravel() for a in shaped)).reshape(shaped[0].shape)


@dataclass
class SupplyTerms:
    """What the domestic measures in force do to each producer in one month (the kernel's inputs).

    ``capacity_share`` is the share of its capacity a producer may run (halts, crackdowns multiply it);
    ``output_cap`` the most it may produce (quantity per month; production quotas), ``inf`` where none;
    ``tax_per_unit`` and ``tax_rate`` a production tax per unit (price units) and ad valorem (share of
    the price); ``state_order`` ``[G, C]`` the quantity each state orders on its own market this month.
    """

    capacity_share: np.ndarray
    output_cap: np.ndarray
    tax_per_unit: np.ndarray
    tax_rate: np.ndarray
    state_order: np.ndarray

    @classmethod
    def empty(cls, n_producers: int, n_goods: int, n_countries: int) -> SupplyTerms:
        """No domestic measure in force."""
        P = n_producers
        return cls(np.ones(P), np.full(P, np.inf), np.zeros(P), np.zeros(P), np.zeros((n_goods, n_countries)))

    def reset(self) -> None:
        """Clear all terms (in place)."""
        self.capacity_share.fill(1.0)
        self.output_cap.fill(np.inf)
        self.tax_per_unit.fill(0.0)
        self.tax_rate.fill(0.0)
        self.state_order.fill(0.0)


@njit(cache=True)
def _cut_capacity(producers, capacity, capacity_share, share):
    """Remove ``share`` of the listed producers' running capacity (``capacity_share`` multiplied in
    place); returns the capacity withheld from each (quantity per month).
    """
    withheld = np.empty(producers.size)
    for i in range(producers.size):
        p = producers[i]
        withheld[i] = capacity[p] * capacity_share[p] * share
        capacity_share[p] *= 1.0 - share
    return withheld


@njit(cache=True)
def _add_tax(producers, tax_per_unit, tax_rate, per_unit, rate):
    """Add a tax per unit and an ad-valorem rate to the listed producers' terms, in place (as
    ``tax_per_unit[producers] += per_unit``; the producers are distinct).
    """
    for i in range(producers.size):
        p = producers[i]
        tax_per_unit[p] += per_unit
        tax_rate[p] += rate


@njit(cache=True)
def _gathered_sum(values, producers):
    """``values[producers].sum()`` in NumPy's order (:func:`sim.model.kernels.pairwise_sum`), bit for bit."""
    n = producers.size
    picked = np.empty(n)
    for i in range(n):
        picked[i] = values[producers[i]]
    return _pairwise_sum(picked, 0, n)


@njit(cache=True)
def _cap_exports(goods, imposer, export_quota, quantity, allocation, carried_in, shipped, left):
    """An export quota's cap this month on each of its goods (licences left, ``max(quantity x allocation +
    carried_in - shipped, 0)``, over the ``left`` months still to count, at least one), written where
    it is tighter than the cap in place: the NumPy expressions of ``ExportQuota.monthly_cap`` and
    ``np.minimum`` on the gathered caps, each good's from the caps before any is written.
    """
    n = goods.size
    if allocation.size != n or carried_in.size != n or shipped.size != n:
        raise ValueError("export quota: allocation, carried_in and shipped need one entry per good")
    tighter = np.empty(n)
    for i in range(n):
        licences = _numpy_maximum(quantity * allocation[i] + carried_in[i] - shipped[i], 0.0)
        tighter[i] = _numpy_minimum(export_quota[goods[i], imposer], licences / max(left, 1))
    for i in range(n):
        export_quota[goods[i], imposer] = tighter[i]


@njit(cache=True)
def _numpy_minimum(a, b):
    """``np.minimum`` of two floats as NumPy's ufunc has it: NaN if either is NaN, else the smaller, and
    the second on a tie (``min(0.0, -0.0)`` is ``-0.0``; numba's scalar ``np.minimum`` returns the first).
    """
    if a != a:
        return a
    return a if a < b else b


@njit(cache=True)
def _numpy_maximum(a, b):
    """``np.maximum`` of two floats as NumPy's ufunc has it (NaN first, the second on a tie)."""
    if a != a:
        return a
    return a if a > b else b


@njit(cache=True)
def _cap_output(producers, capacity, capacity_share, output_cap, cap):
    """Split an output cap ``cap`` over the listed producers by the capacity each may run this month
    (equally if none may run) and lower their ``output_cap`` to it in place (the tightest cap wins);
    returns the capacity each withholds under the cap (quantity per month, never negative). The
    running capacities are added producer by producer (``np.sum`` adds eight or more in another order,
    so a quota over that many producers agrees with it to rounding).
    """
    n = producers.size
    run = np.empty(n)
    total = 0.0
    for i in range(n):
        run[i] = capacity[producers[i]] * capacity_share[producers[i]]
        total += run[i]
    withheld = np.empty(n)
    for i in range(n):
        p = producers[i]
        mine = cap * (run[i] / total if total > 0.0 else 1.0 / max(n, 1))
        withheld[i] = np.maximum(np.minimum(run[i], output_cap[p]) - mine, 0.0)
        output_cap[p] = np.minimum(output_cap[p], mine)
    return withheld


@dataclass
class DomesticMeasure(Measure):
    """A measure a state applies to its own producers or market (not to trade).

    Attributes:
        producers: Indices of the producers it acts on: the imposer's producers of the listed goods,
            narrowed to the named ones (``producers:``) or one class (``producer_class:``).
        cost: ``[n_steps]`` the measure's cost to the imposing state by month, US$ (see each class).

    Domestic measures act through the kernel's inputs (capacity seen by the market, unit cost, full
    capacity price, state orders), in the order of :attr:`stage`: capacity cuts first, then output caps,
    then taxes, then purchases. They write nothing into the trade arrays.
    """

    producers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: 0 capacity cuts, 1 output caps, 2 taxes, 3 state purchases.
    stage: ClassVar[int] = 0

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Domestic measures do not touch trade."""

    @abstractmethod
    def apply_domestic(self, step: int, terms: SupplyTerms, capacity: np.ndarray) -> None:
        """Write this month's effect into ``terms`` (``capacity``: producers' capacity, per month)."""


@dataclass
class _CapacityCut(DomesticMeasure):
    intensity: float = 1.0
    ramp_months: int = 0
    #: Capacity withheld this month (quantity per month, per covered producer); None when not in force.
    withheld: np.ndarray | None = None

    def share(self, step: int) -> float:
        """Share of the covered producers' capacity removed in month ``step``."""
        cover = self.in_force(step)
        if cover <= 0.0:
            return 0.0
        if self.ramp_months <= 0:
            return self.intensity * cover
        first = self._timeline().first_covered
        ramp = min(1.0, (step - first + 1) / self.ramp_months)
        return self.intensity * ramp * cover

    def apply_domestic(self, step: int, terms: SupplyTerms, capacity: np.ndarray) -> None:
        """Remove this month's share of the covered producers' capacity (multiplying other cuts)."""
        s = self.share(step)
        p = self.producers
        if s <= 0.0:
            self.withheld = None
            return
        self.withheld = _cut_capacity(p, capacity, terms.capacity_share, s)


@dataclass
class Crackdown(_CapacityCut):
    """Enforcement crackdown: the state closes a share ``intensity`` of an (informal) producer class's
    capacity, reached linearly over ``ramp_months`` from the start and held to the end date.

    The market sees that much less capacity of the class (mines closed, smuggling channels cut).
    Cost to the state: the producers' lost margin, (domestic price - unit cost) x the sales the
    closed capacity would have made at this month's domestic price (gains of the remaining producers
    are not netted). Example: China's campaign against illegal rare-earth mining from May 2011
    (State Council Guofa [2011] No. 12; illegal output ~30-40% of China's production).
    """

    classifier: ClassVar[dict] = {
        "instrument": "crackdown",
        "side": "domestic supply",
        "example": "CHN illegal rare-earth mining, from May 2011",
    }


@dataclass
class ProductionHalt(_CapacityCut):
    """Temporary production halt: the named producers stop a share ``intensity`` of their capacity
    between the dates (a part month counts by its days). Cost as for :class:`Crackdown`.
    Example: Baotou Steel Rare Earth halted smelting and separation for a month from 19 Oct 2011
    (People's Daily) and part of it from 23 Oct 2012 to Jan 2013 (Reuters).
    """

    classifier: ClassVar[dict] = {
        "instrument": "production_halt",
        "side": "domestic supply",
        "example": "Baotou, Oct-Nov 2011 and Oct 2012-Jan 2013",
    }


@dataclass
class ProductionQuota(DomesticMeasure):
    """Production (mining) quota: the covered producers together may produce at most ``quantity``
    over the measure's period.

    Paced like the export quota: each month they may produce what is left divided by the months left
    in the period (a month counts when the period covers at least half of it); the month's cap is
    split over the producers in proportion to the capacity they may run that month (after halts and
    crackdowns). The kernel sees each producer's supply curve cut at its cap (capacity and
    full-capacity price lowered together, so the curve below the cap is unchanged). Cost to the
    state: the lost margin on the sales the cap prevented at this month's domestic price. Example:
    China's rare-earth mining quotas (MLR), 82,320 t in 2009 to 105,000 t in 2014-2016.
    """

    quantity: float = 0.0
    produced: float = 0.0
    #: Capacity withheld this month (quantity per month, per covered producer); None when not in force.
    withheld: np.ndarray | None = None
    stage: ClassVar[int] = 1
    classifier: ClassVar[dict] = {
        "instrument": "production_quota",
        "side": "domestic supply",
        "example": "CHN rare-earth mining quotas, 2006-2016",
    }

    def months(self) -> np.ndarray:
        """Steps that count for this period (covered at least half)."""
        return np.flatnonzero(self.coverage >= 0.5)

    def monthly_cap(self, step: int) -> float | None:
        """The covered producers' output cap in month ``step``, or ``None`` if the period does not count it."""
        if self.ended_at is not None and step >= self.ended_at:
            return None
        line = self._timeline()
        if line.shares[step] < 0.5:
            return None
        left = line.counted_left[step]
        return max(self.quantity - self.produced, 0.0) / max(left, 1)

    def apply_domestic(self, step: int, terms: SupplyTerms, capacity: np.ndarray) -> None:
        """Cap each covered producer at its share of this month's paced quota (tightest cap wins)."""
        p = self.producers
        self.withheld = None
        cap = self.monthly_cap(step)
        if cap is None:
            return
        self.withheld = _cap_output(p, capacity, terms.capacity_share, terms.output_cap, cap)

    def record_output(self, step: int, producer_output: np.ndarray) -> None:
        """Book the covered producers' output in month ``step``."""
        if self.monthly_cap(step) is not None:
            self.produced += _gathered_sum(producer_output, self.producers)


@dataclass
class ProductionTax(DomesticMeasure):
    """Tax on production: ``per_unit`` (price units per quantity unit) and/or ``rate`` (ad valorem,
    share of the producer price) on the covered producers' output.

    A per-unit tax t raises the price at which a producer starts and reaches full capacity by t; an
    ad-valorem rate r divides both by (1 - r): the supply curve shifts up, as if unit cost rose. Cost
    to the state: minus the tax revenue (a negative cost), at this month's domestic price. Example:
    China's rare-earth resource tax from 1 Apr 2011 (light 60, medium/heavy 30 yuan per tonne of ore).
    """

    per_unit: float = 0.0
    rate: float = 0.0
    stage: ClassVar[int] = 2
    classifier: ClassVar[dict] = {
        "instrument": "production_tax",
        "side": "domestic supply",
        "example": "CHN rare-earth resource tax, Apr 2011",
    }

    def apply_domestic(self, step: int, terms: SupplyTerms, capacity: np.ndarray) -> None:
        """Add the day-weighted tax to the covered producers."""
        share = self.in_force(step)
        if share > 0.0:
            _add_tax(self.producers, terms.tax_per_unit, terms.tax_rate, self.per_unit * share, self.rate * share)


@dataclass
class StatePurchase(DomesticMeasure):
    """State stockpile purchases: the state buys ``quantity`` of one good (or spends ``budget`` US$ on
    it) over the measure's period on its own market, through its firms' sourcing mix, as they buy.

    Paced: each month it orders an equal share of the quantity (months count when the period covers
    at least half of them). A budget is turned into a quantity once, at the domestic price of the
    month before the period starts (the state plans the round in tonnes at the price it sees; the
    spending then follows the prices paid). The orders join the purchases of the country's firms and
    meet the same short-run price response, so in a tight market the state buys less than it
    ordered; the shortfall is not made up later (the state does not chase a tight market). What it
    buys goes into the state's stock (the ``stockpile`` output) and stays there. Cost to the state:
    the purchase spending at the prices paid. Example: China's State Reserve Bureau bought about
    10,000 t (mainly medium/heavy) in Oct 2013 and 10,090 t in Aug 2014.
    """

    quantity: float = 0.0
    budget: float = 0.0
    bought: float = 0.0
    spent: float = 0.0
    #: Last month's domestic price of the good in the imposer (set by the model before each month).
    last_price: float = float("nan")
    stage: ClassVar[int] = 3
    classifier: ClassVar[dict] = {
        "instrument": "state_purchase",
        "side": "domestic demand",
        "example": "CHN State Reserve Bureau rare earths, 2011-2014",
    }

    def months(self) -> np.ndarray:
        """Steps that count for this period (covered at least half)."""
        return np.flatnonzero(self.coverage >= 0.5)

    def order(self, step: int) -> float:
        """Quantity ordered in month ``step``."""
        if self.ended_at is not None and step >= self.ended_at:
            return 0.0
        line = self._timeline()
        if line.shares[step] < 0.5:
            return 0.0
        if self.budget > 0 and self.quantity <= 0 and np.isfinite(self.last_price) and self.last_price > 0:
            self.quantity = self.budget / self.last_price
        return self.quantity / max(line.counted_left[0] if line.counted_left else 0, 1)

    def apply_domestic(self, step: int, terms: SupplyTerms, capacity: np.ndarray) -> None:
        """Add this month's order to the state's orders of the good."""
        q = self.order(step)
        if q > 0:
            terms.state_order[self.goods[0], self.imposer] += q


#: Domestic instruments by scenario ``type``.
DOMESTIC_TYPES: dict[str, type[DomesticMeasure]] = {
    "production_quota": ProductionQuota,
    "crackdown": Crackdown,
    "production_halt": ProductionHalt,
    "production_tax": ProductionTax,
    "state_purchase": StatePurchase,
}

MEASURE_TYPES: dict[str, type[Measure]] = {
    "export_ban": ExportBan,
    "informal_restriction": InformalExportRestriction,
    "informal_import_restriction": InformalImportRestriction,
    "import_ban": ImportBan,
    "export_quota": ExportQuota,
    "export_licence": ExportLicence,
    "export_duty": ExportDuty,
    "import_tariff": ImportTariff,
    **DOMESTIC_TYPES,
}


def link_quota_years(quotas: list[ExportQuota]) -> list[list[ExportQuota]]:
    """Group quota periods that share imposer, goods and calendar year, in date order; unused
    licences of one period carry into the next one of its group (see :class:`ExportQuota`).
    """
    groups: dict[tuple, list[ExportQuota]] = {}
    for q in quotas:
        key = (q.imposer, tuple(int(g) for g in q.goods), q.start.year)
        groups.setdefault(key, []).append(q)
    chains = [sorted(v, key=lambda q: q.start) for v in groups.values()]
    return chains


class ScheduleStrategy:
    """The coercer applies its measures exactly as dated in the scenario (historical cases)."""

    name = "schedule"

    def decide(self, model, step: int) -> None:
        """Nothing to decide: dates rule."""


@dataclass
class RuleBasedStrategy:
    """The design's rule-based coercer (``docs/sources/model_design.md``, section 5).

    Each of the coercer's measures stays in force from its start date while (a) no target has
    conceded, (b) the coercer's own cost over the trailing 12 months (lost export revenue on the
    coerced goods plus the extra cost its own firms pay, as a share of its baseline 12-month export
    revenue on those goods) stays under ``coercer_cost_tolerance``, and (c) no outside ruling has
    ended it (``ruling_delay_months`` after its start). A target concedes when its pain (output loss
    as a share of the baseline value added of its users of the goods, trailing 3 months) passes
    ``target_pain_threshold``. Once ended, a measure stays ended.
    """

    coercer_cost_tolerance: float
    target_pain_threshold: float
    ruling_delay_months: int | None = None
    name: str = "rules"
    conceded_at: int | None = None
    conceding_country: int | None = None
    ended_reason: dict = field(default_factory=dict)

    def decide(self, model, step: int) -> None:
        """End the coercer's measures whose conditions fail this month."""
        coercer = model.coercer_index
        if self.conceded_at is None:
            for target in model.target_indices:
                if model.trailing_pain(target, months=3) > self.target_pain_threshold:
                    self.conceded_at = step
                    self.conceding_country = int(target)
                    break
        cost = model.trailing_coercer_cost(months=12)
        for i, m in enumerate(model.measures):
            if m.imposer != coercer or m.ended_at is not None:
                continue
            reason = None
            if self.conceded_at is not None:
                reason = "target conceded"
            elif cost > self.coercer_cost_tolerance:
                reason = "coercer cost over tolerance"
            elif self.ruling_delay_months is not None:
                start_step = model.world.calendar.step_of(m.start)
                if step >= start_step + self.ruling_delay_months:
                    reason = "outside ruling"
            if reason is not None:
                m.ended_at = step
                self.ended_reason[i] = reason
