"""What db-replicas judges: one small function per problem, each returning findings with the fix."""

from __future__ import annotations

from cuisine_db.config import Environment
from cuisine_db.findings import Finding
from cuisine_db.humanize import size as _size
from cuisine_db.replicas.lag import ReplicaStatus, ReplicationReport, unfit


def down(status: ReplicaStatus, env: Environment) -> list[Finding]:
    if status.reachable:
        return []
    fix = (f"cuisine-db replica start --env {env.name} --name {status.name}" if status.local
           else f"check the replica's server at {status.where}")
    return [Finding("replica down", "error", status.name, status.problem or "not reachable", fix)]


def writable(status: ReplicaStatus, env: Environment) -> list[Finding]:
    if status.in_recovery is not False:
        return []
    return [Finding("replica accepts writes", "critical", status.name,
                    "not in recovery: it was promoted and its data now diverges from the primary",
                    f"stop it; make db-drop-replica env={env.name} name={status.name}; create it again")]


def not_streaming(status: ReplicaStatus, env: Environment) -> list[Finding]:
    if not status.in_recovery or status.receiver == "streaming":
        return []
    return [Finding("replica not streaming", "warning", status.name,
                    f"WAL receiver: {status.receiver or 'none'}; the primary lists it: "
                    f"{'yes' if status.streaming else 'no'}",
                    f"see the replica's log; make db-replicas env={env.name} again in a minute")]


def paused(status: ReplicaStatus, env: Environment) -> list[Finding]:
    if not status.paused:
        return []
    return [Finding("replay paused", "warning", status.name, "pg_is_wal_replay_paused() is true: its data stands still",
                    "SELECT pg_wal_replay_resume(); on the replica (as a superuser)")]


def lagging(status: ReplicaStatus, env: Environment) -> list[Finding]:
    if not status.reachable or not status.in_recovery:
        return []
    reason = unfit(status, env)
    if reason is None:
        return []
    return [Finding("replica lag", "warning", status.name, f"{reason}: reads routed elsewhere",
                    "look for a long query or a paused replay on it, or a saturated network or disk")]


def slot(status: ReplicaStatus, env: Environment) -> list[Finding]:
    found = status.slot
    if found is None:
        return []
    if found.wal_status == "lost":
        return [Finding("slot lost WAL", "error", found.name, f"the WAL {status.name} needs is gone",
                        f"rebuild it: make db-drop-replica env={env.name} name={status.name}, then db-create-replica")]
    if not found.active:
        return [Finding("slot inactive", "warning", found.name,
                        f"nobody streams through it; it keeps {_size(found.retained_bytes)} of WAL on the primary",
                        f"start {status.name}, or make db-drop-replica env={env.name} name={status.name}")]
    return []


def environment_level(report: ReplicationReport, env: Environment) -> list[Finding]:
    found = [Finding("orphan slot", "warning", slot.name,
                     f"no replica uses it; it keeps {_size(slot.retained_bytes)} of WAL ({slot.wal_status})",
                     f"SELECT pg_drop_replication_slot('{slot.name}'); on the primary, if nothing needs it")
             for slot in report.orphan_slots]
    found += [Finding("former primary", "warning", node.name, node.note or "left behind by a promotion",
                      f"make db-drop-replica env={env.name} name={node.name}, then make db-create-replica")
              for node in report.former]
    found += [Finding("unknown standby", "info", row.name or f"pid {row.pid}",
                      f"streams from the primary ({row.client}, {row.state}) but is not one of the tool's replicas",
                      f"list it under [environments.{env.name}.replicas] to see its lag here")
              for row in report.unmanaged]
    return found


CHECKS = (down, writable, not_streaming, paused, lagging, slot)


def judge(report: ReplicationReport, env: Environment) -> list[Finding]:
    """Every finding about the environment's replication, replica by replica, then the environment's own."""
    found: list[Finding] = []
    for status in report.replicas:
        for check in CHECKS:
            found += check(status, env)
    return found + environment_level(report, env)
