"""The metric registry, the tolerance policy and the status mapping table.

Every compared metric is described once, as data, in :data:`METRIC_REGISTRY`: its kind
(``count``, ``duration``, ``average``, ``ratio``, ``current_state``), how it is derived from
the ``stats`` of a Genesys aggregate (``count``, ``sum``, ``ratio`` or ``numerator/denominator``
of two other registry metrics, e.g. ``AHT = tHandle / nHandled`` = ``tHandle.sum / tHandle.count``),
its unit and whether it is additive (can be summed over queues and adjacent intervals).

The tolerance rule is one formula for every kind: a value is within tolerance when
``|rt - batch| <= max(absolute, percent / 100 * |batch|)``. The defaults of the issue:
counts ``max(2, 0.1 %)``; durations and averages 5 % (with a 1-second floor for rounding);
ratios 2 percentage points (ratios are held in percent, so ``absolute = 2``).

Status metrics carry their status after a colon: ``tAgentRoutingStatus:IDLE``,
``tOrganizationPresence:BREAK``. The :class:`StatusMap` maps a real-time status to the
batch classification; an unknown status is ``UNMAPPED`` and goes to the review list.

Policy and status-map files are JSON (``{"metrics": {"AHT": {"absolute": 1, "percent": 5}}}``,
``{"statuses": {"Project Work": "BUSY"}}``); both are also kept in the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recon_core.errors import SettingsError

logger = logging.getLogger(__name__)

KINDS = ("count", "duration", "average", "ratio", "current_state")
DERIVATIONS = ("count", "sum", "ratio", "numerator/denominator")
ADDITIVE_KINDS = frozenset({"count", "duration"})
STATUS_METRICS = ("tAgentRoutingStatus", "tOrganizationPresence", "oUserRoutingStatuses", "oUserPresences")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: where its value comes from, its unit and kind.

    ``api_metric``/``stat``: the aggregate metric and the ``stats`` field read (derivations
    ``count``, ``sum``, ``ratio``); ``numerator``/``denominator``: the registry metrics divided
    (derivation ``numerator/denominator``). ``scale`` multiplies the API value (ms -> s: 0.001,
    ratio -> percent: 100).
    """

    name: str
    kind: str
    derivation: str
    unit: str
    label: str
    api_metric: str = ""
    stat: str = ""
    numerator: str = ""
    denominator: str = ""
    scale: float = 1.0

    @property
    def additive(self) -> bool:
        return self.kind in ADDITIVE_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "derivation": self.derivation, "unit": self.unit,
                "label": self.label, "api_metric": self.api_metric, "stat": self.stat,
                "numerator": self.numerator, "denominator": self.denominator, "scale": self.scale,
                "additive": self.additive}


METRIC_REGISTRY: tuple[MetricSpec, ...] = (
    MetricSpec("nOffered", "count", "count", "conversations", "Offered", "nOffered", "count"),
    MetricSpec("nConnected", "count", "count", "conversations", "Connected", "nConnected", "count"),
    MetricSpec("nAnswered", "count", "count", "conversations", "Answered", "tAnswered", "count"),
    MetricSpec("nHandled", "count", "count", "conversations", "Handled", "tHandle", "count"),
    MetricSpec("nAbandoned", "count", "count", "conversations", "Abandoned", "tAbandon", "count"),
    MetricSpec("tHandle", "duration", "sum", "s", "Handle time", "tHandle", "sum", scale=0.001),
    MetricSpec("tTalk", "duration", "sum", "s", "Talk time", "tTalk", "sum", scale=0.001),
    MetricSpec("tAnswered", "duration", "sum", "s", "Time to answer", "tAnswered", "sum", scale=0.001),
    MetricSpec("AHT", "average", "numerator/denominator", "s", "Average handle time",
               numerator="tHandle", denominator="nHandled"),
    MetricSpec("ASA", "average", "numerator/denominator", "s", "Average speed of answer",
               numerator="tAnswered", denominator="nAnswered"),
    MetricSpec("ATT", "average", "numerator/denominator", "s", "Average talk time",
               numerator="tTalk", denominator="nTalked"),
    MetricSpec("nTalked", "count", "count", "conversations", "Talked", "tTalk", "count"),
    MetricSpec("oServiceLevel", "ratio", "ratio", "%", "Service level", "oServiceLevel", "ratio", scale=100.0),
    MetricSpec("tAgentRoutingStatus", "duration", "sum", "s", "Time in routing status",
               "tAgentRoutingStatus", "sum", scale=0.001),
    MetricSpec("tOrganizationPresence", "duration", "sum", "s", "Time in presence",
               "tOrganizationPresence", "sum", scale=0.001),
    MetricSpec("oWaiting", "current_state", "count", "conversations", "Waiting", "oWaiting", "count"),
    MetricSpec("oInteracting", "current_state", "count", "conversations", "Interacting", "oInteracting", "count"),
    MetricSpec("oOnQueueUsers", "current_state", "count", "agents", "On-queue agents", "oOnQueueUsers", "count"),
    MetricSpec("oUserRoutingStatuses", "current_state", "count", "agents", "Agents by routing status",
               "oUserRoutingStatuses", "count"),
    MetricSpec("oUserPresences", "current_state", "count", "agents", "Agents by presence",
               "oUserPresences", "count"),
)
REGISTRY: dict[str, MetricSpec] = {m.name: m for m in METRIC_REGISTRY}

# Aggregate metrics asked of conversations/aggregates/query (both sides) and observations (real time).
CONVERSATION_API_METRICS = ("nOffered", "nConnected", "tAnswered", "tHandle", "tTalk", "tAbandon", "oServiceLevel")
OBSERVATION_API_METRICS = ("oWaiting", "oInteracting", "oOnQueueUsers", "oUserRoutingStatuses", "oUserPresences")
USER_API_METRICS = ("tAgentRoutingStatus", "tOrganizationPresence")


def base_metric(metric: str) -> str:
    """``tAgentRoutingStatus:IDLE`` -> ``tAgentRoutingStatus``; other names unchanged."""
    return metric.split(":", 1)[0]


def metric_spec(metric: str) -> MetricSpec | None:
    """The registry entry of ``metric`` (status metrics by their base name); None when unknown."""
    return REGISTRY.get(metric) or REGISTRY.get(base_metric(metric))


@dataclass(frozen=True)
class Tolerance:
    """``|rt - batch| <= max(absolute, percent / 100 * |batch|)`` (absolute in the metric's unit)."""

    absolute: float = 0.0
    percent: float = 0.0

    def threshold(self, batch_value: float) -> tuple[float, str]:
        """(allowed absolute difference, which term won: ``absolute`` or ``percent``)."""
        relative = self.percent / 100.0 * abs(batch_value)
        return (relative, "percent") if relative > self.absolute else (self.absolute, "absolute")

    def to_dict(self) -> dict[str, float]:
        return {"absolute": self.absolute, "percent": self.percent}


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "count": Tolerance(absolute=2.0, percent=0.1),
    "current_state": Tolerance(absolute=2.0, percent=0.1),
    "duration": Tolerance(absolute=1.0, percent=5.0),
    "average": Tolerance(absolute=1.0, percent=5.0),
    "ratio": Tolerance(absolute=2.0, percent=0.0),
}


@dataclass(frozen=True)
class MetricPolicy:
    """Tolerances per metric (``overrides``, by metric or base name) over the defaults per kind."""

    overrides: tuple[tuple[str, Tolerance], ...] = ()
    kind_defaults: tuple[tuple[str, Tolerance], ...] = tuple(DEFAULT_TOLERANCES.items())

    def tolerance_for(self, metric: str) -> Tolerance:
        """The tolerance of ``metric``: its override, its base metric's, else its kind's default."""
        own = dict(self.overrides)
        if metric in own:
            return own[metric]
        if base_metric(metric) in own:
            return own[base_metric(metric)]
        spec = metric_spec(metric)
        defaults = dict(self.kind_defaults)
        return defaults.get(spec.kind if spec else "count", DEFAULT_TOLERANCES["count"])

    def with_tolerance(self, metric: str, tolerance: Tolerance) -> MetricPolicy:
        """A copy with ``metric``'s tolerance replaced."""
        rest = tuple((m, t) for m, t in self.overrides if m != metric)
        return replace(self, overrides=tuple(sorted((*rest, (metric, tolerance)))))

    def merged(self, other: MetricPolicy) -> MetricPolicy:
        """``self`` with every override of ``other`` applied on top."""
        out = self
        for metric, tolerance in other.overrides:
            out = out.with_tolerance(metric, tolerance)
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per registry metric (for an editor): metric, kind, unit, absolute, percent."""
        rows = []
        for spec in METRIC_REGISTRY:
            tol = self.tolerance_for(spec.name)
            rows.append({"metric": spec.name, "label": spec.label, "kind": spec.kind, "unit": spec.unit,
                         "absolute": tol.absolute, "percent": tol.percent})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {m: t.to_dict() for m, t in self.overrides}}


def policy_from_rows(rows: Any) -> MetricPolicy:
    """A policy from editor rows (``metric``, ``absolute``, ``percent``), keeping only non-default ones.

    Raises:
        SettingsError: listing every invalid row.
    """
    problems: list[str] = []
    policy = MetricPolicy()
    for row in rows:
        metric = str(row.get("metric", "")).strip()
        tol = _tolerance(metric, row, problems)
        if tol is not None and tol != policy.tolerance_for(metric):
            policy = policy.with_tolerance(metric, tol)
    if problems:
        raise SettingsError("invalid tolerance policy: " + "; ".join(problems))
    return policy


def _tolerance(metric: str, raw: Any, problems: list[str]) -> Tolerance | None:
    if not metric:
        problems.append("a tolerance row has no metric name")
        return None
    if metric_spec(metric) is None:
        problems.append(f"unknown metric {metric!r} (known: {', '.join(REGISTRY)})")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{metric}: expected an object with absolute and/or percent")
        return None
    default = MetricPolicy().tolerance_for(metric)
    values = {}
    for key in ("absolute", "percent"):
        value = raw.get(key, getattr(default, key))
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(f"{metric}: {key} must be a number, got {value!r}")
            return None
        if number != number or number < 0:
            problems.append(f"{metric}: {key} must be 0 or more, got {value!r}")
            return None
        values[key] = number
    return Tolerance(**values)


def load_policy(path: str | Path) -> MetricPolicy:
    """Read a JSON policy file ``{"metrics": {"<metric>": {"absolute": x, "percent": y}}}``.

    Raises:
        SettingsError: unreadable file, bad JSON or invalid entries (every problem listed).
    """
    data = _read_json(path, "policy")
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise SettingsError(f"policy file {path} must be a JSON object with a \"metrics\" object, e.g. "
                            '{"metrics": {"AHT": {"percent": 5}}}')
    problems: list[str] = []
    policy = MetricPolicy()
    for metric, raw in metrics.items():
        tol = _tolerance(str(metric), raw, problems)
        if tol is not None:
            policy = policy.with_tolerance(str(metric), tol)
    if problems:
        raise SettingsError(f"policy file {path} is invalid: " + "; ".join(problems))
    return policy


def save_policy(policy: MetricPolicy, path: str | Path) -> Path:
    """Write ``policy`` as the JSON :func:`load_policy` reads."""
    target = Path(path)
    target.write_text(json.dumps(policy.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


# ---------------------------------------------------------------------- status mapping

ROUTING_STATUSES = ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING")
SYSTEM_PRESENCES = ("AVAILABLE", "AWAY", "BUSY", "OFFLINE", "IDLE", "ON_QUEUE", "MEAL", "TRAINING",
                    "MEETING", "BREAK")
UNMAPPED = "UNMAPPED"


@dataclass(frozen=True)
class StatusMap:
    """Real-time routing/presence status -> batch classification.

    Built-in statuses map to themselves; ``entries`` add custom org statuses (by name or
    presence id) or re-map built-in ones. Matching ignores case and surrounding blanks.
    """

    entries: tuple[tuple[str, str], ...] = ()
    builtin: tuple[str, ...] = field(default=tuple(dict.fromkeys(ROUTING_STATUSES + SYSTEM_PRESENCES)))

    def classify(self, status: str) -> str | None:
        """The batch classification of ``status``; None when it is not mapped."""
        key = _status_key(status)
        for source, target in self.entries:
            if _status_key(source) == key:
                return target
        for known in self.builtin:
            if _status_key(known) == key:
                return known
        return None

    def with_entry(self, status: str, classification: str) -> StatusMap:
        rest = tuple((s, c) for s, c in self.entries if _status_key(s) != _status_key(status))
        return replace(self, entries=(*rest, (status.strip(), classification.strip())))

    def table(self) -> list[dict[str, str]]:
        """Editor rows: realtime_status, batch_classification (custom entries, then built-ins)."""
        custom = [{"realtime_status": s, "batch_classification": c} for s, c in self.entries]
        mapped = {_status_key(s) for s, _ in self.entries}
        return custom + [{"realtime_status": s, "batch_classification": s} for s in self.builtin
                         if _status_key(s) not in mapped]

    def to_dict(self) -> dict[str, Any]:
        return {"statuses": dict(self.entries)}


def _status_key(status: str) -> str:
    return str(status).strip().casefold()


def status_map_from_rows(rows: Any) -> StatusMap:
    """A status map from editor rows (``realtime_status``, ``batch_classification``).

    Raises:
        SettingsError: a row misses either value.
    """
    out = StatusMap()
    problems = []
    for row in rows:
        status = str(row.get("realtime_status") or "").strip()
        target = str(row.get("batch_classification") or "").strip()
        if not status or not target:
            if status or target:
                problems.append(f"status row {status or '?'} -> {target or '?'} needs both values")
            continue
        if out.classify(status) != target:
            out = out.with_entry(status, target)
    if problems:
        raise SettingsError("invalid status map: " + "; ".join(problems))
    return out


def load_status_map(path: str | Path) -> StatusMap:
    """Read ``{"statuses": {"Project Work": "BUSY", ...}}``.

    Raises:
        SettingsError: unreadable file, bad JSON or a non-text entry.
    """
    data = _read_json(path, "status map")
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, dict):
        raise SettingsError(f"status map {path} must be a JSON object with a \"statuses\" object, e.g. "
                            '{"statuses": {"Project Work": "BUSY"}}')
    bad = [k for k, v in statuses.items() if not isinstance(v, str) or not v.strip() or not str(k).strip()]
    if bad:
        raise SettingsError(f"status map {path}: statuses {bad} need a non-empty batch classification")
    out = StatusMap()
    for status, target in statuses.items():
        out = out.with_entry(str(status), str(target))
    return out


def save_status_map(status_map: StatusMap, path: str | Path) -> Path:
    target = Path(path)
    target.write_text(json.dumps(status_map.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise SettingsError(f"{what} file {path} is not valid JSON: {exc}") from exc
