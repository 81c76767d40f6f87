"""The comparison: real-time vs batch, per (interval, queue, media type, metric).

In: two tables in a DuckDB connection, both tidy (see :mod:`recon_core.rtbatch.sources`); the
real-time one may hold many snapshots per interval (``captured_at``), of which the last one
taken before the interval closed is the interval's value. Out: :class:`RtBatchResult`.

Rules, in order, for each row:

1. ``PENDING`` when the interval's batch data is not final: ``interval_end + buffer > as_of``,
   or after ``batch_complete_until`` (what the batch source confirms), or listed in
   ``pending_intervals`` (the batch API kept answering 409/503/timeouts), or outside the batch
   data altogether. Never ``MISMATCH``.
2. ``UNMAPPED`` for a real-time status the status map does not know (it also goes to the
   review list), and for a status classification whose difference those unmapped statuses
   would explain.
3. ``OK`` when both values are 0 or both absent; otherwise ``OK`` when
   ``|rt - batch| <= max(absolute, percent % of |batch|)`` and ``MISMATCH`` when not. When one
   side is zero (or absent) only the absolute part applies.

Likely causes: a boundary shift when the sums over this and an adjacent interval agree (a call
ending at 10:59:59 in one source and 11:00:00 in the other), unmapped statuses, a missing
real-time snapshot, and why an interval is pending.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from recon_core.alerts import ALERT_TYPE_RT_BATCH, build_alert
from recon_core.errors import SettingsError
from recon_core.rtbatch.metrics import (
    METRIC_REGISTRY,
    STATUS_METRICS,
    MetricPolicy,
    MetricSpec,
    StatusMap,
    base_metric,
    metric_spec,
)
from recon_core.rtbatch.sources import granularity_minutes, iso_z
from recon_core.sql import execute, quote_ident

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

STATUS_OK = "OK"
STATUS_MISMATCH = "MISMATCH"
STATUS_PENDING = "PENDING"
STATUS_UNMAPPED = "UNMAPPED"
STATUSES = (STATUS_OK, STATUS_MISMATCH, STATUS_PENDING, STATUS_UNMAPPED)

VARIANCE_COLUMNS = ("interval_start", "interval_end", "queue_id", "media_type", "metric", "kind", "unit",
                    "rt_value", "batch_value", "abs_variance", "variance_percent", "threshold", "threshold_kind",
                    "threshold_percent", "status", "likely_cause")
UNMAPPED_COLUMNS = ("metric", "realtime_status", "intervals", "first_interval", "last_interval", "total_value",
                    "suggestion")
KEY = ["interval_start", "queue_id", "media_type", "metric"]


@dataclass(frozen=True)
class RtBatchSettings:
    """How to compare. ``as_of`` None = now (UTC); ``start``/``end`` limit the intervals compared.

    ``alert_min_mismatches``: an interval with at least this many mismatched rows raises an
    alert (0 = never); ``alert_critical_mismatches`` makes it ``critical`` instead of ``warning``.
    """

    granularity: str = "PT30M"
    buffer_minutes: int = 60
    as_of: datetime | None = None
    policy: MetricPolicy = field(default_factory=MetricPolicy)
    status_map: StatusMap = field(default_factory=StatusMap)
    start: datetime | None = None
    end: datetime | None = None
    alert_min_mismatches: int = 1
    alert_critical_mismatches: int = 5
    environment: str = "production"

    @property
    def minutes(self) -> int:
        return granularity_minutes(self.granularity)

    def effective_as_of(self) -> datetime:
        when = self.as_of or datetime.now(UTC)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

    def to_dict(self) -> dict[str, Any]:
        return {"granularity": self.granularity, "buffer_minutes": self.buffer_minutes,
                "as_of": iso_z(self.as_of) if self.as_of else None,
                "start": iso_z(self.start) if self.start else None, "end": iso_z(self.end) if self.end else None,
                "policy": self.policy.to_dict(), "status_map": self.status_map.to_dict(),
                "alert_min_mismatches": self.alert_min_mismatches,
                "alert_critical_mismatches": self.alert_critical_mismatches, "environment": self.environment}


def validate_settings(settings: RtBatchSettings) -> None:
    """Raise one :class:`SettingsError` listing every invalid setting."""
    problems = []
    try:
        granularity_minutes(settings.granularity)
    except SettingsError as exc:
        problems.append(str(exc))
    if settings.buffer_minutes < 0:
        problems.append(f"buffer must be 0 minutes or more, got {settings.buffer_minutes}")
    if settings.alert_min_mismatches < 0 or settings.alert_critical_mismatches < 1:
        problems.append("alert_min_mismatches must be ≥ 0 and alert_critical_mismatches ≥ 1")
    if settings.start and settings.end and settings.end <= settings.start:
        problems.append("the end of the range must be after its start")
    if problems:
        raise SettingsError("invalid real-time vs batch settings: " + "; ".join(problems))


@dataclass(frozen=True)
class RtBatchResult:
    """What :func:`reconcile_rt_batch` found.

    ``variances``: one row per (interval, queue, media type, metric), :data:`VARIANCE_COLUMNS`.
    ``unmapped_statuses``: the review list (:data:`UNMAPPED_COLUMNS`). ``alerts``: payloads
    for intervals whose mismatches meet the alert rule (not yet sent; see
    :func:`recon_core.rtbatch.alerting.send_rt_batch_alerts`). ``checkpoint``: the end of the
    last interval such that every interval up to it was fully reconciled (None when none).
    """

    variances: pd.DataFrame
    unmapped_statuses: pd.DataFrame
    summary: dict[str, Any]
    alerts: tuple[dict[str, Any], ...]
    settings: RtBatchSettings
    checkpoint: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "alerts": list(self.alerts), "settings": self.settings.to_dict(),
                "checkpoint": iso_z(self.checkpoint) if self.checkpoint else None,
                "rows": len(self.variances), "unmapped_statuses": len(self.unmapped_statuses)}


# ---------------------------------------------------------------------- SQL


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = execute(con, f"SELECT * FROM {quote_ident(table)} LIMIT 0").description or []
    return [str(r[0]) for r in rows]


def side_values_sql(table: str, minutes: int, *, snapshots: bool) -> str:
    """One value per (granularity bucket, queue, media type, metric) of a tidy ``table``.

    With ``snapshots``: per source interval only the last snapshot captured before the
    interval closed. Source intervals finer than the granularity are added up into their
    bucket (``parts`` counts them); longer ones are left out (``too_long``).
    """
    source = quote_ident(table)
    latest = (f"SELECT * FROM {source} WHERE captured_at < interval_end "
              "QUALIFY row_number() OVER (PARTITION BY interval_start, interval_end, queue_id, media_type, metric "
              "ORDER BY captured_at DESC) = 1") if snapshots else f"SELECT * FROM {source}"
    return (
        f"WITH src AS ({latest}), typed AS (SELECT CAST(interval_start AS TIMESTAMP) AS s, "
        "CAST(interval_end AS TIMESTAMP) AS e, coalesce(CAST(queue_id AS VARCHAR), '') AS queue_id, "
        "coalesce(CAST(media_type AS VARCHAR), '') AS media_type, CAST(metric AS VARCHAR) AS metric, "
        "CAST(value AS DOUBLE) AS value FROM src) "
        f"SELECT time_bucket(INTERVAL '{int(minutes)} minutes', s) AS interval_start, queue_id, media_type, metric, "
        "sum(value) AS value, count(*) AS parts, "
        f"bool_or(date_diff('minute', s, e) > {int(minutes)}) AS too_long "
        "FROM typed GROUP BY ALL"
    )


def _side(con: duckdb.DuckDBPyConnection, table: str, minutes: int) -> pd.DataFrame:
    snapshots = "captured_at" in table_columns(con, table)
    frame = execute(con, side_values_sql(table, minutes, snapshots=snapshots)).fetchdf()
    frame["interval_start"] = pd.to_datetime(frame["interval_start"]).dt.tz_localize("UTC")
    return frame


# ---------------------------------------------------------------------- engine


def _is_status_metric(metric: str) -> bool:
    return ":" in metric and base_metric(metric) in STATUS_METRICS


def _map_statuses(rt: pd.DataFrame, status_map: StatusMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real-time values with statuses replaced by their classification, the unmapped rows)."""

    def classify(metric: str) -> str | None:
        if not _is_status_metric(metric):
            return metric
        base, status = metric.split(":", 1)
        target = status_map.classify(status)
        return None if target is None else f"{base}:{target}"

    names = rt["metric"].map(classify)
    unmapped = rt[names.isna()].copy()
    mapped = rt[names.notna()].assign(metric=names[names.notna()])
    mapped = mapped.groupby(KEY, as_index=False, sort=False).agg(value=("value", "sum"), parts=("parts", "max"),
                                                                too_long=("too_long", "max"))
    return mapped, unmapped


def _with_derived(side: pd.DataFrame) -> pd.DataFrame:
    """Averages (numerator/denominator metrics) added where the side has their components only."""
    if side.empty:
        return side
    wide = side.pivot_table(index=["interval_start", "queue_id", "media_type"], columns="metric", values="value",
                            aggfunc="sum")
    extra = []
    for spec in METRIC_REGISTRY:
        if spec.derivation != "numerator/denominator" or spec.numerator not in wide or spec.denominator not in wide:
            continue
        num, den = wide[spec.numerator], wide[spec.denominator]
        present = wide[spec.name].notna() if spec.name in wide else pd.Series(False, index=wide.index)
        values = (num / den.where(den != 0)).where(~present)
        derived = values.dropna().rename("value").reset_index()
        derived["metric"] = spec.name
        extra.append(derived)
    if not extra:
        return side
    added = pd.concat(extra, ignore_index=True)
    added["parts"] = 1
    added["too_long"] = False
    return pd.concat([side, added[side.columns]], ignore_index=True)


def _utc(when: datetime | pd.Timestamp) -> pd.Timestamp:
    """An aware UTC timestamp (naive input is read as UTC)."""
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _rows_where(frame: pd.DataFrame, keep: Callable[[str], bool]) -> pd.DataFrame:
    """The rows whose metric passes ``keep`` (an empty frame stays empty, columns intact)."""
    if frame.empty:
        return frame
    verdicts = {m: bool(keep(m)) for m in frame["metric"].unique()}
    return frame[frame["metric"].map(verdicts).astype(bool).to_numpy()]


def _additive(metric: str) -> bool:
    spec = metric_spec(metric)
    return bool(spec and spec.additive)


def _pending_reason(start: pd.Timestamp, end: pd.Timestamp, *, as_of: datetime, buffer: timedelta,
                    complete_until: datetime | None, pending: set[pd.Timestamp],
                    coverage: tuple[pd.Timestamp, pd.Timestamp] | None) -> str | None:
    if end + buffer > as_of:
        return f"batch data is not final before {iso_z(end + buffer)} (interval end + {buffer} buffer)"
    if start in pending:
        return "the batch source kept answering 409/503 or timing out; it is retried on the next run"
    if complete_until is not None and end > complete_until:
        return f"the batch source has confirmed complete data only up to {iso_z(complete_until)}"
    if coverage is None or start < coverage[0] or end > coverage[1]:
        return "the batch data does not cover this interval yet"
    return None


def reconcile_rt_batch(
    con: duckdb.DuckDBPyConnection,
    realtime_table: str,
    batch_table: str,
    settings: RtBatchSettings,
    *,
    pending_intervals: Iterable[datetime] = (),
    batch_complete_until: datetime | None = None,
    progress: Progress | None = None,
) -> RtBatchResult:
    """Compare the real-time table with the batch table (both tidy; see the module doc).

    ``pending_intervals``: interval starts the batch source could not deliver this run.
    ``batch_complete_until``: the batch source confirms final data for intervals ending at or
    before it (None: any interval the batch table covers counts as confirmed).

    Raises:
        SettingsError: invalid settings.
        SQLExecutionError: a table lacks the tidy columns (a bug in the caller).
    """
    validate_settings(settings)
    # Tz-aware inputs (TIMESTAMPTZ) are cast to TIMESTAMP in the session's zone: make that UTC.
    execute(con, "SET TimeZone = 'UTC'")
    minutes = settings.minutes
    step = pd.Timedelta(minutes=minutes)
    as_of = settings.effective_as_of()
    if progress:
        progress(0.05, "reading real-time and batch values")
    rt_raw = _side(con, realtime_table, minutes)
    batch = _side(con, batch_table, minutes)
    notes: list[str] = []
    for name, frame in (("real-time", rt_raw), ("batch", batch)):
        long_rows = frame["too_long"].astype(bool)
        if long_rows.any():
            notes.append(f"{int(long_rows.sum())} {name} values cover intervals longer than {settings.granularity} "
                         "and were left out; compare with a coarser granularity")
    rt_raw = rt_raw[~rt_raw["too_long"].astype(bool)]
    batch = batch[~batch["too_long"].astype(bool)]
    for name, frame in (("real-time", rt_raw), ("batch", batch)):
        finer = _rows_where(frame[frame["parts"] > 1], lambda m: not _additive(m))
        if not finer.empty:
            notes.append(f"{len(finer)} {name} non-additive values were summed over finer intervals; "
                         "supply their components (e.g. tHandle and nHandled for AHT) instead")
    if settings.start is not None:
        first = _utc(settings.start)
        rt_raw = rt_raw[rt_raw["interval_start"] >= first]
        batch = batch[batch["interval_start"] >= first]
    if settings.end is not None:
        last = _utc(settings.end)
        rt_raw = rt_raw[rt_raw["interval_start"] + step <= last]
        batch = batch[batch["interval_start"] + step <= last]
    if progress:
        progress(0.3, "mapping statuses and deriving averages")
    rt, unmapped = _map_statuses(rt_raw, settings.status_map)
    rt = _with_derived(rt)
    batch = _with_derived(batch.groupby(KEY, as_index=False, sort=False).agg(
        value=("value", "sum"), parts=("parts", "max"), too_long=("too_long", "max")))
    # Current-state metrics (observations) only compare where the batch side has them too.
    batch_bases = set(batch["metric"].map(base_metric))

    def compared(metric: str) -> bool:
        spec = metric_spec(metric)
        return spec is None or spec.kind != "current_state" or base_metric(metric) in batch_bases

    rt = _rows_where(rt, compared)
    review = _review_list(unmapped)  # every status met, compared or not
    unmapped = _rows_where(unmapped, compared)
    merged = pd.merge(rt[KEY + ["value"]].rename(columns={"value": "rt_value"}),
                      batch[KEY + ["value"]].rename(columns={"value": "batch_value"}), on=KEY, how="outer")
    unmapped_rows = unmapped[KEY + ["value"]].rename(columns={"value": "rt_value"})
    unmapped_rows["batch_value"] = math.nan
    unmapped_rows["unmapped"] = True
    merged["unmapped"] = False
    merged = pd.concat([merged, unmapped_rows], ignore_index=True) if not unmapped_rows.empty else merged
    if progress:
        progress(0.5, f"comparing {len(merged)} values")

    coverage = None
    if not batch.empty:
        coverage = (batch["interval_start"].min(), batch["interval_start"].max() + step)
    complete_until = batch_complete_until.astimezone(UTC) if batch_complete_until else None
    pending = {_utc(p) for p in pending_intervals}
    buffer = timedelta(minutes=settings.buffer_minutes)
    reasons: dict[pd.Timestamp, str | None] = {}
    for start in merged["interval_start"].unique():
        ts = pd.Timestamp(start)
        reasons[ts] = _pending_reason(ts, ts + step, as_of=as_of, buffer=buffer, complete_until=complete_until,
                                      pending=pending, coverage=coverage)
    mapped = merged[~merged["unmapped"]]
    values = dict(zip(zip(mapped["interval_start"], mapped["queue_id"], mapped["media_type"], mapped["metric"],
                          strict=True),
                      zip(mapped["rt_value"], mapped["batch_value"], strict=True), strict=True))
    unmapped_time: dict[tuple[Any, ...], list[tuple[str, float]]] = {}
    for r in unmapped.itertuples(index=False):
        unmapped_time.setdefault((r.interval_start, r.queue_id, r.media_type, base_metric(r.metric)), []).append(
            (r.metric.split(":", 1)[1], float(r.value)))

    variances = _compare_frame(merged, settings.policy, reasons, values, unmapped_time, step)
    variances = variances.sort_values(["interval_start", "queue_id", "media_type", "metric"],
                                      kind="mergesort").reset_index(drop=True)
    for column in ("rt_value", "batch_value", "abs_variance", "variance_percent", "threshold", "threshold_percent"):
        variances[column] = variances[column].astype("float64")
    if progress:
        progress(0.8, "summarizing")
    checkpoint = _checkpoint(reasons, step)
    summary = _summary(variances, review, settings, as_of, checkpoint, notes)
    alerts = build_rt_batch_alerts(variances, settings, as_of)
    if progress:
        progress(1.0, f"{summary['counts'].get(STATUS_MISMATCH, 0)} mismatches")
    return RtBatchResult(variances, review, summary, alerts, settings, checkpoint)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _compare_frame(merged: pd.DataFrame, policy: MetricPolicy, reasons: Mapping[pd.Timestamp, str | None],
                   values: Mapping[tuple[Any, ...], tuple[float, float]],
                   unmapped_time: Mapping[tuple[Any, ...], list[tuple[str, float]]],
                   step: pd.Timedelta) -> pd.DataFrame:
    """The comparison of every row (vectorized), then the likely causes of the mismatches (row by row)."""
    metrics = merged["metric"].unique()
    specs = {m: metric_spec(m) for m in metrics}
    tolerances = {m: policy.tolerance_for(m) for m in metrics}
    names = merged["metric"]
    out = merged[["interval_start", "queue_id", "media_type", "metric"]].copy()
    out["interval_end"] = out["interval_start"] + step
    out["kind"] = names.map({m: spec.kind if spec else "unknown" for m, spec in specs.items()})
    out["unit"] = names.map({m: spec.unit if spec else "" for m, spec in specs.items()})
    rt = merged["rt_value"].astype("float64")
    batch = merged["batch_value"].astype("float64")
    out["rt_value"], out["batch_value"] = rt, batch
    rt_v, batch_v = rt.fillna(0.0), batch.fillna(0.0)
    absolute = names.map({m: t.absolute for m, t in tolerances.items()}).astype("float64")
    percent = names.map({m: t.percent for m, t in tolerances.items()}).astype("float64")
    relative = percent / 100.0 * batch_v.abs()
    one_side_zero = (rt_v == 0.0) != (batch_v == 0.0)
    unmapped = merged["unmapped"].astype(bool)
    threshold = absolute.where(one_side_zero | (relative <= absolute), relative)
    kind = pd.Series("percent", index=merged.index, dtype="object").where(
        ~one_side_zero & (relative > absolute), "absolute")
    kind = kind.where(out["kind"] != "ratio", "points")
    diff = (rt_v - batch_v).abs()
    out["abs_variance"] = diff.where(~unmapped)
    out["variance_percent"] = ((rt_v - batch_v) / batch_v.abs() * 100.0).where((batch_v != 0.0) & ~unmapped)
    out["threshold"] = threshold.where(~unmapped)
    out["threshold_kind"] = kind.where(~unmapped, None)
    out["threshold_percent"] = percent
    reason = merged["interval_start"].map(dict(reasons))
    pending = reason.notna() & ~unmapped
    within = (rt_v == batch_v) | (diff <= threshold + 1e-9)
    status = pd.Series(STATUS_OK, index=merged.index, dtype="object")
    status = status.where(within, STATUS_MISMATCH).where(~pending, STATUS_PENDING).where(~unmapped, STATUS_UNMAPPED)
    cause = pd.Series(None, index=merged.index, dtype="object").where(~pending, reason)
    if unmapped.any():
        unmapped_cause = merged.loc[unmapped, "metric"].map(
            lambda m: f"real-time status {m.split(':', 1)[-1]!r} is not in the status map; map it to a batch "
                      "classification")
        cause.loc[unmapped] = unmapped_cause
    mismatched = merged[status == STATUS_MISMATCH]
    found = [_mismatch_cause(r, specs[r.metric], policy, reasons, values, unmapped_time, step)
             for r in mismatched.itertuples(index=False)]
    if found:
        status.loc[mismatched.index] = [f[0] for f in found]
        cause.loc[mismatched.index] = [f[1] for f in found]
    out["status"] = status
    out["likely_cause"] = cause
    return out[list(VARIANCE_COLUMNS)]


def _mismatch_cause(r: Any, spec: MetricSpec | None, policy: MetricPolicy, reasons: Mapping[pd.Timestamp, str | None],
                    values: Mapping[tuple[Any, ...], tuple[float, float]],
                    unmapped_time: Mapping[tuple[Any, ...], list[tuple[str, float]]],
                    step: pd.Timedelta) -> tuple[str, str | None]:
    """(status, likely cause) of a mismatched row: unmapped statuses, a boundary shift, a missing side."""
    rt, batch = _number(r.rt_value), _number(r.batch_value)
    rt_v, batch_v = rt or 0.0, batch or 0.0
    key = (r.interval_start, r.queue_id, r.media_type, base_metric(r.metric))
    if _is_status_metric(r.metric) and key in unmapped_time and rt_v < batch_v:
        extra = sum(v for _, v in unmapped_time[key])
        if abs(rt_v + extra - batch_v) <= policy.tolerance_for(r.metric).threshold(batch_v)[0] + 1e-9:
            names = ", ".join(sorted({s for s, _ in unmapped_time[key]}))
            return STATUS_UNMAPPED, (f"the unmapped real-time status(es) {names} account for the difference; "
                                     "map them in the status map")
    cause = _boundary_cause(r, spec, policy, reasons, values, step)
    if cause is None and rt is None:
        cause = "no real-time value for this interval (was the collector running?)"
    elif cause is None and batch is None:
        cause = "the batch source has no value for this interval"
    return STATUS_MISMATCH, cause


def _pair_values(values: Mapping[tuple[Any, ...], tuple[float, float]], start: Any, queue: str, media: str,
                 metric: str) -> tuple[float, float]:
    rt, batch = values.get((start, queue, media, metric), (math.nan, math.nan))
    return (0.0 if rt is None or math.isnan(rt) else float(rt), 0.0 if batch is None or math.isnan(batch)
            else float(batch))


def _boundary_cause(r: Any, spec: Any, policy: MetricPolicy, reasons: Mapping[pd.Timestamp, str | None],
                    values: Mapping[tuple[Any, ...], tuple[float, float]], step: pd.Timedelta) -> str | None:
    """"boundary shift" when this interval and an adjacent one agree when added together."""
    if spec is None or spec.kind not in ("count", "duration", "average"):
        return None
    here = pd.Timestamp(r.interval_start)
    for neighbour, word in ((here - step, "previous"), (here + step, "next")):
        if neighbour not in reasons or reasons[neighbour] is not None:
            continue  # no data there, or not final yet
        if spec.kind == "average":
            num_here = _pair_values(values, here, r.queue_id, r.media_type, spec.numerator)
            den_here = _pair_values(values, here, r.queue_id, r.media_type, spec.denominator)
            num_next = _pair_values(values, neighbour, r.queue_id, r.media_type, spec.numerator)
            den_next = _pair_values(values, neighbour, r.queue_id, r.media_type, spec.denominator)
            rt_den, batch_den = den_here[0] + den_next[0], den_here[1] + den_next[1]
            if not rt_den or not batch_den:
                continue
            rt_sum = (num_here[0] + num_next[0]) / rt_den
            batch_sum = (num_here[1] + num_next[1]) / batch_den
            moved = num_next[0] != num_next[1] or den_next[0] != den_next[1]
        else:
            mine = _pair_values(values, here, r.queue_id, r.media_type, r.metric)
            other = _pair_values(values, neighbour, r.queue_id, r.media_type, r.metric)
            rt_sum, batch_sum = mine[0] + other[0], mine[1] + other[1]
            moved = other[0] != other[1]
        if not moved:
            continue  # the neighbour agrees on its own: nothing moved across the boundary
        threshold = policy.tolerance_for(r.metric).threshold(batch_sum)[0]
        if abs(rt_sum - batch_sum) <= threshold + 1e-9:
            boundary = here if word == "previous" else here + step
            return (f"boundary shift: with the {word} interval the sources agree; a conversation ending at "
                    f"the {iso_z(boundary)[11:19]} boundary is counted on different sides of it")
    return None


def _review_list(unmapped: pd.DataFrame) -> pd.DataFrame:
    if unmapped.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in UNMAPPED_COLUMNS})
    frame = unmapped.assign(base=unmapped["metric"].map(base_metric),
                            status=unmapped["metric"].str.split(":", n=1).str[1])
    grouped = frame.groupby(["base", "status"], as_index=False).agg(
        intervals=("interval_start", "nunique"), first_interval=("interval_start", "min"),
        last_interval=("interval_start", "max"), total_value=("value", "sum"))
    grouped = grouped.rename(columns={"base": "metric", "status": "realtime_status"})
    grouped["suggestion"] = "add it to the status map (real-time status -> batch classification)"
    return grouped[list(UNMAPPED_COLUMNS)].sort_values(["metric", "realtime_status"]).reset_index(drop=True)


def _checkpoint(reasons: Mapping[pd.Timestamp, str | None], step: pd.Timedelta) -> datetime | None:
    """The end of the last interval before the first pending one (None when the first is pending)."""
    last = None
    for start in sorted(reasons):
        if reasons[start] is not None:
            break
        last = start + step
    return last.to_pydatetime() if last is not None else None


def _summary(variances: pd.DataFrame, review: pd.DataFrame, settings: RtBatchSettings, as_of: datetime,
             checkpoint: datetime | None, notes: list[str]) -> dict[str, Any]:
    counts = {s: int((variances["status"] == s).sum()) for s in STATUSES}
    by_metric: dict[str, dict[str, int]] = {}
    for (metric, status), n in variances.groupby(["metric", "status"]).size().items():
        by_metric.setdefault(str(metric), {})[str(status)] = int(n)
    starts = variances["interval_start"]
    return {
        "as_of": iso_z(as_of), "granularity": settings.granularity, "buffer_minutes": settings.buffer_minutes,
        "rows": len(variances), "counts": counts,
        "intervals": int(starts.nunique()),
        "intervals_pending": int(variances.loc[variances["status"] == STATUS_PENDING, "interval_start"].nunique()),
        "intervals_with_mismatches": int(
            variances.loc[variances["status"] == STATUS_MISMATCH, "interval_start"].nunique()),
        "first_interval": iso_z(starts.min()) if len(starts) else None,
        "last_interval_end": iso_z(starts.max() + pd.Timedelta(minutes=settings.minutes)) if len(starts) else None,
        "queues": sorted(q for q in variances["queue_id"].unique() if q),
        "metrics": by_metric, "unmapped_statuses": review["realtime_status"].tolist(),
        "boundary_shifts": int(variances["likely_cause"].fillna("").str.startswith("boundary shift").sum()),
        "checkpoint": iso_z(checkpoint) if checkpoint else None, "notes": notes,
        "settings": settings.to_dict(),
    }


# ---------------------------------------------------------------------- alerts


def _utc_texts(series: pd.Series) -> pd.Series:
    """Aware timestamps -> ``2026-10-05T10:00:00.000Z`` texts (vectorized)."""
    return series.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"


def build_rt_batch_alerts(variances: pd.DataFrame, settings: RtBatchSettings,
                          as_of: datetime) -> tuple[dict[str, Any], ...]:
    """One alert payload per interval with at least ``alert_min_mismatches`` mismatched rows."""
    if settings.alert_min_mismatches <= 0:
        return ()
    mismatched = variances[variances["status"] == STATUS_MISMATCH]
    if mismatched.empty:
        return ()
    items = pd.DataFrame({
        "metric_name": mismatched["metric"], "rt_value": mismatched["rt_value"],
        "batch_value": mismatched["batch_value"], "variance_percent": mismatched["variance_percent"].round(4),
        "threshold_percent": mismatched["threshold_percent"], "threshold": mismatched["threshold"],
        "threshold_kind": mismatched["threshold_kind"], "queue_id": mismatched["queue_id"],
        "media_type": mismatched["media_type"], "interval_start": _utc_texts(mismatched["interval_start"]),
        "interval_end": _utc_texts(mismatched["interval_end"]), "likely_cause": mismatched["likely_cause"]})
    items = items.astype(object).where(items.notna(), None)
    by_interval: dict[str, list[dict[str, Any]]] = {}
    for record in items.to_dict("records"):
        by_interval.setdefault(str(record["interval_start"]), []).append(record)
    out = []
    for start_text in sorted(by_interval):
        metrics = by_interval[start_text]
        if len(metrics) < settings.alert_min_mismatches:
            continue
        severity = "critical" if len(metrics) >= settings.alert_critical_mismatches else "warning"
        details = {"interval": f"{start_text}/{metrics[0]['interval_end']}", "granularity": settings.granularity,
                   "mismatches": len(metrics)}
        out.append(build_alert(ALERT_TYPE_RT_BATCH, severity, metrics, environment=settings.environment,
                               timestamp=as_of, **details))
    return tuple(out)
