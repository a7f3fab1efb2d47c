"""The dashboard end to end: a real `scoter worker` and a real `scoter dashboard` process on a
SQLite file with tasks in every state, driven in headless Chromium (Selenium).

Screenshots of each page go to $SCOTER_ARTEFACTS (default: this test's temporary directory),
printed at the end. Skipped when chromium or chromedriver is not installed (.ci/run installs
Debian's `chromium` and `chromium-driver`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import HERE, Worker
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from scoter import Scoter
from scoter.states import State
from scoter.storage.base import NewTask

TOKEN = "dashboard-test-token"
XSS_NAME = "<script>alert(1)</script>"
XSS_ERROR = "Traceback (most recent call last):\nValueError: <img src=x onerror=alert(2)>\n"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def artefacts(tmp_path: Path) -> Iterator[Path]:
    where = Path(os.environ.get("SCOTER_ARTEFACTS") or tmp_path / "artefacts") / "dashboard"
    where.mkdir(parents=True, exist_ok=True)
    yield where
    print(f"\ndashboard screenshots: {where}")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Stack:
    """The storage, the producer app, a worker and a dashboard process of one test."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'queue.db'}"
        monkeypatch.setenv("SCOTER_URL", self.url)
        monkeypatch.syspath_prepend(str(HERE))
        import dashboard_app

        self.module = dashboard_app
        self.app: Scoter = dashboard_app.app
        self.app._storage = None
        self.app._url = self.url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}

    def run(self, name: str, *args: str) -> Worker:
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "scoter", *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env)  # fmt: skip
        self.procs.append(proc)
        return Worker(proc, log_path)

    def state(self, task_id: str) -> State | None:
        info = self.app.storage.get(task_id)
        return None if info is None else info.state

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.app.storage.close()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s = Stack(tmp_path, monkeypatch)
    yield s
    s.close()


def _hostile_dead_task(stack: Stack) -> None:
    """A dead task whose stored name and error are markup (written straight to storage, as a
    hostile or corrupt producer could)."""
    storage = stack.app.storage
    storage.enqueue([NewTask("xss-1", XSS_NAME, "xss", b"{}")])
    (lease,) = storage.claim(["xss"], 1, 30.0, "intruder")
    assert storage.dead(lease.token, "error", XSS_ERROR)


def _fill(stack: Stack) -> dict[str, str]:
    m = stack.module
    flag = stack.tmp / "flag"
    ids = {
        "fixable": m.fixable(str(flag)).id, "crasher": m.crasher().id, "slow": m.slow(60).id,
        "scheduled": m.add.schedule((1, 2), delay=3600).id,
    }  # fmt: skip
    ids.update({f"add{i}": m.add(i, i).id for i in range(3)})
    m.later()
    m.later()
    _hostile_dead_task(stack)
    return ids


CELL = """
const [queue, state] = arguments;
const states = [...document.querySelectorAll("#counts thead th")].map((th) => th.textContent);
for (const row of document.querySelectorAll("#counts tbody tr")) {
  if (row.querySelector("th").textContent === queue) {
    return row.querySelectorAll("td")[states.indexOf(state) - 1].textContent;
  }
}
return "";
"""


def _cell(browser: WebDriver, queue: str, state: str) -> str:
    """A count, read in one script: the live updates replace the table every refresh."""
    return str(browser.execute_script(CELL, queue, state))


def _text(browser: WebDriver, css: str) -> str:
    """The text of the first element `css` selects ('' when none), read in one script."""
    found = browser.execute_script("return document.querySelector(arguments[0])?.innerText", css)
    return str(found or "")


def _has(browser: WebDriver, css: str) -> bool:
    return bool(browser.execute_script("return !!document.querySelector(arguments[0])", css))


def _no_alert(browser: WebDriver) -> None:
    try:
        text = browser.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"stored markup ran as script: alert({text!r})")


def test_dashboard_in_a_browser(
    stack: Stack, browser: WebDriver, artefacts: Path
) -> None:  # fmt: skip
    ids = _fill(stack)
    stack.run("worker", "worker", "dashboard_app:app", "-Q", "default", "-k", "process",
              "-w", "2", "--lease", "10").wait_until_ready()  # fmt: skip
    _until(lambda: stack.state(ids["crasher"]) is State.DEAD, "the crash to be quarantined")
    _until(lambda: stack.state(ids["slow"]) is State.RUNNING, "the slow task to run")
    port = _free_port()
    dashboard = stack.run("dashboard", "dashboard", "dashboard_app:app", "--port", str(port),
                          "--token", TOKEN, "--refresh", "0.5")  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    _until(lambda: "dashboard of shop" in dashboard.log(), "the dashboard to start")
    _until(lambda: _listening(port), "the dashboard to listen")

    # The overview: counts of every state, the consumer, the running task with its progress.
    browser.get(base + "/")
    _until(lambda: _cell(browser, "default", "done") == "3", "3 done in the counts")
    assert [_cell(browser, "default", s) for s in ("scheduled", "running", "dead")] == [
        "1", "1", "2",
    ]  # fmt: skip
    assert _cell(browser, "later", "queued") == "2" and _cell(browser, "xss", "dead") == "1"
    _until(lambda: _has(browser, "#running meter"), "the running task's progress")
    assert "/600" in _text(browser, "#running tbody")
    assert _text(browser, "#consumers tbody tr")

    # The dead list: open a dead task's traceback; stored markup shows as text, never runs.
    browser.get(base + "/dead")
    details = f"details[data-key='{ids['fixable']}']"
    browser.find_element(By.CSS_SELECTOR, details + " summary").click()
    _until(lambda: "ValueError: flag file" in _text(browser, details + "[open] pre.traceback"),
           "the traceback, open")  # fmt: skip
    assert "Traceback (most recent call last)" in _text(browser, details + " pre.traceback")
    assert XSS_NAME in _text(browser, "#dead-list")
    assert not browser.find_elements(By.CSS_SELECTOR, "#dead-list img, #dead-list script")
    _no_alert(browser)
    browser.save_screenshot(str(artefacts / "dead.png"))

    # A crashed task's page: the attempt history names the signal.
    browser.get(f"{base}/tasks/{ids['crasher']}")
    history = _text(browser, "#history")
    assert "crashed" in history and "SIGKILL" in history
    browser.save_screenshot(str(artefacts / "task-crashed.png"))

    # Retry without the token: refused, and the task stays dead.
    browser.get(f"{base}/tasks/{ids['fixable']}")
    browser.execute_script("window.notReloaded = true")
    browser.find_element(By.CSS_SELECTOR, "button[data-action=retry]").click()
    flash = browser.find_element(By.ID, "flash")
    _until(lambda: flash.is_displayed() and "refused (403)" in flash.text, "the refusal")
    assert stack.state(ids["fixable"]) is State.DEAD

    # With the token: queued again, and the worker runs it; the page follows without a reload.
    (stack.tmp / "flag").touch()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "button[data-action=retry]").click()
    _until(lambda: "queued again: 1" in flash.text, "the retry")
    _until(lambda: _text(browser, "#task .badge") == "done", "the run")
    assert browser.execute_script("return window.notReloaded") is True
    assert "succeeded" in _text(browser, "#history")
    browser.save_screenshot(str(artefacts / "task.png"))

    # Search by task name.
    browser.get(base + "/search")
    box = browser.find_element(By.NAME, "name")
    box.send_keys("add")
    box.submit()
    _until(lambda: "4 found" in _text(browser, "#results"), "the results")
    browser.save_screenshot(str(artefacts / "search.png"))

    # Back on the overview: the retried task's run is in the throughput chart.
    browser.get(base + "/")
    _until(lambda: _has(browser, "#chart polyline"), "the throughput chart")
    assert _cell(browser, "default", "done") == "4"
    browser.save_screenshot(str(artefacts / "overview.png"))
    assert dashboard.proc.poll() is None, dashboard.log()
