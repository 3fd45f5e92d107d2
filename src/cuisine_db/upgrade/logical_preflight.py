"""The pre-flight of method=logical: one go/no-go table of what logical replication needs, before anything changes.

The in-place pre-flight asks pg_upgrade; this one asks the old server what a publication, a subscription and a
second cluster beside it need: wal_level=logical (or the restart that sets it), a replica identity on every table,
free replication slots and WAL senders for the initial copy, disk for the second cluster, and what logical
replication does not carry (large objects, unlogged tables, other databases); sequences are reported (set past
the old values at the cutover) and WAL archiving continues into an area of the new cluster's own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cuisine_db import humanize
from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.postgres import binaries
from cuisine_db.postgres.runner import run
from cuisine_db.upgrade import logical, preflight
from cuisine_db.upgrade.preflight import GO, HEADROOM, NO_GO, NOTE, PreflightReport, Row

# The subscription's own slot, plus the table-synchronisation workers' slots while the initial copy runs
# (max_sync_workers_per_subscription, 2 by default); each of them streams through a WAL sender.
SLOTS_NEEDED = 3
IDENTITY_CHECK = "replica identity"


def run_preflight(settings: Settings, env: Environment, source: int, target: int, *, identity_full: bool,
                  notify: Callable[[str], None] = lambda _: None,
                  max_backup_age: timedelta | None = None) -> PreflightReport:
    """Every check of the logical method against env's live cluster; nothing is changed."""
    old_build = binaries.find(source, settings.cache_dir)
    new_build = binaries.find(target, settings.cache_dir)
    notify(f"pre-flight of method=logical: {env.name} PostgreSQL {source} → {target}")
    with connect(settings, env, "upgrade pre-flight"):
        pass  # a stopped cluster is started here where the start policy allows it, else the error says so
    rows: list[Row] = []
    with logical.open_at(settings, env, env.port or 0) as conn:
        level = conn.execute(queries.load("upgrade/logical_show_wal_level")).fetchone()
        missing = logical.tables(conn, "logical_without_identity")
        unlogged = logical.tables(conn, "logical_unlogged_tables")
        capacity = conn.execute(queries.load("upgrade/logical_capacity")).fetchone()
        sequences = conn.execute(queries.load("upgrade/logical_sequences")).fetchall()
        large = conn.execute(queries.load("upgrade/logical_large_objects")).fetchone()
        size_row = conn.execute(queries.load("upgrade/logical_database_size")).fetchone()
        databases = [name for (name,) in conn.execute(queries.load("upgrade/databases")).fetchall()]
        archiving = conn.execute(queries.load("upgrade/archiving")).fetchone()
        system = conn.execute(queries.load("upgrade/system_identifier")).fetchone()
        installed = conn.execute(queries.load("upgrade/extensions")).fetchall()
    if level == ("logical",):
        rows.append(Row("wal_level", GO, "logical: publications can be made without a restart"))
    else:
        rows.append(Row("wal_level", NOTE, f"{level[0] if level else '?'}: set to logical with ALTER SYSTEM and a "
                        f"restart of PostgreSQL {source} (a few seconds without connections) before the copy starts; "
                        "the setting stays"))
    rows.append(_identity_row(missing, identity_full))
    rows.append(_capacity_row(capacity))
    size = int(size_row[0]) if size_row else 0
    free = shutil.disk_usage(settings.env_dir(env)).free
    need = size + HEADROOM
    rows.append(Row("free disk", GO if free >= need else NO_GO,
                    f"{humanize.size(free)} free; the second cluster needs about {humanize.size(need)} "
                    f"({env.database} is {humanize.size(size)}, loaded without bloat, plus WAL and catalogs)",
                    "" if free >= need else "free space, or an in-place method (method=link needs new catalogs "
                    "only)"))
    rows.append(Row("sequences", GO, f"{len(sequences)} sequence(s): logical replication carries none; each is "
                    f"set {logical.SEQUENCE_MARGIN} past its old value and its column's highest id at the cutover"
                    if sequences else "none"))
    count = int(large[0]) if large else 0
    rows.append(Row("large objects", NO_GO if count else GO,
                    f"{count} large object(s) in {env.database}: logical replication does not carry them"
                    if count else "none", "move them into bytea columns, or choose an in-place method" if count
                    else ""))
    rows.append(Row("unlogged tables", NO_GO if unlogged else GO,
                    f"a publication does not send their rows: {', '.join(unlogged)}" if unlogged else "none",
                    "ALTER TABLE ... SET LOGGED, or choose an in-place method" if unlogged else ""))
    others = [name for name in databases if name not in (env.database, "postgres", "template1")]
    rows.append(Row("databases", NO_GO if others else GO,
                    f"method=logical carries {env.database} only; these would be left behind: {', '.join(others)}"
                    if others else f"{env.database} only (postgres and template1 are made anew)",
                    "choose an in-place method, which carries every database" if others else ""))
    rows.append(_extensions_row(new_build, [name for name, _version in installed]))
    mode, command = (str(archiving[0]), str(archiving[1])) if archiving else ("off", "")
    rows.append(_archive_row(settings, env, mode, command))
    max_age = max_backup_age or timedelta(hours=env.wal.max_full_backup_age_hours)
    backup, _take = preflight.backup_row(settings, env, max_age, str(system[0]) if system else "")
    rows.append(backup if backup.status == GO else Row(
        backup.check, NOTE, backup.detail.split(":")[0] + ": the logical method keeps the old cluster until "
        "finish=1 and needs none; rehearse=1 restores the newest one"))
    return PreflightReport(env.name, source, target, logical.METHOD, old_build.version, new_build.version,
                           tuple(rows), size, False)


def _identity_row(missing: list[str], identity_full: bool) -> Row:
    if not missing:
        return Row(IDENTITY_CHECK, GO, "every table has a primary key or a replica identity")
    listed = ", ".join(missing)
    if identity_full:
        return Row(IDENTITY_CHECK, NOTE, f"{len(missing)} table(s) without one get REPLICA IDENTITY FULL "
                   f"(replica_identity_full=1): {listed}")
    return Row(IDENTITY_CHECK, NO_GO, f"{len(missing)} table(s) have no primary key or replica identity, so logical "
               f"replication cannot send their UPDATE and DELETE: {listed}",
               "add primary keys, or replica_identity_full=1 (--replica-identity-full) gives them REPLICA IDENTITY "
               "FULL")


def _capacity_row(capacity: tuple[int, int, int, int] | None) -> Row:
    max_slots, used_slots, max_senders, used_senders = capacity or (0, 0, 0, 0)
    free_slots, free_senders = max_slots - used_slots, max_senders - used_senders
    detail = (f"max_replication_slots={max_slots} ({used_slots} in use), max_wal_senders={max_senders} "
              f"({used_senders} running); the subscription and its initial copy need {SLOTS_NEEDED} of each")
    if free_slots >= SLOTS_NEEDED and free_senders >= SLOTS_NEEDED:
        return Row("replication slots and senders", GO, detail)
    return Row("replication slots and senders", NO_GO, detail,
               "raise max_replication_slots and max_wal_senders (ALTER SYSTEM, a restart), or drop unused slots")


def _extensions_row(build: binaries.PgBuild, installed: list[str]) -> Row:
    """Extensions of the database against the target build's control files (pg_dump --schema-only creates them)."""
    wanted = [name for name in installed if name != "plpgsql"]
    if not wanted:
        return Row("extensions", GO, "none besides plpgsql")
    try:
        sharedir = run([build.program("pg_config"), "--sharedir"], timeout=60).stdout.strip()
    except (CuisineDbError, OSError) as exc:
        return Row("extensions", NOTE, f"the target build's extensions could not be listed ({exc}); the schema "
                   "load stops the run if one is missing")
    folder = Path(sharedir) / "extension"
    absent = [name for name in wanted if not (folder / f"{name}.control").exists()]
    if absent:
        return Row("extensions", NO_GO, f"not in the PostgreSQL {build.major} build: {', '.join(absent)}",
                   "install them for the new major, or drop them before upgrading")
    return Row("extensions", GO, f"{', '.join(wanted)}: available in PostgreSQL {build.major}")


def _archive_row(settings: Settings, env: Environment, mode: str, command: str) -> Row:
    if mode == "off":
        return Row("WAL archive", GO, "archiving is off")
    if not preflight.our_archive_command(settings, env, command):
        return Row("WAL archive", NO_GO, f"archive_mode={mode} with an archive_command that is not this "
                   "installation's cuisine-db wal push: the new cluster (a new system identifier) would archive WAL "
                   "names the archive already holds", f"cuisine-db wal enable --env {env.name}, or archive_mode=off "
                   "while upgrading")
    return Row("WAL archive", GO, f"archive_mode={mode}: the old cluster's last segment is archived at the cutover; "
               f"the new cluster archives into wal/{env.name}+<its system identifier>/ from its start on the "
               "environment's port, and its first full backup is taken as soon as it is writable")


def identity_refused(report: PreflightReport) -> Row | None:
    """The replica-identity row when it is the no-go: a safety rail (exit 4), as before the table existed."""
    return next((row for row in report.rows if row.check == IDENTITY_CHECK and row.status == NO_GO), None)
