"""History — runs recorded in the DuckDB store: reopen one, compare two, download a run's files again."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.ui import HISTORY_KEY, run_or_show_error
from recon_core.analyst.results_view import kpis
from recon_core.reconcile import ReconResult
from recon_core.reports.reconciliation import REPORT_FILES, WORKBOOK_FILE
from recon_core.runs.compare import IDENTITY_NOTE, diff_results
from recon_core.runs.history import (
    SavedRun,
    compare_runs,
    regenerate_files,
    reopen_result,
    runs_table,
    saved_runs,
)
from recon_core.store import default_store_path

MIME = {".csv": "text/csv", ".json": "application/json",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@st.cache_resource(max_entries=8, show_spinner=False)
def _result(store: str, run_id: str) -> ReconResult:
    """A complete run's result, read once (runs never change once complete)."""
    return reopen_result(Path(store), run_id)


@st.cache_resource(max_entries=8, show_spinner=False)
def _files(store: str, run_id: str) -> dict[str, Path]:
    """The run's six report files, regenerated from the store (byte-identical to the originals)."""
    return regenerate_files(Path(store), run_id, Path(tempfile.mkdtemp(prefix="recon_history_")))


def _file_bytes(store: str, run_id: str, name: str) -> bytes:
    return _files(store, run_id)[name].read_bytes()


st.title("History")
store = default_store_path()
runs = run_or_show_error(lambda: saved_runs(store))
if runs is None:
    st.stop()
this_session = set(st.session_state.get(HISTORY_KEY, []))
st.caption(f"Every run recorded in the run store {store}, newest first: saved from the Reconcile page, "
           "recorded by `reconcile --store` or by the unattended `run` pipeline.")
if not runs:
    st.info("No saved run yet. On the Reconcile page, choose your settings and click **Save this run to History** "
            "(runs of the unattended pipeline appear here too).")
    st.stop()

table = runs_table(runs)
table.insert(1, "this session", table["run_id"].isin(this_session))
st.dataframe(table, hide_index=True, width="stretch")

complete: dict[str, SavedRun] = {r.run_id: r for r in runs if r.record is None or r.record.status == "complete"}
others = [r for r in runs if r.run_id not in complete]
if others:
    st.caption(f"{len(others)} run(s) are not complete (running or failed) and cannot be reopened: "
               + ", ".join(f"{r.run_id} ({r.record.status if r.record else '?'})" for r in others[:5]))
ids = list(complete)
if not ids:
    st.stop()

st.subheader("Reopen a run")
chosen = st.selectbox("Run", ids, key="history_run", persist_state="session")
run = complete[chosen]
cols = st.columns(6)
for col, kpi in zip(cols, kpis(run.summary), strict=True):
    col.metric(kpi.label, kpi.value, help=kpi.help)
settings = run.summary.get("settings", {})
rating = settings.get("rating", {})
record = run.record
where = f" · period {record.period} · carrier {record.carrier}" if record and record.period else ""
st.caption(f"Created {run.summary.get('created_utc', '?')}{where} · time tolerance {settings.get('time_tolerance_s')} s"
           f" · increment {rating.get('increment')} · rates in {rating.get('inbound_rate_per_minute')} / out "
           f"{rating.get('outbound_rate_per_minute')} per minute · cost tolerance {rating.get('abs_tolerance')} or "
           f"{rating.get('pct_tolerance')} of the line")
with st.expander("Inputs (with SHA-256) and the whole summary"):
    if record is not None:
        st.dataframe(pd.DataFrame([i.to_dict() for i in record.inputs]), hide_index=True, width="stretch")
    else:
        st.dataframe(run.summary.get("inputs", []), hide_index=True, width="stretch")
    st.json(json.loads(json.dumps(run.summary, default=str)), expanded=False)
result = run_or_show_error(lambda: _result(str(store), chosen))
if result is not None:
    with st.expander(f"Discrepancies of this run ({len(result.discrepancies):,} rows)"):
        st.dataframe(result.discrepancies, hide_index=True, width="stretch")
    cols = st.columns(len(REPORT_FILES))
    order = (WORKBOOK_FILE, *[n for n in REPORT_FILES if n != WORKBOOK_FILE])
    for col, name in zip(cols, order, strict=True):
        col.download_button("Excel dispute pack" if name == WORKBOOK_FILE else name,
                            data=lambda n=name: _file_bytes(str(store), chosen, n), file_name=name,
                            mime=MIME.get(name[name.rfind("."):], "application/octet-stream"),
                            key=f"history_dl_{name}")

st.subheader("Compare two runs")
if len(ids) < 2:
    st.caption("Save a second run to compare.")
else:
    left, right = st.columns(2)
    a = left.selectbox("Run A", ids, index=min(1, len(ids) - 1), key="history_a", persist_state="session")
    b = right.selectbox("Run B", ids, index=0, key="history_b", persist_state="session")
    st.dataframe(compare_runs(complete[a].summary, complete[b].summary), hide_index=True, width="stretch")
    results = run_or_show_error(lambda: (_result(str(store), a), _result(str(store), b)))
    if results is not None:
        diff = diff_results(*results)
        st.markdown(f"**Calls that changed bucket from A to B: {len(diff.changed):,}**")
        st.caption(IDENTITY_NOTE.capitalize() + ".")
        if len(diff.changed):
            st.dataframe(diff.transitions(), hide_index=True, width="stretch")
            st.dataframe(diff.changed, hide_index=True, width="stretch")
