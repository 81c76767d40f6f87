"""``collect-realtime``: poll Genesys Cloud's real-time endpoints into the store, or import snapshots.

Credentials come from ``GENESYS_CLIENT_ID`` / ``GENESYS_CLIENT_SECRET``.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError
from recon_core.genesys.client import GenesysClient
from recon_core.genesys.regions import GenesysEndpoints, resolve_endpoints
from recon_core.genesys.settings import ClientCredentials, ClientSettings
from recon_core.store import default_store_path, open_store

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)


def parse_every(text: str) -> float:
    """``60s``, ``2m``, ``1h`` or plain seconds -> seconds.

    Raises:
        SettingsError: anything else, or not more than zero.
    """
    match = _EVERY.match(str(text))
    if not match:
        raise SettingsError(f"--every {text!r} must look like 60s, 2m or 1h")
    value = float(match.group(1)) * {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[
        (match.group(2) or "").lower()]
    if value <= 0:
        raise SettingsError(f"--every must be longer than 0 seconds, got {text!r}")
    return value


def parse_queues(values: list[str]) -> tuple[str, ...]:
    """``--queues a,b --queues c`` -> (a, b, c) without blanks or repeats."""
    out: list[str] = []
    for value in values:
        out += [q.strip() for q in value.split(",") if q.strip() and q.strip() not in out]
    return tuple(out)


def client_for(endpoints: GenesysEndpoints, credentials: ClientCredentials,
               settings: ClientSettings | None = None) -> GenesysClient:
    """The client the commands use (tests replace this to use a fake clock and sleep)."""
    return GenesysClient(endpoints, credentials, settings)


def register(sub: Any) -> None:
    """Add ``collect-realtime`` to the ``python -m recon_core`` sub-commands."""
    p = sub.add_parser(
        "collect-realtime", help="poll Genesys Cloud real-time aggregates/observations into the store",
        description="Every --every seconds, store a snapshot of the current interval's conversation aggregates, "
                    "the queues' observations and the agents' time in status (what the real-time dashboards "
                    "show). With --import, store tidy CSV snapshots instead (captured_at, interval_start, "
                    "interval_end, queue_id, media_type, metric, value). Credentials: GENESYS_CLIENT_ID and "
                    "GENESYS_CLIENT_SECRET.")
    p.add_argument("--region", help="region key (us_east_1, eu_west_1, ...), AWS code or API host")
    p.add_argument("--base-url", help="API base URL instead of a region, e.g. the sandbox http://127.0.0.1:8765")
    p.add_argument("--queues", action="append", default=[], metavar="ID,ID", help="queue ids (comma-separated)")
    p.add_argument("--every", default="60s", help="poll interval, e.g. 60s (default) or 2m")
    p.add_argument("--granularity", default="PT30M", help="interval length: PT15M, PT30M (default) or PT1H")
    p.add_argument("--iterations", type=int, help="stop after this many polls (default: until Ctrl-C)")
    p.add_argument("--store", type=Path, help=f"store file (default {default_store_path()})")
    p.add_argument("--import", dest="import_csv", action="append", type=Path, default=[], metavar="CSV",
                   help="import tidy snapshot CSV(s) instead of polling (repeatable)")
    p.set_defaults(handler=cmd_collect_realtime)


def cmd_collect_realtime(args: argparse.Namespace) -> int:
    from recon_core.rtbatch import persist
    from recon_core.rtbatch.api import run_collector
    from recon_core.rtbatch.sources import granularity_minutes, read_tidy_csv

    granularity_minutes(args.granularity)
    if args.import_csv:
        with open_store(args.store) as store:
            total = 0
            for path in args.import_csv:
                frame = read_tidy_csv(path)
                if "captured_at" not in frame.columns:
                    # A file of final real-time values: as if captured just before each interval closed.
                    frame.insert(0, "captured_at", frame["interval_end"] - timedelta(milliseconds=1))
                rows = persist.save_snapshots(store.con, frame, source=str(path))
                total += rows
                print(f"{path}: imported {rows} snapshot rows")
        print(f"imported {total} rows into {store.path or 'memory'}")
        return 0
    queues = parse_queues(args.queues)
    if not queues:
        raise SettingsError("name the queues to collect with --queues ID,ID (or give --import CSV)")
    every = parse_every(args.every)
    if args.iterations is not None and args.iterations < 1:
        raise SettingsError("--iterations must be 1 or more")
    credentials = ClientCredentials.from_env()
    endpoints = resolve_endpoints(args.region, args.base_url)
    with open_store(args.store) as store, client_for(endpoints, credentials) as client:
        try:
            outcomes = run_collector(client, store.con, queues, every_seconds=every, granularity=args.granularity,
                                     iterations=args.iterations,
                                     on_snapshot=lambda o: print(f"{o.captured_at.isoformat()}: {o.rows} rows "
                                                                 f"for {o.interval_start.isoformat()}", flush=True))
        except KeyboardInterrupt:
            print("stopped")
            return 0
    print(f"stored {sum(o.rows for o in outcomes)} rows from {len(outcomes)} snapshots in {store.path or 'memory'}")
    return 0
