"""db-upgrade method=logical where a server is remote: the source is the environment's `dsn=` server, the target an
existing empty server of the target major named by `to_dsn=`.

Both are reached with libpq connection strings and the environment's credentials (`password_env`, or a passfile:
the environment's, or `passfile=` in to_dsn), never a password in argv. The target subscribes to the source with the
source's connection string, so before anything changes the target is checked (reachable, the target major, an empty
database) and made to prove it can subscribe to the source (a disabled subscription without a slot, dropped again).
Then the same steps as the local method: roles and `pg_dump --schema-only` restored there, publication and
subscription, catch-up with lag; the cutover is in logical_remote_cutover.py. Progress lives in
`.cuisine/<env>/upgrade/logical-remote.json`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.postgres import binaries, purposes
from cuisine_db.postgres.runner import run
from cuisine_db.upgrade import logical
from cuisine_db.upgrade import state as states
from cuisine_db.upgrade.logical import FORWARD, Notify
from cuisine_db.upgrade.request import check_supported, target_given
from cuisine_db.waiting import poll_until

STATE_FILE = "logical-remote.json"
PROBE = "cuisine_db_upgrade_probe"
CATCH_UP_SECONDS = 3600.0
LIBPQ_VARIABLES = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
                   "dbname": "PGDATABASE", "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE",
                   "sslrootcert": "PGSSLROOTCERT", "target_session_attrs": "PGTARGETSESSIONATTRS"}


@dataclass(frozen=True, slots=True)
class RemoteState:
    """One logical upgrade between two servers reached by connection strings (neither holds a password)."""

    env: str
    source: int
    target: int
    source_dsn: str  # the environment's configured dsn when the run began
    target_dsn: str
    phase: str  # replicating, cutover, done
    maintenance_was_on: bool
    identity_full: tuple[str, ...]
    started_at: str


def is_remote(env: Environment) -> bool:
    """A server the environment reaches by `dsn=` (not a local cluster, not Patroni)."""
    return env.dsn is not None and env.patroni is None


STATE = states.Kept(STATE_FILE, RemoteState)  # forgotten with the folder (forget(folder_too=True))


def at_phase(current: RemoteState, phase: str) -> RemoteState:
    return replace(current, phase=phase)


def parse_target(dsn: str) -> dict[str, Any]:
    """to_dsn's parameters, or exit 2: not a connection string, or one holding a password."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise UsageError("to_dsn: not a libpq connection string (host=... port=... dbname=... user=...)") from None
    if "password" in given:
        raise UsageError("to_dsn: holds a password, which would reach the process list and the shell's history",
                         hint="put the password in a passfile (passfile=PATH in to_dsn), ~/.pgpass, or the "
                              "environment's password_env instead")
    return dict(given)


def check_local_source_target(dsn: str) -> None:
    """to_dsn for a local environment: checked (exit 2 bad, exit 3 unreachable), then refused as not built."""
    parse_target(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=10, application_name="cuisine-db upgrade") as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"to_dsn: the target server cannot be reached ({_first_line(exc)}); nothing was "
                               "changed") from None
    raise UsageError("to_dsn: a local environment onto a remote target is not built yet; nothing was changed",
                     hint="leave to_dsn out: the new cluster is then made locally; to_dsn serves environments "
                          "reached by dsn=")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _params(settings: Settings, env: Environment, dsn: str) -> dict[str, Any]:
    """Connection parameters for one of the two servers: its dsn, then the environment's passfile and password
    where the dsn names no passfile of its own."""
    params = dict(psycopg.conninfo.conninfo_to_dict(dsn))
    if "passfile" not in params:
        if env.passfile is not None:
            params["passfile"] = str(env.passfile)
        password = purposes.password_for(settings, env, purposes.ADMIN)
        if password is not None:
            params["password"] = password
    return params


def open_dsn(settings: Settings, env: Environment, dsn: str, side: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the source or the target (exit 3 when it cannot be reached)."""
    params = _params(settings, env, dsn)
    params.setdefault("connect_timeout", 10)
    params["application_name"] = "cuisine-db upgrade logical"
    try:
        return psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"{side}: the server cannot be reached ({_first_line(exc)}); nothing was changed "
                               "by this step") from None


def server_conninfo(settings: Settings, env: Environment, dsn: str) -> str:
    """The connection string a server uses to subscribe to the other: the dsn without this machine's passfile, with
    the environment's password when it has one (kept out of the server's log by `quiet`)."""
    params = {key: value for key, value in psycopg.conninfo.conninfo_to_dict(dsn).items() if key != "passfile"}
    password = purposes.password_for(settings, env, purposes.ADMIN)
    if password is not None and "passfile" not in psycopg.conninfo.conninfo_to_dict(dsn):
        params["password"] = password
    params["application_name"] = "cuisine-db upgrade"
    return psycopg.conninfo.make_conninfo(**{key: str(value) for key, value in params.items() if value is not None})


def quiet(conn: psycopg.Connection[Any]) -> None:
    """The session's statements stay out of the server log and pg_stat_statements where the role may say so."""
    # A non-superuser's statements are logged as the server's settings say; nothing more to do then.
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute(queries.load("upgrade/remote_quiet_session"))


def libpq_environ(settings: Settings, env: Environment, dsn: str) -> dict[str, str]:
    """Variables that point pg_dump/psql at one of the servers (a password only through PGPASSWORD)."""
    params = _params(settings, env, dsn)
    environ = {LIBPQ_VARIABLES[key]: str(value) for key, value in params.items() if key in LIBPQ_VARIABLES}
    if "password" in params:
        environ["PGPASSWORD"] = str(params["password"])
    return environ


def major_of(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(queries.load("upgrade/remote_server_major")).fetchone()
    if row is None:
        raise FailedError("the server reported no version")
    return int(row[0])


def validate(settings: Settings, env: Environment, to: int | None, to_dsn: str | None) -> tuple[int, int]:
    """(source, target) majors of a remote environment's logical upgrade, read from the servers; exit 2 for bad
    input, 3 for a server out of reach, 4 for a table without replica identity. Nothing has been touched."""
    if to_dsn is None:
        raise UsageError(f"{env.name} is a remote server: method=logical needs the new server as to_dsn=",
                         hint="create an empty database on a server of the target major, then give its connection "
                              "string (no password in it): to_dsn='host=... port=... dbname=... user=...'")
    to = target_given(env, to, None)
    check_supported(to, None)
    if states.load(settings, env) is not None or STATE.load(settings, env) is not None:
        raise RefusedError(f"{env.name} has an upgrade in progress", hint="finish it (--finish) or --rollback first")
    parse_target(to_dsn)
    with open_dsn(settings, env, env.dsn or "", "the source") as conn:
        source = major_of(conn)
        if to <= source:
            raise UsageError(f"to={to}: {env.name} runs PostgreSQL {source}; the logical method only goes forward")
        level = conn.execute(queries.load("upgrade/logical_show_wal_level")).fetchone()
        if level != ("logical",):
            raise UsageError(f"{env.name} runs with wal_level={level[0] if level else '?'}: logical replication needs "
                             "wal_level=logical on the source; nothing was changed",
                             hint="on the server: ALTER SYSTEM SET wal_level = logical, then restart it")
    return source, to


def check_target(settings: Settings, env: Environment, to_dsn: str, target: int) -> None:
    """The target: reachable (exit 3), of the target major, its database empty, and able to subscribe to the
    source (exit 2 naming what is wrong). The probe subscription is gone again when this returns."""
    given = parse_target(to_dsn)
    database = given.get("dbname") or given.get("user") or "?"
    with open_dsn(settings, env, to_dsn, "to_dsn") as conn:
        major = major_of(conn)
        if major != target:
            raise UsageError(f"to_dsn: the server runs PostgreSQL {major}, not to={target}; nothing was changed")
        level = conn.execute(queries.load("upgrade/logical_show_wal_level")).fetchone()
        if level != ("logical",):
            raise UsageError(f"to_dsn: the server runs with wal_level={level[0] if level else '?'}: after the cutover "
                             "it publishes its changes back to the source (the way back of --rollback), which needs "
                             "wal_level=logical; nothing was changed",
                             hint="on the target: ALTER SYSTEM SET wal_level = logical, then restart it")
        row = conn.execute(queries.load("upgrade/remote_target_contents")).fetchone()
        relations, schemas = (int(row[0]), int(row[1])) if row else (0, 0)
        if relations or schemas:
            raise UsageError(f"to_dsn: database {database} is not empty ({relations} relation(s), {schemas} "
                             "schema(s) besides public, extensions' own not counted); nothing was changed",
                             hint="the logical method fills an empty database: create a new one")
        probe(settings, env, conn)


def probe(settings: Settings, env: Environment, target: psycopg.Connection[Any]) -> None:
    """A disabled subscription to the source without a slot: the target's role may create subscriptions, and the
    target server reaches the source with its connection string. Dropped again."""
    name = sql.Identifier(PROBE)
    quiet(target)
    create = queries.load("upgrade/remote_probe_subscription").format(
        name=name, conninfo=sql.Literal(server_conninfo(settings, env, env.dsn or "")),
        publication=sql.Identifier(FORWARD))
    try:
        try:
            target.execute(create)
        except psycopg.errors.DuplicateObject:  # a probe left by a killed run: it holds no slot either
            target.execute(queries.load("upgrade/remote_detach_slot").format(name=name))
            target.execute(queries.load("upgrade/logical_drop_subscription").format(name=name))
            target.execute(create)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UsageError(f"to_dsn: the target's role cannot create a subscription ({_first_line(exc)}); nothing was "
                         "changed", hint="connect as a superuser, or (PostgreSQL 16+) a role granted "
                                         "pg_create_subscription with CREATE on the database") from None
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"to_dsn: the target server cannot reach the source {env.name} with its connection "
                               f"string ({_first_line(exc)}); nothing was changed",
                               hint="the target subscribes with the environment's dsn and credentials: its network, "
                                    "the source's pg_hba.conf and a role with REPLICATION must let it in") from None
    target.execute(queries.load("upgrade/remote_detach_slot").format(name=name))
    target.execute(queries.load("upgrade/logical_drop_subscription").format(name=name))


def prepare(settings: Settings, env: Environment, current: RemoteState, notify: Notify) -> None:
    """Identity, roles, schema, publication and subscription: the target starts copying and following."""
    STATE.save(settings, env, current)
    with open_dsn(settings, env, current.source_dsn, "the source") as conn:
        for table in current.identity_full:
            notify(f"REPLICA IDENTITY FULL on {table}")
            conn.execute(queries.load("upgrade/logical_identity_full").format(table=logical.identifier(table)))
    build = binaries.find(current.target, settings.cache_dir)
    source_env = libpq_environ(settings, env, current.source_dsn)
    target_env = libpq_environ(settings, env, current.target_dsn)
    notify("roles: pg_dumpall --roles-only → the target server")
    roles = run([build.program("pg_dumpall"), "--roles-only"], env=source_env, timeout=600).stdout
    applied = run([build.program("psql"), "-X", "-q"], env=target_env, input_text=roles, timeout=600)
    errors = [line for line in applied.stderr.splitlines() if "ERROR:" in line and "already exists" not in line]
    if errors:
        raise FailedError(f"roles could not be carried to the target: {errors[0]}",
                          hint=f"{len(errors)} error(s); --rollback leaves the source as it was")
    notify("schema: pg_dump --schema-only → the target server")
    schema = run([build.program("pg_dump"), "--schema-only"], env=source_env, timeout=3600).stdout
    run([build.program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"], env=target_env, input_text=schema,
        timeout=3600)
    notify(f"publication {FORWARD} on the source, subscription on the target")
    with open_dsn(settings, env, current.source_dsn, "the source") as conn:
        conn.execute(queries.load("upgrade/logical_create_publication").format(name=sql.Identifier(FORWARD)))
    with open_dsn(settings, env, current.target_dsn, "to_dsn") as conn:
        quiet(conn)
        logical.subscribe(conn, FORWARD, server_conninfo(settings, env, current.source_dsn), copy_data=True)


def catch_up(settings: Settings, env: Environment, current: RemoteState, notify: Notify, *,
             seconds: float = CATCH_UP_SECONDS) -> int:
    """Until every table is copied and the target is within logical.MAX_LAG_BYTES; the lag is shown."""
    with open_dsn(settings, env, current.source_dsn, "the source") as source, \
            open_dsn(settings, env, current.target_dsn, "to_dsn") as target:

        def caught_up() -> int | None:
            row = target.execute(queries.load("upgrade/logical_sync_pending"), {"name": FORWARD}).fetchone()
            pending, total = (int(row[0]), int(row[1])) if row else (0, 0)
            behind, _ = logical.lag(source, FORWARD)
            notify(f"catch-up: {total - pending}/{total} tables copied, lag {behind} bytes")
            return behind if pending == 0 and behind <= logical.MAX_LAG_BYTES else None

        behind = poll_until(caught_up, seconds=seconds, interval=2.0,
                            what=lambda: FailedError(f"the target did not catch up within {seconds:.0f}s; the source "
                                                     f"still serves {env.name}",
                                                     hint="--rollback removes the subscription"))
    notify(f"caught up: lag {behind} bytes (bound {logical.MAX_LAG_BYTES})")
    return behind
