"""Exact serialization of a result's DataFrames, so reports regenerate byte-identically.

A classified frame mixes pandas ``str`` columns, ``datetime64[us]``, floats, booleans, Arrow
decimals and ``object`` columns holding ``Decimal``/``int``/``str``/``None`` values whose exact
form matters (``Decimal('0.03526000')`` and ``Decimal('0.03526')`` print differently). Columns
with a native Arrow type are written as they are; each ``object`` column is written as text with
a one-letter type tag per value (``d`` Decimal, ``i`` int, ``f`` float, ``s`` str, ``b`` bool,
``t`` timestamp) and turned back into the same Python objects on reading. The whole frame is one
zstd-compressed Arrow IPC stream (codec :data:`FRAME_CODEC`), with the column dtypes recorded beside it.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

FRAME_CODEC = "arrow-ipc-tagged-v1"
_META_KEY = b"recon_frame"


def _tag(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Decimal):
        return "d" + str(value)
    if isinstance(value, bool | np.bool_):
        return "b" + ("1" if value else "0")
    if isinstance(value, int | np.integer):
        return "i" + str(int(value))
    if isinstance(value, float | np.floating):
        return "f" + repr(float(value))
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, pd.Timestamp | datetime):
        return "t" + pd.Timestamp(value).isoformat()
    if isinstance(value, date):
        return "D" + value.isoformat()
    raise TypeError(f"cannot store a value of type {type(value).__name__} in the run store: {value!r}")


def _untag(text: str | None) -> Any:
    if text is None:
        return None
    kind, body = text[0], text[1:]
    if kind == "d":
        return Decimal(body)
    if kind == "b":
        return body == "1"
    if kind == "i":
        return int(body)
    if kind == "f":
        return float(body)
    if kind == "s":
        return body
    if kind == "t":
        return pd.Timestamp(body)
    if kind == "D":
        return date.fromisoformat(body)
    raise ValueError(f"unknown value tag {kind!r} in a stored frame")


def encode_frame(frame: pd.DataFrame) -> bytes:
    """``frame`` as Arrow IPC bytes that :func:`decode_frame` turns back into an identical frame.

    Raises:
        TypeError: a cell holds a value the codec does not know (a bug in the caller).
    """
    columns: dict[str, pa.Array] = {}
    dtypes: list[list[str]] = []
    for name in frame.columns:
        series = frame[name]
        dtype = series.dtype
        if pd.api.types.is_object_dtype(dtype):
            columns[str(name)] = pa.array([_tag(v) for v in series.tolist()], pa.string())
            dtypes.append([str(name), "object"])
        else:
            columns[str(name)] = pa.array(series, from_pandas=True)
            dtypes.append([str(name), str(dtype)])
    table = pa.table(columns) if columns else pa.table({})
    meta = {"dtypes": dtypes, "rows": len(frame)}
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")  # the reader decompresses transparently
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _restore(array: pa.ChunkedArray, dtype: str) -> pd.Series:
    if dtype == "object":
        return pd.Series([_untag(v) for v in array.to_pylist()], dtype=object)
    if pa.types.is_decimal(array.type) or dtype.endswith("[pyarrow]"):
        return pd.Series(array.to_pandas(types_mapper=pd.ArrowDtype), dtype=pd.ArrowDtype(array.type))
    series = array.to_pandas()
    return series.astype(dtype) if str(series.dtype) != dtype else series


def decode_frame(data: bytes) -> pd.DataFrame:
    """The frame :func:`encode_frame` wrote: same columns, dtypes and values (a fresh RangeIndex)."""
    with pa.ipc.open_stream(io.BytesIO(data)) as reader:
        table = reader.read_all()
    meta = json.loads((table.schema.metadata or {})[_META_KEY])
    parts = {name: _restore(table.column(name), dtype) for name, dtype in meta["dtypes"]}
    if not parts:
        return pd.DataFrame(index=pd.RangeIndex(int(meta["rows"])))
    return pd.DataFrame(parts)
