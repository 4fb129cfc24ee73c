"""Notebook 05 in a real JupyterLab, driven through headless Chromium.

JupyterLab runs on a free loopback port (token auth) over a copy of the notebook; the
notebook is run in it cell by cell, the device and sensor controls of the explorer are
changed in the page, and the test checks that the plot changed each time, that the kernel
saw the changes, and that no error reached the page, the browser's console or the
server's log (the kernel's stderr, where widget callback errors go).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_device_explorer.ipynb"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, what: str, timeout: float = 180.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def jupyterlab(tmp_path, artifacts):
    """(url, log path) of a JupyterLab serving a copy of notebook 05."""
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    shutil.copytree(NOTEBOOK.parent / "images", tmp_path / "images")  # its screenshot
    port, token = _free_port(), secrets.token_hex(16)
    log = artifacts / "jupyterlab.log"
    env = {k: v for k, v in os.environ.items() if k != "IOTLAB_STORE"}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")  # no user settings leak in
    with open(log, "w", encoding="utf-8") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={tmp_path}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
                *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                return True
        except OSError:
            assert server.poll() is None, log.read_text()
            return False

    try:
        _wait(ready, "JupyterLab to answer", timeout=120)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", log
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _command(browser, command: str) -> None:
    """Run a JupyterLab command, as its menu item or shortcut would."""
    browser.execute_script("return window.jupyterapp.commands.execute(arguments[0])", command)


def _idle(browser) -> None:
    _wait(
        lambda: (
            browser.execute_script(
                "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
            )
            == "idle"
        ),
        "the kernel to be idle",
    )


def _image_src(browser, index: int = 0) -> str:
    from selenium.webdriver.common.by import By

    images = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img.widget-image")
    return images[index].get_attribute("src") if len(images) > index else ""


def test_notebook_05_explorer_redraws_in_jupyterlab(browser, jupyterlab, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, server_log = jupyterlab
    browser.get(url)
    _wait(
        lambda: browser.execute_script(
            "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            "return !!(w && w.content && w.content.widgets.length &&"
            " w.sessionContext.session && w.sessionContext.session.kernel &&"
            " w.sessionContext.session.kernel.status === 'idle');"
        ),
        "the notebook and its kernel",
    )
    # Decline JupyterLab's news prompt, which would cover part of the screenshots.
    for button in browser.find_elements(By.CSS_SELECTOR, ".jp-toast-button"):
        if button.text.strip() == "No":
            button.click()
    # Run every code cell, one after the other, as shift-enter would; the saved outputs
    # are cleared first.
    _command(browser, "notebook:clear-all-cell-outputs")
    browser.set_script_timeout(900)
    outcome = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const app = window.jupyterapp, nb = app.shell.currentWidget.content;"
        "const code = nb.widgets.map((c, i) => [c, i]).filter(([c]) => c.model.type === 'code');"
        "(async () => { for (const [, i] of code) {"
        "  nb.activeCellIndex = i; await app.commands.execute('notebook:run-cell'); } })()"
        ".then(() => done('ran ' + code.length), e => done('error ' + e));"
    )
    assert outcome.startswith("ran "), outcome
    _wait(
        lambda: (
            browser.execute_script(
                "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
            )
            == "idle"
            and len(browser.find_elements(By.CSS_SELECTOR, "img.widget-image")) >= 3
        ),
        "the widgets to show",
    )
    browser.save_screenshot(str(artifacts / "jupyterlab-05-run.png"))

    explorer = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")[0]
    browser.execute_script("arguments[0].scrollIntoView()", explorer)
    pickers = explorer.find_elements(By.CSS_SELECTOR, ".widget-dropdown")
    device = next(p for p in pickers if p.find_element(By.TAG_NAME, "label").text == "device")
    before = _image_src(browser)
    select = Select(device.find_element(By.TAG_NAME, "select"))
    options = [o.get_attribute("value") for o in select.options]
    assert len(options) >= 2
    select.select_by_index(len(options) - 1)  # the last device offered
    _wait(lambda: _image_src(browser) not in ("", before), "the plot to redraw for the device")
    after_device = _image_src(browser)
    _idle(browser)
    browser.save_screenshot(str(artifacts / "jupyterlab-05-device.png"))
    explorer.screenshot(str(artifacts / "explorer-widget.png"))  # the widget alone

    sensors = explorer.find_element(By.CSS_SELECTOR, ".widget-select-multiple select")
    picker = Select(sensors)
    names = [o.text for o in picker.options]
    assert len(names) >= 2
    picker.deselect_all()
    picker.select_by_index(0)  # one sensor: one panel
    _wait(lambda: _image_src(browser) not in ("", after_device), "the plot to redraw for a sensor")
    height = browser.execute_script(
        "return document.querySelector('.jp-OutputArea-output img.widget-image').naturalHeight"
    )
    _idle(browser)
    browser.save_screenshot(str(artifacts / "jupyterlab-05-sensor.png"))

    # The kernel saw both changes: ask it in a new cell at the end.
    browser.execute_script(
        "const nb = window.jupyterapp.shell.currentWidget.content;"
        "nb.activeCellIndex = nb.widgets.length - 1;"
    )
    _command(browser, "notebook:insert-cell-below")
    browser.execute_script(
        "const nb = window.jupyterapp.shell.currentWidget.content;"
        "nb.activeCell.model.sharedModel.setSource(arguments[0]);",
        "print('STATE', explorer.device_picker.value, list(explorer.sensor_picker.value), "
        "explorer.figure.get_size_inches()[1].round(2))",
    )
    _command(browser, "notebook:run-cell")
    state = _wait(
        lambda: [
            o.text
            for o in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output pre")
            if o.text.startswith("STATE")
        ],
        "the kernel's answer",
    )[0]
    assert options[-1] in state and f"['{names[0]}']" in state, state
    assert height == pytest.approx(
        float(state.split()[-1]) * 160, abs=2
    )  # one panel, drawn at 160 dpi
    browser.save_screenshot(str(artifacts / "jupyterlab-05-state.png"))

    # No error anywhere: not in the page's outputs, the console, or the kernel's stderr.
    assert not browser.find_elements(
        By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    severe = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert severe == [], severe
    text = Path(server_log).read_text(encoding="utf-8")
    assert "Traceback" not in text and "Exception in" not in text, text[-3000:]
