"""db-replicas and db-promote-replica on a Patroni environment: Patroni's members and history, judged; a
promotion is Patroni's switchover (or its failover when no member leads), asked of its REST API and waited for.

The tool never promotes a Patroni member itself: Patroni would fight it. The checks before asking are ours (the
member exists, is not the leader, streams, is within the environment's lag bound), so a refused request changes
nothing; Patroni checks again on its side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UnavailableError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres import patroni
from cuisine_db.waiting import poll_until

WAIT_SECONDS = 90.0


@dataclass(frozen=True, slots=True)
class Listing:
    """Patroni's view for db-replicas: members, paused, timeline history, and what is wrong."""

    env: str
    view: patroni.ClusterView
    history: list[patroni.TimelineSwitch]
    findings: list[Finding]


@dataclass(frozen=True, slots=True)
class Promotion:
    kind: str  # switchover or failover
    name: str
    former_leader: str | None
    timeline: int | None
    host: str
    port: int
    seconds: float
    answer: str


def judge(view: patroni.ClusterView, env: Environment) -> list[Finding]:
    """No leader is critical; a member not running or not streaming, or lagging past the bound, a warning;
    a paused cluster (no automatic failover) a warning."""
    findings = []
    where = f"Patroni cluster {view.scope or env.name}"
    if view.leader is None:
        findings.append(Finding("patroni_leader", "critical", where, "no member is the leader: writes fail",
                                f"make db-promote-replica env={env.name} name=MEMBER asks Patroni for a failover"))
    elif view.leader.state != "running":
        findings.append(Finding("patroni_leader", "critical", view.leader.name,
                                f"the leader is {view.leader.state}", "see its Patroni and PostgreSQL logs"))
    if view.paused:
        findings.append(Finding("patroni_paused", "warning", where, "maintenance mode: Patroni will not fail over",
                                "patronictl resume when the maintenance is over"))
    for member in view.members:
        if member.is_leader:
            continue
        if not member.streaming:
            findings.append(Finding("patroni_member", "warning", member.name,
                                    f"{member.role} is {member.state}, not streaming from the leader",
                                    "see the member's Patroni log; patronictl reinit rebuilds it"))
        elif member.lag_bytes is None or member.lag_bytes > env.replica_max_lag_bytes:
            lag = "unknown" if member.lag_bytes is None else f"{member.lag_bytes:,} bytes"
            findings.append(Finding("patroni_lag", "warning", member.name,
                                    f"behind the leader by {lag} (bound {env.replica_max_lag_bytes:,})",
                                    "it is not read from until it catches up"))
        if view.leader is not None and member.timeline is not None and view.leader.timeline is not None \
                and member.timeline != view.leader.timeline:
            findings.append(Finding("patroni_timeline", "warning", member.name,
                                    f"on timeline {member.timeline}, the leader on {view.leader.timeline}",
                                    "Patroni rewinds or re-creates it; patronictl reinit if it stays"))
    return findings


def listing(settings: Settings, env: Environment) -> Listing:
    view = patroni.cluster(settings, env)
    return Listing(env.name, view, patroni.history(settings, env), judge(view, env))


def _check(view: patroni.ClusterView, env: Environment, name: str) -> patroni.Member:
    candidate = view.member(name)
    if candidate is None:
        known = ", ".join(m.name for m in view.members) or "none"
        raise UsageError(f"Patroni cluster {view.scope or env.name!r} has no member {name!r} (members: {known}); "
                         "nothing was changed", hint=f"make db-replicas env={env.name} lists them")
    if candidate.is_leader:
        raise UsageError(f"{name} is already the leader of {env.name}; nothing was changed",
                         hint="name one of the other members")
    if candidate.tags.get("nofailover"):
        raise UsageError(f"{name} is tagged nofailover: Patroni never makes it the leader; nothing was changed")
    if view.leader is not None:
        if not candidate.streaming:
            raise UsageError(f"{name} is {candidate.state}, not streaming from the leader: a switchover to it "
                             "would wait or lose transactions; nothing was changed",
                             hint=f"make db-replicas env={env.name}; choose a streaming member")
        if candidate.lag_bytes is None or candidate.lag_bytes > env.replica_max_lag_bytes:
            lag = "an unknown amount" if candidate.lag_bytes is None else f"{candidate.lag_bytes:,} bytes"
            raise UsageError(f"{name} is {lag} behind the leader, past {env.name}'s bound of "
                             f"{env.replica_max_lag_bytes:,} bytes; nothing was changed",
                             hint="wait for it to catch up, or choose another member")
    synchronous = [m.name for m in view.members if m.role == "sync_standby"]
    if synchronous and candidate.role != "sync_standby":
        raise UsageError(f"{name} is not a synchronous standby: in synchronous mode Patroni makes only "
                         f"{', '.join(synchronous)} the leader (no acknowledged commit is lost); nothing was changed",
                         hint=f"name={synchronous[0]}")
    if view.leader is None and candidate.state not in ("running", "streaming"):
        raise UsageError(f"{name} is {candidate.state}: Patroni can only fail over to a running member; nothing "
                         "was changed")
    return candidate


def promote(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: Ask | None = None,
            wait_seconds: float = WAIT_SECONDS, notify: Callable[[str], None] = lambda _line: None) -> Promotion:
    """Switchover to `name` (a leader exists) or failover to it (none does), then wait until it leads; a protected
    environment needs the confirmation (`yes`, or its name typed in answer to `ask`) before Patroni is asked."""
    confirmation.require(env, f"Making {name} the leader of {env.name} (Patroni switchover, or failover without a "
                         "leader)", yes=yes, ask=ask)
    started = time.monotonic()
    view = patroni.cluster(settings, env)
    _check(view, env, name)
    former = view.leader.name if view.leader else None
    timelines = [m.timeline for m in view.members if m.timeline is not None]
    before = max(timelines) if timelines else 0
    if former is not None:
        notify(f"asking Patroni for a switchover from {former} to {name}")
        answer = patroni.post(settings, env, "/switchover", {"leader": former, "candidate": name})
        kind = "switchover"
    else:
        notify(f"no leader: asking Patroni for a failover to {name}")
        answer = patroni.post(settings, env, "/failover", {"candidate": name})
        kind = "failover"
    current = "none"

    def leads() -> Promotion | None:
        nonlocal current
        try:
            now = patroni.cluster(settings, env)
        except UnavailableError:
            now = None
        leader = now.leader if now else None
        current = leader.name if leader else "none"
        if leader is not None and leader.name == name and leader.state == "running" \
                and (leader.timeline or 0) > before:
            return Promotion(kind, name, former, leader.timeline, leader.host, leader.port,
                             round(time.monotonic() - started, 1), answer)
        return None

    return poll_until(leads, seconds=wait_seconds, interval=0.5, what=lambda: FailedError(
        f"Patroni accepted the {kind} ({answer}) but {name} did not lead within {wait_seconds:.0f}s (leader now: "
        f"{current})", hint=f"make db-replicas env={env.name} shows the members"))
