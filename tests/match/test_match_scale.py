"""At benchmark scale: never fewer pairs than merge_asof manages one-to-one (slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from recon_core.match import MatchSettings, assign_one_to_one, build_candidates
from recon_core.sql import connect

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_match.py"


@pytest.mark.slow
def test_matcher_finds_at_least_as_many_one_to_one_pairs_as_merge_asof():
    spec = importlib.util.spec_from_file_location("bench_match", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    invoice, cdr = bench.generate(100_000, days=3, seed=3)
    con = connect()
    bench.load(con, "invoice", invoice)
    bench.load(con, "cdr", cdr)
    result = assign_one_to_one(build_candidates(con, "invoice", "cdr", MatchSettings()))
    _, asof_one_to_one = bench.merge_asof_baseline(invoice, cdr, 10.0)
    assert len(result.matches) >= asof_one_to_one
    assert result.matches["cdr_record_id"].is_unique
    assert len(result.matches) + len(result.unmatched_invoice) == len(invoice)


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_match", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_sql_generated_benchmark_data_has_the_documented_shape():
    """The benchmark's DuckDB generator: N rows a side, unique ids, 2 % of rows on one side only,
    20 % of invoice rows with the SIP Call-ID, a few DST-flagged rows, and the matcher still
    pairs at least as many rows one-to-one as merge_asof."""
    bench = _bench_module()
    con = connect()
    rows = 20_000
    bench.generate_sql(con, rows, days=3, seed=5, invoice_table="invoice", cdr_table="cdr")
    for table in ("invoice", "cdr"):
        n, ids, lines, first, last = con.execute(
            f"SELECT count(*), count(DISTINCT record_id), count(DISTINCT source_line), min(source_line), "
            f"max(source_line) FROM {table}").fetchone()
        assert (n, ids, lines, first, last) == (rows, rows, rows, 2, rows + 1)
    shared = con.execute("SELECT count(*) FROM invoice i JOIN cdr c "
                         "ON substr(i.call_id, 5) = substr(c.call_id, 6)").fetchone()[0]
    assert shared == int(rows * 0.98)
    sip, dst, outbound = con.execute("SELECT count(sip_call_id), count(start_time_alt_utc), "
                                     "avg(CAST(direction = 'outbound' AS INTEGER)) FROM invoice").fetchone()
    assert 0.17 * rows < sip < 0.23 * rows
    assert dst < 0.005 * rows
    assert 0.5 < outbound < 0.6
    # Same inputs, same data (the generator is deterministic in the seed).
    again = connect()
    bench.generate_sql(again, rows, days=3, seed=5, invoice_table="invoice", cdr_table="cdr")
    query = "SELECT record_id, start_time_utc, source_number, duration_seconds FROM invoice ORDER BY record_id"
    assert con.execute(query).fetchall() == again.execute(query).fetchall()
    result = assign_one_to_one(build_candidates(con, "invoice", "cdr", MatchSettings()))
    _, asof_one_to_one = bench.merge_asof_baseline(bench.asof_frame_sql(con, "invoice"),
                                                   bench.asof_frame_sql(con, "cdr"), 10.0)
    assert len(result.matches) >= asof_one_to_one > 0.9 * rows
