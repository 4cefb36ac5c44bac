"""The agent-based model: the Mesa model and its agents, value chains and the per-row numba kernels.

Submodules are imported on first use (``sim.model.<name>``); the public names of :mod:`sim.model.model` are served from here too.
"""

import importlib

_SUBMODULES = ("agents", "chains", "kernels", "model")


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.model.{name}")
    if not name.startswith("_"):
        module = importlib.import_module("sim.model.model")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'sim.model' has no attribute {name!r}")
