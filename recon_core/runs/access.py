"""Opening the store beside other programs: short writes, read-only readers, retry on a lock.

DuckDB lets one process open a database file read-write, or any number of processes open it
read-only, never both. So the workbench keeps the file open only as long as it takes: a run
writes its records in short transactions (open, write, close) and the app reads read-only,
copies what it shows into memory and closes. Whoever finds the file locked waits and tries
again with a growing pause, and gives up with :class:`~recon_core.errors.StoreBusyError` after
``timeout_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from recon_core.errors import StoreBusyError, StoreError
from recon_core.store import Store, default_store_path, open_store

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 0.25


def is_lock_conflict(error: BaseException) -> bool:
    """True when ``error`` says another process (or connection) holds the store file."""
    seen: BaseException | None = error
    while seen is not None:
        text = str(seen).lower()
        if isinstance(seen, duckdb.Error) and ("lock" in text or "different configuration" in text):
            return True
        seen = seen.__cause__
    return False


def open_store_waiting(path: Path | str | None = None, *, read_only: bool = False,
                       timeout_s: float = DEFAULT_TIMEOUT_S,
                       sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> Store:
    """:func:`recon_core.store.open_store`, retried with backoff while another program holds the file.

    Raises:
        StoreBusyError: still locked after ``timeout_s`` seconds.
        StoreError: any other reason the store cannot be opened (missing, newer schema, ...).
    """
    target = Path(path) if path is not None and str(path) != ":memory:" else path
    deadline = clock() + timeout_s
    pause = FIRST_PAUSE_S
    attempts = 0
    while True:
        attempts += 1
        try:
            return open_store(target, read_only=read_only)
        except (StoreError, duckdb.Error) as exc:
            if not is_lock_conflict(exc):
                raise
            if clock() + pause > deadline:
                where = target if target is not None else default_store_path()
                raise StoreBusyError(
                    f"store {where} is busy: another program (a run being recorded, or the app) kept it locked "
                    f"for {timeout_s:g} s ({attempts} attempts); try again in a moment") from exc
            logger.debug("store locked, retrying in %.2f s (attempt %d)", pause, attempts)
            sleep(pause)
            pause = min(MAX_PAUSE_S, pause * 2)


@contextmanager
def store_session(path: Path | str | None = None, *, read_only: bool = False,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Store]:
    """``with store_session(path) as store:`` — opened with :func:`open_store_waiting`, always closed."""
    store = open_store_waiting(path, read_only=read_only, timeout_s=timeout_s)
    try:
        yield store
    finally:
        store.close()
