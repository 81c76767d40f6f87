"""The invoice mapping helpers: carrier detection, the first guess, and a form's problems listed at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recon_core.analyst.invoice_mapping import (
    NOT_MAPPED,
    MappingForm,
    build_profile,
    form_from_profile,
    guess_direction,
    guess_mapping,
    mapping_from_table,
    mapping_table,
    rank_profiles,
    sample_of,
)
from recon_core.errors import ProfileError
from recon_core.profiles import load_carrier_profile, load_profile, shipped_profile_paths
from recon_core.schema import MAPPABLE_FIELDS

TWILIO_HEADER = ("sid", "parent_call_sid", "date_created", "start_time", "end_time", "direction", "from", "to",
                 "status", "duration", "price", "price_unit")


@pytest.mark.parametrize(("columns", "best", "described", "fits"), [
    (TWILIO_HEADER, "twilio", "twilio: 9 of 9 mapped columns found", True),
    (tuple(c.upper() for c in TWILIO_HEADER), "twilio", "twilio: 9 of 9 mapped columns found", True),
    (("Record ID", "Call Date", "Direction", "Calling Number", "Called Number", "Duration", "Rate", "Cost"),
     "generic", "generic: 8 of 8 mapped columns found", True),
    (("sid", "start_time", "from", "to", "something"), "twilio", "twilio: 4 of 9 mapped columns found", False),
])
def test_rank_profiles_names_the_best_fit_and_how_sure(columns: tuple[str, ...], best: str, described: str,
                                                       fits: bool) -> None:
    profiles = [load_profile(p) for p in shipped_profile_paths()]
    ranked = rank_profiles(columns, profiles)
    assert ranked[0].name == best
    assert ranked[0].describe() == described
    assert ranked[0].fits is fits


def test_guess_mapping_starts_from_a_profile_then_from_header_names() -> None:
    columns = ["sid", "When", "Secs", "Charge", "Way"]
    guess = guess_mapping(columns, load_carrier_profile("twilio"))
    # Twilio's sid feeds both the record id and the call id; the rest is guessed from the names.
    assert guess == {"record_id": "sid", "call_id": "sid", "start_time": "When", "duration": "Secs", "cost": "Charge"}


def test_a_twilio_file_keeps_every_field_of_the_twilio_profile() -> None:
    twilio = load_carrier_profile("twilio")
    form = form_from_profile(twilio, TWILIO_HEADER)
    assert form.columns == {f: s for f, s in twilio.columns.items()}
    assert build_profile(form).columns == twilio.columns


def test_guess_mapping_without_a_profile_uses_each_column_once() -> None:
    guess = guess_mapping(["Ref", "Date", "Time", "Type", "From", "To", "Secs", "Cost", "Rate"])
    assert guess == {"record_id": "Ref", "start_date": "Date", "start_time_of_day": "Time", "direction": "Type",
                     "source_number": "From", "destination_number": "To", "duration": "Secs", "cost": "Cost",
                     "rate": "Rate"}


@pytest.mark.parametrize(("value", "expected"), [
    ("In", "inbound"), ("inbound", "inbound"), ("Out", "outbound"), ("outbound-api", "outbound"), ("x", ""),
])
def test_guess_direction(value: str, expected: str) -> None:
    assert guess_direction(value) == expected


def test_mapping_table_has_one_row_per_field_and_round_trips() -> None:
    mapping = {"record_id": "A", "call_id": "A", "cost": "C"}
    table = mapping_table(mapping, pd.DataFrame({"A": ["1"], "B": ["x"], "C": ["0.5"]}))
    assert table["canonical field"].tolist() == list(MAPPABLE_FIELDS)
    rows = table.set_index("canonical field")
    assert rows.loc["record_id", "source column"] == "A" and rows.loc["call_id", "source column"] == "A"
    assert rows.loc["call_id", "first value"] == "1" and rows.loc["cost", "first value"] == "0.5"
    assert rows.loc["duration", "source column"] == NOT_MAPPED and rows.loc["duration", "first value"] == ""
    assert rows.loc["sip_call_id", "what it holds"] == "SIP Call-ID"
    assert mapping_from_table(table) == mapping


def test_build_profile_lists_every_problem_at_once() -> None:
    form = MappingForm(columns={"start_time": "When", "cost": "Charge", "duration": "Sekunden", "rate": ""},
                       timezone="Mars/Olympus", billing_increment="60/0")
    with pytest.raises(ProfileError) as raised:
        build_profile(form, file_columns=["When", "Secs", "Charge"])
    problems = "\n".join(raised.value.problems)
    for expected in ("'duration' is mapped from column 'Sekunden', which the file does not have", "source_number",
                     "Mars/Olympus", "60/0", "default_direction"):
        assert expected in problems


def test_build_profile_of_a_complete_form() -> None:
    form = MappingForm(columns={"start_time": "When", "duration": "Secs", "source_number": "From", "direction": "Way"},
                       direction_values={"In": "inbound", "Out": "outbound", "?": ""}, timezone="Europe/Paris")
    profile = build_profile(form)
    assert profile.columns == {"start_time": "When", "duration": "Secs", "source_number": "From", "direction": "Way"}
    assert profile.direction_values == {"in": "inbound", "out": "outbound"}
    assert profile.timezone == "Europe/Paris"


@pytest.mark.parametrize(("name", "data", "lines", "head", "expected"), [
    ("a.csv", b"h\n1\n2\n3\n", 2, 1000, b"h\n1\n2\n"),
    ("a.csv", b"h\n1\n", 5, 1000, b"h\n1\n"),
    ("a.csv", b"h\n1\n2", 5, 1000, b"h\n1\n2"),
    ("a.csv", b"h\n111\n222\n333\n", 5, 8, b"h\n111\n"),  # the read cut 222 off: left out
    ("a.json", b'{"calls": [1, 2, 3]}', 1, 4, b'{"calls": [1, 2, 3]}'),
    ("a.csv.gz", b"\x1f\x8b\n\n\n", 1, 2, b"\x1f\x8b\n\n\n"),
])
def test_sample_of_keeps_the_header_and_first_whole_records(tmp_path: Path, name: str, data: bytes, lines: int,
                                                            head: int, expected: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert sample_of(path, lines, head) == expected
