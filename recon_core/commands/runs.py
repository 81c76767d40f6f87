"""``python -m recon_core runs list|show|export|diff``: the run store's audit trail."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recon_core.errors import StoreError
from recon_core.store import default_store_path

DIFF_LINES_SHOWN = 50


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, help=f"run store file (default {default_store_path()})")


def _reading(args: argparse.Namespace) -> Any:
    from recon_core.runs.access import store_session

    path = args.store or default_store_path()
    if not Path(path).exists():
        raise StoreError(f"store {path} does not exist yet: record a run first (reconcile --store, or run)")
    return store_session(path, read_only=True)


def cmd_list(args: argparse.Namespace) -> int:
    from recon_core.runs.records import list_runs

    with _reading(args) as store:
        runs = list_runs(store, status=args.status, period=args.period, carrier=args.carrier)
    if args.json:
        print(json.dumps([r.to_dict() | {"summary": None} for r in runs], indent=1, default=str))
        return 0
    if not runs:
        print("no runs recorded")
        return 0
    print(f"{'run id':<28} {'kind':<9} {'status':<8} {'period':<10} {'carrier':<10} {'matched':>8} "
          f"{'discrep.':>8} {'rate %':>7} {'disputed':>14}  invoice")
    for r in runs:
        s = r.summary or {}
        counts, money, rates = s.get("counts", {}), s.get("money", {}), s.get("rates", {})
        invoice = ", ".join(i.file_name for i in r.inputs if i.side == "invoice")
        disputed = f"{money.get('disputed_amount', '')} {money.get('currency', '')}".strip()
        print(f"{r.run_id:<28} {r.kind:<9} {r.status:<8} {r.period or '':<10} {r.carrier or '':<10} "
              f"{counts.get('matched', ''):>8} {_discrepancies(s):>8} {rates.get('discrepancy_rate_pct', ''):>7} "
              f"{disputed:>14}  {invoice}")
    return 0


def _discrepancies(summary: dict[str, Any]) -> str:
    from recon_core.reconcile import DISCREPANCY_CATEGORIES

    counts = summary.get("counts")
    return "" if not counts else str(sum(int(counts.get(c, 0)) for c in DISCREPANCY_CATEGORIES))


def cmd_show(args: argparse.Namespace) -> int:
    from recon_core.runs.records import get_run
    from recon_core.sql import execute

    with _reading(args) as store:
        record = get_run(store, args.run_id)
        alerts = execute(store.con, "SELECT alert_key, sent, created_at FROM run_alerts WHERE run_id = ? "
                                    "ORDER BY created_at", [record.run_id]).fetchall()
        boundary = execute(store.con, "SELECT side, record_id, start_utc, status, outcome FROM run_boundary_calls "
                                      "WHERE run_id = ? ORDER BY start_utc", [record.run_id]).fetchall()
    if args.json:
        data = record.to_dict()
        data["alerts"] = [{"alert_key": k, "sent": s, "created_at": str(t)} for k, s, t in alerts]
        print(json.dumps(data, indent=1, default=str))
        return 0
    print(f"run {record.run_id}: {record.kind}, {record.status}")
    print(f"started {record.started_at} UTC, finished {record.finished_at or '-'} UTC, "
          f"workbench {record.package_version}")
    if record.period:
        print(f"period {record.period} [{record.period_start} .. {record.period_end}) UTC, carrier {record.carrier}")
    if record.outbox_uri:
        print(f"reports: {record.outbox_uri}")
    if record.error:
        print(f"error: {record.error}")
    print(f"settings SHA-256 {record.settings_hash}, inputs SHA-256 {record.input_hash}")
    for item in record.inputs:
        print(f"input {item.side}: {item.file_name}  sha256 {item.sha256}  {item.bytes or '?'} bytes"
              + (f"  from {item.uri}" if item.uri and item.uri != item.file_name else ""))
    s = record.summary
    if s:
        print("counts: " + ", ".join(f"{k} {v}" for k, v in s.get("counts", {}).items()))
        print("money: " + ", ".join(f"{k} {v}" for k, v in s.get("money", {}).items()))
        print("rates: " + ", ".join(f"{k} {v}" for k, v in s.get("rates", {}).items()))
        for entry in s.get("ledger", []):
            print(f"ledger {entry['side']}: read {entry['rows_read']} = matched {entry['matched']} + discrepancies "
                  f"{entry['in_discrepancies']} + excluded {entry['excluded']} + rejected {entry['rejected']}")
        print("settings: " + json.dumps(record.settings.get("reconcile", record.settings), default=str))
    for key, sent, when in alerts:
        print(f"alert {key[:16]}… {'sent' if sent else 'not delivered'} at {when}")
    for side, record_id, start, status, outcome in boundary:
        print(f"period boundary {side} {record_id} at {start}: {status}" + (f" ({outcome})" if outcome else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from recon_core.reports.reconciliation import write_reconciliation_reports
    from recon_core.runs.records import load_result

    with _reading(args) as store:
        result = load_result(store, args.run_id)
    paths = write_reconciliation_reports(result, args.out)
    print(f"run {result.summary['run_id']}: regenerated {len(paths)} files from the store in {args.out}")
    for name in paths:
        print(f"  {name}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from recon_core.runs.compare import IDENTITY_NOTE, diff_results
    from recon_core.runs.records import get_run, load_result

    with _reading(args) as store:
        a, b = get_run(store, args.run_a), get_run(store, args.run_b)
        result_a, result_b = load_result(store, a.run_id), load_result(store, b.run_id)
    diff = diff_results(result_a, result_b)
    print(f"run A {a.run_id} (period {a.period or '?'}) vs run B {b.run_id} (period {b.period or '?'})")
    if a.period != b.period:
        print(f"note: the runs cover different periods ({a.period or 'none recorded'} vs "
              f"{b.period or 'none recorded'}); calls of one period are absent from the other")
    print(f"({IDENTITY_NOTE})")
    changed_inputs = [f"{i.side} {i.file_name}" for i in b.inputs
                      if i.sha256 not in {x.sha256 for x in a.inputs if x.side == i.side}]
    if changed_inputs:
        print("inputs new in B: " + ", ".join(changed_inputs))
    if diff.same:
        print("no call changed bucket; counts and money are the same")
        return 0
    for line in diff.summary_changes:
        print(f"  {line}")
    print(f"{len(diff.changed)} calls changed bucket:")
    for row in diff.transitions().itertuples(index=False):
        print(f"  {row.side}: {row.bucket_a} -> {row.bucket_b}: {row.calls}")
    shown = diff.changed if args.all else diff.changed.head(DIFF_LINES_SHOWN)
    for row in shown.itertuples(index=False):
        print(f"  {row.side} {row.record_id}: {row.bucket_a or '(absent)'} -> {row.bucket_b or '(absent)'}")
    if len(shown) < len(diff.changed):
        print(f"  ... {len(diff.changed) - len(shown)} more (--all lists every call, --csv writes them)")
    if args.csv:
        diff.changed.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def register(sub: Any) -> None:
    """Add ``runs`` (list, show, export, diff) to the ``python -m recon_core`` sub-commands."""
    p = sub.add_parser("runs", help="recorded runs: list, show, export (regenerate reports), diff")
    runs_sub = p.add_subparsers(dest="runs_command", required=True)

    lst = runs_sub.add_parser("list", help="every recorded run, newest first")
    add_store_option(lst)
    lst.add_argument("--status", choices=["running", "complete", "failed"])
    lst.add_argument("--period", help="only this period, e.g. 2026-10")
    lst.add_argument("--carrier", help="only this carrier")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)

    show = runs_sub.add_parser("show", help="one run: settings, inputs with SHA-256, counts, money, alerts")
    show.add_argument("run_id", metavar="RUN_ID")
    add_store_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)

    export = runs_sub.add_parser("export", help="regenerate a run's report files from the store (byte-identical)")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument("--out", type=Path, required=True, help="output directory")
    add_store_option(export)
    export.set_defaults(handler=cmd_export)

    diff = runs_sub.add_parser("diff", help="which calls changed bucket between two runs (e.g. a re-issued invoice)")
    diff.add_argument("run_a", metavar="RUN_A")
    diff.add_argument("run_b", metavar="RUN_B")
    add_store_option(diff)
    diff.add_argument("--all", action="store_true", help=f"list every changed call (default: first "
                                                         f"{DIFF_LINES_SHOWN})")
    diff.add_argument("--csv", type=Path, metavar="PATH", help="write the changed calls as CSV")
    diff.set_defaults(handler=cmd_diff)
