"""Helpers for the browser tests: chromium settings, waiting for Streamlit, metrics, screenshots, error watching."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1440, "height": 1000}
ARTIFACTS = ROOT / "test-artifacts"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
# Set to 1 to refresh docs/screenshots/ from this run (off by default: every run's PNGs differ a little,
# e.g. run ids and temp paths, and `make test` should not leave the working tree modified).
UPDATE_DOC_SCREENSHOTS_ENV = "UPDATE_DOC_SCREENSHOTS"
# Generous: CI machines are slow, and a rerun may prepare a month of calls.
TIMEOUT_MS = 60_000
FIRST_LOAD_TIMEOUT_MS = 120_000  # the first session generates the demo month
SCREENSHOT_MAX_HEIGHT = 6_000
expect.set_options(timeout=TIMEOUT_MS)

# Console messages of type "error" that are benign, as (message pattern, resource URL pattern, why).
# Everything else logged as an error, and every uncaught page error, fails the test.
IGNORED_CONSOLE_ERRORS: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    (re.compile(r"^Failed to load resource: the server responded with a status of 404"),
     re.compile(r"/favicon\.ico$"),
     "chromium requests /favicon.ico by itself; the app's icon is set by Streamlit's page config"),
    (re.compile(r"^Failed to load resource: the server responded with a status of 404"),
     re.compile(r"^https?://[^/]+/[^_][^/]*/_stcore/(health|host-config)$"),
     "opened on a page URL (/reconcile), Streamlit's frontend first tries that path as the server's base path, "
     "gets 404 and falls back to /"),
)


@dataclass(frozen=True)
class AppServer:
    """The app under test: its URL, its log and its private user data folder."""

    url: str
    log_path: Path
    data_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass
class BrowserWatch:
    """Collects browser console errors and page errors; ``check`` also looks for Streamlit exceptions."""

    page: Page
    server: AppServer
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        text = f"console error: {message.text} (at {url or '?'})"
        if any(p.search(message.text) and u.search(url) for p, u, _why in IGNORED_CONSOLE_ERRORS):
            self.ignored.append(text)
        else:
            self.errors.append(text)

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"page error: {error.name}: {error.message}\n{error.stack or ''}")

    def check(self, step: str) -> None:
        """Fail on any console/page error so far, a Streamlit exception, an error alert or a server traceback."""
        assert not self.errors, f"{step}: browser errors:\n" + "\n".join(self.errors)
        exceptions = self.page.get_by_test_id("stException")
        assert exceptions.count() == 0, f"{step}: Streamlit exception shown: {exceptions.all_inner_texts()}"
        alerts = self.page.get_by_test_id("stAlertContentError")
        assert alerts.count() == 0, f"{step}: error message shown: {alerts.all_inner_texts()}"
        log = self.server.log()
        assert "Traceback" not in log, f"{step}: the server logged a traceback:\n{self.server.log_tail()}"


def settle(page: Page, timeout: int = TIMEOUT_MS) -> None:
    """Wait until the script run is over and no element is stale (greyed out while a rerun is pending).

    Call it after waiting for something the rerun produces: right after an input, the frontend may
    not have asked for the rerun yet.
    """
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=timeout)


# While a rerun is under way, the previous run's elements stay on the page marked data-stale="true" (greyed out)
# until the run ends, so the same text or tile can be there twice: page checks look at the current run's only.
NOT_STALE = ':not([data-stale="true"], [data-stale="true"] *)'


def fresh(locator: Locator) -> Locator:
    """``locator`` without the elements left over from the previous run."""
    return locator.and_(locator.page.locator(NOT_STALE))


def text(page: Page, value: str | re.Pattern[str], exact: bool = False) -> Locator:
    return fresh(page.get_by_text(value, exact=exact))


def heading(page: Page, name: str, level: int | None = None) -> Locator:
    if level is None:
        return fresh(page.get_by_role("heading", name=name, exact=True))
    return fresh(page.get_by_role("heading", name=name, exact=True, level=level))


def button(page: Page, name: str) -> Locator:
    return fresh(page.get_by_role("button", name=name, exact=True))


def by_testid(page: Page, value: str) -> Locator:
    return fresh(page.get_by_test_id(value))


def metric(page: Page, label: str) -> Locator:
    """The value of the ``st.metric`` tile labelled ``label``."""
    return (by_testid(page, "stMetric")
            .filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
            .get_by_test_id("stMetricValue"))


def metrics(page: Page) -> dict[str, str]:
    """Every metric tile of the current run, label -> value text."""
    pairs = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetric"]')]
        .filter(m => !m.closest('[data-stale="true"]'))
        .map(m => [m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() ?? '',
                   m.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() ?? ''])""")
    return {label: value for label, value in pairs}


def number(value: str) -> float:
    """``"3,155"`` / ``"99.68 %"`` / ``"$1.43"`` -> a float."""
    return float(re.sub(r"[^0-9.\-]", "", value))


def open_page(page: Page, title: str) -> None:
    """Switch page with the sidebar navigation and wait for the page to finish its run."""
    page.get_by_test_id("stSidebarNav").get_by_role("link").filter(has_text=title).click()
    expect(heading(page, title, level=1)).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the ``st.selectbox`` labelled ``label``."""
    by_testid(page, "stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def full_page_screenshot(page: Page, folder: Path, name: str) -> Path:
    """A screenshot of the whole page (Streamlit scrolls inside its main area, so the viewport is
    made as tall as that area's content for the shot), saved as ``folder/name`` and, with
    UPDATE_DOC_SCREENSHOTS=1, copied to docs/screenshots/."""
    height_js = """() => { const main = document.querySelector('[data-testid="stMain"]');
                           return Math.ceil(main ? main.scrollHeight : document.documentElement.scrollHeight); }"""
    two_frames = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] - 5)  # no hover effect (sidebar, grid rows) in the shot
    try:
        for _ in range(3):  # the layout may grow once more after the resize (charts, grids)
            height = min(max(int(page.evaluate(height_js)), VIEWPORT["height"]), SCREENSHOT_MAX_HEIGHT)
            if page.viewport_size and page.viewport_size["height"] == height:
                break
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            page.evaluate(two_frames)
        settle(page)
        path = folder / name
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    finally:
        page.set_viewport_size(VIEWPORT)
        page.evaluate(two_frames)
    if os.environ.get(UPDATE_DOC_SCREENSHOTS_ENV) == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / name)
    return path


def set_number_input(page: Page, label: str, value: str) -> None:
    """Type ``value`` into the ``st.number_input`` labelled ``label`` and commit it with Enter."""
    field = fresh(page.get_by_role("spinbutton", name=label, exact=True))
    field.fill(value)
    field.press("Enter")


def plotly_traces(page: Page, index: int) -> int:
    """How many traces the ``index``-th plotly chart of the current run holds (from its live figure)."""
    return int(page.evaluate("""(i) => {
        const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
            .filter(c => !c.closest('[data-stale="true"]'));
        return charts[i] && charts[i].data ? charts[i].data.length : 0; }""", index))
