"""How far each replica is behind its primary, read from both sides (db-replicas and read routing).

The primary's `pg_stat_replication` tells what each standby has written, flushed and replayed, and its own
write/flush/replay lag times. Those times stop moving while a standby's replay is paused (PostgreSQL keeps the
last sample), and the replay position it reports can be seconds old, so replay is also read from the replica
itself:

- `replay_bytes`: the primary's WAL position minus what the replica has replayed. The replica is read first,
  then the primary, then the replica again for up to two seconds (never longer than the seconds bound; a paused
  replay is not waited for): a replica that replays up to the primary's position within that time is caught up
  (0 bytes behind as of the primary's reading).
- `delay_seconds`: when caught up, the time from the primary's reading until the replica got there (it then
  shows everything committed before that reading, so its data is at most that old); otherwise the age of the
  last transaction the replica replayed. While later commits wait to be replayed, no row the replica shows is
  older than that, so it is an upper bound of how stale its data is.

Before its position is read, the primary commits an empty transaction that holds an xid (a heartbeat, as
pt-heartbeat does with a table). Without it a quiet primary can leave the end of its WAL unsent for good: a
record that is not a commit (a full-page image after hint bits were set by a read, with data checksums on) sits
in an unwritten WAL page until something flushes it, the replica cannot replay the record that crosses into
that page, and it would look bytes behind with a last commit that only gets older. The heartbeat's commit
record wakes the WAL writer, which flushes it and everything before it within `wal_writer_delay` (a commit
that wrote nothing else is not flushed by the committing session), and gives the replica a fresh commit to
replay; the wait below covers that. It costs one xid and one small
WAL record per measurement.

Routing takes a replica only when both are within the environment's bounds (`replica_max_lag_seconds`,
`replica_max_lag_bytes`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import class_row

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError
from cuisine_db.postgres import connection_params
from cuisine_db.postgres.local import node_cluster
from cuisine_db.postgres.topology import Node, home_of
from cuisine_db.postgres.topology import load as load_topology
from cuisine_db.replicas.members import Member, members
from cuisine_db.waiting import wait_for

CATCH_UP_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Streaming:
    """One row of the primary's pg_stat_replication."""

    name: str
    client: str
    pid: int
    state: str
    sync_state: str
    write_bytes: int | None
    flush_bytes: int | None
    replay_bytes: int | None
    write_seconds: float | None
    flush_seconds: float | None
    replay_seconds: float | None


@dataclass(frozen=True, slots=True)
class Slot:
    """A physical replication slot on the primary and the WAL it keeps."""

    name: str
    active: bool
    active_pid: int | None
    retained_bytes: int
    wal_status: str
    safe_wal_size: int | None


@dataclass(frozen=True, slots=True)
class StandbyView:
    """What a replica says about itself."""

    in_recovery: bool
    receive_lsn: str | None
    replay_lsn: str | None
    commit_age: float | None
    paused: bool
    receiver: str | None


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """One replica as db-replicas shows it and routing judges it."""

    name: str
    where: str
    local: bool
    running: bool | None  # a local replica's server runs; None for a remote one (not visible from here)
    reachable: bool
    problem: str | None  # why it could not be read, or what is wrong with it
    in_recovery: bool | None
    paused: bool | None
    receiver: str | None  # its WAL receiver: streaming, catchup, stopping... None when it has none
    replay_bytes: int | None
    delay_seconds: float | None
    streaming: Streaming | None  # the primary's view of it
    slot: Slot | None


@dataclass(frozen=True, slots=True)
class ReplicationReport:
    """The environment's primary, its replicas, and what the primary holds for them."""

    env: str
    primary: str
    primary_lsn: str
    max_lag_seconds: float
    max_lag_bytes: int
    replicas: list[ReplicaStatus]
    unmanaged: list[Streaming] = field(default_factory=list)  # standbys streaming that the tool does not know
    orphan_slots: list[Slot] = field(default_factory=list)  # slots no known replica uses: they keep WAL forever
    former: list[Node] = field(default_factory=list)  # primaries left behind by a promotion: need a rebuild


def lsn(text: str | None) -> int | None:
    """'16/B374D848' as a number of bytes."""
    if not text:
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def unfit(status: ReplicaStatus, env: Environment) -> str | None:
    """Why a replica must not serve reads now, or None when it may (routing never takes a lagging replica)."""
    if not status.reachable:
        return status.problem or "not reachable"
    if not status.in_recovery:
        return "not in recovery: it is no replica any more (promoted?)"
    if status.replay_bytes is None or status.delay_seconds is None:
        return "lag unknown (no transaction replayed since it started)"
    if status.delay_seconds > env.replica_max_lag_seconds:
        paused = ", replay paused" if status.paused else ""
        return f"{status.delay_seconds:.1f} s behind (bound {env.replica_max_lag_seconds:g} s{paused})"
    if status.replay_bytes > env.replica_max_lag_bytes:
        return f"{status.replay_bytes:,} bytes behind (bound {env.replica_max_lag_bytes:,})"
    return None


def _standby(conn: psycopg.Connection[Any]) -> StandbyView:
    with conn.cursor(row_factory=class_row(StandbyView)) as cursor:
        row = cursor.execute(sql.load("replication/standby_status")).fetchone()
    if row is None:
        raise UnavailableError("the replica returned no status row")
    return row


def _replayed(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute(sql.load("replication/replay_lsn")).fetchone()
    return lsn(row[0]) if row else None


@dataclass(slots=True)
class _Reading:
    member: Member
    conn: psycopg.Connection[Any] | None = None
    view: StandbyView | None = None
    problem: str | None = None
    running: bool | None = None


def _open(settings: Settings, env: Environment, member: Member, command: str) -> _Reading:
    reading = _Reading(member)
    if member.node is not None:
        cluster = node_cluster(settings, env, home_of(settings, env, member.node), member.node.port)
        reading.running = cluster.running()
        if not reading.running:
            reading.problem = "stopped"
            return reading
    try:
        reading.conn = connect(settings, env, command, purpose="monitoring", target=member.target)
        reading.view = _standby(reading.conn)
    except (CuisineDbError, psycopg.Error) as exc:
        reading.problem = exc.message if isinstance(exc, CuisineDbError) else str(exc).strip()
        if reading.conn is not None:
            reading.conn.close()
            reading.conn = None
    return reading


def _behind(reading: _Reading, primary_lsn: int, read_at: float, bound: float) -> tuple[int | None, float | None]:
    """(bytes, seconds) the replica is behind the primary's position (read at `read_at`), after a short wait."""
    view = reading.view
    if view is None or reading.conn is None or not view.in_recovery:
        return None, None
    replayed = lsn(view.replay_lsn)
    if replayed is None:
        return None, None
    if replayed < primary_lsn and not view.paused:
        conn, latest = reading.conn, [replayed]

        def caught_up() -> bool | None:
            latest[0] = _replayed(conn) or latest[0]
            return True if latest[0] >= primary_lsn else None

        wait_for(caught_up, seconds=min(CATCH_UP_WAIT_SECONDS, bound), interval=0.05)
        replayed = latest[0]
    waited = time.monotonic() - read_at
    if replayed >= primary_lsn:
        return 0, round(waited, 3)
    if view.commit_age is None:
        return primary_lsn - replayed, None
    return primary_lsn - replayed, max(view.commit_age, waited)


def _primary_rows(conn: psycopg.Connection[Any]) -> tuple[int, str, list[Streaming], list[Slot]]:
    # The primary's view first: its write and flush lag would otherwise count the heartbeat as a lag.
    with conn.cursor(row_factory=class_row(Streaming)) as cursor:
        standbys = cursor.execute(sql.load("replication/standbys")).fetchall()
    with conn.cursor(row_factory=class_row(Slot)) as cursor:
        slots = cursor.execute(sql.load("replication/slots")).fetchall()
    conn.execute(sql.load("replication/heartbeat"))
    row = conn.execute(sql.load("replication/position")).fetchone()
    if row is None or row[1] is None:
        raise UnavailableError("the primary returned no WAL position")
    if row[0]:
        raise UnavailableError("the environment's primary is in recovery: it is a standby itself",
                               hint="was it promoted elsewhere? check cuisine-db.toml and make db-replicas")
    return lsn(row[1]) or 0, row[1], standbys, slots


def measure(settings: Settings, env: Environment, chosen: list[Member] | None = None,
            command: str = "db-replicas") -> ReplicationReport:
    """Read every replica (or the chosen ones), then the primary, and put the two views together."""
    wanted = members(settings, env) if chosen is None else chosen
    readings = [_open(settings, env, member, command) for member in wanted]
    try:
        with connect(settings, env, command, purpose="monitoring") as primary:
            position, position_text, standbys, slots = _primary_rows(primary)
        read_at = time.monotonic()
        statuses = []
        for reading in readings:
            member = reading.member
            by_name = [row for row in standbys if row.name == member.name]
            slot = next((s for s in slots if s.name == member.slot), None) if member.slot else None
            if not by_name and slot is not None and slot.active_pid is not None:
                by_name = [row for row in standbys if row.pid == slot.active_pid]
            replay_bytes, delay = _behind(reading, position, read_at, env.replica_max_lag_seconds)
            view = reading.view
            problem = reading.problem
            if view is not None and not view.in_recovery:
                problem = "not in recovery: it accepts writes of its own"
            statuses.append(ReplicaStatus(
                name=member.name, where=member.target.where(), local=member.local, running=reading.running,
                reachable=view is not None, problem=problem, in_recovery=view.in_recovery if view else None,
                paused=view.paused if view else None, receiver=view.receiver if view else None,
                replay_bytes=replay_bytes, delay_seconds=delay, streaming=by_name[0] if by_name else None,
                slot=slot))
    finally:
        for reading in readings:
            if reading.conn is not None:
                reading.conn.close()
    known_names = {member.name for member in wanted}
    known_slots = {member.slot for member in members(settings, env) if member.slot}
    claimed_pids = {s.streaming.pid for s in statuses if s.streaming}
    params = connection_params(settings, env)
    return ReplicationReport(
        env=env.name, primary=f"{params.get('host', '?')}:{params.get('port', 5432)}", primary_lsn=position_text,
        max_lag_seconds=env.replica_max_lag_seconds, max_lag_bytes=env.replica_max_lag_bytes, replicas=statuses,
        unmanaged=[row for row in standbys if row.pid not in claimed_pids and row.name not in known_names]
        if chosen is None else [],
        orphan_slots=[slot for slot in slots if slot.name not in known_slots and not slot.active]
        if chosen is None else [],
        former=list(load_topology(settings, env).former))
