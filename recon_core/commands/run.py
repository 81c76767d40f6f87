"""``python -m recon_core run --config recon.toml``: reconcile every new invoice in the inbox, unattended.

Exit codes (for a scheduler): 0 done, 1 a discrepancy rate above the configured threshold,
2 a configuration or input error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError


def _period_option(args: argparse.Namespace) -> str | None:
    from recon_core.pipeline.period import period_from_label

    label = args.period or args.date
    if label is None:
        return None
    period = period_from_label(label)
    if args.period and period.kind != "month":
        raise SettingsError(f"--period {args.period!r} must be a month like 2026-10 (use --date for a day)")
    if args.date and period.kind != "day":
        raise SettingsError(f"--date {args.date!r} must be a day like 2026-10-31 (use --period for a month)")
    return period.label


def cmd_run(args: argparse.Namespace) -> int:
    from recon_core.cli import TerminalProgress
    from recon_core.pipeline.config import load_config
    from recon_core.pipeline.runner import run_pipeline

    config = load_config(args.config)
    if args.store:
        from dataclasses import replace

        config = replace(config, store_path=str(args.store))
    period = _period_option(args)
    logging.getLogger("recon_core.pipeline").setLevel(logging.INFO)
    progress = None if args.quiet else TerminalProgress()
    result = run_pipeline(config, period=period, force=args.force, progress=progress)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return result.exit_code
    for run_id in result.interrupted_runs:
        print(f"run {run_id} had been interrupted: marked failed")
    for removed in result.removed_partials:
        print(f"removed {removed} (a partial upload left by an interrupted run)")
    if not result.outcomes:
        print(f"no invoice file in {config.inbox_url}")
    for o in result.outcomes:
        head = f"{o.uri}: {o.status}"
        if o.run_id and o.status == "complete":
            head += f", run {o.run_id}"
        print(f"{head} - {o.message}")
        if o.reports_uri:
            print(f"  reports: {o.reports_uri}")
        if o.alert:
            print(f"  {o.alert}")
    code = result.exit_code
    if code == 1:
        print("discrepancy rate above the threshold for at least one invoice (exit 1)", file=sys.stderr)
    return code


def register(sub: Any) -> None:
    """Add ``run`` to the ``python -m recon_core`` sub-commands."""
    p = sub.add_parser("run", help="unattended: reconcile every new invoice in the inbox into the outbox",
                       description="For each new invoice file in the configured inbox: find its billing period, "
                                   "fetch the Genesys legs of the period (plus a margin), reconcile, publish the "
                                   "reports to <outbox>/<period>/<carrier>/<run_id>/, record the run and alert "
                                   "above the threshold. Exit 0 done, 1 above threshold, 2 configuration/input "
                                   "error.")
    p.add_argument("--config", type=Path, required=True, help="recon.toml")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--period", metavar="YYYY-MM", help="only invoices of this month (billing cycle)")
    when.add_argument("--date", metavar="YYYY-MM-DD", help="only daily invoices of this day (billing cycle)")
    p.add_argument("--force", action="store_true", help="run again even when an invoice was already reconciled "
                                                       "with the same SHA-256 and settings")
    p.add_argument("--store", type=Path, help="run store file (overrides [store] path)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=cmd_run)
