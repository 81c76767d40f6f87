"""Configuration of one sandbox server: credentials, clock, paging, faults and disagreements.

Everything is a frozen dataclass with ``to_dict()``; :func:`validate_config` collects every
problem and raises one :class:`~recon_core.sandbox.org.SandboxError`.

Faults (``Faults``) make the server misbehave the way Genesys Cloud does under load or at
the edges: 429 bursts with and without ``Retry-After``, 503s, jobs that expire or fail, tokens
that stop working mid-fetch, a results page cut short or malformed once.

Disagreements (``Disagreements``) make the *real-time* source (conversation aggregates, queue
observations, user aggregates) and the *batch* source (conversation details jobs and the
synchronous details query) tell different stories about the same synthetic calls:

* ``late_batches`` - batch data for an interval answers 503 or 409, or is partial, until a
  given time (then it is complete);
* ``boundary_shift`` - calls tagged ``boundary`` end at HH:59:59.xxx in the batch source but
  their end-of-call metrics are counted at HH:00:00 in the real-time source;
* ``unmapped_custom_status`` - the custom presence ``Project Work`` is missing from
  ``systemToOrganizationMappings`` and from the presence definitions, so a collector meets a
  status it cannot map;
* ``realtime_missing_per_day`` - a genuine count mismatch: that many answered inbound calls a day,
  of one queue and close together in time (an outage of the real-time feed), are absent from the
  real-time aggregates (present in the batch).

:meth:`recon_core.sandbox.server.SandboxServer.ground_truth` lists what was injected.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from recon_core.sandbox.clock import Clock
from recon_core.sandbox.org import OrgSpec, SandboxError, org_spec_problems

ERROR_STATUSES = (429, 500, 502, 503, 504)
JOB_FAULT_STATES = ("EXPIRED", "FAILED")
PAGE_FAULT_MODES = ("malformed", "short")
LATE_MODES = ("503", "409", "partial")


@dataclass(frozen=True)
class ErrorBurst:
    """``count`` consecutive API requests answered with ``status``.

    The burst starts after ``after_requests`` API requests whose path contains
    ``path_contains`` ("" = any /api/v2 request) were let through. ``retry_after_s`` sets the
    ``Retry-After`` header (None = no header, as some 429s and most 503s come).
    """

    status: int = 429
    after_requests: int = 0
    count: int = 1
    retry_after_s: int | None = 1
    path_contains: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobFault:
    """Details jobs that end ``EXPIRED`` or ``FAILED`` instead of being served.

    Applies to the first ``attempts`` jobs whose interval starts on ``day`` (UTC; None = on
    every day, counted per day); re-submissions after that succeed. ``after_pages`` (EXPIRED only): the job is
    fulfilled and expires after that many result pages were served (expiry mid-fetch).
    """

    state: str = "EXPIRED"
    day: date | None = None
    attempts: int = 1
    after_pages: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat() if self.day else None
        return data


@dataclass(frozen=True)
class PageFault:
    """The ``nth`` successful response whose path contains ``path_contains`` is damaged, once.

    ``malformed``: the body is cut in the middle of the JSON (Content-Length matches the cut
    body, so only the JSON parser notices). ``short``: Content-Length announces the whole body
    but the connection closes halfway (the HTTP client notices).
    """

    mode: str = "malformed"
    path_contains: str = "/results"
    nth: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Faults:
    """Fault injection knobs (all off by default)."""

    bursts: tuple[ErrorBurst, ...] = ()
    job_faults: tuple[JobFault, ...] = ()
    page_faults: tuple[PageFault, ...] = ()
    token_max_requests: int | None = None
    """A token stops working (401) after this many API requests: expiry in the middle of a fetch."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bursts": [b.to_dict() for b in self.bursts],
            "job_faults": [j.to_dict() for j in self.job_faults],
            "page_faults": [p.to_dict() for p in self.page_faults],
            "token_max_requests": self.token_max_requests,
        }


@dataclass(frozen=True)
class LateBatch:
    """Batch data for conversations starting in ``[start, end)`` is late until ``until``.

    ``mode``: ``503`` or ``409`` (details query and job submission for an overlapping interval
    are refused), or ``partial`` (only the first ``partial_fraction`` of the interval's
    conversations are returned, and ``dataAvailabilityDate`` stays at ``start``).
    """

    start: datetime
    end: datetime
    until: datetime
    mode: str = "partial"
    partial_fraction: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "until": self.until.isoformat(),
                "mode": self.mode, "partial_fraction": self.partial_fraction}


@dataclass(frozen=True)
class Disagreements:
    """Injected differences between the real-time and the batch source (see module docstring)."""

    late_batches: tuple[LateBatch, ...] = ()
    boundary_shift: bool = False
    unmapped_custom_status: bool = False
    realtime_missing_per_day: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"late_batches": [b.to_dict() for b in self.late_batches],
                "boundary_shift": self.boundary_shift,
                "unmapped_custom_status": self.unmapped_custom_status,
                "realtime_missing_per_day": self.realtime_missing_per_day}


@dataclass(frozen=True)
class SandboxConfig:
    """One sandbox server. ``clock`` returns "now" (an aware datetime); None = the real time."""

    org: OrgSpec = field(default_factory=OrgSpec)
    host: str = "127.0.0.1"
    port: int = 0
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    token_lifetime_s: int = 86_400
    clock: Clock | None = None
    missing_permissions: tuple[str, ...] = ()
    rate_limit_per_minute: int = 300
    enforce_rate_limit: bool = False
    job_polls_until_fulfilled: int = 2
    job_page_size: int = 100
    job_max_page_size: int = 1000
    sync_max_page_size: int = 100
    sync_max_interval_days: int = 31
    job_data_lag_s: int = 0
    faults: Faults = field(default_factory=Faults)
    disagreements: Disagreements = field(default_factory=Disagreements)
    batch_aggregates_after_s: int | None = None
    """Aggregate queries (conversations and users) over an interval that ended at least this many
    seconds ago are answered by the *batch* source: no real-time disagreements, and late batches
    answer 503/409. None = the real-time source answers every aggregate query."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "org": self.org.to_dict(), "host": self.host, "port": self.port, "client_id": self.client_id,
            "client_secret": "***", "token_lifetime_s": self.token_lifetime_s,
            "clock": "system" if self.clock is None else type(self.clock).__name__,
            "missing_permissions": list(self.missing_permissions),
            "rate_limit_per_minute": self.rate_limit_per_minute,
                "enforce_rate_limit": self.enforce_rate_limit,
            "job_polls_until_fulfilled": self.job_polls_until_fulfilled, "job_page_size": self.job_page_size,
            "job_max_page_size": self.job_max_page_size, "sync_max_page_size": self.sync_max_page_size,
            "sync_max_interval_days": self.sync_max_interval_days, "job_data_lag_s": self.job_data_lag_s,
            "faults": self.faults.to_dict(), "disagreements": self.disagreements.to_dict(),
            "batch_aggregates_after_s": self.batch_aggregates_after_s,
        }


def config_problems(config: SandboxConfig) -> list[str]:
    """Every problem with ``config`` (empty when usable)."""
    problems = org_spec_problems(config.org)
    try:
        if not ipaddress.ip_address(config.host).is_loopback:
            problems.append(f"host {config.host} is not a loopback address: "
                            "the sandbox only listens on 127.0.0.1")
    except ValueError:
        problems.append(f"host {config.host!r} must be a loopback IP address such as 127.0.0.1")
    if not 0 <= config.port <= 65535:
        problems.append(f"port must be 0..65535 (0 = pick a free port), got {config.port}")
    if not config.client_id or not config.client_secret:
        problems.append("client_id and client_secret must not be empty")
    if config.token_lifetime_s < 1:
        problems.append("token_lifetime_s must be at least 1 second")
    if config.rate_limit_per_minute < 1:
        problems.append("rate_limit_per_minute must be at least 1")
    if config.job_polls_until_fulfilled < 0:
        problems.append("job_polls_until_fulfilled must be 0 or more")
    if not 1 <= config.job_page_size <= config.job_max_page_size:
        problems.append("job_page_size must be between 1 and job_max_page_size")
    if config.sync_max_page_size < 1 or config.sync_max_interval_days < 1 or config.job_data_lag_s < 0:
        problems.append("sync_max_page_size and sync_max_interval_days must be ≥ 1, job_data_lag_s ≥ 0")
    for burst in config.faults.bursts:
        if burst.status not in ERROR_STATUSES:
            problems.append(f"burst status {burst.status} is not one of {ERROR_STATUSES}")
        if burst.count < 1 or burst.after_requests < 0:
            problems.append("a burst needs count ≥ 1 and after_requests ≥ 0")
    for job in config.faults.job_faults:
        if job.state not in JOB_FAULT_STATES:
            problems.append(f"job fault state {job.state!r} is not one of {JOB_FAULT_STATES}")
        if job.attempts < 1 or job.after_pages < 0:
            problems.append("a job fault needs attempts ≥ 1 and after_pages ≥ 0")
    for page in config.faults.page_faults:
        if page.mode not in PAGE_FAULT_MODES:
            problems.append(f"page fault mode {page.mode!r} is not one of {PAGE_FAULT_MODES}")
        if page.nth < 1:
            problems.append("page fault nth must be 1 or more")
    if config.faults.token_max_requests is not None and config.faults.token_max_requests < 1:
        problems.append("token_max_requests must be 1 or more (or None)")
    for late in config.disagreements.late_batches:
        if late.mode not in LATE_MODES:
            problems.append(f"late batch mode {late.mode!r} is not one of {LATE_MODES}")
        if late.end <= late.start:
            problems.append("a late batch interval must end after it starts")
        if any(d.tzinfo is None for d in (late.start, late.end, late.until)):
            problems.append("late batch start/end/until must be aware datetimes (tzinfo=UTC)")
        if not 0 <= late.partial_fraction < 1:
            problems.append("late batch partial_fraction must be in [0, 1)")
    if config.batch_aggregates_after_s is not None and config.batch_aggregates_after_s < 0:
        problems.append("batch_aggregates_after_s must be 0 or more (or None)")
    if config.disagreements.realtime_missing_per_day < 0:
        problems.append("realtime_missing_per_day must be 0 or more")
    return problems


def validate_config(config: SandboxConfig) -> None:
    """Raise one :class:`SandboxError` listing every problem with ``config``."""
    problems = config_problems(config)
    if problems:
        raise SandboxError("invalid sandbox config: " + "; ".join(problems))
