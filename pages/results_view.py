"""Moved to :mod:`recon_core.analyst.results_view`.

Only ``pages/history.py`` still imports from here; it is being replaced by the run store's
History page, and this module goes with it. New code imports ``recon_core.analyst.results_view``.
"""

from __future__ import annotations

from recon_core.analyst.results_view import format_money, kpis

__all__ = ["format_money", "kpis"]
