"""The dashboard's model and figures without a browser: levers become the command line's overrides,
a refused lever is one line instead of a model, the run advances month by month, and every view
draws at any month (the page itself is driven in a real browser in test_dashboard_browser.py)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.figure import Figure

import sim
from sim.dashboard import DashboardModel, command_line, lever_overrides, shipped_scenarios, views

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_shipped_scenarios_are_the_written_cases():
    names = shipped_scenarios()
    assert {"rare_earth_2010", "minimal", "australia_2020"} <= set(names)
    assert "generated" not in names


@pytest.mark.parametrize(
    ("scenario", "levers", "expected"),
    [
        ("rare_earth_2010", {}, ["seed=1"]),  # the scenario as the CLI runs it
        ("rare_earth_2010", {"scenario_policy": False}, ["seed=1", "policy=none"]),
        (
            "rare_earth_2010",
            {"stockpile_months": 3},
            ["seed=1", "policy=[japan_2010_response,stockpile]", "policy.stockpile.months=3"],
        ),
        ("minimal", {"collective_response": True, "seed": 4}, ["seed=4", "policy=[collective_response]"]),
        (
            "minimal",
            {"diversification_cap": 0.5, "diversification_speed": 2},
            [
                "seed=1",
                "policy=[diversification]",
                "policy.diversification.max_share=0.5",
                "policy.diversification.speed=2",
            ],
        ),
        ("minimal", {"strategy": "rules"}, ["seed=1", "scenario.strategy.type=rules"]),
    ],
)
def test_levers_become_the_command_lines_overrides(scenario, levers, expected):
    assert lever_overrides(scenario, **levers) == expected


def test_command_line_quotes_lists_for_the_shell():
    line = command_line("minimal", ["seed=1", "policy=[stockpile]", "policy.stockpile.months=3"])
    assert line == "coercion-sim scenario=minimal seed=1 'policy=[stockpile]' policy.stockpile.months=3"


def test_model_is_the_command_lines_configuration_stepped_month_by_month():
    model = DashboardModel(scenario_name="minimal", stockpile_months=2.0)
    assert model.error is None
    expected = sim.compose_config("minimal", model.overrides)
    assert model.coercion.cfg.policy.stockpile.months == expected.policy.stockpile.months == 2.0
    assert [lever.name for lever in model.coercion.levers] == ["stockpile"]
    assert (model.month, model.n_months) == (0, 36)
    model.step()
    model.step()
    assert model.month == 2 and model.running
    while model.running:
        model.step()
    assert model.month == model.n_months
    assert model.time == model.n_months  # Mesa's clock counts the months


@pytest.mark.parametrize(
    ("levers", "field"),
    [
        ({"diversification_cap": 0.0}, "policy.diversification.max_share: 0.0 is invalid"),
        ({"collective_response": True}, "policy.collective_response.coalition: unknown coalition 'G7'"),
    ],
)
def test_a_refused_lever_is_the_command_lines_one_line_error(levers, field):
    model = DashboardModel(scenario_name="minimal", **levers)
    assert model.coercion is None and not model.running
    assert model.error.startswith(field)
    assert "\n" not in model.error and "Traceback" not in model.error
    model.step()  # nothing to step: stays refused
    assert model.month == 0 and model.error.startswith(field)


@pytest.fixture(scope="module")
def minimal_run():
    model = DashboardModel(scenario_name="minimal")
    for _ in range(14):  # into the export quota of 2021
        model.step()
    return model


@pytest.mark.parametrize("view", ["prices", "network", "network_good", "damage"])
def test_every_view_draws_before_the_first_month_and_part_way(view, minimal_run):
    draw = {
        "prices": views.prices_figure,
        "network": views.trade_network_figure,
        "network_good": lambda m: views.trade_network_figure(m, "ore"),
        "damage": views.damage_figure,
    }[view]
    before = rc_snapshot()
    for model in (DashboardModel(scenario_name="minimal").coercion, minimal_run.coercion):
        fig = draw(model)
        assert isinstance(fig, Figure)
        png = views.figure_png(fig, dpi=50)
        assert png.startswith(PNG_MAGIC)
    assert rc_snapshot() == before  # the project style is applied for the figure only


def test_prices_show_the_quota_raising_the_coercers_export_price(minimal_run):
    fig = views.prices_figure(minimal_run.coercion)
    export_axes = fig.axes[0]
    (line,) = [line for line in export_axes.get_lines() if line.get_label() == "ore"]
    y = np.asarray(line.get_ydata())
    assert len(y) == 14 and y[0] == pytest.approx(1.0)
    assert y.max() > 1.05  # CHN's quota from 2021-01 lifts its export price


def test_network_draws_an_arrow_per_international_flow(minimal_run):
    fig = views.trade_network_figure(minimal_run.coercion, "ore")
    _, _, origin, destination, quantity, _ = minimal_run.coercion.recorder.flows[-1]
    international = int(np.sum((origin != destination) & (quantity > 0)))
    arrows = [p for p in fig.axes[0].patches if type(p).__name__ == "FancyArrowPatch"]
    assert international > 0 and len(arrows) >= international


def rc_snapshot() -> dict:
    return {k: repr(mpl.rcParams[k]) for k in ("figure.figsize", "font.size", "axes.prop_cycle")}
