"""Mesa agents: states that decide, and firms that are thin views onto the model's arrays.

States (:class:`StateAgent`) are few and decide each month in Python: the coercer runs its coercion
strategy, every state runs its policy levers. Firms are many; their state lives in the model's NumPy
arrays and is advanced by compiled and vectorised code, so :class:`ProducerFirm` and
:class:`UserFirm` only expose their row for inspection through ``model.agents`` (e.g.
``model.agents_by_type[UserFirm].select(lambda f: f.country == "JPN")``).
"""

from __future__ import annotations

import mesa
import numpy as np

__all__ = ["StateAgent", "ProducerFirm", "UserFirm"]


class StateAgent(mesa.Agent):
    """A country: its coalitions, strategic stockpiles, policy levers and, for the coercer, its
    coercion strategy.

    Attributes:
        country: Index of the country in the model's arrays.
        code: ISO 3166 alpha-3 code (or ``EU27``/``ROW``).
        coalitions: Coalitions the country belongs to.
        strategy: The coercion strategy (coercer only, else ``None``).
        levers: Policy levers the state runs each month, in order.
    """

    def __init__(self, model, country: int, code: str, coalitions: list[str], strategy=None) -> None:
        super().__init__(model)
        self.country = int(country)
        self.code = code
        self.coalitions = list(coalitions)
        self.strategy = strategy
        self.levers: list = []

    @property
    def is_coercer(self) -> bool:
        """Whether this state is the scenario's coercer."""
        return self.strategy is not None

    @property
    def stockpile(self) -> dict[str, float]:
        """Strategic stockpile per good (quantity units)."""
        return {g: float(self.model.stockpile[k, self.country]) for k, g in enumerate(self.model.world.goods)}

    def set_measures(self) -> None:
        """Step 1: the coercer's strategy decides which of its measures stay in force."""
        if self.strategy is not None:
            self.strategy.decide(self.model, self.model.step_index)

    def act(self) -> None:
        """Step 2: run this state's policy levers (stockpile releases, subsidies, coalition action).

        A lever is any :class:`sim.policy.levers.Lever` (an object with ``act(model, state)``); it may release
        reserve stock to firms (``model.stockpile_release`` and ``model.stockpile_delivery``, by good
        and country) and books its cost (US$) in ``model.lever_cost[lever, country]``, recorded as the
        ``policy_cost`` and ``policy_cost_<lever>`` variables.
        """
        for lever in self.levers:
            lever.act(self.model, self)


class ProducerFirm(mesa.Agent):
    """A producer or a capacity project of one good in one country (a view onto row ``index``)."""

    def __init__(self, model, index: int) -> None:
        super().__init__(model)
        self.index = int(index)

    @property
    def name(self) -> str:
        """Name from the scenario (e.g. ``Lynas Mt Weld/LAMP``)."""
        return self.model.world.producer_name[self.index]

    @property
    def country(self) -> str:
        """Country code."""
        return self.model.world.countries[self.model.world.producer_country[self.index]]

    @property
    def good(self) -> str:
        """Good id."""
        return self.model.world.goods[self.model.world.producer_good[self.index]]

    @property
    def is_project(self) -> bool:
        """Whether this is a potential project rather than an existing producer."""
        return bool(self.model.world.is_project[self.index])

    @property
    def started(self) -> bool:
        """Whether the project has started (existing producers: always)."""
        return bool((not self.is_project) or self.model.project_start[self.index] < np.iinfo(np.int64).max)

    @property
    def capacity(self) -> float:
        """Current capacity, quantity per month."""
        return float(self.model.capacity[self.index])

    @property
    def output(self) -> float:
        """Quantity sold last month."""
        return float(self.model.producer_output[self.index])

    @property
    def usable_capacity(self) -> float:
        """Capacity the market saw last month, quantity per month: the capacity, limited by the input
        stock for a good with inputs and by the host's output for a by-product (:mod:`sim.model.chains`).
        """
        return float(self.model.usable_capacity[self.index])

    @property
    def input_inventory(self) -> dict[str, float]:
        """Input stock per input good at the end of last month (empty for a good without inputs)."""
        m = self.model
        if m.chains is None:
            return {}
        w = m.world
        rows = m.chains.input_rows[m.chains.input_row_producer == self.index]
        return {w.goods[w.row_good[r]]: float(m.inventory[r]) for r in rows}

    @property
    def unit_cost(self) -> float:
        """Unit cost in the good's price unit."""
        return float(self.model.world.unit_cost[self.index])


class UserFirm(mesa.Agent):
    """A downstream firm using critical goods (a view onto firm ``index`` and its purchase rows)."""

    def __init__(self, model, index: int) -> None:
        super().__init__(model)
        self.index = int(index)

    def _rows(self) -> np.ndarray:
        return self.model.rows_of_firm[self.index]

    @property
    def country(self) -> str:
        """Country code."""
        return self.model.world.countries[self.model.world.firm_country[self.index]]

    @property
    def sector(self) -> str:
        """Sector name."""
        return self.model.world.sector_names[self.model.world.firm_sector[self.index]][1]

    @property
    def baseline_value_added(self) -> float:
        """Value added per month at baseline (US$)."""
        return float(self.model.world.firm_value_added[self.index])

    @property
    def output(self) -> float:
        """Value added produced last month (US$)."""
        return float(self.model.firm_output[self.index])

    @property
    def output_loss(self) -> float:
        """Shortfall of last month's value added against plan (US$)."""
        return float(self.model.firm_output_loss[self.index])

    @property
    def inventory(self) -> dict[str, float]:
        """Inventory per good (quantity units)."""
        w = self.model.world
        return {w.goods[w.row_good[r]]: float(self.model.inventory[r]) for r in self._rows()}

    @property
    def sourcing_weights(self) -> dict[str, dict[str, float]]:
        """Current Armington weights per good and origin."""
        w = self.model.world
        out: dict[str, dict[str, float]] = {}
        for r in self._rows():
            out[w.goods[w.row_good[r]]] = {
                w.countries[o]: float(x) for o, x in zip(w.slot_origin[r], self.model.weights[r], strict=True) if o >= 0
            }
        return out
