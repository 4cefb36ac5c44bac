"""coercion-sim: an agent-based simulator of economic coercion over critical goods.

The public entry points are :func:`sim.run` and :func:`sim.compose_config` (see :mod:`sim.api`);
they are imported on first use, so ``import sim.market`` (the clearing kernel alone) stays light.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coercion-sim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "RunResult", "compose_config", "run"]


def __getattr__(name: str):
    if name in ("RunResult", "compose_config", "run"):
        from sim import api

        return getattr(api, name)
    if name in ("agents", "api", "model", "generate", "figures", "metrics", "scenario", "config", "coercion"):
        import importlib

        return importlib.import_module(f"sim.{name}")
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
