"""Command line of the sandbox (the only module of the package that prints).

``python -m recon_core.sandbox [serve] --port 8765``
    Serve the synthetic org on 127.0.0.1 until Ctrl-C (``--port 0`` picks a free port; the
    first line printed is ``listening on http://127.0.0.1:<port>``).
``python -m recon_core.sandbox export-invoice --carrier twilio --from 2026-10-01 --to 2026-10-31 --out FILE``
    Write a carrier invoice for the org's billable legs with known faults, and its manifest
    (``FILE.manifest.json`` unless ``--manifest`` is given).

Errors a person can fix (:class:`~recon_core.errors.ReconError`) end with a one-line message
and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from recon_core.errors import ReconError
from recon_core.sandbox.clock import OffsetClock, parse_iso
from recon_core.sandbox.config import SandboxConfig
from recon_core.sandbox.invoice import CARRIERS, InvoiceFaults, InvoiceSpec, export_invoice
from recon_core.sandbox.org import OrgSpec, SandboxError
from recon_core.sandbox.server import SandboxServer

COMMANDS = ("serve", "export-invoice", "export-conversations")

# Fault options of export-invoice: one per InvoiceFaults field (a test keeps them in step).
FAULT_OPTIONS: tuple[tuple[str, str], ...] = tuple(
    (f"--{f.name.replace('_', '-')}", f.name) for f in dataclasses.fields(InvoiceFaults)
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-10-01") from exc


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.0140") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recon_core.sandbox",
                                     description="Local Genesys Cloud sandbox and carrier-invoice demo data.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    today = datetime.now(UTC).date()
    serve = sub.add_parser("serve", parents=[common],
                           help="serve the synthetic org on 127.0.0.1 (the default command)")
    serve.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = pick a free one)")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--from", dest="start", type=_date, default=today - timedelta(days=35),
                       help="first UTC day with conversations (default: 35 days ago)")
    serve.add_argument("--to", dest="end", type=_date, default=today, help="last UTC day (default: today)")
    serve.add_argument("--per-day", type=int, default=OrgSpec.conversations_per_day,
                       help="conversations on a weekday")
    serve.add_argument("--client-id", default=SandboxConfig.client_id)
    serve.add_argument("--client-secret", default=SandboxConfig.client_secret)
    serve.add_argument("--token-lifetime", type=int, default=SandboxConfig.token_lifetime_s, help="seconds")
    serve.add_argument("--now",
                       help="pretend the time is this ISO instant when starting (it then runs normally)")
    serve.add_argument("--job-polls", type=int, default=SandboxConfig.job_polls_until_fulfilled,
                       help="status polls before a details job is FULFILLED")
    serve.add_argument("--enforce-rate-limit", action="store_true",
                       help="answer 429 above 300 requests a minute")
    serve.add_argument("--batch-aggregates-after", type=int, metavar="SECONDS",
                       help="answer aggregate queries over intervals that ended this long ago from the batch "
                            "source (no real-time disagreements); default: always the real-time source")
    serve.set_defaults(handler=cmd_serve)

    export = sub.add_parser("export-invoice", parents=[common],
                            help="write a carrier invoice with known faults and its manifest")
    export.add_argument("--carrier", choices=CARRIERS, required=True)
    export.add_argument("--from", dest="start", type=_date, required=True, help="first UTC day of the period")
    export.add_argument("--to", dest="end", type=_date, required=True, help="last UTC day of the period")
    export.add_argument("--out", type=Path, required=True, help="invoice file to write (CSV)")
    export.add_argument("--manifest", type=Path, help="manifest path (default: OUT.manifest.json)")
    export.add_argument("--seed", type=int, default=InvoiceSpec.seed)
    export.add_argument("--per-day", type=int, default=InvoiceSpec.conversations_per_day)
    export.add_argument("--inbound-rate", type=_decimal, default=InvoiceSpec.inbound_rate_per_minute)
    export.add_argument("--outbound-rate", type=_decimal, default=InvoiceSpec.outbound_rate_per_minute)
    export.add_argument("--contract-increment", default=InvoiceSpec.contract_increment)
    defaults = InvoiceFaults()
    for option, name in FAULT_OPTIONS:
        export.add_argument(option, dest=name, type=int, default=getattr(defaults, name), metavar="N",
                            help=f"default {getattr(defaults, name)}")
    export.set_defaults(handler=cmd_export_invoice)

    conv = sub.add_parser("export-conversations", parents=[common],
                          help="write the org's conversations as conversation-details JSON")
    conv.add_argument("--from", dest="start", type=_date, required=True, help="first UTC day")
    conv.add_argument("--to", dest="end", type=_date, required=True, help="last UTC day")
    conv.add_argument("--out", type=Path, required=True, help="JSON file to write")
    conv.add_argument("--seed", type=int, default=OrgSpec.seed)
    conv.add_argument("--per-day", type=int, default=OrgSpec.conversations_per_day)
    conv.set_defaults(handler=cmd_export_conversations)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    clock = None
    if args.now:
        try:
            clock = OffsetClock(datetime.fromtimestamp(parse_iso(args.now) / 1000, UTC))
        except ValueError as exc:
            raise SandboxError(f"--now {args.now!r} is not an ISO instant like 2026-10-15T14:00:00Z") from exc
    config = SandboxConfig(
        org=OrgSpec(seed=args.seed, start=args.start, end=args.end, conversations_per_day=args.per_day),
        port=args.port, client_id=args.client_id, client_secret=args.client_secret,
        token_lifetime_s=args.token_lifetime, clock=clock, job_polls_until_fulfilled=args.job_polls,
        enforce_rate_limit=args.enforce_rate_limit, batch_aggregates_after_s=args.batch_aggregates_after,
    )
    server = SandboxServer(config)
    print(f"listening on {server.base_url}", flush=True)
    print(f"  login and API base URL: {server.base_url}   client id: {config.client_id}   "
          f"secret: {config.client_secret}", flush=True)
    print(f"  org {server.org.directory.org_name}: {args.start} .. {args.end} (UTC), "
          f"{args.per_day} conversations a weekday; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def cmd_export_invoice(args: argparse.Namespace) -> int:
    faults = InvoiceFaults(**{name: getattr(args, name) for _, name in FAULT_OPTIONS})
    spec = InvoiceSpec(carrier=args.carrier, start=args.start, end=args.end, seed=args.seed,
                       conversations_per_day=args.per_day, inbound_rate_per_minute=args.inbound_rate,
                       outbound_rate_per_minute=args.outbound_rate,
                       contract_increment=args.contract_increment,
                       faults=faults)
    manifest = export_invoice(spec, args.out, args.manifest)
    counts = manifest.counts
    target = args.manifest or args.out.with_name(args.out.name + ".manifest.json")
    rows, bad = counts["invoice_rows"], counts["rows_expected_rejected"]
    answered, unanswered = counts["legs_answered"], counts["legs_zero_duration"]
    print(f"wrote {args.out}: {rows} rows ({bad} unreadable on purpose) "
          f"for {answered} answered and {unanswered} unanswered legs")
    print(f"wrote {target}")
    print("injected: " + ", ".join(f"{k} {v}" for k, v in counts["faults_injected"].items()))
    for note in manifest.notes:
        print(f"note: {note}")
    return 0


def cmd_export_conversations(args: argparse.Namespace) -> int:
    from recon_core.sandbox.export import export_conversations

    spec = OrgSpec(seed=args.seed, start=args.start, end=args.end, conversations_per_day=args.per_day)
    count = export_conversations(spec, args.out)
    print(f"wrote {args.out}: {count} conversations, {args.start} .. {args.end} (UTC)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code. Without a command, ``serve`` is assumed."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not any(a in COMMANDS for a in args_list) and not {"-h", "--help"} & set(args_list):
        args_list.insert(0, "serve")
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except ReconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
