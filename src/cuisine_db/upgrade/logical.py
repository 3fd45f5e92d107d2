"""db-upgrade method=logical: a new cluster of the target major filled by logical replication, then a cutover.

The new cluster is made by the project's own cluster code (as the environment's OS user, on a free port) in
`.cuisine/<env>/upgrade/pg<new>/`; the roles come over with `pg_dumpall --roles-only` and the schema with
`pg_dump --schema-only` (both the target major's programs), then a subscription on the new cluster copies the rows
and follows the old one's changes until the cutover (`logical_cutover.py`). Progress is kept in
`upgrade/logical.json`, so `--rollback` and `--finish` know a logical upgrade from an in-place one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.postgres import binaries, topology
from cuisine_db.postgres.cluster import SUPERUSER, LocalCluster
from cuisine_db.postgres.connect import client_environ
from cuisine_db.postgres.local import os_user_of
from cuisine_db.postgres.runner import run
from cuisine_db.upgrade import preflight
from cuisine_db.upgrade import state as states
from cuisine_db.upgrade.preflight import PreflightReport
from cuisine_db.upgrade.request import check_supported, target_given
from cuisine_db.waiting import poll_until

Notify = Callable[[str], None]
METHOD = "logical"
FORWARD = "cuisine_db_upgrade"        # publication on the old cluster, subscription (and slot) on the new one
BACKWARD = "cuisine_db_upgrade_back"  # after the cutover: publication on the new cluster, subscription on the old
MAX_LAG_BYTES = 1024 * 1024           # catch-up is done when the new cluster is this close behind
CLOSE_LAG_BYTES = 64 * 1024           # how close it is brought, writes still on, before the cutover stops them
POLL_SECONDS = 0.05                   # the cutover's waits poll this often: each poll may be downtime
SEQUENCE_MARGIN = 1000                # how far past the old cluster's value each sequence is set
CATCH_UP_SECONDS = 3600.0
STATE_FILE = "logical.json"


@dataclass(frozen=True, slots=True)
class LogicalState:
    """One logical upgrade: where the clusters are and how far the run went."""

    env: str
    database: str
    source: int
    target: int
    phase: str  # replicating, cutover, switched, done
    new_port: int  # the new cluster's port until the switch
    back_port: int  # the old cluster's port after the switch
    maintenance_was_on: bool
    major_file_before: int | None
    identity_full: tuple[str, ...]
    started_at: str
    archive_mode: str = "off"  # the old cluster's: not off, the new cluster archives into an area of its own


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    rows_old: int
    rows_new: int
    same: bool


@dataclass(frozen=True, slots=True)
class CutoverPhase:
    """One timed step of the cutover; `writes_blocked`: inside the write downtime."""

    name: str
    seconds: float
    writes_blocked: bool


@dataclass(frozen=True, slots=True)
class LogicalReport:
    env: str
    source: int
    target: int
    method: str
    identity_full: tuple[str, ...]
    tables: tuple[TableCheck, ...]
    sequences: int
    downtime_seconds: float
    back_port: int
    notes: tuple[str, ...]
    preflight: PreflightReport | None = None
    backup_after: str | None = None  # the new cluster's first full backup (environments that archive WAL)
    rehearsal: str | None = None  # the backup whose passing logical rehearsal preceded the run (protected ones)
    phases: tuple[CutoverPhase, ...] = ()  # where the cutover's time went, in order


STATE = states.Kept(STATE_FILE, LogicalState)


def validate(settings: Settings, env: Environment, to: int | None) -> tuple[int, int]:
    """(source, target) majors, or a UsageError/RefusedError; nothing has been touched yet."""
    if not env.is_local:
        raise UsageError(f"{env.name} is a remote server: method=logical from a remote source is not built yet",
                         hint="see docs/upgrade.md, 'Remote servers', for the steps to run there")
    source = env.postgres_version
    to = target_given(env, to, source)
    if to <= source:
        raise UsageError(f"to={to}: {env.name} runs PostgreSQL {source}; the logical method only goes forward")
    check_supported(to, source)
    if env.pg_bin is not None:
        raise UsageError(f"{env.name} runs the build in pg_bin ({env.pg_bin}); db-upgrade picks builds itself")
    shape = topology.load(settings, env)
    if shape.primary is not None or shape.replicas:
        raise RefusedError(f"{env.name} has streaming replicas or a promoted primary: method=logical moves only "
                           "the primary's cluster", hint="drop the replicas first (make db-drop-replica), upgrade, "
                           "then create them again on the new major")
    if states.load(settings, env) is not None or STATE.load(settings, env) is not None:
        raise RefusedError(f"{env.name} has an upgrade in progress", hint="finish it (--finish) or --rollback first")
    return source, to


def old_cluster(settings: Settings, env: Environment, major: int, home: Path, port: int) -> LocalCluster:
    build = binaries.find(major, settings.cache_dir)
    return LocalCluster(home=home, port=port, build=build, os_user=os_user_of(settings, env),
                        extra_settings=env.server_settings)


def new_cluster(settings: Settings, env: Environment, major: int, port: int) -> LocalCluster:
    build = binaries.find(major, settings.cache_dir)
    # wal_level=logical from the start: after the cutover it publishes the changes back to the old cluster.
    return LocalCluster(home=states.home(settings, env, major), port=port, build=build,
                        os_user=os_user_of(settings, env),
                        extra_settings={**env.server_settings, "wal_level": "logical"})


def open_at(settings: Settings, env: Environment, port: int, dbname: str | None = None) -> psycopg.Connection[Any]:
    """The superuser on one of the environment's two local clusters (both share its roles and password file)."""
    try:
        return psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname=dbname or env.database,
                               passfile=str(settings.env_dir(env) / "pgpass"), autocommit=True, connect_timeout=10,
                               application_name="cuisine-db upgrade logical")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnavailableError(f"{env.name}: the cluster on port {port} cannot be reached ({first})") from None


def passfile(settings: Settings, env: Environment, target: int) -> Path:
    """The subscriptions' password file, readable by the servers' OS user (both clusters run as it)."""
    return states.home(settings, env, target) / "run" / "pgpass.logical"


def write_passfile(settings: Settings, env: Environment, target: int, ports: list[int]) -> Path:
    password = preflight.superuser_password(settings.env_dir(env) / "pgpass")
    path = passfile(settings, env, target)
    preflight.upgrade_passfile(path, os_user_of(settings, env), dict.fromkeys(ports, password))
    return path


def conninfo(env: Environment, port: int, pgpass: Path) -> str:
    return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=str(port), user=SUPERUSER, dbname=env.database,
                                          passfile=str(pgpass), application_name="cuisine-db upgrade")


def subscribe(conn: psycopg.Connection[Any], name: str, info: str, *, copy_data: bool) -> None:
    conn.execute(queries.load("upgrade/logical_create_subscription").format(
        name=sql.Identifier(name), conninfo=sql.Literal(info), publication=sql.Identifier(name),
        copy_data=sql.SQL("true" if copy_data else "false")))


def tables(conn: psycopg.Connection[Any], query: str) -> list[str]:
    return [f"{schema}.{name}" for schema, name in conn.execute(queries.load(f"upgrade/{query}")).fetchall()]


def identifier(qualified: str) -> sql.Identifier:
    schema, name = qualified.split(".", 1)
    return sql.Identifier(schema, name)


def prepare(settings: Settings, env: Environment, current: LogicalState, notify: Notify) -> None:
    STATE.save(settings, env, current)
    with open_at(settings, env, env.port or 0) as conn:
        if conn.execute(queries.load("upgrade/logical_show_wal_level")).fetchone() != ("logical",):
            notify(f"wal_level=logical on PostgreSQL {current.source} (a restart: a few seconds without "
                   "connections)")
            conn.execute(queries.load("upgrade/logical_wal_level"))
            restart_needed = True
        else:
            restart_needed = False
        for table in current.identity_full:
            notify(f"REPLICA IDENTITY FULL on {table}")
            conn.execute(queries.load("upgrade/logical_identity_full").format(table=identifier(table)))
    if restart_needed:
        from cuisine_db.postgres.local import startup_lock
        from cuisine_db.upgrade.inplace import _cluster, pooler_held

        with pooler_held(settings, env, notify), startup_lock(settings, env):
            _cluster(settings, env, current.source).restart()
    new = new_cluster(settings, env, current.target, current.new_port)
    owner = os_user_of(settings, env)
    notify(f"initialising PostgreSQL {current.target} on port {current.new_port} in {new.home}")
    new.init()
    hba = settings.env_dir(env) / "data" / "pg_hba.conf"
    shutil.copy2(hba, new.datadir / "pg_hba.conf")
    if owner:
        shutil.chown(new.datadir / "pg_hba.conf", owner, owner)
    new.start()
    build = new.build
    old_env = client_environ(settings, env, dbname="postgres")
    new_env = {**old_env, "PGPORT": str(current.new_port), "PGPASSFILE": str(new.passfile)}
    notify("roles: pg_dumpall --roles-only → the new cluster")
    roles = run([build.program("pg_dumpall"), "--roles-only"], env=old_env, timeout=600).stdout
    # "role already exists" for the superuser is expected; the ALTER ROLE after it still gives it the old password.
    applied = run([build.program("psql"), "-X", "-q", "-d", "postgres"], env=new_env, input_text=roles, timeout=600)
    errors = [line for line in applied.stderr.splitlines() if "ERROR:" in line and "already exists" not in line]
    if errors:
        raise FailedError(f"roles could not be carried to PostgreSQL {current.target}: {errors[0]}",
                          hint=f"{len(errors)} error(s); the new cluster is removed and the old one keeps serving")
    new.passfile.unlink(missing_ok=True)  # the superuser's password is the old cluster's now
    notify(f"schema: pg_dump --schema-only {env.database} → the new cluster")
    schema = run([build.program("pg_dump"), "--schema-only", "--create", env.database],
                 env={**old_env, "PGDATABASE": env.database}, timeout=3600).stdout
    run([build.program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        env={**new_env, "PGPASSFILE": str(settings.env_dir(env) / "pgpass")}, input_text=schema, timeout=3600)
    pgpass = write_passfile(settings, env, current.target, [env.port or 0])
    notify(f"publication {FORWARD} on PostgreSQL {current.source}, subscription on PostgreSQL {current.target}")
    with open_at(settings, env, env.port or 0) as conn:
        conn.execute(queries.load("upgrade/logical_create_publication").format(name=sql.Identifier(FORWARD)))
    with open_at(settings, env, current.new_port) as conn:
        subscribe(conn, FORWARD, conninfo(env, env.port or 0, pgpass), copy_data=True)


def lag(conn: psycopg.Connection[Any], slot: str, lsn: str = "0/0") -> tuple[int, bool]:
    """(bytes the slot's subscriber is behind, whether it confirmed `lsn`) on the publishing cluster."""
    row = conn.execute(queries.load("upgrade/logical_slot_lag"), {"slot": slot, "lsn": lsn}).fetchone()
    if row is None:
        raise FailedError(f"replication slot {slot} is missing on the publishing cluster")
    return int(row[2]), bool(row[3])


def catch_up(settings: Settings, env: Environment, current: LogicalState, notify: Notify, *,
             deadline: float = CATCH_UP_SECONDS) -> int:
    """Wait for the initial copy and then until the new cluster is within MAX_LAG_BYTES; the lag is shown."""
    shown = 0.0
    last = (0, 0)  # (tables still copying, bytes behind) at the latest look

    def caught_up() -> int | None:
        nonlocal shown, last
        with open_at(settings, env, current.new_port) as new:
            row = new.execute(queries.load("upgrade/logical_sync_pending"), {"name": FORWARD}).fetchone()
        pending, total = (int(row[0]), int(row[1])) if row else (0, 0)
        with open_at(settings, env, env.port or 0) as old:
            behind, _ = lag(old, FORWARD)
        last = (pending, behind)
        if time.monotonic() - shown >= 2:
            notify(f"catch-up: {total - pending}/{total} tables copied, lag {behind} bytes")
            shown = time.monotonic()
        if pending == 0 and behind <= MAX_LAG_BYTES:
            notify(f"caught up: lag {behind} bytes (bound {MAX_LAG_BYTES})")
            return behind
        return None

    return poll_until(caught_up, seconds=deadline, interval=0.5, what=lambda: FailedError(
        f"the new cluster did not catch up within {deadline:.0f}s ({last[0]} table(s) still copying, lag {last[1]} "
        f"bytes); the old cluster still serves {env.name}",
        hint=f"--rollback removes the new cluster; see {current.target}'s log in "
             f"{states.home(settings, env, current.target) / 'data' / 'log'}"))


def wait_confirmed(conn: psycopg.Connection[Any], slot: str, lsn: str, *, deadline: float = 120) -> None:
    """The subscriber behind `slot` has applied and flushed everything up to `lsn`."""
    behind = 0

    def reached() -> bool | None:
        nonlocal behind
        behind, confirmed = lag(conn, slot, lsn)
        return confirmed or None

    poll_until(reached, seconds=deadline, interval=POLL_SECONDS, what=lambda: FailedError(
        f"the subscriber did not confirm {lsn} within {deadline:.0f}s ({behind} bytes behind)"))


def copy_sequences(source: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> int:
    """Every sequence on `target` set SEQUENCE_MARGIN past both `source`'s value and the highest value its column
    holds (logical replication carries no sequences; rows inserted with explicit ids never moved them)."""
    count = 0
    for name, last_value, schema, table, column in source.execute(
            queries.load("upgrade/logical_sequences")).fetchall():
        highest = last_value or 0
        if table is not None:
            row = target.execute(queries.load("upgrade/logical_column_max").format(
                column=sql.Identifier(column), table=sql.Identifier(schema, table))).fetchone()
            highest = max(highest, int(row[0]) if row else 0)
        target.execute(queries.load("upgrade/logical_setval"), {"name": name, "value": highest + SEQUENCE_MARGIN})
        count += 1
    return count


def compare(old: psycopg.Connection[Any], new: psycopg.Connection[Any]) -> list[TableCheck]:
    """Row counts and order-independent checksums of every table on both clusters."""
    checks = []
    for table in tables(old, "logical_tables"):
        statement = queries.load("upgrade/logical_table_checksum").format(table=identifier(table))
        before = old.execute(statement).fetchone()
        after = new.execute(statement).fetchone()
        if before is None or after is None:
            raise FailedError(f"no checksum for {table}")
        checks.append(TableCheck(table, int(before[0]), int(after[0]), tuple(before) == tuple(after)))
    return checks


def with_phase(current: LogicalState, phase: str, **changes: Any) -> LogicalState:
    return replace(current, phase=phase, **changes)


def confirm_stopped(old: psycopg.Connection[Any], new: psycopg.Connection[Any], slot: str, notify: Notify) -> int:
    """Writes are stopped: the publisher's (`old`) last LSN applied by the subscriber (`new`), the sequences carried
    past it; how many sequences."""
    row = old.execute(queries.load("upgrade/logical_current_lsn")).fetchone()
    if row is None:
        raise FailedError("the publisher reported no WAL position")
    notify(f"waiting for the subscriber to confirm the last LSN {row[0]}")
    wait_confirmed(old, slot, row[0])
    sequences = copy_sequences(old, new)
    notify(f"{sequences} sequence(s) set {SEQUENCE_MARGIN} past their old values and their columns' highest ids")
    return sequences


def compare_checked(old: psycopg.Connection[Any], new: psycopg.Connection[Any], notify: Notify) -> list[TableCheck]:
    """Every table's row count and checksum on both sides; a difference is a FailedError naming the tables."""
    checks = compare(old, new)
    differing = [check for check in checks if not check.same]
    notify(f"{len(checks)} table(s) compared (row counts and checksums): {len(differing)} differ")
    if differing:
        raise FailedError("tables differ after catch-up: " + ", ".join(
            f"{check.table} ({check.rows_old} rows before, {check.rows_new} after)" for check in differing))
    return checks


def verify_stopped(old: psycopg.Connection[Any], new: psycopg.Connection[Any], slot: str,
                   notify: Notify) -> tuple[list[TableCheck], int]:
    """Writes are stopped: confirm_stopped, then compare_checked (the remote cutover and the rollbacks)."""
    sequences = confirm_stopped(old, new, slot, notify)
    return compare_checked(old, new, notify), sequences
