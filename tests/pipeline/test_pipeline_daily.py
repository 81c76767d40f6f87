"""A daily invoice with ``--date``, and which carrier an inbox file belongs to."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pipeline_helpers import SANDBOX_ENV, make_month, sandbox_for, write_config

from recon_core.pipeline.config import CarrierConfig, load_config
from recon_core.pipeline.runner import carrier_for, run_pipeline
from recon_core.pipeline.storage import StoredFile

CARRIERS = (CarrierConfig("twilio", "twilio", folder="twilio", pattern="*.csv"),
            CarrierConfig("bandwidth", "bandwidth", pattern="bw_*.csv"),
            CarrierConfig("anything", "generic", folder="misc"))


@pytest.mark.parametrize(("relative", "expected"), [
    ("twilio/2026-10.csv", "twilio"),
    ("twilio/2026-10.xlsx", None),  # twilio's folder, but not its pattern; no other carrier fits
    ("bw_2026-10.csv", "bandwidth"),
    ("twilio/bw_2026-10.csv", "twilio"),  # first carrier that fits wins
    ("misc/deep/anything.json", "anything"),
    ("other/file.csv", None),
])
def test_the_carrier_of_an_inbox_file(relative: str, expected: str | None) -> None:
    found = carrier_for(StoredFile(relative, f"s3://b/{relative}", 1), CARRIERS)
    assert (found.name if found else None) == expected


def test_a_daily_invoice_runs_for_its_date_and_waits_for_others(tmp_path: Path) -> None:
    day = make_month(tmp_path / "gen", start=date(2026, 10, 5), end=date(2026, 10, 5), per_day=40)
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    (inbox / "twilio").mkdir(parents=True)
    (inbox / "twilio" / "twilio_2026-10-05.csv").write_bytes(day.invoice.read_bytes())
    with sandbox_for(day) as url:
        config = load_config(write_config(tmp_path / "recon.toml", inbox=str(inbox), outbox=str(outbox),
                                          store=tmp_path / "recon.duckdb", base_url=url, threshold=100.0))
        other_day = run_pipeline(config, period="2026-10-06", environ=SANDBOX_ENV)
        its_day = run_pipeline(config, period="2026-10-05", environ=SANDBOX_ENV)
    waiting = other_day.outcomes[0]
    assert waiting.status == "skipped" and "covers period 2026-10-05" in waiting.message and waiting.run_id is None
    done = its_day.outcomes[0]
    assert done.status == "complete" and done.period == "2026-10-05", done.message
    assert (outbox / "2026-10-05" / "twilio" / str(done.run_id) / "summary.json").is_file()
    assert its_day.exit_code == 0


def test_the_store_stays_readable_while_genesys_days_are_fetched(tmp_path: Path) -> None:
    from recon_core.errors import StoreBusyError
    from recon_core.runs.access import open_store_waiting

    day = make_month(tmp_path / "gen", start=date(2026, 10, 6), end=date(2026, 10, 6), per_day=30)
    inbox = tmp_path / "inbox"
    (inbox / "twilio").mkdir(parents=True)
    (inbox / "twilio" / "day.csv").write_bytes(day.invoice.read_bytes())
    store = tmp_path / "recon.duckdb"
    reads: list[str] = []

    def read_during(_fraction: float, message: str) -> None:
        if "day 1/" in message and "job" in message:  # a Genesys job is being waited for right now
            try:
                with open_store_waiting(store, read_only=True, timeout_s=0.5):
                    reads.append(message)
            except StoreBusyError:
                reads.append("BUSY")

    with sandbox_for(day) as url:
        config = load_config(write_config(tmp_path / "recon.toml", inbox=str(inbox), outbox=str(tmp_path / "out"),
                                          store=store, base_url=url, threshold=100.0))
        result = run_pipeline(config, period="2026-10-06", environ=SANDBOX_ENV, progress=read_during)
    assert result.outcomes[0].status == "complete", result.outcomes[0].message
    assert reads and "BUSY" not in reads
