"""The unattended run: every new invoice in the inbox -> reconciled reports in the outbox, recorded.

For each invoice file (carrier chosen by inbox sub-folder / file-name pattern):

1. download it to a private staging folder and take its SHA-256; a complete run with the
   same SHA-256, carrier and settings means *skip* (unless ``force``);
2. ingest it and find its billing period (the month, or with ``--date`` the day, holding most
   of its calls), cut at the carrier's billing-cycle edge; with ``--period`` / ``--date`` only
   invoices of that period are processed;
3. fetch (or reuse from the store) the Genesys legs of the period plus a margin on each side,
   and keep the legs starting within ``[start - margin, end + margin)``;
4. record the run ``running``, reconcile, re-categorize edge calls ``PERIOD_BOUNDARY`` and
   re-check the calls earlier runs left open at this period's edges;
5. publish the reports (and the CDR legs used, for ``verify``) to
   ``<outbox>/<period>/<carrier>/<run_id>/`` (hidden temporary name first, then moved);
6. record the run ``complete`` (rows, boundary calls, re-check outcomes: one transaction);
7. alert when the discrepancy rate is above the threshold (once per finding).

A failure marks the run ``failed`` and goes on with the next file; an interruption leaves the
run ``running`` and nothing under the final outbox name (the next run removes the partial upload).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pandas as pd

from recon_core.errors import GenesysDataPendingError, ReconError
from recon_core.pipeline.config import CarrierConfig, PipelineConfig, load_mapping_profile
from recon_core.pipeline.period import Period, detect_period, period_from_label, utc_days
from recon_core.pipeline.storage import Location, StoredFile
from recon_core.reconcile import file_sha256
from recon_core.runs.access import store_session
from recon_core.runs.boundary import (
    STATUS_OPEN,
    BoundaryCall,
    PeriodEdges,
    apply_period_boundary,
    boundary_calls,
    recheck_open_calls,
)
from recon_core.runs.records import (
    KIND_PIPELINE,
    RunInput,
    begin_run,
    canonical_json,
    complete_run,
    fail_run,
    link_alert,
)
from recon_core.sql import execute
from recon_core.store import default_store_path

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Checkpoint = Callable[[str], None]

STATUS_DONE = "complete"
STATUS_SKIPPED = "skipped"
STATUS_FAILED = "failed"
STATUS_UNASSIGNED = "no_carrier"
CDR_LEGS_FILE = "cdr_legs.parquet"
RUN_FILE = "run.json"
ALERT_SOURCE = "billing"


@dataclass(frozen=True)
class FileOutcome:
    """What the pipeline did with one inbox file."""

    uri: str
    status: str
    message: str
    carrier: str | None = None
    run_id: str | None = None
    period: str | None = None
    discrepancy_rate_pct: float | None = None
    above_threshold: bool = False
    reports_uri: str | None = None
    alert: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "status": self.status, "message": self.message, "carrier": self.carrier,
                "run_id": self.run_id, "period": self.period, "discrepancy_rate_pct": self.discrepancy_rate_pct,
                "above_threshold": self.above_threshold, "reports_uri": self.reports_uri, "alert": self.alert}


@dataclass(frozen=True)
class PipelineResult:
    """Every file's outcome; :attr:`exit_code` is 2 on an input error, else 1 above threshold, else 0."""

    outcomes: tuple[FileOutcome, ...]
    removed_partials: tuple[str, ...] = field(default_factory=tuple)
    interrupted_runs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        if any(o.status == STATUS_FAILED for o in self.outcomes):
            return 2
        return 1 if any(o.above_threshold for o in self.outcomes) else 0

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "outcomes": [o.to_dict() for o in self.outcomes],
                "removed_partials": list(self.removed_partials), "interrupted_runs": list(self.interrupted_runs)}


def carrier_for(file: StoredFile, carriers: Sequence[CarrierConfig]) -> CarrierConfig | None:
    """The first carrier whose inbox sub-folder and file-name pattern fit the file."""
    name = file.relative.rsplit("/", 1)[-1]
    for carrier in carriers:
        if carrier.folder and not file.relative.startswith(carrier.folder + "/"):
            continue
        if fnmatch(name, carrier.pattern):
            return carrier
    return None


def reconcile_settings(config: PipelineConfig, carrier: CarrierConfig, profile: Any) -> Any:
    """The engine settings for a carrier (same rules as the ``reconcile`` command's options)."""
    from recon_core.commands.reconcile import settings_from_args

    args = argparse.Namespace(rate=carrier.rate, rate_deck=Path(carrier.rate_deck) if carrier.rate_deck else None,
                              use_invoice_rate=carrier.use_invoice_rate,
                              cost_pct_tolerance=config.cost_pct_tolerance,
                              cost_abs_tolerance=config.cost_abs_tolerance, increment=carrier.increment,
                              time_tolerance=config.time_tolerance_s)
    settings = settings_from_args(args, profile)
    from dataclasses import replace

    return replace(settings, match=replace(settings.match, max_tolerance_s=config.max_tolerance_s))


def base_settings(config: PipelineConfig, carrier: CarrierConfig, profile: Any, settings: Any,
                  period_kind: str) -> dict[str, Any]:
    """Everything that decides a result except the inputs (hashed for the skip check)."""
    return {"reconcile": settings.to_dict(), "time_tolerance_s": config.time_tolerance_s,
            "profile": profile.to_dict(), "carrier": carrier.to_dict(), "period_kind": period_kind,
            "margin_s": config.edge_margin_s,
            "genesys": {"region": config.genesys.region, "base_url": config.genesys.base_url,
                        "number_region": config.genesys.number_region}}


def _hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def already_reconciled(store: Any, carrier: str, invoice_sha: str, settings_digest: str) -> str | None:
    """The newest complete run of this carrier, invoice content and settings, if any."""
    row = execute(store.con, "SELECT r.run_id FROM runs r JOIN run_inputs i ON i.run_id = r.run_id "
                             "WHERE r.status = 'complete' AND r.kind = ? AND r.carrier = ? AND r.config_hash = ? "
                             "AND i.side = 'invoice' AND i.sha256 = ? ORDER BY r.started_at DESC LIMIT 1",
                  [KIND_PIPELINE, carrier, settings_digest, invoice_sha]).fetchone()
    return str(row[0]) if row else None


def invoice_starts(path: Path, profile: Any) -> list[datetime]:
    """Call start times (naive UTC) of an invoice file, read with its profile."""
    from recon_core.ingest import ingest_files
    from recon_core.sql import connect, quote_ident

    con = connect()
    try:
        ingest = ingest_files(profile, [path], con=con, table_prefix="period")
        rows = execute(con, f"SELECT start_time_utc FROM {quote_ident(ingest.canonical_table)} "
                            "WHERE start_time_utc IS NOT NULL").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def new_run_id(store: Any, created: datetime, seed: str) -> tuple[str, datetime]:
    """``<UTC time>-<10 hex>``, unique in the store (a second later when the id is taken)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:10]
    while True:
        run_id = f"{created:%Y%m%dT%H%M%SZ}-{digest}"
        row = execute(store.con, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if not row or not row[0]:
            return run_id, created
        created += timedelta(seconds=1)


def genesys_client(config: PipelineConfig, environ: Mapping[str, str]) -> Any:
    """A Genesys Cloud client from the config's region and the credential variables it names."""
    from recon_core.genesys.client import GenesysClient
    from recon_core.genesys.regions import resolve_endpoints
    from recon_core.genesys.settings import CLIENT_ID_ENV, CLIENT_SECRET_ENV, ClientCredentials, ClientSettings

    g = config.genesys
    credentials = ClientCredentials.from_env({CLIENT_ID_ENV: environ.get(g.client_id_env, ""),
                                              CLIENT_SECRET_ENV: environ.get(g.client_secret_env, "")})
    settings = ClientSettings(requests_per_minute=g.max_rpm, poll_initial_seconds=g.poll_initial_s,
                              max_wait_seconds=g.max_wait_s)
    return GenesysClient(resolve_endpoints(g.region, g.base_url), credentials, settings)


GENESYS_DAY_TABLES = ("genesys_fetched_days", "genesys_conversations", "genesys_legs", "genesys_held_back")


def _contiguous(days: Sequence[Any]) -> list[tuple[Any, Any]]:
    """``[d1, d2, d3, d7]`` -> ``[(d1, d3), (d7, d7)]``."""
    ranges: list[tuple[Any, Any]] = []
    for day in days:
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def merge_fetched_days_sql(table: str) -> tuple[str, str]:
    """Replace the main store's rows of the fetched days by the scratch store's (DELETE, INSERT)."""
    from recon_core.sql import quote_ident

    name = quote_ident(table)
    return (f"DELETE FROM main.{name} WHERE (org_key, filter_hash, day) IN "
            f"(SELECT org_key, filter_hash, day FROM recon_fetched.genesys_fetched_days)",
            f"INSERT INTO main.{name} SELECT * FROM recon_fetched.{name}")


def fetch_period_legs(config: PipelineConfig, store_path: Path, window: tuple[datetime, datetime],
                      environ: Mapping[str, str], progress: Progress | None,
                      client_factory: Callable[[PipelineConfig, Mapping[str, str]], Any] | None = None,
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The canonical Genesys legs starting in ``window``: days already in the store are reused, the
    others fetched into a private scratch store and merged into the store in one short transaction
    (so the app can keep reading the store while Genesys Cloud prepares the jobs).

    Raises:
        GenesysDataPendingError: some day is still being prepared by Genesys Cloud.
        Genesys* errors from the fetch.
    """
    from recon_core.genesys.day_store import completed_days, stored_legs
    from recon_core.genesys.fetch import VOICE_ONLY, days_in_range, fetch_conversation_days
    from recon_core.store import open_store

    say = progress or (lambda _f, _m: None)
    first, last = utc_days(*window)
    days = days_in_range(first, last)
    factory = client_factory or genesys_client
    filter_hash = VOICE_ONLY.filter_hash
    with factory(config, environ) as client:
        org_key, _ = client.organization()
        with store_session(store_path) as store:
            done = completed_days(store, org_key, filter_hash, first, last)
        missing = [d for d in days if d not in done]
        if missing:
            with tempfile.TemporaryDirectory(prefix="recon_fetch_") as tmp:
                scratch = Path(tmp) / "fetch.duckdb"
                with open_store(scratch) as private:
                    fetched = 0
                    for a, b in _contiguous(missing):
                        span = (b - a).days + 1

                        def report(f: float, m: str, before: int = fetched, span: int = span) -> None:
                            say((before + f * span) / len(missing), m)

                        result = fetch_conversation_days(client, private, a, b, details_filter=VOICE_ONLY,
                                                         default_region=config.genesys.number_region,
                                                         progress=report)
                        fetched += span
                        if result.pending_days:
                            pending = ", ".join(str(d) for d in result.pending_days)
                            raise GenesysDataPendingError(
                                f"Genesys Cloud is still preparing the conversation details of {pending}; the run "
                                "is not complete: run the pipeline again later", operation="jobs")
                with store_session(store_path) as store:
                    from recon_core.sql import quote_literal

                    execute(store.con, f"ATTACH {quote_literal(str(scratch))} AS recon_fetched (READ_ONLY)")
                    try:
                        with store.transaction() as con:
                            for table in GENESYS_DAY_TABLES:
                                for sql in merge_fetched_days_sql(table):
                                    execute(con, sql)
                    finally:
                        execute(store.con, "DETACH recon_fetched")
    say(1.0, f"{len(missing)} day(s) fetched, {len(days) - len(missing)} reused from the store")
    with store_session(store_path) as store:
        extraction = stored_legs(store, org_key, filter_hash, days)
    legs = extraction.legs
    starts = pd.to_datetime(legs["start_time_utc"])
    kept = legs[(starts >= window[0]) & (starts < window[1])].reset_index(drop=True)
    info = {"org_key": org_key, "filter_hash": filter_hash, "days": [str(first), str(last)],
            "days_fetched": len(missing), "days_reused": len(days) - len(missing),
            "legs_fetched": len(legs), "legs_in_window": len(kept), "held_back": len(extraction.held_back)}
    return kept, info


def _open_calls(store: Any, carrier: str, period: Period, run_id: str) -> list[tuple[str, BoundaryCall]]:
    rows = execute(store.con, "SELECT run_id, side, record_id, call_id, start_utc, direction, far_end_number, edge_utc "
                              "FROM run_boundary_calls WHERE carrier = ? AND status = ? AND run_id <> ? "
                              "AND list_contains(?, edge_utc) AND period <> ? ORDER BY run_id, side, record_id",
                   [carrier, STATUS_OPEN, run_id, [period.start, period.end], period.label]).fetchall()
    return [(r[0], BoundaryCall(r[1], r[2], r[3], r[4], r[5], r[6], r[7])) for r in rows]


def _boundary_statements(run_id: str, carrier: str, period: Period, calls: Sequence[BoundaryCall],
                         rechecked: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    statements: list[tuple[str, list[Any]]] = []
    for call in calls:
        statements.append(("INSERT OR REPLACE INTO run_boundary_calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [run_id, carrier, period.label, call.edge_utc, call.side, call.record_id, call.call_id,
                            call.start_utc, call.direction, call.far_end_number, STATUS_OPEN, None, None]))
    for outcome in rechecked:
        statements.append(("UPDATE run_boundary_calls SET status = ?, resolved_by_run = ?, outcome = ? "
                           "WHERE run_id = ? AND side = ? AND record_id = ?",
                           [outcome.status, run_id, outcome.note, outcome.run_id, outcome.side, outcome.record_id]))
    return statements


def _billing_alert(config: PipelineConfig, carrier: str, period: Period, invoice: StoredFile, sha: str,
                   summary: Mapping[str, Any]) -> dict[str, Any]:
    from recon_core.alerts import ALERT_TYPE_BILLING, build_alert

    rate = float(summary["rates"]["discrepancy_rate_pct"])
    counts, money = summary.get("counts", {}), summary.get("money", {})
    metrics = [{"metric_name": "discrepancy_rate_pct", "value": rate, "threshold_percent": config.alert_threshold_pct}]
    # No run id or time in the payload: a forced re-run of the same invoice is the same finding (dedup).
    return build_alert(ALERT_TYPE_BILLING, config.alert_severity, metrics, environment=config.alert_environment,
                       carrier=carrier, period=period.label, invoice_file=invoice.relative, invoice_sha256=sha,
                       discrepancy_rate_pct=rate, threshold_pct=config.alert_threshold_pct,
                       disputed_amount=str(money.get("disputed_amount")), currency=money.get("currency"),
                       counts={k: v for k, v in counts.items() if isinstance(v, int)})


def send_billing_alert(store_path: Path, run_id: str, payload: Mapping[str, Any],
                       environ: Mapping[str, str]) -> str:
    """Deliver the alert unless already sent (dedup by alert key); link it to the run. Returns a status line."""
    from recon_core.alerts import alert_already_sent, alert_channels_from_env, alert_key, deliver_alert, record_alert

    key = alert_key(payload)
    with store_session(store_path) as store:
        sent_before = alert_already_sent(store.con, key)
    if sent_before:
        with store_session(store_path) as store:
            link_alert(store, run_id, key, True)
        return f"alert {key[:12]} already sent for this finding; not sent again"
    channels = alert_channels_from_env(environ)
    results = deliver_alert(payload, channels)
    with store_session(store_path) as store, store.transaction() as con:
        record_alert(con, payload, results, source=ALERT_SOURCE, source_ref=run_id)
    delivered = any(r.ok for r in results)
    with store_session(store_path) as store:
        link_alert(store, run_id, key, delivered)
    if not results:
        return f"alert {key[:12]} recorded; no alert channel configured (RECON_ALERT_WEBHOOK_URL, RECON_SMTP_HOST)"
    states = ", ".join(f"{r.channel} {'ok' if r.ok else 'failed: ' + str(r.error)}" for r in results)
    return f"alert {key[:12]} {'sent' if delivered else 'NOT delivered'} ({states})"


class _Run:
    """One invoice file through the pipeline (internal: holds the per-file context)."""

    def __init__(self, config: PipelineConfig, store_path: Path, inbox: Location, outbox: Location,
                 file: StoredFile, carrier: CarrierConfig, staging: Path, *, period_label: str | None, force: bool,
                 environ: Mapping[str, str], progress: Progress, checkpoint: Checkpoint,
                 client_factory: Callable[[PipelineConfig, Mapping[str, str]], Any] | None) -> None:
        self.config, self.store_path, self.inbox, self.outbox = config, store_path, inbox, outbox
        self.file, self.carrier, self.staging = file, carrier, staging
        self.period_label, self.force, self.environ = period_label, force, environ
        self.progress, self.checkpoint, self.client_factory = progress, checkpoint, client_factory
        self.run_id: str | None = None

    def say(self, fraction: float, message: str) -> None:
        self.progress(fraction, f"{self.file.relative}: {message}")

    def execute(self) -> FileOutcome:
        from recon_core.reconcile import reconcile
        from recon_core.reports.reconciliation import write_reconciliation_reports

        config, carrier = self.config, self.carrier
        profile = load_mapping_profile(carrier)
        settings = reconcile_settings(config, carrier, profile)
        base = base_settings(config, carrier, profile, settings,
                             period_from_label(self.period_label).kind if self.period_label else config.period)
        digest = _hash(base)
        self.say(0.02, "downloading")
        local = self.inbox.download(self.file.relative, self.staging / "in" / self.file.relative.rsplit("/", 1)[-1])
        sha = file_sha256(local)
        with store_session(self.store_path) as store:
            previous = already_reconciled(store, carrier.name, sha, digest)
        if previous and not self.force:
            return FileOutcome(self.file.uri, STATUS_SKIPPED, f"skipped: already reconciled with the same SHA-256 "
                               f"and settings in run {previous} (use --force to run it again)",
                               carrier.name, previous)
        self.say(0.05, "reading the invoice to find its period")
        kind = period_from_label(self.period_label).kind if self.period_label else config.period
        period = detect_period(invoice_starts(local, profile), kind, carrier.cycle_offset_minutes)
        if self.period_label and period.label != self.period_label:
            return FileOutcome(self.file.uri, STATUS_SKIPPED, f"skipped: the invoice covers period {period.label} "
                               f"(billing cycle from {carrier.cycle_start_utc} UTC), not {self.period_label}",
                               carrier.name, None, period.label)
        self.checkpoint("ingested")
        margin = timedelta(seconds=config.edge_margin_s)
        window = (period.start - margin, period.end + margin)
        legs, fetch_info = fetch_period_legs(config, self.store_path, window, self.environ,
                                             lambda f, m: self.say(0.1 + 0.4 * f, m), self.client_factory)
        self.checkpoint("fetched")
        run_dir = self.staging / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        legs_path = self.staging / CDR_LEGS_FILE
        legs.to_parquet(legs_path, index=False)
        edges = PeriodEdges(period.start, period.end, config.time_tolerance_s)
        recorded = {**base, "period_boundary": edges.to_dict(), "period": period.to_dict(), "fetch": fetch_info}
        inputs = (RunInput("invoice", self.file.relative.rsplit("/", 1)[-1], sha, local.stat().st_size,
                           self.file.uri),
                  RunInput("cdr", CDR_LEGS_FILE, file_sha256(legs_path), legs_path.stat().st_size, None))
        relative = f"{period.label}/{carrier.name}"
        with store_session(self.store_path) as store:
            created = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
            self.run_id, created = new_run_id(store, created, f"{digest}:{sha}:{carrier.name}")
            reports_rel = f"{relative}/{self.run_id}"
            inputs = (inputs[0], RunInput("cdr", CDR_LEGS_FILE, inputs[1].sha256, inputs[1].bytes,
                                          self.outbox.uri(f"{reports_rel}/{CDR_LEGS_FILE}")))
            begin_run(store, self.run_id, kind=KIND_PIPELINE, settings=recorded, inputs=inputs,
                      period=period.label, period_start=period.start, period_end=period.end, carrier=carrier.name,
                      config_hash=digest, outbox_uri=self.outbox.uri(reports_rel))
        self.say(0.55, f"reconciling period {period.label} ({len(legs)} Genesys legs)")
        _, result = reconcile([local], [legs_path], profile, settings,
                              progress=lambda f, m: self.say(0.55 + 0.3 * f, m))
        stamp = created.isoformat() + "Z"
        summary = {**result.summary, "run_id": self.run_id, "created_utc": stamp,
                   "inputs": [{"side": i.side, "file": i.uri or i.file_name, "bytes": i.bytes, "sha256": i.sha256}
                              for i in inputs],
                   "period": period.to_dict(), "carrier": carrier.name}
        from dataclasses import replace

        result = apply_period_boundary(replace(result, summary=summary), edges)
        with store_session(self.store_path, read_only=False) as store:
            open_calls = _open_calls(store, carrier.name, period, self.run_id)
        rechecked = recheck_open_calls(open_calls, result, config.time_tolerance_s)
        result.summary["period_boundary"]["rechecked"] = [o.to_dict() for o in rechecked]
        self.checkpoint("reconciled")
        self.say(0.88, "writing the reports")
        write_reconciliation_reports(result, run_dir)
        shutil.copyfile(legs_path, run_dir / CDR_LEGS_FILE)
        (run_dir / RUN_FILE).write_text(json.dumps({"run_id": self.run_id, "period": period.to_dict(),
                                                    "carrier": carrier.name, "invoice": self.file.uri,
                                                    "invoice_sha256": sha}, indent=1) + "\n", encoding="utf-8")
        self.say(0.92, "publishing to the outbox")
        reports_uri = self.outbox.publish_folder(run_dir, reports_rel, self.checkpoint, marker=RUN_FILE)
        self.checkpoint("published")
        calls = boundary_calls(result, edges)
        with store_session(self.store_path) as store:
            complete_run(store, self.run_id, result, outbox_uri=reports_uri,
                         extra_statements=_boundary_statements(self.run_id, carrier.name, period, calls, rechecked))
        self.checkpoint("recorded")
        rate = float(result.summary["rates"]["discrepancy_rate_pct"])
        above = rate > config.alert_threshold_pct
        alert_line = None
        if above and config.alerts_enabled:
            payload = _billing_alert(config, carrier.name, period, self.file, sha, result.summary)
            alert_line = send_billing_alert(self.store_path, self.run_id, payload, self.environ)
        counts = result.summary["counts"]
        message = (f"period {period.label}: matched {counts['matched']}, discrepancy rate {rate}% "
                   f"(threshold {config.alert_threshold_pct}%), period boundary {counts.get('PERIOD_BOUNDARY', 0)}, "
                   f"disputed {result.summary['money']['disputed_amount']} {result.summary['money']['currency']}")
        if rechecked:
            message += f"; re-checked {len(rechecked)} call(s) left open at the edge by earlier runs"
        self.say(1.0, "done")
        return FileOutcome(self.file.uri, STATUS_DONE, message, carrier.name, self.run_id, period.label, rate, above,
                           reports_uri, alert_line)


def mark_interrupted_runs(store: Any) -> list[str]:
    """Pipeline runs still ``running`` when a new pipeline run starts died mid-way: mark them ``failed``.

    (One pipeline runs at a time: schedule it with ``flock`` or a systemd timer, see the README.)
    """
    rows = execute(store.con, "SELECT run_id FROM runs WHERE kind = ? AND status = 'running' ORDER BY run_id",
                   [KIND_PIPELINE]).fetchall()
    for (run_id,) in rows:
        fail_run(store, run_id, "interrupted: the run stopped before it was complete (nothing was published); "
                                "its invoice is processed again by this run")
    return [r[0] for r in rows]


def run_pipeline(config: PipelineConfig, *, period: str | None = None, force: bool = False,
                 progress: Progress | None = None, checkpoint: Checkpoint | None = None,
                 environ: Mapping[str, str] | None = None,
                 client_factory: Callable[[PipelineConfig, Mapping[str, str]], Any] | None = None,
                 ) -> PipelineResult:
    """Process every invoice in the inbox (see the module doc). ``period``: ``2026-10`` or ``2026-10-31``.

    ``checkpoint(step)`` is called between steps (tests inject a crash there).
    Raises only for errors that stop everything (store unusable, inbox unreadable); a file's own
    problem becomes a ``failed`` outcome.
    """
    env = os.environ if environ is None else environ
    say = progress or (lambda _f, _m: None)
    step = checkpoint or (lambda _s: None)
    store_path = Path(config.store_path) if config.store_path else default_store_path(env)
    inbox, outbox = Location(config.inbox_url), Location(config.outbox_url)
    with store_session(store_path) as store:  # creates / migrates the store before anything else
        interrupted = mark_interrupted_runs(store)
    removed = tuple(outbox.remove_partials())
    files = inbox.list_files()
    outcomes: list[FileOutcome] = []
    say(0.0, f"{len(files)} file(s) in the inbox {config.inbox_url}")
    for n, file in enumerate(files):
        carrier = carrier_for(file, config.carriers)
        if carrier is None:
            outcomes.append(FileOutcome(file.uri, STATUS_UNASSIGNED, "no carrier's folder/pattern fits this file; "
                                        "left alone"))
            continue

        def scaled(fraction: float, message: str, n: int = n) -> None:
            say((n + fraction) / len(files), message)

        staging = Path(tempfile.mkdtemp(prefix="recon_pipeline_"))
        job = _Run(config, store_path, inbox, outbox, file, carrier, staging, period_label=period, force=force,
                   environ=env, progress=scaled, checkpoint=step, client_factory=client_factory)
        try:
            outcomes.append(job.execute())
        except ReconError as exc:
            logger.warning("%s failed: %s", file.uri, exc)
            if job.run_id:
                with store_session(store_path) as store:
                    fail_run(store, job.run_id, str(exc))
            outcomes.append(FileOutcome(file.uri, STATUS_FAILED, f"failed: {exc}", carrier.name, job.run_id))
        except Exception as exc:
            if job.run_id:
                with store_session(store_path) as store:
                    fail_run(store, job.run_id, f"internal error: {exc!r}")
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    say(1.0, "all files done")
    return PipelineResult(tuple(outcomes), removed, tuple(interrupted))
