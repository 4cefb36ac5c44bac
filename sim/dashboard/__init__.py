"""Interactive dashboard on Mesa's SolaraViz: choose a scenario and levers, run, and watch prices, the
trade network, shortages and output loss month by month (``make app``).

* :mod:`sim.dashboard.session` -- the levers as Hydra overrides and the Mesa model SolaraViz steps
  (no Solara import: usable and testable on its own);
* :mod:`sim.dashboard.views` -- the figures drawn from a running model;
* :mod:`sim.dashboard.app` -- the Solara page (needs the ``app`` extra: ``pip install -e '.[app]'``);
* ``python -m sim.dashboard`` -- serve it locally.
"""

from sim.dashboard.session import DashboardModel, command_line, lever_overrides, shipped_scenarios

__all__ = ["DashboardModel", "command_line", "lever_overrides", "shipped_scenarios"]
