"""CSV output: fixed column order, UTF-8, ISO 8601 UTC timestamps, exact decimals."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recon_core.files import temporary_sibling
from recon_core.reports.cells import decimal_text, is_formula_like, is_missing, iso_utc, timedelta_text

logger = logging.getLogger(__name__)

CSV_CHUNK_ROWS = 100_000


def write_csv(
    path: str | Path,
    df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    excel_bom: bool = False,
    escape_formulas: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Write ``df`` as CSV (RFC 4180 quoting, ``\\r\\n`` line ends), replacing ``path`` atomically.

    In: the DataFrame (its index is not written) and optionally ``columns``: the exact
    columns, in this order (default: the DataFrame's order). Values are written as:
    timestamps ``2024-01-31T23:59:59.123Z`` (tz-aware converted to UTC, naive taken as
    UTC, truncated to milliseconds), dates ``2024-01-31``, ``decimal.Decimal`` and Arrow
    decimals exactly in fixed point (``0.30``, never ``0.30000000000000004`` or ``3E-1``),
    floats in their shortest repr, booleans ``true``/``false``, missing values empty.
    ``excel_bom`` prefixes a UTF-8 BOM so Excel detects the encoding. ``escape_formulas``
    prefixes text starting with = + - @ tab or CR with ``'`` (for files opened in a
    spreadsheet; off by default because it changes the data, e.g. ``+14155550100``).
    Out: the number of data rows written.
    Raises: ``ValueError`` when a requested column is missing; ``OSError`` from the file system.
    """
    order = list(df.columns) if columns is None else list(columns)
    positions = _positions(df, order, path)
    target = Path(path)
    total = len(df)
    tmp = temporary_sibling(target)  # renamed into place when complete
    try:
        with open(tmp, "x", encoding="utf-8-sig" if excel_bom else "utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow([str(c) for c in order])
            for start in range(0, total, CSV_CHUNK_ROWS):
                chunk = df.iloc[start:start + CSV_CHUNK_ROWS]
                texts = [_column_texts(chunk.iloc[:, i], escape_formulas) for i in positions]
                writer.writerows(zip(*texts, strict=True))
                if progress:
                    progress(min(1.0, (start + len(chunk)) / total), f"writing {target.name}")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote %s: %d rows, %d columns", target, total, len(order))
    return total


def _positions(df: pd.DataFrame, order: list[Any], path: str | Path) -> list[int]:
    if list(df.columns) == order:
        return list(range(len(order)))
    missing = [str(c) for c in order if c not in df.columns]
    if missing:
        raise ValueError(f"cannot write CSV {path}: missing column(s) {', '.join(missing)}")
    positions = []
    for name in order:
        loc = df.columns.get_loc(name)
        if not isinstance(loc, int):
            raise ValueError(f"cannot write CSV {path}: column {name!r} appears more than once")
        positions.append(loc)
    return positions


def _column_texts(series: pd.Series, escape_formulas: bool) -> list[str]:
    """Every value of one column as CSV text (vectorized for the common dtypes)."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if isinstance(dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.to_numpy(dtype="datetime64[ms]")
        texts = np.datetime_as_string(stamps, unit="ms")
        return ["" if t == "NaT" else f"{t}Z" for t in texts]
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype):
        # Arrow's own cast writes a zero at scale 8 as "0E-8"; format each Decimal exactly instead.
        values = pa.array(series, from_pandas=True).to_pylist()
        return ["" if v is None else decimal_text(v) for v in values]
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.ArrowDtype):
        return ["" if is_missing(v) else ("true" if v else "false") for v in series]
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        return [str(v) for v in series.tolist()]
    return [_value_text(v, escape_formulas) for v in series.tolist()]


def _value_text(value: Any, escape_formulas: bool) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return "'" + value if escape_formulas and is_formula_like(value) else value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, datetime | date | time | pd.Timestamp):
        return iso_utc(value)
    if isinstance(value, timedelta | pd.Timedelta):
        return timedelta_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    text = str(value)
    return "'" + text if escape_formulas and is_formula_like(text) else text
