"""Packaging: a regular (non-editable) install carries the Hydra configs as ``sim/_configs`` and runs.

A checkout reads ``configs/`` directly (``make`` installs the project editable); ``pip install .`` or a
wheel must carry the same tree, or the command line has nothing to compose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import helpers
import pytest

PYPROJECT = tomllib.loads((helpers.REPO_ROOT / "pyproject.toml").read_text())


def _packages_under(root: Path, name: str, *, keep) -> set[str]:
    dirs = {root, *(p for p in root.rglob("*") if p.is_dir() and "__pycache__" not in p.parts)}
    return {".".join([name, *d.relative_to(root).parts]) for d in dirs if keep(d)}


def test_package_list_matches_the_source_tree():
    """setuptools ships only listed packages, and a listed directory that does not exist breaks
    every install (``make`` included). So the list in pyproject.toml must equal the tree both ways:
    every directory of configs/ (mapped onto ``sim._configs``, YAML files as package data) and every
    directory of ``sim/`` that holds modules or data."""
    setup = PYPROJECT["tool"]["setuptools"]
    assert setup["package-dir"]["sim._configs"] == "configs"
    assert "*.yaml" in setup["package-data"]["*"]
    listed = set(setup["packages"])
    sim_root = helpers.REPO_ROOT / "sim"
    with_files = _packages_under(helpers.CONFIG_DIR, "sim._configs", keep=lambda d: any(d.glob("*.yaml")))
    with_files |= _packages_under(sim_root, "sim", keep=lambda d: any(p.is_file() for p in d.iterdir()))
    existing = _packages_under(helpers.CONFIG_DIR, "sim._configs", keep=Path.is_dir)
    existing |= _packages_under(sim_root, "sim", keep=Path.is_dir)
    assert not with_files - listed, (
        f"add to [tool.setuptools] packages in pyproject.toml: {sorted(with_files - listed)}"
    )
    assert not listed - existing, f"listed but not in the tree (breaks installs): {sorted(listed - existing)}"


@pytest.mark.slow
def test_wheel_carries_the_configs_and_runs_without_the_checkout(tmp_path):
    """Build the wheel, install it into a plain directory and run ``minimal`` from there with the
    checkout out of reach: the command composes from the packaged configs and writes its outputs."""
    dist, target, src = tmp_path / "dist", tmp_path / "site", tmp_path / "src"
    # Build from a copy of the tracked files: building in the checkout would reuse its build/ tree,
    # where files deleted from configs/ can linger and end up in the wheel.
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=helpers.REPO_ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in filter(None, tracked.stdout.split("\0")):
        if (helpers.REPO_ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(helpers.REPO_ROOT / rel, src / rel)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(src), "-w", str(dist)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode != 0 and any(s in build.stderr for s in ("No matching distribution", "NewConnectionError")):
        pytest.skip("pip cannot fetch the build backend (setuptools) here: " + build.stderr[-300:])
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("coercion_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("sim/_configs/") for n in names if n.startswith("sim/_configs/")}
    assert shipped == {p.relative_to(src / "configs").as_posix() for p in (src / "configs").rglob("*.yaml")}
    assert "sim/style/coercion.mplstyle" in names and "sim/world/data/rare_earth_2010_history.csv" in names

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # -S: no site processing, so the checkout's editable-install hook does not load; the dependencies
    # come from this environment's site-packages, the package from the installed wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "COERCION_SIM_CONFIG_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    code = (
        "import sys, sim.world.config; print(sim.world.config.CONFIG_DIR);"
        f"sys.argv = ['coercion-sim', 'scenario=minimal', 'seed=1', 'output.figures=false', 'hydra.run.dir={tmp_path / 'run'}'];"
        "from sim.cli import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == str(target / "sim" / "_configs")
    assert (tmp_path / "run" / "provenance.json").is_file()
