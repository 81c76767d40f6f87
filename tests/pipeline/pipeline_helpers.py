"""Helpers for the pipeline tests: a sandbox org + its carrier invoice, a recon.toml, a webhook receiver."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from recon_core.sandbox import ManualClock, SandboxConfig, run_sandbox
from recon_core.sandbox.invoice import InvoiceManifest, InvoiceSpec, export_invoice

RATE = "inbound=0.0220,outbound=0.0140"
SANDBOX_ENV = {"GENESYS_CLIENT_ID": "sandbox-client-id", "GENESYS_CLIENT_SECRET": "sandbox-client-secret"}


@dataclass(frozen=True)
class Month:
    """A month of sandbox traffic and the carrier's invoice for it."""

    spec: InvoiceSpec
    invoice: Path
    manifest: InvoiceManifest


def make_month(folder: Path, *, start: date = date(2026, 10, 1), end: date = date(2026, 10, 31),
               per_day: int = 20) -> Month:
    spec = InvoiceSpec(carrier="twilio", start=start, end=end, conversations_per_day=per_day)
    invoice = folder / "twilio_2026-10.csv"
    manifest = export_invoice(spec, invoice, folder / "manifest.json")
    return Month(spec, invoice, manifest)


def add_edge_call(invoice: Path, out: Path, edge: datetime, seconds_before: int = 3) -> str:
    """A copy of the Twilio invoice with one extra call billed ``seconds_before`` the period's end edge.

    No Genesys call exists for it, so without the edge rule it would be MISSING_IN_CDR.
    """
    with invoice.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    extra = dict(next(r for r in rows if r["status"] == "completed" and r["direction"] == "trunking-originating"))
    sid = "CAedge000000000000000000000000000e"
    begin = edge - timedelta(seconds=seconds_before)
    extra.update(sid=sid, duration="30", price="-0.00700",
                 date_created=_rfc2822(begin - timedelta(seconds=4)), start_time=_rfc2822(begin),
                 end_time=_rfc2822(begin + timedelta(seconds=30)), to="+12085550199")
    rows.append(extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return sid


def _rfc2822(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")


@contextmanager
def sandbox_for(month: Month, now: datetime | None = None) -> Iterator[str]:
    """The sandbox serving the month's org (jobs fulfilled at once); yields its base URL."""
    clock = ManualClock(now or datetime(2026, 11, 6, 12, 0, tzinfo=UTC))
    config = SandboxConfig(org=month.spec.org_spec(), clock=clock, job_polls_until_fulfilled=0)
    with run_sandbox(config) as server:
        yield server.base_url


def write_config(path: Path, *, inbox: str, outbox: str, store: Path, base_url: str, threshold: float = 2.0,
                 extra: str = "") -> Path:
    path.write_text(f"""
[inbox]
url = "{inbox}"
[outbox]
url = "{outbox}"
[store]
path = "{store}"
[genesys]
base_url = "{base_url}"
poll_initial_s = 0.01
[reconcile]
time_tolerance_s = 10
[alerts]
threshold_pct = {threshold}
environment = "test"
[[carriers]]
name = "twilio"
profile = "twilio"
folder = "twilio"
pattern = "*.csv"
rate = "{RATE}"
increment = "1/1"
{extra}
""", encoding="utf-8")
    return path
