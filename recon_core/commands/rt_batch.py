"""``rt-batch``: real-time snapshots vs historical batch aggregates -> MetricVariances.csv, alerts.json,
summary.json and rt_vs_batch.xlsx.

Sources: ``--realtime CSV`` (tidy snapshots, imported into the store) and/or ``--store PATH``
(snapshots from ``collect-realtime``); ``--batch FILE`` (aggregate response JSON as returned, or
tidy CSV) or ``--region``/``--base-url`` (the aggregates API; credentials GENESYS_CLIENT_ID /
GENESYS_CLIENT_SECRET). ``--demo`` uses the sandbox's synthetic org for both sides.
Alert channels come from the environment (RECON_ALERT_WEBHOOK_URL, RECON_SMTP_*).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError
from recon_core.store import open_store


def _instant(text: str) -> datetime:
    from recon_core.rtbatch.sources import parse_instant

    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-10-05T12:00:00Z") from exc


def register(sub: Any) -> None:
    """Add ``rt-batch`` to the ``python -m recon_core`` sub-commands."""
    p = sub.add_parser("rt-batch", help="compare real-time snapshots with historical batch aggregates",
                       description=__doc__)
    p.add_argument("--realtime", action="append", type=Path, default=[], metavar="CSV",
                   help="tidy real-time snapshot CSV (repeatable)")
    p.add_argument("--store", type=Path, help="store with collector snapshots; results, checkpoint, policy and "
                                              "status map are kept there too")
    p.add_argument("--batch", action="append", type=Path, default=[], metavar="FILE",
                   help="batch aggregates: the API's response JSON or a tidy CSV (repeatable)")
    p.add_argument("--region", help="fetch batch aggregates from this Genesys Cloud region")
    p.add_argument("--base-url", help="API base URL instead of a region (e.g. the sandbox)")
    p.add_argument("--queues", action="append", default=[], metavar="ID,ID",
                   help="queues for the batch API (default: the queues in the real-time data)")
    p.add_argument("--demo", action="store_true", help="use the sandbox's synthetic org for both sides")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--granularity", default="PT30M", help="PT15M, PT30M (default) or PT1H")
    p.add_argument("--buffer", type=int, default=60, metavar="MIN",
                   help="minutes after an interval's end before its batch data counts as final (default 60)")
    p.add_argument("--as-of", type=_instant, metavar="ISO", help="compare as if it were this time (default now)")
    p.add_argument("--from", dest="start", type=_instant, metavar="ISO", help="first interval start")
    p.add_argument("--to", dest="end", type=_instant, metavar="ISO", help="last interval end")
    p.add_argument("--policy", type=Path, metavar="JSON", help="tolerance policy JSON (saved into --store)")
    p.add_argument("--status-map", type=Path, metavar="JSON", help="status map JSON (saved into --store)")
    p.add_argument("--alert-min-mismatches", type=int, default=1, metavar="N",
                   help="alert for an interval with at least N mismatches (default 1; 0 = no alerts)")
    p.add_argument("--no-send", action="store_true", help="write alerts.json but send nothing")
    p.add_argument("--environment", default=os.environ.get("RECON_ENVIRONMENT", "production"),
                   help="environment named in alerts (default $RECON_ENVIRONMENT or production)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=cmd_rt_batch)


def _check_sources(args: argparse.Namespace) -> None:
    problems = []
    api = bool(args.region or args.base_url)
    if not args.demo and not args.realtime and args.store is None:
        problems.append("give the real-time side: --realtime CSV and/or --store PATH (or --demo)")
    if not args.demo and not args.batch and not api:
        problems.append("give the batch side: --batch FILE or --region/--base-url (or --demo)")
    if args.batch and api:
        problems.append("give --batch FILE or --region/--base-url, not both")
    if args.demo and (args.batch or api or args.realtime):
        problems.append("--demo replaces --realtime, --batch and --region")
    if args.buffer < 0:
        problems.append("--buffer must be 0 minutes or more")
    if problems:
        raise SettingsError("; ".join(problems))


def cmd_rt_batch(args: argparse.Namespace) -> int:
    from recon_core.alerts import alert_channels_from_env
    from recon_core.cli import TerminalProgress
    from recon_core.commands.collect_realtime import client_for, parse_queues
    from recon_core.rtbatch import persist
    from recon_core.rtbatch.alerting import send_rt_batch_alerts
    from recon_core.rtbatch.engine import RtBatchSettings, validate_settings
    from recon_core.rtbatch.metrics import MetricPolicy, StatusMap, load_policy, load_status_map
    from recon_core.rtbatch.reports import write_rt_batch_reports
    from recon_core.rtbatch.run import reconcile_store
    from recon_core.rtbatch.sources import read_batch_file, read_tidy_csv

    _check_sources(args)
    file_policy = load_policy(args.policy) if args.policy else None
    file_status_map = load_status_map(args.status_map) if args.status_map else None
    channels = alert_channels_from_env()
    progress = None if args.quiet else TerminalProgress()
    as_of = args.as_of or datetime.now(UTC)
    settings = RtBatchSettings(granularity=args.granularity.strip().upper(), buffer_minutes=args.buffer,
                               as_of=as_of, start=args.start, end=args.end,
                               alert_min_mismatches=args.alert_min_mismatches, environment=args.environment)
    validate_settings(settings)
    pending: list[datetime] = []
    complete_until = None
    notes: list[str] = []
    with open_store(args.store if args.store is not None else ":memory:") as store:
        con = store.con
        policy: MetricPolicy = persist.load_policy_from_store(con)
        status_map: StatusMap = persist.load_status_map_from_store(con)
        if file_policy is not None:
            policy = file_policy
            persist.save_policy_to_store(con, policy)
        if file_status_map is not None:
            status_map = file_status_map
            persist.save_status_map_to_store(con, status_map)
        settings = replace(settings, policy=policy, status_map=status_map)
        if args.demo:
            from recon_core.rtbatch.demo import load_demo_rt_batch

            demo = load_demo_rt_batch(granularity=settings.granularity, as_of=args.as_of)
            frame = demo.realtime.copy()
            frame.insert(0, "captured_at", frame["interval_end"] - timedelta(milliseconds=1))
            persist.save_snapshots(con, frame, source="sandbox demo")
            persist.save_batch_aggregates(con, demo.batch, source="sandbox demo")
            pending += demo.pending_intervals
            complete_until = demo.batch_complete_until
            settings = replace(settings, as_of=demo.as_of)
        for path in args.realtime:
            frame = read_tidy_csv(path)
            if "captured_at" not in frame.columns:
                frame.insert(0, "captured_at", frame["interval_end"] - timedelta(milliseconds=1))
            persist.save_snapshots(con, frame, source=str(path))
        for path in args.batch:
            persist.save_batch_aggregates(con, read_batch_file(path), source=str(path))
        if args.region or args.base_url:
            from recon_core.genesys.regions import resolve_endpoints
            from recon_core.genesys.settings import ClientCredentials
            from recon_core.rtbatch.api import BATCH_CLIENT_SETTINGS, fetch_batch

            span = con.execute("SELECT min(interval_start), max(interval_end), "
                               "list(DISTINCT queue_id) FILTER (WHERE queue_id <> '') FROM rt_snapshots").fetchone()
            if not span or span[0] is None:
                raise SettingsError("the store holds no real-time snapshots to compare; run collect-realtime "
                                    "or give --realtime CSV first")
            start = settings.start or span[0].replace(tzinfo=UTC)
            end = settings.end or span[1].replace(tzinfo=UTC)
            queues = parse_queues(args.queues) or tuple(sorted(span[2] or []))
            credentials = ClientCredentials.from_env()
            endpoints = resolve_endpoints(args.region, args.base_url)
            with client_for(endpoints, credentials, BATCH_CLIENT_SETTINGS) as client:
                fetch = fetch_batch(client, con, queues, start, end, granularity=settings.granularity,
                                    buffer_minutes=settings.buffer_minutes, as_of=as_of, progress=progress)
            pending += fetch.pending
            complete_until = fetch.complete_until
            notes += fetch.notes
            print(f"batch: fetched {len(fetch.fetched)} intervals, {len(fetch.already_complete)} already in the "
                  f"store, {len(fetch.pending)} pending, {len(fetch.waiting)} not final yet "
                  f"({fetch.requests} requests)")
        result, run_id = reconcile_store(con, settings, pending_intervals=pending,
                                         batch_complete_until=complete_until, progress=progress)
        dispatches = send_rt_batch_alerts(con, result, channels, send=not args.no_send)
        alert_counts = {state: sum(1 for d in dispatches if d["state"] == state)
                        for state in ("sent", "already_sent", "failed", "would_send")}
        result = replace(result, summary={**result.summary, "run_id": run_id,
                                          "notes": [*result.summary["notes"], *notes], "alerts": alert_counts})
    paths = write_rt_batch_reports(result, args.out, dispatches=dispatches)
    s = result.summary
    c = s["counts"]
    print(f"run {run_id}: {s['rows']} values in {s['intervals']} intervals: OK {c['OK']}, MISMATCH {c['MISMATCH']}, "
          f"PENDING {c['PENDING']}, UNMAPPED {c['UNMAPPED']}")
    if s["unmapped_statuses"]:
        print(f"unmapped real-time statuses (add them to the status map): {', '.join(s['unmapped_statuses'])}")
    if s["boundary_shifts"]:
        print(f"{s['boundary_shifts']} mismatches look like boundary shifts (adjacent intervals agree)")
    a = s["alerts"]
    print(f"alerts: {a['sent']} sent, {a['already_sent']} already sent before, {a['failed']} failed, "
          f"{a['would_send']} not sent (no channel configured or --no-send)")
    if s["checkpoint"]:
        print(f"reconciled up to {s['checkpoint']}")
    print(f"wrote {', '.join(p.name for p in paths.values())} to {args.out}")
    return 0
