"""Invoice — upload carrier files, detect or map the carrier's columns, see canonical rows and rejects."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import phonenumbers
import streamlit as st

from pages.ui import (
    CUSTOM_CHOICE,
    CUSTOM_FORM_KEY,
    CUSTOM_PROFILE_KEY,
    INVOICE_FILES_SEEN_KEY,
    INVOICE_PERIOD_KEY,
    INVOICE_PROFILE_KEY,
    INVOICE_UPLOADS_KEY,
    InputFiles,
    chosen_profile,
    default_choice,
    demo_badge,
    detected_profiles,
    file_preview,
    invoice_files,
    run_or_show_error,
    shipped_profiles,
    with_progress,
    write_uploads,
)
from recon_core.analyst.invoice_mapping import (
    DIRECTION_COLUMN,
    DIRECTION_VALUE_COLUMN,
    FIELD_COLUMN,
    MEANING_COLUMN,
    NOT_MAPPED,
    SAMPLE_COLUMN,
    SOURCE_COLUMN,
    MappingForm,
    build_profile,
    direction_values_in,
    form_from_profile,
    guess_direction,
    guess_mapping,
    mapping_from_table,
    mapping_table,
    sample_of,
)
from recon_core.ingest import ingest_files
from recon_core.profiles import COST_SIGNS, DURATION_UNITS, MappingProfile, save_profile, timezone_names
from recon_core.schema import DIRECTIONS

MAPPING_EDITOR_KEY = "mapping_editor"
DIRECTION_EDITOR_KEY = "direction_editor"
UPLOADER_GENERATION_KEY = "invoice_uploader_generation"
INGEST_KEY = "invoice_ingest"
PENDING_CHOICE_KEY = "invoice_profile_pending"
ROWS_SHOWN = 1000
PREVIEW_SHOWN = 20


@dataclass(frozen=True)
class IngestView:
    """What the page shows of one ingest (kept in session state per files + profile)."""

    key: str
    rows_read: int
    rows_normalized: int
    rows_rejected: int
    notes: tuple[str, ...]
    canonical: pd.DataFrame
    rejects: pd.DataFrame


def ingest_view(files: InputFiles, profile: MappingProfile) -> IngestView:
    """Ingest ``files`` with ``profile`` once per (files, profile) in this session."""
    key = files.key + "|" + profile.to_yaml()
    cached = st.session_state.get(INGEST_KEY)
    if isinstance(cached, IngestView) and cached.key == key:
        return cached
    result = with_progress("reading the invoice", lambda p: ingest_files(profile, list(files.paths), progress=p))
    canonical = result.canonical_frame()
    if len(canonical):
        starts = pd.to_datetime(canonical["start_time_utc"])
        st.session_state[INVOICE_PERIOD_KEY] = (starts.min().date(), starts.max().date())
    notes = tuple(f"{f.source_file}: {n}" for f in result.files for n in f.notes)
    view = IngestView(key, result.rows_read, result.rows_normalized, result.rows_rejected, notes,
                      canonical.head(ROWS_SHOWN), result.rejects_frame().head(ROWS_SHOWN * 5))
    st.session_state[INGEST_KEY] = view
    return view


def sample_preview(files: InputFiles, profile: MappingProfile) -> IngestView:
    """The first rows of the first file normalized with ``profile`` (the mapping's live preview)."""
    sample_paths = write_uploads([(files.paths[0].name, sample_of(files.paths[0]))])
    result = ingest_files(profile, list(sample_paths))
    return IngestView("", result.rows_read, result.rows_normalized, result.rows_rejected, (),
                      result.canonical_frame().head(PREVIEW_SHOWN), result.rejects_frame().head(PREVIEW_SHOWN))


def reset_for(files: InputFiles) -> None:
    """New files: choose the detected profile and start a custom mapping from the closest one."""
    preview = file_preview(files)
    fits = detected_profiles(files)
    closest = next((p for p in shipped_profiles() if fits and p.name == fits[0].name and fits[0].found), None)
    form = (form_from_profile(closest, preview.columns) if closest is not None
            else MappingForm(columns=guess_mapping(preview.columns)))
    st.session_state[CUSTOM_FORM_KEY] = form
    st.session_state[CUSTOM_PROFILE_KEY] = None
    st.session_state[INVOICE_PROFILE_KEY] = default_choice(files)
    st.session_state[INVOICE_FILES_SEEN_KEY] = files.key
    for key in (MAPPING_EDITOR_KEY, DIRECTION_EDITOR_KEY, *FORM_WIDGETS):
        st.session_state.pop(key, None)


# widget key -> MappingForm field it edits
FORM_WIDGETS = {
    "map_timezone": "timezone", "map_timestamp_format": "timestamp_format", "map_duration_unit": "duration_unit",
    "map_cost_sign": "cost_sign", "map_increment": "billing_increment", "map_region": "default_region",
    "map_currency": "default_currency", "map_default_direction": "default_direction",
}


def mapping_form(files: InputFiles, form: MappingForm) -> MappingForm:
    """The column table, the direction values and the reading settings; returns the edited form."""
    preview = file_preview(files)
    st.markdown("**Where each field is in your file** — pick the column that holds it, or leave it empty. "
                "One column may feed several fields (e.g. a call SID that is both the record id and the call id).")
    edited = st.data_editor(
        mapping_table(form.columns, preview.rows), key=MAPPING_EDITOR_KEY, hide_index=True, width="stretch",
        disabled=[FIELD_COLUMN, SAMPLE_COLUMN, MEANING_COLUMN],
        column_config={
            FIELD_COLUMN: st.column_config.TextColumn(FIELD_COLUMN, width=140),
            SOURCE_COLUMN: st.column_config.SelectboxColumn(
                SOURCE_COLUMN, options=[NOT_MAPPED, *preview.columns], required=True, width=170,
                help="the file's column that holds this field"),
            SAMPLE_COLUMN: st.column_config.TextColumn(SAMPLE_COLUMN, width=150),
        },
    )
    columns = mapping_from_table(edited)
    if columns != {f: c for f, c in form.columns.items() if c}:
        # Run again so the table shows the first value of the column just picked.
        st.session_state[CUSTOM_FORM_KEY] = replace(form, columns=columns)
        st.rerun()
    for key, name in FORM_WIDGETS.items():
        st.session_state.setdefault(key, getattr(form, name))
    left, right = st.columns(2)
    zones = timezone_names()
    left.selectbox("Time zone of the invoice's times", zones, key="map_timezone", persist_state="session",
                   help="type to search, e.g. New_York; times that carry their own offset ignore it")
    right.text_input("Timestamp format", key="map_timestamp_format", persist_state="session",
                     help="auto, or a strftime pattern such as %m/%d/%Y %H:%M:%S")
    left.selectbox("Duration unit", DURATION_UNITS, key="map_duration_unit", persist_state="session")
    right.selectbox("Cost sign", COST_SIGNS, key="map_cost_sign", persist_state="session",
                    help="absolute: charges may be written negative; as_is: credits stay negative")
    left.text_input("Carrier's billing increment", key="map_increment", persist_state="session",
                    help="A/B in seconds, e.g. 60/60, 6/6, 1/1")
    right.selectbox("Default region for numbers without a country code", sorted(phonenumbers.SUPPORTED_REGIONS),
                    key="map_region", persist_state="session")
    left.text_input("Default currency (when the file has none)", key="map_currency", persist_state="session",
                    help="e.g. USD")
    right.selectbox("Direction when the file has none", ["", *DIRECTIONS], key="map_default_direction",
                    persist_state="session")

    direction_column = columns.get("direction")
    values = direction_values_in(preview.rows, direction_column)
    known = {v: guess_direction(v) for v in values}
    spelled = {v.lower(): v for v in known}
    for value, meaning in form.direction_values.items():  # earlier choices win over guesses
        known[spelled.get(value.lower(), value)] = meaning
    if st.session_state.get("direction_editor_for") != direction_column:
        st.session_state.pop(DIRECTION_EDITOR_KEY, None)
        st.session_state["direction_editor_for"] = direction_column
    direction_values: dict[str, str] = {}
    if direction_column:
        st.markdown(f"**Direction values** in column `{direction_column}`")
        table = pd.DataFrame({DIRECTION_VALUE_COLUMN: list(known), DIRECTION_COLUMN: list(known.values())})
        edited_directions = st.data_editor(
            table, key=DIRECTION_EDITOR_KEY, hide_index=True, disabled=[DIRECTION_VALUE_COLUMN],
            column_config={DIRECTION_COLUMN: st.column_config.SelectboxColumn(DIRECTION_COLUMN,
                                                                              options=["", *DIRECTIONS])})
        direction_values = {str(v): str(d or "") for v, d in zip(edited_directions[DIRECTION_VALUE_COLUMN],
                                                                 edited_directions[DIRECTION_COLUMN], strict=True)}
    settings = {name: st.session_state[key] for key, name in FORM_WIDGETS.items()}
    return MappingForm(columns=columns, direction_values=direction_values, name=form.name, carrier=form.carrier,
                       **{k: ("" if v is None else str(v)) for k, v in settings.items()})


def save_form(form: MappingForm, name: str) -> None:
    """Save the mapping as mappings/<name>.yaml (never over an existing profile)."""
    profile = build_profile(MappingForm(**{**form.__dict__, "name": name.strip(),
                                           "carrier": form.carrier or name.strip()}), name.strip() or "new profile")
    path = save_profile(profile, overwrite=False)
    st.session_state[PENDING_CHOICE_KEY] = profile.name  # the selectbox takes it on the next run
    st.session_state["invoice_saved_message"] = (f"Saved as profile **{profile.name}** ({path.name}); "
                                                 "it is now selected.")


def show_ingest(view: IngestView) -> None:
    cols = st.columns(3)
    cols[0].metric("Rows read", f"{view.rows_read:,}")
    cols[1].metric("Normalized", f"{view.rows_normalized:,}")
    cols[2].metric("Rejected", f"{view.rows_rejected:,}")
    for note in view.notes:
        st.info(note)
    shown = f" (first {len(view.canonical):,})" if len(view.canonical) < view.rows_normalized else ""
    st.subheader(f"Canonical call records{shown}")
    st.dataframe(view.canonical, hide_index=True, width="stretch")
    st.subheader(f"Rejected rows ({view.rows_rejected:,})")
    if len(view.rejects):
        st.caption("Each rejected row with its line in the file and the reason; fix the file or the mapping.")
        st.dataframe(view.rejects, hide_index=True, width="stretch",
                     column_config={"source_line": st.column_config.NumberColumn("line", format="%d")})
    else:
        st.caption("No row was rejected.")


# ---------------------------------------------------------------------------------------- page

st.title("Invoice — upload and map")

generation = st.session_state.get(UPLOADER_GENERATION_KEY, 0)
uploads = st.file_uploader(
    "Carrier invoice files (CSV, TSV, XLSX, XML, JSON, JSON Lines; gzip accepted) — drag and drop",
    accept_multiple_files=True, key=f"invoice_uploader_{generation}",
)
if uploads:
    st.session_state[INVOICE_UPLOADS_KEY] = [(u.name, u.getvalue()) for u in uploads]
files = invoice_files()
if files.is_demo:
    demo_badge()
    st.caption(f"No invoice uploaded yet: showing the built-in demo ({files.label}), a month of the "
               "sandbox org's calls with known faults.")
else:
    st.caption(f"Using {len(files.paths)} uploaded file(s): {', '.join(files.names)} — kept while you "
               "switch pages.")
    if st.button("Remove the uploads (back to the demo invoice)"):
        st.session_state.pop(INVOICE_UPLOADS_KEY, None)
        st.session_state[UPLOADER_GENERATION_KEY] = generation + 1
        st.rerun()

if run_or_show_error(lambda: file_preview(files)) is None:
    st.stop()
if st.session_state.get(INVOICE_FILES_SEEN_KEY) != files.key or CUSTOM_FORM_KEY not in st.session_state:
    reset_for(files)

fits = detected_profiles(files)
best = fits[0] if fits else None
if best is not None and best.fits:
    st.success(f"Detected carrier profile **{best.describe()}**.")
elif best is not None:
    st.warning(f"No shipped profile fits this file (closest {best.describe()}; missing "
               f"{', '.join(repr(m) for m in best.missing)}). Map its columns below.")
options = [p.name for p in shipped_profiles()] + [CUSTOM_CHOICE]
if pending := st.session_state.pop(PENDING_CHOICE_KEY, None):
    st.session_state[INVOICE_PROFILE_KEY] = pending
if st.session_state.get(INVOICE_PROFILE_KEY) not in options:
    st.session_state[INVOICE_PROFILE_KEY] = default_choice(files)
st.selectbox("Mapping profile", options, key=INVOICE_PROFILE_KEY, persist_state="session",
             help="the carrier's shipped profile, or your own mapping of the columns")
if message := st.session_state.pop("invoice_saved_message", None):
    st.success(message)

if st.session_state[INVOICE_PROFILE_KEY] == CUSTOM_CHOICE:
    st.subheader("Map the columns")
    left, right = st.columns([3, 2], gap="large")
    with left:
        form = mapping_form(files, st.session_state[CUSTOM_FORM_KEY])
        st.session_state[CUSTOM_FORM_KEY] = form
    with right:
        st.markdown("**Preview** (first rows of the first file, normalized)")
        profile = run_or_show_error(lambda: build_profile(form, file_columns=file_preview(files).columns))
        st.session_state[CUSTOM_PROFILE_KEY] = None if profile is None else profile.to_dict()
        if profile is not None:
            sample = run_or_show_error(lambda: sample_preview(files, profile))
            if sample is not None:
                st.caption(f"{sample.rows_normalized} of {sample.rows_read} sample rows normalized, "
                           f"{sample.rows_rejected} rejected")
                st.dataframe(sample.canonical, hide_index=True, width="stretch")
                if len(sample.rejects):
                    st.dataframe(sample.rejects[["source_line", "reason"]], hide_index=True, width="stretch")
            with st.form("save_profile"):
                name = st.text_input("Save this mapping as a new profile named",
                                     help="letters, digits, '_' or '-'; a shipped profile is never overwritten")
                if st.form_submit_button("Save profile"):
                    run_or_show_error(lambda: save_form(form, name))
                    if "invoice_saved_message" in st.session_state:
                        st.rerun()

if st.session_state[INVOICE_PROFILE_KEY] == CUSTOM_CHOICE and not st.session_state.get(CUSTOM_PROFILE_KEY):
    st.info("The whole file is read once the mapping has no problems left.")
    st.stop()
profile_now = run_or_show_error(lambda: chosen_profile(files))
if profile_now is not None:
    view = run_or_show_error(lambda: ingest_view(files, profile_now))
    if view is not None:
        show_ingest(view)
