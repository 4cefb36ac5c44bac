"""Packaging: a regular (non-editable) install carries the Hydra configs as ``sim/_configs`` and runs.

A checkout reads ``configs/`` directly (``make`` installs the project editable); ``pip install .`` or a
wheel must carry the same tree, or the command line has nothing to compose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import helpers
import pytest

PYPROJECT = tomllib.loads((helpers.REPO_ROOT / "pyproject.toml").read_text())


def test_every_configs_directory_is_packaged_as_sim_configs():
    """Each directory under configs/ is listed as a ``sim._configs`` package (setuptools ships only
    listed packages), mapped onto configs/, with its YAML files as package data."""
    setup = PYPROJECT["tool"]["setuptools"]
    assert setup["package-dir"]["sim._configs"] == "configs"
    config_dirs = {helpers.CONFIG_DIR, *(p for p in helpers.CONFIG_DIR.rglob("*") if p.is_dir())}
    expected = {
        ".".join(["sim._configs", *d.relative_to(helpers.CONFIG_DIR).parts]) for d in config_dirs if any(d.glob("*.yaml"))
    }
    missing = expected - set(setup["packages"])
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert "*.yaml" in setup["package-data"]["*"]


@pytest.mark.slow
def test_wheel_carries_the_configs_and_runs_without_the_checkout(tmp_path):
    """Build the wheel, install it into a plain directory and run ``minimal`` from there with the
    checkout out of reach: the command composes from the packaged configs and writes its outputs."""
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(helpers.REPO_ROOT), "-w", str(dist)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    (wheel,) = dist.glob("coercion_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in helpers.CONFIG_DIR.rglob("*.yaml"):
        assert "sim/_configs/" + path.relative_to(helpers.CONFIG_DIR).as_posix() in names, path
    assert "sim/style/coercion.mplstyle" in names and "sim/data/rare_earth_2010_history.csv" in names

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    # -S: no site processing, so the checkout's editable-install hook does not load; the dependencies
    # come from this environment's site-packages, the package from the installed wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "COERCION_SIM_CONFIG_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    code = (
        "import sys, sim.config; print(sim.config.CONFIG_DIR);"
        f"sys.argv = ['coercion-sim', 'scenario=minimal', 'seed=1', 'output.figures=false', 'hydra.run.dir={tmp_path / 'run'}'];"
        "from sim.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == str(target / "sim" / "_configs")
    assert (tmp_path / "run" / "provenance.json").is_file()
