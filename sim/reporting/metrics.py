"""Scalar outcomes of a run (``metrics.json``): the design's "Outcomes every run reports".

The design is summarised in ``docs/sources/model_design.md`` (section 7).

Keys are dotted paths (``output_loss_share.JPN``) so a sweep's collector can flatten them into
columns. Every key is listed with its unit and meaning in :data:`METRIC_DOCS` (and the README).
Prices are compared with the first simulated month (the baseline), so ratios are unit-free.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["compute_metrics", "METRIC_DOCS"]

METRIC_DOCS: dict[str, str] = {
    "scenario": "scenario name",
    "seed": "root seed of the run",
    "n_steps": "months simulated",
    "clearing_max_iterations": "most Newton iterations any market clearing needed (a run fails if one does not converge)",
    "clearing_max_residual": "largest relative excess demand left by any clearing (below the solver tolerance)",
    "peak_export_price_ratio.<good>": "coercer's highest export price / its first-month export price",
    "peak_export_price_date.<good>": "month of that peak (YYYY-MM)",
    "peak_domestic_price_ratio.<good>": "coercer's highest domestic price / its first-month domestic price",
    "export_domestic_wedge_at_peak.<good>": "coercer's export price / domestic price in the month of the export-price peak",
    "export_domestic_wedge_end.<good>": "the same wedge in the last month",
    "peak_price_paid_ratio.<good>.<country>": "highest average delivered price paid / first-month value",
    "months_above_2x.<good>": "months the world import price of the good was above twice its first-month value",
    "shortage.<good>.<country>": "total unmet requirement over the run (quantity)",
    "rationed.<good>.<country>": "total rationed or blocked quantity over the run",
    "shortage_months.<country>": "months in which the country's firms lacked (shortage or rationing) more than 1% of their baseline monthly use of some good",
    "output_loss.<country>": "value added lost over the run (US$)",
    "output_loss_share.<country>": "output loss / baseline value added over the run",
    "peak_output_loss_share.<country>": "largest monthly output loss / baseline monthly value added",
    "first_output_loss_date.<country>": "first month with an output loss above 0.1% of monthly value added (null: none)",
    "min_inventory_months.<good>.<country>": "lowest inventory in months of baseline requirement",
    "coercer_import_share_start.<good>.<country>": (
        "coercer's share of the country's imports in the first 12 months (absent for the coercer itself)"
    ),
    "coercer_import_share_end.<good>.<country>": "the same share in the last 12 months",
    "import_hhi_start.<good>.<country>": "Herfindahl index of the country's import origins, first 12 months",
    "import_hhi_end.<good>.<country>": "the same in the last 12 months",
    "new_capacity.<good>.<country>": "capacity at the end minus at the start (quantity per year)",
    "redirected_share_12m.<good>.<country>": "target exporter: share of its lost sales to the coercer re-sold elsewhere in the 12 months from the coercer's first measure on the good",
    "redirected_share_24m.<good>.<country>": "the same over 24 months",
    "export_price_received_ratio_12m.<good>.<country>": "target exporter's average domestic (producer) price in those 12 months / first month",
    "export_revenue_lost.<good>.<country>": "target: export revenue (FOB) on the good below its first-month rate, summed over the run (US$; negative: a gain)",
    "export_revenue_lost.<country>": "target: the same over all goods (US$)",
    "export_revenue_lost_share.<country>": "target: that loss / its first-month export revenue on the goods x months simulated",
    "buyer_cost.<good>.<country>": "coercer's buyers: extra they paid for the good against first-month delivered prices, duties included (US$)",
    "coercer_cost.lost_export_revenue": "coercer's export revenue on the goods below baseline, summed (US$; negative: a gain)",
    "coercer_cost.domestic_input_cost": "extra its own firms paid for the goods against first-month prices (US$)",
    "coercer_cost.output_loss": "value added its own firms lost (US$)",
    "coercer_cost.total": "sum of the three (US$)",
    "policy_cost.total.<country>": "what the country's policy levers cost over the run, all levers (US$; 0 without levers)",
    "policy_cost.<lever>.<country>": "the same for one lever (stockpile, diversification, inventory_incentive, friendshoring, collective_response, substitution, recycling)",
    "lever_active.<lever>": "1 if the policy lever acted in at least one month of the run, else 0 (a lever that cannot act in the scenario, or did not in the run, also raises sim.policy.levers.InactiveLeverWarning naming the reason)",
    "lever_effect.<lever>": "months in which the lever acted: stockpile released or ordered stock; diversification moved sourcing weight; inventory_incentive raised firms' target cover; friendshoring and recycling had financed capacity in place; substitution lowered a requirement; collective_response did any of its parts",
    "policy_revenue.<country>": "what its reserves earned selling stock to firms over the run (US$; not netted from the cost)",
    "domestic_cost.total.<country>": "what the country's domestic instruments cost it over the run (US$): producers' lost margin under production quotas, crackdowns and halts, plus state purchase spending, minus production tax revenue (only in runs with domestic instruments)",
    "domestic_cost.production_quota.<country>": "the same for its production quotas: producers' margin lost on the sales the quotas prevented (US$, >= 0)",
    "domestic_cost.crackdown.<country>": "the same for its crackdowns: margin lost on the sales of the closed capacity (US$, >= 0)",
    "domestic_cost.production_halt.<country>": "the same for its production halts: margin lost on the sales of the halted capacity (US$, >= 0)",
    "domestic_cost.production_tax.<country>": "the same for its production taxes: minus the tax revenue (US$, <= 0)",
    "domestic_cost.state_purchase.<country>": "the same for its state purchases: spending at the prices paid (US$, >= 0)",
    "state_purchased.<good>.<country>": "quantity the country's state purchases bought over the run (held in its stock, the stockpile variable)",
    "state_stock_end.<good>.<country>": "the country's state stock at the end of the run (quantity; reserves of stockpile levers included)",
    "stockpile_released.<good>.<country>": "reserve stock delivered to the country's firms over the run (quantity; own or shared)",
    "price_cap_months.<good>.<country>": "months in which the country's firms bought the good from an origin whose price sat at the price cap (domestic price at the cap, or export price with the quota rent at its ceiling); 0 when the cap never binds",
    "price_cap_months.total": "months in which any country bought any good at a capped price (a result resting on the cap: the run lacks a mechanism)",
    "strategy": "coercer's strategy (schedule, rules or game)",
    "game.disputes": "disputes that arose between the coercer and its possible targets (strategic layer)",
    "game.episodes": "disputes the coercer threatened over (rows of episodes.parquet)",
    "game.outcome.conceded_at_threat": "episodes with outcome conceded_at_threat (strategic layer)",
    "game.outcome.conceded_after_imposition": "episodes with outcome conceded_after_imposition (strategic layer)",
    "game.outcome.coercer_backed_down": "episodes with outcome coercer_backed_down (strategic layer)",
    "game.outcome.stalemate": "episodes with outcome stalemate (strategic layer)",
    "game.outcome.ended_by_ruling": "episodes with outcome ended_by_ruling (strategic layer)",
    "game.outcome.ongoing": "episodes with outcome ongoing (strategic layer)",
    "game.success_rate": "share of ended episodes in which the target conceded (null: none ended)",
    "game.coercer_cost": "coercer's cost over the months its measures were in force, US$ (output loss plus lost export revenue)",
    "game.target_cost": "targets' cost over the months measures were in force, US$",
    "game.rollouts": "forward simulations the coercer ran to decide",
    "game.rollout_months": "months simulated in those forward simulations",
    "game.credibility_end": "coercer's credibility at the end (share of a threatened pain targets expect)",
    "game.government_changes": "changes of government in the targets (each redraws its resolve)",
    "game.coalition_support_episodes": "episodes in which a coalition of the target acted (coalition_support > 0)",
    "game.coalition_stock": "quantity (all goods, their units) coalition members' game stocks delivered to coerced members",
    "game.counter_measures": "coalition counter-measures imposed on the coercer (members x episodes)",
    "game.leverage_goods": "goods on which a coalition can counter-threaten: the coercer imports them for at least the coalition's dependence_threshold from its members (0: no counter-threat can act; sim.coercion.strategy.InactiveCoalitionWarning names the coalition and why)",
    "conceded": "whether a target conceded (rule-based strategy)",
    "concession_date": "month a target conceded (YYYY-MM; null: none)",
    "conceding_country": "the target that conceded (only when one did)",
    "lost_output.<good>.<country>": (
        "value chains: output the country's producers of the good could not make for lack of inputs (or host "
        "output), summed over the run (quantity; goods with inputs or a host only)"
    ),
    "lost_output_value.<good>.<country>": "the same valued at the good's reference price (US$)",
    "lost_output_share.<good>.<country>": "that lost output / the producers' baseline output over the run",
    "output_loss_sector.<country>.<sector>": (
        "value chains: value added one user sector lost over the run (US$; runs with value chains only)"
    ),
    "output_loss_sector_share.<country>.<sector>": "that loss / the sector's baseline value added over the run",
    "clearing_seconds": "wall time spent in market clearing",
}


#: The collective response reports each of its parts (sim.policy.levers.CollectiveResponse.PARTS) separately.
_RESPONSE_PARTS = {
    "buy_target_exports": "members raised sourcing weight toward a member whose exports the coercer shut out",
    "share_stockpiles": "a member's reserve or the coalition stock delivered to a coerced member's firms",
    "counter_tariff": "members' counter-tariffs were paid on imports from the coercer",
    "counter_restriction": "members' counter-restriction on the leverage goods was in force",
}
for _part, _what in _RESPONSE_PARTS.items():
    METRIC_DOCS[f"lever_active.collective_response.{_part}"] = (
        f"1 if this part of the collective response acted in some month ({_what}), else 0"
    )
    METRIC_DOCS[f"lever_effect.collective_response.{_part}"] = f"months in which {_what}"


def _chain_metrics(model, T: int, out: dict) -> None:
    """Losses by stage (good), sector and country in a run with value chains."""
    rec, w = model.recorder, model.world
    lost = rec.good_level["lost_output"][:T]
    for g, good in enumerate(w.goods):
        if not rec._chain_goods[g]:
            continue
        for c, code in enumerate(w.countries):
            base = w.baseline_output[g, c] * T
            total = float(np.nansum(lost[:, g, c]))
            if base <= 0 and total <= 0:
                continue
            out[f"lost_output.{good}.{code}"] = total
            out[f"lost_output_value.{good}.{code}"] = total * float(w.reference_price[g])
            if base > 0:
                out[f"lost_output_share.{good}.{code}"] = float(total / base)
    for k, (code, sector) in enumerate(w.sector_names):
        base = rec.sector_baseline_value_added[k] * T
        if base <= 0:
            continue  # producers' input buyers: their losses are lost_output above
        out[f"output_loss_sector.{code}.{sector}"] = float(rec.sector_output_loss[k])
        out[f"output_loss_sector_share.{code}.{sector}"] = float(rec.sector_output_loss[k] / base)


def _month(date) -> str:
    return str(np.datetime64(date, "M"))


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def compute_metrics(model) -> dict:
    """Scalar outcomes of a finished (or partly run) model."""
    rec, w = model.recorder, model.world
    T = rec.steps_recorded
    dates = w.calendar.dates()[:T]
    gl, cl = rec.good_level, rec.country_level
    c0 = w.coercer
    out: dict[str, object] = {
        "scenario": str(model.cfg.scenario.name),
        "seed": int(model.cfg.seed),
        "n_steps": int(T),
    }
    if T == 0:
        return out
    cubes = _FlowCubes(rec, T)
    first_measure = _first_measure_steps(model, len(w.goods))
    capped = rec.at_price_cap[:T]
    out["price_cap_months.total"] = int(capped.any(axis=(1, 2)).sum())
    for g, good in enumerate(w.goods):
        for c, code in enumerate(w.countries):
            out[f"price_cap_months.{good}.{code}"] = int(capped[:, g, c].sum())
    for g, good in enumerate(w.goods):
        pe = gl["price_export"][:T, g, c0]
        pdm = gl["price_domestic"][:T, g, c0]
        if np.isfinite(pe).any() and np.isfinite(pe[0]):
            k = int(np.nanargmax(pe))
            out[f"peak_export_price_ratio.{good}"] = _finite(pe[k] / pe[0])
            out[f"peak_export_price_date.{good}"] = _month(dates[k])
            out[f"peak_domestic_price_ratio.{good}"] = _finite(np.nanmax(pdm) / pdm[0])
            out[f"export_domestic_wedge_at_peak.{good}"] = _finite(pe[k] / pdm[k])
            out[f"export_domestic_wedge_end.{good}"] = _finite(pe[-1] / pdm[-1])
        imp = gl["imports"][:T, g]
        paid = gl["price_paid"][:T, g]
        with np.errstate(invalid="ignore"):
            world_price = np.nansum(paid * imp, axis=1) / imp.sum(axis=1)
        if np.isfinite(world_price[0]) and world_price[0] > 0:
            out[f"months_above_2x.{good}"] = int(np.sum(world_price > 2 * world_price[0]))
        for c, code in enumerate(w.countries):
            if np.isfinite(paid[0, c]) and paid[0, c] > 0:
                out[f"peak_price_paid_ratio.{good}.{code}"] = _finite(np.nanmax(paid[:, c]) / paid[0, c])
            base_req = rec._base_need_gc.reshape(rec.G, rec.C)[g, c]
            if base_req > 0:
                out[f"shortage.{good}.{code}"] = float(np.nansum(gl["shortage"][:T, g, c]))
                out[f"rationed.{good}.{code}"] = float(np.nansum(gl["rationed"][:T, g, c]))
                out[f"min_inventory_months.{good}.{code}"] = float(np.nanmin(gl["inventory"][:T, g, c]) / base_req)
            cap = gl["capacity"][:T, g, c]
            if cap[0] > 0 or cap[-1] > 0:
                out[f"new_capacity.{good}.{code}"] = float((cap[-1] - cap[0]) * 12)
        # Import structure: shares of origins in each country's imports, first and last 12 months.
        flows = cubes.cube(g)  # [T, origin, destination]
        n = min(12, T)
        for c, code in enumerate(w.countries):
            for label, sl in (("start", slice(0, n)), ("end", slice(T - n, T))):
                inflow = flows[sl, :, c].sum(axis=0)
                inflow[c] = 0.0
                total = inflow.sum()
                if total <= 0:
                    continue
                shares = inflow / total
                if c != c0:  # the coercer's share of its own imports does not apply: absent, not 0
                    out[f"coercer_import_share_{label}.{good}.{code}"] = float(shares[c0])
                out[f"import_hhi_{label}.{good}.{code}"] = float(np.sum(shares**2))
        # Trade redirection of targeted exporters, from the coercer's first measure on this good.
        first = first_measure[g]
        if first is not None:
            base = flows[0]
            for c in w.targets:
                to_coercer0 = base[c, c0]
                if to_coercer0 <= 0:
                    continue
                code = w.countries[c]
                others0 = base[c].sum() - base[c, c] - to_coercer0
                for months in (12, 24):
                    if first + months > T:
                        continue  # the window does not fit in the run
                    sl = slice(first, first + months)
                    span = months
                    lost = to_coercer0 * span - flows[sl, c, c0].sum()
                    gained = (flows[sl, c].sum() - flows[sl, c, c].sum() - flows[sl, c, c0].sum()) - others0 * span
                    if lost > 0:
                        out[f"redirected_share_{months}m.{good}.{code}"] = float(max(gained, 0.0) / lost)
                    if months == 12:
                        pdc = gl["price_domestic"][:T, g, c]
                        if np.isfinite(pdc[0]) and pdc[0] > 0:
                            out[f"export_price_received_ratio_12m.{good}.{code}"] = _finite(
                                np.nanmean(pdc[sl]) / pdc[0]
                            )
        # Cost to the coercer's buyers of the good: extra paid against first-month delivered prices.
        paid_c0, got_c0 = gl["price_paid"][:T, g, c0], gl["delivered"][:T, g, c0]
        if np.isfinite(paid_c0[0]) and np.nansum(got_c0) > 0:
            out[f"buyer_cost.{good}.{w.countries[c0]}"] = float(np.nansum((paid_c0 - paid_c0[0]) * got_c0))
    # Targets' export revenue lost against their first-month rate (FOB: exports x export price).
    revenue = np.nan_to_num(gl["exports"][:T] * gl["price_export"][:T])  # [T, G, C]
    for c in w.targets:
        code = w.countries[c]
        base = revenue[0, :, c]
        if base.sum() <= 0:
            continue
        lost = base * T - revenue[:, :, c].sum(axis=0)
        for g, good in enumerate(w.goods):
            if base[g] > 0:
                out[f"export_revenue_lost.{good}.{code}"] = float(lost[g])
        out[f"export_revenue_lost.{code}"] = float(lost.sum())
        out[f"export_revenue_lost_share.{code}"] = float(lost.sum() / (base.sum() * T))
    base_need = rec._base_need_gc.reshape(rec.G, rec.C)
    with np.errstate(invalid="ignore", divide="ignore"):
        lacking = (np.nan_to_num(gl["shortage"][:T]) + np.nan_to_num(gl["rationed"][:T])) / np.where(
            base_need > 0, base_need, np.inf
        )
    for c, code in enumerate(w.countries):
        if (base_need[:, c] > 0).any():
            out[f"shortage_months.{code}"] = int(np.sum((lacking[:, :, c] > 0.01).any(axis=1)))
    base_va = rec.baseline_value_added
    for c, code in enumerate(w.countries):
        if base_va[c] <= 0:
            continue
        loss = cl["output_loss"][:T, c]
        out[f"output_loss.{code}"] = float(np.nansum(loss))
        out[f"output_loss_share.{code}"] = float(np.nansum(loss) / (base_va[c] * T))
        out[f"peak_output_loss_share.{code}"] = float(np.nanmax(loss) / base_va[c])
        hit = np.flatnonzero(loss > 1e-3 * base_va[c])
        out[f"first_output_loss_date.{code}"] = _month(dates[hit[0]]) if hit.size else None
    # Policy levers: cost by country (total and per lever), reserve sales and releases.
    lever_cost = {lv.name: cl[f"policy_cost_{lv.name}"][:T] for lv in model.levers}
    for c, code in enumerate(w.countries):
        acting = {name: float(np.nansum(v[:, c])) for name, v in lever_cost.items()}
        out[f"policy_cost.total.{code}"] = float(np.nansum(cl["policy_cost"][:T, c]))
        for name, v in acting.items():
            out[f"policy_cost.{name}.{code}"] = v
        if model.levers:
            out[f"policy_revenue.{code}"] = float(np.nansum(cl["policy_revenue"][:T, c]))
            for g, good in enumerate(w.goods):
                released = float(np.nansum(gl["stockpile_release"][:T, g, c]))
                if released > 0:
                    out[f"stockpile_released.{good}.{code}"] = released
    # Levers: whether and for how many months each acted (a lever that cannot act also warns).
    for lv in model.levers:
        acted = lv.acted[:T]
        out[f"lever_active.{lv.name}"] = int(acted.any())
        out[f"lever_effect.{lv.name}"] = int(acted.sum())
        for part, months in getattr(lv, "part_acted", {}).items():
            out[f"lever_active.{lv.name}.{part}"] = int(months[:T].any())
            out[f"lever_effect.{lv.name}.{part}"] = int(months[:T].sum())
    # Domestic instruments: cost to the imposing state by kind, and what state purchases bought.
    if model.domestic:
        for c, code in enumerate(w.countries):
            own = [m for m in model.domestic if m.imposer == c]
            if not own:
                continue
            out[f"domestic_cost.total.{code}"] = float(sum(m.cost[:T].sum() for m in own))
            for kind in dict.fromkeys(m.classifier["instrument"] for m in own):
                out[f"domestic_cost.{kind}.{code}"] = float(
                    sum(m.cost[:T].sum() for m in own if m.classifier["instrument"] == kind)
                )
            for g, good in enumerate(w.goods):
                bought = sum(m.bought for m in own if getattr(m, "bought", None) is not None and m.goods[0] == g)
                if bought:
                    out[f"state_purchased.{good}.{code}"] = float(bought)
                    out[f"state_stock_end.{good}.{code}"] = float(gl["stockpile"][T - 1, g, c])
    lost_rev = float(np.sum(model.baseline_coercer_revenue - rec.coercer_export_revenue[:T]))
    total_cost = float(rec.coercer_cost[:T].sum())
    own_loss = float(np.nansum(cl["output_loss"][:T, c0]))
    out["coercer_cost.lost_export_revenue"] = lost_rev
    out["coercer_cost.domestic_input_cost"] = total_cost - lost_rev
    out["coercer_cost.output_loss"] = own_loss
    out["coercer_cost.total"] = total_cost + own_loss
    if model.chains is not None:
        _chain_metrics(model, T, out)
    strategy = model.strategy
    out["strategy"] = getattr(strategy, "name", "schedule")
    if getattr(strategy, "conceded_at", None) is not None:
        out["conceded"] = True
        out["concession_date"] = _month(dates[strategy.conceded_at])
        out["conceding_country"] = w.countries[strategy.conceding_country]
    else:
        out["conceded"] = False
        out["concession_date"] = None
    if hasattr(strategy, "episode_table"):
        out.update(strategy.metrics())
    out["clearing_seconds"] = float(model.clearing_seconds)
    return out


class _FlowCubes:
    """Per-good ``[T, origin, destination]`` flow arrays built from the recorder's edge lists."""

    def __init__(self, rec, T: int) -> None:
        self.T, self.C = T, rec.C
        parts = [f for f in rec.flows if f[0] < T]
        if parts:
            self.t = np.repeat(np.array([f[0] for f in parts], dtype=np.int64), [f[1].size for f in parts])
            self.g = np.concatenate([f[1] for f in parts]).astype(np.int64)
            self.o = np.concatenate([f[2] for f in parts]).astype(np.int64)
            self.d = np.concatenate([f[3] for f in parts]).astype(np.int64)
            self.q = np.concatenate([f[4] for f in parts])
            order = np.argsort(self.g, kind="stable")
            self.t, self.g, self.o, self.d, self.q = (a[order] for a in (self.t, self.g, self.o, self.d, self.q))
            self.bounds = np.searchsorted(self.g, np.arange(rec.G + 1))
        else:
            self.bounds = None

    def cube(self, g: int) -> np.ndarray:
        T, C = self.T, self.C
        if self.bounds is None:
            return np.zeros((T, C, C))
        sl = slice(self.bounds[g], self.bounds[g + 1])
        key = (self.t[sl] * C + self.o[sl]) * C + self.d[sl]
        return np.bincount(key, weights=self.q[sl], minlength=T * C * C).reshape(T, C, C)


def _first_measure_steps(model, n_goods: int) -> list[int | None]:
    """Per good, the first month in which a measure of the coercer on it covers at least part of
    the month (``None`` where no measure of the coercer ever covers the good).
    """
    first: list[int | None] = [None] * n_goods
    for m in model.measures:
        if m.imposer != model.coercer_index:
            continue
        line = m._timeline()  # its first month with any coverage (0 if none), derived once per coverage
        step = line.first_covered
        if not line.shares or not line.shares[step] > 0:
            continue
        for g in np.asarray(m.goods).tolist():
            if first[g] is None or step < first[g]:
                first[g] = step
    return first
