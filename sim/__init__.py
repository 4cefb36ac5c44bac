"""coercion-sim: an agent-based simulator of economic coercion over critical goods."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coercion-sim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
