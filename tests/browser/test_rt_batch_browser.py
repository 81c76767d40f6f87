"""Browser end to end: the Real-time vs batch page in the real app (streamlit run + Debian's chromium).

Opens the page on the sandbox demo (badge, KPI tiles, the variance chart and the status heatmap
drawn by plotly), changes the buffer and the granularity and sees the tiles follow, downloads
the Excel workbook and reads it back with openpyxl, and saves a full-page screenshot (copied to
docs/screenshots/rt_batch.png with UPDATE_DOC_SCREENSHOTS=1). Any browser console error, page
error, Streamlit exception or server traceback fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    FIRST_LOAD_TIMEOUT_MS,
    TIMEOUT_MS,
    AppServer,
    BrowserWatch,
    button,
    choose,
    full_page_screenshot,
    heading,
    metric,
    metrics,
    number,
    open_page,
    plotly_traces,
    set_number_input,
    settle,
    text,
)
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (`make chromium`, or `make test` installs it); "
                "skipped outside CI", allow_module_level=True)

pytestmark = pytest.mark.browser

RT_BATCH = "Real-time vs batch"
KPIS = ("Intervals compared", "OK", "MISMATCH", "PENDING", "UNMAPPED")
WORKBOOK_SHEETS = ["Summary", "Mismatches", "Pending", "Unmapped", "Unmapped statuses", "All metrics"]


def test_rt_batch_page_in_the_browser(page: Page, app_server: AppServer, watch: BrowserWatch, artifacts: Path,
                                      tmp_path: Path) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_server.url)
    expect(heading(page, "Invoice — upload and map", level=1)).to_be_visible(timeout=FIRST_LOAD_TIMEOUT_MS)
    settle(page, timeout=FIRST_LOAD_TIMEOUT_MS)
    open_page(page, RT_BATCH)

    # The demo: badge, tiles, and both plotly figures drawn (lines, band and markers; heatmap cells and legend).
    expect(text(page, "demo data", exact=True)).to_be_visible()
    expect(metric(page, "MISMATCH")).to_be_visible(timeout=FIRST_LOAD_TIMEOUT_MS)
    settle(page)
    demo = metrics(page)
    assert all(label in demo for label in KPIS), demo
    assert number(demo["MISMATCH"]) > 0 and number(demo["PENDING"]) > 0 and number(demo["UNMAPPED"]) > 0, demo
    chart = page.get_by_test_id("stPlotlyChart").nth(0)
    heatmap = page.get_by_test_id("stPlotlyChart").nth(1)
    expect(chart.locator(".scatterlayer .trace")).not_to_have_count(0)
    expect(chart.locator(".legendtext").filter(has_text="Tolerance band (batch ± allowed)")).to_have_count(1)
    expect(chart.locator(".legendtext").filter(has_text="Mismatch")).to_have_count(1)
    expect(heatmap.locator(".heatmaplayer image")).to_have_count(1)
    for status in ("OK", "MISMATCH", "PENDING", "UNMAPPED"):
        expect(heatmap.locator(".legendtext").filter(has_text=status)).to_have_count(1)
    assert plotly_traces(page, 0) >= 4 and plotly_traces(page, 1) >= 1
    expect(text(page, "Project Work (")).to_have_count(1)  # the review list names the unmapped custom presence
    expect(heading(page, f"Mismatches ({demo['MISMATCH']})")).to_be_visible()
    watch.check("open the page on the demo")
    full_page_screenshot(page, artifacts, "rt_batch.png")

    # A zero buffer: the last interval's batch counts as final now, fewer values wait.
    set_number_input(page, "Buffer (minutes)", "0")
    expect(metric(page, "PENDING")).not_to_have_text(demo["PENDING"])
    settle(page)
    no_buffer = metrics(page)
    assert number(no_buffer["PENDING"]) < number(demo["PENDING"]), no_buffer
    assert number(no_buffer["Intervals compared"]) > number(demo["Intervals compared"]), no_buffer
    watch.check("buffer 0 minutes")
    set_number_input(page, "Buffer (minutes)", "60")
    expect(metric(page, "PENDING")).to_have_text(demo["PENDING"])
    settle(page)
    assert metrics(page) == demo

    # Hour intervals: about half as many intervals.
    choose(page, "Granularity", "1 hour (PT1H)")
    expect(metric(page, "Intervals compared")).not_to_have_text(demo["Intervals compared"])
    settle(page)
    hourly = metrics(page)
    assert number(hourly["Intervals compared"]) < number(demo["Intervals compared"]), hourly
    watch.check("granularity PT1H")

    # The Excel workbook of the result on screen.
    workbook = tmp_path / "rt_vs_batch.xlsx"
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button(page, "Excel workbook").click()
    assert download.value.suggested_filename == "rt_vs_batch.xlsx"
    download.value.save_as(workbook)
    book = load_workbook(workbook, read_only=True)
    assert book.sheetnames == WORKBOOK_SHEETS
    # write-only sheets carry no dimension record, so count the rows read back
    rows = {name: sum(1 for _ in book[name].iter_rows()) - 1 for name in WORKBOOK_SHEETS[1:]}
    assert rows["Mismatches"] == number(hourly["MISMATCH"]), (rows, hourly)
    assert rows["Pending"] == number(hourly["PENDING"]), (rows, hourly)
    assert rows["Unmapped"] == number(hourly["UNMAPPED"]), (rows, hourly)
    assert rows["All metrics"] == sum(number(hourly[s]) for s in KPIS[1:]), (rows, hourly)
    header = [c.value for c in next(book["Mismatches"].iter_rows(min_row=1, max_row=1))]
    assert {"interval_start", "queue_id", "metric", "rt_value", "batch_value", "status", "likely_cause"} <= set(header)
    watch.check("download the Excel workbook")
