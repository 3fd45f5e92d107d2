"""db-create-replica from=backup: a replica seeded from the repository's newest physical backup and the archive.

The primary copies nothing: the backup (a full one, or an incremental chain combined) is laid down with the
restore's own code (backup/laydown.py), then started as a standby whose `restore_command` is `cuisine-db wal
fetch` on the environment's archive, with `primary_conninfo` and the replica's slot beside it. It replays the
archive from the backup's end; when the archive has no next segment, the walreceiver asks the primary for the
rest (the slot, made before anything else, keeps every segment the archive does not have yet) and streams from
then on. Once it streams, `restore_command` is reset and the copy of the age identity it decrypted the archive
with is removed: the slot keeps what the replica needs, and the private key does not stay readable by the
server's user.

Refused before anything is made: no physical backup of the environment, archiving off on the primary (or not
to the tool's archive), a backup of another cluster (system identifier) or another major version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.backup import catalog, laydown
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.physical_restore import IDENTITY_COPY, identity_copy, own_archiving, own_settings
from cuisine_db.backup.wal import enable, fetch
from cuisine_db.backup.workspace import scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UnavailableError, UsageError
from cuisine_db.postgres import osuser, safe_files, server_settings
from cuisine_db.postgres.cluster import LocalCluster, conf_value
from cuisine_db.postgres.target import Target
from cuisine_db.storage import open_repository
from cuisine_db.waiting import wait_for

LATEST = "latest"
STALL_SECONDS = 300.0  # no replay progress and no streaming for this long: the archive cannot take it further
IDENTITY_FOLDER = "run"
SPOOL = "spool"


class NoBackup(UsageError):
    """The environment has no physical backup at all (a Patroni member then falls back to a copy of the leader)."""


@dataclass(frozen=True, slots=True)
class Seed:
    """The backup a replica is seeded from, and the chain that lays it down (oldest first)."""

    resolved: Resolved
    sources: list[BackupSource]

    @property
    def name(self) -> str:
        return self.resolved.manifest.name


def _newest_of_this_cluster(settings: Settings, env: Environment, system: str) -> Resolved:
    """`latest`: the newest physical backup of the environment taken of this very cluster (a restore from another
    environment gives it another system identifier; older backups of the cluster it replaced lead elsewhere)."""
    repository = open_repository(settings, env)
    physical = [(entry, entry.manifest) for entry in catalog.trusted_scan(settings, env, repository)
                if entry.manifest is not None and entry.type in laydown.PHYSICAL]
    ours = [(entry, manifest) for entry, manifest in physical if manifest.system_identifier == system]
    if not physical:
        raise NoBackup(f"environment {env.name!r} has no physical backup in {repository.url} to seed a replica from",
                         hint=f"make db-backup env={env.name} type=full, or leave out from=backup to copy the primary")
    if not ours:
        newest = physical[-1][1]
        raise RefusedError(f"every physical backup of {env.name!r} is of another cluster (the newest, {newest.name}, "
                           f"has system identifier {newest.system_identifier}; the primary is {system})",
                           hint=f"take one of this cluster: make db-backup env={env.name} type=full")
    entry, manifest = ours[-1]
    return Resolved(entry, manifest, repository, env, f"newest physical backup of {env.name}'s cluster")


def _resolve(settings: Settings, env: Environment, reference: str, system: str) -> Resolved:
    if reference == LATEST:
        return _newest_of_this_cluster(settings, env, system)
    resolved = catalog.resolve(settings, env, reference)
    if resolved.manifest.type not in laydown.PHYSICAL:
        raise UsageError(f"{resolved.manifest.name} is a {resolved.manifest.type} backup: a replica is seeded from a "
                         "physical one (type=full, or incremental)", hint="backup=latest picks the newest physical one")
    return resolved


def check(settings: Settings, env: Environment, conn: psycopg.Connection[Any], reference: str) -> Seed:
    """What seeding needs, checked against the primary before anything is made."""
    row = conn.execute(sql.load("replication/seed_facts")).fetchone()
    if row is None:
        raise UnavailableError("the primary returned no row for its archive settings")
    in_recovery, system, version_num, archive_mode, archive_command = row
    if in_recovery:
        raise UnavailableError(f"{env.name!r}'s primary is in recovery: it is a standby itself")
    resolved = _resolve(settings, env, reference, system)
    manifest = resolved.manifest
    if manifest.system_identifier != system:
        raise RefusedError(f"{manifest.name} is a backup of another cluster (system identifier "
                           f"{manifest.system_identifier}; {env.name}'s primary is {system}): its WAL does not lead "
                           "to this primary", hint=f"take one: make db-backup env={env.name} type=full")
    if manifest.server_major != version_num // 10000:
        raise RefusedError(f"{manifest.name} is of PostgreSQL {manifest.server_major}; the primary runs "
                           f"{version_num // 10000}", hint=f"take one: make db-backup env={env.name} type=full")
    if archive_mode == "off" or " wal push " not in f" {archive_command} ":
        raise RefusedError(f"{env.name!r} does not archive its WAL with cuisine-db (archive_mode = {archive_mode}): a "
                           "replica seeded from a backup catches up from the archive",
                           hint=f"make db-wal-enable env={env.name} restart=1, then a type=full backup; or leave out "
                                "from=backup to copy the primary")
    return Seed(resolved, laydown.chain(settings, env, resolved))


def _conf_line(name: str, value: str) -> str:
    return f"{name} = {conf_value(value)}"


def lay_down(settings: Settings, env: Environment, seed: Seed, replica: LocalCluster, *, slot: str,
             conninfo: str) -> list[str]:
    """The backup into the replica's (empty) data directory, made a standby of the archive and the primary; what
    the backup's configuration carried that was not applied comes back as warnings."""
    with scratch(settings, f"seed-{replica.home.name}") as work:
        osuser.make_reachable(work, replica.os_user)
        osuser.give_to(work, replica.os_user, 0o711)
        warnings = laydown.lay_down(settings, seed.sources, replica.datadir, replica.home / "tablespaces",
                                    replica.os_user, work, own_settings=own_settings(replica),
                                    keep_settings=own_archiving(settings, env, seed.resolved.manifest.env))
    for stray in ("recovery.signal", "postmaster.pid", laydown.MANIFEST_FILE):
        safe_files.remove(replica.datadir / stray)
    enable.grant_server_access(settings, env, replica.os_user)
    enable.write_credentials(settings, env, replica.os_user)
    spool = replica.home / SPOOL
    osuser.give_to(spool, replica.os_user)
    identity = identity_copy(settings, [env], replica.home / IDENTITY_FOLDER, replica.os_user)
    command = enable.restore_command(settings, env, spool=spool, identity_file=identity,
                                     system_identifier=seed.resolved.manifest.system_identifier)
    lines = [_conf_line("restore_command", command), _conf_line("primary_conninfo", conninfo),
             _conf_line("primary_slot_name", slot)]
    auto_conf = replica.datadir / "postgresql.auto.conf"
    kept = (safe_files.read(auto_conf) or b"").decode("utf-8")
    safe_files.write(auto_conf, kept + f"# Set by cuisine-db: a standby seeded from {seed.name}; restore_command "
                                       "until it streams\n" + "\n".join(lines) + "\n", owner=replica.os_user)
    safe_files.write(replica.datadir / "standby.signal", b"", owner=replica.os_user)
    return warnings


def _replayed(settings: Settings, env: Environment, target: Target) -> str | None:
    try:
        with connect(settings, env, "db-create-replica", target=target) as conn:
            row = conn.execute(sql.load("replication/replay_lsn")).fetchone()
    except (psycopg.OperationalError, UnavailableError):
        return None
    return str(row[0]) if row and row[0] else None


def wait_caught_up(settings: Settings, env: Environment, name: str, target: Target, replica: LocalCluster, *,
                   stall_seconds: float = STALL_SECONDS, notify: Callable[[str], None] = lambda _: None) -> None:
    """Until the primary shows the replica streaming. A long archive takes as long as it takes: only replay that
    stops moving for `stall_seconds` without streaming is an error."""
    last, moved, told = None, time.monotonic(), time.monotonic()
    with connect(settings, env, "db-create-replica", purpose="monitoring") as primary:

        def streams_or_stalls() -> bool | None:
            """True once streaming, False once replay has stood still for `stall_seconds`; None meanwhile."""
            nonlocal last, moved, told
            if streaming(primary, name):
                return True
            position = _replayed(settings, env, target)
            now = time.monotonic()
            if position != last:
                last, moved = position, now
            if now - told > 30:
                notify(f"replica {name}: replayed the archive up to {position or 'nothing yet'}")
                told = now
            return False if now - moved > stall_seconds else None

        # No fixed deadline: a long archive takes as long as it takes, and the stall is the limit.
        if wait_for(streams_or_stalls, seconds=math.inf, interval=0.5):
            return
    raise UnavailableError(f"replica {name} replayed the archive up to {last or 'nothing'} and went no further in "
                           f"{stall_seconds:.0f} s, without streaming from the primary",
                           hint=f"a hole in the archive, or WAL the primary no longer has: make db-wal-status "
                                f"env={env.name}; a newer backup (make db-backup env={env.name} type=full) shortens "
                                f"the way; its log: {replica.datadir / 'log'}")


def finish(settings: Settings, env: Environment, target: Target, replica: LocalCluster) -> None:
    """Streaming now: the archive is no longer its way in. restore_command goes, and the key copy with it."""
    with connect(settings, env, "db-create-replica", target=target) as conn:
        server_settings.alter_system(conn, {"restore_command": None})
    (replica.home / IDENTITY_FOLDER / IDENTITY_COPY).unlink(missing_ok=True)
    fetch.clear_prefetched(replica.home / SPOOL)


def streaming(conn: psycopg.Connection[Any], name: str) -> bool:
    """Whether the primary (`conn`) shows replica `name` streaming from it."""
    rows = conn.execute(sql.load("replication/standbys")).fetchall()
    return any(row[0] == name and row[3] == "streaming" for row in rows)
