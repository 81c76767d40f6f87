"""Reconciliation workbench — Streamlit router. Pages live in pages/; the engine in recon_core/."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Telecom reconciliation workbench", page_icon="📞", layout="wide")

PAGES = [
    st.Page("pages/invoice.py", title="Invoice — upload and map", icon="🧾", default=True),
    st.Page("pages/genesys.py", title="Genesys — fetch CDRs", icon="☎️"),
    st.Page("pages/reconcile.py", title="Reconcile", icon="⚖️"),
    st.Page("pages/rt_batch.py", title="Real-time vs batch", icon="⏱️"),
    st.Page("pages/history.py", title="History", icon="🗂️"),
]

st.navigation(PAGES).run()
