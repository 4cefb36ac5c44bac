"""Many runs: sweeps, collection of results, sensitivity analysis, exploratory modelling and calibration.

Submodules are imported on first use.
"""

import importlib

_SUBMODULES = ("calibration", "collect", "exploration", "jobs", "runner", "sensitivity", "sweep")


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.experiments.{name}")
    raise AttributeError(f"module 'sim.experiments' has no attribute {name!r}")
