"""The sandbox's real-time source: conversation aggregates, queue observations, user aggregates.

All three are computed from the same synthetic conversations and agent timelines the batch
source (details) serves, as visible at "now":

* conversation aggregates sum the session metrics (``sessions[].metrics``) whose emit time is
  in the interval and not after now, bucketed by ``granularity`` and grouped by dimensions;
  ``oServiceLevel`` is ``answered within the queue's threshold / (answered + abandoned)``;
* queue observations look at which segments and statuses are open at now;
* user aggregates add up the milliseconds each agent spent in each routing status and presence.

The injected disagreements of :class:`~recon_core.sandbox.config.Disagreements` are applied
here (boundary shift, real-time misses, unmapped custom status); the batch side applies late
data (see ``server.py``). :func:`ground_truth` lists them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from recon_core.sandbox.clock import (
    MS_PER_HOUR,
    format_interval,
    iso_ms,
    parse_duration_ms,
    parse_interval,
    parse_iso,
)
from recon_core.sandbox.config import Disagreements
from recon_core.sandbox.model import Conversation
from recon_core.sandbox.org import SERVICE_LEVEL_MS, SERVICE_LEVEL_TARGET, SyntheticOrg
from recon_core.sandbox.query import (
    QueryError,
    bucket_bounds,
    check_filter,
    filter_matches,
    group_value,
    session_dims,
)

OBSERVATION_MEDIA_TYPES = ("voice", "chat", "callback", "email", "message")
CONVERSATION_OBSERVATION_METRICS = ("oWaiting", "oInteracting", "oAlerting", "oLongestWaiting",
                                    "oLongestInteracting")
USER_OBSERVATION_METRICS = ("oUserRoutingStatuses", "oUserPresences", "oOnQueueUsers", "oOffQueueUsers",
                            "oActiveUsers", "oMemberUsers")
USER_AGGREGATE_METRICS = ("tAgentRoutingStatus", "tOrganizationPresence", "tSystemPresence")
RATIO_METRICS = ("oServiceLevel",)
MAX_BUCKETS = 5000

AgentStatus = tuple[str, str | None, int]
"""(status, org presence id or None, since when in epoch ms)."""
UNMAPPED_PRESENCE_NAME = "Project Work"


def _granularity(body: Mapping[str, Any]) -> int | None:
    raw = body.get("granularity")
    if raw in (None, ""):
        return None
    try:
        return parse_duration_ms(str(raw))
    except ValueError as exc:
        raise QueryError(str(exc)) from exc


def _interval(body: Mapping[str, Any]) -> tuple[int, int]:
    if "interval" not in body:
        raise QueryError("interval is required, e.g. 2026-05-01T00:00:00.000Z/2026-05-02T00:00:00.000Z")
    try:
        return parse_interval(str(body["interval"]))
    except ValueError as exc:
        raise QueryError(str(exc)) from exc


def _metrics(body: Mapping[str, Any], allowed: Sequence[str] | None = None) -> list[str]:
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise QueryError("metrics is required: a non-empty list of metric names")
    if allowed is not None:
        unknown = [m for m in metrics if m not in allowed]
        if unknown:
            raise QueryError(f"unknown metric(s) {unknown}; allowed: {', '.join(allowed)}")
    return list(metrics)


def _check_buckets(start: int, end: int, step: int | None) -> list[tuple[int, int]]:
    if step is not None and (end - start) // step > MAX_BUCKETS:
        raise QueryError(f"interval / granularity gives more than {MAX_BUCKETS} buckets; "
                         "use a coarser granularity")
    return bucket_bounds(start, end, step)


def _names_dimension(flt: Mapping[str, Any], dimension: str) -> bool:
    """True when a predicate of ``flt`` (at any depth) is about ``dimension``."""
    if any(p.get("dimension") == dimension for p in flt.get("predicates") or []):
        return True
    return any(_names_dimension(c, dimension) for c in flt.get("clauses") or [])


@dataclass(frozen=True)
class RealtimeView:
    """Real-time answers for one org under one set of disagreements."""

    org: SyntheticOrg
    disagreements: Disagreements

    # ------------------------------------------------------------- disagreements

    def realtime_missing(self, local_day: date) -> frozenset[str]:
        """Ids of the answered inbound calls the real-time source misses on ``local_day``."""
        n = self.disagreements.realtime_missing_per_day
        if n <= 0:
            return frozenset()
        candidates = [c for c in self.org.day(local_day).conversations
                      if c.kind == "answered" and "boundary" not in c.tags]
        if not candidates:
            return frozenset()
        # Clustered, as a real outage of the real-time feed would be: the calls of one queue
        # nearest in time to one drawn call, so one interval's counts differ by up to n calls
        # (spread over the day, one call per interval would hide inside the count tolerance).
        rng = random.Random(f"{self.org.spec.seed}:realtime-missing:{local_day.isoformat()}")
        anchor = rng.choice(candidates)
        same_queue = sorted((c for c in candidates if c.queue_id == anchor.queue_id),
                            key=lambda c: (abs(c.start - anchor.start), c.conversation_id))
        return frozenset(c.conversation_id for c in same_queue[:n])

    def shifted_emit(self, conv: Conversation, emit: int) -> int:
        """Emit time as the real-time source reports it (boundary calls move to the next hour)."""
        if self.disagreements.boundary_shift and "boundary" in conv.tags and emit >= conv.end - 2_000:
            return (conv.end // MS_PER_HOUR + 1) * MS_PER_HOUR
        return emit

    def _realtime_conversations(self, start: int, end: int) -> list[Conversation]:
        # Metrics are emitted up to a few hours after a conversation starts; look back far enough.
        convs = self.org.conversations(start - 6 * MS_PER_HOUR, end)
        missing: set[str] = set()
        for local_day in self.org.local_days(start - 6 * MS_PER_HOUR, end):
            missing |= self.realtime_missing(local_day)
        return [c for c in convs if c.conversation_id not in missing]

    def presence_mappings(self) -> dict[str, list[str]]:
        """``systemToOrganizationMappings``: system presence -> org presence ids."""
        out: dict[str, list[str]] = {}
        for p in self.org.directory.presences:
            if self.disagreements.unmapped_custom_status and p.custom and p.name == UNMAPPED_PRESENCE_NAME:
                continue
            out.setdefault(p.system_presence, []).append(p.id)
        return out

    # ------------------------------------------------------------- conversation aggregates

    def conversation_aggregates(self, body: Mapping[str, Any], now: int) -> dict[str, Any]:
        """``ConversationAggregateQueryResponse`` for a ``ConversationAggregationQuery`` body."""
        start, end = _interval(body)
        step = _granularity(body)
        buckets = _check_buckets(start, end, step)
        metrics = _metrics(body)
        group_by = body.get("groupBy") or []
        if not isinstance(group_by, list):
            raise QueryError("groupBy must be a list of dimension names")
        flt = body.get("filter")
        if flt is not None:
            check_filter(flt, "filter")
        wanted = set(metrics)
        need_sl = "oServiceLevel" in wanted
        # group key -> bucket index -> metric -> accumulator
        acc: dict[tuple[tuple[str, str], ...], dict[int, dict[str, list[int]]]] = {}
        sl: dict[tuple[tuple[str, str], ...], dict[int, list[int]]] = {}
        queues = {q.id: q for q in self.org.directory.queues}
        for conv in self._realtime_conversations(start, end):
            for part, session in conv.sessions():
                dims: dict[str, Any] | None = None
                for metric in session.metrics:
                    relevant = metric.name in wanted or (need_sl and metric.name in ("tAnswered", "tAbandon"))
                    if not relevant:
                        continue
                    emit = self.shifted_emit(conv, metric.emit)
                    if not start <= emit < end or emit > now:
                        continue
                    if dims is None:
                        dims = session_dims(conv, part, session)
                    if flt is not None and not filter_matches(flt, dims):
                        continue
                    key = tuple((g, v) for g in group_by if (v := group_value(dims.get(g))) is not None)
                    index = (emit - start) // step if step else 0
                    if metric.name in wanted:
                        cell = acc.setdefault(key, {}).setdefault(index, {})
                        stats = cell.setdefault(metric.name, [0, 0, 0, 0])
                        value = metric.value
                        if stats[0] == 0:
                            stats[2] = stats[3] = value
                        stats[0] += 1 if metric.name.startswith("t") else value
                        stats[1] += value
                        stats[2] = min(stats[2], value)
                        stats[3] = max(stats[3], value)
                    if need_sl and metric.name in ("tAnswered", "tAbandon"):
                        counts = sl.setdefault(key, {}).setdefault(index, [0, 0])
                        queue = queues.get(str(dims.get("queueId")))
                        threshold = queue.service_level_ms if queue else SERVICE_LEVEL_MS
                        counts[1] += 1
                        if metric.name == "tAnswered" and metric.value <= threshold:
                            counts[0] += 1
        results = []
        for key in sorted(set(acc) | set(sl)):
            data = []
            indexes = sorted(set(acc.get(key, {})) | set(sl.get(key, {})))
            for index in indexes:
                entries = []
                for name in metrics:
                    if name == "oServiceLevel":
                        answered = sl.get(key, {}).get(index)
                        if answered and answered[1]:
                            entries.append({"metric": name, "stats": {
                                "ratio": round(answered[0] / answered[1], 6), "numerator": answered[0],
                                "denominator": answered[1], "target": SERVICE_LEVEL_TARGET}})
                        continue
                    totals = acc.get(key, {}).get(index, {}).get(name)
                    if not totals:
                        continue
                    if name.startswith("t"):
                        entries.append({"metric": name, "stats": {
                            "max": totals[3], "min": totals[2], "count": totals[0], "sum": totals[1]}})
                    else:
                        entries.append({"metric": name, "stats": {"count": totals[0]}})
                if entries:
                    b0, b1 = buckets[index]
                    data.append({"interval": format_interval(b0, b1), "metrics": entries})
            if data:
                results.append({"group": dict(key), "data": data})
        return {"results": results} if results else {}

    # ------------------------------------------------------------- observations

    def _status_at(self, kind: str, now: int) -> dict[str, AgentStatus]:
        """Agent id -> (status, presence id, since) at ``now``; OFFLINE / OFF_QUEUE outside the data."""
        out: dict[str, AgentStatus] = {}
        spans = self.org.timelines(now - 12 * MS_PER_HOUR, now + 1, kind)
        for agent in self.org.directory.agents:
            history = spans.get(agent.id) or []
            if not history or not history[-1].start <= now < history[-1].end:
                out[agent.id] = ("OFFLINE" if kind == "presence" else "OFF_QUEUE", None, now)
                continue
            current = history[-1]
            since = current.start
            # A status can be cut in two at a day boundary: walk back over contiguous pieces.
            for earlier in reversed(history[:-1]):
                if earlier.status != current.status or earlier.end != since:
                    break
                since = earlier.start
            out[agent.id] = (current.status, current.presence_id, since)
        return out

    def queue_observations(self, body: Mapping[str, Any], now: int) -> dict[str, Any]:
        """``QueueObservationQueryResponse`` for a ``QueueObservationQuery`` body, at ``now``."""
        flt = body.get("filter")
        if flt is None:
            raise QueryError("filter is required and must name at least one queueId")
        check_filter(flt, "filter")
        allowed = CONVERSATION_OBSERVATION_METRICS + USER_OBSERVATION_METRICS
        metrics = _metrics(body, allowed)
        detail_list = body.get("detailMetrics") or []
        if not isinstance(detail_list, list) or any(m not in allowed for m in detail_list):
            raise QueryError(f"detailMetrics must be a list of: {', '.join(allowed)}")
        detail = set(detail_list)
        # A metric asked for in detail only is reported too (as the official tutorial relies on).
        metrics += [m for m in detail_list if m not in metrics]
        queues = self.org.directory.queues
        combos = [(q, m) for q in queues for m in OBSERVATION_MEDIA_TYPES
                  if filter_matches(flt, {"queueId": q.id, "mediaType": m})]
        if not _names_dimension(flt, "queueId"):
            raise QueryError("filter must name at least one queueId")
        if not combos:
            return {}
        open_convs = [c for c in self.org.conversations(now - 6 * MS_PER_HOUR, now + 1) if c.end > now]
        presence = self._status_at("presence", now)
        routing = self._status_at("routing", now)
        results = []
        seen_queues: list[str] = []
        for q, _ in combos:
            if q.id not in seen_queues:
                seen_queues.append(q.id)
        user_metrics = [m for m in metrics if m in USER_OBSERVATION_METRICS]
        conv_metrics = [m for m in metrics if m in CONVERSATION_OBSERVATION_METRICS]
        for queue_id in seen_queues:
            if not user_metrics:
                break
            members = [a for a in self.org.directory.agents if queue_id in a.queue_ids]
            data = self._user_observations(members, user_metrics, detail, presence, routing)
            if data:
                results.append({"group": {"queueId": queue_id}, "data": data})
        for q, media in combos:
            if not conv_metrics:
                break
            data = self._conversation_observations(q.id, media, conv_metrics, detail, open_convs, now)
            results.append({"group": {"queueId": q.id, "mediaType": media}, "data": data})
        out: dict[str, Any] = {}
        if "oUserPresences" in metrics:
            out["systemToOrganizationMappings"] = self.presence_mappings()
        out["results"] = results
        return out

    def _user_observations(self, members: list[Any], metrics: list[str], detail: set[str],
                           presence: dict[str, AgentStatus],
                           routing: dict[str, AgentStatus]) -> list[dict[str, Any]]:
        active = [a for a in members if presence[a.id][0] != "OFFLINE"]
        on_queue = [a for a in active if presence[a.id][0] == "ON_QUEUE"]
        data: list[dict[str, Any]] = []

        def observations(agents: list[Any], source: dict[str, AgentStatus]) -> list[dict[str, Any]]:
            return [{"observationDate": iso_ms(source[a.id][2]), "userId": a.id}
                    for a in sorted(agents, key=lambda a: source[a.id][2])]

        for metric in metrics:
            if metric in ("oMemberUsers", "oActiveUsers", "oOffQueueUsers"):
                agents = {"oMemberUsers": members, "oActiveUsers": active,
                          "oOffQueueUsers": [a for a in active if a not in on_queue]}[metric]
                entry: dict[str, Any] = {"metric": metric, "stats": {"count": len(agents)}}
                if metric in detail and agents:
                    entry["observations"] = observations(agents, presence)
                data.append(entry)
                continue
            if metric == "oUserPresences":
                groups: dict[str, list[Any]] = {}
                for a in active:
                    groups.setdefault(str(presence[a.id][1]), []).append(a)
                source = presence
            else:
                pool = on_queue if metric == "oOnQueueUsers" else active
                groups = {}
                for a in pool:
                    status = routing[a.id][0] if presence[a.id][0] == "ON_QUEUE" else "OFF_QUEUE"
                    groups.setdefault(status, []).append(a)
                source = routing
            for qualifier in sorted(groups):
                entry = {"metric": metric, "qualifier": qualifier, "stats": {"count": len(groups[qualifier])}}
                if metric in detail:
                    entry["observations"] = observations(groups[qualifier], source)
                data.append(entry)
        return data

    def _conversation_observations(self, queue_id: str, media: str, metrics: list[str], detail: set[str],
                                   open_convs: list[Conversation], now: int) -> list[dict[str, Any]]:
        waiting: list[dict[str, Any]] = []
        alerting: list[dict[str, Any]] = []
        interacting: list[dict[str, Any]] = []
        for conv in open_convs:
            customer = next((p for p in conv.participants if p.purpose == "customer"), None)
            for part, session in conv.sessions():
                if session.media_type != media or part.purpose not in ("acd", "agent"):
                    continue
                current = [s for s in session.segments if s.start <= now < s.end and s.queue_id == queue_id]
                if not current:
                    continue
                seg = current[0]
                obs: dict[str, Any] = {"observationDate": iso_ms(seg.start),
                                       "conversationId": conv.conversation_id,
                                       "sessionId": session.session_id, "routingPriority": 0,
                                       "direction": session.direction}
                if customer is not None:
                    obs["participantName"] = customer.participant_name
                if "ani" in session.attrs:
                    obs["ani"] = session.attrs["ani"]
                    obs["dnis"] = session.attrs["dnis"]
                if part.purpose == "acd":
                    obs["requestedRoutings"] = ["Standard"]
                    waiting.append(obs)
                    continue
                obs["userId"] = part.user_id
                if seg.segment_type == "alert":
                    alerting.append(obs)
                elif seg.segment_type in ("interact", "hold", "callback", "dialing"):
                    first = next(s for s in session.segments if s.segment_type not in ("alert",))
                    obs["observationDate"] = iso_ms(first.start)
                    interacting.append(obs)
        lists = {"oWaiting": waiting, "oAlerting": alerting, "oInteracting": interacting}
        data: list[dict[str, Any]] = []
        for metric in metrics:
            if metric in lists:
                items = sorted(lists[metric], key=lambda o: o["observationDate"])
                entry: dict[str, Any] = {"metric": metric, "stats": {"count": len(items)}}
                if metric in detail and items:
                    entry["truncated"] = False
                    entry["observations"] = items
                data.append(entry)
            else:
                items = sorted(waiting if metric == "oLongestWaiting" else interacting,
                               key=lambda o: o["observationDate"])
                if items:
                    oldest = items[0]
                    entry = {"metric": metric, "stats": {
                        "calculatedMetricValue": now - parse_iso(oldest["observationDate"])}}
                    entry["observations"] = [oldest]
                    data.append(entry)
        return data

    # ------------------------------------------------------------- user aggregates

    def user_aggregates(self, body: Mapping[str, Any], now: int) -> dict[str, Any]:
        """``UserAggregateQueryResponse``: milliseconds per routing status / presence per agent."""
        start, end = _interval(body)
        step = _granularity(body)
        buckets = _check_buckets(start, end, step)
        metrics = _metrics(body, USER_AGGREGATE_METRICS)
        group_by = body.get("groupBy") or []
        if not isinstance(group_by, list) or any(g != "userId" for g in group_by):
            raise QueryError("groupBy may only contain userId")
        flt = body.get("filter")
        if flt is not None:
            check_filter(flt, "filter")
        agents = [a for a in self.org.directory.agents
                  if flt is None or filter_matches(flt, {"userId": a.id})]
        horizon = min(end, now)
        presence = self.org.timelines(start, horizon, "presence") if horizon > start else {}
        routing = self.org.timelines(start, horizon, "routing") if horizon > start else {}
        system_of = {p.id: p.system_presence for p in self.org.directory.presences}
        # group key -> bucket -> (metric, qualifier) -> ms
        acc: dict[tuple[tuple[str, str], ...], dict[int, dict[tuple[str, str], int]]] = {}
        for agent in agents:
            key: tuple[tuple[str, str], ...] = (("userId", agent.id),) if group_by else ()
            for metric in metrics:
                spans = routing.get(agent.id,
                                    []) if metric == "tAgentRoutingStatus" else presence.get(agent.id, [])
                for span in spans:
                    if metric == "tOrganizationPresence":
                        qualifier = str(span.presence_id)
                    elif metric == "tSystemPresence":
                        qualifier = system_of.get(str(span.presence_id), span.status)
                    else:
                        qualifier = span.status
                    for index, (b0, b1) in enumerate(buckets):
                        overlap = min(span.end, b1) - max(span.start, b0)
                        if overlap > 0:
                            cell = acc.setdefault(key, {}).setdefault(index, {})
                            cell[(metric, qualifier)] = cell.get((metric, qualifier), 0) + overlap
        results = []
        for key in sorted(acc):
            data = []
            for index in sorted(acc[key]):
                cell = acc[key][index]
                ordered = sorted(cell.items(), key=lambda kv: (metrics.index(kv[0][0]), kv[0][1]))
                entries = [{"metric": m, "qualifier": q, "stats": {"sum": ms}} for (m, q), ms in ordered]
                b0, b1 = buckets[index]
                data.append({"interval": format_interval(b0, b1), "metrics": entries})
            results.append({"group": dict(key), "data": data})
        out: dict[str, Any] = {"systemToOrganizationMappings": self.presence_mappings()}
        if results:
            out["results"] = results
        return out


def ground_truth(view: RealtimeView, start: int, end: int, now: int,
                 late_batches: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Every injected real-time/batch disagreement touching ``[start, end)``, for tests and demos.

    Each entry has ``kind`` (``boundary_shift``, ``realtime_missing``, ``late_batch``,
    ``unmapped_custom_status``) and the ids and times needed to check a collector.
    """
    out: list[dict[str, Any]] = []
    dis = view.disagreements
    convs = view.org.conversations(start, end)
    if dis.boundary_shift:
        for conv in convs:
            if "boundary" in conv.tags:
                out.append({"kind": "boundary_shift", "conversationId": conv.conversation_id,
                            "queueId": conv.queue_id, "batchEnd": iso_ms(conv.end),
                            "realtimeEnd": iso_ms(view.shifted_emit(conv, conv.end))})
    if dis.realtime_missing_per_day:
        missing: set[str] = set()
        for local_day in view.org.local_days(start, end):
            missing |= view.realtime_missing(local_day)
        for conv in convs:
            if conv.conversation_id in missing:
                out.append({"kind": "realtime_missing", "conversationId": conv.conversation_id,
                            "queueId": conv.queue_id, "conversationStart": iso_ms(conv.start)})
    for late in late_batches:
        out.append({"kind": "late_batch", **late.to_dict()})
    if dis.unmapped_custom_status:
        p = next(p for p in view.org.directory.presences if p.custom and p.name == UNMAPPED_PRESENCE_NAME)
        out.append({"kind": "unmapped_custom_status", "presenceId": p.id, "name": p.name,
                    "systemPresence": p.system_presence})
    return out
