"""One-to-one matching of carrier invoice rows to Genesys Cloud CDR rows.

The matching rule
-----------------
1. **Identifiers first.** Where both sides carry the same SIP Call-ID (``sip_call_id``), and
   then the same ``call_id``, the rows are paired exactly, one-to-one, whatever their times.
2. **Time window for the rest.** The default key is ``direction`` + the *far-end* number: the
   destination of an outbound call, the caller (``source_number``) of an inbound call. The
   contact center's own number (source for outbound, destination for inbound) is only a
   tie-breaker: pairs where it also agrees are preferred, but it is not required. Why not
   ``direction + destination_number``: every inbound call to a toll-free line shares the
   dialed number, so that key would make every inbound call a candidate for every other within
   the window. The caller's number ('withheld' included) is what tells inbound calls apart.
   A pair is a candidate when the keys are equal and |delta t| <= tolerance, with delta t =
   invoice start - CDR start. Rows with ``start_time_alt_utc`` (DST-ambiguous or nonexistent
   local times) are tried under both readings and the match records which reading was used.
3. **Maximum, then closest.** No row is used twice. The matching has the largest possible
   number of pairs (greedy smallest-delta-first can lose pairs); among those, the smallest
   total |delta t|, then the smallest total |delta duration|, then the most tie-breaker
   agreements. Exact ties resolve the same way on every run (positions follow record_id).
4. **Explanations.** Every unmatched row says why: no usable key, no call with that key on
   the other side, the nearest candidate and its delta when it is outside the tolerance, or the
   candidate it lost and the row that won it.

Usage: ``build_candidates`` once per pair of tables, at the widest tolerance the user may ask
for; ``assign_one_to_one`` for each tolerance (fast, no SQL).
"""

from __future__ import annotations

from recon_core.match.assign import (
    MATCH_COLUMNS,
    REASON_KEY_NOT_ON_OTHER_SIDE,
    REASON_LOST_TO_OTHER_PAIR,
    REASON_NO_KEY,
    REASON_OUTSIDE_TOLERANCE,
    REASONS,
    UNMATCHED_COLUMNS,
    MatchAssignment,
    assign_one_to_one,
)
from recon_core.match.candidates import (
    METHOD_CALL_ID,
    METHOD_SIP_CALL_ID,
    METHOD_TIME_WINDOW,
    CandidateSet,
    build_candidates,
    build_candidates_with_rows,
)
from recon_core.match.settings import CONTACT_NUMBER, FAR_END_NUMBER, MatchSettings, validate_match_settings

__all__ = [
    "CONTACT_NUMBER",
    "FAR_END_NUMBER",
    "MATCH_COLUMNS",
    "METHOD_CALL_ID",
    "METHOD_SIP_CALL_ID",
    "METHOD_TIME_WINDOW",
    "REASONS",
    "REASON_KEY_NOT_ON_OTHER_SIDE",
    "REASON_LOST_TO_OTHER_PAIR",
    "REASON_NO_KEY",
    "REASON_OUTSIDE_TOLERANCE",
    "UNMATCHED_COLUMNS",
    "CandidateSet",
    "MatchAssignment",
    "MatchSettings",
    "assign_one_to_one",
    "build_candidates",
    "build_candidates_with_rows",
    "validate_match_settings",
]
