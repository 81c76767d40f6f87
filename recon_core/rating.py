"""Rating: what a matched call should have cost, and whether the invoice agrees.

Billing increments
    Notation ``A/B``: the first ``A`` seconds are charged as one block (the minimum
    charge), then every further *started* ``B`` seconds::

        billable(d, A, B) = 0                           if d == 0 (not answered: not charged)
                          = A                           if 0 < d <= A
                          = A + ceil((d - A) / B) * B   otherwise

    A fractional duration is rounded **up** to whole seconds first (30.1 s -> 31 s), as
    CM.com documents; see ``/work/shared/reference/carriers/billing_increments.md``.

Cost of one call
    ``billable / 60 * rate_per_minute + connection_fee`` (the fee only when d > 0), then
    rounded **per call** to the carrier's money precision with ROUND_HALF_UP (half away
    from zero). Summing per-call rounded amounts is what carriers invoice; rounding the
    total instead drifts (Tropo: 88.100 vs 88.249 over 1051 calls).

Tolerance rule
    A cost difference ``delta = invoice_cost - expected_cost`` is *within tolerance* when::

        |delta| <= max(abs_tolerance, pct_tolerance * |invoice_cost|)

    Defaults: ``abs_tolerance = 0.01`` and ``pct_tolerance = 0.001`` (0.1 %). The
    percentage only takes over for large invoice lines (above 10.00 with the defaults).
    Both ends are inclusive: a difference of exactly 0.01 is within tolerance.

Classification of a matched pair (``status``)
    * ``MATCHED`` – invoice cost within tolerance of the expected cost.
    * ``MATCHED_ROUNDING_VARIANCE`` – not within tolerance of the expected cost, but within
      tolerance of the cost of the same CDR duration rated at the *carrier's* increment
      (``RatingSettings.carrier_increment``) with the same rate and fee: the difference is
      fully explained by the carrier's increment / minimum charge (CDR 30 s, contract 1/1,
      carrier bills 60/60). ``billing_direction`` tells which way it went.
    * ``COST_VARIANCE`` – anything else; ``billing_direction`` is ``OVER_BILLED`` (invoice
      above expected) or ``UNDER_BILLED``. When the invoice's billed seconds equal
      ``billable(CDR duration)`` under the carrier increment but the money still differs,
      the reason says so (the rate or fee differs) – the row is *not* excused, because the
      increment alone does not explain the money.
    * ``COST_UNVERIFIED`` – the comparison cannot be made: the invoice cost is empty, the
      CDR duration is missing/negative, or no rate applies (unknown prefix, no flat rate for
      the direction …). ``reason`` says which; such a row is never counted as matched.

Where the rate comes from (``rate_source`` per output row)
    ``flat_rate`` (per-direction flat rate), ``rate_deck`` (longest-prefix match on the
    far-end number, see :func:`find_deck_rate`) or ``invoice_rate`` (the invoice row's own
    ``rate_per_minute``, only with ``RatingSettings.rate_source = "invoice_rate"``; rows
    without one fall back to the contract rate). Empty when no rate applies.

Two implementations with one meaning: the scalar Decimal reference (:func:`rate_call`,
:func:`rate_pair`) and the vectorized DuckDB path (:func:`rate_matched_pairs`, built from
the ``*_sql`` functions) that does all money arithmetic in exact DECIMAL/HUGEINT (never
DOUBLE). Tests check they agree exactly on random rows. Inputs are read at the canonical
precision: money at 8 decimals (``MONEY_SQL_TYPE``), seconds at 3 decimals.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from recon_core.errors import InputFileError, SettingsError
from recon_core.sql import SQLExecutionError, connect, execute, quote_ident

logger = logging.getLogger(__name__)

STATUS_MATCHED = "MATCHED"
STATUS_ROUNDING_VARIANCE = "MATCHED_ROUNDING_VARIANCE"
STATUS_COST_VARIANCE = "COST_VARIANCE"
STATUS_COST_UNVERIFIED = "COST_UNVERIFIED"
STATUSES = (STATUS_MATCHED, STATUS_ROUNDING_VARIANCE, STATUS_COST_VARIANCE, STATUS_COST_UNVERIFIED)

OVER_BILLED = "OVER_BILLED"
UNDER_BILLED = "UNDER_BILLED"

RATE_SOURCE_FLAT = "flat_rate"
RATE_SOURCE_DECK = "rate_deck"
RATE_SOURCE_INVOICE = "invoice_rate"

# Values of RatingSettings.rate_source: the contract (deck or flat rates) or the invoice's own rate.
RATE_SOURCE_SETTINGS = ("contract", "invoice_rate")

MONEY_SCALE = 8  # decimals of recon_core.schema.MONEY_SQL_TYPE
SECONDS_SCALE = 3  # decimals of recon_core.schema.SECONDS_SQL_TYPE
MONEY_SQL = f"DECIMAL(18,{MONEY_SCALE})"
SECONDS_SQL = f"DECIMAL(12,{SECONDS_SCALE})"
MAX_INCREMENT_SECONDS = 86_400

# Columns rate_matched_pairs reads from the matched pairs.
PAIR_COLUMNS = (
    "cdr_duration_s",
    "invoice_cost",
    "invoice_billed_s",
    "invoice_rate",
    "direction",
    "far_end_number",
    "cdr_start_utc",
)

# Columns rate_matched_pairs adds (in this order) to a copy of the input.
OUTPUT_COLUMNS = (
    "expected_billed_s",
    "rate_per_minute_used",
    "increment_used",
    "expected_cost",
    "cost_delta",
    "status",
    "billing_direction",
    "rate_source",
    "reason",
)

RATE_DECK_COLUMNS = (
    "prefix", "direction", "rate_per_minute", "increment", "connection_fee", "effective_from",
)

_INCREMENT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_HIGH_PRECISION = Context(prec=60)
_ROW_ID = "__recon_row"
_ONE_BATCH = 1 << 30  # rated pairs come back as one Arrow batch (no copy to combine chunks)


# --------------------------------------------------------------------------- increments


@dataclass(frozen=True)
class Increment:
    """A billing increment ``first_s/next_s`` (e.g. 60/60, 6/6, 30/6, 1/1, 60/1)."""

    first_s: int
    next_s: int

    def __str__(self) -> str:
        return f"{self.first_s}/{self.next_s}"


def parse_increment(value: str | Increment) -> Increment:
    """Read an increment written ``A/B`` ("60/60", "30/6", " 6 / 6 ").

    In: a string or an :class:`Increment` (returned unchanged after validation).
    Out: the :class:`Increment`.
    Raises: :class:`SettingsError` naming the bad value and showing valid examples.
    """
    if isinstance(value, Increment):
        inc = value
    else:
        match = _INCREMENT_RE.match(str(value))
        if match is None:
            raise SettingsError(
                f"billing increment {str(value)!r} is not of the form A/B in whole seconds "
                "(e.g. 60/60, 6/6, 30/6, 1/1, 60/1)"
            )
        inc = Increment(int(match.group(1)), int(match.group(2)))
    problems = _increment_problems(inc, "billing increment")
    if problems:
        raise SettingsError("; ".join(problems))
    return inc


def _increment_problems(inc: Increment, what: str) -> list[str]:
    problems = []
    if not isinstance(inc.first_s, int) or not isinstance(inc.next_s, int):
        return [f"{what} {inc} must be whole seconds"]
    if inc.next_s < 1:
        problems.append(f"{what} {inc}: the repeat part B must be at least 1 second")
    if inc.first_s < 0:
        problems.append(f"{what} {inc}: the first block A cannot be negative")
    if inc.first_s > MAX_INCREMENT_SECONDS or inc.next_s > MAX_INCREMENT_SECONDS:
        problems.append(f"{what} {inc}: more than {MAX_INCREMENT_SECONDS} seconds is not a billing increment")
    return problems


def billable_seconds(duration_s: Decimal | int | float | str, increment: Increment) -> int:
    """Billable seconds of one call under ``increment`` (reference implementation).

    In: the call duration in seconds (fractions are rounded up to whole seconds first) and
    the increment. Out: billable whole seconds; 0 for a 0-second (unanswered) call.
    Raises: ``ValueError`` for a negative or non-numeric duration.
    """
    d = _as_decimal(duration_s)
    if d is None or d < 0:
        raise ValueError(f"call duration must be a number >= 0, got {duration_s!r}")
    secs = int(d.to_integral_value(rounding="ROUND_CEILING"))
    return _billable_int(secs, increment)


def _billable_int(secs: int, inc: Increment) -> int:
    if secs <= 0:
        return 0
    if secs <= inc.first_s:
        return inc.first_s
    return inc.first_s + math.ceil((secs - inc.first_s) / inc.next_s) * inc.next_s


def rate_call(
    duration_s: Decimal | int | float | str,
    rate_per_minute: Decimal | int | str,
    increment: Increment,
    *,
    connection_fee: Decimal | int | str = Decimal(0),
    money_decimals: int = 4,
) -> Decimal:
    """Cost of one call, rounded per call (reference Decimal implementation).

    In: duration (s), rate per minute, increment, optional connection fee (charged only
    when the duration is > 0) and the carrier's money precision (decimal places).
    Out: ``round_half_up(billable / 60 * rate + fee, money_decimals)`` as a Decimal.
    Raises: ``ValueError`` for a negative/non-numeric duration or rate.
    """
    rate = _as_decimal(rate_per_minute)
    fee = _as_decimal(connection_fee)
    if rate is None or fee is None:
        raise ValueError(f"rate {rate_per_minute!r} and connection fee {connection_fee!r} must be numbers")
    return _rate_billable(billable_seconds(duration_s, increment), rate, fee, money_decimals)


def _rate_billable(billable: int, rate: Decimal, fee: Decimal, money_decimals: int) -> Decimal:
    with localcontext(_HIGH_PRECISION):
        raw = Decimal(billable) * rate / Decimal(60)
        if billable > 0:
            raw += fee
        return raw.quantize(Decimal(1).scaleb(-money_decimals), rounding=ROUND_HALF_UP)


def is_within_tolerance(
    delta: Decimal, invoice_cost: Decimal, abs_tolerance: Decimal, pct_tolerance: Decimal
) -> bool:
    """The tolerance rule: ``|delta| <= max(abs_tolerance, pct_tolerance * |invoice_cost|)``."""
    with localcontext(_HIGH_PRECISION):
        return abs(delta) <= max(abs_tolerance, pct_tolerance * abs(invoice_cost))


# --------------------------------------------------------------------------- rate deck


@dataclass(frozen=True)
class RateDeckRow:
    """One rate-deck line; ``direction`` "" applies to both directions."""

    prefix: str
    direction: str
    rate_per_minute: Decimal
    increment: Increment | None
    connection_fee: Decimal | None
    effective_from: date | None
    source_line: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "direction": self.direction,
            "rate_per_minute": str(self.rate_per_minute),
            "increment": None if self.increment is None else str(self.increment),
            "connection_fee": None if self.connection_fee is None else str(self.connection_fee),
            "effective_from": None if self.effective_from is None else self.effective_from.isoformat(),
            "source_line": self.source_line,
        }


@dataclass(frozen=True)
class RateDeck:
    """A validated rate deck (see :func:`parse_rate_deck`)."""

    rows: tuple[RateDeckRow, ...]
    source: str = "rate deck"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": len(self.rows)}


def load_rate_deck(path: str | Path) -> RateDeck:
    """Read and validate a rate-deck CSV file (UTF-8, optional BOM).

    Out: a :class:`RateDeck`. Raises: :class:`InputFileError` when the file cannot be
    read; :class:`SettingsError` listing every invalid line (see :func:`parse_rate_deck`).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputFileError(str(p), "rate deck file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(str(p), f"rate deck cannot be read as UTF-8 text ({exc})") from exc
    return parse_rate_deck(text, source=str(p))


def parse_rate_deck(text: str, *, source: str = "rate deck") -> RateDeck:
    """Parse rate-deck CSV text.

    Columns (header names case-insensitive, other columns ignored): ``prefix`` (digits,
    a leading '+' is dropped), ``direction`` (inbound | outbound | blank or "both" = both),
    ``rate_per_minute``, optional ``increment`` (A/B; blank = the settings' increment),
    ``connection_fee`` (blank = the settings' fee) and ``effective_from`` (YYYY-MM-DD;
    blank = always). Out: a :class:`RateDeck`. Raises: :class:`SettingsError` listing
    every problem found (missing columns, bad numbers, bad dates, duplicate rows).
    """
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise SettingsError(
            f"{source}: the rate deck is empty (expected a header with {', '.join(RATE_DECK_COLUMNS)})"
        ) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in ("prefix", "rate_per_minute") if c not in names]
    if missing:
        raise SettingsError(
            f"{source}: the rate deck has no {' or '.join(missing)} column "
            f"(found: {', '.join(header)}; expected {', '.join(RATE_DECK_COLUMNS)})"
        )
    col = {name: names.index(name) for name in RATE_DECK_COLUMNS if name in names}
    problems: list[str] = []
    rows: list[RateDeckRow] = []
    seen: dict[tuple[str, str, date | None], int] = {}
    for line_no, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue

        def cell(name: str, raw: list[str] = raw) -> str:
            i = col.get(name)
            return raw[i].strip() if i is not None and i < len(raw) else ""

        where = f"{source} line {line_no}"
        row_problems: list[str] = []
        prefix = cell("prefix").lstrip("+").replace(" ", "")
        if not prefix.isdigit() or not prefix.isascii():
            row_problems.append(f"{where}: prefix {cell('prefix')!r} must be digits (E.164 without '+')")
        direction = cell("direction").lower()
        if direction in ("both", "*", "any", "all"):
            direction = ""
        if direction not in ("", "inbound", "outbound"):
            row_problems.append(
                f"{where}: direction {cell('direction')!r} must be inbound, outbound or blank"
            )
        rate = _money_setting(cell("rate_per_minute"), f"{where}: rate_per_minute", row_problems)
        increment = None
        if cell("increment"):
            try:
                increment = parse_increment(cell("increment"))
            except SettingsError as exc:
                row_problems.append(f"{where}: {exc}")
        fee = None
        if cell("connection_fee"):
            fee = _money_setting(cell("connection_fee"), f"{where}: connection_fee", row_problems)
        effective = None
        if cell("effective_from"):
            try:
                effective = date.fromisoformat(cell("effective_from"))
            except ValueError:
                row_problems.append(
                    f"{where}: effective_from {cell('effective_from')!r} is not a date YYYY-MM-DD"
                )
            if effective is not None and effective.year < 1900:
                row_problems.append(f"{where}: effective_from {effective} is before 1900")
                effective = None
        if not row_problems and rate is not None:
            key = (prefix, direction, effective)
            if key in seen:
                row_problems.append(
                    f"{where}: duplicates line {seen[key]} (same prefix, direction and effective_from)"
                )
            else:
                seen[key] = line_no
                rows.append(RateDeckRow(prefix, direction, rate, increment, fee, effective, line_no))
        problems.extend(row_problems)
    if not rows and not problems:
        problems.append(f"{source}: the rate deck has a header but no rates")
    if problems:
        raise SettingsError(f"{source} has {len(problems)} problem(s): " + "; ".join(problems))
    logger.info("rate deck %s: %d rows", source, len(rows))
    return RateDeck(tuple(rows), source)


def find_deck_rate(
    deck: RateDeck, far_end_number: str, direction: str, call_date: date | None
) -> RateDeckRow | None:
    """Look up the rate-deck row for one call (reference implementation).

    Only rows for the call's direction (or blank) whose ``effective_from`` is empty or on/
    before ``call_date`` (the UTC date of the call start) take part: the deck as it stood
    that day. Among them: the longest prefix of the far-end number's digits wins, then a
    direction-specific row over a blank one, then the latest ``effective_from``.
    Out: the row, or None when nothing matches.
    """
    digits = re.sub(r"[^0-9]", "", far_end_number or "")
    best: RateDeckRow | None = None
    best_key: tuple[int, int, date] | None = None
    for row in deck.rows:
        if row.direction not in ("", direction):
            continue
        if row.effective_from is not None and (call_date is None or row.effective_from > call_date):
            continue
        if not digits.startswith(row.prefix):
            continue
        key = (len(row.prefix), 1 if row.direction else 0, row.effective_from or date.min)
        if best_key is None or key > best_key:
            best, best_key = row, key
    return best


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RatingSettings:
    """How calls are rated and compared. Validate with :func:`validate_rating_settings`.

    increment: the contract increment (rate-deck rows may override it per destination).
    connection_fee: per answered call (d > 0); rate-deck rows may override it.
    money_decimals: the carrier's money precision; every call is rounded to it (0..8).
    inbound_rate_per_minute / outbound_rate_per_minute: flat rates (or use rate_deck).
    rate_deck: a :class:`RateDeck` instead of flat rates.
    rate_source: "contract" (deck/flat) or "invoice_rate" (the invoice row's own rate
    where it states one, else the contract rate).
    abs_tolerance / pct_tolerance: the tolerance rule (see the module docstring).
    carrier_increment: the increment the carrier actually applies (from its profile);
    when set, differences it fully explains are MATCHED_ROUNDING_VARIANCE.
    """

    increment: Increment = field(default_factory=lambda: Increment(60, 60))
    connection_fee: Decimal = Decimal("0")
    money_decimals: int = 4
    inbound_rate_per_minute: Decimal | None = None
    outbound_rate_per_minute: Decimal | None = None
    rate_deck: RateDeck | None = None
    rate_source: str = "contract"
    abs_tolerance: Decimal = Decimal("0.01")
    pct_tolerance: Decimal = Decimal("0.001")
    carrier_increment: Increment | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (Decimals and increments as strings).

        Read back with :func:`rating_settings_from_dict`.
        """
        return {
            "increment": str(self.increment),
            "connection_fee": str(self.connection_fee),
            "money_decimals": self.money_decimals,
            "inbound_rate_per_minute": _str_or_none(self.inbound_rate_per_minute),
            "outbound_rate_per_minute": _str_or_none(self.outbound_rate_per_minute),
            "rate_deck": None if self.rate_deck is None else self.rate_deck.to_dict(),
            "rate_source": self.rate_source,
            "abs_tolerance": str(self.abs_tolerance),
            "pct_tolerance": str(self.pct_tolerance),
            "carrier_increment": _str_or_none(self.carrier_increment),
        }


def rating_settings_from_dict(raw: Mapping[str, Any]) -> RatingSettings:
    """Build :class:`RatingSettings` from plain values (strings as typed in a form or YAML).

    Accepts the keys of :meth:`RatingSettings.to_dict`; increments as "A/B", money as
    strings/ints/Decimals, ``pct_tolerance`` also as "0.1%". ``rate_deck`` may be a
    :class:`RateDeck`, a CSV path, or ``{"source": path}``. Missing keys take defaults.
    Raises: :class:`SettingsError` listing every problem at once.
    """
    problems: list[str] = []
    defaults = RatingSettings()
    known = set(defaults.to_dict())
    for key in raw:
        if key not in known:
            problems.append(f"unknown rating setting {key!r} (known: {', '.join(sorted(known))})")

    def inc(key: str, default: Increment | None) -> Increment | None:
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        try:
            return parse_increment(value)
        except SettingsError as exc:
            problems.append(f"{key}: {exc}")
            return default

    def money(key: str, default: Decimal | None) -> Decimal | None:
        value = raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        parsed = _money_setting(value, key, problems)
        return default if parsed is None else parsed

    pct_raw = raw.get("pct_tolerance")
    pct: Decimal | None = defaults.pct_tolerance
    if isinstance(pct_raw, str) and pct_raw.strip().endswith("%"):
        parsed_pct = _money_setting(pct_raw.strip()[:-1], "pct_tolerance", problems)
        pct = None if parsed_pct is None else parsed_pct / 100
    elif pct_raw is not None:
        pct = money("pct_tolerance", defaults.pct_tolerance)

    decimals_raw = raw.get("money_decimals", defaults.money_decimals)
    try:
        decimals = int(str(decimals_raw).strip())
    except ValueError:
        problems.append(f"money_decimals {decimals_raw!r} must be a whole number of decimal places (0 to 8)")
        decimals = defaults.money_decimals

    deck_raw = raw.get("rate_deck")
    deck: RateDeck | None = None
    if isinstance(deck_raw, RateDeck):
        deck = deck_raw
    elif deck_raw:
        path = deck_raw.get("source") if isinstance(deck_raw, Mapping) else deck_raw
        try:
            deck = load_rate_deck(str(path))
        except (SettingsError, InputFileError) as exc:
            problems.append(f"rate_deck: {exc}")

    settings = RatingSettings(
        increment=inc("increment", defaults.increment) or defaults.increment,
        connection_fee=money("connection_fee", defaults.connection_fee) or Decimal(0),
        money_decimals=decimals,
        inbound_rate_per_minute=money("inbound_rate_per_minute", None),
        outbound_rate_per_minute=money("outbound_rate_per_minute", None),
        rate_deck=deck,
        rate_source=str(raw.get("rate_source") or defaults.rate_source).strip(),
        abs_tolerance=money("abs_tolerance", defaults.abs_tolerance) or Decimal(0),
        pct_tolerance=pct if pct is not None else defaults.pct_tolerance,
        carrier_increment=inc("carrier_increment", None),
    )
    problems.extend(rating_settings_problems(settings))
    if problems:
        raise SettingsError("rating settings are invalid: " + "; ".join(problems))
    return settings


def rating_settings_problems(settings: RatingSettings) -> list[str]:
    """Every problem with ``settings`` (empty list = valid)."""
    problems: list[str] = []
    problems += _increment_problems(settings.increment, "increment")
    if settings.carrier_increment is not None:
        problems += _increment_problems(settings.carrier_increment, "carrier_increment")
    if not isinstance(settings.money_decimals, int) or not 0 <= settings.money_decimals <= MONEY_SCALE:
        problems.append(f"money_decimals {settings.money_decimals!r} must be between 0 and {MONEY_SCALE}")
    for name in ("connection_fee", "inbound_rate_per_minute", "outbound_rate_per_minute",
                 "abs_tolerance", "pct_tolerance"):
        value = getattr(settings, name)
        if value is None:
            continue
        if not isinstance(value, Decimal) or not value.is_finite():
            problems.append(f"{name} {value!r} must be a Decimal number")
        elif value < 0:
            problems.append(f"{name} {value} cannot be negative")
        elif value != value.quantize(Decimal(1).scaleb(-MONEY_SCALE), context=_HIGH_PRECISION):
            problems.append(f"{name} {value} has more than {MONEY_SCALE} decimal places")
    if settings.rate_source not in RATE_SOURCE_SETTINGS:
        problems.append(
            f"rate_source {settings.rate_source!r} must be one of {', '.join(RATE_SOURCE_SETTINGS)}"
        )
    has_flat = settings.inbound_rate_per_minute is not None or settings.outbound_rate_per_minute is not None
    if settings.rate_deck is not None and has_flat:
        problems.append("set either flat per-minute rates or a rate deck, not both")
    if settings.rate_deck is None and not has_flat and settings.rate_source == "contract":
        problems.append(
            "no rate configured: set an inbound and/or outbound rate per minute, a rate deck, "
            "or rate_source = invoice_rate"
        )
    return problems


def validate_rating_settings(settings: RatingSettings) -> None:
    """Raise :class:`SettingsError` listing every problem with ``settings``; return None when valid."""
    problems = rating_settings_problems(settings)
    if problems:
        raise SettingsError("rating settings are invalid: " + "; ".join(problems))


# --------------------------------------------------------------------------- one pair (reference)


@dataclass(frozen=True)
class PairRating:
    """The rating of one matched pair; fields are the :data:`OUTPUT_COLUMNS`."""

    expected_billed_s: int | None
    rate_per_minute_used: Decimal | None
    increment_used: str | None
    expected_cost: Decimal | None
    cost_delta: Decimal | None
    status: str
    billing_direction: str | None
    rate_source: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OUTPUT_COLUMNS}


def classify_cost(
    invoice_cost: Decimal | None,
    expected_cost: Decimal | None,
    carrier_increment_cost: Decimal | None,
    *,
    abs_tolerance: Decimal,
    pct_tolerance: Decimal,
) -> tuple[str, str | None]:
    """Classify one matched pair by cost.

    In: the invoice cost, the expected cost (contract increment) and the cost of the same
    call at the carrier's increment (None when no carrier increment is known).
    Out: ``(status, billing_direction)``; see the module docstring for the rules.
    """
    if invoice_cost is None or expected_cost is None:
        return STATUS_COST_UNVERIFIED, None
    delta = invoice_cost - expected_cost
    if is_within_tolerance(delta, invoice_cost, abs_tolerance, pct_tolerance):
        return STATUS_MATCHED, None
    direction = OVER_BILLED if delta > 0 else UNDER_BILLED
    if carrier_increment_cost is not None and is_within_tolerance(
        invoice_cost - carrier_increment_cost, invoice_cost, abs_tolerance, pct_tolerance
    ):
        return STATUS_ROUNDING_VARIANCE, direction
    return STATUS_COST_VARIANCE, direction


def rate_pair(pair: Mapping[str, Any], settings: RatingSettings) -> PairRating:
    """Rate and classify one matched pair (the reference for :func:`rate_matched_pairs`).

    In: a mapping with the :data:`PAIR_COLUMNS` (missing keys = empty) and settings.
    Out: a :class:`PairRating`. Values are read like the vectorized path reads them:
    money at 8 and seconds at 3 decimals, ROUND_HALF_UP; unreadable numbers = empty.
    """
    duration = _as_decimal(pair.get("cdr_duration_s"), SECONDS_SCALE, max_digits=12)
    invoice_cost = _as_decimal(pair.get("invoice_cost"), MONEY_SCALE)
    invoice_billed = _as_decimal(pair.get("invoice_billed_s"), SECONDS_SCALE, max_digits=12)
    invoice_rate = _as_decimal(pair.get("invoice_rate"), MONEY_SCALE)
    direction = _text(pair.get("direction")).strip(" ").lower()
    digits = re.sub(r"[^0-9]", "", _text(pair.get("far_end_number")))
    call_date = _as_utc_date(pair.get("cdr_start_utc"))

    reasons: list[str] = []
    if duration is None:
        reasons.append("CDR duration is missing: cannot rate the call")
    elif duration < 0:
        reasons.append("CDR duration is negative: cannot rate the call")

    deck_row = None
    if settings.rate_deck is not None:
        deck_row = find_deck_rate(settings.rate_deck, digits, direction, call_date)
    rate: Decimal | None = None
    source: str | None = None
    if settings.rate_source == "invoice_rate" and invoice_rate is not None:
        rate, source = invoice_rate, RATE_SOURCE_INVOICE
    elif settings.rate_deck is not None:
        if deck_row is not None:
            rate, source = deck_row.rate_per_minute, RATE_SOURCE_DECK
        elif not digits:
            reasons.append("far-end number is missing or withheld: the rate deck cannot be searched")
        else:
            when = call_date.isoformat() if call_date is not None else "an unknown date"
            reasons.append(
                f"no rate-deck row for {digits} ({direction or 'unknown direction'}) on {when}: "
                "add the prefix to the rate deck"
            )
    elif settings.inbound_rate_per_minute is not None or settings.outbound_rate_per_minute is not None:
        if direction not in ("inbound", "outbound"):
            reasons.append(
                f"call direction '{direction}' is neither inbound nor outbound: no flat rate applies"
            )
        else:
            rate = (settings.inbound_rate_per_minute if direction == "inbound"
                    else settings.outbound_rate_per_minute)
            if rate is None:
                reasons.append(f"no flat {direction} rate per minute is configured")
            else:
                source = RATE_SOURCE_FLAT
    else:
        reasons.append("the invoice row states no rate_per_minute and no contract rate is configured")

    increment = settings.increment
    fee = settings.connection_fee
    if deck_row is not None:
        increment = deck_row.increment or increment
        fee = deck_row.connection_fee if deck_row.connection_fee is not None else fee

    expected_billed = expected = carrier_cost = None
    carrier_billed = None
    secs = None
    if duration is not None and duration >= 0:
        secs = int(duration.to_integral_value(rounding="ROUND_CEILING"))
        expected_billed = _billable_int(secs, increment)
        if settings.carrier_increment is not None:
            carrier_billed = _billable_int(secs, settings.carrier_increment)
        if rate is not None:
            expected = _rate_billable(expected_billed, rate, fee, settings.money_decimals)
            if carrier_billed is not None:
                carrier_cost = _rate_billable(carrier_billed, rate, fee, settings.money_decimals)

    if invoice_cost is None:
        reasons.append("invoice cost is empty: the charge cannot be verified")
    status, billing_direction = classify_cost(
        invoice_cost, expected, carrier_cost,
        abs_tolerance=settings.abs_tolerance, pct_tolerance=settings.pct_tolerance,
    )
    delta = None if invoice_cost is None or expected is None else invoice_cost - expected

    if status == STATUS_MATCHED:
        reason = "invoice cost within tolerance of the expected cost"
    elif status == STATUS_ROUNDING_VARIANCE:
        reason = (
            f"explained by the carrier's {settings.carrier_increment} increment: CDR {secs} s "
            f"billed as {carrier_billed} s (contract {increment} gives {expected_billed} s)"
        )
    elif status == STATUS_COST_VARIANCE:
        word = "above" if billing_direction == OVER_BILLED else "below"
        reason = (f"invoice cost is {word} the expected cost "
                  f"({source} {_money_text(rate)}/min, {increment} increment)")
        if invoice_billed is not None and invoice_billed != expected_billed:
            reason += (f"; carrier billed {_seconds_text(invoice_billed)} s where {increment} "
                       f"gives {expected_billed} s for a {secs} s CDR")
        if carrier_billed is not None and invoice_billed is not None and invoice_billed == carrier_billed:
            reason += (f"; billed seconds follow the carrier's {settings.carrier_increment} increment, "
                       "so the rate or fee differs")
    else:
        reason = "; ".join(reasons)

    return PairRating(
        expected_billed_s=expected_billed,
        rate_per_minute_used=rate,
        increment_used=None if expected_billed is None else str(increment),
        expected_cost=expected,
        cost_delta=delta,
        status=status,
        billing_direction=billing_direction,
        rate_source=source,
        reason=reason,
    )


# --------------------------------------------------------------------------- SQL builders


def billable_seconds_sql(seconds: str, first_s: str, next_s: str) -> str:
    """SQL expression: billable seconds from whole ``seconds`` (already rounded up, >= 0).

    Arguments are SQL expressions (columns or ``$parameters``); integer arithmetic only.
    """
    return (
        f"(CASE WHEN {seconds} IS NULL OR {first_s} IS NULL OR {next_s} IS NULL THEN NULL "
        f"WHEN {seconds} <= 0 THEN 0 "
        f"WHEN {seconds} <= {first_s} THEN {first_s} "
        f"ELSE {first_s} + (({seconds} - {first_s} + {next_s} - 1) // {next_s}) * {next_s} END)"
    )


def cost_numerator_sql(billable: str, rate: str, fee: str, *, wide: bool = False) -> str:
    """SQL expression: the exact unrounded cost of a call, in units of 1e-8 / 60.

    ``billable * rate + 60 * fee`` with money scaled to 1e-8 units, the fee only when
    ``billable > 0``. Keeping money in integers avoids DECIMAL division, which DuckDB
    does in DOUBLE. ``billable`` (integer seconds), ``rate`` and ``fee`` are SQL expressions.
    ``wide=False`` uses BIGINT (fast; DuckDB raises an out-of-range error on overflow, e.g.
    rates of 100/min and more), ``wide=True`` HUGEINT (about 20x slower, never overflows
    for DECIMAL(18,8) inputs).
    """
    unit = 10**MONEY_SCALE
    int_type, dec_width = ("HUGEINT", 38) if wide else ("BIGINT", 18)
    rate_u = f"CAST(CAST({rate} AS DECIMAL({dec_width},{MONEY_SCALE})) * {unit} AS {int_type})"
    fee_u = f"CAST(CAST({fee} AS DECIMAL({dec_width},{MONEY_SCALE})) * {unit} AS {int_type})"
    return (f"(CAST({billable} AS {int_type}) * {rate_u} "
            f"+ CASE WHEN {billable} > 0 THEN 60 * {fee_u} ELSE 0 END)")


def rounded_money_sql(numerator: str, money_decimals: int, *, wide: bool = False) -> str:
    """SQL expression: a :func:`cost_numerator_sql` value rounded half-up (away from zero).

    Result type ``DECIMAL(18, money_decimals)``. ``wide=False`` scales the rounded units in
    64-bit decimals (fast; a cost of 10^(17 - money_decimals) units or more raises a DuckDB
    conversion error), ``wide=True`` in 128-bit ones. Raises: ``ValueError`` when
    ``money_decimals`` is not 0..8 (it becomes part of a type, so it is checked here).
    """
    if not isinstance(money_decimals, int) or not 0 <= money_decimals <= MONEY_SCALE:
        raise ValueError(f"money_decimals must be 0..{MONEY_SCALE}, got {money_decimals!r}")
    den = 60 * 10 ** (MONEY_SCALE - money_decimals)
    units = (f"(CASE WHEN {numerator} < 0 THEN -((2 * -{numerator} + {den}) // (2 * {den})) "
             f"ELSE (2 * {numerator} + {den}) // (2 * {den}) END)")
    step = f"{Decimal(1).scaleb(-money_decimals):f}"
    scale = f"CAST('{step}' AS DECIMAL({money_decimals + 1},{money_decimals}))"
    # DECIMAL(w1,0) * DECIMAL(k+1,k) has width w1 + k + 1: 17 - k keeps it at 18 (one int64).
    units_width = 38 if wide else 17 - money_decimals
    return f"CAST(CAST({units} AS DECIMAL({units_width},0)) * {scale} AS DECIMAL(18,{money_decimals}))"


def call_cost_sql(billable: str, rate: str, fee: str, money_decimals: int, *, wide: bool = False) -> str:
    """SQL expression: per-call cost ``round_half_up(billable/60*rate + fee)``, exact DECIMAL."""
    return rounded_money_sql(cost_numerator_sql(billable, rate, fee, wide=wide), money_decimals, wide=wide)


def within_tolerance_sql(delta: str, invoice_cost: str) -> str:
    """SQL boolean: the tolerance rule, with ``$abs_tolerance`` and ``$pct_tolerance`` bound."""
    wide = "DECIMAL(38,16)"
    money38 = f"DECIMAL(38,{MONEY_SCALE})"
    abs_tol = f"CAST(CAST($abs_tolerance AS {MONEY_SQL}) AS {wide})"
    pct_tol = f"CAST(CAST($pct_tolerance AS {money38}) * abs(CAST({invoice_cost} AS {money38})) AS {wide})"
    return f"(abs(CAST({delta} AS {wide})) <= GREATEST({abs_tol}, {pct_tol}))"


def _read_decimal_sql(column: str, sql_type: str) -> str:
    # TRY_CAST reads numbers and numeric text alike (blank/garbage -> NULL, DOUBLE rounded to nearest).
    return f"TRY_CAST({quote_ident(column)} AS {sql_type})"


def _money_text_sql(expr: str) -> str:
    """Decimal as text without trailing zeros (0.01000000 -> 0.01), like :func:`_money_text`."""
    return (f"(CASE WHEN {expr} = 0 THEN '0' "
            f"WHEN {expr} = CEIL({expr}) THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) "
            f"ELSE rtrim(CAST({expr} AS VARCHAR), '0') END)")


def _seconds_text_sql(expr: str) -> str:
    return (f"(CASE WHEN {expr} = CEIL({expr}) THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({expr} AS VARCHAR) END)")


def rate_pairs_sql(
    settings: RatingSettings,
    *,
    pairs_table: str,
    deck_table: str | None = None,
    row_id: str = _ROW_ID,
    wide: bool = False,
) -> str:
    """SQL that rates and classifies every matched pair of ``pairs_table``.

    ``pairs_table`` needs the :data:`PAIR_COLUMNS` plus ``row_id``; ``deck_table`` (when
    the settings use a rate deck) the columns made by :func:`rate_deck_arrow`. Values are
    bound from :func:`rate_pairs_params`. ``wide`` selects HUGEINT money arithmetic (see
    :func:`cost_numerator_sql`). Output: ``row_id`` then :data:`OUTPUT_COLUMNS`, in no
    particular order (join back on ``row_id``).
    Raises: ``ValueError`` when ``deck_table`` and the settings disagree.
    """
    k = settings.money_decimals
    money_out = f"DECIMAL(18,{k})"
    use_deck = deck_table is not None
    if use_deck != (settings.rate_deck is not None):
        raise ValueError("pass deck_table exactly when the settings use a rate deck")
    pairs = quote_ident(pairs_table)
    rid = quote_ident(row_id)

    deck_cte = ""
    deck_join = ""
    deck_cols = (f"NULL::{MONEY_SQL} AS deck_rate, NULL::INTEGER AS deck_a, NULL::INTEGER AS deck_b, "
                 f"NULL::{MONEY_SQL} AS deck_fee")
    if deck_table is not None:
        deck = quote_ident(deck_table)
        deck_cte = f""",
deck AS (
    SELECT deck_id, prefix, length(prefix) AS plen, direction,
           CAST(rate_per_minute AS {MONEY_SQL}) AS rate, increment_first_s AS inc_a,
           increment_next_s AS inc_b, CAST(connection_fee AS {MONEY_SQL}) AS fee,
           effective_from AS eff,
           -- one sortable key: longest prefix, then direction-specific, then latest date
           length(prefix) * 100000000 + (CASE WHEN direction <> '' THEN 10000000 ELSE 0 END)
             + COALESCE(date_diff('day', DATE '1900-01-01', effective_from) + 1, 0) AS preference
    FROM {deck}
),
candidate AS (
    -- every prefix of the far-end digits whose length occurs in the deck: an equi-join key
    SELECT s.row_id, s.dir, s.call_date, substr(s.digits, 1, l.plen) AS pfx
    FROM src AS s
    JOIN (SELECT DISTINCT plen FROM deck) AS l ON l.plen <= length(s.digits)
),
deck_pick AS (
    -- arg_max over a unique key: far cheaper than a window partitioned by a million calls
    SELECT c.row_id, arg_max(d.deck_id, d.preference) AS deck_id
    FROM candidate AS c
    JOIN deck AS d ON d.prefix = c.pfx
    WHERE (d.direction = '' OR d.direction = c.dir)
      AND (d.eff IS NULL OR d.eff <= c.call_date)
    GROUP BY c.row_id
),
deck_hit AS (
    SELECT p.row_id, d.rate, d.inc_a, d.inc_b, d.fee
    FROM deck_pick AS p
    JOIN deck AS d ON d.deck_id = p.deck_id
)"""
        deck_join = "LEFT JOIN deck_hit AS h ON h.row_id = s.row_id"
        deck_cols = "h.rate AS deck_rate, h.inc_a AS deck_a, h.inc_b AS deck_b, h.fee AS deck_fee"

    has_flat = "($inbound_rate IS NOT NULL OR $outbound_rate IS NOT NULL)"
    if use_deck:
        contract_source = f"CASE WHEN deck_rate IS NOT NULL THEN '{RATE_SOURCE_DECK}' END"
        contract_rate = "deck_rate"
        no_rate_reason = (
            "CASE WHEN digits = '' "
            "THEN 'far-end number is missing or withheld: the rate deck cannot be searched' "
            "ELSE 'no rate-deck row for ' || digits || ' (' "
            "|| CASE WHEN dir = '' THEN 'unknown direction' ELSE dir END "
            "|| ') on ' || COALESCE(CAST(call_date AS VARCHAR), 'an unknown date') "
            "|| ': add the prefix to the rate deck' END"
        )
    else:
        flat_rate = (f"CASE dir WHEN 'inbound' THEN CAST($inbound_rate AS {MONEY_SQL}) "
                     f"WHEN 'outbound' THEN CAST($outbound_rate AS {MONEY_SQL}) END")
        contract_source = f"CASE WHEN {flat_rate} IS NOT NULL THEN '{RATE_SOURCE_FLAT}' END"
        contract_rate = flat_rate
        no_rate_reason = (
            f"CASE WHEN NOT {has_flat} THEN "
            "'the invoice row states no rate_per_minute and no contract rate is configured' "
            "WHEN dir NOT IN ('inbound', 'outbound') THEN 'call direction ''' || dir "
            "|| ''' is neither inbound nor outbound: no flat rate applies' "
            "ELSE 'no flat ' || dir || ' rate per minute is configured' END"
        )

    secs = "CAST(CEIL(dur) AS BIGINT)"
    carrier_billable = billable_seconds_sql("secs", "$carrier_a", "$carrier_b")
    expected_billable = billable_seconds_sql("secs", "inc_a", "inc_b")
    tol_expected = within_tolerance_sql("inv_cost - expected_cost", "inv_cost")
    tol_carrier = within_tolerance_sql("inv_cost - carrier_cost", "inv_cost")
    carrier_inc_text = "(CAST($carrier_a AS VARCHAR) || '/' || CAST($carrier_b AS VARCHAR))"
    inc_text = "(CAST(inc_a AS VARCHAR) || '/' || CAST(inc_b AS VARCHAR))"

    return f"""
WITH src AS (
    SELECT {rid} AS row_id,
           {_read_decimal_sql('cdr_duration_s', SECONDS_SQL)} AS dur,
           {_read_decimal_sql('invoice_cost', MONEY_SQL)} AS inv_cost,
           {_read_decimal_sql('invoice_billed_s', SECONDS_SQL)} AS inv_billed,
           {_read_decimal_sql('invoice_rate', MONEY_SQL)} AS inv_rate,
           lower(trim(COALESCE(CAST({quote_ident('direction')} AS VARCHAR), ''))) AS dir,
           regexp_replace(COALESCE(CAST({quote_ident('far_end_number')} AS VARCHAR), ''),
                          '[^0-9]', '', 'g') AS digits,
           TRY_CAST({quote_ident('cdr_start_utc')} AS DATE) AS call_date
    FROM {pairs}
){deck_cte},
priced AS (
    SELECT s.*, {deck_cols}
    FROM src AS s
    {deck_join}
),
sourced AS (
    SELECT *,
           CASE WHEN $use_invoice_rate AND inv_rate IS NOT NULL THEN '{RATE_SOURCE_INVOICE}'
                ELSE {contract_source} END AS rate_source
    FROM priced
),
resolved AS (
    SELECT *,
           CASE rate_source WHEN '{RATE_SOURCE_INVOICE}' THEN inv_rate ELSE {contract_rate} END AS rate,
           COALESCE(deck_a, $inc_a) AS inc_a,
           COALESCE(deck_b, $inc_b) AS inc_b,
           COALESCE(deck_fee, CAST($connection_fee AS {MONEY_SQL})) AS fee,
           CASE WHEN dur >= 0 THEN {secs} END AS secs
    FROM sourced
),
billed AS (
    SELECT *,
           {expected_billable} AS expected_billed_s,
           {carrier_billable} AS carrier_billed_s
    FROM resolved
),
numerated AS (
    SELECT *,
           {cost_numerator_sql('expected_billed_s', 'rate', 'fee', wide=wide)} AS expected_num,
           {cost_numerator_sql('carrier_billed_s', 'rate', 'fee', wide=wide)} AS carrier_num
    FROM billed
),
costed AS (
    SELECT *,
           {rounded_money_sql('expected_num', k, wide=wide)} AS expected_cost,
           {rounded_money_sql('carrier_num', k, wide=wide)} AS carrier_cost
    FROM numerated
),
classified AS (
    SELECT *,
           CAST(inv_cost - expected_cost AS {MONEY_SQL}) AS cost_delta,
           CASE WHEN inv_cost IS NULL OR expected_cost IS NULL THEN '{STATUS_COST_UNVERIFIED}'
                WHEN {tol_expected} THEN '{STATUS_MATCHED}'
                WHEN carrier_cost IS NOT NULL AND {tol_carrier} THEN '{STATUS_ROUNDING_VARIANCE}'
                ELSE '{STATUS_COST_VARIANCE}' END AS status
    FROM costed
)
SELECT row_id AS {rid},
       expected_billed_s,
       rate AS rate_per_minute_used,
       CASE WHEN expected_billed_s IS NOT NULL THEN {inc_text} END AS increment_used,
       CAST(expected_cost AS {money_out}) AS expected_cost,
       cost_delta,
       status,
       CASE WHEN status IN ('{STATUS_COST_VARIANCE}', '{STATUS_ROUNDING_VARIANCE}')
            THEN CASE WHEN cost_delta > 0 THEN '{OVER_BILLED}' ELSE '{UNDER_BILLED}' END
       END AS billing_direction,
       rate_source,
       CASE status
         WHEN '{STATUS_MATCHED}' THEN 'invoice cost within tolerance of the expected cost'
         WHEN '{STATUS_ROUNDING_VARIANCE}' THEN
           'explained by the carrier''s ' || {carrier_inc_text} || ' increment: CDR ' || CAST(secs AS VARCHAR)
           || ' s billed as ' || CAST(carrier_billed_s AS VARCHAR) || ' s (contract ' || {inc_text}
           || ' gives ' || CAST(expected_billed_s AS VARCHAR) || ' s)'
         WHEN '{STATUS_COST_VARIANCE}' THEN
           'invoice cost is ' || CASE WHEN cost_delta > 0 THEN 'above' ELSE 'below' END
           || ' the expected cost (' || rate_source || ' ' || {_money_text_sql('rate')} || '/min, '
           || {inc_text} || ' increment)'
           || CASE WHEN inv_billed IS NOT NULL AND inv_billed <> expected_billed_s
                   THEN '; carrier billed ' || {_seconds_text_sql('inv_billed')} || ' s where ' || {inc_text}
                        || ' gives ' || CAST(expected_billed_s AS VARCHAR) || ' s for a '
                        || CAST(secs AS VARCHAR) || ' s CDR'
                   ELSE '' END
           || CASE WHEN carrier_billed_s IS NOT NULL AND inv_billed IS NOT NULL
                        AND inv_billed = carrier_billed_s
                   THEN '; billed seconds follow the carrier''s ' || {carrier_inc_text}
                        || ' increment, so the rate or fee differs'
                   ELSE '' END
         ELSE concat_ws('; ',
           CASE WHEN dur IS NULL THEN 'CDR duration is missing: cannot rate the call'
                WHEN dur < 0 THEN 'CDR duration is negative: cannot rate the call' END,
           CASE WHEN rate_source IS NULL THEN {no_rate_reason} END,
           CASE WHEN inv_cost IS NULL THEN 'invoice cost is empty: the charge cannot be verified' END)
       END AS reason
FROM classified
"""


def rate_pairs_params(settings: RatingSettings) -> dict[str, Any]:
    """The parameters :func:`rate_pairs_sql` binds (Decimals passed as exact strings)."""
    carrier = settings.carrier_increment
    flat = {}
    if settings.rate_deck is None:
        flat = {
            "inbound_rate": _str_or_none(settings.inbound_rate_per_minute),
            "outbound_rate": _str_or_none(settings.outbound_rate_per_minute),
        }
    return {
        **flat,
        "abs_tolerance": str(settings.abs_tolerance),
        "pct_tolerance": str(settings.pct_tolerance),
        "connection_fee": str(settings.connection_fee),
        "inc_a": settings.increment.first_s,
        "inc_b": settings.increment.next_s,
        "carrier_a": None if carrier is None else carrier.first_s,
        "carrier_b": None if carrier is None else carrier.next_s,
        "use_invoice_rate": settings.rate_source == "invoice_rate",
    }


def rate_deck_arrow(deck: RateDeck) -> pa.Table:
    """The rate deck as an Arrow table for :func:`rate_pairs_sql` (money as exact strings).

    Increment and fee columns are null where the deck row leaves them to the settings;
    ``deck_id`` numbers the rows.
    """
    rows = deck.rows
    return pa.table({
        "prefix": pa.array([r.prefix for r in rows], pa.string()),
        "direction": pa.array([r.direction for r in rows], pa.string()),
        "rate_per_minute": pa.array([str(r.rate_per_minute) for r in rows], pa.string()),
        "increment_first_s": pa.array([r.increment.first_s if r.increment else None for r in rows],
                                      pa.int32()),
        "increment_next_s": pa.array([r.increment.next_s if r.increment else None for r in rows],
                                     pa.int32()),
        "connection_fee": pa.array([_str_or_none(r.connection_fee) for r in rows], pa.string()),
        "effective_from": pa.array([r.effective_from for r in rows], pa.date32()),
        "deck_id": pa.array(range(len(rows)), pa.int64()),
    })


# --------------------------------------------------------------------------- many pairs


def rate_matched_pairs(
    pairs: pd.DataFrame | duckdb.DuckDBPyRelation,
    settings: RatingSettings,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Rate and classify every matched pair, vectorized in DuckDB (1M rows in seconds).

    In: a DataFrame or DuckDB relation with ``cdr_duration_s``, ``invoice_cost`` and
    ``direction``; plus ``far_end_number`` and ``cdr_start_utc`` with a rate deck,
    ``invoice_rate`` with ``rate_source="invoice_rate"``; ``invoice_billed_s`` optional
    (only used in reasons). Numbers may be Decimal, int, float or numeric strings; the
    start time datetime-like (naive = UTC) or ISO 8601 text. The input is not modified.
    Out: a NEW DataFrame: the input's columns (same index and order; a relation is
    materialized) plus :data:`OUTPUT_COLUMNS`. Money columns (``expected_cost``,
    ``cost_delta``, ``rate_per_minute_used``) are exact Arrow decimals
    (``pd.ArrowDtype(pa.decimal128(18, k))``: elements are ``decimal.Decimal``, missing =
    NA); ``expected_billed_s`` is Int64; text columns are strings (missing = NA).
    Raises: :class:`SettingsError` for invalid settings; ``ValueError`` when a column the
    settings need is missing (a programming error upstream).
    """
    validate_rating_settings(settings)
    if progress:
        progress(0.0, "rating matched pairs")
    frame = pairs.to_arrow_table().to_pandas() if isinstance(pairs, duckdb.DuckDBPyRelation) else pairs
    required = ["cdr_duration_s", "invoice_cost", "direction"]
    if settings.rate_deck is not None:
        required += ["far_end_number", "cdr_start_utc"]
    if settings.rate_source == "invoice_rate":
        required.append("invoice_rate")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"matched pairs lack column(s) {', '.join(missing)} needed for rating")

    rated = rate_pairs_table(_pairs_arrow(frame), settings)
    if progress:
        progress(0.8, "collecting results")
    columns = rated.select(list(OUTPUT_COLUMNS)).to_pandas(types_mapper=_pandas_type)
    out = frame.copy(deep=False)
    clashes = [c for c in OUTPUT_COLUMNS if c in out.columns]
    if clashes:
        logger.warning("rating replaces existing column(s) %s in the copy", ", ".join(clashes))
    for name in OUTPUT_COLUMNS:
        out[name] = columns[name].array  # positional: the caller's index may repeat labels
    counts = out["status"].value_counts().to_dict() if len(out) else {}
    logger.info("rated %d matched pairs: %s", len(out), counts)
    if progress:
        progress(1.0, "rating done")
    return out


def rate_pairs_table(pairs: pa.Table, settings: RatingSettings) -> pa.Table:
    """Rate and classify matched pairs held in Arrow (the engine's path: no pandas, no Python
    object per row).

    In: an Arrow table with the :data:`PAIR_COLUMNS` (a missing column counts as all null;
    money and seconds as Arrow decimals, numbers or numeric text, ``cdr_start_utc`` a
    timestamp). Out: an Arrow table of the :data:`OUTPUT_COLUMNS`, one row per input row, in
    input order. Raises: :class:`SettingsError` for invalid settings.
    """
    validate_rating_settings(settings)
    n = pairs.num_rows
    columns: dict[str, Any] = {_ROW_ID: pa.array(np.arange(n, dtype=np.int64))}
    for name in PAIR_COLUMNS:
        columns[name] = (pairs.column(name) if name in pairs.column_names
                         else pa.nulls(n, pa.timestamp("us") if name == "cdr_start_utc" else pa.string()))
    table = pa.table(columns)
    con = connect()
    try:
        con.register("recon_pairs", table)
        deck_table = None
        if settings.rate_deck is not None:
            con.register("recon_rate_deck", rate_deck_arrow(settings.rate_deck))
            deck_table = "recon_rate_deck"
        params = rate_pairs_params(settings)
        sql = rate_pairs_sql(settings, pairs_table="recon_pairs", deck_table=deck_table)
        try:
            rated = execute(con, sql, params).to_arrow_table(_ONE_BATCH)
        except SQLExecutionError as exc:
            if not isinstance(exc.__cause__, duckdb.OutOfRangeException | duckdb.ConversionException):
                raise
            # Very large durations/rates overflow 64 bits; HUGEINT is exact but much slower.
            logger.info("money arithmetic overflowed BIGINT, re-rating with HUGEINT")
            sql = rate_pairs_sql(settings, pairs_table="recon_pairs", deck_table=deck_table, wide=True)
            rated = execute(con, sql, params).to_arrow_table(_ONE_BATCH)
    finally:
        con.close()
    # The SQL may return rows in any order (DuckDB keeps the input order of a plain projection,
    # not of the rate-deck join); row ids are a permutation of 0..n-1, so the row that belongs
    # at position p is found without sorting, and nothing moves when they are in order already.
    rated = rated.select([_ROW_ID, *OUTPUT_COLUMNS])
    row_ids = rated.column(_ROW_ID).to_numpy()
    if n and not np.array_equal(row_ids, np.arange(n, dtype=row_ids.dtype)):
        row_at = np.empty(n, dtype=np.int64)
        row_at[row_ids] = np.arange(n, dtype=np.int64)
        rated = rated.take(pa.array(row_at))
    return rated.select(list(OUTPUT_COLUMNS))


def _pandas_type(arrow_type: pa.DataType) -> Any:
    """Exact money stays Arrow decimal (no per-row Decimal objects for a million rows)."""
    if pa.types.is_decimal(arrow_type):
        return pd.ArrowDtype(arrow_type)
    if pa.types.is_int64(arrow_type):
        return pd.Int64Dtype()
    return None


def _pairs_arrow(frame: pd.DataFrame) -> pa.Table:
    """Only the columns the SQL reads, in types DuckDB scans without guessing."""
    n = len(frame)
    arrays: dict[str, pa.Array] = {}
    for name in PAIR_COLUMNS:
        if name not in frame.columns:
            arrays[name] = pa.nulls(n, pa.timestamp("us") if name == "cdr_start_utc" else pa.string())
            continue
        series = frame[name]
        if name == "cdr_start_utc":
            if not (pd.api.types.is_datetime64_any_dtype(series.dtype)):
                series = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
            if isinstance(series.dtype, pd.DatetimeTZDtype):
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            stamps = series.to_numpy(dtype="datetime64[us]")
            arrays[name] = pa.array(stamps, pa.timestamp("us"), from_pandas=True)
        elif isinstance(series.dtype, pd.StringDtype):
            arrays[name] = pa.array(series, from_pandas=True, type=pa.string())
        elif isinstance(series.dtype, pd.ArrowDtype) or (
            pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
        ):
            arrays[name] = pa.array(series, from_pandas=True)
        else:
            # Object columns (Decimal, str, mixed) go through their exact text form.
            arrays[name] = pa.array(
                [None if _is_missing(v) else (repr(v) if isinstance(v, float) else str(v)) for v in series],
                pa.string(),
            )
    return pa.table(arrays)


# --------------------------------------------------------------------------- helpers


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    return False


def _as_decimal(value: Any, scale: int | None = None, *, max_digits: int = 18) -> Decimal | None:
    """Exact Decimal of a number or numeric string (float via its shortest repr), else None.

    With ``scale``, rounded half-up to that many decimals and None when it would not fit
    ``DECIMAL(max_digits, scale)`` – the same reading DuckDB's TRY_CAST gives.
    """
    if _is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, np.integer)):
        d = Decimal(int(value))
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return None
        d = Decimal(repr(float(value)))
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            d = Decimal(text)
        except InvalidOperation:
            return None
    if not d.is_finite():
        return None
    if scale is None:
        return d
    with localcontext(_HIGH_PRECISION):
        q = d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if abs(q) >= Decimal(10) ** (max_digits - scale):
        return None
    return q


def _money_setting(value: Any, what: str, problems: list[str]) -> Decimal | None:
    d = _as_decimal(value)
    if d is None:
        problems.append(f"{what} {value!r} is not a number")
        return None
    if d < 0:
        problems.append(f"{what} {value!r} cannot be negative")
        return None
    if d != d.quantize(Decimal(1).scaleb(-MONEY_SCALE), context=_HIGH_PRECISION):
        problems.append(f"{what} {value!r} has more than {MONEY_SCALE} decimal places")
        return None
    return d


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _as_utc_date(value: Any) -> date | None:
    if _is_missing(value):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.date()


def _money_text(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value != 0 else "0"


def _seconds_text(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
