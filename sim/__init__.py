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

#: Names of :mod:`sim.api` served from here on first use.
_API_NAMES = ("RunResult", "compose_config", "run")
#: Submodules reachable as attributes (``sim.reporting.metrics.METRIC_DOCS``) without importing them first.
_LAZY_MODULES = ("api", "world", "model", "market", "coercion", "policy", "reporting", "experiments")


def __getattr__(name: str):
    if name in _API_NAMES:
        from sim import api

        return getattr(api, name)
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"sim.{name}")
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazily imported ones (``sim.run``, ``sim.reporting.metrics``, ...), so tab
    completion and ``dir(sim)`` show them before their first use.
    """
    return sorted(set(globals()) | set(_API_NAMES) | set(_LAZY_MODULES))
