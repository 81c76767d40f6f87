"""``reconcile --store``, ``runs list|show|export|diff`` and ``verify`` from the command line."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from recon_core.cli import main
from recon_core.reports.reconciliation import REPORT_FILES

RATES = ["--rate", "inbound=0.0220,outbound=0.0140", "--increment", "1/1"]


def _reconcile(invoice: Path, cdr: Path, out: Path, store: Path) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["reconcile", "--invoice", str(invoice), "--carrier", "twilio", "--cdr", str(cdr),
                     "--out", str(out), *RATES, "--store", str(store), "--quiet"])
    text = buffer.getvalue()
    assert code == 0, text
    found = re.search(r"recorded run (\S+) in", text)
    assert found, text
    return found.group(1)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, case, reissue) -> tuple[Path, str, str]:  # type: ignore[no-untyped-def]
    """The original invoice and the carrier's re-issued one, each reconciled and recorded in one store."""
    folder = tmp_path_factory.mktemp("two_runs")
    store = folder / "recon.duckdb"
    first = _reconcile(case.invoice, case.conversations, folder / "out_a", store)
    second = _reconcile(reissue.invoice, case.conversations, folder / "out_b", store)
    return store, first, second


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_runs_list_and_show_name_the_inputs_and_their_hashes(two_runs, case, capsys) -> None:  # type: ignore[no-untyped-def]
    store, first, second = two_runs
    code, text = _run(["runs", "list", "--store", str(store)], capsys)
    assert code == 0
    assert text.index(second) < text.index(first)  # newest first
    assert case.invoice.name in text and "reissued" in text
    code, text = _run(["runs", "show", first, "--store", str(store)], capsys)
    assert code == 0
    assert f"input invoice: {case.invoice.name}  sha256 " in text
    assert re.search(r"sha256 [0-9a-f]{64}", text)
    assert "counts: matched" in text and "ledger invoice: read" in text


def test_runs_export_regenerates_the_files_reconcile_wrote_byte_for_byte(two_runs, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store, first, _ = two_runs
    code, text = _run(["runs", "export", first, "--out", str(tmp_path / "export"), "--store", str(store)], capsys)
    assert code == 0, text
    for name in REPORT_FILES:
        assert (tmp_path / "export" / name).read_bytes() == (store.parent / "out_a" / name).read_bytes(), name


def test_runs_diff_lists_the_calls_the_reissued_invoice_moved(two_runs, reissue, capsys) -> None:  # type: ignore[no-untyped-def]
    store, first, second = two_runs
    code, text = _run(["runs", "diff", first, second, "--store", str(store)], capsys)
    assert code == 0
    assert "identified by invoice record id" in text
    assert f"invoice {reissue.corrected}: COST_VARIANCE -> MATCHED" in text
    assert f"invoice {reissue.removed}: MISSING_IN_CDR -> (absent)" in text
    assert "3 calls changed bucket" in text


def test_verify_confirms_the_same_result_from_the_same_files(two_runs, case, capsys) -> None:  # type: ignore[no-untyped-def]
    store, first, _ = two_runs
    code, text = _run(["verify", first, "--invoice", str(case.invoice), "--cdr", str(case.conversations),
                       "--store", str(store), "--quiet"], capsys)
    assert code == 0, text
    assert "same result" in text


def test_verify_with_another_invoice_exits_1_and_lists_the_differences(two_runs, case, reissue, capsys) -> None:  # type: ignore[no-untyped-def]
    store, first, _ = two_runs
    code, text = _run(["verify", first, "--invoice", str(reissue.invoice), "--cdr", str(case.conversations),
                       "--store", str(store), "--quiet"], capsys)
    assert code == 1
    assert "DIFFERENT result" in text
    assert "which the run did not read" in text  # the SHA-256 check
    assert f"invoice {reissue.corrected}: recorded COST_VARIANCE, now MATCHED" in text


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "show", "20990101T000000Z-nothere000"], "no run"),
    (["runs", "list"], "does not exist yet"),
])
def test_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str], message: str, two_runs, capsys) -> None:  # type: ignore[no-untyped-def]
    store = two_runs[0] if args[1] == "show" else tmp_path / "missing.duckdb"
    code, text = _run([*args, "--store", str(store)], capsys)
    assert code == 2
    assert message in text and "Traceback" not in text
