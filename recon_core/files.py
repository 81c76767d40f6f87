"""Files written so that a reader never sees half of one: a temporary sibling, then a rename."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def temporary_sibling(target: Path) -> Path:
    """A hidden, unique name in ``target``'s folder (same file system, so the rename is atomic)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def write_atomically(target: Path | str, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``target`` through a temporary sibling renamed into place.

    Raises:
        OSError: the folder is not writable; the temporary file is removed and ``target`` is unchanged.
    """
    path = Path(target)
    tmp = temporary_sibling(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "xb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
