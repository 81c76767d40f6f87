"""Saved runs for the pages, kept in the DuckDB run store (logic in :mod:`recon_core.runs.history`).

The Reconcile page saves with ``save_run(result, runs_dir())``; ``runs_dir()`` is now the run
store file (``$XDG_DATA_HOME/recon-workbench/recon.duckdb``), the same store the ``reconcile
--store`` command and the unattended pipeline record into.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from recon_core.reconcile import ReconResult
from recon_core.runs.history import (
    COMPARED,
    SavedRun,
    compare_runs,
    regenerate_files,
    reopen_result,
    runs_table,
    saved_runs,
    stamped,
)
from recon_core.runs.history import save_run as _save_run
from recon_core.store import default_store_path

__all__ = ["COMPARED", "SavedRun", "compare_runs", "list_runs", "regenerate_files", "reopen_result", "runs_dir",
           "runs_table", "save_run", "stamped"]


def runs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where saved runs go: the run store file (default location, honours ``XDG_DATA_HOME``)."""
    return default_store_path(environ)


def save_run(result: ReconResult, directory: Path, created: datetime | None = None) -> SavedRun:
    """Record ``result`` (stamped with a run id and time) in the run store at ``directory`` (see ``runs_dir``)."""
    return _save_run(result, directory, created)


def list_runs(store: Path) -> list[SavedRun]:
    """Every run in the store, newest first ([] before the first run)."""
    return saved_runs(store)
