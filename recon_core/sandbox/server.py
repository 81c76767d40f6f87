"""A local Genesys Cloud sandbox: an HTTP server on 127.0.0.1 serving the synthetic org.

Endpoints (request and response shapes of ``recon_core/genesys/spec/swagger_subset.json``):

=======  ===========================================================  ==============================
POST     /oauth/token                                                 client credentials (Basic auth)
GET      /api/v2/tokens/me  (DELETE revokes the token)                TokenInfo
POST     /api/v2/analytics/conversations/details/jobs                 202 AsyncQueryResponse
GET      /api/v2/analytics/conversations/details/jobs/availability    DataAvailabilityResponse
GET      /api/v2/analytics/conversations/details/jobs/{jobId}         AsyncQueryStatus
DELETE   /api/v2/analytics/conversations/details/jobs/{jobId}         204
GET      /api/v2/analytics/conversations/details/jobs/{jobId}/results AnalyticsConversationAsyncQueryResponse
POST     /api/v2/analytics/conversations/details/query                AnalyticsConversationQueryResponse
GET      /api/v2/analytics/conversations/{conversationId}/details     AnalyticsConversationWithoutAttributes
POST     /api/v2/analytics/conversations/aggregates/query             ConversationAggregateQueryResponse
POST     /api/v2/analytics/queues/observations/query                  QueueObservationQueryResponse
POST     /api/v2/analytics/users/aggregates/query                     UserAggregateQueryResponse
GET      /api/v2/presence/definitions                                 OrganizationPresenceDefinition...Listing
=======  ===========================================================  ==============================

Every response carries ``inin-ratelimit-count``, ``inin-ratelimit-allowed``,
``inin-ratelimit-reset`` and ``ININ-Correlation-Id``; errors are ``ErrorBody`` JSON (the token
endpoint answers ``{"error": ..., "description": ...}`` like the login service). Empty results
are omitted as the real API does (a details page past the end has no ``conversations`` key, an
aggregate query without data answers ``{}``).

Details jobs: submitting answers 202 with a ``jobId``; the first ``job_polls_until_fulfilled``
status polls answer ``QUEUED`` then ``PENDING``, the next one ``FULFILLED`` (0 = fulfilled at
once); ``EXPIRED``/``FAILED`` instead when a :class:`~recon_core.sandbox.config.JobFault` says
so, and a fulfilled job expires two days after completion on the sandbox clock. The job's conversations are
fixed when it is submitted. Results are cursor-paged (the last page has no ``cursor``); asking
for the results of a job that is not ``FULFILLED`` answers 400, of an expired or deleted job 404.

Use :func:`run_sandbox` (a context manager) in tests, ``python -m recon_core.sandbox`` otherwise.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import random
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recon_core.sandbox.analytics import RealtimeView, ground_truth
from recon_core.sandbox.clock import (
    MS_PER_DAY,
    format_interval,
    from_ms,
    iso_ms,
    parse_interval,
    system_clock,
    to_ms,
)
from recon_core.sandbox.config import Disagreements, JobFault, SandboxConfig, validate_config
from recon_core.sandbox.model import Conversation, render_conversation, without_attributes
from recon_core.sandbox.org import SyntheticOrg, build_org, new_uuid
from recon_core.sandbox.query import QueryError, conversation_passes, filters_of
from recon_core.sandbox.spec import error_descriptions, permission_rule

logger = logging.getLogger(__name__)

DETAILS = "/api/v2/analytics/conversations/details"
JOB_RETENTION_MS = 2 * MS_PER_DAY
DEFAULT_SYNC_PAGE_SIZE = 25
# No synthetic conversation lasts longer (queue wait + talk + transfer + wrap-up).
MAX_CONVERSATION_MS = 12 * 3_600_000


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered (for tests to assert on what a client did)."""

    seq: int
    at: str
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any
    fault: str | None = None
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "method": self.method, "path": self.path, "query": self.query,
                "status": self.status, "body": self.body, "fault": self.fault}


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    damage: str | None = None
    raw: bytes | None = None


@dataclass
class _Token:
    client_id: str
    expires: int
    requests: int = 0


@dataclass
class _Job:
    job_id: str
    submitted: int
    snapshot_at: int
    conversations: list[Conversation]
    fault: JobFault | None
    polls: int = 0
    state: str = "QUEUED"
    completed: int | None = None
    pages_served: int = 0
    error: str | None = None


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 fault: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fault = fault


Route = tuple[str, re.Pattern[str], str, str]


def _route(method: str, template: str, handler: str) -> Route:
    pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
    return method, re.compile(pattern), template, handler


ROUTES: tuple[Route, ...] = (
    _route("GET", "/api/v2/tokens/me", "tokens_me"),
    _route("DELETE", "/api/v2/tokens/me", "revoke_token"),
    _route("GET", f"{DETAILS}/jobs/availability", "availability"),
    _route("POST", f"{DETAILS}/jobs", "submit_job"),
    _route("GET", f"{DETAILS}/jobs/{{jobId}}", "job_status"),
    _route("DELETE", f"{DETAILS}/jobs/{{jobId}}", "delete_job"),
    _route("GET", f"{DETAILS}/jobs/{{jobId}}/results", "job_results"),
    _route("POST", f"{DETAILS}/query", "details_query"),
    _route("GET", "/api/v2/analytics/conversations/{conversationId}/details", "conversation_details"),
    _route("POST", "/api/v2/analytics/conversations/aggregates/query", "aggregates"),
    _route("POST", "/api/v2/analytics/queues/observations/query", "queue_observations"),
    _route("POST", "/api/v2/analytics/users/aggregates/query", "user_aggregates"),
    _route("GET", "/api/v2/presence/definitions", "presence_definitions"),
)


def error_body(status: int, code: str, message: str, context_id: str,
               params: dict[str, str] | None = None) -> dict[str, Any]:
    """A Genesys ``ErrorBody``."""
    body: dict[str, Any] = {"message": message, "code": code, "status": status}
    if params:
        body["messageWithParams"] = message
        body["messageParams"] = params
    body["contextId"] = context_id
    body["details"] = []
    body["errors"] = []
    return body


class SandboxState:
    """Everything one sandbox server knows: org, tokens, jobs, counters and the request log."""

    def __init__(self, config: SandboxConfig, org: SyntheticOrg) -> None:
        self.config = config
        self.org = org
        self.view = RealtimeView(org, config.disagreements)
        # The batch source's aggregates: the same org without the real-time disagreements.
        self.batch_view = RealtimeView(org, Disagreements())
        self.clock: Callable[[], datetime] = config.clock or system_clock
        self.lock = threading.RLock()
        self.tokens: dict[str, _Token] = {}
        self.jobs: dict[str, _Job] = {}
        self.log: list[RequestRecord] = []
        self.api_requests: dict[str, int] = {}
        self.page_hits: dict[int, int] = {}
        self.job_fault_uses: dict[tuple[int, int], int] = {}
        self.window: dict[str, tuple[int, int]] = {}
        self.lacking = frozenset(config.missing_permissions)
        self.seq = 0
        self._request_key: str | None = None

    def now(self) -> int:
        return to_ms(self.clock())

    # ------------------------------------------------------------------ request entry point

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        with self.lock:
            self.seq += 1
            # Deterministic per server and request number, so logs of two runs compare.
            context_id = new_uuid(random.Random(f"{self.config.org.seed}:request:{self.seq}"))
            parts = urlsplit(raw_path)
            path = parts.path.rstrip("/") or "/"
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            now = self.now()
            self._request_key = None
            parsed_body: Any = None
            try:
                if path == "/oauth/token":
                    parsed_body = {k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()}
                    response = self._token(method, headers, parsed_body, now)
                elif path.startswith("/api/v2/"):
                    if body:
                        try:
                            parsed_body = json.loads(body)
                        except ValueError:
                            parsed_body = body.decode("utf-8", "replace")
                    response = self._api(method, path, query, headers, parsed_body, now)
                else:
                    raise _HttpError(404, "not.found", "The requested resource was not found.")
            except _HttpError as exc:
                response = _Response(exc.status, error_body(exc.status, exc.code, exc.message, context_id),
                                     dict(exc.headers), fault=exc.fault)
            except Exception:  # noqa: BLE001 - a sandbox bug must still answer like a server
                logger.exception("sandbox failed on %s %s", method, path)
                bug = error_body(500, "internal.server.error", error_descriptions()["500"], context_id)
                response = _Response(500, bug, fault="sandbox_bug")
            key = self._request_key
            if key is None:
                key = "client:" + self.config.client_id if path == "/oauth/token" else "anonymous"
                self._window(key, now)
            start, count = self.window[key]
            response.headers.setdefault("inin-ratelimit-count", str(count))
            response.headers.setdefault("inin-ratelimit-allowed", str(self.config.rate_limit_per_minute))
            reset = max(0, math.ceil((start + 60_000 - now) / 1000))
            response.headers.setdefault("inin-ratelimit-reset", str(reset))
            response.headers["ININ-Correlation-Id"] = context_id
            auth = headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            fault = response.fault or response.damage
            self.log.append(RequestRecord(self.seq, iso_ms(now), method, path, query, response.status,
                                          parsed_body, fault, token))
            return response

    # ------------------------------------------------------------------ auth

    def _token(self, method: str, headers: dict[str, str], form: dict[str, str], now: int) -> _Response:
        def auth_error(status: int, error: str, description: str) -> _Response:
            return _Response(status, {"error": error, "description": description,
                                      "error_description": description})

        if method != "POST":
            return auth_error(405, "invalid_request", "use POST /oauth/token")
        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return auth_error(400, "invalid_request",
                              "send grant_type=client_credentials as application/x-www-form-urlencoded")
        auth = headers.get("authorization", "")
        client_id = secret = None
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = None
        if client_id is None:
            return auth_error(401, "invalid_client",
                              "client credentials must be sent as HTTP Basic authorization")
        if client_id != self.config.client_id or secret != self.config.client_secret:
            return auth_error(401, "invalid_client",
                              "authentication failed: unknown client id or wrong secret")
        if form.get("grant_type") != "client_credentials":
            return auth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = _Token(client_id, now + self.config.token_lifetime_s * 1000)
        return _Response(200, {"access_token": token, "token_type": "bearer",
                               "expires_in": self.config.token_lifetime_s})

    def _api(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any,
             now: int) -> _Response:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise _HttpError(401, "authentication.required",
                             "No authentication bearer token specified in authorization header.")
        token_text = auth[7:].strip()
        token = self.tokens.get(token_text)
        if token is None:
            raise _HttpError(401, "bad.credentials", "Invalid login credentials.")
        if now >= token.expires:
            raise _HttpError(401, "bad.credentials", "Invalid login credentials.", fault="token_expired")
        limit = self.config.faults.token_max_requests
        if limit is not None and token.requests >= limit:
            raise _HttpError(401, "bad.credentials", "Invalid login credentials.", fault="token_revoked")
        token.requests += 1
        key = "token:" + token_text
        self._request_key = key
        count, reset = self._window(key, now)
        self._bursts(path)
        if self.config.enforce_rate_limit and count > self.config.rate_limit_per_minute:
            raise _HttpError(429, "too.many.requests.retry.after",
                             f"Rate limit exceeded the maximum. Retry the request in [{reset}] seconds",
                             {"Retry-After": str(reset)}, fault="rate_limit")
        for rmethod, pattern, template, handler in ROUTES:
            match = pattern.match(path)
            if not match:
                continue
            if rmethod != method:
                continue
            rule = permission_rule(method, template)
            missing = rule.missing(self.lacking)
            if missing:
                names = ", ".join(missing)
                if rule.kind == "ANY" and len(rule.permissions) > 1:
                    code = "missing.any.permissions"
                    message = ("Unable to perform the requested action. You must have at least one of the "
                               f"following permissions assigned: {names}")
                else:
                    code = "missing.permissions"
                    message = ("Unable to perform the requested action. You are missing the following "
                               f"permission(s): {names}")
                raise _HttpError(403, code, message, fault="missing_permission")
            if method == "POST" and "application/json" not in headers.get("content-type", ""):
                raise _HttpError(415, "unsupported.media.type", error_descriptions()["415"])
            if method == "POST" and not isinstance(body, dict):
                raise _HttpError(400, "bad.request", "The request body must be a JSON object.")
            response: _Response = getattr(self, "_" + handler)(match.groupdict(), query, body, now, key)
            self._damage(path, response)
            return response
        raise _HttpError(404, "not.found", "The requested resource was not found.")

    def _bursts(self, path: str) -> None:
        for index, burst in enumerate(self.config.faults.bursts):
            if burst.path_contains and burst.path_contains not in path:
                continue
            seen = self.api_requests.get(f"burst{index}", 0) + 1
            self.api_requests[f"burst{index}"] = seen
            if burst.after_requests < seen <= burst.after_requests + burst.count:
                headers = {"Retry-After": str(burst.retry_after_s)} if burst.retry_after_s is not None else {}
                if burst.status == 429:
                    wait = burst.retry_after_s if burst.retry_after_s is not None else 1
                    message = f"Rate limit exceeded the maximum. Retry the request in [{wait}] seconds"
                    raise _HttpError(429, "too.many.requests", message, headers, fault="burst_429")
                text = error_descriptions().get(str(burst.status), "Server error.")
                codes = {500: "internal.server.error", 502: "bad.gateway", 503: "service.unavailable",
                         504: "request.timeout"}
                raise _HttpError(burst.status, codes[burst.status], text, headers,
                                 fault=f"burst_{burst.status}")

    def _window(self, key: str, now: int) -> tuple[int, int]:
        start, count = self.window.get(key, (now, 0))
        if now - start >= 60_000:
            start, count = now, 0
        count += 1
        self.window[key] = (start, count)
        return count, max(0, math.ceil((start + 60_000 - now) / 1000))

    def _damage(self, path: str, response: _Response) -> None:
        if response.status >= 300:
            return
        for index, fault in enumerate(self.config.faults.page_faults):
            if fault.path_contains not in path:
                continue
            hits = self.page_hits.get(index, 0) + 1
            self.page_hits[index] = hits
            if hits == fault.nth:
                response.damage = f"page_{fault.mode}"
                return

    # ------------------------------------------------------------------ tokens, presences

    def _tokens_me(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                   key: str) -> _Response:
        org = {"id": self.org.directory.org_id, "name": self.org.directory.org_name}
        return _Response(200, {
            "organization": org, "homeOrganization": org, "authorizedScope": [],
            "OAuthClient": {"id": self.config.client_id, "name": "Reconciliation workbench (sandbox)",
                            "authorizedGrantType": "CLIENT-CREDENTIALS", "organization": org},
        })

    def _revoke_token(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                      key: str) -> _Response:
        self.tokens.pop(key.removeprefix("token:"), None)
        return _Response(200, None)

    def _presence_definitions(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                              key: str) -> _Response:
        mapped = self.view.presence_mappings()
        visible = {pid for ids in mapped.values() for pid in ids}
        entities = []
        for p in self.org.directory.presences:
            if p.id not in visible:
                continue
            system = "".join(part.title() for part in p.system_presence.split("_"))
            entities.append({"id": p.id, "name": p.name, "type": "User" if p.custom else "System",
                             "languageLabels": {"en_US": p.name}, "systemPresence": system,
                             "deactivated": False, "selfUri": f"/api/v2/presence/definitions/{p.id}"})
        return _Response(200, {"total": len(entities), "entities": entities,
                               "selfUri": "/api/v2/presence/definitions"})

    # ------------------------------------------------------------------ batch (details)

    def availability(self, now: int) -> int:
        """``dataAvailabilityDate``: now minus the job lag, held back by late batches."""
        date = now - self.config.job_data_lag_s * 1000
        for late in self.config.disagreements.late_batches:
            if now < to_ms(late.until) and to_ms(late.start) < date:
                date = to_ms(late.start)
        return date

    def _late(self, start: int, end: int, now: int) -> None:
        for late in self.config.disagreements.late_batches:
            if late.mode == "partial" or now >= to_ms(late.until):
                continue
            if to_ms(late.start) < end and start < to_ms(late.end):
                window = format_interval(to_ms(late.start), to_ms(late.end))
                message = f"Data for {window} is not available yet; retry after {late.until.isoformat()}"
                if late.mode == "503":
                    raise _HttpError(503, "service.unavailable", message, fault="late_batch_503")
                raise _HttpError(409, "conflict", message, fault="late_batch_409")

    def _batch_conversations(self, body: dict[str, Any], now: int, *, sync: bool) -> list[Conversation]:
        """The conversations a details query or job selects, as of ``now``.

        Interval semantics of the spec: a job returns every conversation *with activity* in the
        interval (it may have started earlier; ``startOfDayIntervalMatching`` drops those that
        started before the interval's first UTC day); the synchronous query only those that
        also *started on a day the interval touches*.
        """
        if "interval" not in body:
            raise _HttpError(400, "bad.request", "interval is required, e.g. "
                             "2026-05-01T00:00:00.000Z/2026-05-02T00:00:00.000Z")
        try:
            start, end = parse_interval(str(body["interval"]))
            conversation_filters = filters_of(body, "conversationFilters")
            segment_filters = filters_of(body, "segmentFilters")
        except ValueError as exc:
            code = "invalid.date" if "interval" in str(exc) or "ISO" in str(exc) else "bad.request"
            raise _HttpError(400, code, str(exc)) from exc
        max_days = self.config.sync_max_interval_days if sync else None
        if max_days is not None and end - start > max_days * MS_PER_DAY:
            raise _HttpError(400, "bad.request", f"interval is longer than {max_days} days; "
                             "use POST .../details/jobs for longer periods")
        order = body.get("order", "asc")
        order_by = body.get("orderBy", "conversationStart")
        if order not in ("asc", "desc", "unordered") or order_by not in (
                "conversationStart", "conversationEnd", "segmentStart", "segmentEnd"):
            raise _HttpError(400, "invalid.value", f"order {order!r} / orderBy {order_by!r} is not valid")
        self._late(start, end, now)
        first_day = start - start % MS_PER_DAY
        from_day_start = sync or bool(body.get("startOfDayIntervalMatching"))
        earliest = first_day if from_day_start else start - MAX_CONVERSATION_MS
        convs = [c for c in self.org.conversations(earliest, min(end, now)) if min(c.end, now) > start
                 and conversation_passes(c, now, conversation_filters, segment_filters)]
        for late in self.config.disagreements.late_batches:
            if late.mode != "partial" or now >= to_ms(late.until):
                continue
            cut = to_ms(late.start) + int((to_ms(late.end) - to_ms(late.start)) * late.partial_fraction)
            convs = [c for c in convs if not (cut <= c.start < to_ms(late.end))]
        if order_by in ("conversationEnd", "segmentEnd"):
            convs.sort(key=lambda c: (c.end if c.end <= now else now, c.conversation_id))
        if order == "desc":
            convs.reverse()
        return convs

    def _details_query(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                       key: str) -> _Response:
        paging = body.get("paging") or {}
        size = paging.get("pageSize", DEFAULT_SYNC_PAGE_SIZE)
        number = paging.get("pageNumber", 1)
        if not isinstance(size, int) or not isinstance(number, int) or size < 1 or number < 1:
            raise _HttpError(400, "bad.request",
                             "paging.pageSize and paging.pageNumber must be whole numbers ≥ 1")
        if size > self.config.sync_max_page_size:
            raise _HttpError(400, "bad.request", f"paging.pageSize {size} is over the maximum of "
                             f"{self.config.sync_max_page_size}")
        convs = self._batch_conversations(body, now, sync=True)
        page = convs[(number - 1) * size: number * size]
        out: dict[str, Any] = {}
        if page:
            out["conversations"] = [without_attributes(self._render(c, now)) for c in page]
        out["totalHits"] = len(convs)
        return _Response(200, out)

    def _render(self, conv: Conversation, now: int) -> dict[str, Any]:
        rendered = render_conversation(conv, now)
        assert rendered is not None  # only conversations started before now are selected
        return rendered

    def _conversation_details(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                              key: str) -> _Response:
        conv = self.org.conversation(params["conversationId"])
        if conv is None or conv.start >= now:
            raise _HttpError(404, "not.found", f"conversation {params['conversationId']} was not found")
        return _Response(200, without_attributes(self._render(conv, now)))

    def _job_fault(self, start: int) -> JobFault | None:
        """The fault for a job whose interval starts at ``start``: the first ``attempts`` jobs of a day."""
        day = from_ms(start).date()
        for index, fault in enumerate(self.config.faults.job_faults):
            if fault.day is not None and fault.day != day:
                continue
            used = self.job_fault_uses.get((index, day.toordinal()), 0)
            if used < fault.attempts:
                self.job_fault_uses[(index, day.toordinal())] = used + 1
                return fault
        return None

    def _submit_job(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                    key: str) -> _Response:
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise _HttpError(400, "bad.request", "limit must be a whole number ≥ 1")
        convs = self._batch_conversations(body, now, sync=False)
        lag_cut = now - self.config.job_data_lag_s * 1000
        convs = [c for c in convs if c.start < lag_cut]
        if limit is not None:
            convs = convs[:limit]
        start, _ = parse_interval(str(body["interval"]))
        job_id = str(uuid.uuid4())
        job = _Job(job_id, now, now, convs, self._job_fault(start))
        self.jobs[job_id] = job
        self._advance(job, now)
        return _Response(202, {"jobId": job_id})

    def _job(self, job_id: str, now: int) -> _Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise _HttpError(404, "not.found", f"job {job_id} was not found (never submitted, or deleted)")
        if job.state == "FULFILLED" and job.completed is not None and now >= job.completed + JOB_RETENTION_MS:
            job.state = "EXPIRED"
        return job

    def _status_body(self, job: _Job) -> dict[str, Any]:
        out: dict[str, Any] = {"state": job.state}
        if job.error:
            out["errorMessage"] = job.error
        if job.completed is not None:
            out["expirationDate"] = iso_ms(job.completed + JOB_RETENTION_MS)
        out["submissionDate"] = iso_ms(job.submitted)
        if job.completed is not None:
            out["completionDate"] = iso_ms(job.completed)
        return out

    def _advance(self, job: _Job, now: int) -> None:
        """Move a running job on after ``job.polls`` status polls (0 polls: at submission)."""
        if job.state not in ("QUEUED", "PENDING"):
            return
        if job.polls < self.config.job_polls_until_fulfilled:
            job.state = "QUEUED" if job.polls <= 1 else "PENDING"
        elif job.fault is not None and job.fault.state == "FAILED":
            job.state = "FAILED"
            job.error = "The job failed on the server (injected by the sandbox); submit it again."
        elif job.fault is not None and job.fault.after_pages == 0:
            job.state = "EXPIRED"
            job.completed = now
        else:
            job.state = "FULFILLED"
            job.completed = now

    def _job_status(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                    key: str) -> _Response:
        job = self._job(params["jobId"], now)
        if job.state in ("QUEUED", "PENDING"):
            job.polls += 1
            if job.polls <= self.config.job_polls_until_fulfilled:
                job.state = "QUEUED" if job.polls == 1 else "PENDING"
            else:
                self._advance(job, now)
        fault = f"job_{job.state.lower()}" if job.state in ("FAILED", "EXPIRED") else None
        return _Response(200, self._status_body(job), fault=fault)

    def _delete_job(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                    key: str) -> _Response:
        self._job(params["jobId"], now)
        del self.jobs[params["jobId"]]
        return _Response(204, None)

    def _job_results(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                     key: str) -> _Response:
        job = self._job(params["jobId"], now)
        if job.state == "EXPIRED":
            raise _HttpError(404, "not.found", f"job {job.job_id} has EXPIRED; submit the query again",
                             fault="job_expired")
        if job.state != "FULFILLED":
            raise _HttpError(400, "bad.request", f"job {job.job_id} is {job.state}, not FULFILLED: poll "
                             f"GET {DETAILS}/jobs/{job.job_id} until it is")
        try:
            size = int(query.get("pageSize", self.config.job_page_size))
        except ValueError as exc:
            raise _HttpError(400, "bad.request", "pageSize must be a whole number") from exc
        if not 1 <= size <= self.config.job_max_page_size:
            raise _HttpError(400, "bad.request", f"pageSize must be 1..{self.config.job_max_page_size}")
        offset = 0
        if query.get("cursor"):
            offset = self._read_cursor(query["cursor"], job.job_id)
        page = job.conversations[offset: offset + size]
        out: dict[str, Any] = {"conversations": [self._render(c, job.snapshot_at) for c in page]}
        if offset + size < len(job.conversations):
            out["cursor"] = self._cursor(job.job_id, offset + size)
        out["dataAvailabilityDate"] = iso_ms(self.availability(job.snapshot_at))
        job.pages_served += 1
        fault = job.fault
        if fault is not None and fault.state == "EXPIRED" and job.pages_served >= fault.after_pages:
            job.state = "EXPIRED"
        return _Response(200, out)

    @staticmethod
    def _cursor(job_id: str, offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"j": job_id, "o": offset}).encode()).decode().rstrip("=")

    @staticmethod
    def _read_cursor(cursor: str, job_id: str) -> int:
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if data["j"] != job_id:
                raise ValueError("cursor of another job")
            return int(data["o"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _HttpError(400, "bad.request",
                             f"cursor {cursor!r} is not a cursor of job {job_id}") from exc

    def _availability(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                      key: str) -> _Response:
        return _Response(200, {"dataAvailabilityDate": iso_ms(self.availability(now))})

    # ------------------------------------------------------------------ real time

    def _realtime(self, compute: Callable[[dict[str, Any], int], dict[str, Any]], body: Any,
                  now: int) -> _Response:
        try:
            return _Response(200, compute(body, now))
        except QueryError as exc:
            raise _HttpError(400, "bad.request", str(exc)) from exc

    def _aggregate_view(self, body: Any, now: int) -> RealtimeView:
        """The batch view for intervals ended ``batch_aggregates_after_s`` ago (late data refused), else real time."""
        after = self.config.batch_aggregates_after_s
        if after is None or not isinstance(body, dict):
            return self.view
        try:
            start, end = parse_interval(str(body.get("interval", "")))
        except ValueError:
            return self.view  # the view reports the bad interval
        if end + after * 1000 > now:
            return self.view
        self._late(start, end, now)
        return self.batch_view

    def _aggregates(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                    key: str) -> _Response:
        return self._realtime(self._aggregate_view(body, now).conversation_aggregates, body, now)

    def _queue_observations(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                            key: str) -> _Response:
        return self._realtime(self.view.queue_observations, body, now)

    def _user_aggregates(self, params: dict[str, str], query: dict[str, str], body: Any, now: int,
                         key: str) -> _Response:
        return self._realtime(self._aggregate_view(body, now).user_aggregates, body, now)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GenesysSandbox/1.0"
    state: SandboxState  # set on the subclass made per server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.state.handle(self.command, self.path, headers, body)
        payload = b"" if response.body is None else json.dumps(response.body, separators=(",", ":")).encode()
        if response.damage == "page_malformed":
            payload = payload[: max(1, len(payload) // 2)]
        self.send_response(response.status)
        if payload or response.status not in (204,):
            self.send_header("Content-Type", "application/json")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if response.damage == "page_short":
            self.send_header("Connection", "close")
        self.end_headers()
        if response.damage == "page_short":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("sandbox: " + format, *args)


class SandboxServer:
    """A running sandbox (see :func:`run_sandbox`). ``base_url`` serves both login and API."""

    def __init__(self, config: SandboxConfig | None = None, org: SyntheticOrg | None = None) -> None:
        self.config = config or SandboxConfig()
        validate_config(self.config)
        self.org = org or build_org(self.config.org)
        self.state = SandboxState(self.config, self.org)
        handler = type("SandboxHandler", (_Handler,), {"state": self.state})
        self._httpd = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` - API base and login base at once."""
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve on a background daemon thread."""
        if self._thread is None:
            # A short poll interval makes close() (shutdown) quick in tests.
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="genesys-sandbox", daemon=True)
            self._thread.start()
            logger.info("sandbox listening on %s", self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the CLI)."""
        self._httpd.serve_forever()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ for tests

    def now(self) -> datetime:
        return self.state.clock()

    def requests(self) -> list[RequestRecord]:
        """Every request answered so far, in order."""
        with self.state.lock:
            return list(self.state.log)

    def request_count(self, path_contains: str = "", method: str | None = None,
                      status: int | None = None) -> int:
        """How many requests matched (path substring, method, status)."""
        return sum(1 for r in self.requests() if path_contains in r.path
                   and (method is None or r.method == method) and (status is None or r.status == status))

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.log.clear()

    def ground_truth(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The injected real-time/batch disagreements touching ``[start, end)``."""
        return ground_truth(self.state.view, to_ms(start), to_ms(end), self.state.now(),
                            self.config.disagreements.late_batches)


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig | None = None,
                org: SyntheticOrg | None = None) -> Iterator[SandboxServer]:
    """Start a sandbox on a background thread for the ``with`` block::

        with run_sandbox(SandboxConfig(clock=ManualClock(...))) as server:
            requests.post(server.base_url + "/oauth/token", ...)

    Raises:
        SandboxError: the config is invalid (every problem listed).
    """
    server = SandboxServer(config, org)
    try:
        yield server.start()
    finally:
        server.close()
