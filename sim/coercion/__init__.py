"""Coercion: the measures a state imposes, how they act on each side of trade, and the strategic layer.

Submodules are imported on first use (``sim.coercion.<name>``); the public names of :mod:`sim.coercion.measures` are served from here too.
"""

import importlib

_SUBMODULES = ("measures", "sides", "strategy")


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.coercion.{name}")
    if not name.startswith("_"):
        module = importlib.import_module("sim.coercion.measures")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'sim.coercion' has no attribute {name!r}")
