"""For a remote environment the tool starts no servers: what a person applies to make or promote a replica."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from cuisine_db.config import Environment
from cuisine_db.errors import UsageError
from cuisine_db.replicas.create import REPLICA_SETTINGS
from cuisine_db.replicas.members import check_name, slot_name
from cuisine_db.replicas.role import REPLICATION_CONNECTION_LIMIT, REPLICATION_ROLE


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps for a person, in order; each is a title and the lines to apply (SQL, shell, configuration)."""

    env: str
    name: str
    steps: list[tuple[str, list[str]]]


def _primary(env: Environment) -> tuple[str, str]:
    params = psycopg.conninfo.conninfo_to_dict(env.dsn or "")
    return str(params.get("host") or "PRIMARY_HOST"), str(params.get("port") or "5432")


def create_plan(env: Environment, name: str, port: int | None = None) -> Plan:
    """What makes replica `name` of a remote environment: the same shape db-create-replica gives local ones."""
    check_name(name)
    if name in env.replicas:
        raise UsageError(f"cuisine-db.toml already lists replica {name!r} of {env.name!r}")
    host, primary_port = _primary(env)
    slot = slot_name(name)
    replica_port = str(port or 5432)
    settings = "\n".join(f"{key} = {value}" for key, value in REPLICA_SETTINGS.items())
    return Plan(env.name, name, [
        ("On the primary, as a superuser (psql): a role that may only replicate, and the replica's slot. Set its "
         "password with \\password so that it stays out of files and history.", [
             f"CREATE ROLE {REPLICATION_ROLE} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE "
             f"CONNECTION LIMIT {REPLICATION_CONNECTION_LIMIT};   -- once per primary",
             f"\\password {REPLICATION_ROLE}",
             f"SELECT pg_create_physical_replication_slot('{slot}', true);"]),
        ("The primary's pg_hba.conf: let the replica's address replicate, then reload.", [
             f"host  replication  {REPLICATION_ROLE}  REPLICA_ADDRESS/32  scram-sha-256",
             "SELECT pg_reload_conf();"]),
        ("On the replica's host, as the postgres OS user, with the role's password in ~/.pgpass (mode 0600):", [
             f"PGAPPNAME={name} pg_basebackup --host {host} --port {primary_port} --username {REPLICATION_ROLE} "
             f"--pgdata /var/lib/postgresql/{name} --write-recovery-conf --slot {slot} --wal-method=stream "
             "--checkpoint=fast --no-password"]),
        ("Append to the replica's postgresql.conf, then start it:", [
             f"port = {replica_port}", settings, f"cluster_name = '{env.name}/{name}'"]),
        ("Tell cuisine-db about it (cuisine-db.toml), then check it streams: make db-replicas env=" + env.name, [
             f"[environments.{env.name}.replicas.{name}]",
             f'dsn = "host=REPLICA_HOST port={replica_port}"',
             f'slot = "{slot}"']),
    ])


def promote_plan(env: Environment, name: str) -> Plan:
    """How to promote a remote replica without losing transactions or ending up with two primaries."""
    check_name(name)
    if name not in env.replicas:
        listed = ", ".join(sorted(env.replicas)) or "none"
        raise UsageError(f"cuisine-db.toml lists no replica {name!r} of {env.name!r} (replicas: {listed})")
    ref = env.replicas[name]
    return Plan(env.name, name, [
        ("Fence the old primary first, or two servers will accept writes: stop it (pg_ctl stop -m fast on its host; "
         "a clean stop sends the replicas its last WAL). If it is down already, keep it down.", [
             "pg_ctl stop --pgdata PRIMARY_DATA --mode fast"]),
        (f"Check that {name} replayed everything (compare with 'Latest checkpoint location' of pg_controldata on "
         "the old primary), then promote it:", [
             "SELECT pg_last_wal_replay_lsn();",
             "SELECT pg_promote(wait => true);"]),
        ("Point cuisine-db at the new primary (cuisine-db.toml): its address becomes the environment's dsn, and it "
         "leaves the replicas list:", [
             f"[environments.{env.name}]",
             f'dsn = "{ref.dsn} ..."   # with the user and database of the old dsn',
             f"# remove [environments.{env.name}.replicas.{name}]"]),
        ("Other replicas: a slot on the new primary, primary_conninfo pointed at it (ALTER SYSTEM, then "
         "SELECT pg_reload_conf()). Rebuild the old primary as a replica before it runs again.", []),
    ])
