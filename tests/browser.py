"""Headless Chromium for the tests that open a page from disk and look at it as a reader would.

The system's Chromium and chromedriver (Debian's ``chromium`` and ``chromium-driver``) are driven
through Selenium with both paths given explicitly, so Selenium Manager is never asked to find or
download anything. A page is checked for what a unit test of its HTML cannot see: console errors
(script errors, Content-Security-Policy violations), every network request it made, what a click
does, whether its SVG charts are drawn at a size, and what it looks like (a screenshot).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, UnexpectedAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

MISSING_MESSAGE = "headless Chromium not found: apt-get install chromium chromium-driver"
"""The skip reason wherever the browser or its driver is not installed."""

CHROMIUM_NAMES = ("chromium", "chromium-browser")
"""The browser's command on Debian (chromium) and on distributions that name it otherwise."""

VIEWPORT_SIZE = (1280, 900)
"""The viewport in CSS pixels at one device pixel per CSS pixel: a laptop screen, so screenshots
look like what a reader sees and have the same size on every machine."""

PAGE_LOAD_TIMEOUT_S = 120
"""A hang guard for one page load, never a speed check: a file page loads in well under a second."""

CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--hide-scrollbars",  # screenshots show the page, not a scrollbar that takes 15 pixels
    "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MB
    f"--window-size={VIEWPORT_SIZE[0]},{VIEWPORT_SIZE[1]}",
    # the browser's own traffic (updates, sync, safe browsing): none of it belongs to the page
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
)


def find_chromium() -> tuple[str, str] | None:
    """The paths of the system's Chromium and chromedriver, or None where either is missing."""
    browser = next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None
    return browser, driver


@contextmanager
def selenium_manager_forbidden() -> Iterator[None]:
    """Selenium Manager, should anything ever call it, fails instead of downloading a driver.

    SE_OFFLINE is Selenium Manager's documented offline mode; SE_MANAGER_PATH pointing at no file
    makes the Python binding raise before it would start the manager at all.
    """
    saved = {name: os.environ.get(name) for name in ("SE_OFFLINE", "SE_MANAGER_PATH")}
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_MANAGER_PATH"] = "/nonexistent/selenium-manager-is-not-used-by-these-tests"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class NetworkRequest:
    """One request the page made: its URL and, where the browser stopped it, why (csp, ...)."""

    url: str
    blocked_reason: str | None = None


@dataclass
class PageRecord:
    """What one opened page has done so far: its console errors and its network requests."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    requests_by_id: dict[str, list[NetworkRequest]] = field(default_factory=dict)
    """DevTools request id -> the request and each redirect it followed, in order."""

    @property
    def network_requests(self) -> list[NetworkRequest]:
        """Every request other than the page itself and data: URLs, blocked ones included."""
        return [
            request
            for chain in self.requests_by_id.values()
            for request in chain
            if request.url != self.url and not request.url.startswith("data:")
        ]


class HeadlessChromium:
    """One headless Chromium session that opens pages from disk, one at a time.

    Console errors and network requests are gathered from the moment ``open`` navigates, so a
    page's record holds what its load and every later click did, and nothing an earlier page did.
    """

    def __init__(self, browser_path: str, driver_path: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = browser_path
        for argument in CHROMIUM_ARGUMENTS:
            options.add_argument(argument)
        # browser=ALL: console messages; performance: DevTools Network.* events, every request
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # an alert stays open for ``dialog_text`` to find, instead of being dismissed unseen
        options.set_capability("unhandledPromptBehavior", "ignore")
        with selenium_manager_forbidden():
            self.driver = webdriver.Chrome(
                options=options, service=Service(executable_path=driver_path)
            )
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        # the window size includes the browser's own bars: the page's viewport is set exactly
        width, height = VIEWPORT_SIZE
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self._page: PageRecord | None = None

    def quit(self) -> None:
        """End the browser session and its processes."""
        self.driver.quit()

    def open(self, path: Path) -> PageRecord:
        """Load the file at ``path`` and return its record once its load event has fired."""
        self._dismiss_dialog()
        # A blank page between two pages: a file rewritten under the same name is a new load.
        self.driver.get("about:blank")
        self._drain_logs()  # what the previous page did after its last look belongs to it
        url = path.resolve().as_uri()
        self._page = PageRecord(url)
        try:
            self.driver.get(url)
        except UnexpectedAlertPresentException:
            return self._page  # a script opened a dialog while the page loaded
        self._wait_for_load()
        return self._page

    @property
    def page(self) -> PageRecord:
        """The record of the page opened last, with every log entry received so far."""
        if self._page is None:
            raise RuntimeError("no page opened yet: call open(path) first")
        self._collect_logs(self._page)
        return self._page

    def console_errors(self) -> list[str]:
        """Every console message at level SEVERE since the page was opened (errors, CSP)."""
        return list(self.page.console_errors)

    def network_requests(self) -> list[NetworkRequest]:
        """Every request since the page was opened other than the page itself and data: URLs.

        A request the browser blocked (by the page's Content-Security-Policy, say) still counts:
        the page tried to reach out.
        """
        return list(self.page.network_requests)

    def dialog_text(self) -> str | None:
        """The text of an open alert, confirm or prompt dialog, or None when none is open."""
        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def click(self, css_selector: str) -> None:
        """Click the first element matching ``css_selector`` as a user would."""
        self.driver.find_element(By.CSS_SELECTOR, css_selector).click()

    def texts(self, css_selector: str) -> list[str]:
        """The rendered text of every element matching ``css_selector``, in document order."""
        return [
            element.text for element in self.driver.find_elements(By.CSS_SELECTOR, css_selector)
        ]

    def column_texts(self, table_selector: str, column: int) -> list[str]:
        """The rendered text of one body column (0 = first) of a table, top row first."""
        return self.texts(f"{table_selector} tbody tr > :nth-child({column + 1})")

    def rendered_sizes(self, css_selector: str) -> list[tuple[float, float]]:
        """Width and height in CSS pixels (getBoundingClientRect) of every matching element."""
        sizes: list[list[float]] = self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => {"
            " const r = e.getBoundingClientRect(); return [r.width, r.height]; });",
            css_selector,
        )
        return [(width, height) for width, height in sizes]

    def load_time_s(self) -> float:
        """Seconds from the start of navigation to the end of the load event, as the page saw it.

        PerformanceNavigationTiming: fetching the file, parsing, running scripts, laying out.
        """
        milliseconds: float = self.driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            " return n.loadEventEnd - n.startTime;"
        )
        return milliseconds / 1000

    def screenshot(self, path: Path, *, full_page: bool = False) -> int:
        """Write a PNG of the viewport (or the whole page) to ``path`` and return its size in bytes.

        The whole page is taken by DevTools (Page.captureScreenshot beyond the viewport): the
        WebDriver screenshot covers only the window.
        """
        if full_page:
            width, height = self._document_size()
            result: dict[str, Any] = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                },
            )
            path.write_bytes(base64.b64decode(result["data"]))
        else:
            path.write_bytes(self.driver.get_screenshot_as_png())
        return path.stat().st_size

    def _document_size(self) -> tuple[float, float]:
        size: Sequence[float] = self.driver.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];"
        )
        return size[0], size[1]

    def _wait_for_load(self) -> None:
        """Wait until the document is complete or a dialog stops it.

        The driver can return from a navigation while a dialog is opening, before the page has
        finished: a dialog opened during the load holds the load back, so "complete" or an open
        dialog is the end of every script the load runs.
        """

        def complete_or_dialog(driver: WebDriver) -> bool:
            try:
                return bool(driver.execute_script("return document.readyState") == "complete")
            except UnexpectedAlertPresentException:
                return True

        WebDriverWait(self.driver, PAGE_LOAD_TIMEOUT_S).until(complete_or_dialog)

    def _dismiss_dialog(self) -> None:
        with suppress(NoAlertPresentException):
            self.driver.switch_to.alert.dismiss()

    def _log(self, log_type: str) -> list[dict[str, Any]]:
        """The entries of one chromedriver log (browser, performance) since it was last read."""
        entries: list[dict[str, Any]] = self.driver.get_log(log_type)  # type: ignore[no-untyped-call]
        return entries

    def _drain_logs(self) -> None:
        for log_type in ("browser", "performance"):
            self._log(log_type)

    def _collect_logs(self, page: PageRecord) -> None:
        for entry in self._log("browser"):
            if entry.get("level") == "SEVERE":
                page.console_errors.append(str(entry.get("message")))
        for entry in self._log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                chain = page.requests_by_id.setdefault(params["requestId"], [])
                chain.append(NetworkRequest(params["request"]["url"]))
            elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
                for request in page.requests_by_id.get(params["requestId"], [])[-1:]:
                    request.blocked_reason = params["blockedReason"]
