"""Export the synthetic org's conversations as conversation-details JSON (what the API returns).

This is the CDR side of the built-in demo, and the file an analyst would upload instead of
fetching: ``{"conversations": [...]}`` with the ``AnalyticsConversation`` bodies of every
conversation that started in the period (UTC days, inclusive), rendered complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from recon_core.files import write_atomically
from recon_core.sandbox.clock import MS_PER_DAY, day_start_ms
from recon_core.sandbox.model import render_conversation
from recon_core.sandbox.org import OrgSpec, build_org


def export_conversations(spec: OrgSpec, out: Path | str) -> int:
    """Write the period's conversations to ``out`` (replaced atomically); returns how many."""
    org = build_org(spec)
    start = day_start_ms(spec.start)
    end = day_start_ms(spec.end) + MS_PER_DAY
    bodies = [b for b in (render_conversation(c) for c in org.conversations(start, end)) if b is not None]
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, json.dumps({"conversations": bodies, "totalHits": len(bodies)}))
    return len(bodies)
