"""Genesys — fetch the CDR side from Genesys Cloud (or the local sandbox), or upload conversation details."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pages.ui import (
    CDR_SOURCE_KEY,
    InputFiles,
    cdr_files,
    chosen_credentials,
    configured_credentials,
    content_key,
    demo_badge,
    demo_sandbox,
    invoice_period,
    run_or_show_error,
    with_progress,
    write_uploads,
)
from recon_core.genesys import ClientCredentials, ClientSettings, GenesysClient, resolve_endpoints
from recon_core.genesys.fetch import FetchResult, fetch_conversation_days, write_fetch_outputs
from recon_core.genesys.legs import LegExtraction, load_cdr_legs
from recon_core.genesys.regions import GenesysEndpoints, load_regions
from recon_core.store import default_store_path, open_store

SANDBOX = "Local sandbox (demo org)"
REGION = "Genesys Cloud region"
FETCHES_DIR_NAME = "fetches"
CDR_UPLOADS_KEY = "cdr_uploads"
FETCH_RESULT_KEY = "genesys_last_fetch"
CDR_UPLOAD_VIEW_KEY = "cdr_upload_view"
UPLOADER_GENERATION_KEY = "cdr_uploader_generation"



def fetch_days(endpoints: GenesysEndpoints, credentials: ClientCredentials, start: date, end: date,
               recent_via_query: bool, progress: Any) -> tuple[FetchResult, Path]:
    """Fetch the days not yet in the store, then write the range's legs next to the store."""
    with open_store() as store, GenesysClient(endpoints, credentials, ClientSettings()) as client:
        result = fetch_conversation_days(client, store, start, end, recent_via_query=recent_via_query,
                                         progress=progress)
        out = default_store_path().parent / FETCHES_DIR_NAME / f"{result.org_key}-{result.filter_hash}-{start}-{end}"
        written = write_fetch_outputs(store, result, out)
    return result, written["legs"]


def use_fetched(result: FetchResult, legs: Path, from_sandbox: bool) -> None:
    org = result.org_name or result.org_key
    label = f"Genesys Cloud {org}, {result.start} to {result.end}"
    # The sandbox serves the demo org: its calls are the demo invoice's calls.
    st.session_state[CDR_SOURCE_KEY] = InputFiles(label, (legs,), f"fetch-{legs.parent.name}-{legs.stat().st_mtime}",
                                                  False, "sandbox" if from_sandbox else "genesys")
    st.session_state[FETCH_RESULT_KEY] = result


def show_fetch(result: FetchResult) -> None:
    days = pd.DataFrame([d.to_dict() for d in result.days])
    legs = int(sum(d.legs for d in result.days if d.status != "pending"))
    cols = st.columns(4)
    cols[0].metric("Days in the store", f"{len(result.available_days)} of {len(result.days)}")
    cols[1].metric("Fetched now", f"{sum(d.status == 'fetched' for d in result.days)}")
    cols[2].metric("Reused from before", f"{sum(d.status == 'stored' for d in result.days)}")
    cols[3].metric("Billable legs", f"{legs:,}")
    if result.pending_days:
        st.warning(f"{len(result.pending_days)} day(s) are still being prepared by Genesys Cloud; fetch again later.")
    st.dataframe(days, hide_index=True, width="stretch")


def cdr_upload_view(parts: list[tuple[str, bytes]]) -> LegExtraction:
    """Billable legs of the uploaded conversation-details files (read once per upload)."""
    key = content_key(parts)
    cached = st.session_state.get(CDR_UPLOAD_VIEW_KEY)
    if cached and cached[0] == key:
        return cached[1]
    paths = write_uploads(parts)
    extraction = load_cdr_legs(list(paths))
    st.session_state[CDR_UPLOAD_VIEW_KEY] = (key, extraction)
    st.session_state[CDR_SOURCE_KEY] = InputFiles(", ".join(n for n, _ in parts), paths, key, False, "upload")
    return extraction


# ---------------------------------------------------------------------------------------- page

st.title("Genesys — fetch CDRs")
# Filled at the end, so it names what this run chose (an upload below, a fetch).
header = st.container()

fetch_tab, upload_tab = st.tabs(["Fetch from Genesys Cloud", "Upload conversation details"])

with fetch_tab:
    source = st.radio("Connect to", [SANDBOX, REGION], key="genesys_source", horizontal=True,
                      persist_state="session",
                      help="the sandbox serves the demo org on this machine; a region is your real org")
    days = st.date_input("UTC days (default: the invoice's period)", value=invoice_period(), key="genesys_days",
                         persist_state="session")
    credentials: ClientCredentials | None = None
    endpoints: GenesysEndpoints | None = None
    if source == REGION:
        keys = [r.key for r in load_regions()]
        region = st.selectbox("Region", keys, key="genesys_region", persist_state="session")
        configured, where = configured_credentials()
        client_id = st.text_input("OAuth client id", key="genesys_client_id", persist_state="session",
                                  placeholder=configured.client_id if configured else "")
        secret = st.text_input("OAuth client secret", type="password", key="genesys_client_secret",
                               persist_state="session",
                               help="kept in this browser session only: never saved, never shown")
        credentials = chosen_credentials(client_id, secret, configured, where, "analytics:conversationDetail:view")
        endpoints = run_or_show_error(lambda: resolve_endpoints(region))
    recent = st.checkbox("Read days not yet available to detail jobs with the synchronous query (provisional)",
                         key="genesys_recent", persist_state="session")
    ready = isinstance(days, tuple) and len(days) == 2 and (source == SANDBOX or (credentials and endpoints))
    if st.button("Fetch", type="primary", disabled=not ready):
        if source == SANDBOX:
            server = demo_sandbox()
            endpoints = GenesysEndpoints(server.base_url, server.base_url, "sandbox")
            credentials = ClientCredentials(server.config.client_id, server.config.client_secret)
        start, end = days
        target, who = endpoints, credentials
        fetched = None if target is None or who is None else run_or_show_error(lambda: with_progress(
            "connecting", lambda p: fetch_days(target, who, start, end, recent, p)))
        if fetched is not None:
            use_fetched(*fetched, from_sandbox=source == SANDBOX)
            st.rerun()
    last_fetch = st.session_state.get(FETCH_RESULT_KEY)
    if isinstance(last_fetch, FetchResult) and cdr_files().kind in ("genesys", "sandbox"):
        show_fetch(last_fetch)

with upload_tab:
    uploads = st.file_uploader("Conversation-details JSON or JSON Lines (gzip accepted)", accept_multiple_files=True,
                               key=f"cdr_uploader_{st.session_state.get(UPLOADER_GENERATION_KEY, 0)}")
    if uploads:
        st.session_state[CDR_UPLOADS_KEY] = [(u.name, u.getvalue()) for u in uploads]
    parts = st.session_state.get(CDR_UPLOADS_KEY) or []
    if parts:
        extraction = run_or_show_error(lambda: cdr_upload_view(parts))
        if extraction is not None:
            cols = st.columns(3)
            cols[0].metric("Conversations read", f"{extraction.conversations_read:,}")
            cols[1].metric("Billable legs", f"{len(extraction.legs):,}")
            cols[2].metric("Held back (in progress)", f"{len(extraction.held_back):,}")
            st.dataframe(extraction.legs.head(1000), hide_index=True, width="stretch")
            if extraction.held_back:
                st.dataframe(pd.DataFrame([h.to_dict() for h in extraction.held_back]), hide_index=True)

with header:
    current = cdr_files()
    if current.is_demo:
        demo_badge()
        st.caption(f"Reconcile uses the {current.label} until you fetch or upload call records here.")
    else:
        st.caption(f"Reconcile uses: **{current.label}**.")
        if st.button("Go back to the demo conversations"):
            st.session_state.pop(CDR_SOURCE_KEY, None)
            st.session_state.pop(CDR_UPLOADS_KEY, None)
            st.session_state.pop(CDR_UPLOAD_VIEW_KEY, None)
            st.session_state[UPLOADER_GENERATION_KEY] = st.session_state.get(UPLOADER_GENERATION_KEY, 0) + 1
            st.rerun()
