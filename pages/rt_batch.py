"""Real-time vs batch — do the dashboards' numbers agree with the historical reports, interval by interval?

Thin: the widgets pick a source (the sandbox demo, Genesys Cloud, or files) and settings; the
comparison is ``recon_core.rtbatch.run.reconcile_frames``; the charts and tables are drawn from
``recon_core.rtbatch.view`` frames; the downloads are ``write_rt_batch_reports`` of the result on screen.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.ui import (
    chosen_credentials,
    configured_credentials,
    content_key,
    demo_badge,
    run_or_show_error,
    with_progress,
    write_uploads,
)
from recon_core.errors import InputFileError, SettingsError
from recon_core.genesys import GenesysClient, resolve_endpoints
from recon_core.genesys.regions import load_regions
from recon_core.rtbatch import persist
from recon_core.rtbatch.demo import load_demo_rt_batch
from recon_core.rtbatch.engine import (
    STATUS_MISMATCH,
    STATUS_OK,
    STATUS_PENDING,
    STATUS_UNMAPPED,
    STATUSES,
    RtBatchResult,
    RtBatchSettings,
)
from recon_core.rtbatch.metrics import (
    ROUTING_STATUSES,
    SYSTEM_PRESENCES,
    MetricPolicy,
    StatusMap,
    policy_from_rows,
    status_map_from_rows,
)
from recon_core.rtbatch.reports import RT_BATCH_FILES, WORKBOOK_FILE, write_rt_batch_reports
from recon_core.rtbatch.run import reconcile_frames
from recon_core.rtbatch.sources import (
    GRANULARITIES,
    iso_z,
    parse_instant,
    read_batch_file,
    read_tidy_csv,
)
from recon_core.rtbatch.view import (
    STATUS_PRIORITY,
    kpi_counts,
    metric_label,
    metric_series,
    metric_unit,
    mismatch_table,
    read_store_sides,
    review_table,
    series_choices,
    status_grid,
    tidy_csv,
    unmapped_status_ids,
)
from recon_core.store import open_store

DEMO, GENESYS, FILES = "Sandbox demo", "Genesys Cloud", "Files"
SOURCE_KEY = "rb_source"
GENESYS_SOURCE_KEY = "rb_genesys_source"     # RtBatchInputs read from the store after a batch fetch
RT_UPLOADS_KEY = "rb_rt_uploads"             # [(file name, bytes)]: real-time tidy CSVs
BATCH_UPLOADS_KEY = "rb_batch_uploads"       # [(file name, bytes)]: batch JSON / CSV
UPLOADER_GENERATION_KEY = "rb_uploader_generation"
DEFAULTS_FOR_KEY = "rb_defaults_for"
RESULTS_KEY = "rb_results"                   # OrderedDict: result key -> RtBatchResult
REPORTS_KEY = "rb_reports"                   # result key -> {file name: path}
POLICY_EDITOR, POLICY_BASE, POLICY_ROWS = "rb_policy_editor", "rb_policy_base", "rb_policy_rows"
STATUS_EDITOR, STATUS_BASE, STATUS_ROWS = "rb_status_editor", "rb_status_base", "rb_status_rows"
RESULTS_KEPT = 8

STATUS_COLORS = {STATUS_OK: "#4caf50", STATUS_MISMATCH: "#d62728", STATUS_PENDING: "#b0b7c3",
                 STATUS_UNMAPPED: "#ff9f1c"}
STATUS_HELP = {
    STATUS_OK: "values where real time and batch agree within the tolerance",
    STATUS_MISMATCH: "values outside the tolerance, once the batch data is final",
    STATUS_PENDING: "values whose batch data is not final yet (inside the buffer, or the batch API asked to wait)",
    STATUS_UNMAPPED: "values of real-time statuses the status map does not know (see the review list)",
}
GRANULARITY_LABELS = {"PT15M": "15 minutes (PT15M)", "PT30M": "30 minutes (PT30M)", "PT1H": "1 hour (PT1H)"}
CLASSIFICATIONS = tuple(dict.fromkeys(SYSTEM_PRESENCES + ROUTING_STATUSES))
MIME = {".csv": "text/csv", ".json": "application/json",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@dataclass(frozen=True)
class RtBatchInputs:
    """Both sides of one source, and what the batch source said about completeness."""

    label: str
    key: str
    realtime: pd.DataFrame
    batch: pd.DataFrame
    is_demo: bool = False
    pending_intervals: tuple[datetime, ...] = ()
    batch_complete_until: datetime | None = None
    as_of: datetime | None = None
    queues: dict[str, str] = field(default_factory=dict)
    status_names: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def span(self) -> tuple[datetime, datetime] | None:
        starts = pd.concat([self.realtime["interval_start"], self.batch["interval_start"]])
        ends = pd.concat([self.realtime["interval_end"], self.batch["interval_end"]])
        if starts.empty:
            return None
        return pd.Timestamp(starts.min()).to_pydatetime(), pd.Timestamp(ends.max()).to_pydatetime()


# ---------------------------------------------------------------------------------------- sources

@st.cache_resource(show_spinner="Building the sandbox org's real-time and batch data (once)…", max_entries=3)
def demo_inputs(granularity: str) -> RtBatchInputs:
    demo = load_demo_rt_batch(granularity=granularity)
    return RtBatchInputs(
        "the sandbox's synthetic org, 2026-10-06 (real time with injected disagreements; batch late 19:00–20:00)",
        f"demo-{granularity}", demo.realtime, demo.batch, True, tuple(demo.pending_intervals),
        demo.batch_complete_until, demo.as_of, dict(demo.queues),
        demo_status_names(demo.ground_truth))


def demo_status_names(ground_truth: tuple[dict[str, Any], ...]) -> dict[str, str]:
    """Presence id -> name of the custom presences the demo leaves unmapped (for labels only)."""
    return {str(g["presenceId"]): str(g["name"]) for g in ground_truth if g.get("presenceId") and g.get("name")}


def _read_all(parts: list[tuple[str, bytes]], reader: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    frames = [reader(path) for path in write_uploads(parts)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def file_inputs(rt_parts: list[tuple[str, bytes]], batch_parts: list[tuple[str, bytes]]) -> RtBatchInputs:
    """The uploaded files read as tidy frames (raises InputFileError naming the file and line)."""
    key = "files-" + content_key([*rt_parts, *batch_parts])
    cached = st.session_state.get("rb_file_inputs")
    if isinstance(cached, RtBatchInputs) and cached.key == key:
        return cached
    realtime = _read_all(rt_parts, read_tidy_csv)
    batch = _read_all(batch_parts, read_batch_file)
    if realtime.empty:
        raise InputFileError(", ".join(n for n, _ in rt_parts), "holds no real-time values")
    if batch.empty:
        raise InputFileError(", ".join(n for n, _ in batch_parts), "holds no batch values")
    names = " + ".join(", ".join(n for n, _ in parts) for parts in (rt_parts, batch_parts))
    inputs = RtBatchInputs(names, key, realtime, batch)
    st.session_state["rb_file_inputs"] = inputs
    return inputs



def genesys_panel(settings: RtBatchSettings) -> None:
    """Region, credentials and queues; the batch fetch fills the store, then both sides are read from it."""
    from recon_core.rtbatch.api import BATCH_CLIENT_SETTINGS, fetch_batch

    cols = st.columns([1, 2, 2])
    keys = [r.key for r in load_regions()]
    region = cols[0].selectbox("Region", keys, key="rb_region", persist_state="session")
    configured, where = configured_credentials()
    client_id = cols[1].text_input("OAuth client id", key="rb_client_id", persist_state="session",
                                   placeholder=configured.client_id if configured else "")
    secret = cols[2].text_input("OAuth client secret", type="password", key="rb_client_secret",
                                persist_state="session",
                                help="kept in this browser session only: never saved, never shown")
    credentials = chosen_credentials(client_id, secret, configured, where,
                                     "analytics:conversationAggregate:view and analytics:userAggregate:view")
    snapshots = run_or_show_error(lambda: store_snapshot_span())
    if snapshots is None:
        return
    count, first, last, queues = snapshots
    if not count:
        st.info("The store holds no real-time snapshots yet. Collect them while the dashboards run: "
                "`python -m recon_core collect-realtime --region REGION --queues ID,ID --every 60s`; "
                "then fetch the batch side here.")
        return
    st.caption(f"Real-time side: {count:,} snapshot values in the store, {iso_z(first)} to {iso_z(last)}, "
               f"{len(queues)} queue(s).")
    queue_text = st.text_input("Queues (ids, comma-separated)", value=",".join(queues), key="rb_queues")
    endpoints = run_or_show_error(lambda: resolve_endpoints(region))
    ready = credentials is not None and endpoints is not None
    if st.button("Fetch the batch aggregates", type="primary", disabled=not ready, key="rb_fetch"):
        chosen = tuple(q.strip() for q in queue_text.split(",") if q.strip())
        start = settings.start or first
        end = settings.end or last
        who, target = credentials, endpoints
        assert who is not None and target is not None

        def fetch(progress: Callable[[float, str], None]) -> RtBatchInputs:
            with open_store() as store, GenesysClient(target, who, BATCH_CLIENT_SETTINGS) as client:
                done = fetch_batch(client, store.con, chosen, start, end, granularity=settings.granularity,
                                   buffer_minutes=settings.buffer_minutes, as_of=settings.as_of, progress=progress)
                realtime, batch = read_store_sides(store.con)
            return RtBatchInputs(f"Genesys Cloud {region} (store snapshots + batch aggregates)",
                                 f"genesys-{region}-{datetime.now(UTC).timestamp()}", realtime, batch,
                                 pending_intervals=done.pending, batch_complete_until=done.complete_until,
                                 notes=done.notes)

        fetched = run_or_show_error(lambda: with_progress("asking for the batch aggregates", fetch))
        if fetched is not None:
            st.session_state[GENESYS_SOURCE_KEY] = fetched
            st.rerun()


def store_snapshot_span() -> tuple[int, datetime, datetime, list[str]]:
    with open_store() as store:
        row = store.con.execute("SELECT count(*), min(interval_start), max(interval_end), "
                                "list(DISTINCT queue_id) FILTER (WHERE queue_id <> '') FROM rt_snapshots").fetchone()
    count, first, last, queues = row if row else (0, None, None, None)
    if not count:
        return 0, datetime.now(UTC), datetime.now(UTC), []
    return int(count), first.replace(tzinfo=UTC), last.replace(tzinfo=UTC), sorted(queues or [])


def files_panel() -> None:
    generation = st.session_state.get(UPLOADER_GENERATION_KEY, 0)
    cols = st.columns(2)
    rt_files = cols[0].file_uploader("Real-time snapshots (tidy CSV)", type=["csv"], accept_multiple_files=True,
                                     key=f"rb_rt_uploader_{generation}",
                                     help="columns captured_at (optional), interval_start, interval_end, queue_id, "
                                          "media_type, metric, value")
    batch_files = cols[1].file_uploader("Batch aggregates (API response JSON or tidy CSV)", type=["json", "csv"],
                                        accept_multiple_files=True, key=f"rb_batch_uploader_{generation}",
                                        help="the aggregates/query answer exactly as returned, or a tidy CSV")
    if rt_files:
        st.session_state[RT_UPLOADS_KEY] = [(f.name, f.getvalue()) for f in rt_files]
    if batch_files:
        st.session_state[BATCH_UPLOADS_KEY] = [(f.name, f.getvalue()) for f in batch_files]
    example = demo_inputs("PT30M")
    cols = st.columns([1, 1, 3])
    cols[0].download_button("Example real-time CSV", lambda: tidy_csv(example.realtime),
                            file_name="realtime_example.csv", mime="text/csv", key="rb_example_rt",
                            help="the demo's real-time side in the tidy format this page reads")
    cols[1].download_button("Example batch CSV", lambda: tidy_csv(example.batch),
                            file_name="batch_example.csv", mime="text/csv", key="rb_example_batch",
                            help="the demo's batch side in the tidy format this page reads")
    uploaded = st.session_state.get(RT_UPLOADS_KEY) or st.session_state.get(BATCH_UPLOADS_KEY)
    if uploaded and cols[2].button("Remove the uploaded files", key="rb_clear_uploads"):
        for key in (RT_UPLOADS_KEY, BATCH_UPLOADS_KEY, "rb_file_inputs"):
            st.session_state.pop(key, None)
        st.session_state[UPLOADER_GENERATION_KEY] = generation + 1
        st.rerun()



def chosen_inputs(source: str, granularity: str) -> RtBatchInputs | None:
    """The inputs of the chosen source; None (with a hint on the page) while one side is missing."""
    if source == DEMO:
        return run_or_show_error(lambda: demo_inputs(granularity))
    if source == FILES:
        rt_parts = st.session_state.get(RT_UPLOADS_KEY) or []
        batch_parts = st.session_state.get(BATCH_UPLOADS_KEY) or []
        if not rt_parts or not batch_parts:
            st.info("Upload both sides: the real-time snapshots and the batch aggregates.")
            return None
        return run_or_show_error(lambda: file_inputs(rt_parts, batch_parts))
    fetched = st.session_state.get(GENESYS_SOURCE_KEY)
    return fetched if isinstance(fetched, RtBatchInputs) else None


# ---------------------------------------------------------------------------------------- settings

def apply_defaults(inputs: RtBatchInputs) -> None:
    """Interval range and "as of" start from the source's own span (once per source)."""
    marker = inputs.key.split("-")[0] + "|" + inputs.label
    if st.session_state.get(DEFAULTS_FOR_KEY) == marker:
        return
    span = inputs.span()
    if span is not None:
        first, last = span
        last_day = (last - timedelta(microseconds=1)).date()
        st.session_state["rb_days"] = (first.date(), last_day)
        st.session_state["rb_hours"] = (0, 24)
    st.session_state["rb_as_of"] = iso_z(inputs.as_of)[:19] + "Z" if inputs.as_of else ""
    st.session_state[DEFAULTS_FOR_KEY] = marker


def set_setting_defaults() -> None:
    today = datetime.now(UTC).date()
    for key, value in (("rb_granularity", "PT30M"), ("rb_buffer", 60), ("rb_days", (today, today)),
                       ("rb_hours", (0, 24)), ("rb_as_of", "")):
        st.session_state.setdefault(key, value)


def settings_row() -> None:
    cols = st.columns([1.2, 1.5, 1.6, 1.1, 1.6])
    cols[0].selectbox("Granularity", list(GRANULARITIES), key="rb_granularity", persist_state="session",
                      format_func=lambda g: GRANULARITY_LABELS.get(g, g),
                      help="interval length of both sides' aggregates")
    cols[1].date_input("UTC days", key="rb_days", persist_state="session", help="first and last day compared")
    cols[2].slider("Hours of the day (UTC)", 0, 24, key="rb_hours", persist_state="session", format="%d:00",
                   help="from the first day's start hour to the last day's end hour")
    cols[3].number_input("Buffer (minutes)", min_value=0, max_value=24 * 60, step=15, key="rb_buffer",
                         persist_state="session",
                         help="an interval is compared only once interval end + buffer has passed; before "
                              "that it is PENDING, never MISMATCH")
    cols[4].text_input("As of (UTC, ISO 8601)", key="rb_as_of", persist_state="session", placeholder="now",
                       help="compare as if it were this time, e.g. 2026-10-07T00:30:00Z; empty = now")


def settings_from_widgets(policy: MetricPolicy, status_map: StatusMap) -> RtBatchSettings:
    """RtBatchSettings from the widgets (raises SettingsError with what to fix)."""
    days = st.session_state.get("rb_days")
    if not isinstance(days, tuple | list) or len(days) != 2:
        raise SettingsError("pick the first and the last UTC day of the range (two dates)")
    hours = st.session_state.get("rb_hours") or (0, 24)
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC) + timedelta(hours=int(hours[0]))
    end = datetime(days[1].year, days[1].month, days[1].day, tzinfo=UTC) + timedelta(hours=int(hours[1]))
    if end <= start:
        raise SettingsError("the range is empty: the end hour must come after the start hour")
    text = str(st.session_state.get("rb_as_of") or "").strip()
    as_of = None
    if text and text.lower() != "now":
        try:
            as_of = parse_instant(text)
        except ValueError as exc:
            raise SettingsError(f"as of {text!r} is not a time: write it like 2026-10-07T00:30:00Z, "
                                "or leave it empty for now") from exc
    return RtBatchSettings(granularity=str(st.session_state["rb_granularity"]),
                           buffer_minutes=int(st.session_state["rb_buffer"]),
                           # "now" to the minute, so a rerun within the minute reuses the result
                           as_of=as_of or datetime.now(UTC).replace(second=0, microsecond=0),
                           policy=policy, status_map=status_map, start=start, end=end)


def _editor_base(editor: str, base: str, rows: str, default: Callable[[], list[dict[str, Any]]]) -> pd.DataFrame:
    """The rows an editor starts from: fixed while it is on screen; its last value when it comes back."""
    if editor not in st.session_state or base not in st.session_state:
        if rows not in st.session_state:
            st.session_state[rows] = default()
        st.session_state[base] = list(st.session_state[rows])
    return pd.DataFrame(st.session_state[base])


def _restart_editor(editor: str, base: str, rows: str, new_rows: list[dict[str, Any]]) -> None:
    st.session_state[rows] = new_rows
    st.session_state.pop(base, None)
    st.session_state.pop(editor, None)


def stored_policy_rows() -> list[dict[str, Any]]:
    policy = run_or_show_error(lambda: _load_from_store(persist.load_policy_from_store)) or MetricPolicy()
    return policy.table()


def stored_status_rows() -> list[dict[str, Any]]:
    status_map = run_or_show_error(lambda: _load_from_store(persist.load_status_map_from_store)) or StatusMap()
    return status_map.table()


def _load_from_store(loader: Callable[[Any], Any]) -> Any:
    with open_store() as store:
        return loader(store.con)


def _save_to_store(saver: Callable[[Any, Any], None], value: Any) -> str:
    with open_store() as store:
        saver(store.con, value)
        return str(store.path)


def policy_editor() -> MetricPolicy | None:
    """Tolerance per metric: |real time − batch| ≤ max(absolute, percent % of batch)."""
    base = _editor_base(POLICY_EDITOR, POLICY_BASE, POLICY_ROWS, stored_policy_rows)
    edited = st.data_editor(
        base, key=POLICY_EDITOR, hide_index=True, num_rows="fixed", width="stretch",
        column_config={
            "metric": st.column_config.TextColumn("Metric", disabled=True),
            "label": st.column_config.TextColumn("What it is", disabled=True),
            "kind": st.column_config.TextColumn("Kind", disabled=True),
            "unit": st.column_config.TextColumn("Unit", disabled=True),
            "absolute": st.column_config.NumberColumn("Absolute (in the unit)", min_value=0.0, step=0.5,
                                                      format="%.2f"),
            "percent": st.column_config.NumberColumn("Percent of batch", min_value=0.0, step=0.1,
                                                     format="%.2f %%"),
        })
    rows = edited.to_dict("records")
    st.session_state[POLICY_ROWS] = rows
    policy = run_or_show_error(lambda: policy_from_rows(rows))
    cols = st.columns([1, 1, 1, 3])
    if policy is not None:
        if cols[0].button("Save tolerances", key="rb_save_policy",
                          help="kept in the workbench's store; the rt-batch command uses them too"):
            where = run_or_show_error(lambda: _save_to_store(persist.save_policy_to_store, policy))
            if where:
                st.success(f"Saved {len(policy.overrides)} tolerance(s) that differ from the defaults to {where}.")
        cols[1].download_button("Policy JSON", json.dumps(policy.to_dict(), indent=2) + "\n",
                                file_name="rt_batch_policy.json", mime="application/json", key="rb_policy_json",
                                help="the file `rt-batch --policy` reads")
    if cols[2].button("Reset to defaults", key="rb_reset_policy"):
        _restart_editor(POLICY_EDITOR, POLICY_BASE, POLICY_ROWS, MetricPolicy().table())
        st.rerun()
    return policy


def status_editor(status_names: dict[str, str]) -> StatusMap | None:
    """Real-time routing/presence status -> batch classification (custom org statuses first).

    A custom presence may be typed by its name when the source knows its id (``status_names``).
    """
    base = _editor_base(STATUS_EDITOR, STATUS_BASE, STATUS_ROWS, stored_status_rows)
    edited = st.data_editor(
        base, key=STATUS_EDITOR, hide_index=True, num_rows="dynamic", width="stretch",
        column_config={
            "realtime_status": st.column_config.TextColumn("Real-time status (name or presence id)", required=True),
            "batch_classification": st.column_config.SelectboxColumn("Batch classification",
                                                                     options=list(CLASSIFICATIONS), required=True),
        })
    rows = edited.to_dict("records")
    st.session_state[STATUS_ROWS] = rows
    ids = {name.strip().casefold(): presence_id for presence_id, name in status_names.items()}
    by_id = [{**r, "realtime_status": ids[key]} for r in rows
             if (key := str(r.get("realtime_status") or "").strip().casefold()) in ids]
    status_map = run_or_show_error(lambda: status_map_from_rows([*rows, *by_id]))
    cols = st.columns([1, 1, 1, 3])
    if status_map is not None:
        if cols[0].button("Save status map", key="rb_save_status_map"):
            where = run_or_show_error(lambda: _save_to_store(persist.save_status_map_to_store, status_map))
            if where:
                st.success(f"Saved {len(status_map.entries)} custom status mapping(s) to {where}.")
        cols[1].download_button("Status map JSON", json.dumps(status_map.to_dict(), indent=2) + "\n",
                                file_name="rt_batch_status_map.json", mime="application/json",
                                key="rb_status_json", help="the file `rt-batch --status-map` reads")
    if cols[2].button("Reset to built-ins", key="rb_reset_status_map"):
        _restart_editor(STATUS_EDITOR, STATUS_BASE, STATUS_ROWS, StatusMap().table())
        st.rerun()
    return status_map


def add_status_mapping(status: str, classification: str) -> None:
    """Put ``status -> classification`` at the top of the status map editor."""
    rows = [r for r in st.session_state.get(STATUS_ROWS, []) if str(r.get("realtime_status", "")).strip() != status]
    _restart_editor(STATUS_EDITOR, STATUS_BASE, STATUS_ROWS,
                    [{"realtime_status": status, "batch_classification": classification}, *rows])


# ---------------------------------------------------------------------------------------- results

def result_key(inputs: RtBatchInputs, settings: RtBatchSettings) -> str:
    text = json.dumps([inputs.key, settings.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compare(inputs: RtBatchInputs, settings: RtBatchSettings) -> tuple[str, RtBatchResult]:
    """The comparison for these inputs and settings, remembered for this session (raises ReconError)."""
    key = result_key(inputs, settings)
    results: OrderedDict[str, RtBatchResult] = st.session_state.setdefault(RESULTS_KEY, OrderedDict())
    if key in results:
        results.move_to_end(key)
        return key, results[key]
    result = with_progress("comparing", lambda p: reconcile_frames(
        inputs.realtime, inputs.batch, settings, pending_intervals=inputs.pending_intervals,
        batch_complete_until=inputs.batch_complete_until, progress=p))
    results[key] = result
    while len(results) > RESULTS_KEPT:
        results.popitem(last=False)
    return key, result


def show_kpis(result: RtBatchResult) -> None:
    k = kpi_counts(result.variances)
    cols = st.columns(5)
    cols[0].metric("Intervals compared", f"{k.intervals_compared:,}",
                   help=f"of {k.intervals:,} intervals in the range; {k.intervals_pending:,} still pending")
    for col, status in zip(cols[1:], STATUSES, strict=True):
        col.metric(status, f"{k.counts[status]:,}", help=STATUS_HELP[status])
    checkpoint = result.summary.get("checkpoint")
    st.caption(f"{k.values:,} values compared (one per interval, queue, media type and metric) as of "
               f"{result.summary['as_of']}, {result.settings.granularity} intervals, "
               f"{result.settings.buffer_minutes} min buffer."
               + (f" Reconciled without gaps up to {checkpoint}." if checkpoint else ""))
    for note in result.summary.get("notes") or []:
        st.info(note)


def _spans(starts: list[pd.Timestamp], step: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    spans: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for start in sorted(starts):
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + step)
        else:
            spans.append((start, start + step))
    return spans


def variance_chart(result: RtBatchResult, inputs: RtBatchInputs) -> None:
    choices = series_choices(result.variances, inputs.queues)
    if choices.empty:
        return
    metrics = list(dict.fromkeys(choices["metric"]))
    if st.session_state.get("rb_chart_metric") not in metrics:
        st.session_state["rb_chart_metric"] = metrics[0]
    cols = st.columns(2)
    metric = cols[0].selectbox("Metric", metrics, key="rb_chart_metric",
                               format_func=lambda m: metric_label(m, inputs.status_names))
    of_metric = choices[choices["metric"] == metric]
    labels = list(of_metric["queue"])
    if st.session_state.get("rb_chart_queue") not in labels:
        st.session_state["rb_chart_queue"] = labels[0]
    label = cols[1].selectbox("Queue · media type", labels, key="rb_chart_queue")
    chosen = of_metric[of_metric["queue"] == label].iloc[0]
    series = metric_series(result.variances, metric, str(chosen["queue_id"]), str(chosen["media_type"]))
    unit = metric_unit(metric)
    step = pd.Timedelta(minutes=result.settings.minutes)
    x = series["interval_start"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=series["band_high"], mode="lines", line={"width": 0}, hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=series["band_low"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(31,119,180,0.16)", name="Tolerance band (batch ± allowed)",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=series["batch_value"], mode="lines+markers", name="Batch (historical)",
                             line={"color": "#1f77b4", "width": 2}, marker={"size": 4},
                             hovertemplate=f"batch %{{y:,.2f}} {unit}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=series["rt_value"], mode="lines+markers", name="Real time (dashboard)",
                             line={"color": "#ff7f0e", "width": 2, "dash": "dot"}, marker={"size": 4},
                             hovertemplate=f"real time %{{y:,.2f}} {unit}<extra></extra>"))
    flagged = series[series["status"] == STATUS_MISMATCH]
    if len(flagged):
        fig.add_trace(go.Scatter(
            x=flagged["interval_start"], y=flagged["rt_value"].fillna(0.0), mode="markers", name="Mismatch",
            marker={"symbol": "x", "size": 13, "color": STATUS_COLORS[STATUS_MISMATCH], "line": {"width": 1}},
            customdata=flagged["likely_cause"].fillna("no known cause"),
            hovertemplate="mismatch: %{customdata}<extra></extra>"))
    odd = series[series["status"] == STATUS_UNMAPPED]
    if len(odd):
        fig.add_trace(go.Scatter(x=odd["interval_start"], y=odd["rt_value"].fillna(0.0), mode="markers",
                                 name="Unmapped status", marker={"symbol": "diamond", "size": 11,
                                                                 "color": STATUS_COLORS[STATUS_UNMAPPED]},
                                 customdata=odd["likely_cause"].fillna(""),
                                 hovertemplate="%{customdata}<extra></extra>"))
    pending = [pd.Timestamp(t) for t in series.loc[series["status"] == STATUS_PENDING, "interval_start"]]
    for lo, hi in _spans(pending, step):
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#9e9e9e", opacity=0.15, line_width=0, layer="below")
    if pending:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="Pending (batch not final)",
                                 marker={"symbol": "square", "size": 12, "color": "rgba(158,158,158,0.4)"}))
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10}, hovermode="x unified",
                      title={"text": f"{metric_label(metric, inputs.status_names)} — {label}", "x": 0.0},
                      legend={"orientation": "h", "y": -0.22, "x": 0.0},
                      xaxis_title="Interval start (UTC)", yaxis_title=f"{metric} ({unit})" if unit else metric)
    fig.update_yaxes(rangemode="tozero", tickformat=",.0f" if unit != "%" else ".0f", separatethousands=True)
    st.plotly_chart(fig, width="stretch", key="rb_variance_chart")


def status_heatmap(result: RtBatchResult, inputs: RtBatchInputs) -> None:
    grid = status_grid(result.variances, inputs.queues, inputs.status_names)
    if grid.empty:
        return
    codes = grid.pivot(index="queue", columns="interval_start", values="code")
    texts = []
    for row in grid.to_dict("records"):
        counts = " · ".join(f"{name} {row[name]}" for name in STATUSES if row[name])
        texts.append(f"<b>{row['queue']}</b><br>{pd.Timestamp(row['interval_start']):%Y-%m-%d %H:%M}–"
                     f"{pd.Timestamp(row['interval_end']):%H:%M} UTC: {row['status']}<br>{counts}"
                     + (f"<br>{row['detail']}" if row["detail"] else ""))
    hover = grid.assign(text=texts).pivot(index="queue", columns="interval_start", values="text")
    scale = []
    for i, status in enumerate(STATUSES):
        scale += [[i / len(STATUSES), STATUS_COLORS[status]], [(i + 1) / len(STATUSES), STATUS_COLORS[status]]]
    fig = go.Figure(go.Heatmap(z=codes.to_numpy(dtype=float), x=list(codes.columns), y=list(codes.index),
                               colorscale=scale, zmin=-0.5, zmax=len(STATUSES) - 0.5, showscale=False,
                               xgap=1, ygap=2, text=hover.to_numpy(), hovertemplate="%{text}<extra></extra>"))
    for status in STATUS_PRIORITY[::-1]:  # legend in reading order: OK, pending, unmapped, mismatch
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=status, showlegend=True,
                                 marker={"symbol": "square", "size": 13, "color": STATUS_COLORS[status]}))
    fig.update_layout(height=150 + 34 * len(codes.index), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      title={"text": "Status by interval and queue (the most urgent value in each cell)", "x": 0.0},
                      legend={"orientation": "h", "y": 1.02, "x": 1.0, "xanchor": "right", "yanchor": "bottom"},
                      xaxis_title="Interval start (UTC)", plot_bgcolor="white")
    fig.update_yaxes(autorange="reversed")
    st.plotly_chart(fig, width="stretch", key="rb_status_heatmap")


def review_section(result: RtBatchResult, inputs: RtBatchInputs) -> None:
    st.subheader("Unmapped real-time statuses")
    statuses = unmapped_status_ids(result)
    if not statuses:
        st.success("Every real-time status is in the status map.")
        return
    st.caption("These statuses appear on the dashboards but the status map does not say which batch classification "
               "they count as: their time is left out of the comparison until they are mapped.")
    st.dataframe(review_table(result, inputs.status_names), hide_index=True, width="stretch",
                 column_config={"Time (s)": st.column_config.NumberColumn(format="localized")})
    cols = st.columns([2, 1.2, 1, 2])
    status = cols[0].selectbox("Status to map", statuses, key="rb_map_status",
                               format_func=lambda s: inputs.status_names.get(s, s))
    target = cols[1].selectbox("counts as", CLASSIFICATIONS, index=CLASSIFICATIONS.index("BUSY"),
                               key="rb_map_target")
    cols[2].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
    if cols[2].button("Add to the status map", key="rb_map_add"):
        add_status_mapping(status, target)
        st.rerun()


def mismatches_section(result: RtBatchResult, inputs: RtBatchInputs) -> None:
    table = mismatch_table(result.variances, inputs.queues, inputs.status_names)
    st.subheader(f"Mismatches ({len(table):,})")
    if table.empty:
        st.caption("No value is outside its tolerance among the intervals whose batch data is final.")
        return
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Real-time": st.column_config.NumberColumn(format="%.2f"),
        "Batch": st.column_config.NumberColumn(format="%.2f"),
        "Variance": st.column_config.NumberColumn(format="%+.2f"),
        "Variance %": st.column_config.NumberColumn(format="%+.1f %%"),
        "Allowed ±": st.column_config.NumberColumn(format="%.2f"),
        "Likely cause": st.column_config.TextColumn(width="large"),
    })


def report_files(key: str, result: RtBatchResult) -> dict[str, Path]:
    """The command's four files for ``result``, written once per result into a temp folder."""
    reports: dict[str, dict[str, Path]] = st.session_state.setdefault(REPORTS_KEY, {})
    paths = reports.get(key)
    if paths is None or not all(p.exists() for p in paths.values()):
        paths = write_rt_batch_reports(result, Path(tempfile.mkdtemp(prefix="rt_batch_reports_")))
        reports.clear()  # only the result on screen is kept
        reports[key] = paths
    return paths


def downloads(key: str, result: RtBatchResult) -> None:
    st.subheader("Downloads")
    alerts = len(result.alerts)
    st.caption("The same files as `python -m recon_core rt-batch` writes, generated from the result shown above. "
               f"alerts.json lists the {alerts} alert{'s' if alerts != 1 else ''} the command would send.")
    order = (WORKBOOK_FILE, *[n for n in RT_BATCH_FILES if n != WORKBOOK_FILE])
    for col, name in zip(st.columns(len(order)), order, strict=True):
        col.download_button("Excel workbook" if name == WORKBOOK_FILE else name,
                            data=lambda n=name: report_files(key, result)[n].read_bytes(), file_name=name,
                            mime=MIME.get(name[name.rfind("."):], "application/octet-stream"),
                            key=f"rb_download_{name}", type="primary" if name == WORKBOOK_FILE else "secondary")


# ---------------------------------------------------------------------------------------- page

st.title("Real-time vs batch")
header = st.container()
st.session_state.setdefault(SOURCE_KEY, DEMO)
source = st.radio("Source", [DEMO, GENESYS, FILES], key=SOURCE_KEY, horizontal=True, persist_state="session",
                  help="the demo needs nothing configured; Genesys compares the store's collector snapshots with "
                       "the batch aggregates API; files are tidy CSVs or the API's aggregate JSON")
set_setting_defaults()
if source == FILES:
    files_panel()
inputs = chosen_inputs(source, str(st.session_state["rb_granularity"]))
if inputs is not None:
    apply_defaults(inputs)  # before the range widgets are drawn: they start from the source's own span
settings_row()
with st.expander("Tolerances and status mapping", expanded=False):
    tolerance_tab, status_tab = st.tabs(["Tolerance per metric", "Status mapping"])
    with tolerance_tab:
        st.caption("A value is within tolerance when |real time − batch| ≤ max(absolute, percent × batch). "
                   "When one side is zero only the absolute part applies.")
        policy = policy_editor()
    with status_tab:
        st.caption("Real-time routing and presence statuses (including custom org presences, by name or id) and "
                   "the batch classification they are counted as. Built-in statuses map to themselves.")
        status_map = status_editor(inputs.status_names if inputs is not None else {})

settings = None
if policy is not None and status_map is not None:
    settings = run_or_show_error(lambda: settings_from_widgets(policy, status_map))
if source == GENESYS and settings is not None:
    genesys_panel(settings)
with header:
    if inputs is not None and inputs.is_demo:
        demo_badge()
    if inputs is not None:
        st.caption(f"Comparing: **{inputs.label}**")
if inputs is None or settings is None:
    st.stop()
for note in inputs.notes:
    st.info(note)
chosen_settings = settings
compared = run_or_show_error(lambda: compare(inputs, chosen_settings))
if compared is None:
    st.stop()
key, result = compared

show_kpis(result)
st.subheader("Variance over time")
variance_chart(result, inputs)
status_heatmap(result, inputs)
review_section(result, inputs)
mismatches_section(result, inputs)
downloads(key, result)
