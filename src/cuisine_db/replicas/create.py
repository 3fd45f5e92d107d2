"""db-create-replica for a local environment: a streaming replica made with `pg_basebackup -R` and a slot.

A replica is a LocalCluster whose data directory comes from pg_basebackup instead of initdb: it lives in
`<state_dir>/<env>/replicas/<name>/`, runs as the same OS user as the primary, on its own port, and streams
from the primary through the physical slot `cuisine_<name>` (the primary keeps WAL until the replica has it).
The walreceiver logs in as `cuisine_replication` (REPLICATION and nothing else) with a password file the
server user owns; `-R` writes the slot and a `primary_conninfo`, which is then cut down to that file's path,
the address and `application_name=<name>`. Nothing is recorded until the replica streams; any failure stops
and removes it and drops the slot, so the environment is as it was.

With `backup=` the copy comes from the repository instead of the primary: replicas/seed.py.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.backup import backup_names
from cuisine_db.cluster import connect, start_on_demand
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError, UsageError
from cuisine_db.postgres import osuser, pgpass, purposes, topology
from cuisine_db.postgres.cluster import LocalCluster, conf_value
from cuisine_db.postgres.local import node_cluster
from cuisine_db.postgres.ports import free_port_outside
from cuisine_db.postgres.runner import ToolError, run
from cuisine_db.postgres.target import Target
from cuisine_db.replicas import seed as seeding
from cuisine_db.replicas.members import check_name, slot_name
from cuisine_db.replicas.role import REPLICATION_CONNECTION_LIMIT, REPLICATION_ROLE, ensure_login_role
from cuisine_db.security.passwords import Secret
from cuisine_db.waiting import poll_until

STREAMING_DEADLINE = 120.0
BASEBACKUP_TIMEOUT = 6 * 3600.0
PASSFILE = "replication.pgpass"
# Reporting replicas favour their readers: the primary's vacuum keeps rows their queries still see
# (hot_standby_feedback), and replay waits up to 15 minutes for a conflicting query (a long report, a logical
# backup) before cancelling it; routing keeps other readers away while the lag exceeds its bound.
REPLICA_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "on", "max_standby_streaming_delay": "'15min'"}


def seed_backup(env: Environment, origin: str | None, backup: str | None) -> str | None:
    """The backup a replica of env is seeded from (--from backup [--backup NAME|latest]); None: copy the primary.
    Only a local environment is seeded here: the backup is laid down on the replica's host."""
    if origin not in (None, "primary", "backup"):
        raise UsageError(f"from={origin}: a replica is copied from the primary or seeded from a backup",
                         hint="from=primary (the default) or from=backup [backup=NAME|latest]")
    if origin == "primary" and backup is not None:
        raise UsageError("from=primary and backup= contradict each other", hint="from=backup backup=NAME")
    if backup is not None and backup != "latest":
        backup_names.parse(backup)
    seed = backup or ("latest" if origin == "backup" else None)
    if seed is not None and not env.is_local:
        raise UsageError(f"{env.name!r} is a remote server: seeding from a backup lays files down on the replica's "
                         "host", hint="run cuisine-db there, or leave out from=backup for the steps to apply")
    return seed


@dataclass(frozen=True, slots=True)
class CreatedReplica:
    """A replica that streams, as db-create-replica reports it."""

    env: str
    name: str
    port: int
    slot: str
    datadir: str
    primary: str
    role: str
    role_created: bool
    seconds: float
    seeded_from: str | None = None  # the backup it was laid down from (from=backup); None: copied from the primary


def _port_is_free(port: int) -> bool:
    """Nothing listens on `port`. Bound the way PostgreSQL binds (SO_REUSEADDR): connections of a server stopped a
    moment ago linger in TIME_WAIT on its port for a minute, and they do not keep PostgreSQL from listening there
    (the upgrade rebuilds a replica on the port its stopped predecessor used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _taken_ports(settings: Settings, env: Environment, current: topology.Topology) -> set[int]:
    configured = {other.port for other in settings.environments.values() if other.port is not None}
    recorded = {node.port for node in (*current.replicas, *current.former)}
    return configured | recorded | {topology.primary_node(settings, env).port}


def choose_port(settings: Settings, env: Environment, wanted: int | None, current: topology.Topology) -> int:
    """The port asked for (checked), or a free one the kernel picks that no environment or replica claims."""
    taken = _taken_ports(settings, env, current)
    if wanted is not None:
        if not 1024 <= wanted <= 65535:
            raise UsageError(f"port {wanted} is out of range", hint="choose a port from 1024 to 65535")
        if wanted in taken:
            raise UsageError(f"port {wanted} belongs to an environment or replica in this configuration")
        if not _port_is_free(wanted):
            raise UsageError(f"port {wanted} is in use on 127.0.0.1", hint="choose another, or leave port= out")
        return wanted
    return free_port_outside(taken, "the replica", hint="give one: port=N")


def _check_primary(conn: psycopg.Connection[Any], env: Environment, slot: str) -> None:
    row = conn.execute(sql.load("replication/capacity")).fetchone()
    if row is None:
        raise UnavailableError("the primary returned no row for its replication settings")
    in_recovery, wal_level, max_senders, senders, max_slots, slots = row
    if in_recovery:
        raise UnavailableError(f"{env.name!r}'s primary is in recovery: it is a standby itself")
    if wal_level == "minimal":
        raise UsageError(f"{env.name!r} runs with wal_level = minimal, which no replica can follow",
                         hint=f"make db-update-config env={env.name} param=wal_level value=replica restart=1")
    if senders + 1 >= max_senders:  # pg_basebackup streams WAL on a second sender while it copies
        raise UnavailableError(f"{env.name!r} has {senders} of max_wal_senders = {max_senders} in use",
                               hint=f"make db-update-config env={env.name} param=max_wal_senders "
                                    f"value={max_senders + 5} restart=1")
    if slots >= max_slots:
        raise UnavailableError(f"{env.name!r} has all max_replication_slots = {max_slots} in use",
                               hint=f"make db-replicas env={env.name} shows which; drop unused ones, or raise "
                                    "max_replication_slots (restart)")
    if conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone() is not None:
        raise UsageError(f"{env.name!r}'s primary already has a replication slot {slot!r} that no recorded replica "
                         "uses", hint=f"drop it if nothing needs it (SELECT pg_drop_replication_slot('{slot}')), "
                                      "or choose another name")


def _prepare(replica: LocalCluster, password: Secret) -> None:
    """The replica's folder: reachable by the server user, with its own password file for the walreceiver."""
    replica.home.mkdir(parents=True, exist_ok=False)
    osuser.own_home(replica.home, replica.os_user)
    run_dir = replica.home / "run"
    osuser.give_to(run_dir, replica.os_user)
    passfile = run_dir / PASSFILE
    pgpass.put(passfile, REPLICATION_ROLE, password.reveal())
    if replica.os_user:
        shutil.chown(passfile, replica.os_user)
    osuser.give_to(replica.datadir, replica.os_user)


_REMEDIES = (
    ("no pg_hba.conf entry for replication",
     "the primary's pg_hba.conf must let {role} make replication connections from 127.0.0.1: add "
     "'host replication {role} 127.0.0.1/32 scram-sha-256' and reload"),
    ("too many connections for role", "{role} is at its connection limit: drop replicas nobody uses"),
    ("exceeds max_wal_senders", "raise max_wal_senders on the primary (restart)"),
    ("password authentication failed", "{role}'s password no longer matches the environment's pgpass: "
                                      "set it again (make db-update-password) or drop the pgpass line to renew it"),
)


def _basebackup(replica: LocalCluster, primary_port: int, slot: str, name: str) -> None:
    environ = {"PGHOST": "127.0.0.1", "PGPORT": str(primary_port), "PGUSER": REPLICATION_ROLE,
               "PGPASSFILE": str(replica.home / "run" / PASSFILE), "PGAPPNAME": name}
    argv: list[str | Path] = [
        replica.build.program("pg_basebackup"), "--pgdata", replica.datadir, "--write-recovery-conf",
        "--slot", slot, "--wal-method=stream", "--checkpoint=fast", "--no-password"]
    try:
        run(argv, env=environ, user=replica.os_user, cwd=replica.home, timeout=BASEBACKUP_TIMEOUT)
    except ToolError as exc:
        hint = next((remedy.format(role=REPLICATION_ROLE) for needle, remedy in _REMEDIES if needle in exc.stderr),
                    None)
        raise UnavailableError(f"pg_basebackup could not copy the primary: {exc.message}", hint=hint) from None


def replication_conninfo(home: Path, primary_port: int, name: str) -> str:
    """The walreceiver's connection to the primary: address, role, password file, its name; nothing else."""
    return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=str(primary_port), user=REPLICATION_ROLE,
                                          passfile=str(home / "run" / PASSFILE), application_name=name)


def _own_conninfo(replica: LocalCluster, primary_port: int, name: str) -> None:
    """Replace the primary_conninfo pg_basebackup -R wrote with the few options the walreceiver needs.

    pg_basebackup writes every option its libpq knows (17+: sslnegotiation, ...); a server whose walreceiver
    loads an older libpq refuses those and never streams. The wheels' 17 and 18 servers load the system's
    libpq (Debian 12: 15), so their replicas would retry forever."""
    auto_conf = replica.datadir / "postgresql.auto.conf"
    conninfo = conf_value(replication_conninfo(replica.home, primary_port, name))
    lines = [f"primary_conninfo = {conninfo}" if line.startswith("primary_conninfo") else line
             for line in auto_conf.read_text(encoding="utf-8").splitlines()]
    auto_conf.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _configure(replica: LocalCluster, env: Environment, name: str, primary_port: int) -> None:
    """Its own port and the reporting settings, appended after the primary's (later lines win)."""
    _own_conninfo(replica, primary_port, name)
    values = {"port": str(replica.port), **REPLICA_SETTINGS, "cluster_name": f"'{env.name}/{name}'"}
    block = "\n".join(f"{key} = {value}" for key, value in values.items())
    with (replica.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\n# Set by cuisine-db: streaming replica {name} of {env.name}\n{block}\n")
    # pg_basebackup copied the primary's server logs: they stay on the primary and would mislead here.
    logs = replica.datadir / "log"
    if logs.is_dir():
        for item in logs.iterdir():
            item.unlink()
    (replica.datadir / "current_logfiles").unlink(missing_ok=True)


def wait_streaming(settings: Settings, env: Environment, name: str, replica: LocalCluster,
                   deadline_seconds: float = STREAMING_DEADLINE) -> None:
    """Until the primary shows the replica streaming; else an error quoting the replica's last log lines."""
    with connect(settings, env, "db-create-replica", purpose="monitoring") as conn:
        poll_until(lambda: seeding.streaming(conn, name) or None, seconds=deadline_seconds, interval=0.2,
                   what=f"replica {name} started but does not stream from the primary after "
                        f"{deadline_seconds:.0f} s", hint=f"see its log in {replica.datadir / 'log'}")


def _remove(settings: Settings, env: Environment, replica: LocalCluster, slot: str | None) -> None:
    """Undo a creation that failed half-way: stop and delete the copy, drop the slot."""
    with contextlib.suppress(Exception):
        replica.destroy()
    shutil.rmtree(replica.home, ignore_errors=True)
    if slot is not None:
        with contextlib.suppress(Exception), connect(settings, env, "db-create-replica", start=False) as conn:
            if conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone() is not None:
                conn.execute(sql.load("replication/drop_slot"), {"slot": slot})


def create(settings: Settings, env: Environment, name: str, *, port: int | None = None, backup: str | None = None,
           notify: Callable[[str], None] = lambda _: None) -> CreatedReplica:
    """Make, start and record a streaming replica of a local environment's primary: copied from the primary, or
    with `backup` (a name or `latest`) seeded from that physical backup and the archive (replicas/seed.py)."""
    check_name(name)
    if not env.is_local:
        raise UsageError(f"{env.name!r} is a remote server: the tool cannot start servers there",
                         hint="cuisine-db replica create prints what to apply for a remote environment")
    clock = time.monotonic()
    primary = start_on_demand(settings, env, purposes.ADMIN)  # never a protected environment's: exit 3
    slot = slot_name(name)
    with topology.editing(settings, env) as edit:
        if name in edit.current.names():
            raise UsageError(f"{env.name!r} already has a replica or former primary named {name!r}",
                             hint=f"make db-replicas env={env.name} lists them")
        home = settings.env_dir(env) / topology.replica_home(name)
        if home.exists():
            raise UsageError(f"{home} exists but no replica {name!r} is recorded",
                             hint="move it away (it may be a copy someone kept), then create the replica again")
        chosen = choose_port(settings, env, port, edit.current)
        with connect(settings, env, "db-create-replica") as conn:
            _check_primary(conn, env, slot)
            seed = seeding.check(settings, env, conn, backup) if backup is not None else None
            role = ensure_login_role(conn, settings, env, REPLICATION_ROLE, replication=True,
                                     connection_limit=REPLICATION_CONNECTION_LIMIT)
        replica = node_cluster(settings, env, home, chosen)
        made_slot: str | None = None
        try:
            _prepare(replica, role.password)
            with connect(settings, env, "db-create-replica") as conn:
                conn.execute(sql.load("replication/create_slot"), {"slot": slot})
                made_slot = slot
            if seed is None:
                notify(f"{env.name}: copying the primary (port {primary.port}) with pg_basebackup into "
                       f"{replica.datadir}")
                _basebackup(replica, primary.port, slot, name)
            else:
                notify(f"{env.name}: laying down {seed.name} from the repository into {replica.datadir}; the WAL "
                       "since comes from the archive, then streaming (the primary copies nothing)")
                seeding.lay_down(settings, env, seed, replica, slot=slot,
                                 conninfo=replication_conninfo(replica.home, primary.port, name))
            _configure(replica, env, name, primary.port)
            replica.start()
            if seed is None:
                wait_streaming(settings, env, name, replica)
            else:
                target = Target(name, {"host": "127.0.0.1", "port": str(chosen)}, replica.datadir)
                seeding.wait_caught_up(settings, env, name, target, replica, notify=notify)
                seeding.finish(settings, env, target, replica)
        except BaseException as exc:
            _remove(settings, env, replica, made_slot)
            if isinstance(exc, CuisineDbError):
                exc.message += " (nothing was kept: the copy and its slot are gone)"
            raise
        edit.set(edit.current.with_replica(topology.Node(
            name=name, home=topology.replica_home(name), port=chosen, slot=slot,
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            note=f"seeded from {seed.name}" if seed else "")))
    return CreatedReplica(env=env.name, name=name, port=chosen, slot=slot, datadir=str(replica.datadir),
                          primary=f"127.0.0.1:{primary.port}", role=role.name, role_created=role.created,
                          seconds=round(time.monotonic() - clock, 2), seeded_from=seed.name if seed else None)
