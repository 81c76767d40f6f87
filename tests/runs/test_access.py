"""Readers beside a writer in another process: readers wait for short writes, never see half a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recon_core.errors import StoreBusyError
from recon_core.runs.access import open_store_waiting
from recon_core.runs.records import STATUS_COMPLETE, list_runs, load_result
from recon_core.store import open_store

ROOT = Path(__file__).resolve().parents[2]

HOLDING_WRITER = textwrap.dedent("""
    import sys, time
    from recon_core.store import open_store
    from recon_core.runs.records import RunInput, begin_run
    with open_store(sys.argv[1]) as store:
        begin_run(store, "20261101T000000Z-held000000", kind="pipeline", settings={},
                  inputs=[RunInput("invoice", "a.csv", "0" * 64)])
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
""")


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line in ("locked", "reading"), (line, proc.stderr.read() if proc.stderr else "")
    return proc


def test_a_reader_waits_for_a_writer_in_another_process_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    open_store(path).close()
    writer = _start(HOLDING_WRITER, str(path), "1.5")
    try:
        started = time.monotonic()
        with open_store_waiting(path, read_only=True, timeout_s=20) as store:
            waited = time.monotonic() - started
            runs = list_runs(store)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0
    assert waited >= 0.5, "the reader should have found the file locked"
    assert [r.run_id for r in runs] == ["20261101T000000Z-held000000"]


def test_a_reader_gives_up_with_a_clear_busy_message(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    open_store(path).close()
    writer = _start(HOLDING_WRITER, str(path), "2")
    try:
        with pytest.raises(StoreBusyError, match="busy: another program"):
            open_store_waiting(path, read_only=True, timeout_s=0.3)
    finally:
        writer.wait(timeout=30)


def test_a_writer_waits_for_a_reader_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    open_store(path).close()
    reader = _start(textwrap.dedent("""
        import sys, time
        from recon_core.runs.access import open_store_waiting
        with open_store_waiting(sys.argv[1], read_only=True):
            print("reading", flush=True)
            time.sleep(1.0)
    """), str(path))
    try:
        started = time.monotonic()
        with open_store_waiting(path, timeout_s=20) as store:
            assert not store.read_only
        assert time.monotonic() - started >= 0.3
    finally:
        reader.wait(timeout=30)


RECORDING_WRITER = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime, timedelta
    from recon_core.profiles import load_carrier_profile
    from recon_core.rating import rating_settings_from_dict
    from recon_core.reconcile import ReconcileSettings, reconcile
    from recon_core.runs.access import store_session
    from recon_core.runs.history import stamped
    from recon_core.runs.records import record_result
    import json
    manifest = json.loads(open(sys.argv[3] + ".manifest.json").read())
    settings = ReconcileSettings(rating=rating_settings_from_dict(manifest["rating_settings"]))
    _, result = reconcile([sys.argv[3]], [sys.argv[4]], load_carrier_profile("twilio"), settings)
    print("reading", flush=True)
    for i in range(int(sys.argv[2])):
        time.sleep(0.3)  # the work between two records (a real run reconciles there)
        run = stamped(result, datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i))
        with store_session(sys.argv[1]) as store:
            record_result(store, run)
""")


@pytest.mark.slow
def test_the_app_reading_while_runs_are_recorded_never_fails_or_sees_half_a_run(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "recon.duckdb"
    open_store(path).close()
    runs_written = 8
    writer = _start(RECORDING_WRITER, str(path), str(runs_written), str(case.invoice), str(case.conversations))
    seen: list[int] = []
    try:
        while writer.poll() is None or not seen or seen[-1] < runs_written:
            with open_store_waiting(path, read_only=True, timeout_s=30) as store:
                runs = list_runs(store, status=STATUS_COMPLETE)
                for run in runs[:1]:  # every complete run is whole: its rows load
                    loaded = load_result(store, run.run_id)
                    assert len(loaded.matched) == run.summary["counts"]["matched"]
            seen.append(len(runs))
            if writer.poll() is not None and seen[-1] == runs_written:
                break
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert seen == sorted(seen) and seen[-1] == runs_written
    assert len(seen) > 2, "the reader should have read while the writer was recording"
