"""Invoice mapping for the app: detect the carrier, guess a mapping, turn the analyst's table into a profile.

Pure functions (no streamlit), tested directly; the Invoice page only renders them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recon_core.errors import ProfileError
from recon_core.ingest.readers import FLAGS_COLUMN, LINE_COLUMN, PRESENT_COLUMN, read_source
from recon_core.profiles import FileOptions, MappingProfile, profile_from_dict
from recon_core.schema import MAPPABLE_FIELDS
from recon_core.sql import connect, drop_relation, execute, quote_ident

# The mapping editor has one row per canonical field: the analyst picks the file's column that
# holds it. One column may feed several fields (Twilio's ``sid`` is both the record id and the
# call id); a field cannot come from two columns.
FIELD_COLUMN = "canonical field"
MEANING_COLUMN = "what it holds"
SOURCE_COLUMN = "source column"
SAMPLE_COLUMN = "first value"
# What the source column shows for a field the file does not have (an empty cell reads as "None").
NOT_MAPPED = "— not in this file —"
DIRECTION_VALUE_COLUMN = "carrier value"
DIRECTION_COLUMN = "means"
PREVIEW_ROWS = 200
CUSTOM_PROFILE_NAME = "custom"

# Header names carriers use for each canonical field (compared without case, spaces or punctuation).
FIELD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "record_id": ("recordid", "id", "sid", "uuid", "cdrid", "bdrid", "callrecordid", "ref", "reference"),
    "call_id": ("callid", "callsid", "conversationid"),
    "sip_call_id": ("sipcallid", "protocolcallid"),
    "start_time": ("starttime", "start", "startedat", "callstart", "callstarttime", "calldate", "datetime",
                   "timestamp", "callstartdatetime", "starttimeutc", "callstartutc", "when"),
    "start_date": ("startdate", "date"),
    "start_time_of_day": ("timeofday", "time"),
    "end_time": ("endtime", "end", "finishedat", "callend", "callenddatetime"),
    "direction": ("direction", "calltype", "calldirection", "type"),
    "source_number": ("from", "ani", "caller", "callingnumber", "source", "cli", "origin", "callsource",
                      "fromnumber", "callerid"),
    "destination_number": ("to", "dnis", "callednumber", "destination", "cld", "dialed", "dialednumber",
                           "calldestination", "tonumber"),
    "duration": ("duration", "seconds", "secs", "durationsec", "durations", "callsec", "length", "durationseconds"),
    "billed_duration": ("billedduration", "billedsec", "billedseconds", "billableseconds", "billedminutes"),
    "cost": ("cost", "price", "amount", "charge", "totalprice", "total", "callcost"),
    "rate": ("rate", "perminrate", "rateperminute", "ratepermin"),
    "currency": ("currency", "priceunit", "ccy", "currencycode"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass(frozen=True)
class ProfileFit:
    """How well a shipped profile's mapped columns match a file's header."""

    name: str
    found: int
    total: int
    missing: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        """Every column the profile maps is in the file."""
        return self.total > 0 and self.found == self.total

    def describe(self) -> str:
        """E.g. ``twilio: 9 of 9 mapped columns found``."""
        return f"{self.name}: {self.found} of {self.total} mapped columns found"


def rank_profiles(columns: Sequence[str], profiles: Sequence[MappingProfile]) -> list[ProfileFit]:
    """Profiles ordered best first by the share of their mapped columns present in ``columns``.

    Matching is case- and space-insensitive, as the ingest's. Profiles that read columns by
    position (no header) cannot be recognised from a header and are left out.
    """
    present = {str(c).strip().lower() for c in columns}
    fits = []
    for profile in profiles:
        if not profile.file.header:
            continue
        sources = sorted({str(s) for s in profile.columns.values()})
        missing = tuple(s for s in sources if s.strip().lower() not in present)
        fits.append(ProfileFit(profile.name, len(sources) - len(missing), len(sources), missing))
    return sorted(fits, key=lambda f: (not f.fits, -(f.found / f.total if f.total else 0), -f.found, f.name))


@dataclass(frozen=True)
class FilePreview:
    """A file's columns (as the ingest sees them) and its first rows, as text."""

    columns: tuple[str, ...]
    rows: pd.DataFrame
    file_format: str


def preview_file(path: Path, display_name: str | None = None, rows: int = PREVIEW_ROWS) -> FilePreview:
    """Read ``path`` with default options (header row, format and delimiter detected).

    Raises:
        InputFileError: the file cannot be read at all.
    """
    con = connect()
    try:
        raw = read_source(con, Path(path), "preview_raw", FileOptions(), display_name or Path(path).name)
        try:
            columns = tuple(c for c in raw.columns if c not in (LINE_COLUMN, FLAGS_COLUMN, PRESENT_COLUMN))
            select = ", ".join(quote_ident(c) for c in columns)
            frame = execute(con, f"SELECT {select} FROM {quote_ident(raw.table)} LIMIT {int(rows)}").df()
        finally:
            if raw.cleanup:
                raw.cleanup()
            drop_relation(con, raw.table)
        return FilePreview(columns, frame, raw.file_format)
    finally:
        con.close()


def guess_mapping(columns: Sequence[str], start_from: MappingProfile | None = None) -> dict[str, str]:
    """A first mapping, canonical field -> source column (fields left out are not mapped).

    Every field the ``start_from`` profile maps to a column present in ``columns`` keeps that
    column (in the file's spelling), even when several fields share it. The fields still unmapped
    are guessed from the header names (``FIELD_SYNONYMS``), each from a column not used yet.
    """
    mapping: dict[str, str] = {}
    if start_from is not None:
        lookup = {str(c).strip().lower(): c for c in columns}
        for fname, src in start_from.columns.items():
            column = lookup.get(str(src).strip().lower())
            if column is not None and fname in MAPPABLE_FIELDS:
                mapping[fname] = column
    used = set(mapping.values())
    for fname, synonyms in FIELD_SYNONYMS.items():
        if fname in mapping:
            continue
        column = next((c for c in columns if c not in used and _norm(c) in synonyms), None)
        if column is not None:
            mapping[fname] = column
            used.add(column)
    return {f: mapping[f] for f in MAPPABLE_FIELDS if f in mapping}


def mapping_table(mapping: Mapping[str, str], sample: pd.DataFrame | None = None) -> pd.DataFrame:
    """The editable table: one row per canonical field, the source column feeding it (``NOT_MAPPED``
    when none), that column's first value in the file, and what the field holds."""
    first: dict[str, str] = {}
    if sample is not None and len(sample):
        first = {str(c): ("" if pd.isna(v) else str(v)) for c, v in sample.iloc[0].items()}
    fields = list(MAPPABLE_FIELDS)
    sources = [str(mapping.get(f) or "") for f in fields]
    return pd.DataFrame({
        FIELD_COLUMN: fields,
        SOURCE_COLUMN: [s or NOT_MAPPED for s in sources],
        SAMPLE_COLUMN: [first.get(s, "") if s else "" for s in sources],
        MEANING_COLUMN: [MAPPABLE_FIELDS[f] for f in fields],
    })


def mapping_from_table(table: pd.DataFrame) -> dict[str, str]:
    """Canonical field -> source column from the (edited) table; fields without a column are left out."""
    mapping = {}
    for fname, source in zip(table[FIELD_COLUMN], table[SOURCE_COLUMN], strict=True):
        if source is not None and not pd.isna(source) and str(source) and str(source) != NOT_MAPPED:
            mapping[str(fname)] = str(source)
    return mapping


def guess_direction(value: str) -> str:
    """inbound / outbound / '' for a carrier's direction text (``In``, ``outbound-api`` ...)."""
    text = str(value).strip().lower()
    if "out" in text or text == "o":
        return "outbound"
    if text.startswith("in") or "inbound" in text or "incoming" in text or text == "i":
        return "inbound"
    return ""


def direction_values_in(sample: pd.DataFrame, column: str | None, limit: int = 30) -> list[str]:
    """Distinct non-empty values of the direction column in the sample (first ``limit``)."""
    if not column or column not in sample.columns:
        return []
    values = [str(v).strip() for v in sample[column].dropna().unique() if str(v).strip()]
    return sorted(values)[:limit]


@dataclass(frozen=True)
class MappingForm:
    """What the analyst set on the mapping form; :func:`build_profile` turns it into a profile."""

    columns: dict[str, str]
    """Canonical field -> source column ('' or absent = not mapped); a column may feed several fields."""
    direction_values: dict[str, str] = field(default_factory=dict)
    """Carrier direction text -> inbound | outbound ('' = not set)."""
    name: str = CUSTOM_PROFILE_NAME
    carrier: str = ""
    timezone: str = "UTC"
    timestamp_format: str = "auto"
    duration_unit: str = "seconds"
    cost_sign: str = "absolute"
    default_direction: str = ""
    billing_increment: str = "60/60"
    default_region: str = "US"
    default_currency: str = ""

    def profile_data(self) -> dict[str, Any]:
        """The profile as plain data (the YAML shape ``profile_from_dict`` validates)."""
        data: dict[str, Any] = {
            "name": self.name,
            "carrier": self.carrier or self.name,
            "file": {"format": "auto", "header": True},
            "columns": {f: s for f, s in self.columns.items() if s},
            "timestamps": {"timezone": self.timezone, "format": self.timestamp_format or "auto"},
            "duration_unit": self.duration_unit,
            "cost_sign": self.cost_sign,
            "direction_values": {v: d for v, d in self.direction_values.items() if d},
            "default_region": self.default_region,
            "billing_increment": self.billing_increment,
        }
        if self.default_direction:
            data["default_direction"] = self.default_direction
        if self.default_currency:
            data["default_currency"] = self.default_currency
        return data


def mapping_problems(form: MappingForm, file_columns: Sequence[str] | None = None) -> list[str]:
    """Problems the profile validation cannot see: unknown fields, columns the file does not have."""
    problems = [f"'{f}' is not a canonical field (choose one of {', '.join(MAPPABLE_FIELDS)})"
                for f, source in form.columns.items() if source and f not in MAPPABLE_FIELDS]
    if file_columns is not None:
        present = set(file_columns)
        problems += [f"'{f}' is mapped from column {source!r}, which the file does not have"
                     for f, source in form.columns.items() if source and source not in present]
    return problems


def build_profile(form: MappingForm, source: str = "your mapping",
                  file_columns: Sequence[str] | None = None) -> MappingProfile:
    """Validate the form (against the file's columns, when given) and build the profile.

    Raises:
        ProfileError: listing every problem at once (mapping and profile settings).
    """
    problems = mapping_problems(form, file_columns)
    try:
        profile = profile_from_dict(form.profile_data(), source)
    except ProfileError as exc:
        raise ProfileError(source, problems + list(exc.problems)) from exc
    if problems:
        raise ProfileError(source, problems)
    return profile


def form_from_profile(profile: MappingProfile, columns: Sequence[str]) -> MappingForm:
    """A form pre-filled from a shipped profile (the mapped columns that exist in the file)."""
    return MappingForm(
        columns=guess_mapping(columns, profile),
        direction_values=dict(profile.direction_values),
        carrier=profile.carrier,
        timezone=profile.timezone,
        timestamp_format=profile.timestamp_format,
        duration_unit=profile.duration_unit,
        cost_sign=profile.cost_sign,
        default_direction=profile.default_direction or "",
        billing_increment=profile.billing_increment,
        default_region=profile.default_region,
        default_currency=profile.default_currency or "",
    )


NOT_LINE_BASED = (".xlsx", ".xlsm", ".xml", ".json", ".ndjson", ".gz")
SAMPLE_HEAD_BYTES = 1 << 20


def sample_of(path: Path, lines: int = PREVIEW_ROWS, head_bytes: int = SAMPLE_HEAD_BYTES) -> bytes:
    """The header and first ``lines`` records of a delimited text file; other formats whole.

    Used for the live preview of a mapping, so a large file is neither read nor normalized on
    every edit: only its first ``head_bytes`` are read (a record cut off there is left out).
    """
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(head_bytes)
    if path.name.lower().endswith(NOT_LINE_BASED) or head[:2] in (b"PK", b"\x1f\x8b"):
        return path.read_bytes()
    pieces = head.split(b"\n")
    whole_file = len(head) < head_bytes
    if head.endswith(b"\n") or not whole_file:
        pieces = pieces[:-1]  # the empty piece after the last newline, or a line the read cut off
    kept = pieces[: lines + 1]
    unterminated_end = whole_file and not head.endswith(b"\n") and len(kept) == len(pieces)
    return b"\n".join(kept) + (b"" if unterminated_end or not kept else b"\n")
