"""``python -m recon_core reconcile``: invoice(s) vs CDR legs -> MatchedCalls, Discrepancies, ... ."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(str(text).strip().rstrip("%"))
    except InvalidOperation as exc:
        raise SettingsError(f"{what} must be a number, got {text!r}") from exc
    return value


def parse_rate_option(text: str) -> tuple[Decimal | None, Decimal | None]:
    """``0.014`` (both directions) or ``inbound=0.022,outbound=0.014`` -> (inbound, outbound)."""
    if "=" not in text:
        rate = _decimal(text, "--rate")
        return rate, rate
    rates: dict[str, Decimal] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in ("inbound", "outbound"):
            raise SettingsError(f"--rate: '{name}' must be inbound or outbound (e.g. inbound=0.022,outbound=0.014)")
        rates[name] = _decimal(value, f"--rate {name}")
    return rates.get("inbound"), rates.get("outbound")


def settings_from_args(args: argparse.Namespace, profile: Any) -> Any:
    """Build ReconcileSettings from the command line (all problems listed at once)."""
    from recon_core.match.settings import MatchSettings
    from recon_core.rating import RatingSettings, load_rate_deck, parse_increment, validate_rating_settings
    from recon_core.reconcile import ReconcileSettings

    problems = []
    inbound_rate = outbound_rate = deck = None
    try:
        if args.rate is not None:
            inbound_rate, outbound_rate = parse_rate_option(args.rate)
        if args.rate_deck is not None:
            deck = load_rate_deck(args.rate_deck)
    except SettingsError as exc:
        problems.append(str(exc))
    if args.rate is None and args.rate_deck is None and not args.use_invoice_rate:
        problems.append("no rate to check costs against: give --rate PER_MIN (or inbound=X,outbound=Y), "
                        "--rate-deck PATH, or --use-invoice-rate")
    try:
        pct = _decimal(args.cost_pct_tolerance, "--cost-pct-tolerance") / 100
        abs_tol = _decimal(args.cost_abs_tolerance, "--cost-abs-tolerance")
    except SettingsError as exc:
        problems.append(str(exc))
        pct, abs_tol = Decimal("0.001"), Decimal("0.01")
    try:
        increment = parse_increment(args.increment or profile.billing_increment)
        carrier_increment = parse_increment(profile.billing_increment)
    except SettingsError as exc:
        problems.append(str(exc))
        increment = carrier_increment = parse_increment("60/60")
    if problems:
        raise SettingsError("; ".join(problems))
    rating = RatingSettings(
        increment=increment,
        money_decimals=profile.money_decimals if profile.money_decimals is not None else 4,
        inbound_rate_per_minute=inbound_rate, outbound_rate_per_minute=outbound_rate, rate_deck=deck,
        rate_source="invoice_rate" if args.use_invoice_rate else "contract",
        abs_tolerance=abs_tol, pct_tolerance=pct,
        carrier_increment=carrier_increment if carrier_increment != increment else None,
    )
    validate_rating_settings(rating)
    match = MatchSettings(tolerance_s=float(args.time_tolerance),
                          max_tolerance_s=max(60.0, float(args.time_tolerance)))
    return ReconcileSettings(match=match, rating=rating)


def cmd_reconcile(args: argparse.Namespace) -> int:

    from recon_core.cli import TerminalProgress, profile_from_args
    from recon_core.reconcile import reconcile
    from recon_core.reports.reconciliation import write_reconciliation_reports

    profile = profile_from_args(args)
    if args.invoice_tz:
        from recon_core.profiles import profile_from_dict

        data = profile.to_dict()
        data["timestamps"]["timezone"] = args.invoice_tz
        profile = profile_from_dict(data, f"{profile.name} with --invoice-tz {args.invoice_tz}")
    settings = settings_from_args(args, profile)
    progress = None if args.quiet else TerminalProgress()
    _, result = reconcile(args.invoice, args.cdr, profile, settings, progress=progress)
    paths = write_reconciliation_reports(result, args.out)
    s = result.summary
    if args.store is not None:
        from recon_core.runs.access import store_session
        from recon_core.runs.records import KIND_RECONCILE, record_result

        with store_session(args.store) as store:
            record_result(store, result, kind=KIND_RECONCILE, outbox_uri=str(args.out), profile=profile)
        print(f"recorded run {s['run_id']} in {args.store} (runs show {s['run_id']})")
    counts, money, rates = s["counts"], s["money"], s["rates"]
    print(f"run {s['run_id']}: matched {counts['matched']} (rounding variance {counts['MATCHED_ROUNDING_VARIANCE']}), "
          f"cost variance {counts['COST_VARIANCE']}, missing in CDR {counts['MISSING_IN_CDR']}, "
          f"missing in invoice {counts['MISSING_IN_INVOICE']}, duplicate charges {counts['DUPLICATE_CHARGE']}, "
          f"excluded {counts['excluded']}, rejected {counts['rejected']}")
    print(f"match rate {rates['match_rate_pct']}%, discrepancy rate {rates['discrepancy_rate_pct']}%, "
          f"disputed {money['disputed_amount']} {money['currency']}")
    for entry in s["ledger"]:
        print(f"ledger {entry['side']}: read {entry['rows_read']} = matched {entry['matched']} + discrepancies "
              f"{entry['in_discrepancies']} + excluded {entry['excluded']} + rejected {entry['rejected']}")
    print(f"wrote {len(paths)} files to {args.out}")
    if args.fail_above is not None and rates["discrepancy_rate_pct"] > float(args.fail_above):
        print(f"discrepancy rate {rates['discrepancy_rate_pct']}% is above --fail-above {args.fail_above}%")
        return 1
    return 0


def register(sub: Any) -> None:
    from recon_core.cli import add_profile_options

    p = sub.add_parser("reconcile", help="match carrier invoice rows one-to-one against CDR legs")
    p.add_argument("--invoice", action="append", type=Path, required=True, metavar="PATH",
                   help="carrier invoice file (repeatable)")
    add_profile_options(p)
    p.add_argument("--cdr", action="append", type=Path, required=True, metavar="PATH",
                   help="canonical CSV/Parquet legs, or Genesys conversation-details JSON/JSONL file or folder")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--time-tolerance", type=float, default=10.0, metavar="S", help="seconds (default 10)")
    p.add_argument("--cost-abs-tolerance", default="0.01", metavar="X", help="money (default 0.01)")
    p.add_argument("--cost-pct-tolerance", default="0.1", metavar="P", help="percent of invoice cost (default 0.1)")
    p.add_argument("--increment", metavar="A/B", help="contract billing increment (default: the profile's)")
    rates = p.add_mutually_exclusive_group()
    rates.add_argument("--rate", metavar="PER_MIN",
                       help="flat rate per minute: 0.014 for both directions, or inbound=0.022,outbound=0.014")
    rates.add_argument("--rate-deck", type=Path, metavar="PATH",
                       help="rate deck CSV: prefix,direction,rate_per_minute[,increment,connection_fee,effective_from]")
    p.add_argument("--use-invoice-rate", action="store_true",
                   help="rate each call at the rate its invoice row states, where it states one")
    p.add_argument("--invoice-tz", metavar="IANA", help="time zone of naive invoice timestamps (overrides the profile)")
    p.add_argument("--fail-above", type=float, metavar="PCT", help="exit 1 when the discrepancy rate exceeds PCT")
    p.add_argument("--store", type=Path, metavar="PATH",
                   help="also record the run (settings, input SHA-256, classified rows) in this run store")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(handler=cmd_reconcile)
