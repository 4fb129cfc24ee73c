"""A real headless Chromium for the browser tests, and where their screenshots go.

Chromium and chromedriver come from Debian (``scripts/browser install``, run by
``make test``). Without them these tests are skipped for a quick local run, unless
``IOTLAB_REQUIRE_SERVICES=1`` (make test), where they fail. Screenshots and the pages
opened are kept under ``test-artifacts/browser/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _missing(what: str) -> None:
    message = f"{what} not found: run scripts/browser install (make test does)"
    if os.environ.get("IOTLAB_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium driven by Selenium (1400 x 1000 CSS px, device scale 1)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        _missing("chromium and chromedriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # runs as root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(120)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def browser(chromium) -> object:
    """The shared Chromium on a blank page, with the console log of earlier pages dropped
    (leaving a page can log, e.g. JupyterLab's blocked "leave page?" prompt)."""
    chromium.get("about:blank")
    chromium.get_log("browser")
    return chromium
