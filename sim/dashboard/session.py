"""One dashboard run: the scenario and levers chosen in the page, turned into the command line's
configuration and a :class:`sim.model.model.CoercionModel` stepped month by month.

The levers are Hydra overrides, composed by :func:`sim.api.compose_config` exactly as
``coercion-sim`` composes them, so the dashboard accepts and refuses what the command line does; a
refused value is kept as a one-line message (the command line's wording) instead of a model.
"""

from __future__ import annotations

from functools import cache

import mesa
import yaml

from sim.world.config import CONFIG_DIR

__all__ = ["DashboardModel", "STRATEGIES", "command_line", "lever_overrides", "own_policy", "shipped_scenarios"]

#: Coercer strategies offered: keep the scenario's own, or replace it.
STRATEGIES = ("as in scenario", "schedule", "rules")


@cache
def shipped_scenarios() -> tuple[str, ...]:
    """The written scenarios shipped in ``configs/scenario/`` (generated worlds left out: their
    parameters are not levers of a case).
    """
    names = []
    for path in sorted((CONFIG_DIR / "scenario").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if data.get("kind") != "generated":
            names.append(path.stem)
    return tuple(names)


@cache
def own_policy(scenario: str) -> str | None:
    """The policy option a scenario selects in its own defaults list (``rare_earth_2010``:
    ``japan_2010_response``), or ``None`` when it runs without levers.
    """
    path = CONFIG_DIR / "scenario" / f"{scenario}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for entry in data.get("defaults") or []:
        if isinstance(entry, dict):
            for key, value in entry.items():
                if str(key).startswith("override /policy"):
                    return str(value)
    return None


def lever_overrides(
    scenario: str,
    *,
    scenario_policy: bool = True,
    stockpile_months: float = 0.0,
    diversification_cap: float = 1.0,
    diversification_speed: float = 1.0,
    collective_response: bool = False,
    strategy: str = "as in scenario",
    seed: int = 1,
) -> list[str]:
    """The Hydra overrides (``coercion-sim`` arguments after ``scenario=``) for a choice of levers.

    Args:
        scenario: A shipped scenario's name.
        scenario_policy: Keep the levers the scenario selects itself (``rare_earth_2010``: Japan's
            2010 response); off runs the case without them (``policy=none``).
        stockpile_months: State reserve in months of baseline use (``policy=stockpile``); 0: none. With
            the scenario's own levers, it replaces their reserve (Hydra merges the later option).
        diversification_cap: Largest share of one foreign origin in firms' sourcing
            (``policy.diversification.max_share``); 1 with speed 1: no diversification lever.
        diversification_speed: Multiplier of the sourcing adjustment rate (``policy.diversification.speed``).
        collective_response: Coalition (G7) buys the coerced member's shut-out exports and shares stockpiles.
        strategy: The coercer's strategy: ``schedule`` (the measures as dated), ``rules`` (escalate,
            concede on cost or pain), or ``as in scenario``.
        seed: The run's root seed.
    """
    options = [own_policy(scenario)] if scenario_policy and own_policy(scenario) else []
    extra: list[str] = []
    if stockpile_months > 0:
        options.append("stockpile")
        extra.append(f"policy.stockpile.months={float(stockpile_months):g}")
    if diversification_cap != 1.0 or diversification_speed != 1.0:
        options.append("diversification")
        extra += [
            f"policy.diversification.max_share={float(diversification_cap):g}",
            f"policy.diversification.speed={float(diversification_speed):g}",
        ]
    if collective_response:
        options.append("collective_response")
    out = [f"seed={int(seed)}"]
    if options != ([own_policy(scenario)] if own_policy(scenario) else []):
        out.append(f"policy=[{','.join(options)}]" if options else "policy=none")
    out += extra
    if strategy != "as in scenario":
        out.append(f"scenario.strategy.type={strategy}")
    return out


def command_line(scenario: str, overrides: list[str]) -> str:
    """The ``coercion-sim`` command that runs the same configuration (shell-quoted where needed)."""
    args = [f"'{o}'" if any(c in o for c in "[],") else o for o in overrides]
    return " ".join(["coercion-sim", f"scenario={scenario}", *args])


class DashboardModel(mesa.Model):
    """The dashboard's Mesa model: a :class:`sim.model.model.CoercionModel` built from a scenario and a
    choice of levers, stepped one month per Mesa step; or, when the choice is refused, the error.

    SolaraViz re-creates it with the page's parameters on Reset, so its keyword arguments are the
    page's levers (see :func:`lever_overrides` for their meaning).

    Attributes:
        scenario_name: The scenario.
        overrides: The Hydra overrides the levers make.
        command: The equivalent ``coercion-sim`` command.
        coercion: The built model, or ``None`` when the configuration was refused.
        error: The one-line reason it was refused (or a market that failed to clear), else ``None``.
    """

    def __init__(
        self,
        scenario_name: str = "rare_earth_2010",
        scenario_policy: bool = True,
        stockpile_months: float = 0.0,
        diversification_cap: float = 1.0,
        diversification_speed: float = 1.0,
        collective_response: bool = False,
        strategy: str = "as in scenario",
        seed: int = 1,
    ) -> None:
        super().__init__(rng=int(seed))
        self.scenario_name = scenario_name
        self.overrides = lever_overrides(
            scenario_name,
            scenario_policy=scenario_policy,
            stockpile_months=stockpile_months,
            diversification_cap=diversification_cap,
            diversification_speed=diversification_speed,
            collective_response=collective_response,
            strategy=strategy,
            seed=seed,
        )
        self.command = command_line(scenario_name, self.overrides)
        self.coercion = None
        self.error: str | None = None
        try:
            self.coercion = _build(scenario_name, self.overrides)
        except Exception as exc:  # refused input is shown in the page, never raised into it
            self.error = _one_line(exc)
            self.running = False

    @property
    def month(self) -> int:
        """Months simulated so far (0 before the first step)."""
        return 0 if self.coercion is None else self.coercion.step_index + 1

    @property
    def n_months(self) -> int:
        """Months in the scenario (0 when refused)."""
        return 0 if self.coercion is None else int(self.coercion.n_steps)

    def step(self) -> None:
        """Simulate the next month; a market that fails to clear stops the run with its message."""
        if self.coercion is None or not self.coercion.running:
            self.running = False
            return
        try:
            self.coercion.step()
        except Exception as exc:  # e.g. MarketClearingError: shown in the page
            self.error = _one_line(exc)
            self.running = False
            return
        self.running = bool(self.coercion.running)


def _build(scenario: str, overrides: list[str]):
    """Compose and build as ``coercion-sim`` does: composition errors and validation errors raise."""
    from sim.api import compose_config
    from sim.model.model import CoercionModel

    return CoercionModel(compose_config(scenario, overrides))


def _one_line(exc: BaseException) -> str:
    """The command line's one-line message for a refused configuration (``sim.cli.override_problem``)."""
    from sim.cli import override_problem

    return override_problem(exc)
