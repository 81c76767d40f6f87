"""Browser end to end: an analyst's month in the real app (streamlit run + Debian's chromium via Playwright).

Invoice: the demo badge, uploading a Twilio file (detected, counted, mapped), back to the demo
invoice. Genesys: fetching the demo month from the local sandbox. Reconcile: KPI tiles, the time
tolerance slider by keyboard, a discrepancy explained from the AgGrid results, the Excel dispute
pack downloaded and read back, the run saved. History: the saved run reopened. Any browser
console error, page error, Streamlit exception or server traceback fails the test; each page is
saved as a full-page screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    CHROMIUM,
    FIRST_LOAD_TIMEOUT_MS,
    ROOT,
    TIMEOUT_MS,
    AppServer,
    BrowserWatch,
    button,
    by_testid,
    choose,
    fresh,
    full_page_screenshot,
    heading,
    metric,
    metrics,
    number,
    open_page,
    settle,
    text,
)
from openpyxl import load_workbook
from playwright.sync_api import FrameLocator, Locator, Page, expect

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (`make chromium`, or `make test` installs it); "
                "skipped outside CI", allow_module_level=True)

pytestmark = pytest.mark.browser

TWILIO_CSV = ROOT / "tests" / "fixtures" / "carriers" / "twilio" / "twilio_calls_generated.csv"
INVOICE, GENESYS, RECONCILE, HISTORY = "Invoice — upload and map", "Genesys — fetch CDRs", "Reconcile", "History"
DISCREPANCY_SHEETS = ("COST_VARIANCE", "MISSING_IN_CDR", "MISSING_IN_INVOICE", "DUPLICATE_CHARGE")
WORKBOOK_SHEETS = ["Summary", *DISCREPANCY_SHEETS, "Matched", "Excluded", "Rejected"]
# The demo invoice's injected faults at the default 10 s tolerance (as in tests/app/test_reconcile_page.py):
# 5 cost variances, 3 missing in CDR, 4 missing in invoice, 2 duplicate charges.
DEMO_DISCREPANCIES = {"COST_VARIANCE": 5, "MISSING_IN_CDR": 3, "MISSING_IN_INVOICE": 4, "DUPLICATE_CHARGE": 2}


def test_invoice_genesys_reconcile_history_in_the_browser(page: Page, app_server: AppServer, watch: BrowserWatch,
                                                          artifacts: Path, tmp_path: Path) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_server.url)

    demo_invoice_rows = invoice_page(page, watch, artifacts)
    legs = genesys_page(page, watch, artifacts)
    run_id = reconcile_page(page, watch, artifacts, tmp_path, invoice_rows=demo_invoice_rows, cdr_legs=legs)
    history_page(page, watch, artifacts, run_id)
    watch.check("end of the walk-through")


# ---------------------------------------------------------------------------------------- Invoice

def invoice_page(page: Page, watch: BrowserWatch, artifacts: Path) -> int:
    """Demo first; upload a Twilio CSV, see it detected and counted, map it, then go back to the demo.

    Returns the demo invoice's row count.
    """
    expect(heading(page, INVOICE, level=1)).to_be_visible(timeout=FIRST_LOAD_TIMEOUT_MS)
    expect(text(page, "demo data", exact=True)).to_be_visible(timeout=FIRST_LOAD_TIMEOUT_MS)
    expect(metric(page, "Rows read")).to_be_visible(timeout=FIRST_LOAD_TIMEOUT_MS)
    settle(page)
    demo_counts = metrics(page)
    demo_rows = int(number(demo_counts["Rows read"]))
    assert demo_rows == number(demo_counts["Normalized"]) + number(demo_counts["Rejected"]) and demo_rows > 3000
    watch.check("open the app on the demo invoice")

    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(TWILIO_CSV)
    expect(text(page, f"Using 1 uploaded file(s): {TWILIO_CSV.name}")).to_be_visible()
    # The file's 10 rows: 7 calls, 3 rejected on purpose (tests/fixtures/carriers/twilio/README.md).
    expect(metric(page, "Rows read")).to_have_text("10")
    expect(metric(page, "Normalized")).to_have_text("7")
    expect(metric(page, "Rejected")).to_have_text("3")
    settle(page)
    expect(text(page, "Detected carrier profile")).to_contain_text("twilio: 9 of 9 mapped columns found")
    expect(text(page, "demo data", exact=True)).to_have_count(0)
    watch.check("upload a Twilio CSV")

    # Map it: a custom mapping starts from the detected profile and previews the first rows ...
    choose(page, "Mapping profile", "Custom mapping…")
    expect(heading(page, "Map the columns")).to_be_visible()
    expect(text(page, re.compile(r"^\d+ of 10 sample rows normalized, \d+ rejected$"))).to_be_visible()
    settle(page)
    watch.check("open the custom mapping")
    # ... and the shipped Twilio profile reads the whole file again.
    choose(page, "Mapping profile", "twilio")
    expect(heading(page, "Rejected rows (3)")).to_be_visible()
    expect(metric(page, "Normalized")).to_have_text("7")
    settle(page)
    expect(heading(page, "Map the columns")).to_have_count(0)
    expect(by_testid(page, "stDataFrame")).to_have_count(2)  # canonical records and rejected rows
    watch.check("map the Twilio file with the twilio profile")
    full_page_screenshot(page, artifacts, "invoice.png")

    # The rest of the walk-through reconciles the demo month: back to the demo invoice.
    button(page, "Remove the uploads (back to the demo invoice)").click()
    expect(text(page, "demo data", exact=True)).to_be_visible()
    expect(metric(page, "Rows read")).to_have_text(f"{demo_rows:,}")
    settle(page)
    watch.check("back to the demo invoice")
    return demo_rows


# ---------------------------------------------------------------------------------------- Genesys

def genesys_page(page: Page, watch: BrowserWatch, artifacts: Path) -> int:
    """Fetch the demo month from the local sandbox; returns the billable legs fetched."""
    open_page(page, GENESYS)
    expect(text(page, "demo data", exact=True)).to_be_visible()
    expect(page.get_by_role("radio", name="Local sandbox (demo org)")).to_be_checked()
    days = by_testid(page, "stDateInput").locator("input[type=date]")  # the range's ISO values
    expect(days.first).to_have_value("2026-10-01")  # the demo invoice's month
    expect(days.last).to_have_value("2026-10-31")
    watch.check("open the Genesys page")

    button(page, "Fetch").click()
    progress = by_testid(page, "stProgress")
    expect(progress).to_be_visible()  # one job per day, reported as it goes (about 0.2 s a day)
    expect(metric(page, "Days in the store")).to_have_text("31 of 31")
    settle(page)
    expect(progress).to_have_count(0)
    values = metrics(page)
    assert number(values["Fetched now"]) + number(values["Reused from before"]) == 31, values
    legs = int(number(values["Billable legs"]))
    assert legs > 3000, values
    expect(text(page, "Reconcile uses: Genesys Cloud")).to_be_visible()
    expect(text(page, "demo data", exact=True)).to_have_count(0)
    watch.check("fetch the month from the sandbox")
    full_page_screenshot(page, artifacts, "genesys.png")
    return legs


# ---------------------------------------------------------------------------------------- Reconcile

def reconcile_page(page: Page, watch: BrowserWatch, artifacts: Path, tmp_path: Path, *, invoice_rows: int,
                   cdr_legs: int) -> str:
    """KPIs, the tolerance slider, one discrepancy explained, the Excel pack; returns the saved run id."""
    open_page(page, RECONCILE)
    expect(text(page, "CDR: Genesys Cloud")).to_be_visible()
    expect(metric(page, "Discrepancies")).to_have_text(str(sum(DEMO_DISCREPANCIES.values())))
    expect(fresh(page.locator(".js-plotly-plot"))).to_have_count(3)  # breakdown, Δt histogram, sensitivity curve
    expect(text(page, "current 10 s")).to_be_visible()  # the curve marks the current tolerance
    settle(page)
    before = metrics(page)
    assert number(before["Match rate"]) > 99, before
    assert before["Disputed amount"].startswith("$"), before
    ledger = text(page, re.compile(r"^Matched [\d,]+ \(rounding variance")).inner_text()
    watch.check("open the Reconcile page")

    tolerance_by_keyboard(page, watch, before)

    grid = fresh(page.locator('iframe[title*="st_aggrid"]')).content_frame
    rows = sum(DEMO_DISCREPANCIES.values())
    expect(grid.locator(".ag-paging-row-summary-panel")).to_have_text(re.compile(rf"1 to {rows} of {rows}"))
    explain_a_cost_variance(page, grid)
    watch.check("explain a discrepancy")
    full_page_screenshot(page, artifacts, "reconcile.png")
    group_by_category(page, rows)
    watch.check("group the results by category")

    workbook = tmp_path / "download.xlsx"
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button(page, "Excel dispute pack").click()
    assert download.value.suggested_filename == "reconciliation.xlsx"
    download.value.save_as(workbook)
    check_workbook(workbook, ledger, invoice_rows=invoice_rows, cdr_legs=cdr_legs)
    watch.check("download the Excel dispute pack")

    button(page, "Save this run to History").click()
    saved = text(page, re.compile(r"^Saved run \S+ in "))
    expect(saved).to_be_visible()
    settle(page)
    run_id = saved.inner_text().split()[2]
    watch.check("save the run")
    return run_id


def press(page: Page, slider: Locator, key: str) -> None:
    slider.focus()
    page.keyboard.press(key)


def tolerance_by_keyboard(page: Page, watch: BrowserWatch, before: dict[str, str]) -> None:
    """Move the time tolerance with the keyboard; the KPIs follow and come back with the value.

    Each change is awaited through what only the new run draws: the sensitivity curve's
    "current N s" marker (and the KPI tiles where they change).
    """
    slider = fresh(page.get_by_role("slider", name="Time tolerance (s)"))
    expect(slider).to_have_value("10")

    press(page, slider, "ArrowLeft")  # 10 -> 9.5 (one step): the demo's pairs are a few seconds apart
    expect(text(page, "current 9.5 s")).to_be_visible()
    settle(page)
    assert metrics(page) == before

    press(page, slider, "End")  # the widest window
    expect(text(page, "current 60 s")).to_be_visible()
    settle(page)
    assert number(metrics(page)["Match rate"]) >= number(before["Match rate"])

    press(page, slider, "Home")  # 0 s: the invoice's times are seconds off the CDR's, nothing pairs
    expect(metric(page, "Match rate")).not_to_have_text(before["Match rate"])
    expect(text(page, "current 0 s")).to_be_visible()
    settle(page)
    at_zero = metrics(page)
    assert number(at_zero["Match rate"]) < 1, at_zero
    assert number(at_zero["Discrepancies"]) > number(before["Discrepancies"]), at_zero
    watch.check("time tolerance 0 s")

    slider.focus()
    for _ in range(20):  # back to 10 s, one 0.5 s step at a time
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(20)
    expect(slider).to_have_value("10")
    expect(text(page, "current 10 s")).to_be_visible()
    expect(metric(page, "Match rate")).to_have_text(before["Match rate"])
    settle(page)
    assert metrics(page) == before
    watch.check("time tolerance back to 10 s")


def group_by_category(page: Page, rows: int) -> None:
    """Group the grid by category: one styled header row per category, with its count, before its rows."""
    page.get_by_text("Group by category", exact=True).click()
    settle(page)
    grid = fresh(page.locator('iframe[title*="st_aggrid"]')).content_frame
    categories = len([n for n in DEMO_DISCREPANCIES.values() if n])
    expect(grid.locator(".ag-paging-row-summary-panel")).to_have_text(
        re.compile(rf"1 to {rows + categories} of {rows + categories}"))
    headers = grid.locator(".ag-pinned-left-cols-container .recon-group-row")
    expect(headers).to_have_count(categories)
    expect(headers.first).to_contain_text(f"Cost variance ({DEMO_DISCREPANCIES['COST_VARIANCE']} rows)")
    headers.first.click()  # a header row has no record: no explanation opens
    settle(page)
    expect(text(page, "Select a row in the table to see both records")).to_be_visible()


def explain_a_cost_variance(page: Page, grid: FrameLocator) -> None:
    """Select the first cost variance in the results grid: its explanation opens below the grid."""
    cell = grid.locator('[role="gridcell"][col-id="category"]').filter(has_text="COST_VARIANCE").first
    expect(cell).to_be_visible()
    expect(text(page, "Select a row in the table to see both records")).to_be_visible()
    cell.click()
    expect(heading(page, "Why: Cost variance")).to_be_visible()
    settle(page)
    expect(text(page, "Invoice record", exact=True)).to_be_visible()
    expect(text(page, "CDR record", exact=True)).to_be_visible()
    expect(text(page, re.compile(r"Δt = [+-]\d+\.\d{3} s; the time tolerance is 10 s\."))).to_be_visible()
    # The explanation's tables: invoice record, CDR record, nearest candidates.
    expect(by_testid(page, "stDataFrame")).to_have_count(3)


# ---------------------------------------------------------------------------------------- History

def history_page(page: Page, watch: BrowserWatch, artifacts: Path, run_id: str) -> None:
    open_page(page, HISTORY)
    expect(heading(page, "Reopen a run")).to_be_visible()
    expect(metric(page, "Discrepancies")).to_have_text(str(sum(DEMO_DISCREPANCIES.values())))
    expect(fresh(page.get_by_role("combobox", name="Run", exact=True))).to_have_value(run_id)  # the run just saved
    expect(by_testid(page, "stDownloadButton")).to_have_count(6)
    expect(text(page, "Save a second run to compare.")).to_be_visible()
    settle(page)
    watch.check("open History")
    full_page_screenshot(page, artifacts, "history.png")


# ---------------------------------------------------------------------------------------- the workbook

def sections(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """The Summary sheet's sections: a title row (first cell only), then rows until a blank row."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    current: list[tuple[Any, ...]] | None = None
    for row in rows:
        cells = [c for c in row if c is not None]
        if not cells:
            current = None
        elif current is None and len(cells) == 1 and isinstance(row[0], str):
            current = found.setdefault(row[0], [])
        elif current is not None:
            current.append(row)
    return found


def check_workbook(path: Path, ledger_caption: str, *, invoice_rows: int, cdr_legs: int) -> None:
    """The dispute pack's sheets, and row counts that agree with its summary, its ledger and the page."""
    book = load_workbook(path)
    assert book.sheetnames == WORKBOOK_SHEETS
    data_rows = {ws.title: ws.max_row - 1 for ws in book.worksheets if ws.title != "Summary"}
    summary = sections(list(book["Summary"].iter_rows(values_only=True)))

    counts = {str(r[0]): r[1] for r in summary["Counts"]}
    listed = {str(r[0]): r[3] for r in summary["Sheets in this workbook"][1:]}  # after its header row
    assert listed == data_rows, (listed, data_rows)
    for sheet in WORKBOOK_SHEETS[1:]:
        assert data_rows[sheet] == counts[sheet], (sheet, data_rows[sheet], counts[sheet])
    assert {s: data_rows[s] for s in DISCREPANCY_SHEETS} == DEMO_DISCREPANCIES

    header, *sides = summary["Ledger"]
    assert header[:6] == ("Side", "Rows read", "Matched", "In discrepancies", "Excluded", "Rejected")
    ledger = {str(r[0]): dict(zip(header[1:6], r[1:6], strict=True)) for r in sides}
    for side, entry in ledger.items():
        assert entry["Rows read"] == entry["Matched"] + entry["In discrepancies"] + entry["Excluded"] + entry[
            "Rejected"], (side, entry)
        assert entry["Matched"] == data_rows["Matched"], (side, entry)
    assert ledger["invoice"]["In discrepancies"] == sum(
        data_rows[s] for s in ("COST_VARIANCE", "MISSING_IN_CDR", "DUPLICATE_CHARGE"))
    assert ledger["cdr"]["In discrepancies"] == data_rows["COST_VARIANCE"] + data_rows["MISSING_IN_INVOICE"]
    assert data_rows["Excluded"] == ledger["invoice"]["Excluded"] + ledger["cdr"]["Excluded"]
    assert data_rows["Rejected"] == ledger["invoice"]["Rejected"] + ledger["cdr"]["Rejected"]

    # The same rows as the pages showed: the Invoice page's demo rows, the Genesys fetch, the Reconcile ledger.
    assert ledger["invoice"]["Rows read"] == invoice_rows
    assert ledger["cdr"]["Rows read"] == cdr_legs
    page_numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", ledger_caption)]
    expected = [data_rows["Matched"], counts["MATCHED_ROUNDING_VARIANCE"]] + [
        ledger[side][k] for side in ("invoice", "cdr")
        for k in ("Rows read", "Matched", "In discrepancies", "Excluded", "Rejected")]
    assert page_numbers == expected, (ledger_caption, expected)

    inputs = {str(r[0]): str(r[1]) for r in summary["Inputs"][1:]}
    assert inputs["cdr"].endswith("legs.parquet"), inputs  # the fetched month, not the demo conversations
