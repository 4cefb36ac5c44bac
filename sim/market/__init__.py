"""World market clearing: one step, every critical good (numba kernels behind a typed front end)."""

from sim.market.clearing import (
    MarketClearingError,
    MarketInputs,
    MarketResult,
    MarketStructure,
    PreparedMarket,
    clear_markets,
)

__all__ = [
    "MarketClearingError",
    "MarketInputs",
    "MarketResult",
    "MarketStructure",
    "PreparedMarket",
    "clear_markets",
]
