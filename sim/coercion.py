"""Coercion instruments and the coercer's strategies.

Each instrument is a small class that writes its effect for one month into the step's measure arrays
(:class:`MeasureArrays`); its docstring says what it does and which historical case it follows, and
its ``classifier`` dict carries metadata (instrument family, the side of trade it acts on, the
historical example). Measures are built from scenario entries (:class:`sim.config.MeasureConfig`) by
:func:`build_measure`. A strategy decides each month which of the coercer's measures stay in force:
:class:`ScheduleStrategy` follows the dates, :class:`RuleBasedStrategy` follows the design's rules
(coercer cost tolerance, target concession, outside ruling).

Conventions: indices are ``[good, origin, destination]``; a month's ``coverage`` is the share of its
days a measure is in force, so a ban from the 21st of a 30-day month blocks a third of that month's
shipments.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

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
        return float(self.coverage[step])

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

    def monthly_cap(self, step: int) -> np.ndarray | None:
        """Per-good export cap in month ``step``, or ``None`` if the period does not count it."""
        if self.ended_at is not None and step >= self.ended_at:
            return None
        months = self.months()
        if step not in months:
            return None
        left = int(np.sum(months >= step))
        return self.remaining() / max(left, 1)

    def apply(self, step: int, arrays: MeasureArrays) -> None:
        """Cap the imposer's exports of each good at this month's paced licences (tightest wins)."""
        cap = self.monthly_cap(step)
        if cap is None:
            return
        current = arrays.export_quota[self.goods, self.imposer]
        arrays.export_quota[self.goods, self.imposer] = np.minimum(current, cap)

    def record_exports(self, step: int, exports_by_good: np.ndarray) -> None:
        """Book the imposer's exports of the covered goods in month ``step`` (``[G]`` array)."""
        if self.monthly_cap(step) is not None:
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
    learn from them through perceived risk and sourcing adaptation (:func:`sim.kernels.adapt_sourcing`),
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
        row_on &= ~self.exempt_destination[row_destination] & ~self.exempt_sector[row_sector]
        if not row_on.any():
            return None
        share = np.where(np.isnan(self.destination_share), self.approval_share, self.destination_share)[row_destination]
        by_sector = self.sector_share[row_sector]
        share = np.where(np.isnan(by_sector), share, np.minimum(share, by_sector))
        refused = before + after * (1.0 - share)
        slot_on = row_on[:, None] & (slot_origin == self.imposer)
        return np.where(slot_on, refused[:, None], 0.0)


MEASURE_TYPES: dict[str, type[Measure]] = {
    "export_ban": ExportBan,
    "informal_restriction": InformalExportRestriction,
    "informal_import_restriction": InformalImportRestriction,
    "import_ban": ImportBan,
    "export_quota": ExportQuota,
    "export_licence": ExportLicence,
    "export_duty": ExportDuty,
    "import_tariff": ImportTariff,
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
