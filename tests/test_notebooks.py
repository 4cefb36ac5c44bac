"""The notebooks run top to bottom on a fresh kernel, and are committed without outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import helpers
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted(helpers.NOTEBOOK_DIR.glob("*.ipynb"))
QUICKSTART = helpers.NOTEBOOK_DIR / "quickstart.ipynb"
#: The three things researchers do, one notebook each.
COMPARE = helpers.NOTEBOOK_DIR / "compare_scenarios.ipynb"
SWEEP = helpers.NOTEBOOK_DIR / "policy_sweep.ipynb"
EXPLORE = helpers.NOTEBOOK_DIR / "explore_step_by_step.ipynb"
#: Seconds one cell may take (a cold numba cache compiles the market kernel on the first run).
CELL_TIMEOUT_S = 300


def test_quickstart_exists():
    assert QUICKSTART in NOTEBOOKS


def test_a_notebook_for_each_thing_researchers_do():
    """Run and compare scenarios, sweep and compare levers, explore a run step by step."""
    assert {COMPARE, SWEEP, EXPLORE} <= set(NOTEBOOKS)


def test_jupyter_is_an_extra():
    """The notebooks need Jupyter: an optional extra installs it (the README names it)."""
    import tomllib

    extras = tomllib.loads((helpers.REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("jupyterlab") for dep in extras["notebooks"])
    assert "pip install -e '.[notebooks]'" in (helpers.REPO_ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for i, cell in enumerate(code):
        assert cell.get("outputs", []) == [], f"code cell {i} has stored outputs (clear them before committing)"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
    assert any(c.cell_type == "markdown" for c in nb.cells)


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """``python3`` running this interpreter; if no such kernelspec is visible (a bare venv), one is
    installed into a temporary prefix put on JUPYTER_PATH for this module."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path-migration warning
        try:
            KernelSpecManager().get_kernel_spec("python3")
        except NoSuchKernel:
            prefix = tmp_path_factory.mktemp("jupyter")
            subprocess.run(
                [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "python3"],
                check=True,
                capture_output=True,
            )
            share = prefix / "share" / "jupyter"
            mp.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(share), os.environ.get("JUPYTER_PATH")])))
            KernelSpecManager().get_kernel_spec("python3")
        yield "python3"


@pytest.fixture(scope="module")
def executed(kernel_name, tmp_path_factory):
    """Every notebook, executed once on a fresh kernel in an empty working directory:
    ``path -> (executed notebook, working directory)``."""
    helpers.warm_numba_cache()
    out = {}
    for path in NOTEBOOKS:
        cwd = tmp_path_factory.mktemp(path.stem)
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name=kernel_name, resources={"metadata": {"path": str(cwd)}}
        )
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as exc:
            out[path] = (exc, cwd)
        else:
            out[path] = (nb, cwd)
    return out


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, executed):
    nb, cwd = executed[path]
    if isinstance(nb, Exception):
        pytest.fail(f"{path.name} failed:\n{nb}")
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr
    assert list(cwd.iterdir()) == [], "the notebook wrote files into its working directory"


def test_quickstart_shows_tables_metrics_plot_and_agents(executed):
    nb, _ = executed[QUICKSTART]
    if isinstance(nb, Exception):
        pytest.fail(str(nb))
    outputs = _outputs(nb)
    kinds = {mime for o in outputs if o.output_type in ("display_data", "execute_result") for mime in o.data}
    assert "image/png" in kinds, "the quickstart draws a figure"
    text = "".join(
        o.get("text", "") if o.output_type == "stream" else o.data.get("text/plain", "")
        for o in outputs
        if o.output_type in ("stream", "display_data", "execute_result")
    )
    for needle in ("peak_export_price_ratio.ore", "coercer_import_share_end.ore.JPN", "AUS expansion", "weight CHN"):
        assert needle in text, needle


def _text(nb):
    return "".join(
        o.get("text", "") if o.output_type == "stream" else o.data.get("text/plain", "") + o.data.get("text/html", "")
        for o in _outputs(nb)
        if o.output_type in ("stream", "display_data", "execute_result")
    )


def _images(nb):
    return [o for o in _outputs(nb) if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]


def _ran(executed, path):
    nb, _ = executed[path]
    if isinstance(nb, Exception):
        pytest.fail(str(nb))
    return nb


def test_compare_scenarios_compares_variants_and_cases(executed):
    nb = _ran(executed, COMPARE)
    text = _text(nb)
    for needle in ("no lever", "3-month reserve", "damage avoided", "australia_2020", "us_tariffs_2025"):
        assert needle in text, needle
    assert _images(nb)


def test_policy_sweep_shows_levers_with_bands_over_seeds(executed):
    nb = _ran(executed, SWEEP)
    text = _text(nb)
    for needle in ("18 jobs", "18 ok", "policy.stockpile.months", "policy.diversification.speed", "q05", "q95"):
        assert needle in text, needle
    assert len(_images(nb)) >= 3, "the band figure, the fan chart and the heatmap"


def test_explore_steps_a_run_month_by_month(executed):
    nb = _ran(executed, EXPLORE)
    text = _text(nb)
    for needle in ("simulated up to 2010-08", "2010-10", "with reserve", "policy.stockpile.months=3"):
        assert needle in text, needle
    assert len(_images(nb)) >= 3
