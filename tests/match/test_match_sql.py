"""Matcher SQL run on a real in-memory DuckDB: quoting, inputs, cleanup, bucket join."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from match_rows import call, pairs

from recon_core.errors import SettingsError
from recon_core.match import MatchSettings, assign_one_to_one, build_candidates
from recon_core.match.sql import time_candidates_sql


def _objects(con) -> set[str]:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    return tables | views


def test_table_and_key_column_names_with_spaces_and_quotes_are_quoted(con, load_calls):
    trunk = 'trunk "group" 1'
    load_calls("invoice rows", [call("I-1", 0, **{trunk: "A"}), call("I-2", 10, **{trunk: "B"})])
    load_calls("cdr rows", [call("C-1", 1, **{trunk: "B"}), call("C-2", 9, **{trunk: "A"})])
    # By time alone I-1/C-1 and I-2/C-2 are closest; with the trunk in the key A pairs with A.
    assert pairs(assign_one_to_one(build_candidates(con, "invoice rows", "cdr rows"))) == {
        ("I-1", "C-1"),
        ("I-2", "C-2"),
    }
    settings = MatchSettings(key=("direction", "far_end_number", trunk))
    result = assign_one_to_one(build_candidates(con, "invoice rows", "cdr rows", settings))
    assert pairs(result) == {("I-1", "C-2"), ("I-2", "C-1")}


def test_key_part_separates_calls_that_would_otherwise_pair(con, load_calls):
    trunk = "trunk group"
    load_calls("invoice rows", [call("I-1", 0, **{trunk: "A"})])
    load_calls("cdr rows", [call("C-1", 0, **{trunk: "B"})])
    with_trunk = MatchSettings(key=("direction", "far_end_number", trunk))
    assert assign_one_to_one(build_candidates(con, "invoice rows", "cdr rows", with_trunk)).matches.empty
    assert len(assign_one_to_one(build_candidates(con, "invoice rows", "cdr rows")).matches) == 1


def test_relations_are_accepted_and_nothing_is_left_behind(con, load_calls):
    load_calls("invoice", [call("I-1", 0), call("I-zero", 5, duration_s=0)])
    load_calls("cdr", [call("C-1", 1)])
    before = _objects(con)
    invoice = con.sql("SELECT * FROM invoice WHERE duration_seconds > 0")
    candidates = build_candidates(con, invoice, con.table("cdr"))
    assert pairs(assign_one_to_one(candidates)) == {("I-1", "C-1")}
    assert len(candidates.invoice) == 1
    assert _objects(con) == before


def test_missing_columns_are_reported_for_both_sides_at_once(con):
    con.execute(
        "CREATE TABLE inv AS SELECT 'I-1' AS record_id, TIMESTAMP '2026-03-02 12:00:00' AS start_time_utc"
    )
    con.execute("CREATE TABLE cdr AS SELECT 'C-1' AS record_id, 60.0 AS duration_seconds")
    with pytest.raises(SettingsError) as error:
        build_candidates(con, "inv", "cdr")
    message = str(error.value)
    assert "'inv' has no column(s) 'duration_seconds', 'direction'" in message
    assert "'cdr' has no column(s) 'start_time_utc', 'direction'" in message


@pytest.mark.parametrize(
    "settings, message",
    [
        (MatchSettings(tolerance_s=-1), "tolerance must be 0 s or more"),
        (MatchSettings(tolerance_s=90, max_tolerance_s=60), "wider than the maximum tolerance"),
        (MatchSettings(max_tolerance_s=7200), "wider than 3600 s"),
        (MatchSettings(key=()), "key must name at least one column"),
        (MatchSettings(key=("direction", "direction")), "names a column twice"),
    ],
)
def test_invalid_settings_raise_settings_error(con, load_calls, settings, message):
    load_calls("invoice", [call("I-1", 0)])
    load_calls("cdr", [call("C-1", 0)])
    with pytest.raises(SettingsError, match=message):
        build_candidates(con, "invoice", "cdr", settings)


def test_bucket_join_finds_exactly_the_pairs_within_the_window(con):
    # Times straddle bucket edges on purpose, including exactly +-window apart and equal keys
    # far apart in time; the expected set is computed by brute force.
    rng = np.random.default_rng(4)
    window = 1000
    inv_t = np.concatenate([rng.integers(0, 20_000, 300), [0, 2001, 4002, 5000]])
    cdr_t = np.concatenate([rng.integers(0, 20_000, 300), [1000, 1001, 3002, 6000]])
    inv_k = rng.integers(0, 3, len(inv_t))
    cdr_k = rng.integers(0, 3, len(cdr_t))
    for name, t, k in (("inv_rows", inv_t, inv_k), ("cdr_rows", cdr_t, cdr_k)):
        con.execute(
            f"CREATE TABLE {name} AS SELECT unnest($idx) AS idx, unnest($key) AS key_hash, true AS has_key, "
            "unnest($t) AS start_ms, unnest($t) AS alt_start_ms, false AS has_alt",
            {"idx": list(range(len(t))), "key": k.tolist(), "t": t.tolist()},
        )
    got = con.execute(
        time_candidates_sql("inv_rows", "cdr_rows"),
        {"window_ms": window, "bucket_ms": 2 * window + 1, "origin_ms": 0},
    ).fetchall()
    found = {(i, c, d) for i, c, _, _, d in got}
    expected = {
        (i, c, int(inv_t[i] - cdr_t[c]))
        for i in range(len(inv_t))
        for c in range(len(cdr_t))
        if inv_k[i] == cdr_k[c] and abs(int(inv_t[i]) - int(cdr_t[c])) <= window
    }
    assert found == expected
    assert len(got) == len(found)  # no pair twice


def test_rows_without_identifiers_never_match_each_other_by_identifier(run_match):
    _, result = run_match(
        [call("I-1", 0, far_end="+19990000001", sip_call_id=None, call_id="")],
        [call("C-1", 0, far_end="+19990000002", sip_call_id=None, call_id="")],
    )
    assert result.matches.empty


def test_the_engine_does_not_import_streamlit():
    code = "import sys, recon_core.match; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_one_scan_returns_the_reported_columns_aligned_with_the_matcher_positions(con, load_calls) -> None:
    """build_candidates_with_rows: the rows it hands back (scan order) line up with the matcher's
    positions through scan_row, and the candidates are those build_candidates makes."""
    from recon_core.match import build_candidates_with_rows

    load_calls("inv", [call("I-3", 10.0, call_id="x"), call("I-1", 0.0), call("I-2", 40.0, duration_s=7.5)])
    load_calls("cdr", [call("C-9", 41.0), call("C-1", 1.0, far_end=None), call("C-5", 9.0)])
    columns = ("record_id", "call_id", "duration_seconds", "destination_number")
    candidates, inv_rows, cdr_rows = build_candidates_with_rows(con, "inv", "cdr", MatchSettings(), columns=columns)
    assert inv_rows.column_names == list(columns) and cdr_rows.num_rows == 3
    for rows, side in ((inv_rows, candidates.invoice), (cdr_rows, candidates.cdr)):
        ids = rows.column("record_id").take(side.scan_row).to_pylist()
        assert ids == list(side.record_id) == sorted(ids)
    by_id = {r["record_id"]: r for r in inv_rows.to_pylist()}
    assert by_id["I-3"]["call_id"] == "x" and float(by_id["I-2"]["duration_seconds"]) == 7.5
    assert {r["record_id"]: r["destination_number"] for r in cdr_rows.to_pylist()}["C-1"] is None
    plain = build_candidates(con, "inv", "cdr", MatchSettings())
    assert pairs(assign_one_to_one(candidates)) == pairs(assign_one_to_one(plain)) == {("I-2", "C-9"), ("I-3", "C-5")}
