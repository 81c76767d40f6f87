"""The frame codec: every dtype and every Python value the result tables hold comes back identical."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recon_core.runs.frames import decode_frame, encode_frame


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]
    for column in a.columns:
        # repr keeps what equality hides: Decimal('0.10') vs Decimal('0.1'), 1 vs 1.0 vs True
        assert [repr(v) for v in a[column].tolist()] == [repr(v) for v in b[column].tolist()], column


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"cost": pd.Series([Decimal("0.03526000"), Decimal("0E-8"), None, Decimal("1.5")], dtype=object)}),
    pd.DataFrame({"mixed": pd.Series([1, "a", 2.5, None, True, pd.Timestamp("2026-10-01 07:00:00.123")],
                                     dtype=object)}),
    pd.DataFrame({"text": pd.Series(["a", None, "ü,\"q\""], dtype="str"),
                  "when": pd.Series(pd.to_datetime(["2026-10-01 00:00:00", None, "2026-10-31 23:59:59.999"],
                                                   format="ISO8601"), dtype="datetime64[us]"),
                  "offset": [0.772, np.nan, -1.5], "flag": [True, False, True], "line": np.array([1, 2, 3])}),
    pd.DataFrame({"exact": pd.Series(pa.array([Decimal("100.000"), None], pa.decimal128(12, 3)),
                                     dtype=pd.ArrowDtype(pa.decimal128(12, 3)))}),
    pd.DataFrame({"empty": pd.Series([], dtype=object), "also": pd.Series([], dtype="str")}),
], ids=["object-decimals", "object-mixed", "native", "arrow-decimal", "empty"])
def test_a_frame_round_trips_exactly(frame: pd.DataFrame) -> None:
    _same(frame, decode_frame(encode_frame(frame)))


def test_a_value_the_codec_does_not_know_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot store"):
        encode_frame(pd.DataFrame({"x": pd.Series([object()], dtype=object)}))


def test_every_result_table_round_trips(result) -> None:  # type: ignore[no-untyped-def]
    for name in ("matched", "discrepancies", "excluded", "rejected"):
        frame = getattr(result, name)
        assert len(frame), name
        _same(frame, decode_frame(encode_frame(frame)))
