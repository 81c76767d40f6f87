"""Fixtures for the run-store tests: one small sandbox month slice (invoice with known faults + CDR)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from recon_core.profiles import MappingProfile, load_carrier_profile
from recon_core.rating import rating_settings_from_dict
from recon_core.reconcile import ReconcileSettings, ReconResult, reconcile
from recon_core.sandbox.export import export_conversations
from recon_core.sandbox.invoice import InvoiceSpec, export_invoice


@dataclass(frozen=True)
class SandboxCase:
    """A Twilio invoice of five sandbox days, its manifest, the Genesys conversations, settings, profile."""

    invoice: Path
    manifest: dict
    conversations: Path
    settings: ReconcileSettings
    profile: MappingProfile

    def reconcile(self, invoice: Path | None = None) -> ReconResult:
        _, result = reconcile([invoice or self.invoice], [self.conversations], self.profile, self.settings)
        return result


@pytest.fixture(scope="session")
def case(tmp_path_factory: pytest.TempPathFactory) -> SandboxCase:
    folder = tmp_path_factory.mktemp("sandbox_case")
    spec = InvoiceSpec(carrier="twilio", start=date(2026, 10, 5), end=date(2026, 10, 9), conversations_per_day=60)
    invoice = folder / "twilio_2026-10.csv"
    export_invoice(spec, invoice)
    conversations = folder / "conversations.json"
    export_conversations(spec.org_spec(), conversations)
    manifest = json.loads(invoice.with_name(invoice.name + ".manifest.json").read_text())
    settings = ReconcileSettings(rating=rating_settings_from_dict(manifest["rating_settings"]))
    return SandboxCase(invoice, manifest, conversations, settings, load_carrier_profile("twilio"))


@pytest.fixture(scope="session")
def result(case: SandboxCase) -> ReconResult:
    return case.reconcile()


@dataclass(frozen=True)
class Reissue:
    """The carrier's re-issued invoice: one over-billed line corrected, one phantom call credited (removed)."""

    invoice: Path
    corrected: str
    corrected_leg: str
    removed: str


def reissue_invoice(case: SandboxCase, out: Path) -> Reissue:
    import csv

    over = next(r for r in case.manifest["rows"] if r.get("fault") == "over_billed")
    phantom = next(r for r in case.manifest["rows"] if r["expected_category"] == "MISSING_IN_CDR")
    with case.invoice.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    kept = []
    for row in rows:
        if row["sid"] == phantom["record_id"]:
            continue
        if row["sid"] == over["record_id"]:
            row["price"] = "-" + over["expected_cost"]  # Twilio writes charges negative
        kept.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return Reissue(out, over["record_id"], over["cdr_record_id"], phantom["record_id"])


@pytest.fixture(scope="session")
def reissue(case: SandboxCase, tmp_path_factory: pytest.TempPathFactory) -> Reissue:
    return reissue_invoice(case, tmp_path_factory.mktemp("reissued") / "twilio_2026-10_reissued.csv")
