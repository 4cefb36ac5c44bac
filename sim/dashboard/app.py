"""The dashboard page: Mesa's SolaraViz around a :class:`~sim.dashboard.session.DashboardModel`.

The sidebar holds SolaraViz's controls (Reset applies the levers and builds a new run; Step and
play advance it month by month) and the levers; the main area shows the run (its equivalent
``coercion-sim`` command, the month, a refused lever's one-line error, a button that runs to the
end) and three views of :mod:`sim.dashboard.views`, each with a PNG download of the figure shown.

Serve it with ``make app`` (or ``python -m sim.dashboard``); ``solara run sim.dashboard.app`` works
too.
"""

from __future__ import annotations

import solara
from mesa.visualization import Slider, SolaraViz
from mesa.visualization.utils import force_update, update_counter

from sim.dashboard import views
from sim.dashboard.session import STRATEGIES, DashboardModel, shipped_scenarios

__all__ = ["Page", "model_params"]

#: The page's levers: SolaraViz passes them to :class:`DashboardModel` on Reset.
model_params = {
    "scenario_name": {
        "type": "Select",
        "value": "rare_earth_2010",
        "values": list(shipped_scenarios()),
        "label": "Scenario",
    },
    "scenario_policy": {
        "type": "Checkbox",
        "value": True,
        "label": "Scenario's own levers (rare_earth_2010: Japan's 2010 response)",
    },
    "stockpile_months": Slider("Stockpile, months (0: none)", 0.0, 0.0, 12.0, 0.5),
    "diversification_cap": Slider("Diversification cap (1: none)", 1.0, 0.0, 1.0, 0.05),
    "diversification_speed": Slider("Diversification speed (1: none)", 1.0, 1.0, 8.0, 0.5),
    "collective_response": {"type": "Checkbox", "value": False, "label": "Collective response (G7)"},
    "strategy": {"type": "Select", "value": STRATEGIES[0], "values": list(STRATEGIES), "label": "Coercer strategy"},
    "seed": Slider("Seed", 1, 0, 20, 1),
}

#: Resolution of the figures shown and downloaded.
_DPI = 150


@solara.component
def RunCard(model: DashboardModel):
    """The run: its command line, how far it is, a refused lever's error, and Run to end."""
    update_counter.get()

    def run_to_end():
        while model.running:
            model.step()
        force_update()

    with solara.Card("Run", classes=["run-card"]):
        # Plain text, not Markdown: Solara's Markdown loads KaTeX, which its offline assets lack.
        solara.Text(model.command, style={"font-family": "monospace", "display": "block"}, classes=["run-command"])
        if model.error:
            solara.Error(f"error: {model.error}", classes=["lever-error"])
        else:
            c = model.coercion
            solara.Text(
                f"{model.scenario_name}: month {model.month} of {model.n_months} "
                f"({c.cfg.scenario.start} to {c.cfg.scenario.end}); levers: "
                f"{', '.join(lever.name for lever in c.levers) or 'none'}",
                classes=["run-status"],
            )
            solara.Button("Run to end", color="primary", on_click=run_to_end, disabled=not model.running)
        solara.Text("Change the levers in the sidebar, then Reset to apply them.")


@solara.component
def FigureCard(model: DashboardModel, view: str):
    """One view (``prices``, ``network`` or ``damage``) of the current month, with a PNG download."""
    update_counter.get()
    good, set_good = solara.use_state("all goods")
    goods = [] if model.coercion is None else list(model.coercion.world.goods)
    chosen = good if good in goods else None

    def draw() -> bytes | None:
        if model.coercion is None:
            return None
        if view == "prices":
            fig = views.prices_figure(model.coercion)
        elif view == "network":
            fig = views.trade_network_figure(model.coercion, chosen)
        else:
            fig = views.damage_figure(model.coercion)
        return views.figure_png(fig, dpi=_DPI)

    png = solara.use_memo(draw, dependencies=[model, model.month, view, chosen])
    with solara.Column(classes=[f"{view}-view"]):
        if view == "network" and goods:
            solara.Select("Good", values=["all goods", *goods], value=chosen or "all goods", on_value=set_good)
        if png is None:
            solara.Text("No run: see the error above.")
            return
        solara.Image(png, width="100%", classes=[f"{view}-figure"])
        solara.FileDownload(
            png,
            filename=f"{model.scenario_name}_{view}_month{model.month:03d}.png",
            label="Export PNG",
            mime_type="image/png",
        )


def _card(view: str):
    def make(model):
        return FigureCard(model, view)

    make.__name__ = f"{view.title()}View"
    return make


@solara.component
def Page():
    """One browser session's page, with a run of its own (tabs do not step each other's model)."""
    model = solara.use_memo(DashboardModel, dependencies=[])
    SolaraViz(
        model,
        components=[RunCard, _card("prices"), _card("network"), _card("damage")],
        model_params=model_params,
        name="coercion-sim",
    )
