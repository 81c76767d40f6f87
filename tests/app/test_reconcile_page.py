"""AppTest: the Reconcile page — demo KPIs and charts, live settings, errors as messages, saving a run."""

from __future__ import annotations

import json

import pytest
from app_helpers import UNKNOWN_CARRIER_CSV, metrics, on_page, shows_demo_badge, texts

from pages.ui import PREPARE_SETTINGS, PreparedEntry
from recon_core.demo import DemoFiles
from recon_core.profiles import load_carrier_profile
from recon_core.reconcile import reconcile

RECONCILE = "pages/reconcile.py"


def test_reconcile_opens_on_demo_data_with_badge_kpis_charts_and_downloads() -> None:
    at = on_page(RECONCILE)
    assert shows_demo_badge(at)
    values = metrics(at)
    # The demo invoice's injected faults: 5 cost variances, 3 missing in CDR, 4 missing in invoice, 2 duplicates.
    assert values["Discrepancies"] == "14"
    assert values["Disputed amount"].startswith("$")
    assert float(values["Match rate"].rstrip(" %")) > 99
    assert len(at.get("plotly_chart")) == 3  # breakdown, Δt histogram, sensitivity curve
    labels = {b.label for b in at.download_button}
    assert {"Excel dispute pack", "Discrepancies.csv", "MatchedCalls.csv", "summary.json"} <= labels


def test_moving_the_time_tolerance_from_10_to_0_changes_the_kpis() -> None:
    at = on_page(RECONCILE)
    assert at.slider(key="rc_tolerance").value == 10.0
    before = metrics(at)
    at.slider(key="rc_tolerance").set_value(0.0).run()
    assert not at.exception
    after = metrics(at)
    assert after["Match rate"] != before["Match rate"]
    assert int(after["Discrepancies"].replace(",", "")) > int(before["Discrepancies"].replace(",", ""))
    assert float(after["Match rate"].rstrip(" %")) < 1  # invoice times are seconds off the CDR's


def test_grouping_by_category_keeps_the_page_working_and_survives_a_rerun() -> None:
    at = on_page(RECONCILE)
    before = metrics(at)
    at.toggle(key="rc_group_by_category").set_value(True).run()
    assert not at.exception
    assert at.toggle(key="rc_group_by_category").value is True
    at.slider(key="rc_tolerance").set_value(5.0).run()  # a new result, still grouped
    assert not at.exception and at.toggle(key="rc_group_by_category").value is True
    assert metrics(at)["Discrepancies"] != "" and before["Discrepancies"] == "14"


def test_cost_tolerance_and_rates_change_the_money() -> None:
    at = on_page(RECONCILE)
    before = metrics(at)
    at.text_input(key="rc_inbound").input("0.0300").run()
    assert not at.exception
    after = metrics(at)
    assert after["Under-billed"] != before["Under-billed"]  # the invoice now charges less than expected


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("rc_inbound", "abc", "inbound_rate_per_minute"),
    ("rc_increment", "60/0", "increment"),
])
def test_invalid_settings_show_a_message_not_an_exception(key: str, value: str, expected: str) -> None:
    at = on_page(RECONCILE)
    at.text_input(key=key).input(value).run()
    assert not at.exception
    assert any(expected in e for e in texts(at.error))
    assert not at.metric


def test_an_invalid_custom_mapping_is_reported_on_reconcile() -> None:
    at = on_page(RECONCILE, invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])
    assert any("map the invoice's columns" in m for m in texts(at.markdown))
    assert not at.metric


def test_a_saved_run_is_listed_in_history_and_two_runs_compare() -> None:
    at = on_page(RECONCILE)
    at.button(key="rc_save").click().run()
    assert any("Saved run" in s for s in texts(at.success))
    at.slider(key="rc_tolerance").set_value(0.0).run()
    at.button(key="rc_save").click().run()
    assert not at.exception

    at.switch_page("pages/history.py").run()
    assert not at.exception
    runs = at.dataframe[0].value
    assert len(runs) == 2 and runs["this session"].all()
    comparison = next(d.value for d in at.dataframe if "measure" in d.value.columns)
    matched = comparison.set_index("measure").loc["matched"]
    assert matched["run A"] != matched["run B"]
    assert {"Excel dispute pack", "summary.json"} <= {b.label for b in at.download_button}


def test_settings_survive_switching_pages() -> None:
    at = on_page(RECONCILE)
    at.slider(key="rc_tolerance").set_value(3.0).run()
    at.text_input(key="rc_outbound").input("0.0150").run()
    at.switch_page("pages/invoice.py").run()
    at.switch_page(RECONCILE).run()
    assert not at.exception
    assert at.slider(key="rc_tolerance").value == 3.0
    assert at.text_input(key="rc_outbound").value == "0.0150"


def test_a_rate_deck_replaces_the_flat_rates() -> None:
    deck = b"prefix,direction,rate_per_minute\n1,inbound,0.0220\n1,outbound,0.0140\n"
    at = on_page(RECONCILE, rc_rate_deck_upload=("deck.csv", deck))
    flat = metrics(at)
    at.radio(key="rc_rate_mode").set_value("Rate deck (CSV)").run()
    assert not at.exception and not at.error
    assert any("deck.csv" in c for c in texts(at.caption))
    assert metrics(at) == flat  # the same prices as the demo's flat rates

    bad = b"prefix,direction,rate_per_minute\n1,inbound,cheap\n"
    at.session_state["rc_rate_deck_upload"] = ("bad.csv", bad)
    at.run()
    assert not at.exception
    assert any("bad.csv" in e for e in texts(at.error))


def test_report_files_are_written_from_the_result_shown(demo: DemoFiles) -> None:
    run, _ = reconcile([demo.invoice], [demo.conversations], load_carrier_profile(demo.profile), PREPARE_SETTINGS)
    entry = PreparedEntry("test", run)
    key, result = entry.classified(5.0, demo.rating())
    assert entry.classified(5.0, demo.rating()) == (key, result)  # remembered, not classified again
    files = entry.report_files(key, result)
    assert set(files) == {"MatchedCalls.csv", "Discrepancies.csv", "ExcludedRows.csv", "RejectedRows.csv",
                          "summary.json", "reconciliation.xlsx"}
    lines = files["Discrepancies.csv"].read_text(encoding="utf-8").strip().splitlines()
    assert len(lines) - 1 == len(result.discrepancies)
    summary = json.loads(files["summary.json"].read_text(encoding="utf-8"))
    assert summary["settings"]["time_tolerance_s"] == 5.0 and summary["counts"] == result.summary["counts"]
    assert summary["run_id"] and summary["created_utc"]
    assert result.summary["run_id"] is None  # the result on screen is not changed by writing it
    run.con.close()
