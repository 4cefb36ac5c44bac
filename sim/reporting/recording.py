"""Records of a run: preallocated arrays per month, turned into tidy tables at the end.

``timeseries`` has one row per observation: ``date``, ``step``, ``country``, ``good``, ``variable``,
``value`` (country-level variables use good ``all``); ``flows`` has one row per non-zero trade flow:
``date``, ``step``, ``good``, ``origin``, ``destination``, ``quantity``, ``value``. Units and meanings
of every variable are in :data:`VARIABLES` (and the README).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.model import kernels

__all__ = ["Recorder", "VARIABLES"]

#: variable -> (level, unit, meaning). Level ``good`` is per (country, good); ``country`` per country.
VARIABLES: dict[str, tuple[str, str, str]] = {
    "price_domestic": ("good", "price unit", "price producers in the country receive at home (NaN: no supply)"),
    "price_export": ("good", "price unit", "export price (FOB): domestic price + export duty + quota rent"),
    "quota_rent": ("good", "price unit", "wedge between export and duty-inclusive domestic price"),
    "price_paid": (
        "good",
        "price unit",
        "average delivered price the country's firms paid (duties, rent, transport, tariffs included)",
    ),
    "demand": ("good", "quantity/month", "quantity firms demanded at the clearing prices"),
    "delivered": (
        "good",
        "quantity/month",
        "quantity delivered to buyers in the country (its firms, and its reserve's purchases)",
    ),
    "shortage": ("good", "quantity/month", "requirement for planned output not covered by inventory and deliveries"),
    "rationed": ("good", "quantity/month", "demanded but not delivered (price cap, quota, or held at the border)"),
    "inventory": ("good", "quantity", "firms' inventory at the end of the month"),
    "stockpile": ("good", "quantity", "state strategic stockpile at the end of the month"),
    "stockpile_purchase": (
        "good",
        "quantity/month",
        "bought on the market for the state's reserve (part of delivered)",
    ),
    "stockpile_release": (
        "good",
        "quantity/month",
        "reserve stock released to the country's firms (its own reserve or a coalition partner's)",
    ),
    "capacity": ("good", "quantity/month", "producers' capacity"),
    "capacity_offered": (
        "good",
        "quantity/month",
        "capacity the market saw after the country's domestic instruments (halts, crackdowns, production quota caps)",
    ),
    "production": ("good", "quantity/month", "quantity the country's producers sold"),
    "imports": ("good", "quantity/month", "quantity imported"),
    "exports": ("good", "quantity/month", "quantity exported"),
    "requirement_index": (
        "good",
        "index (start = 1)",
        "requirement per unit of output relative to the start (substitution)",
    ),
    "investment": ("good", "US$/month", "capital spending on capacity projects in the country"),
    "usable_capacity": (
        "good",
        "quantity/month",
        "value chains: capacity the market saw, limited by the producers' input stock and, for a by-product, by "
        "the host good's output last month x recovery (only goods with inputs or a host)",
    ),
    "lost_output": (
        "good",
        "quantity/month",
        "value chains: output the producers could not make for lack of inputs (or host output): what they would "
        "have offered at the month's price with their full capacity, less what the usable capacity offered",
    ),
    "input_use": (
        "good",
        "quantity/month",
        "value chains: quantity of the good the country's producers of other goods used as an input",
    ),
    "input_inventory": (
        "good",
        "quantity",
        "value chains: the country's producers' input stock of the good at the end of the month (part of inventory)",
    ),
    "output_loss": (
        "country",
        "US$/month",
        "value added the country's user firms lost against baseline: output cut for scarce inputs and for input prices above baseline",
    ),
    "value_added": ("country", "US$/month", "value added produced by the country's user firms"),
    "policy_cost": (
        "country",
        "US$/month",
        "cost the state's policy levers booked this month, all levers (zero without levers)",
    ),
    "policy_revenue": (
        "country",
        "US$/month",
        "what the state's reserves earned selling stock to firms (not netted from policy_cost)",
    ),
    "domestic_measure_cost": (
        "country",
        "US$/month",
        "cost of the country's domestic instruments this month: producers' lost margin (quotas, crackdowns, halts) + state purchases - production tax revenue",
    ),
    **{
        f"domestic_cost_{kind}": ("country", "US$/month", f"cost booked by the country's {kind} measures ({meaning})")
        for kind, meaning in (
            ("production_quota", "producers' margin lost on the sales the quota prevented"),
            ("crackdown", "margin lost on the sales of the closed capacity"),
            ("production_halt", "margin lost on the sales of the halted capacity"),
            ("production_tax", "minus the tax revenue: negative"),
            ("state_purchase", "purchase spending at the prices paid"),
        )
    },
    **{
        f"policy_cost_{lever}": (
            "country",
            "US$/month",
            f"cost booked by the {lever} lever (only in runs with that lever)",
        )
        for lever in (
            "stockpile",
            "collective_response",
            "inventory_incentive",
            "substitution",
            "diversification",
            "friendshoring",
            "recycling",
        )
    },
}


#: The (good, country) variables :func:`sim.model.kernels.record_month` writes, in its argument order.
_RECORDED_MONTHLY = (
    "price_domestic",
    "price_export",
    "quota_rent",
    "price_paid",
    "demand",
    "delivered",
    "shortage",
    "rationed",
    "inventory",
    "capacity",
    "production",
    "capacity_offered",
    "requirement_index",
)

#: The [G, C] records copied from the model's arrays each month, in sim.model.kernels.record_stocks_and_costs's order.
_RECORDED_STOCKS = ("stockpile", "imports", "exports", "investment", "stockpile_release", "stockpile_purchase")


class Recorder:
    """Collects a model's variables month by month into preallocated arrays."""

    def __init__(self, model) -> None:
        w = model.world
        self.model = model
        T, G, C = w.calendar.n_steps, len(w.goods), len(w.countries)
        self.T, self.G, self.C = T, G, C
        wanted = list(model.cfg.output.variables)
        self.variables = [v for v in VARIABLES if "all" in wanted or v in wanted]
        self.good_level = {v: np.full((T, G, C), np.nan) for v in VARIABLES if VARIABLES[v][0] == "good"}
        self.country_level = {v: np.full((T, C), np.nan) for v in VARIABLES if VARIABLES[v][0] == "country"}
        # Edge flows are kept for the metrics (import shares, redirection) even when flows.parquet is
        # not written; indices are stored in the narrowest integer type that fits (an empty array of it
        # tells kernels.positive_flows).
        self._index_like = np.empty(0, dtype=np.int16 if max(G, C) < 2**15 else np.int32)
        self.flows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.coercer_cost = np.zeros(T)
        self.coercer_export_revenue = np.zeros(T)
        self.steps_recorded = 0
        gc_of_row = w.row_good * C + w.firm_country[w.row_firm]
        self._gc_of_row = gc_of_row
        self._row_value_added = np.ascontiguousarray(w.firm_value_added[w.row_firm], dtype=float)
        self._base_need_gc = np.bincount(
            gc_of_row, weights=w.row_requirement * w.firm_value_added[w.row_firm], minlength=G * C
        )
        n_user = w.n_user_firms  # firms after these are producers' input buyers (sim.model.chains)
        self._user_country = w.firm_country[:n_user]
        self._user_sector = w.firm_sector[:n_user]
        self.baseline_value_added = np.bincount(self._user_country, weights=w.firm_value_added[:n_user], minlength=C)
        #: Value added lost by each user sector over the run, and its baseline per month (US$).
        self.sector_output_loss = np.zeros(len(w.sector_names))
        self.sector_baseline_value_added = np.bincount(
            self._user_sector, weights=w.firm_value_added[:n_user], minlength=len(w.sector_names)
        )
        # Value chains: which goods' chain variables apply, and the rows of producers' input buyers.
        chains = model.chains
        self._chain_goods = chains.chain_goods if chains is not None else np.zeros(G, dtype=bool)
        self._input_goods = chains.input_goods if chains is not None else np.zeros(G, dtype=bool)
        self._input_rows = chains.input_rows if chains is not None else np.zeros(0, dtype=np.int64)
        # Baseline unit value paid by the coercer's firms, per good (for its domestic cost).
        self._base_paid: np.ndarray | None = None
        # Months in which a country's firms bought a good from an origin whose price sat at the price
        # cap (domestic price at the cap, or export price with the quota rent at its ceiling) [T, G, C].
        self.at_price_cap = np.zeros((T, G, C), dtype=bool)
        # An origin's price at the cap, to a relative 1e-9 ([G]).
        self._cap_level = np.asarray(w.price_cap * w.reference_price, dtype=float) * (1.0 - 1e-9)
        self._domestic_cache: tuple[list[str], np.ndarray, np.ndarray, list[np.ndarray]] | None = None
        # The arrays each month writes into, looked up once (the dictionaries' arrays are allocated
        # here and only ever written in place).
        self._monthly_out = tuple(self.good_level[v] for v in _RECORDED_MONTHLY)
        self._stock_out = tuple(self.good_level[v] for v in _RECORDED_STOCKS)
        # The model's levers, each one's row of the model's lever costs and their records (drawn up
        # again if the list changes; _lever_records).
        self._lever_out: tuple[list, np.ndarray, np.ndarray] | None = None

    def record(self, t: int, result, production: dict, purchase: np.ndarray) -> None:
        """Store month ``t``."""
        m = self.model
        gl = self.good_level
        # Prices, the purchase rows' totals by (good, destination) and the producers' by (good,
        # country), in one compiled pass (sim.model.kernels.record_month).
        offered = m.capacity_offered if m.domestic else m.capacity_cleared
        kernels.record_month(
            t,
            self._gc_of_row,
            self._row_value_added,
            result.delivered,
            result.expenditure,
            result.demand,
            production["shortage"],
            result.rationed,
            m.inventory,
            production["requirement"],
            self._base_need_gc,
            m._producer_gc,
            m.capacity_cleared,
            result.producer_output,
            offered,
            result.price_domestic,
            result.price_export,
            result.quota_rent,
            *self._monthly_out,
        )
        delivered = gl["delivered"][t]
        levers = m.levers
        if self._lever_out is None or self._lever_out[0] is not levers or len(self._lever_out[1]) != len(levers):
            self._lever_out = self._lever_records(levers)
        # The month's reserves, trade, investment, reserve releases and purchases, policy cost and revenue
        # and each lever's cost, copied in one compiled pass (sim.model.kernels.record_stocks_and_costs).
        cl = self.country_level
        kernels.record_stocks_and_costs(
            t,
            m.stockpile,
            m.trade_totals(result)[2],
            result.exports,
            m._investment,
            m.stockpile_delivery,
            m.stockpile_bought,
            m.state_purchase_bought,
            *self._stock_out,
            m.policy_cost,
            m.policy_revenue,
            m.lever_cost,
            self._lever_out[1],
            cl["policy_cost"],
            cl["policy_revenue"],
            self._lever_out[2],
        )
        # By country this month and, with value chains, by sector over the run (sim.model.kernels.record_output_loss).
        kernels.record_output_loss(
            t,
            self._user_country,
            self._user_sector,
            m.firm_output_loss,
            m.firm_output,
            cl["output_loss"],
            cl["value_added"],
            self.sector_output_loss,
            m.chains is not None,
        )
        if m.chains is not None:
            kernels.record_chain_month(
                t,
                m._producer_gc,
                m.usable_capacity,
                m.lost_output,
                self._chain_goods,
                self._input_goods,
                self._input_rows,
                self._gc_of_row,
                m.input_use,
                m.inventory,
                gl["usable_capacity"],
                gl["lost_output"],
                gl["input_use"],
                gl["input_inventory"],
            )
        if m.domestic:
            # Each instrument's cost this month summed by imposer, over all kinds and by kind (in the
            # instruments' order, as a loop adding them one by one would); only the instruments dated
            # in this month can have booked a cost in it (CoercionModel._book_domestic).
            _, kind_of, imposer, by_kind = self._domestic_groups()
            kernels.record_domestic_costs(
                t,
                m.domestic_cost,
                m.domestic_dated_positions(t),
                imposer,
                kind_of,
                self.country_level["domestic_measure_cost"],
                by_kind,
            )

        # Coercer's cost this month: export revenue lost against baseline, plus the extra its own
        # firms paid for the goods against baseline prices (both can be negative: gains).
        c = m.coercer_index
        paid_unit = gl["price_paid"][t, :, c]
        if self._base_paid is None:
            self._base_paid = kernels.nan_to_num(paid_unit)
        revenue, extra = kernels.coercer_month(
            result.exports[:, c], result.price_export[:, c], paid_unit, self._base_paid, delivered[:, c]
        )
        self.coercer_export_revenue[t] = revenue
        lost = m.baseline_coercer_revenue - revenue
        self.coercer_cost[t] = lost + extra

        self._record_price_cap(t, result)
        flows = kernels.positive_flows(
            result.edge_good,
            result.edge_origin,
            result.edge_destination,
            result.edge_flow,
            result.edge_price,
            self._index_like,
        )
        self.flows.append((t, *flows))
        self.steps_recorded = t + 1

    def __setstate__(self, state: dict) -> None:
        """Restore a copied or unpickled recorder: the lever and domestic-kind cost records are rows of
        stacked arrays (the arrays the compiled passes write), and copying makes such views arrays of
        their own, so the records are tied to the rows again.
        """
        self.__dict__.update(state)
        if self._lever_out is not None:
            self._tie_records([f"policy_cost_{lv.name}" for lv in self._lever_out[0]], self._lever_out[2])
        if self._domestic_cache is not None:
            self._tie_records([f"domestic_cost_{kind}" for kind in self._domestic_cache[0]], self._domestic_cache[3])

    def _stacked_records(self, names: list[str]) -> np.ndarray:
        """The country-level records ``names`` stacked ``[len(names), T, C]``, the records becoming views of
        it (keeping what they hold), for the compiled passes that write them all at once.
        """
        cl = self.country_level
        stacked = np.stack([cl[name] for name in names]) if names else np.zeros((0, self.T, self.C))
        self._tie_records(names, stacked)
        return stacked

    def _tie_records(self, names: list[str], stacked: np.ndarray) -> None:
        for j, name in enumerate(names):
            self.country_level[name] = stacked[j]

    def _lever_records(self, levers: list) -> tuple[list, np.ndarray, np.ndarray]:
        """``levers``, each one's row of the model's ``lever_cost`` and their ``policy_cost_<lever>``
        records stacked ``[levers, T, C]`` (:meth:`_stacked_records`).
        """
        index = np.array([lv.index for lv in levers], dtype=np.int64)
        return levers, index, self._stacked_records([f"policy_cost_{lv.name}" for lv in levers])

    def _domestic_groups(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """The kinds of the model's domestic instruments (in order of appearance), each instrument's
        kind index and its imposer, and the ``domestic_cost_<kind>`` arrays of those kinds stacked
        ``[kinds, T, C]`` (:meth:`_stacked_records`); derived once (the instruments are fixed when the
        model is built).
        """
        if self._domestic_cache is None:
            domestic = self.model.domestic
            kinds = list(dict.fromkeys(dm.classifier["instrument"] for dm in domestic))
            kind_of = np.array([kinds.index(dm.classifier["instrument"]) for dm in domestic], dtype=np.int64)
            imposer = np.array([dm.imposer for dm in domestic], dtype=np.int64)
            by_kind = self._stacked_records([f"domestic_cost_{kind}" for kind in kinds])
            self._domestic_cache = (kinds, kind_of, imposer, by_kind)
        return self._domestic_cache

    def _record_price_cap(self, t: int, result) -> None:
        """Mark the (good, destination) pairs that bought from an origin priced at the cap this month
        (:func:`sim.model.kernels.mark_price_cap`, one pass over the month's trade edges).
        """
        kernels.mark_price_cap(
            self.at_price_cap[t],
            result.price_domestic,
            result.price_export,
            self._cap_level,
            result.edge_good,
            result.edge_origin,
            result.edge_destination,
            result.edge_flow,
        )

    # ---- trailing outcomes for strategies ----
    def trailing_output_loss_share(self, country: int, months: int, t: int) -> float:
        """Output loss over months ``t-months+1 .. t`` as a share of baseline value added."""
        lo = max(0, t - months + 1)
        if t < 0 or self.baseline_value_added[country] <= 0:
            return 0.0
        loss = np.nansum(self.country_level["output_loss"][lo : t + 1, country])
        return float(loss / (self.baseline_value_added[country] * (t + 1 - lo)))

    def trailing_coercer_cost(self, months: int, t: int) -> float:
        """Coercer's cost summed over the last ``months`` months (US$)."""
        lo = max(0, t - months + 1)
        return float(self.coercer_cost[lo : t + 1].sum()) if t >= 0 else 0.0

    # ---- tables ----
    def timeseries(self) -> pd.DataFrame:
        """The tidy time-series table (NaN observations left out)."""
        w = self.model.world
        T = self.steps_recorded
        dates = w.calendar.dates()[:T]
        countries = pd.CategoricalDtype(w.countries)
        goods = pd.CategoricalDtype(list(w.goods) + ["all"])
        variables = pd.CategoricalDtype(list(VARIABLES))
        G, C = self.G, self.C
        # Variable by variable, then step, good, country (the arrays' C order). The finite
        # observations' flat positions are split into step/good/country codes written straight
        # into preallocated columns (tens of millions of rows in a large world: no per-variable
        # frames to concatenate, no second copy).
        if not self.variables:
            return pd.DataFrame(columns=["date", "step", "country", "good", "variable", "value"])
        arrays = [
            (v, self.good_level[v][:T] if VARIABLES[v][0] == "good" else self.country_level[v][:T])
            for v in self.variables
        ]
        n = sum(int(np.count_nonzero(np.isfinite(a))) for _, a in arrays)
        code_dtype = np.int16 if max(G + 1, C, len(VARIABLES)) < 2**15 else np.int32
        step = np.empty(n, dtype=np.int32)
        good_codes = np.empty(n, dtype=code_dtype)
        country_codes = np.empty(n, dtype=code_dtype)
        var_codes = np.empty(n, dtype=code_dtype)
        values = np.empty(n)
        at = 0
        for v, arr in arrays:
            pos = np.flatnonzero(np.isfinite(arr))
            part = slice(at, at + pos.size)
            if VARIABLES[v][0] == "good":
                step[part] = pos // (G * C)
                good_codes[part] = (pos // C) % G
            else:
                step[part] = pos // C
                good_codes[part] = G
            country_codes[part] = pos % C
            var_codes[part] = list(VARIABLES).index(v)
            values[part] = arr.ravel()[pos]
            at += pos.size
        return pd.DataFrame(
            {
                "date": dates.astype("datetime64[ms]")[step],
                "step": step,
                "country": pd.Categorical.from_codes(country_codes, dtype=countries),
                "good": pd.Categorical.from_codes(good_codes, dtype=goods),
                "variable": pd.Categorical.from_codes(var_codes, dtype=variables),
                "value": values,
            },
            copy=False,
        )

    def flows_table(self) -> pd.DataFrame:
        """The tidy flows table (non-zero flows only)."""
        w = self.model.world
        dates = w.calendar.dates()
        countries = pd.CategoricalDtype(w.countries)
        goods = pd.CategoricalDtype(list(w.goods))
        if not self.flows:
            return pd.DataFrame(
                {
                    "date": pd.Series([], dtype="datetime64[ms]"),
                    "step": pd.Series([], dtype=np.int32),
                    "good": pd.Categorical([], dtype=goods),
                    "origin": pd.Categorical([], dtype=countries),
                    "destination": pd.Categorical([], dtype=countries),
                    "quantity": pd.Series([], dtype=float),
                    "value": pd.Series([], dtype=float),
                }
            )
        t = np.concatenate([np.full(f[1].size, f[0], dtype=np.int32) for f in self.flows])
        return pd.DataFrame(
            {
                "date": dates[t].astype("datetime64[ms]"),
                "step": t,
                "good": pd.Categorical.from_codes(
                    np.concatenate([f[1] for f in self.flows]).astype(np.int32), dtype=goods
                ),
                "origin": pd.Categorical.from_codes(
                    np.concatenate([f[2] for f in self.flows]).astype(np.int32), dtype=countries
                ),
                "destination": pd.Categorical.from_codes(
                    np.concatenate([f[3] for f in self.flows]).astype(np.int32), dtype=countries
                ),
                "quantity": np.concatenate([f[4] for f in self.flows]),
                "value": np.concatenate([f[5] for f in self.flows]),
            }
        )
