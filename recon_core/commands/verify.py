"""``python -m recon_core verify RUN_ID --invoice FILE --cdr FILE``: the auditor's re-run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recon_core.commands.runs import add_store_option
from recon_core.errors import SettingsError, StoreError
from recon_core.store import default_store_path


def cmd_verify(args: argparse.Namespace) -> int:
    from recon_core.cli import TerminalProgress, profile_from_args
    from recon_core.profiles import profile_from_dict
    from recon_core.runs.access import store_session
    from recon_core.runs.records import get_run, load_result
    from recon_core.runs.verify import verify_result

    path = args.store or default_store_path()
    if not Path(path).exists():
        raise StoreError(f"store {path} does not exist")
    with store_session(path, read_only=True) as store:
        record = get_run(store, args.run_id)
        stored = load_result(store, record.run_id)
    if args.profile or args.carrier:
        profile = profile_from_args(args)
    elif record.settings.get("profile"):
        profile = profile_from_dict(record.settings["profile"], f"the profile recorded with run {record.run_id}")
    else:
        raise SettingsError(f"run {record.run_id} did not record its mapping profile: give --carrier or --profile")
    progress = None if args.quiet else TerminalProgress()
    outcome = verify_result(record, stored, args.invoice, args.cdr, profile, progress=progress)
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=1, default=str))
        return 0 if outcome.same else 1
    for problem in outcome.hash_problems:
        print(f"input: {problem}")
    if outcome.same:
        print(f"run {record.run_id}: same result (inputs match the recorded SHA-256; "
              f"{len(stored.matched)} matched, {len(stored.discrepancies)} discrepancies, identical rows)")
        return 0
    print(f"run {record.run_id}: DIFFERENT result")
    for line in outcome.differences:
        print(f"  {line}")
    for line in outcome.diff.summary_changes:
        print(f"  {line}")
    for row in outcome.diff.changed.head(50).itertuples(index=False):
        print(f"  {row.side} {row.record_id}: recorded {row.bucket_a or '(absent)'}, now {row.bucket_b or '(absent)'}")
    return 1


def register(sub: Any) -> None:
    """Add ``verify`` to the ``python -m recon_core`` sub-commands."""
    p = sub.add_parser("verify", help="re-run a recorded run from its input files and confirm the same result")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--invoice", action="append", type=Path, required=True, metavar="FILE",
                   help="the invoice file the run read (repeatable)")
    p.add_argument("--cdr", action="append", type=Path, required=True, metavar="FILE",
                   help="the CDR file the run read (repeatable; for pipeline runs: cdr_legs.parquet of the run)")
    add_store_option(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--profile", type=Path, help="mapping profile, when the run did not record one")
    group.add_argument("--carrier", help="shipped profile name, when the run did not record one")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=cmd_verify)
