"""The world a run simulates: configuration schema, scenarios, generated worlds, the calendar, named assumptions and package data.

Submodules are imported on first use.
"""

import importlib

_SUBMODULES = ("assumptions", "calendar", "config", "data", "generate", "plain", "scenario", "schema")


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.world.{name}")
    raise AttributeError(f"module 'sim.world' has no attribute {name!r}")
