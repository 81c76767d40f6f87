"""UI helpers shared by the pages: errors, badges, session state and caches.

The only module besides the pages themselves that imports streamlit. Everything a page keeps
between reruns and page switches lives under the ``*_KEY`` names below; everything cached
across reruns (the demo files, prepared runs, the sandbox server) is built here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from recon_core.analyst.invoice_mapping import FilePreview, ProfileFit, preview_file, rank_profiles
from recon_core.analyst.results_view import GRID_ROWS_MAX, results_table, tolerance_sensitivity
from recon_core.demo import DemoFiles, build_demo_files
from recon_core.errors import GenesysConfigError, ProfileError, ReconError
from recon_core.genesys import ClientCredentials
from recon_core.genesys.settings import CLIENT_ID_ENV, CLIENT_SECRET_ENV
from recon_core.profiles import (
    MappingProfile,
    load_carrier_profile,
    load_profile,
    profile_from_dict,
    shipped_profile_paths,
)
from recon_core.rating import RatingSettings
from recon_core.reconcile import PreparedRun, ReconcileSettings, ReconResult, classify, prepare_files
from recon_core.reports.reconciliation import write_reconciliation_reports
from recon_core.runs.history import stamped
from recon_core.sandbox.server import SandboxServer

T = TypeVar("T")

# Session state (survives page switches; nothing uploaded is lost by navigating).
INVOICE_UPLOADS_KEY = "invoice_uploads"          # [(file name, bytes)]
INVOICE_PROFILE_KEY = "invoice_profile"          # shipped profile name or CUSTOM_CHOICE
INVOICE_FILES_SEEN_KEY = "invoice_files_seen"    # content key of the files the choice was made for
CUSTOM_FORM_KEY = "invoice_custom_form"          # recon_core.analyst.invoice_mapping.MappingForm
CUSTOM_PROFILE_KEY = "invoice_custom_profile"    # profile dict of a valid custom mapping, else None
INVOICE_PERIOD_KEY = "invoice_period"            # (first, last) UTC date of the invoice's calls
CDR_SOURCE_KEY = "cdr_source"                    # CdrFiles chosen on the Genesys page (None = demo)
HISTORY_KEY = "run_history"                      # run ids saved in this session, newest last

CUSTOM_CHOICE = "Custom mapping…"
DEMO_TEXT = "demo data"
UPLOAD_DIR_NAME = "recon-workbench-uploads"
PREPARED_RUNS_KEPT = 2
RESULTS_KEPT = 12
TABLES_KEPT = 4

CATEGORY_COLORS = {
    "Cost variance": "#d62728", "Missing in CDR": "#ff7f0e", "Missing in invoice": "#1f77b4",
    "Duplicate charge": "#9467bd",
}


# --------------------------------------------------------------------------------------------
# Errors, badges, progress
# --------------------------------------------------------------------------------------------

def show_error(exc: ReconError) -> None:
    """A ReconError as a message; a profile error lists every problem."""
    problems = getattr(exc, "problems", ())
    if problems:
        st.error(f"{'The mapping' if isinstance(exc, ProfileError) else 'The input'} has "
                 f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:")
        st.markdown("\n".join(f"- {p}" for p in problems))
    else:
        st.error(str(exc))


def run_or_show_error(action: Callable[[], T]) -> T | None:
    """Run ``action``; a ReconError becomes a clear message on the page, never a traceback."""
    try:
        return action()
    except ReconError as exc:
        show_error(exc)
        return None


def demo_badge() -> None:
    """Visible marker that the page shows built-in demo data."""
    st.markdown(
        "<span style='background:#fff3cd;color:#664d03;border:1px solid #ffe69c;border-radius:12px;"
        f"padding:2px 10px;font-size:0.85rem'>{DEMO_TEXT}</span>",
        unsafe_allow_html=True,
    )


def progress_callback(bar: Any) -> Callable[[float, str], None]:
    """Adapt an ``st.progress`` element to the engine's ``progress(fraction, message)`` protocol."""

    def report(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    return report


def with_progress(label: str, action: Callable[[Callable[[float, str], None]], T]) -> T:
    """Run ``action(progress)`` under a progress bar that disappears when it is done."""
    bar = st.progress(0.0, text=label)
    try:
        return action(progress_callback(bar))
    finally:
        bar.empty()


# --------------------------------------------------------------------------------------------
# Demo data and the sandbox
# --------------------------------------------------------------------------------------------

@st.cache_resource(show_spinner="Generating the demo month (once)…")
def demo_files() -> DemoFiles:
    """The demo invoice and conversations, generated once into the cache folder (or a temp folder)."""
    try:
        return build_demo_files()
    except OSError:  # no writable cache folder: the demo still has to work
        return build_demo_files(Path(tempfile.gettempdir()) / "recon-workbench-demo")


@st.cache_resource(show_spinner="Starting the local Genesys Cloud sandbox…")
def demo_sandbox() -> SandboxServer:
    """The local sandbox serving the demo org, kept running for the app's lifetime."""
    from recon_core.demo import demo_sandbox_config

    return SandboxServer(demo_sandbox_config()).start()


# --------------------------------------------------------------------------------------------
# Input files
# --------------------------------------------------------------------------------------------

def content_key(parts: Sequence[tuple[str, bytes]]) -> str:
    """A key that changes when any file's name or content changes."""
    digest = hashlib.sha256()
    for name, data in parts:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def write_uploads(parts: Sequence[tuple[str, bytes]]) -> tuple[Path, ...]:
    """Uploaded files written under the temp dir, one folder per content (so paths are stable)."""
    folder = Path(tempfile.gettempdir()) / UPLOAD_DIR_NAME / content_key(parts)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (name, data) in enumerate(parts):
        path = folder / f"{index}" / Path(name).name
        if not path.exists() or path.stat().st_size != len(data):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        paths.append(path)
    return tuple(paths)


@dataclass(frozen=True)
class InputFiles:
    """One side's files as the engine reads them."""

    label: str
    paths: tuple[Path, ...]
    key: str
    is_demo: bool
    kind: str = "upload"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.paths)


def invoice_files() -> InputFiles:
    """The uploaded invoice files, or the demo invoice when none is uploaded."""
    uploads = st.session_state.get(INVOICE_UPLOADS_KEY) or []
    if uploads:
        names = ", ".join(n for n, _ in uploads)
        return InputFiles(names, write_uploads(uploads), content_key(uploads), False)
    demo = demo_files()
    return InputFiles(f"demo Twilio invoice ({demo.invoice.name})", (demo.invoice,), "demo-" + demo.fingerprint,
                      True, "demo")


def cdr_files() -> InputFiles:
    """The CDR side chosen on the Genesys page, or the demo conversations."""
    chosen = st.session_state.get(CDR_SOURCE_KEY)
    if isinstance(chosen, InputFiles) and all(p.exists() for p in chosen.paths):
        return chosen
    demo = demo_files()
    return InputFiles(f"demo Genesys conversations ({demo.conversations.name})", (demo.conversations,),
                      "demo-" + demo.fingerprint, True, "demo")


def invoice_period() -> tuple[date, date]:
    """The invoice's first and last UTC day (the demo month until an invoice is read)."""
    period = st.session_state.get(INVOICE_PERIOD_KEY)
    if period and not invoice_files().is_demo:
        return period
    demo = demo_files()
    return demo.start, demo.end


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False)
def _profiles_in(stamp: tuple[tuple[str, float], ...]) -> list[MappingProfile]:
    profiles = []
    for path, _mtime in stamp:
        try:
            profiles.append(load_profile(path))
        except ProfileError:
            continue  # an invalid file in mappings/ is reported by the profile tests, not here
    return profiles


def shipped_profiles() -> list[MappingProfile]:
    """Every valid profile in mappings/ (re-read when a file there changes)."""
    return _profiles_in(tuple((str(p), p.stat().st_mtime) for p in shipped_profile_paths()))


@st.cache_data(show_spinner="Reading the file's columns…", max_entries=8)
def _preview(key: str, path: str, name: str) -> FilePreview:
    return preview_file(Path(path), name)


def file_preview(files: InputFiles) -> FilePreview:
    """Columns and first rows of the first file (raises InputFileError when unreadable)."""
    return _preview(files.key, str(files.paths[0]), files.paths[0].name)


def detected_profiles(files: InputFiles) -> list[ProfileFit]:
    """Shipped profiles ranked by how well they fit the first file's columns."""
    return rank_profiles(file_preview(files).columns, shipped_profiles())


def default_choice(files: InputFiles) -> str:
    """The profile to start with for ``files``: the one that fits, else a custom mapping."""
    if files.is_demo:
        return demo_files().profile
    fits = detected_profiles(files)
    return fits[0].name if fits and fits[0].fits else CUSTOM_CHOICE


def chosen_profile(files: InputFiles) -> MappingProfile:
    """The profile the invoice is read with: the analyst's choice, else the detected one.

    Raises:
        ProfileError: the custom mapping is not valid yet, or the profile cannot be loaded.
        InputFileError: the file cannot be read to detect its carrier.
    """
    choice = st.session_state.get(INVOICE_PROFILE_KEY)
    if choice is None or st.session_state.get(INVOICE_FILES_SEEN_KEY) != files.key:
        choice = default_choice(files)
    if choice == CUSTOM_CHOICE:
        data = st.session_state.get(CUSTOM_PROFILE_KEY)
        if not data:
            raise ProfileError("your mapping", ["map the invoice's columns on the Invoice page first"])
        return profile_from_dict(data, "your mapping")
    return load_carrier_profile(choice)


# --------------------------------------------------------------------------------------------
# Prepared runs: the expensive part, once per set of inputs
# --------------------------------------------------------------------------------------------

def rating_key(rating: RatingSettings) -> str:
    return json.dumps(rating.to_dict(), sort_keys=True, default=str)


@dataclass
class PreparedEntry:
    """A prepared run and what was derived from it (results per setting, curves, report folders)."""

    key: str
    run: PreparedRun
    lock: threading.RLock = field(default_factory=threading.RLock)
    results: OrderedDict[str, ReconResult] = field(default_factory=OrderedDict)
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    reports: dict[str, dict[str, Path]] = field(default_factory=dict)
    tables: OrderedDict[tuple[str, bool, tuple[str, ...]], pd.DataFrame] = field(default_factory=OrderedDict)

    def classified(self, tolerance_s: float, rating: RatingSettings) -> tuple[str, ReconResult]:
        """``classify(run, tolerance, rating)``, remembered per setting; returns (result key, result)."""
        key = f"{float(tolerance_s):g}|{rating_key(rating)}"
        with self.lock:
            if key in self.results:
                self.results.move_to_end(key)
            else:
                # The run's DuckDB connection is not shared between threads at the same time.
                self.results[key] = classify(self.run, float(tolerance_s), rating)
                while len(self.results) > RESULTS_KEPT:
                    self.results.popitem(last=False)
            return hashlib.sha256((self.key + key).encode()).hexdigest()[:16], self.results[key]

    def sensitivity(self, rating: RatingSettings) -> pd.DataFrame:
        """The tolerance sensitivity curve for ``rating`` (independent of the current tolerance)."""
        key = rating_key(rating)
        with self.lock:
            if key not in self.curves:
                self.curves[key] = tolerance_sensitivity(self.run, rating)
            return self.curves[key]

    def grid_table(self, result_key: str, result: ReconResult, include_matched: bool,
                   categories: Sequence[str]) -> pd.DataFrame:
        """The results grid's rows (at most ``GRID_ROWS_MAX``), remembered: selecting a row reruns the page."""
        key = (result_key, include_matched, tuple(categories))
        with self.lock:
            if key in self.tables:
                self.tables.move_to_end(key)
            else:
                self.tables[key] = results_table(result, include_matched, categories=categories, limit=GRID_ROWS_MAX)
                while len(self.tables) > TABLES_KEPT:
                    self.tables.popitem(last=False)
            return self.tables[key]

    def report_files(self, result_key: str, result: ReconResult) -> dict[str, Path]:
        """The six report files of ``result``, written once into a temp folder."""
        with self.lock:
            paths = self.reports.get(result_key)
            if paths is None or not all(p.exists() for p in paths.values()):
                # Stamped with a run id and time, like a saved run; the rows are the result's own.
                paths = write_reconciliation_reports(stamped(result), Path(tempfile.mkdtemp(prefix="recon_reports_")))
                self.reports[result_key] = paths
            return paths


@st.cache_resource
def _prepared_entries() -> tuple[OrderedDict[str, PreparedEntry], threading.Lock]:
    return OrderedDict(), threading.Lock()


def prepared_key(invoice: InputFiles, cdr: InputFiles, profile: MappingProfile) -> str:
    text = json.dumps([invoice.key, cdr.key, profile.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Prepare never depends on rates: it runs with a rating that needs none, and the page classifies
# with the analyst's rating afterwards.
PREPARE_SETTINGS = ReconcileSettings(rating=RatingSettings(rate_source="invoice_rate"))


def prepared_run(invoice: InputFiles, cdr: InputFiles, profile: MappingProfile,
                 progress: Callable[[float, str], None] | None = None) -> PreparedEntry:
    """Ingest, load and prepare once per (invoice, CDR, profile); later calls reuse it.

    Raises:
        ReconError subclasses for unreadable inputs.
    """
    entries, lock = _prepared_entries()
    key = prepared_key(invoice, cdr, profile)
    with lock:
        entry = entries.get(key)
        if entry is not None:
            entries.move_to_end(key)
            return entry
    run = prepare_files(list(invoice.paths), list(cdr.paths), profile, PREPARE_SETTINGS, progress=progress)
    entry = PreparedEntry(key, run)
    with lock:
        entries[key] = entry
        while len(entries) > PREPARED_RUNS_KEPT:
            # Not closed here: a session may still be reading it; it goes with its last reference.
            entries.popitem(last=False)
    return entry


def remember_run(run_id: str) -> None:
    """Note a run saved in this session (History lists these first)."""
    history = list(st.session_state.get(HISTORY_KEY, []))
    if run_id not in history:
        history.append(run_id)
    st.session_state[HISTORY_KEY] = history

def configured_credentials() -> tuple[ClientCredentials | None, str]:
    """Credentials from st.secrets or the environment, and where they came from (never the secret)."""
    try:
        secrets = {k: str(st.secrets[k]) for k in (CLIENT_ID_ENV, CLIENT_SECRET_ENV) if k in st.secrets}
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        secrets = {}
    for source, values in (("Streamlit secrets", secrets), ("environment", os.environ)):
        try:
            return ClientCredentials.from_env(values), source
        except GenesysConfigError:
            continue
    return None, ""


def chosen_credentials(client_id: str, secret: str, configured: ClientCredentials | None, where: str,
                       permissions: str) -> ClientCredentials | None:
    """Typed credentials (this session only) first, else configured ones; says which, or how to give some."""
    if client_id.strip() and secret.strip():
        credentials = ClientCredentials(client_id.strip(), secret.strip())
        st.caption(f"Using the client id typed above ({credentials.client_id_hint}) for this session.")
        return credentials
    if configured is not None:
        st.caption(f"Using client {configured.client_id_hint} from the {where}.")
        return configured
    st.info(f"Type a client id and secret, or set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} (environment or "
            f".streamlit/secrets.toml). The client's role needs {permissions}.")
    return None
