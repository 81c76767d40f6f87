"""SQL builders of the matcher: pure functions ending in ``_sql`` that return strings.

Values are bound as parameters (``$name``); identifiers are quoted by
``recon_core.sql.quote_ident``; statements run through ``recon_core.sql.execute``, the one
place SQL meets DuckDB (failures come back as ``SQLExecutionError`` with the SQL attached).
"""

from __future__ import annotations

from recon_core.match.settings import CONTACT_NUMBER, FAR_END_NUMBER
from recon_core.sql import quote_ident

# Epoch milliseconds stand in for timestamps everywhere in the matcher: exact integers, and the
# canonical schema keeps millisecond precision. Readings: 0 primary start, 1 alternate (DST).
READING_PRIMARY = 0
READING_ALTERNATE = 1


def column_names_sql(relation_name: str) -> str:
    """A zero-row query whose description lists the relation's columns."""
    return f"SELECT * FROM {quote_ident(relation_name)} LIMIT 0"


def epoch_ms_sql(timestamp: str) -> str:
    """Milliseconds since the epoch, rounded to the nearest millisecond (NULL stays NULL)."""
    return f"(epoch_us({timestamp}) + 500) // 1000"


def key_part_sql(part: str) -> str:
    """SQL for one key part as VARCHAR, NULL when empty.

    ``far_end_number`` / ``contact_number`` depend on direction; any other name is a column.
    """
    direction = quote_ident("direction")
    source = quote_ident("source_number")
    destination = quote_ident("destination_number")
    if part == FAR_END_NUMBER:
        expr = (
            f"CASE WHEN {direction} = $outbound THEN {destination} "
            f"WHEN {direction} = $inbound THEN {source} END"
        )
    elif part == CONTACT_NUMBER:
        expr = (
            f"CASE WHEN {direction} = $outbound THEN {source} "
            f"WHEN {direction} = $inbound THEN {destination} END"
        )
    else:
        expr = quote_ident(part)
    return f"NULLIF(CAST({expr} AS VARCHAR), '')"


def signed_hash_sql(arguments: str) -> str:
    """DuckDB's 64-bit hash as a 63-bit BIGINT.

    Unsigned hashes above 2**63 break DuckDB's filter pushdown into Arrow scans (the hash
    columns are scanned back from Arrow for the joins), so one bit is given up.
    """
    return f"CAST(hash({arguments}) >> 1 AS BIGINT)"


def key_hash_sql(part_columns: list[str]) -> str:
    """A 64-bit hash of already computed key part columns, NULL when any part is missing."""
    if not part_columns:
        return "CAST(NULL AS UBIGINT)"
    any_missing = " OR ".join(f"{c} IS NULL" for c in part_columns)
    return f"CASE WHEN {any_missing} THEN NULL ELSE {signed_hash_sql(', '.join(part_columns))} END"


def rows_sql(
    source_relation: str,
    key: tuple[str, ...],
    tie_breaker: tuple[str, ...],
    columns: frozenset[str],
    extra: tuple[str, ...] = (),
) -> str:
    """One row per call: record_id, key and tie-breaker hashes, epoch ms, duration ms,
    identifiers with their hashes. NULL means missing (no key, no alternate start, no id).

    Optional canonical columns that the relation lacks (alternate start, SIP Call-ID, call id)
    are treated as empty. Rows come back in scan order; the caller ranks them by record_id.
    ``extra`` columns of the relation come along as they are, named ``x_<column>`` (one scan
    serves the matcher and whoever reports the rows). Params: ``$outbound``, ``$inbound``.
    """
    q = quote_ident

    def optional(column: str, expr: str, empty: str) -> str:
        return expr if column in columns else empty

    alt = optional("start_time_alt_utc", epoch_ms_sql(q("start_time_alt_utc")), "CAST(NULL AS BIGINT)")
    ids = [
        optional(name, f"NULLIF(CAST({q(name)} AS VARCHAR), '')", "CAST(NULL AS VARCHAR)")
        for name in ("sip_call_id", "call_id")
    ]
    # Key parts are computed once in the inner projection and hashed outside.
    key_cols = [f"k{i}" for i in range(len(key))]
    tie_cols = [f"t{i}" for i in range(len(tie_breaker))]
    parts = "".join(
        f"{key_part_sql(part)} AS {name}, "
        for part, name in zip(key + tie_breaker, key_cols + tie_cols, strict=True)
    )
    inner = (
        f"SELECT CAST({q('record_id')} AS VARCHAR) AS record_id, {parts}"
        f"{epoch_ms_sql(q('start_time_utc'))} AS start_ms, "
        f"{alt} AS alt_start_ms, "
        f"CAST(round(COALESCE({q('duration_seconds')}, 0) * 1000) AS BIGINT) AS duration_ms, "
        f"{ids[0]} AS sip_call_id, "
        f"{ids[1]} AS call_id"
        + "".join(f", {q(c)} AS {q('x_' + c)}" for c in extra)
        + f" FROM {q(source_relation)}"
    )
    passed = "".join(f", {q('x_' + c)}" for c in extra)
    return (
        f"SELECT record_id, {key_hash_sql(key_cols)} AS key_hash, {key_hash_sql(tie_cols)} AS tie_hash, "
        "start_ms, alt_start_ms, duration_ms, "
        f"CASE WHEN sip_call_id IS NOT NULL THEN {signed_hash_sql('sip_call_id')} END AS sip_call_id_hash, "
        "sip_call_id, "
        f"CASE WHEN call_id IS NOT NULL THEN {signed_hash_sql('call_id')} END AS call_id_hash, call_id{passed} "
        f"FROM ({inner})"
    )


def readings_sql(rows: str) -> str:
    """(idx, key_hash, t, reading) for every start reading of a keyed row: primary, plus the
    alternate DST reading where there is one. ``rows`` has idx, key_hash, has_key, start_ms,
    alt_start_ms, has_alt."""
    t = quote_ident(rows)
    return (
        f"SELECT idx, key_hash, start_ms AS t, CAST({READING_PRIMARY} AS TINYINT) AS reading "
        f"FROM {t} WHERE has_key "
        f"UNION ALL SELECT idx, key_hash, alt_start_ms AS t, CAST({READING_ALTERNATE} AS TINYINT) AS reading "
        f"FROM {t} WHERE has_key AND has_alt"
    )


def time_candidates_sql(invoice_rows: str, cdr_rows: str) -> str:
    """Every same-key (invoice, CDR, readings) pair with |invoice start - CDR start| <= $window_ms.

    An equality join on (key, time bucket), not ``key = ... AND t BETWEEN ...``, which
    degenerates on dense keys. Buckets are ``$bucket_ms`` = 2 * window + 1 wide, counted from
    ``$origin_ms`` (<= every start, so buckets are floors): a window then spans two adjacent
    buckets, its own and the neighbour on the side it overhangs, and each invoice reading probes
    just those two. Params: ``$window_ms``, ``$bucket_ms``, ``$origin_ms``.
    """
    return (
        f"WITH inv AS ({readings_sql(invoice_rows)}), cdr AS ({readings_sql(cdr_rows)}) "
        "SELECT i.idx AS invoice_idx, c.idx AS cdr_idx, "
        "i.reading AS invoice_reading, c.reading AS cdr_reading, i.t - c.t AS delta_ms "
        "FROM (SELECT inv.idx, inv.key_hash, inv.t, inv.reading, "
        "        (inv.t - $origin_ms) // $bucket_ms + CASE WHEN o.step = 0 THEN 0 "
        "          WHEN (inv.t - $origin_ms) % $bucket_ms < $window_ms THEN -1 ELSE 1 END AS bucket "
        "      FROM inv CROSS JOIN (VALUES (0), (1)) AS o(step)) AS i "
        "JOIN (SELECT cdr.idx, cdr.key_hash, cdr.t, cdr.reading, "
        "        (cdr.t - $origin_ms) // $bucket_ms AS bucket FROM cdr) AS c "
        "ON i.key_hash = c.key_hash AND i.bucket = c.bucket "
        "WHERE abs(i.t - c.t) <= $window_ms"
    )


def id_candidates_sql(invoice_ids: str, cdr_ids: str, hash_column: str) -> str:
    """(invoice idx, CDR idx) pairs whose identifier hashes are equal (NULL never joins).

    The caller confirms each pair on the identifier text; joining on the 64-bit hash keeps the
    join on integers.
    """
    h = quote_ident(hash_column)
    return (
        "SELECT i.idx AS invoice_idx, c.idx AS cdr_idx "
        f"FROM {quote_ident(invoice_ids)} AS i JOIN {quote_ident(cdr_ids)} AS c ON i.{h} = c.{h}"
    )


def drop_view_sql(name: str) -> str:
    return f"DROP VIEW IF EXISTS {quote_ident(name)}"
