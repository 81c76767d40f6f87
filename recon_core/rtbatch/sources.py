"""Both sides as one tidy shape, from Genesys aggregate answers or from files.

A *tidy* table has the columns :data:`TIDY_COLUMNS` (``interval_start``, ``interval_end``
UTC, ``queue_id``, ``media_type``, ``metric``, ``value``); real-time snapshots add
``captured_at`` (:data:`SNAPSHOT_COLUMNS`). Metric names are those of the registry
(:mod:`recon_core.rtbatch.metrics`); status metrics carry the status after a colon. ``queue_id``
and ``media_type`` are ``""`` where the source has no such dimension (user aggregates are
org-wide).

* :func:`tidy_from_response` turns a ``ConversationAggregateQueryResponse``,
  ``UserAggregateQueryResponse`` or ``QueueObservationQueryResponse`` body into tidy rows;
* :func:`read_tidy_csv` reads a tidy CSV (snapshots when it has ``captured_at``);
* :func:`read_batch_file` reads a batch file: the API's aggregate response JSON exactly as
  returned (one object, or a list of them) or a tidy CSV.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pandas as pd

from recon_core.errors import InputFileError, SettingsError
from recon_core.rtbatch.metrics import METRIC_REGISTRY, STATUS_METRICS

logger = logging.getLogger(__name__)

TIDY_COLUMNS = ("interval_start", "interval_end", "queue_id", "media_type", "metric", "value")
SNAPSHOT_COLUMNS = ("captured_at", *TIDY_COLUMNS)
GRANULARITIES = {"PT15M": 15, "PT30M": 30, "PT1H": 60}


def granularity_minutes(granularity: str) -> int:
    """``PT15M`` / ``PT30M`` / ``PT1H`` -> minutes.

    Raises:
        SettingsError: any other granularity.
    """
    key = str(granularity).strip().upper()
    if key not in GRANULARITIES:
        raise SettingsError(f"granularity {granularity!r} is not supported; use one of {', '.join(GRANULARITIES)}")
    return GRANULARITIES[key]


def iso_z(when: datetime | pd.Timestamp) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: ``2026-10-05T10:00:00.000Z``."""
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant (``Z``, offset, or naive = UTC) -> aware UTC datetime.

    Raises:
        ValueError: not an instant.
    """
    value = str(text).strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_interval_text(text: str) -> tuple[datetime, datetime]:
    """``start/end`` (ISO 8601) -> aware UTC datetimes. Raises ValueError."""
    left, _, right = str(text).partition("/")
    if not right:
        raise ValueError(f"interval {text!r} must look like 2026-10-05T10:00:00.000Z/2026-10-05T10:30:00.000Z")
    return parse_instant(left), parse_instant(right)


def floor_interval(when: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long UTC interval containing ``when``."""
    when = when.astimezone(UTC)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(minutes=minutes)
    return day + ((when - day) // step) * step


def empty_tidy(snapshots: bool = False) -> pd.DataFrame:
    columns = SNAPSHOT_COLUMNS if snapshots else TIDY_COLUMNS
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return normalize_tidy(frame)


def normalize_tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with UTC timestamps, text dimensions (``""`` for none) and float values."""
    out = frame.copy()
    for column in ("captured_at", "interval_start", "interval_end"):
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True)
    for column in ("queue_id", "media_type", "metric"):
        out[column] = out[column].fillna("").astype(str).str.strip()
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype("float64")
    return out


# ---------------------------------------------------------------------- API answers

_STAT_SPECS: dict[str, list[tuple[str, str, float]]] = {}
for _spec in METRIC_REGISTRY:
    if _spec.derivation != "numerator/denominator" and _spec.api_metric:
        _STAT_SPECS.setdefault(_spec.api_metric, []).append((_spec.name, _spec.stat, _spec.scale))


def _resolve_presence(qualifier: str, mappings: Mapping[str, Any]) -> str:
    """Org presence id -> its system presence via ``systemToOrganizationMappings`` (else unchanged)."""
    for system, ids in mappings.items():
        if isinstance(ids, list) and qualifier in ids:
            return str(system)
    return qualifier


def _metric_rows(entry: Mapping[str, Any], mappings: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(registry metric, value) pairs from one ``{"metric", "qualifier"?, "stats"}`` entry."""
    name = str(entry.get("metric", ""))
    stats = entry.get("stats") or {}
    out: list[tuple[str, float]] = []
    if name in STATUS_METRICS:
        qualifier = str(entry.get("qualifier") or "")
        if name in ("tOrganizationPresence", "oUserPresences"):
            qualifier = _resolve_presence(qualifier, mappings)
        stat = "sum" if name.startswith("t") else "count"
        scale = 0.001 if stat == "sum" else 1.0
        if qualifier and stats.get(stat) is not None:
            out.append((f"{name}:{qualifier}", float(stats[stat]) * scale))
        return out
    for metric, stat, scale in _STAT_SPECS.get(name, []):
        if stats.get(stat) is not None:
            out.append((metric, float(stats[stat]) * scale))
    return out


def tidy_from_response(body: Mapping[str, Any], *, captured_at: datetime | None = None,
                       interval: tuple[datetime, datetime] | None = None) -> list[dict[str, Any]]:
    """Tidy rows from one aggregate or observation answer.

    Aggregate answers carry their intervals; observation answers describe a moment, so
    ``interval`` (the interval the moment belongs to) is required for them. ``captured_at``
    is added to every row when given (snapshots).

    Raises:
        ValueError: an observation answer without ``interval``, or an unreadable interval.
    """
    mappings = body.get("systemToOrganizationMappings") or {}
    rows: list[dict[str, Any]] = []
    for result in body.get("results") or []:
        group = result.get("group") or {}
        queue = str(group.get("queueId") or "")
        media = str(group.get("mediaType") or "")
        for data in result.get("data") or []:
            if "interval" in data:
                start, end = parse_interval_text(str(data["interval"]))
                entries = data.get("metrics") or []
            else:  # an observation: ``data`` is the metric entry itself
                if interval is None:
                    raise ValueError("an observation answer needs the interval it was captured in")
                start, end = interval
                entries = [data]
            for entry in entries:
                for metric, value in _metric_rows(entry, mappings):
                    row = {"interval_start": start, "interval_end": end, "queue_id": queue,
                           "media_type": media, "metric": metric, "value": value}
                    if captured_at is not None:
                        row = {"captured_at": captured_at, **row}
                    rows.append(row)
    return _summed(rows)


def _summed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same key added up (user aggregates grouped by user, statuses mapped together)."""
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(v for k, v in row.items() if k != "value")
        if key in totals:
            totals[key]["value"] += row["value"]
        else:
            totals[key] = dict(row)
    return list(totals.values())


def tidy_frame(rows: Iterable[Mapping[str, Any]], *, snapshots: bool = False) -> pd.DataFrame:
    """Tidy rows -> a normalized DataFrame (an empty one with the right columns when no rows)."""
    listed = list(rows)
    if not listed:
        return empty_tidy(snapshots)
    columns = list(SNAPSHOT_COLUMNS if snapshots else TIDY_COLUMNS)
    return normalize_tidy(pd.DataFrame(listed, columns=columns))


# ---------------------------------------------------------------------- files

def _source(path: str | Path | IO[Any]) -> tuple[Any, str]:
    """(what pandas/json read, the name used in messages): a path, or an open file (e.g. an upload)."""
    if hasattr(path, "read"):
        return path, str(getattr(path, "name", "uploaded file"))
    return Path(path), str(path)


def read_tidy_csv(path: str | Path | IO[Any]) -> pd.DataFrame:
    """A tidy CSV (``captured_at`` optional) as a normalized DataFrame; ``path`` may be an open file.

    Raises:
        InputFileError: missing file, missing columns, or unreadable times/values (every
            problem listed, with line numbers).
    """
    source, name = _source(path)
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise InputFileError(name, "file not found") from exc
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(name, f"cannot be read as CSV ({exc})") from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in TIDY_COLUMNS if c not in raw.columns]
    if missing:
        raise InputFileError(name, f"missing column(s) {', '.join(missing)}; a tidy file has "
                                          f"{', '.join(SNAPSHOT_COLUMNS)} (captured_at optional)")
    columns = [c for c in SNAPSHOT_COLUMNS if c in raw.columns]
    frame = raw[columns]
    problems: list[str] = []
    for column in ("captured_at", "interval_start", "interval_end"):
        if column not in frame.columns:
            continue
        parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna()
        problems += [f"line {i + 2}: {column} {frame[column].iloc[i]!r} is not an ISO 8601 time"
                     for i in bad[bad].index[:5]]
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & (frame["value"].str.strip() != "")
    problems += [f"line {i + 2}: value {frame['value'].iloc[i]!r} is not a number" for i in bad[bad].index[:5]]
    empty_metric = frame["metric"].str.strip() == ""
    problems += [f"line {i + 2}: metric is empty" for i in empty_metric[empty_metric].index[:5]]
    if problems:
        raise InputFileError(name, "; ".join(problems))
    tidy = normalize_tidy(frame)
    bad_order = tidy["interval_end"] <= tidy["interval_start"]
    if bad_order.any():
        line = int(bad_order[bad_order].index[0]) + 2
        raise InputFileError(name, f"line {line}: interval_end is not after interval_start")
    return tidy


def read_batch_file(path: str | Path | IO[Any]) -> pd.DataFrame:
    """A batch file: aggregate response JSON (object or list of objects, as returned) or a tidy CSV.

    ``path`` may be an open file; its ``name`` decides JSON (``.json``) or CSV.

    Raises:
        InputFileError: unreadable file or unexpected content.
    """
    source, name = _source(path)
    if not name.lower().endswith(".json"):
        frame = read_tidy_csv(path)
        return frame.drop(columns=["captured_at"]) if "captured_at" in frame.columns else frame
    try:
        raw = source.read() if hasattr(source, "read") else source.read_bytes()
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except FileNotFoundError as exc:
        raise InputFileError(name, "file not found") from exc
    except (OSError, ValueError) as exc:
        raise InputFileError(name, f"is not a JSON aggregate answer ({exc})") from exc
    bodies = data if isinstance(data, list) else [data]
    rows: list[dict[str, Any]] = []
    for body in bodies:
        if not isinstance(body, dict):
            raise InputFileError(name, "expected the JSON object(s) /analytics/.../aggregates/query returns")
        try:
            rows += tidy_from_response(body)
        except ValueError as exc:
            raise InputFileError(name, f"holds an answer without intervals ({exc})") from exc
    return tidy_frame(rows)
