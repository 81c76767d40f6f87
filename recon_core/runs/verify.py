"""The auditor's check: re-run a recorded run from its input files with its recorded settings.

The given files must have the SHA-256 the run recorded; the result is computed again with the
recorded settings (and the recorded mapping profile, and the period-edge rule when the run had
one) and compared with the stored result call by call (:mod:`recon_core.runs.compare`) and
cell by cell (the four row tables as CSV text; source file names aside, since an auditor's
copy may be named differently).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError
from recon_core.reconcile import (
    DISCREPANCY_COLUMNS,
    EXCLUDED_COLUMNS,
    MATCHED_COLUMNS,
    REJECTED_COLUMNS,
    ReconcileSettings,
    file_sha256,
)
from recon_core.reports.csv_writer import write_csv
from recon_core.runs.boundary import PeriodEdges, apply_period_boundary
from recon_core.runs.compare import ResultDiff, diff_results
from recon_core.runs.records import RunRecord

Progress = Callable[[float, str], None]

TABLE_COLUMNS = {"matched": MATCHED_COLUMNS, "discrepancies": DISCREPANCY_COLUMNS, "excluded": EXCLUDED_COLUMNS,
                 "rejected": REJECTED_COLUMNS}
IGNORED_COLUMNS = ("invoice_source_file", "cdr_source_file", "source_file")


def reconcile_settings_from_dict(raw: Mapping[str, Any]) -> ReconcileSettings:
    """:class:`ReconcileSettings` from a summary's ``settings`` (classified at ``time_tolerance_s``).

    Raises:
        SettingsError: the recorded settings cannot be read back.
    """
    from recon_core.match.settings import MatchSettings
    from recon_core.rating import rating_settings_from_dict

    try:
        match_raw = dict(raw["match"])
        tolerance = float(raw.get("time_tolerance_s", match_raw.get("tolerance_s")))
        match = MatchSettings(tolerance_s=tolerance, max_tolerance_s=float(match_raw["max_tolerance_s"]),
                              key=tuple(match_raw["key"]), tie_breaker=tuple(match_raw["tie_breaker"]),
                              match_sip_call_id=bool(match_raw["match_sip_call_id"]),
                              match_call_id=bool(match_raw["match_call_id"]))
        rating = rating_settings_from_dict(raw["rating"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"the run's recorded settings cannot be read back ({exc!r})") from exc
    return ReconcileSettings(match=match, rating=rating, exclude_zero_duration=bool(raw.get("exclude_zero_duration",
                                                                                              True)))


def edges_from_dict(raw: Mapping[str, Any] | None) -> PeriodEdges | None:
    """The recorded period edges (``None`` when the run had no period-edge rule)."""
    if not raw:
        return None
    return PeriodEdges(datetime.fromisoformat(str(raw["start_utc"]).rstrip("Z")),
                       datetime.fromisoformat(str(raw["end_utc"]).rstrip("Z")), float(raw["tolerance_s"]))


@dataclass(frozen=True)
class VerifyOutcome:
    """The verdict: same result or not, and every difference found."""

    run_id: str
    hash_problems: tuple[str, ...]
    differences: tuple[str, ...]
    diff: ResultDiff

    @property
    def same(self) -> bool:
        return not self.hash_problems and not self.differences and self.diff.same

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "same": self.same, "hash_problems": list(self.hash_problems),
                "differences": list(self.differences), "diff": self.diff.to_dict()}


def hash_problems(record: RunRecord, invoice: Sequence[Path], cdr: Sequence[Path]) -> list[str]:
    """Each given file whose SHA-256 is not among the run's recorded inputs of that side, and vice versa."""
    problems = []
    for side, paths in (("invoice", invoice), ("cdr", cdr)):
        recorded = sorted(i.sha256 for i in record.inputs if i.side == side)
        given = {}
        for path in paths:
            files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
            for file in files:
                given[str(file)] = file_sha256(file)
        for name, digest in given.items():
            if digest not in recorded:
                problems.append(f"{side} file {name} has SHA-256 {digest}, which the run did not read "
                                f"(recorded: {', '.join(recorded) or 'none'})")
        missing = sorted(set(recorded) - set(given.values()))
        for digest in missing:
            names = [i.file_name for i in record.inputs if i.sha256 == digest]
            problems.append(f"the run also read {side} file {names[0] if names else '?'} (SHA-256 {digest}), "
                            "which was not given")
    return problems


def _csv_texts(result: Any, folder: Path) -> dict[str, bytes]:
    texts = {}
    for name, columns in TABLE_COLUMNS.items():
        kept = [c for c in columns if c not in IGNORED_COLUMNS]
        path = folder / f"{name}.csv"
        write_csv(path, getattr(result, name), columns=kept)
        texts[name] = path.read_bytes()
    return texts


def cell_differences(stored: Any, again: Any) -> list[str]:
    """The row tables whose CSV text differs (source file names aside), with the first differing line."""
    with tempfile.TemporaryDirectory(prefix="recon_verify_") as tmp:
        a_dir, b_dir = Path(tmp) / "a", Path(tmp) / "b"
        a_dir.mkdir()
        b_dir.mkdir()
        a, b = _csv_texts(stored, a_dir), _csv_texts(again, b_dir)
    lines = []
    for name in TABLE_COLUMNS:
        if a[name] == b[name]:
            continue
        la, lb = a[name].decode().splitlines(), b[name].decode().splitlines()
        first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
        lines.append(f"{name}: {len(la) - 1} rows recorded, {len(lb) - 1} now; first difference at row {first}: "
                     f"recorded {la[first] if first < len(la) else '(none)'!r}, now "
                     f"{lb[first] if first < len(lb) else '(none)'!r}")
    return lines


def verify_result(record: RunRecord, stored: Any, invoice: Sequence[Path], cdr: Sequence[Path],
                  profile: Any, *, progress: Progress | None = None) -> VerifyOutcome:
    """Re-run ``record`` on the given files with ``profile`` and compare with its ``stored`` result."""
    from recon_core.reconcile import reconcile

    problems = hash_problems(record, invoice, cdr)
    recorded = record.settings.get("reconcile", record.settings)
    settings = reconcile_settings_from_dict(recorded)
    _, again = reconcile(list(invoice), list(cdr), profile, settings, progress=progress)
    edges = edges_from_dict(record.settings.get("period_boundary"))
    if edges is not None:
        again = apply_period_boundary(again, edges)
    return VerifyOutcome(record.run_id, tuple(problems), tuple(cell_differences(stored, again)),
                         diff_results(stored, again))
