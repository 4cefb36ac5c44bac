"""Front end of the market-clearing kernel: typed inputs, validation, and results.

One step of the world market for every critical good is described by a :class:`MarketInputs`
(producers, user firms' purchase plans, per-good parameters and the trade measures in force) and
cleared by :func:`clear_markets`, which returns a :class:`MarketResult`. The economics (delivered
prices, Armington sourcing, export quotas with rents, rationing at the price cap) are documented in
``docs/ODD.md``; the compiled kernels live in :mod:`sim.market.kernel`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import numpy as np

from sim.market import kernel

__all__ = [
    "MarketInputs",
    "MarketStructure",
    "MarketResult",
    "MarketClearingError",
    "PreparedMarket",
    "clear_markets",
]

#: Tolerance on the sum of a purchase row's sourcing weights.
WEIGHT_SUM_TOLERANCE = 1e-9


class MarketClearingError(RuntimeError):
    """The solver did not reach the requested tolerance for at least one good."""


def _float(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _int(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _bool(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.bool_)


_BOOL_INPUTS = frozenset({"check_warm_start"})
_INT_INPUTS = frozenset(
    {"producer_country", "producer_good", "firm_country", "row_firm", "row_good", "sourcing_origin"}
)


@functools.cache
def _input_conversions() -> tuple:
    """Each array field of :class:`MarketInputs` with its conversion (to contiguous int64 or float64);
    listed once, as the model builds inputs every month.
    """
    return tuple(
        (f.name, _bool if f.name in _BOOL_INPUTS else _int if f.name in _INT_INPUTS else _float)
        for f in fields(MarketInputs)
        if f.name != "n_countries"
    )


@functools.cache
def _conversion_of() -> dict:
    """:func:`_input_conversions` by name."""
    return dict(_input_conversions())


@dataclass(frozen=True)
class MarketInputs:
    """Everything the world market needs for one step, as arrays.

    Index conventions: countries ``0..n_countries-1``, goods ``0..G-1``, producers ``0..P-1``,
    user firms ``0..F-1``, purchase rows ``0..R-1`` (one user firm buying one good), sourcing slots
    ``0..K-1`` per row. Arrays over (good, country) are ``[G, C]``; over trade edges ``[G, C, C]``
    indexed ``[good, origin, destination]``. Prices are in the good's real unit (e.g. US$/kg).

    Attributes:
        n_countries: Number of countries ``C``.
        reference_price: ``[G]`` baseline world price of each good; demand quantities are stated at it.
        armington_elasticity: ``[G]`` elasticity of substitution between origins (must exceed 1).
        price_cap: ``[G]`` highest price as a multiple of the reference price; beyond it the market
            rations pro rata.
        price_floor: ``[G]`` lowest price as a multiple of the reference price (in (0, 1)); below
            it supply goes unsold.
        producer_country, producer_good: ``[P]`` where each producer is and what it makes.
        capacity: ``[P]`` most the producer can supply this step (quantity per step).
        unit_cost: ``[P]`` price below which the producer supplies nothing.
        full_capacity_price: ``[P]`` price at which the producer runs at full capacity (> unit cost).
        supply_elasticity: ``[P]`` curvature of the supply curve (> 0); with zero unit cost it is
            the price elasticity of supply below capacity.
        firm_country: ``[F]`` country of each user firm.
        row_firm, row_good: ``[R]`` the user firm and the good of each purchase row.
        planned_purchase: ``[R]`` quantity the firm would buy at the reference price this step.
        demand_elasticity: ``[R]`` short-run price elasticity of the firm's demand (>= 0).
        sourcing_origin: ``[R, K]`` origin country of each sourcing slot, ``-1`` for an empty slot.
        sourcing_weights: ``[R, K]`` Armington weights over the slots, summing to one per row.
        ban_intensity: ``[G, C, C]`` share of an edge's trade that is blocked. 1 is a ban: buyers
            drop the origin from their sourcing at once and re-route. Values in (0, 1) are informal
            measures (customs delays): buyers order as usual, only ``1 - intensity`` of the order
            gets through, and the rest counts as rationed.
        export_quota: ``[G, C]`` most an origin may export in total this step (``inf`` for none).
        export_duty: ``[G, C]`` ad-valorem export duty of the origin.
        import_tariff: ``[G, C, C]`` ad-valorem tariff on the edge, levied by the destination.
        transport_cost: ``[G, C, C]`` cost per unit shipped on the edge (same unit as prices).
        stockpile_release: ``[G, C]`` quantity a country's stockpile puts on its market this step.
        initial_price: optional ``[G, C]`` starting producer prices (e.g. last step's), for speed.
        initial_rent: optional ``[G, C]`` starting quota rents.
        check_warm_start: optional ``[G]`` booleans: goods whose warm start (``initial_price``) is
            checked without the Jacobian first, because it may have cleared already (the model sets
            it for the goods that cleared at their warm start last step). A speed hint only: the
            result is the same. ``None``: every good with a warm start.
        order_pass: optional ``[R, K]`` share of each purchase row's order on each sourcing slot that
            is let through (export licences approved for the row's destination and end use); the
            rest is held and counts as rationed, like the blocked share of an informal restriction
            (buyers order as usual). ``None``: all of it.
    """

    n_countries: int
    reference_price: np.ndarray
    armington_elasticity: np.ndarray
    price_cap: np.ndarray
    price_floor: np.ndarray
    producer_country: np.ndarray
    producer_good: np.ndarray
    capacity: np.ndarray
    unit_cost: np.ndarray
    full_capacity_price: np.ndarray
    supply_elasticity: np.ndarray
    firm_country: np.ndarray
    row_firm: np.ndarray
    row_good: np.ndarray
    planned_purchase: np.ndarray
    demand_elasticity: np.ndarray
    sourcing_origin: np.ndarray
    sourcing_weights: np.ndarray
    ban_intensity: np.ndarray
    export_quota: np.ndarray
    export_duty: np.ndarray
    import_tariff: np.ndarray
    transport_cost: np.ndarray
    stockpile_release: np.ndarray
    initial_price: np.ndarray | None = None
    initial_rent: np.ndarray | None = None
    order_pass: np.ndarray | None = None
    check_warm_start: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, convert in _input_conversions():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, convert(value))

    def updated(self, **arrays) -> MarketInputs:
        """A copy with the given array inputs replaced (converted as the constructor converts them) and the
        others shared: for a caller that changes a step's quantities, prices and measures but not the
        world (:class:`PreparedMarket` clears such steps without the copy). Not validated; unknown names
        raise ``TypeError``.
        """
        conversions = _conversion_of()
        new = object.__new__(MarketInputs)
        state = new.__dict__
        state.update(self.__dict__)
        for name, value in arrays.items():
            convert = conversions.get(name)
            if convert is None:
                raise TypeError(
                    f"updated: {name!r} is not an array input of MarketInputs; allowed: {sorted(conversions)}"
                )
            state[name] = None if value is None else convert(value)
        return new

    @property
    def n_goods(self) -> int:
        """Number of goods ``G``."""
        return int(self.reference_price.shape[0])

    def validate(self) -> None:
        """Check shapes, ranges and indices; raise one ``ValueError`` naming the input and problem."""
        C, G = int(self.n_countries), self.n_goods
        if C < 1:
            raise ValueError(f"n_countries: must be at least 1, got {self.n_countries}")
        P = self.producer_country.shape[0] if self.producer_country.ndim == 1 else -1
        F = self.firm_country.shape[0] if self.firm_country.ndim == 1 else -1
        R = self.row_firm.shape[0] if self.row_firm.ndim == 1 else -1
        K = self.sourcing_origin.shape[1] if self.sourcing_origin.ndim == 2 else -1
        expected = {
            "reference_price": (G,),
            "armington_elasticity": (G,),
            "price_cap": (G,),
            "price_floor": (G,),
            "producer_country": (P,),
            "producer_good": (P,),
            "capacity": (P,),
            "unit_cost": (P,),
            "full_capacity_price": (P,),
            "supply_elasticity": (P,),
            "firm_country": (F,),
            "row_firm": (R,),
            "row_good": (R,),
            "planned_purchase": (R,),
            "demand_elasticity": (R,),
            "sourcing_origin": (R, K),
            "sourcing_weights": (R, K),
            "ban_intensity": (G, C, C),
            "export_quota": (G, C),
            "export_duty": (G, C),
            "import_tariff": (G, C, C),
            "transport_cost": (G, C, C),
            "stockpile_release": (G, C),
            "initial_price": (G, C),
            "initial_rent": (G, C),
            "check_warm_start": (G,),
            "order_pass": (R, K),
        }
        for name, shape in expected.items():
            arr = getattr(self, name)
            if arr is None:
                continue
            if -1 in shape or arr.shape != shape:
                raise ValueError(
                    f"{name}: shape {arr.shape} does not match the expected {tuple(s for s in shape)} "
                    f"(G={G} goods, C={C} countries, P producers, F firms, R purchase rows, K slots)"
                )
        # Finite values everywhere except export_quota (inf means no quota) and the warm start.
        for name in expected:
            arr = getattr(self, name)
            if arr is None or arr.dtype.kind != "f" or name in ("initial_price", "initial_rent"):
                continue
            if arr.size == 0:
                continue
            # Fast path (one pass each, no temporaries; NaN propagates through min and max): the
            # [G, C, C] arrays are large and the model validates every step's inputs.
            lo, hi = arr.min(), arr.max()
            if (not np.isnan(lo) and not np.isnan(hi)) if name == "export_quota" else np.isfinite(lo + hi):
                continue
            bad = np.isnan(arr) if name == "export_quota" else ~np.isfinite(arr)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{name}: value {arr[idx]} at index {idx} is not a finite number")

        def check(name: str, ok: np.ndarray, allowed: str) -> None:
            if not np.all(ok):
                arr = getattr(self, name)
                idx = tuple(int(i) for i in np.argwhere(~ok)[0])
                raise ValueError(f"{name}: value {arr[idx]} at index {idx} is invalid; allowed: {allowed}")

        check("reference_price", self.reference_price > 0, "> 0")
        check("armington_elasticity", self.armington_elasticity > 1, "> 1")
        check("price_cap", self.price_cap > 1, "> 1 (a multiple of the reference price)")
        check("price_floor", (self.price_floor > 0) & (self.price_floor < 1), "in (0, 1)")
        for name in ("producer_country", "firm_country"):
            arr = getattr(self, name)
            check(name, (arr >= 0) & (arr < C), f"a country index in [0, {C - 1}]")
        check("producer_good", (self.producer_good >= 0) & (self.producer_good < G), f"a good index in [0, {G - 1}]")
        check("row_good", (self.row_good >= 0) & (self.row_good < G), f"a good index in [0, {G - 1}]")
        check("row_firm", (self.row_firm >= 0) & (self.row_firm < F), f"a firm index in [0, {F - 1}]")
        check("capacity", self.capacity >= 0, ">= 0")
        check("unit_cost", self.unit_cost >= 0, ">= 0")
        check("full_capacity_price", self.full_capacity_price > self.unit_cost, "> unit_cost of the producer")
        check("supply_elasticity", self.supply_elasticity > 0, "> 0")
        check("planned_purchase", self.planned_purchase >= 0, ">= 0")
        check("demand_elasticity", self.demand_elasticity >= 0, ">= 0")
        check(
            "sourcing_origin",
            (self.sourcing_origin >= -1) & (self.sourcing_origin < C),
            f"-1 (empty) or a country index in [0, {C - 1}]",
        )
        empty = self.sourcing_origin < 0
        check(
            "sourcing_weights",
            (self.sourcing_weights >= 0) & (~empty | (self.sourcing_weights == 0)),
            ">= 0, and 0 in empty slots",
        )
        sums = self.sourcing_weights.sum(axis=1) if R > 0 else np.zeros(0)
        bad_rows = np.flatnonzero(np.abs(sums - 1.0) > WEIGHT_SUM_TOLERANCE)
        if bad_rows.size:
            r = int(bad_rows[0])
            raise ValueError(
                f"sourcing_weights: row {r} (firm {int(self.row_firm[r])}, good {int(self.row_good[r])}) "
                f"sums to {sums[r]!r}; the weights of each purchase row must sum to 1"
            )
        if K > 1 and R > 0:
            srt = np.sort(np.where(empty, -1 - np.arange(K)[None, :], self.sourcing_origin), axis=1)
            dup = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1))
            if dup.size:
                r = int(dup[0])
                raise ValueError(
                    f"sourcing_origin: row {r} lists the same origin twice ({self.sourcing_origin[r].tolist()})"
                )

        def smallest(a: np.ndarray) -> float:
            return float(a.min()) if a.size else 0.0

        largest = float(self.ban_intensity.max()) if self.ban_intensity.size else 0.0
        if not (smallest(self.ban_intensity) >= 0 and largest <= 1):
            check("ban_intensity", (self.ban_intensity >= 0) & (self.ban_intensity <= 1), "in [0, 1] (1 = ban)")
        check("export_quota", self.export_quota >= 0, ">= 0 (inf for no quota)")
        check("export_duty", self.export_duty >= 0, ">= 0 (ad valorem)")
        if not smallest(self.import_tariff) >= 0:
            check("import_tariff", self.import_tariff >= 0, ">= 0 (ad valorem)")
        if not smallest(self.transport_cost) >= 0:
            check("transport_cost", self.transport_cost >= 0, ">= 0")
        check("stockpile_release", self.stockpile_release >= 0, ">= 0")
        if self.order_pass is not None and self.order_pass.size:
            check("order_pass", (self.order_pass >= 0) & (self.order_pass <= 1), "in [0, 1] (1 = all let through)")


@dataclass(frozen=True)
class MarketStructure:
    """Index of a market's purchase rows, trade edges and producers by good.

    It depends only on who sources what from where (``firm_country``, ``row_firm``, ``row_good``,
    ``sourcing_origin``) and on ``producer_good``, not on quantities, prices or measures, so a model
    whose sourcing slots stay fixed builds it once and passes it to every :func:`clear_markets` call.

    Attributes:
        row_order, row_ptr: purchase rows sorted by good, with ``row_ptr[g]:row_ptr[g+1]`` per good.
        edge_good, edge_origin, edge_destination: the distinct trade edges, contiguous by good.
        row_edge: ``[R, K]`` edge of each sourcing slot (``-1`` for an empty slot).
        edge_ptr: ``edge_ptr[g]:edge_ptr[g+1]`` are the edges of good ``g``.
        producer_order, producer_ptr: producers sorted by good, with pointers.
    """

    row_order: np.ndarray
    row_ptr: np.ndarray
    edge_good: np.ndarray
    edge_origin: np.ndarray
    edge_destination: np.ndarray
    row_edge: np.ndarray
    edge_ptr: np.ndarray
    producer_order: np.ndarray
    producer_ptr: np.ndarray

    @classmethod
    def build(cls, market: MarketInputs) -> MarketStructure:
        """Index ``market`` (assumed valid)."""
        return cls(
            *kernel.build_structure(
                int(market.n_countries),
                market.n_goods,
                market.firm_country,
                market.row_firm,
                market.row_good,
                market.sourcing_origin,
                market.producer_good,
            )
        )

    def fits(self, market: MarketInputs) -> bool:
        """Whether the structure has the sizes of ``market`` (a cheap check, not a proof)."""
        return (
            self.row_edge.shape == market.sourcing_origin.shape
            and self.row_ptr.shape[0] == market.n_goods + 1
            and self.producer_order.shape[0] == market.producer_good.shape[0]
        )


@dataclass(frozen=True)
class MarketResult:
    """Outcome of one step's market clearing.

    Prices are ``NaN`` for a (good, country) without supply of the good. ``rows`` arrays are aligned
    with the inputs' purchase rows; ``edge_*`` arrays list every (good, origin, destination) that some
    firm sources from, with the quantity that flowed.

    Attributes:
        price_domestic: ``[G, C]`` price producers receive at home (the domestic price).
        price_export: ``[G, C]`` export price (FOB): domestic price plus export duty plus quota rent.
        quota_rent: ``[G, C]`` wedge between export and duty-inclusive domestic price (>= 0).
        supply_offered: ``[G, C]`` quantity offered at the clearing price (producers and releases).
        sold: ``[G, C]`` quantity sold by each origin (home market and exports).
        exports: ``[G, C]`` quantity each origin exported.
        edge_good, edge_origin, edge_destination: ``[E]`` the trade edges.
        edge_flow: ``[E]`` quantity shipped on each edge.
        edge_price: ``[E]`` delivered price on each edge (duty, rent, transport and tariff included).
        demand: ``[R]`` quantity each purchase row ordered at the clearing prices.
        delivered: ``[R]`` quantity it received.
        rationed: ``[R]`` demanded but not delivered (price cap or export quota rationing, held at
            the border by an informal measure, or not licensed: see ``order_pass``).
        price_index: ``[R]`` the firm's CES delivered-price index (NaN if it had no open origin).
        expenditure: ``[R]`` what it paid, delivered prices times quantities.
        row_flow: ``[R, K]`` quantity received from each sourcing slot.
        producer_output: ``[P]`` quantity each producer sold.
        stockpile_release_used: ``[G, C]`` part of the stockpile release that was sold.
        iterations, residual, converged: ``[G]`` solver diagnostics per good; the residual is the
            largest relative excess demand (or quota overshoot, ``log(E/Q)``) left at the returned
            prices, less what the floating-point price can resolve (a few units in the last place
            of the log price: it matters only for extremely steep supply). ``converged`` is
            ``residual <= tolerance``.
        tolerance: the tolerance the solver was asked for.
    """

    price_domestic: np.ndarray
    price_export: np.ndarray
    quota_rent: np.ndarray
    supply_offered: np.ndarray
    sold: np.ndarray
    exports: np.ndarray
    edge_good: np.ndarray
    edge_origin: np.ndarray
    edge_destination: np.ndarray
    edge_flow: np.ndarray
    edge_price: np.ndarray
    demand: np.ndarray
    delivered: np.ndarray
    rationed: np.ndarray
    price_index: np.ndarray
    expenditure: np.ndarray
    row_flow: np.ndarray
    producer_output: np.ndarray
    stockpile_release_used: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    tolerance: float = field(default=kernel.DEFAULT_TOLERANCE)

    @classmethod
    def _of_kernel(cls, out: tuple, tolerance: float) -> MarketResult:
        """The result from :func:`kernel.clear_all_goods`'s outputs (in field order), set as the
        dataclass's ``__init__`` sets them but without its frozen ``__setattr__`` per field (a third
        of the cost, every month of a run).
        """
        result = object.__new__(cls)
        state = result.__dict__
        state.update(zip(_RESULT_FIELDS, out, strict=True))
        state["tolerance"] = tolerance
        return result

    @property
    def unit_value(self) -> np.ndarray:
        """``[R]`` average delivered price each purchase row paid per unit (NaN if nothing delivered)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.delivered > 0, self.expenditure / np.where(self.delivered > 0, self.delivered, 1.0), np.nan
            )

    def flow_matrix(self, n_goods: int, n_countries: int) -> np.ndarray:
        """Flows as a dense ``[G, C, C]`` array (origin, destination), for small markets and tests."""
        out = np.zeros((n_goods, n_countries, n_countries))
        np.add.at(out, (self.edge_good, self.edge_origin, self.edge_destination), self.edge_flow)
        return out


#: The fields of :class:`MarketResult` the kernel returns, in its order (all but ``tolerance``).
_RESULT_FIELDS = tuple(f.name for f in fields(MarketResult) if f.name != "tolerance")


def clear_markets(
    market: MarketInputs,
    *,
    tolerance: float = kernel.DEFAULT_TOLERANCE,
    max_iterations: int = kernel.DEFAULT_MAX_ITERATIONS,
    validate: bool = True,
    allow_nonconvergence: bool = False,
    structure: MarketStructure | None = None,
    method: str = "newton",
) -> MarketResult:
    """Clear every good's world market for one step.

    For each good the solver finds producer prices per origin and quota rents such that, within
    ``tolerance`` (relative excess demand), every origin's supply equals what firms buy from it,
    exports respect the export quota (a positive rent only where it binds), and prices lie between
    the floor and the cap; at the cap demand is rationed pro rata, at the floor supply goes unsold.

    Args:
        market: The inputs; validated first unless ``validate`` is false (the model validates once).
        tolerance: Largest relative excess demand accepted as cleared.
        max_iterations: Newton iterations allowed per good.
        validate: Check the inputs before computing (one ``ValueError`` naming input and problem).
        allow_nonconvergence: Return a result whose ``converged`` flags are false instead of raising.
        structure: The market's :class:`MarketStructure`, if the caller keeps one across steps (it
            must have been built from the same sourcing slots); built here when omitted.
        method: ``"newton"`` (the default): semismooth Newton with a line search, switching a good
            to fallback sweeps (nonlinear Gauss-Seidel: each price and rent settled in turn by
            bracketing its own condition) where Newton stalls. ``"fallback"``: the sweeps alone,
            slower; for testing the fallback on its own (each sweep counts as an iteration).

    Raises:
        ValueError: an input has the wrong shape or an invalid value.
        MarketClearingError: a good did not clear to ``tolerance`` and nonconvergence is not allowed.
    """
    if validate:
        market.validate()
    if not (tolerance > 0):
        raise ValueError(f"tolerance: must be > 0, got {tolerance}")
    methods = {"newton": kernel.METHOD_NEWTON, "fallback": kernel.METHOD_FALLBACK}
    if method not in methods:
        raise ValueError(f"method: {method!r} is not a solver method; allowed: {sorted(methods)}")
    return _cleared(
        market,
        _structure_of(market, structure),
        float(tolerance),
        int(max_iterations),
        methods[method],
        allow_nonconvergence,
        market.capacity,
        market.unit_cost,
        market.full_capacity_price,
        market.planned_purchase,
        market.demand_elasticity,
        market.sourcing_weights,
        market.order_pass,
        market.ban_intensity,
        market.export_quota,
        market.export_duty,
        market.import_tariff,
        market.initial_price,
        market.initial_rent,
        market.check_warm_start,
    )


def _structure_of(market: MarketInputs, structure: MarketStructure | None) -> MarketStructure:
    """``structure`` if it has ``market``'s sizes (``ValueError`` if not), else one built for it."""
    if structure is None:
        return MarketStructure.build(market)
    if not structure.fits(market):
        raise ValueError("structure: was built for a market of other sizes; rebuild it with MarketStructure.build")
    return structure


def _result_arrays(market: MarketInputs, structure: MarketStructure) -> tuple[np.ndarray, ...]:
    """Arrays for the kernel's outputs (:func:`kernel.clear_all_goods`, which sets every element): the
    fields of :class:`MarketResult` in order, less the edges' goods and countries and the tolerance.
    """
    G, C = market.n_goods, int(market.n_countries)
    R, K = market.sourcing_origin.shape
    E = structure.edge_good.shape[0]
    return (
        *(np.empty((G, C)) for _ in range(6)),  # domestic and export prices, rents, offered, sold, exported
        np.empty(E),  # edge_flow
        np.empty(E),  # edge_price
        *(np.empty(R) for _ in range(5)),  # demand, delivered, rationed, price index, expenditure
        np.empty((R, K)),  # row_flow
        np.empty(market.producer_good.shape[0]),  # producer_output
        np.empty((G, C)),  # stockpile_release_used
        np.empty(G, dtype=np.int64),  # iterations
        np.empty(G),  # residual
        np.empty(G, dtype=np.bool_),  # converged
    )


def _cleared(
    market: MarketInputs,
    structure: MarketStructure,
    tolerance: float,
    max_iterations: int,
    method: int,
    allow_nonconvergence: bool,
    capacity: np.ndarray,
    unit_cost: np.ndarray,
    full_capacity_price: np.ndarray,
    planned_purchase: np.ndarray,
    demand_elasticity: np.ndarray,
    sourcing_weights: np.ndarray,
    order_pass: np.ndarray | None,
    ban_intensity: np.ndarray,
    export_quota: np.ndarray,
    export_duty: np.ndarray,
    import_tariff: np.ndarray,
    initial_price: np.ndarray | None,
    initial_rent: np.ndarray | None,
    check_warm_start: np.ndarray | None,
    outputs: tuple | None = None,
) -> MarketResult:
    """The kernel run on ``market``'s world (reference prices, elasticities, producers, firms, rows,
    transport costs, stockpile releases) with the step's arrays given here (converted as
    :class:`MarketInputs` converts them; ``None`` for the optional ones, as there), and its result
    checked for convergence (:func:`clear_markets`, :meth:`PreparedMarket.clear`). The result's arrays
    are ``outputs`` (:func:`_result_arrays`), new ones when it is ``None``.
    """
    G, C = market.n_goods, int(market.n_countries)
    if outputs is None:
        outputs = _result_arrays(market, structure)
    kernel.clear_all_goods(
        C,
        market.reference_price,
        market.armington_elasticity,
        market.price_cap,
        market.price_floor,
        market.producer_country,
        market.producer_good,
        capacity,
        unit_cost,
        full_capacity_price,
        market.supply_elasticity,
        market.firm_country,
        market.row_firm,
        market.row_good,
        planned_purchase,
        demand_elasticity,
        market.sourcing_origin,
        sourcing_weights,
        order_pass if order_pass is not None else np.ones(sourcing_weights.shape),
        ban_intensity,
        export_quota,
        export_duty,
        import_tariff,
        market.transport_cost,
        market.stockpile_release,
        _float(initial_price) if initial_price is not None else np.full((G, C), np.nan),
        _float(initial_rent) if initial_rent is not None else np.zeros((G, C)),
        check_warm_start if check_warm_start is not None else np.ones(G, dtype=np.bool_),
        tolerance,
        max_iterations,
        structure.row_order,
        structure.row_ptr,
        structure.edge_good,
        structure.edge_origin,
        structure.edge_destination,
        structure.row_edge,
        structure.edge_ptr,
        structure.producer_order,
        structure.producer_ptr,
        method,
        *outputs,
    )
    # The result's fields in order: the kernel's outputs, with the edges' goods and countries (the
    # structure's) after the exports.
    out = (*outputs[:6], structure.edge_good, structure.edge_origin, structure.edge_destination, *outputs[6:])
    result = MarketResult._of_kernel(out, tolerance)
    if not allow_nonconvergence and np.count_nonzero(result.converged) != result.converged.size:
        bad = np.flatnonzero(~result.converged)
        g = int(bad[0])
        raise MarketClearingError(
            f"market for good {g} did not clear: residual {result.residual[g]:.3g} (largest relative excess "
            f"demand or quota overshoot) > tolerance {tolerance:.3g} after {int(result.iterations[g])} "
            f"iterations ({bad.size} good(s) failed: {bad.tolist()[:10]})"
        )
    return result


class PreparedMarket:
    """A market whose world stays the same from step to step (the model's: the same producers, firms,
    purchase rows, reference prices and transport costs), cleared each step with that step's
    quantities, prices and measures.

    What ``clear_markets(market.updated(**step), validate=False, structure=structure)`` computes, the same
    kernel on the same arrays, without building a :class:`MarketInputs` each step (about 2 % of a
    rare_earth_2010 run). Like :meth:`MarketInputs.updated`, a step's arrays are converted, not
    validated: the first step's inputs are, when the market is prepared.

    The results' arrays are two sets used in turn (new arrays each step cost about 10 us to hand
    back from the compiled kernel): a step's :class:`MarketResult` holds its values until the step
    after next clears, so copy what you keep longer (the model keeps last month's prices and rents,
    and copies or sums the rest within the month).

    Args:
        market: The first step's inputs; validated here. Its world arrays are the ones every step uses
            (``stockpile_release`` included: the model's reserves reach firms outside the market).
        tolerance: Largest relative excess demand accepted as cleared (as in :func:`clear_markets`).
        structure: The market's :class:`MarketStructure`; built here when omitted.

    Raises:
        ValueError: ``market`` has an input of the wrong shape or value, or ``tolerance`` is not > 0.
    """

    __slots__ = ("market", "structure", "tolerance", "max_iterations", "_outputs", "_steps")

    def __init__(
        self,
        market: MarketInputs,
        *,
        tolerance: float = kernel.DEFAULT_TOLERANCE,
        max_iterations: int = kernel.DEFAULT_MAX_ITERATIONS,
        structure: MarketStructure | None = None,
    ) -> None:
        market.validate()
        if not (tolerance > 0):
            raise ValueError(f"tolerance: must be > 0, got {tolerance}")
        self.market = market
        self.structure = _structure_of(market, structure)
        self.tolerance = float(tolerance)
        self.max_iterations = int(max_iterations)
        # Two sets of result arrays, used in turn: a step's result holds until the step after next.
        self._outputs = (_result_arrays(market, self.structure), _result_arrays(market, self.structure))
        self._steps = 0

    def clear(
        self,
        *,
        capacity: np.ndarray,
        unit_cost: np.ndarray,
        full_capacity_price: np.ndarray,
        planned_purchase: np.ndarray,
        demand_elasticity: np.ndarray,
        sourcing_weights: np.ndarray,
        ban_intensity: np.ndarray,
        export_quota: np.ndarray,
        export_duty: np.ndarray,
        import_tariff: np.ndarray,
        initial_price: np.ndarray | None = None,
        initial_rent: np.ndarray | None = None,
        order_pass: np.ndarray | None = None,
        check_warm_start: np.ndarray | None = None,
    ) -> MarketResult:
        """Clear one step with these arrays (the :class:`MarketInputs` fields of the same names) and the
        prepared world; semismooth Newton with its fallback, as :func:`clear_markets` by default.

        Raises:
            MarketClearingError: a good did not clear to the tolerance.
        """
        outputs = self._outputs[self._steps % 2]
        self._steps += 1
        return _cleared(
            self.market,
            self.structure,
            self.tolerance,
            self.max_iterations,
            kernel.METHOD_NEWTON,
            False,
            _float(capacity),
            _float(unit_cost),
            _float(full_capacity_price),
            _float(planned_purchase),
            _float(demand_elasticity),
            _float(sourcing_weights),
            _float(order_pass) if order_pass is not None else None,
            _float(ban_intensity),
            _float(export_quota),
            _float(export_duty),
            _float(import_tariff),
            initial_price,
            initial_rent,
            _bool(check_warm_start) if check_warm_start is not None else None,
            outputs,
        )
