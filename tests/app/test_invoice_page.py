"""AppTest: the Invoice page — demo invoice, carrier detection, mapping an unknown file, saving a profile."""

from __future__ import annotations

import uuid

from app_helpers import ROOT, UNKNOWN_CARRIER_CSV, metrics, new_app, on_page, shows_demo_badge, table_with, texts

from recon_core.analyst.invoice_mapping import NOT_MAPPED
from recon_core.profiles import MAPPINGS_DIR, load_profile

GENERIC_SAMPLE = ROOT / "recon_core" / "demo_data" / "demo_invoice_generic.csv"
TWILIO_CSV = ROOT / "tests" / "fixtures" / "carriers" / "twilio" / "twilio_calls_generated.csv"
NO_EDITS = {"added_rows": [], "deleted_rows": []}


def counts(at) -> tuple[int, int, int]:  # noqa: ANN001 - AppTest
    values = metrics(at)
    return tuple(int(values[k].replace(",", "")) for k in ("Rows read", "Normalized", "Rejected"))  # type: ignore[return-value]


def test_app_opens_on_demo_invoice_with_badge_detection_and_counts() -> None:
    at = new_app().run()
    assert not at.exception
    read, normalized, rejected = counts(at)
    assert read == normalized + rejected
    assert read > 3000 and rejected == 1
    assert shows_demo_badge(at)
    assert any("twilio: 9 of 9 mapped columns found" in s for s in texts(at.success))
    assert at.selectbox(key="invoice_profile").value == "twilio"


def test_unreadable_upload_shows_message_not_traceback() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[("garbage.csv", b"\x00\x01\x02binary\x00" * 50)])
    assert any("binary" in e for e in texts(at.error))
    assert not at.metric


def test_upload_of_a_known_carrier_is_detected_and_counted() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[(GENERIC_SAMPLE.name, GENERIC_SAMPLE.read_bytes())])
    assert not shows_demo_badge(at)
    assert any("generic: 8 of 8 mapped columns found" in s for s in texts(at.success))
    read, normalized, rejected = counts(at)
    assert read == normalized + rejected and rejected >= 1
    rejects = table_with(at, "reason", last=True)
    assert {"source_line", "reason"} <= set(rejects.columns) and rejects["reason"].str.len().min() > 0


def test_unknown_columns_open_the_mapping_and_list_its_problems() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])
    assert at.selectbox(key="invoice_profile").value == "Custom mapping…"
    assert any("No shipped profile fits" in w for w in texts(at.warning))
    table = at.data_editor(key="mapping_editor").value
    guessed = dict(zip(table["canonical field"], table["source column"], strict=True))
    assert guessed["start_time"] == "When" and guessed["duration"] == "Secs"
    assert guessed["direction"] == NOT_MAPPED
    assert any("problem" in e for e in texts(at.error))
    assert any("columns.direction" in m for m in texts(at.markdown))
    assert not at.metric  # the whole file is read only once the mapping is valid


def edit_sources(at, sources: dict[str, str]) -> None:  # noqa: ANN001 - AppTest
    """Seed the mapping editor's edit state: canonical field -> the source column picked for it."""
    fields = list(at.data_editor(key="mapping_editor").value["canonical field"])
    at.session_state["mapping_editor"] = {
        "edited_rows": {fields.index(f): {"source column": s} for f, s in sources.items()}, **NO_EDITS}
    at.run()


def test_editing_the_mapping_changes_the_preview_and_the_problems() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])

    # Way holds the direction: the mapping becomes valid and the rows are read.
    edit_sources(at, {"direction": "Way"})
    assert not at.exception and not at.error
    assert counts(at) == (3, 2, 1)
    editor = at.data_editor(key="mapping_editor").value.set_index("canonical field")
    assert editor.loc["direction", "first value"] == "In"  # the picked column's first value, beside it
    directions = at.data_editor(key="direction_editor").value
    assert dict(zip(directions["carrier value"], directions["means"], strict=True)) == {
        "In": "inbound", "Out": "outbound"}
    preview = table_with(at, "direction")
    assert list(preview["direction"]) == ["inbound", "outbound"]
    assert table_with(at, "reason", last=True)["source_line"].tolist() == [4]

    # The direction and the duration both taken away: both problems are listed together.
    edit_sources(at, {"direction": NOT_MAPPED, "duration": NOT_MAPPED})
    assert not at.exception
    problems = "\n".join(texts(at.markdown))
    assert "map 'duration'" in problems and "columns.direction" in problems
    assert not at.metric


def test_one_column_can_feed_several_fields() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])
    edit_sources(at, {"direction": "Way", "call_id": "Ref"})  # Ref is already the record id
    assert not at.exception and not at.error
    preview = table_with(at, "call_id")
    assert list(preview["call_id"]) == ["A1", "A2"] and list(preview["record_id"]) == ["A1", "A2"]


def test_a_custom_mapping_from_the_twilio_profile_keeps_call_id_when_saved() -> None:
    name = f"apptest_{uuid.uuid4().hex[:8]}"
    path = MAPPINGS_DIR / f"{name}.yaml"
    try:
        at = on_page("pages/invoice.py", invoice_uploads=[(TWILIO_CSV.name, TWILIO_CSV.read_bytes())])
        assert at.selectbox(key="invoice_profile").value == "twilio"
        at.selectbox(key="invoice_profile").set_value("Custom mapping…").run()
        editor = at.data_editor(key="mapping_editor").value.set_index("canonical field")
        assert editor.loc["record_id", "source column"] == "sid" and editor.loc["call_id", "source column"] == "sid"
        # The analyst's edit: the carrier's end time is not needed (Twilio gives the duration).
        edit_sources(at, {"end_time": NOT_MAPPED})
        assert not at.exception and not at.error
        at.text_input[-1].input(name)
        at.button[-1].click().run()
        assert not at.exception
        saved = load_profile(path)
        assert saved.columns["call_id"] == "sid" and saved.columns["record_id"] == "sid"
        assert "end_time" not in saved.columns
        assert at.selectbox(key="invoice_profile").value == name
        read, normalized, rejected = counts(at)  # the whole file read with the saved profile
        assert read == 10 == normalized + rejected
    finally:
        path.unlink(missing_ok=True)


def test_saving_a_mapping_never_overwrites_a_shipped_profile() -> None:
    shipped = (MAPPINGS_DIR / "twilio.yaml").read_bytes()
    at = on_page("pages/invoice.py", invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])
    edit_sources(at, {"direction": "Way"})
    at.text_input[-1].input("twilio")
    at.button[-1].click().run()
    assert not at.exception
    assert any("already exists" in m for m in texts(at.markdown))
    assert (MAPPINGS_DIR / "twilio.yaml").read_bytes() == shipped


def test_saving_a_mapping_as_a_new_profile_selects_it() -> None:
    name = f"apptest_{uuid.uuid4().hex[:8]}"
    path = MAPPINGS_DIR / f"{name}.yaml"
    try:
        at = on_page("pages/invoice.py", invoice_uploads=[("calls.csv", UNKNOWN_CARRIER_CSV)])
        edit_sources(at, {"direction": "Way"})
        at.text_input[-1].input(name)
        at.button[-1].click().run()
        assert not at.exception
        assert path.exists() and load_profile(path).columns["direction"] == "Way"
        assert at.selectbox(key="invoice_profile").value == name
        assert any(name in s for s in texts(at.success))
        assert counts(at) == (3, 2, 1)
    finally:
        path.unlink(missing_ok=True)


def test_uploaded_invoice_survives_switching_pages() -> None:
    at = on_page("pages/invoice.py", invoice_uploads=[(GENERIC_SAMPLE.name, GENERIC_SAMPLE.read_bytes())])
    before = counts(at)
    at.switch_page("pages/history.py").run()
    at.switch_page("pages/invoice.py").run()
    assert not at.exception
    assert counts(at) == before
    assert any(GENERIC_SAMPLE.name in c for c in texts(at.caption))
    assert at.selectbox(key="invoice_profile").value == "generic"
