"""Registration of the commands added on top of ``ingest``.

Each command lives in its own module under ``recon_core/commands/`` with a
``register(subparsers)`` function; add the module name to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
from typing import Any

COMMAND_MODULES: tuple[str, ...] = (
    "fetch_cdrs",
    "reconcile",
    "runs",
    "verify",
    "run",
    "collect_realtime",
    "rt_batch",
)


def register(sub: Any) -> None:
    """Add every command module's sub-command to the ``python -m recon_core`` parser."""
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"recon_core.commands.{name}")
        module.register(sub)
