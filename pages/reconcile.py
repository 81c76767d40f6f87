"""Reconcile — tolerances, increment and rates; KPIs, charts, results and downloads that follow every change.

The expensive part (reading both sides and generating match candidates) is prepared once per set
of inputs (``pages.ui.prepared_run``); each change of a setting only calls
``classify(run, tolerance, rating)``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from st_aggrid import AgGrid, GridOptionsBuilder

from pages.ui import (
    CATEGORY_COLORS,
    PreparedEntry,
    cdr_files,
    chosen_profile,
    demo_badge,
    demo_files,
    invoice_files,
    prepared_run,
    remember_run,
    run_or_show_error,
    with_progress,
)
from recon_core.analyst.results_view import (
    CATEGORY_LABELS,
    GRID_ROWS_MAX,
    GROUP_COLUMN,
    RowExplanation,
    category_breakdown,
    category_counts,
    explain_row,
    grouped_rows,
    kpis,
)
from recon_core.match.settings import DEFAULT_MAX_TOLERANCE_S, DEFAULT_TOLERANCE_S
from recon_core.profiles import MappingProfile
from recon_core.rating import RatingSettings, parse_rate_deck, rating_settings_from_dict
from recon_core.reconcile import ReconResult
from recon_core.reports.reconciliation import REPORT_FILES, WORKBOOK_FILE
from recon_core.runs.history import save_run
from recon_core.store import default_store_path

FLAT = "Flat rate per minute"
DECK = "Rate deck (CSV)"
INVOICE_RATE = "The invoice's own rate"
DEFAULTS_FOR_KEY = "rc_defaults_for"
RATE_DECK_KEY = "rc_rate_deck_upload"
MIME = {".csv": "text/csv", ".json": "application/json",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def defaults_for(profile: MappingProfile, is_demo: bool) -> dict[str, Any]:
    """Starting values of the settings: the demo manifest's rating, else the profile's increment."""
    if is_demo:
        rating = demo_files().rating_settings
        return {"rc_increment": rating["increment"], "rc_inbound": rating["inbound_rate_per_minute"] or "",
                "rc_outbound": rating["outbound_rate_per_minute"] or ""}
    demo_rates = demo_files().rating_settings
    cleared = {key: "" for key, name in (("rc_inbound", "inbound_rate_per_minute"),
                                         ("rc_outbound", "outbound_rate_per_minute"))
               if st.session_state.get(key) == demo_rates[name]}  # the demo's prices are not the analyst's
    return {"rc_increment": profile.billing_increment, **cleared}


def rating_from_widgets(profile: MappingProfile, is_demo: bool) -> RatingSettings:
    """RatingSettings from the widgets (raises SettingsError listing every problem)."""
    mode = st.session_state["rc_rate_mode"]
    increment = str(st.session_state["rc_increment"]).strip()
    carrier = demo_files().rating_settings["carrier_increment"] if is_demo else profile.billing_increment
    decimals = (demo_files().rating_settings["money_decimals"] if is_demo
                else profile.money_decimals if profile.money_decimals is not None else 4)
    raw: dict[str, Any] = {
        "increment": increment,
        "money_decimals": decimals,
        "abs_tolerance": str(Decimal(str(st.session_state["rc_abs_tolerance"]))),
        "pct_tolerance": f"{Decimal(str(st.session_state['rc_pct_tolerance']))}%",
        "carrier_increment": carrier if carrier.replace(" ", "") != increment.replace(" ", "") else None,
        "rate_source": "invoice_rate" if mode == INVOICE_RATE else "contract",
    }
    if mode == FLAT:
        raw["inbound_rate_per_minute"] = str(st.session_state.get("rc_inbound", "")).strip() or None
        raw["outbound_rate_per_minute"] = str(st.session_state.get("rc_outbound", "")).strip() or None
    elif mode == DECK:
        upload = st.session_state.get(RATE_DECK_KEY)
        if upload:
            raw["rate_deck"] = parse_rate_deck(upload[1].decode("utf-8-sig", errors="replace"), source=upload[0])
    return rating_settings_from_dict(raw)


def settings_panel(profile: MappingProfile, is_demo: bool, invoice_key: str) -> None:
    """Every setting of the run; values live in session state (kept across page switches)."""
    marker = f"{invoice_key}|{profile.name}"
    if st.session_state.get(DEFAULTS_FOR_KEY) != marker:
        for key, value in defaults_for(profile, is_demo).items():
            st.session_state[key] = value
        st.session_state[DEFAULTS_FOR_KEY] = marker
    for key, value in (("rc_tolerance", DEFAULT_TOLERANCE_S), ("rc_abs_tolerance", 0.01), ("rc_pct_tolerance", 0.1),
                       ("rc_rate_mode", FLAT), ("rc_inbound", ""), ("rc_outbound", ""), ("rc_increment", "60/60")):
        st.session_state.setdefault(key, value)
    cols = st.columns([3, 1, 1, 1])
    cols[0].slider("Time tolerance (s)", 0.0, DEFAULT_MAX_TOLERANCE_S, step=0.5, key="rc_tolerance",
                   persist_state="session",
                   help="|invoice start − CDR start| allowed for a pair (carriers' clocks differ by a few s)")
    cols[1].number_input("Cost tolerance (absolute)", min_value=0.0, step=0.01, format="%.4f",
                         key="rc_abs_tolerance", persist_state="session",
                         help="a cost difference up to this amount is not a discrepancy")
    cols[2].number_input("Cost tolerance (%)", min_value=0.0, max_value=100.0, step=0.05, format="%.3f",
                         key="rc_pct_tolerance", persist_state="session",
                         help="…or up to this share of the invoice line, if larger")
    cols[3].text_input("Billing increment", key="rc_increment", persist_state="session",
                       help="contract increment A/B: 60/60, 6/6, 30/6, 1/1")
    cols = st.columns([2, 1, 1])
    mode = cols[0].radio("Rate", [FLAT, DECK, INVOICE_RATE], key="rc_rate_mode", horizontal=True,
                         persist_state="session")
    if mode == FLAT:
        cols[1].text_input("Inbound per minute", key="rc_inbound", persist_state="session", placeholder="e.g. 0.0220")
        cols[2].text_input("Outbound per minute", key="rc_outbound", persist_state="session", placeholder="e.g. 0.0140")
    elif mode == DECK:
        deck = cols[1].file_uploader("Rate deck CSV", type=["csv"], key="rc_deck_uploader",
                                     help="prefix,direction,rate_per_minute[,increment,connection_fee,effective_from]")
        if deck is not None:
            st.session_state[RATE_DECK_KEY] = (deck.name, deck.getvalue())
        if st.session_state.get(RATE_DECK_KEY):
            cols[2].caption(f"Using {st.session_state[RATE_DECK_KEY][0]}")


def show_kpis(result: ReconResult) -> None:
    cols = st.columns(6)
    for col, kpi in zip(cols, kpis(result.summary), strict=True):
        col.metric(kpi.label, kpi.value, help=kpi.help)
    counts = result.summary["counts"]
    ledger = "; ".join(f"{e['side']}: {e['rows_read']:,} read = {e['matched']:,} matched + {e['in_discrepancies']:,} "
                       f"in discrepancies + {e['excluded']:,} excluded + {e['rejected']:,} rejected"
                       for e in result.summary["ledger"])
    st.caption(f"Matched {counts['matched']:,} (rounding variance {counts['MATCHED_ROUNDING_VARIANCE']:,}). "
               f"Ledger — {ledger}.")


def show_charts(entry: PreparedEntry, result: ReconResult, rating: RatingSettings, tolerance: float) -> None:
    left, right = st.columns(2)
    breakdown = category_breakdown(result)
    bars = px.bar(breakdown, x="category", y="rows", text="rows", color="category",
                  color_discrete_map=CATEGORY_COLORS, hover_data={"disputed": ":.2f"},
                  labels={"category": "Discrepancy category", "rows": "Rows", "disputed": "Disputed amount"},
                  title="Discrepancies by category")
    bars.update_layout(showlegend=False, margin={"t": 50, "b": 10})
    left.plotly_chart(bars, width="stretch")
    offsets = pd.to_numeric(result.matched["time_offset_s"], errors="coerce").dropna()
    hist = px.histogram(pd.DataFrame({"offset": offsets}), x="offset", nbins=60,
                        labels={"offset": "Δt = invoice start − CDR start (s)"},
                        title=f"Time offset of the {len(offsets):,} matched pairs")
    hist.update_layout(yaxis_title="Matched pairs", margin={"t": 50, "b": 10}, bargap=0.05)
    for edge in (-tolerance, tolerance):
        hist.add_vline(x=edge, line_dash="dot", line_color="gray")
    right.plotly_chart(hist, width="stretch")

    curve = entry.sensitivity(rating)
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Scatter(x=curve["tolerance_s"], y=curve["pairs"], name="Pairs within the tolerance",
                                mode="lines+markers"), secondary_y=False)
    figure.add_trace(go.Scatter(x=curve["tolerance_s"], y=curve["discrepancies"], name="Discrepancies",
                                mode="lines+markers", line={"color": "#d62728"}), secondary_y=True)
    figure.add_vline(x=tolerance, line_dash="dash", line_color="black",
                     annotation_text=f"current {tolerance:g} s", annotation_position="top right")
    counted = curve["counted"].iloc[0] if len(curve) else ""
    figure.update_layout(title=f"Tolerance sensitivity ({counted})", margin={"t": 50, "b": 10},
                         legend={"orientation": "h", "y": -0.25})
    figure.update_xaxes(title_text="Time tolerance (s)")
    figure.update_yaxes(title_text="Pairs (rows)", secondary_y=False)
    figure.update_yaxes(title_text="Discrepancies (rows)", secondary_y=True)
    st.plotly_chart(figure, width="stretch")


GROUP_ROW_CSS = {".recon-group-row": {"font-weight": "600", "background-color": "#eef1f6 !important"}}


def results_grid(entry: PreparedEntry, result_key: str, result: ReconResult) -> dict[str, Any] | None:
    """The results in AgGrid (filter, sort); returns the selected row."""
    include_matched = st.toggle("Include matched rows", key="rc_include_matched", persist_state="session")
    counts = category_counts(result, include_matched)
    present = list(counts)
    chosen = st.pills("Categories", present, selection_mode="multi", default=present,
                      format_func=lambda c: f"{CATEGORY_LABELS[c]} ({counts.get(c, 0):,})")
    shown = [c for c in (chosen or present) if c in counts]
    total = sum(counts[c] for c in shown)
    # Only the rows the grid gets are converted for display (0 s can leave 300k discrepancies).
    table = entry.grid_table(result_key, result, include_matched, shown)
    if total > GRID_ROWS_MAX:
        st.caption(f"Showing the first {GRID_ROWS_MAX:,} of {total:,} rows; narrow the categories or download "
                   "the CSVs for all.")
    grouped = st.toggle("Group by category", key="rc_group_by_category", persist_state="session",
                        help="A header row before each category with its row count; pick categories above to "
                             "show or hide their rows.")
    if grouped:
        table = grouped_rows(table, {c: counts[c] for c in shown})
    builder = GridOptionsBuilder.from_dataframe(table)
    builder.configure_default_column(filter=True, sortable=not grouped, resizable=True)
    builder.configure_column("category", pinned="left", header_name="Category")
    if grouped:
        builder.configure_column(GROUP_COLUMN, hide=True)
        # AG Grid's own row grouping is an Enterprise (licensed) feature; header rows styled by a class rule.
        builder.configure_grid_options(rowClassRules={"recon-group-row": f"data.{GROUP_COLUMN} !== ''"})
    builder.configure_column("reason", width=420)
    builder.configure_selection("single")
    builder.configure_pagination(paginationAutoPageSize=False, paginationPageSize=25)
    # AG Grid's page-size picker must offer the chosen size, or it shows an empty box
    builder.configure_grid_options(paginationPageSizeSelector=[25, 50, 100])
    grid = AgGrid(table.reset_index(drop=True), gridOptions=builder.build(), height=480,
                  key=f"rc_grid{'_grouped' if grouped else ''}", update_on=["selectionChanged"], show_toolbar=False,
                  custom_css=GROUP_ROW_CSS)
    selected = grid.selected_rows
    row = None
    if isinstance(selected, pd.DataFrame) and len(selected):
        row = dict(selected.iloc[0])
    elif isinstance(selected, list) and selected:
        row = dict(selected[0])
    if row is not None and row.get(GROUP_COLUMN):
        return None  # a group's header row has no record to explain
    return row


def record_table(record: dict[str, Any] | None) -> pd.DataFrame:
    if not record:
        return pd.DataFrame({"field": [], "value": []})
    return pd.DataFrame({"field": list(record), "value": [str(v) for v in record.values()]})


def show_explanation(explanation: RowExplanation) -> None:
    st.subheader(f"Why: {CATEGORY_LABELS.get(explanation.category, explanation.category)}")
    st.markdown(explanation.headline)
    if explanation.reason:
        st.info(explanation.reason)
    left, right = st.columns(2)
    left.markdown("**Invoice record**" + (" (nearest, not paired)" if explanation.other_is_nearest
                                          and explanation.category == "MISSING_IN_INVOICE" else ""))
    left.dataframe(record_table(explanation.invoice_record), hide_index=True, width="stretch")
    right.markdown("**CDR record**" + (" (nearest, not paired)" if explanation.other_is_nearest
                                       and explanation.category != "MISSING_IN_INVOICE" else ""))
    right.dataframe(record_table(explanation.cdr_record), hide_index=True, width="stretch")
    st.markdown("**Nearest other candidates** (same key, within the widest window; Δt = invoice − CDR)")
    if len(explanation.candidates):
        st.dataframe(explanation.candidates, hide_index=True, width="stretch",
                     column_config={"delta_s": st.column_config.NumberColumn("Δt (s)", format="%.3f")})
    else:
        st.caption("No row on the other side has the same direction and far-end number.")


def downloads(entry: PreparedEntry, result_key: str, result: ReconResult, profile: MappingProfile) -> None:
    st.subheader("Downloads")
    st.caption("Generated from exactly the result shown above when you click.")
    cols = st.columns(len(REPORT_FILES))
    order = (WORKBOOK_FILE, *[n for n in REPORT_FILES if n != WORKBOOK_FILE])
    for col, name in zip(cols, order, strict=True):
        label = "Excel dispute pack" if name == WORKBOOK_FILE else name
        col.download_button(label, data=lambda n=name: entry.report_files(result_key, result)[n].read_bytes(),
                            file_name=name, mime=MIME.get(name[name.rfind("."):], "application/octet-stream"),
                            key=f"rc_download_{name}", type="primary" if name == WORKBOOK_FILE else "secondary")
    if st.button("Save this run to History", key="rc_save"):
        saved = save_run(result, default_store_path(), profile=profile)
        remember_run(saved.run_id)
        st.success(f"Saved run {saved.run_id} in {saved.path}")


# ---------------------------------------------------------------------------------------- page

st.title("Reconcile")
invoice, cdr = invoice_files(), cdr_files()
if invoice.is_demo or cdr.is_demo:
    demo_badge()
st.caption(f"Invoice: **{invoice.label}** · CDR: **{cdr.label}**")
cdr_is_demo_org = cdr.is_demo or cdr.kind == "sandbox"
if invoice.is_demo != cdr_is_demo_org:
    demo_side, page = ("CDR side", "Genesys") if cdr_is_demo_org else ("invoice", "Invoice")
    st.warning(f"The {demo_side} is still the built-in demo: load yours on the {page} page, or expect "
               "almost everything to be a discrepancy.")

profile = run_or_show_error(lambda: chosen_profile(invoice))
if profile is None:
    st.stop()
settings_panel(profile, invoice.is_demo, invoice.key)
entry = run_or_show_error(lambda: with_progress("preparing", lambda p: prepared_run(invoice, cdr, profile, p)))
if entry is None:
    st.stop()
rating = run_or_show_error(lambda: rating_from_widgets(profile, invoice.is_demo))
if rating is None:
    st.stop()
tolerance = float(st.session_state["rc_tolerance"])
classified = run_or_show_error(lambda: entry.classified(tolerance, rating))
if classified is None:
    st.stop()
result_key, result = classified

show_kpis(result)
show_charts(entry, result, rating, tolerance)
st.subheader("Results")
row = results_grid(entry, result_key, result)
if row is not None:
    show_explanation(explain_row(entry.run, result, row))
else:
    st.caption("Select a row in the table to see both records side by side and why it landed where it did.")
downloads(entry, result_key, result, profile)
