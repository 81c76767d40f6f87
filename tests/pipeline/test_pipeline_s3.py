"""Acceptance: the pipeline with an S3-compatible server on loopback (moto) as inbox and outbox, the
sandbox Genesys Cloud as CDR source and a local webhook for alerts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from loopback_webhook import WebhookRecorder
from pipeline_helpers import SANDBOX_ENV, add_edge_call, make_month, sandbox_for, write_config

from recon_core.pipeline.config import load_config
from recon_core.pipeline.runner import run_pipeline
from recon_core.runs.access import store_session
from recon_core.runs.records import list_runs
from recon_core.sql import execute

pytestmark = pytest.mark.slow

CSV_FILES = ("MatchedCalls.csv", "Discrepancies.csv", "ExcludedRows.csv", "RejectedRows.csv")


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """moto's S3 server on 127.0.0.1 (a free port) with buckets ``invoices`` and ``reports``."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import requests

    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)  # moto keeps state per process: start empty
    client = boto3.client("s3")
    client.create_bucket(Bucket="invoices")
    client.create_bucket(Bucket="reports")
    try:
        yield client
    finally:
        server.stop()


def _keys(client, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _body(client, key: str) -> bytes:  # type: ignore[no-untyped-def]
    return client.get_object(Bucket="reports", Key=key)["Body"].read()


def test_a_month_from_s3_to_s3_skip_force_and_one_alert(tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    month = make_month(tmp_path / "gen", per_day=10)
    invoice = tmp_path / "upload" / month.invoice.name
    edge_sid = add_edge_call(month.invoice, invoice, datetime(2026, 11, 1))
    s3.upload_file(str(invoice), "invoices", f"inbox/twilio/{invoice.name}")
    store = tmp_path / "recon.duckdb"
    with sandbox_for(month) as url, WebhookRecorder() as hook:
        config = load_config(write_config(tmp_path / "recon.toml", inbox="s3://invoices/inbox",
                                          outbox="s3://reports/out", store=store, base_url=url, threshold=2.0))
        env = {**os.environ, **SANDBOX_ENV, "RECON_ALERT_WEBHOOK_URL": hook.url}
        first = run_pipeline(config, environ=env)
        again = run_pipeline(config, environ=env)
        forced = run_pipeline(config, force=True, environ=env)
        alerts = list(hook.received)

    done = first.outcomes[0]
    assert done.status == "complete", done.message
    assert first.exit_code == 1 and done.above_threshold  # the sandbox's faults are above 2 %
    prefix = f"out/2026-10/twilio/{done.run_id}/"
    assert done.reports_uri == f"s3://reports/{prefix.rstrip('/')}"
    keys = _keys(s3, "reports")
    assert {k.rsplit("/", 1)[-1] for k in keys if k.startswith(prefix)} >= {*CSV_FILES, "summary.json",
                                                                             "reconciliation.xlsx", "run.json"}
    assert not [k for k in keys if ".partial-" in k]
    discrepancies = _body(s3, prefix + "Discrepancies.csv").decode()
    assert next(line for line in discrepancies.splitlines() if edge_sid in line).startswith("PERIOD_BOUNDARY,")

    assert again.outcomes[0].status == "skipped" and "already reconciled" in again.outcomes[0].message
    assert again.exit_code == 0

    redo = forced.outcomes[0]
    assert redo.status == "complete" and redo.run_id != done.run_id
    for name in CSV_FILES:
        assert _body(s3, prefix + name) == _body(s3, f"out/2026-10/twilio/{redo.run_id}/{name}"), name
    first_summary = json.loads(_body(s3, prefix + "summary.json"))
    redo_summary = json.loads(_body(s3, f"out/2026-10/twilio/{redo.run_id}/summary.json"))
    for section in ("counts", "money", "rates", "ledger", "settings"):
        assert first_summary[section] == redo_summary[section], section
    assert [(i["side"], i["sha256"]) for i in first_summary["inputs"]] == [
        (i["side"], i["sha256"]) for i in redo_summary["inputs"]]  # same bytes read (the CDR copy lives per run)

    # one webhook alert for the finding: the forced re-run is the same finding, not sent twice
    assert len(alerts) == 1
    payload = alerts[0]
    assert payload["alert_type"] == "BILLING_RECONCILIATION_DISCREPANCY"
    assert payload["period"] == "2026-10" and payload["carrier"] == "twilio"
    assert payload["discrepancy_rate_pct"] == done.discrepancy_rate_pct and payload["threshold_pct"] == 2.0
    assert "already sent" in (redo.alert or "")
    with store_session(store, read_only=True) as s:
        linked = execute(s.con, "SELECT run_id, sent FROM run_alerts ORDER BY created_at").fetchall()
        sent = execute(s.con, "SELECT count(*), bool_and(delivered) FROM alerts_sent").fetchone()
    assert [r[0] for r in linked] == [done.run_id, redo.run_id] and all(r[1] for r in linked)
    assert sent == (1, True)


class Crash(BaseException):
    """A crash in the middle of a run (not an error the pipeline handles)."""


def test_a_crash_mid_run_leaves_nothing_half_written(tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    month = make_month(tmp_path / "gen", per_day=4)
    s3.upload_file(str(month.invoice), "invoices", f"inbox/twilio/{month.invoice.name}")
    store = tmp_path / "recon.duckdb"
    uploads: list[str] = []

    def crash_on_third_upload(step: str) -> None:
        if step.startswith("uploading:"):
            uploads.append(step)
            if len(uploads) == 3:
                raise Crash(step)

    with sandbox_for(month) as url:
        config = load_config(write_config(tmp_path / "recon.toml", inbox="s3://invoices/inbox",
                                          outbox="s3://reports/out", store=store, base_url=url, threshold=100.0))
        env = {**os.environ, **SANDBOX_ENV}
        with pytest.raises(Crash):
            run_pipeline(config, environ=env, checkpoint=crash_on_third_upload)

        keys = _keys(s3, "reports")
        assert keys and all(".partial-" in k for k in keys), keys  # two files went up, under the temporary name
        with store_session(store, read_only=True) as s:
            runs = list_runs(s)
        assert [r.status for r in runs] == ["running"]  # never recorded complete

        after = run_pipeline(config, environ=env)
    crashed = runs[0].run_id
    assert after.interrupted_runs == (crashed,)
    assert after.removed_partials and all(".partial-" in p for p in after.removed_partials)
    redo = after.outcomes[0]
    assert redo.status == "complete", redo.message  # the invoice was not "already reconciled"
    keys = _keys(s3, "reports")
    assert not [k for k in keys if ".partial-" in k or crashed in k]
    assert all(k.startswith(f"out/2026-10/twilio/{redo.run_id}/") for k in keys)
    with store_session(store, read_only=True) as s:
        statuses = {r.run_id: r.status for r in list_runs(s)}
    assert statuses == {crashed: "failed", redo.run_id: "complete"}
