"""coercion-sim: an agent-based simulator of economic coercion over critical goods."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coercion-sim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

from sim.api import RunResult, compose_config, run  # noqa: E402  (the public entry points)

__all__ = ["__version__", "RunResult", "compose_config", "run"]
