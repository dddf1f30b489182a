"""The headless-browser harness can fail: each check is shown to catch what it is there to catch.

Small pages written here stand in for the HTML report; a local HTTP server receives the requests a
page should never make, so a request the harness reports is one the server saw.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import (
    PAGE_LOAD_TIMEOUT_S,
    VIEWPORT_SIZE,
    HeadlessChromium,
    NetworkRequest,
    find_chromium,
    selenium_manager_forbidden,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SORTABLE_TABLE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>runs</title>
<table id="runs"><thead><tr><th><button>name</button></th><th>energy</th></tr></thead>
<tbody><tr><td>charlie</td><td>3</td></tr><tr><td>alpha</td><td>10</td></tr>
<tr><td>bravo</td><td>2</td></tr></tbody></table>
<script>
const body = document.querySelector("#runs tbody");
let ascending = false;
document.querySelector("#runs th button").addEventListener("click", () => {
  ascending = !ascending;
  const rows = Array.from(body.rows);
  rows.sort((a, b) => a.cells[0].textContent.localeCompare(b.cells[0].textContent));
  if (!ascending) rows.reverse();
  body.append(...rows);
});
</script></html>"""


def write_page(tmp_path: Path, body: str, head: str = "") -> Path:
    page = tmp_path / "page.html"
    page.write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{head}<title>test</title>'
        f"</head><body>{body}</body></html>",
        encoding="utf-8",
    )
    return page


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_script_error_is_a_console_error_of_that_page_only(
    browser: HeadlessChromium, tmp_path: Path
) -> None:
    broken = write_page(tmp_path, '<p>x</p><script>throw new Error("boom-4711")</script>')
    browser.open(broken)
    errors = browser.console_errors()
    assert len(errors) == 1
    assert "boom-4711" in errors[0]

    clean = tmp_path / "clean.html"
    clean.write_text('<!doctype html><html lang="en"><title>ok</title><p>fine</p></html>')
    browser.open(clean)
    assert browser.console_errors() == []
    assert browser.network_requests() == []


def test_a_request_to_a_server_is_reported(
    browser: HeadlessChromium, tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/x.png").respond_with_data(PNG_SIGNATURE, content_type="image/png")
    url = httpserver.url_for("/x.png")
    data_image = "data:image/png;base64,iVBORw0KGgo="
    browser.open(write_page(tmp_path, f'<img src="{url}" alt="x"><img src="{data_image}" alt="">'))
    assert browser.network_requests() == [NetworkRequest(url)]
    assert [request.path for request, _ in httpserver.log] == ["/x.png"]


def test_a_request_blocked_by_the_pages_csp_is_reported_and_a_console_error(
    browser: HeadlessChromium, tmp_path: Path, httpserver: HTTPServer
) -> None:
    url = httpserver.url_for("/x.png")
    csp = '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
    browser.open(write_page(tmp_path, f'<img src="{url}" alt="x">', head=csp))
    assert browser.network_requests() == [NetworkRequest(url, blocked_reason="csp")]
    errors = browser.console_errors()
    assert len(errors) == 1
    assert "Content Security Policy" in errors[0]
    assert url in errors[0]
    assert httpserver.log == []


def test_a_request_a_click_makes_after_the_load_is_reported(
    browser: HeadlessChromium, tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/beacon").respond_with_data("")
    url = httpserver.url_for("/beacon")
    script = f'<script>document.querySelector("button").onclick = () => fetch("{url}");</script>'
    browser.open(write_page(tmp_path, f"<button>send</button>{script}"))
    assert browser.network_requests() == []
    browser.click("button")
    requests = WebDriverWait(browser.driver, PAGE_LOAD_TIMEOUT_S).until(
        lambda _: browser.network_requests()
    )
    assert requests == [NetworkRequest(url)]


def test_clicking_a_header_sorts_the_table(browser: HeadlessChromium, tmp_path: Path) -> None:
    page = tmp_path / "table.html"
    page.write_text(SORTABLE_TABLE, encoding="utf-8")
    browser.open(page)
    assert browser.column_texts("#runs", 0) == ["charlie", "alpha", "bravo"]
    assert browser.column_texts("#runs", 1) == ["3", "10", "2"]
    browser.click("#runs th button")
    assert browser.column_texts("#runs", 0) == ["alpha", "bravo", "charlie"]
    assert browser.column_texts("#runs", 1) == ["10", "2", "3"]
    browser.click("#runs th button")
    assert browser.column_texts("#runs", 0) == ["charlie", "bravo", "alpha"]
    assert browser.console_errors() == []


def test_an_inline_svg_is_drawn_at_its_size_and_a_hidden_one_at_none(
    browser: HeadlessChromium, tmp_path: Path
) -> None:
    chart = '<svg role="img" width="{w}" height="{h}" {extra}><rect width="10" height="5"/></svg>'
    browser.open(
        write_page(
            tmp_path,
            chart.format(w=200, h=100, extra='id="shown"')
            + chart.format(w=200, h=100, extra='id="hidden" style="display:none"'),
        )
    )
    assert browser.rendered_sizes("#shown") == [(200, 100)]
    assert browser.rendered_sizes("#shown rect") == [(10, 5)]
    assert browser.rendered_sizes("#hidden") == [(0, 0)]


def test_an_escaped_script_reads_back_as_text_and_opens_no_dialog(
    browser: HeadlessChromium, tmp_path: Path
) -> None:
    name = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    browser.open(write_page(tmp_path, f'<table><tr><td class="name">{escaped}</td></tr></table>'))
    assert browser.texts("td.name") == [name]
    assert browser.dialog_text() is None

    # the same name unescaped runs, and the harness sees the dialog it opens
    browser.open(write_page(tmp_path, f'<table><tr><td class="name">{name}</td></tr></table>'))
    assert browser.dialog_text() == "1"


def test_a_screenshot_is_a_png_of_the_window_or_of_the_whole_page(
    browser: HeadlessChromium, tmp_path: Path
) -> None:
    rows = "".join(f"<tr><td>run {i:03d}</td><td>{i * 1.7:.1f} kWh</td></tr>" for i in range(80))
    chart = '<svg width="600" height="200"><circle cx="100" cy="100" r="80" fill="teal"/></svg>'
    browser.open(write_page(tmp_path, f"{chart}<table>{rows}</table>"))

    window = tmp_path / "window.png"
    size = browser.screenshot(window)
    assert size == window.stat().st_size
    # 80 rows of text and a filled circle: about 60 KB; an empty window 5 KB, one line 7 KB
    assert size > 20_000
    assert png_size(window) == VIEWPORT_SIZE

    whole = tmp_path / "whole.png"
    assert browser.screenshot(whole, full_page=True) > size
    width, height = png_size(whole)
    assert width == VIEWPORT_SIZE[0]
    assert height > VIEWPORT_SIZE[1]  # 80 rows do not fit the window


def test_the_load_time_is_the_pages_own_measure(browser: HeadlessChromium, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "<p>x</p>"))
    seconds = browser.load_time_s()
    assert math.isfinite(seconds)
    assert 0 < seconds < PAGE_LOAD_TIMEOUT_S


def test_chromium_is_found_only_with_its_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("chromium", "chromedriver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() == (str(tmp_path / "chromium"), str(tmp_path / "chromedriver"))
    (tmp_path / "chromedriver").unlink()
    assert find_chromium() is None


def test_selenium_manager_cannot_run_while_the_browser_starts() -> None:
    before = {name: os.environ.get(name) for name in ("SE_OFFLINE", "SE_MANAGER_PATH")}
    with selenium_manager_forbidden(), pytest.raises(WebDriverException, match="SE_MANAGER_PATH"):
        SeleniumManager().binary_paths(["--browser", "chrome"])
    assert {name: os.environ.get(name) for name in before} == before
