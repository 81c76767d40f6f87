"""Inbox and outbox: a local folder or an object-storage URL, through fsspec.

Credentials come from the environment only (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_ENDPOINT_URL`` for S3 and S3-compatible servers, the Google and Azure SDK variables for
``gs://`` and ``az://``). Reports are published atomically as seen by a reader of the outbox:
written under a hidden ``.partial-…`` name first, then moved to ``<period>/<carrier>/<run_id>/``.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon_core.errors import InputFileError

logger = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"


@dataclass(frozen=True)
class StoredFile:
    """A file in the inbox: its path relative to the inbox, full URI and size."""

    relative: str
    uri: str
    size: int


class Location:
    """A folder on a filesystem fsspec knows (local, s3, gs, az ...)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            # A fresh filesystem object per location: the environment (endpoint, credentials) is read now.
            fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
        except (ImportError, ValueError) as exc:
            raise InputFileError(url, f"cannot open this location ({exc}); for s3:// install s3fs, "
                                      "for gs:// gcsfs, for az:// adlfs") from exc
        self.fs: Any = fs
        self.root = root.rstrip("/")
        self.is_local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if relative else self.root

    def uri(self, relative: str) -> str:
        return f"{self.url}/{relative}" if relative else self.url

    def list_files(self) -> list[StoredFile]:
        """Every file under the folder (hidden names and partial uploads left out), sorted by path."""
        self.fs.invalidate_cache()  # another program may have added files since the last listing
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputFileError(self.url, f"cannot list the inbox ({exc})") from exc
        files = []
        for full, info in sorted(found.items()):
            if info.get("type", "file") != "file":
                continue
            relative = full[len(self.root):].lstrip("/")
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            files.append(StoredFile(relative, self.uri(relative), int(info.get("size") or 0)))
        return files

    def download(self, relative: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(self.path(relative), str(target))
        except OSError as exc:
            raise InputFileError(self.uri(relative), f"cannot download it ({exc})") from exc
        return target

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.path(relative)))

    def remove_partials(self) -> list[str]:
        """Delete ``.partial-…`` folders left by a run that died while publishing; returns their paths."""
        removed = []
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(self.root, withdirs=True)
        except FileNotFoundError:
            return []
        tops = sorted({f[:f.index(PARTIAL_PREFIX)] + f[f.index(PARTIAL_PREFIX):].split("/")[0]
                       for f in found if PARTIAL_PREFIX in f})
        for top in tops:
            if self.fs.exists(top):
                self.fs.rm(top, recursive=True)
                removed.append(top)
                logger.warning("removed %s left over by an interrupted run", top)
        return removed

    def publish_folder(self, local_dir: Path, relative: str, checkpoint: Callable[[str], None] | None = None,
                       *, marker: str | None = None) -> str:
        """Upload every file of ``local_dir`` under ``relative`` as one step; returns the final URI.

        Files go to a hidden ``.partial-<id>`` sibling first; only when all are there is it
        moved to its final name (a rename on a local disk). Object stores have no rename, so
        there each object is copied to its final key with ``marker`` (e.g. ``run.json``) last:
        a run folder is complete when its marker is there.
        """
        parent, name = posixpath.split(relative)
        partial_rel = posixpath.join(parent, f"{PARTIAL_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
        partial = self.path(partial_rel)
        final = self.path(relative)
        files = sorted((p for p in local_dir.rglob("*") if p.is_file()), key=lambda p: (p.name == marker, str(p)))
        if self.is_local:
            self.fs.makedirs(partial, exist_ok=True)
        for file in files:
            target = posixpath.join(partial, file.relative_to(local_dir).as_posix())
            if checkpoint:
                checkpoint(f"uploading:{file.name}")
            self.fs.put_file(str(file), target)
        if checkpoint:
            checkpoint("uploaded")
        if self.fs.exists(final):
            self.fs.rm(final, recursive=True)
        if self.is_local:
            self.fs.mv(partial, final, recursive=True)
        else:
            # Object stores have no rename: copy each object to its final key, then drop the partial copy.
            for file in files:
                rel = file.relative_to(local_dir).as_posix()
                self.fs.copy(posixpath.join(partial, rel), posixpath.join(final, rel))
            self.fs.rm(partial, recursive=True)
        return self.uri(relative)
