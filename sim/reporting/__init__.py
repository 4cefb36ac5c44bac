"""What a run leaves behind: recording, metrics, files, figures and progress.

Submodules are imported on first use.
"""

import importlib

_SUBMODULES = ("figure_names", "figures", "files", "metrics", "progress", "recording", "sweep_figures")


def __getattr__(name: str):
    """A submodule, or a public name of the package's main module, imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"sim.reporting.{name}")
    raise AttributeError(f"module 'sim.reporting' has no attribute {name!r}")
