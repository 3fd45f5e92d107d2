"""Patroni's view in db-monitor and the metrics: members, leader, paused, lag per member, timeline history.

Read from Patroni's REST API (postgres/patroni.py) at each run or scrape; judged by replicas/patroni.judge (a member
Patroni reports unhealthy is a warning, no leader is critical).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.findings import Finding
from cuisine_db.monitor.health_checks import CheckStatus
from cuisine_db.monitor.metric_families import counter, gauge
from cuisine_db.postgres import patroni
from cuisine_db.replicas.patroni import judge

GROUP = "patroni"


def summary(view: patroni.ClusterView, history: list[patroni.TimelineSwitch]) -> str:
    leader = view.leader
    streaming = sum(1 for m in view.members if m.streaming)
    lead = f"leader {leader.name} (timeline {leader.timeline})" if leader else "NO LEADER"
    last = f"; last switch: timeline {history[-1].timeline} ended {history[-1].at or '?'}" if history else ""
    paused = "; PAUSED (no automatic failover)" if view.paused else ""
    return f"{lead}; {streaming} of {len(view.members) - (1 if leader else 0)} members streaming{paused}{last}"


def check(settings: Settings, env: Environment) -> tuple[CheckStatus, list[Finding]]:
    """db-monitor's Patroni group: the worst finding sets its status."""
    view = patroni.cluster(settings, env)
    history = patroni.history(settings, env)
    findings = judge(view, env)
    severities = {f.severity for f in findings}
    status = "critical" if severities & {"critical", "error"} else "warning" if "warning" in severities else "ok"
    return CheckStatus(GROUP, status, summary(view, history)), findings


class PatroniCollector(Collector):
    """Patroni's view at every scrape: `cuisine_db_patroni_up` 0 when no REST endpoint answers."""

    def __init__(self, settings: Settings, env: Environment) -> None:
        self.settings = settings
        self.env = env

    def collect(self) -> Iterator[Metric]:
        try:
            view = patroni.cluster(self.settings, self.env)
            history = patroni.history(self.settings, self.env)
        except CuisineDbError:
            yield gauge("patroni_up", "1 when Patroni's REST API answered this scrape, else 0", 0)
            return
        yield gauge("patroni_up", "1 when Patroni's REST API answered this scrape, else 0", 1)
        yield gauge("patroni_has_leader", "1 when a member holds the leader key, else 0 (writes fail)",
                    1 if view.leader else 0)
        yield gauge("patroni_paused", "1 in Patroni's maintenance mode (no automatic failover)",
                    1 if view.paused else 0)
        member = gauge("patroni_member", "Each member as Patroni reports it (value 1)",
                       labels=["member", "role", "state"])
        leader = gauge("patroni_member_leader", "1 for the member that leads, else 0", labels=["member"])
        lag = gauge("patroni_member_lag_bytes", "How far a replica is behind the leader, as Patroni reports it",
                    labels=["member"])
        timeline = gauge("patroni_member_timeline", "The timeline each member is on", labels=["member"])
        for m in view.members:
            member.add_metric([m.name, m.role, m.state], 1)
            leader.add_metric([m.name], 1 if m.is_leader else 0)
            if m.lag_bytes is not None and not m.is_leader:
                lag.add_metric([m.name], m.lag_bytes)
            if m.timeline is not None:
                timeline.add_metric([m.name], m.timeline)
        yield from (member, leader, lag, timeline)
        yield counter("patroni_timeline_switches", "Timeline switches in Patroni's history (switchovers, failovers)",
                      len(history))
        if history and history[-1].at:
            try:
                at = datetime.fromisoformat(history[-1].at).timestamp()
            except ValueError:
                return
            yield gauge("patroni_last_switch_timestamp_seconds", "When the newest timeline began (Unix time)", at)
