"""The Excel dispute pack: a Summary sheet, then one sheet per result table.

Written with openpyxl's write-only (streaming) mode. Safe against formula injection:
text that starts with = + - @ tab or CR is stored as a string cell with Excel's
"quote prefix" style, so Excel shows it as typed and never evaluates it, even after the
cell is edited. Deterministic: the same inputs give a byte-identical file (fixed document
timestamps, fixed zip entry times), so a pack regenerated from the store can be compared
with the one that was sent.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.xml.functions import tostring

from recon_core.files import write_atomically
from recon_core.reports.cells import (
    MONEY_NAME_PARTS,
    column_kind,
    is_formula_like,
    is_missing,
    timedelta_text,
    to_utc_naive,
)

logger = logging.getLogger(__name__)

EXCEL_MAX_ROWS = 1_048_576  # per sheet, header included
EXCEL_MAX_CELL_CHARS = 32_767
SHEET_NAME_MAX_CHARS = 31
SUMMARY_SHEET = "Summary"

MONEY_FORMAT = "#,##0.00######"  # at least 2 decimals, up to the 8 the store keeps
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
DATE_FORMAT = "yyyy-mm-dd"

# Fixed document time (docProps) and zip entry time unless the caller passes one.
DEFAULT_DOCUMENT_TIME = datetime(2000, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill(fill_type="solid", fgColor="FFDDEBF7")
SECTION_FILL = PatternFill(fill_type="solid", fgColor="FFD9D9D9")
TITLE_FONT = Font(bold=True, size=14)

# Excel shows 15 significant digits; larger integers (ids) are written as text to stay exact.
_MAX_EXACT_INT = 999_999_999_999_999
_WIDTH_SAMPLE_ROWS = 200
_MIN_WIDTH, _MAX_WIDTH = 6, 60
_INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_TRUNCATED = "…[truncated]"


@dataclass(frozen=True)
class WrittenSheet:
    """One worksheet of the pack: its name, the table it came from and its data rows."""

    name: str
    table: str
    part: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table, "part": self.part, "rows": self.rows}


def write_dispute_pack(
    path: str | Path,
    summary: Mapping[str, Any],
    sheets: Mapping[str, pd.DataFrame],
    *,
    column_kinds: Mapping[str, str] | None = None,
    max_rows: int = EXCEL_MAX_ROWS,
    document_time: datetime | None = None,
    title: str = "Reconciliation dispute pack",
    progress: Callable[[float, str], None] | None = None,
) -> tuple[WrittenSheet, ...]:
    """Write the Excel dispute pack to ``path`` (replaced atomically).

    In:
      * ``summary`` – nested dict (settings, counts, money, row ledger …) rendered on the
        first sheet as titled key/value sections; a list of dicts becomes a small table.
      * ``sheets`` – sheet title -> DataFrame, written in this order after the Summary
        (the index is not written; ``reset_index()`` first to keep it). Titles are made
        valid Excel names (≤ 31 chars, no ``[]:*?/\\``, unique).
      * ``column_kinds`` – optional hints, column name -> ``money`` | ``datetime`` |
        ``date`` | ``number`` | ``text`` | ``auto``. Without a hint, datetime dtypes get the
        time format and names containing cost/amount/price/delta/money the money format.
      * ``max_rows`` – rows per sheet including the header (Excel's limit by default); a
        longer table continues on "Name (2)", "Name (3)" … each with its own header.
      * ``document_time`` – the workbook's created/modified stamp (naive = UTC); pass
        the run's time to keep regenerated packs identical. Default: a fixed constant.
    Every sheet has a bold, filled, frozen header row and an autofilter. Timestamps are
    written in UTC (Excel has no time zones).
    Out: the sheets written, in order (Summary first).
    Raises: ``ValueError`` for ``max_rows`` < 2 or an unknown column kind; ``OSError``.
    """
    if max_rows < 2:
        raise ValueError(f"max_rows must leave room for a header and a row, got {max_rows}")
    stamp = to_utc_naive(document_time) if document_time is not None else DEFAULT_DOCUMENT_TIME
    plan = _plan_sheets(sheets, max_rows)
    wb = Workbook(write_only=True)
    wb.properties.creator = "recon-workbench"
    wb.properties.title = title
    wb.properties.created = stamp

    summary_ws = wb.create_sheet(SUMMARY_SHEET)
    _write_summary(summary_ws, title, summary, plan, column_kinds or {})
    total_rows = sum(part.rows for part in plan) or 1
    done = 0
    for part in plan:
        ws = wb.create_sheet(part.name)
        frame = sheets[part.table]
        chunk = frame.iloc[part.start:part.start + part.rows]
        _write_table(ws, frame, chunk, column_kinds or {})
        done += part.rows
        if progress:
            progress(done / total_rows, f"writing sheet {part.name}")
    written = (WrittenSheet(SUMMARY_SHEET, SUMMARY_SHEET, 1, 0),) + tuple(
        WrittenSheet(p.name, p.table, p.part, p.rows) for p in plan
    )
    data = _deterministic_xlsx(wb, stamp)
    write_atomically(Path(path), data)
    logger.info("wrote dispute pack %s: %s", path, ", ".join(f"{w.name}={w.rows}" for w in written[1:]))
    return written


# --------------------------------------------------------------------------- sheet plan


@dataclass(frozen=True)
class _SheetPart:
    name: str
    table: str
    part: int
    start: int
    rows: int


def _plan_sheets(sheets: Mapping[str, pd.DataFrame], max_rows: int) -> list[_SheetPart]:
    per_sheet = max_rows - 1
    used = {SUMMARY_SHEET.lower()}
    plan: list[_SheetPart] = []
    for table, frame in sheets.items():
        n = len(frame)
        parts = max(1, math.ceil(n / per_sheet))
        for k in range(parts):
            suffix = "" if k == 0 else f" ({k + 1})"
            name = unique_sheet_name(str(table), used, suffix)
            start = k * per_sheet
            plan.append(_SheetPart(name, table, k + 1, start, min(per_sheet, n - start)))
    return plan


def valid_sheet_name(name: str) -> str:
    """An Excel-valid sheet title: no ``[]:*?/\\``, no leading/trailing ``'``, 1–31 chars."""
    cleaned = _INVALID_SHEET_CHARS.sub("_", ILLEGAL_CHARACTERS_RE.sub("", name)).strip().strip("'").strip()
    if not cleaned:
        cleaned = "Sheet"
    if cleaned.lower() == "history":  # reserved by Excel
        cleaned = "History_"
    return cleaned[:SHEET_NAME_MAX_CHARS].rstrip().rstrip("'") or "Sheet"


def unique_sheet_name(name: str, used: set[str], suffix: str = "") -> str:
    """A valid title ending in ``suffix`` and not in ``used`` (case-insensitive); adds it to ``used``."""
    base = valid_sheet_name(name)
    candidate = base[: SHEET_NAME_MAX_CHARS - len(suffix)].rstrip() + suffix
    n = 2
    while candidate.lower() in used:
        extra = f"{suffix} ~{n}" if suffix else f" ({n})"
        candidate = base[: SHEET_NAME_MAX_CHARS - len(extra)].rstrip() + extra
        n += 1
    used.add(candidate.lower())
    return candidate


# --------------------------------------------------------------------------- cells


class _CellMaker:
    """Builds cells for one sheet: plain values pass through; styled/unsafe ones become cells."""

    def __init__(self, ws: WriteOnlyWorksheet, hints: Mapping[str, str] | None = None) -> None:
        self.ws = ws
        self.hints = hints or {}
        self.text_warnings = 0

    def _clean(self, value: str) -> str:
        # XML readers (Excel included) turn a raw CR into LF anyway: do it visibly here.
        cleaned = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value).replace("\r\n", "\n").replace("\r", "\n")
        if len(cleaned) > EXCEL_MAX_CELL_CHARS:
            cleaned = cleaned[: EXCEL_MAX_CELL_CHARS - len(_TRUNCATED)] + _TRUNCATED
            self.text_warnings += 1
        return cleaned

    def text(self, value: str) -> Any:
        """A text value: the plain string when safe, else a string cell Excel won't evaluate."""
        if not (is_formula_like(value) or value in ERROR_CODES):
            return self._clean(value)
        return self.text_cell(value)

    def text_cell(
        self, value: str, *, font: Font | None = None, fill: PatternFill | None = None, indent: int = 0
    ) -> Cell:
        """Always a string cell. openpyxl would store "=..." as a formula and "#N/A" as an
        error, so the type is forced; the quote prefix keeps it text after an edit in Excel."""
        cell = WriteOnlyCell(self.ws, value=None)
        cell._value = self._clean(value)
        cell.data_type = "s"
        if is_formula_like(value) or value in ERROR_CODES:
            cell.quotePrefix = True
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        if indent:
            cell.alignment = Alignment(indent=indent)
        return cell

    def styled(self, value: Any, number_format: str) -> Cell:
        cell = WriteOnlyCell(self.ws, value=value)
        cell.number_format = number_format
        return cell

    def header(self, value: Any, fill: PatternFill = HEADER_FILL, indent: int = 0) -> Cell:
        return self.text_cell(str(value), font=HEADER_FONT, fill=fill, indent=indent)

    def value(self, value: Any, kind: str) -> Any:
        """One data cell. ``kind`` is a column kind (money, datetime, date, number, text, auto)."""
        if is_missing(value):
            return None
        if isinstance(value, str):
            return self.text(value)
        if kind == "text":
            return self.text(_plain_text(value))
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime(warn=False)
        if isinstance(value, datetime):
            if kind == "date":
                return self.styled(to_utc_naive(value).date(), DATE_FORMAT)
            return self.styled(to_utc_naive(value), DATETIME_FORMAT)
        if isinstance(value, date):
            return self.styled(value, DATE_FORMAT)
        if isinstance(value, time | timedelta | pd.Timedelta):
            return self.text(_plain_text(value))
        number = _number(value)
        if number is None:
            return self.text(_plain_text(value))
        if isinstance(number, str):  # an integer too long for Excel's 15 digits
            return self.text(number)
        if kind == "money":
            return self.styled(number, MONEY_FORMAT)
        return number


def _number(value: Any) -> int | float | Decimal | str | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | np.integer):
        as_int = int(value)
        return str(as_int) if abs(as_int) > _MAX_EXACT_INT else as_int
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return None


def _plain_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, timedelta | pd.Timedelta):
        return timedelta_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _display_width(value: Any) -> int:
    if is_missing(value):
        return 0
    if isinstance(value, datetime | pd.Timestamp):
        return len("2024-01-31 23:59:59.000")
    if isinstance(value, date):
        return 10
    if isinstance(value, Decimal | float | np.floating):
        return len(f"{float(value):,.2f}") if math.isfinite(float(value)) else 3
    text = str(value)
    return max((len(line) for line in text.splitlines()), default=0)


# --------------------------------------------------------------------------- tables


def _write_table(
    ws: WriteOnlyWorksheet, frame: pd.DataFrame, chunk: pd.DataFrame, hints: Mapping[str, str]
) -> None:
    columns = [str(c) for c in frame.columns]
    kinds = [column_kind(name, frame.iloc[:, i], hints) for i, name in enumerate(columns)]
    sample = chunk.iloc[:_WIDTH_SAMPLE_ROWS]
    for i, name in enumerate(columns):
        values = sample.iloc[:, i].tolist()
        widest = max([len(name) + 2] + [_display_width(v) for v in values])
        ws.column_dimensions[get_column_letter(i + 1)].width = min(_MAX_WIDTH, max(_MIN_WIDTH, widest + 2))
    ws.freeze_panes = "A2"
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(chunk) + 1}"
    maker = _CellMaker(ws)
    ws.append([maker.header(name) for name in columns])
    prepared = [_column_values(chunk.iloc[:, i]) for i in range(len(columns))]
    for row in zip(*prepared, strict=True):
        ws.append([maker.value(v, kinds[i]) for i, v in enumerate(row)])
    if maker.text_warnings:
        logger.warning("sheet %s: %d text cells longer than %d characters were truncated",
                       ws.title, maker.text_warnings, EXCEL_MAX_CELL_CHARS)


def _column_values(series: pd.Series) -> list[Any]:
    """Python values of a column; tz-aware timestamps converted to UTC first."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.tolist() if len(series) else []


# --------------------------------------------------------------------------- summary


def _write_summary(
    ws: WriteOnlyWorksheet,
    title: str,
    summary: Mapping[str, Any],
    plan: list[_SheetPart],
    hints: Mapping[str, str],
) -> None:
    maker = _CellMaker(ws, hints)
    rows: list[list[Any]] = [[maker.text_cell(title, font=TITLE_FONT)], []]
    general = {k: v for k, v in summary.items() if not isinstance(v, Mapping | list | tuple)}
    if general:
        rows += _section(maker, "General", general, 0)
    for key, value in summary.items():
        if key in general:
            continue
        rows += _section(maker, _humanize(key), value, 0)
    contents = [{"sheet": p.name, "table": p.table, "part": p.part, "rows": p.rows} for p in plan]
    rows += _section(maker, "Sheets in this workbook", contents, 0)

    widths = [0, 0, 0, 0, 0, 0]
    for row in rows:
        for i, cell in enumerate(row[: len(widths)]):
            raw = cell.value if hasattr(cell, "value") else cell
            widths[i] = max(widths[i], _display_width(raw))
    widths[0] = min(widths[0], 50)  # the title may be long; it may overflow
    for i, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(i + 1)].width = min(_MAX_WIDTH + 20, max(12, width + 3))
    for row in rows:
        ws.append(row)


def _section(maker: _CellMaker, heading: str, value: Any, level: int) -> list[list[Any]]:
    rows: list[list[Any]] = [[]] if level == 0 else []
    rows.append([maker.header(heading, SECTION_FILL if level == 0 else HEADER_FILL, indent=level)])
    rows += _body(maker, value, level + 1)
    return rows


def _body(maker: _CellMaker, value: Any, level: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping) or _is_table(item):
                rows += _section(maker, _humanize(key), item, level)
            else:
                label = maker.text_cell(_humanize(key), indent=level)
                rows.append([label, _summary_value(maker, key, item)])
    elif _is_table(value):
        keys: list[str] = []
        for item in value:
            keys += [str(k) for k in item if str(k) not in keys]
        rows.append([maker.header(_humanize(k), HEADER_FILL) for k in keys])
        for item in value:
            rows.append([_summary_value(maker, k, item.get(k)) for k in keys])
    else:
        rows.append([_summary_value(maker, "", value)])
    return rows


def _is_table(value: Any) -> bool:
    """A non-empty list of dicts: rendered as a small table (e.g. the ledger per file)."""
    return isinstance(value, list | tuple) and len(value) > 0 and all(isinstance(v, Mapping) for v in value)


def _summary_value(maker: _CellMaker, key: Any, value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return maker.text(", ".join(_plain_text(v) for v in items))
    if isinstance(value, Mapping):
        return maker.text(str(dict(value)))
    name = str(key)
    if name in maker.hints:
        return maker.value(value, maker.hints[name])
    # Money by name, but not counts: a key like COST_VARIANCE holding 12 is a number of rows.
    is_money = any(part in name.lower() for part in MONEY_NAME_PARTS) and isinstance(value, Decimal | float)
    return maker.value(value, "money" if is_money else "auto")


def _humanize(key: Any) -> str:
    text = str(key)
    if text.isupper() or not re.fullmatch(r"[a-z0-9_]+", text):
        return text
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# --------------------------------------------------------------------------- saving


def _deterministic_xlsx(wb: Workbook, stamp: datetime) -> bytes:
    """Save ``wb`` and rewrite the zip with fixed times so equal inputs give equal bytes."""
    buffer = io.BytesIO()
    wb.save(buffer)  # openpyxl stamps "modified" with the current time: replaced below
    wb.properties.modified = stamp
    wb.properties.created = stamp
    core_xml = tostring(wb.properties.to_tree())
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(
        out, "w", compression=zipfile.ZIP_DEFLATED
    ) as target:
        for info in source.infolist():
            data = core_xml if info.filename == "docProps/core.xml" else source.read(info.filename)
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 0
            entry.external_attr = 0
            target.writestr(entry, data)
    return out.getvalue()


