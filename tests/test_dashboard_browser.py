"""The dashboard end to end in a real headless browser: ``python -m sim.dashboard`` serves the page on
a free port, the system Chromium (Debian package ``chromium``, driven by playwright) loads it,
changes levers, which re-run the model, and checks that the figures update, that the exported PNG
and a screenshot of the page are real images, and that a refused lever shows its one-line error.

Skipped when no Chromium is installed (``apt-get install chromium``), except under ``.ci/run``, which
installs it and sets ``COERCION_SIM_REQUIRE_BROWSER=1``: there a missing browser fails the test.
The server warms numba's cache before it serves, so a cold cache makes the first run slower, not
flaky; the waits below guard against a hang, they time nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import helpers
import pytest

pytestmark = pytest.mark.browser

#: How to enable the test where it is skipped.
ENABLE = (
    "no Chromium found: install the Debian package (`apt-get install chromium`) to run the dashboard's "
    "browser test, or point COERCION_SIM_CHROMIUM at a Chromium or Chrome binary"
)
#: Guard against a hang (a cold numba cache compiles for a minute or two before the page is served).
SERVER_START_GUARD_S = 900
PAGE_GUARD_MS = 300_000
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_executable() -> str | None:
    """The browser to drive: ``COERCION_SIM_CHROMIUM``, else Chromium or Chrome on the PATH."""
    for name in (os.environ.get("COERCION_SIM_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def chromium():
    path = chromium_executable()
    if path is None:
        if os.environ.get("COERCION_SIM_REQUIRE_BROWSER") == "1":  # set by .ci/run, which installs it
            pytest.fail(ENABLE)
        pytest.skip(ENABLE)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra: make venv")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(chromium, tmp_path_factory):
    """The page's URL, served by ``python -m sim.dashboard`` as ``make app`` runs it."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("dashboard") / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "sim.dashboard", "--port", str(port)],
            cwd=helpers.REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_GUARD_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"the dashboard server exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the dashboard server did not answer:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def page(chromium, dashboard):
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(PAGE_GUARD_MS)
    requests_failed = []
    page.on("requestfailed", lambda request: requests_failed.append(request.url))
    page.goto(dashboard)
    page.wait_for_selector(".prices-figure")
    yield page
    context.close()
    assert not requests_failed, f"the page asked for what this machine does not serve: {requests_failed}"


def _choose(page, select_label: str, option: str) -> None:
    page.locator(".v-select", has_text=select_label).first.click()
    page.locator(".v-menu__content .v-list-item", has_text=option).first.click()


def _src(page, view: str) -> str:
    return page.locator(f".{view}-figure").get_attribute("src")


def _wait_for_new_figure(page, view: str, old: str) -> None:
    page.wait_for_function(
        "([css, old]) => { const img = document.querySelector(css); return img && img.getAttribute('src') !== old; }",
        arg=[f".{view}-figure", old],
    )


def _assert_real_image(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        assert image.size == size
        rgb = image.convert("RGB")
        assert len(rgb.getcolors(maxcolors=1 << 20) or []) > 50, "an image of a few flat colours"
        assert max(ImageStat.Stat(rgb).stddev) > 10, "a blank image"


def test_a_lever_change_reruns_the_model_and_its_figures_update(page, tmp_path):
    assert "rare_earth_2010: month 0 of 144" in page.locator(".run-status").inner_text()
    before = {view: _src(page, view) for view in ("prices", "network", "damage")}

    _choose(page, "Scenario", "minimal")
    page.get_by_role("button", name="Reset").click()
    page.wait_for_selector("text=minimal: month 0 of 36")
    assert "coercion-sim scenario=minimal seed=1" in page.locator(".run-card").inner_text()
    for _ in range(3):
        page.get_by_role("button", name="Step").click()
    page.wait_for_selector("text=minimal: month 3 of 36")
    for view, old in before.items():
        _wait_for_new_figure(page, view, old)

    stepped = _src(page, "prices")
    page.get_by_role("button", name="Run to end").click()
    page.wait_for_selector("text=minimal: month 36 of 36")
    _wait_for_new_figure(page, "prices", stepped)

    with page.expect_download() as download:
        page.locator(".prices-view").get_by_role("button", name="Export PNG").click()
    assert download.value.suggested_filename == "minimal_prices_month036.png"
    exported = tmp_path / "prices.png"
    download.value.save_as(exported)
    _assert_real_image(exported, (840, 480))  # 5.6 x 3.2 in at 150 dpi

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=shot)
    _assert_real_image(shot, (VIEWPORT["width"], VIEWPORT["height"]))


def test_a_refused_lever_shows_the_command_lines_one_line_error(page):
    _choose(page, "Scenario", "minimal")
    page.get_by_text("Collective response (G7)").click()
    page.get_by_role("button", name="Reset").click()
    error = page.locator(".lever-error")
    error.wait_for()
    text = error.inner_text()
    assert text.startswith("error: policy.collective_response.coalition: unknown coalition 'G7'")
    assert "Traceback" not in page.locator("body").inner_text()
    assert page.locator(".prices-figure").count() == 0
