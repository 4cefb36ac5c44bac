"""Policy levers: the responses states can run against coercion.

Submodules are imported on first use (``sim.policy.<name>``); the public names of :mod:`sim.policy.levers` are served from here too.
"""

import importlib

_SUBMODULES = ("levers",)


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.policy.{name}")
    if not name.startswith("_"):
        module = importlib.import_module("sim.policy.levers")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'sim.policy' has no attribute {name!r}")
