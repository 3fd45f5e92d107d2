"""Full restore of a logical backup: into a fresh database, checked against the manifest, then swapped in.

The old database is renamed, not dropped (`cuisine-db restore leftovers` lists it), so a restore that fails
at any step leaves the environment as it was: the fresh database is dropped and nothing was swapped.
The swap is two renames in one transaction after every session on the old database has been ended.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.backup import toc
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.feeder import Feeder
from cuisine_db.backup.manifest import ObjectEntry
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.restore_load import (
    EarlyAnalyze,
    Presence,
    analyze,
    check_counts,
    loaded_rows,
    pause_autovacuum,
    post_data_split,
    resume_autovacuum,
)
from cuisine_db.backup.sections import Sections, Split, balance, data_sizes
from cuisine_db.backup.workspace import database_of, restore_client, scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, UsageError
from cuisine_db.postgres.binaries import PgBuild
from cuisine_db.postgres.connect import client_environ
from cuisine_db.postgres.runner import ToolError
from cuisine_db.storage import keys as age_keys
from cuisine_db.waiting import poll_until

Progress = Callable[[int], None]
SMALL_FILE = 1 << 20
STAMP = "%Y%m%dT%H%M%SZ"
KEPT = "pre_restore"
FRESH = "restore"
TEST = "test_restore"
_BASE_LENGTH = 63 - len("_test_restore_20250101T000000Z")


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did: where the data went, what was kept, what was checked, and how long it took."""

    env: str
    backup: str
    type: str
    database: str
    kept: str | None
    seconds: float
    tables: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    dropped: bool = False


def database_name(base: str, kind: str, at: datetime) -> str:
    return f"{base[:_BASE_LENGTH]}_{kind}_{at.strftime(STAMP)}"


def leftover_pattern(base: str) -> str:
    return rf"^{re.escape(base[:_BASE_LENGTH])}_({KEPT}|{FRESH}|{TEST})_\d{{8}}T\d{{6}}Z$"


def admin_database(settings: Settings, env: Environment) -> str:
    """Where to stand while creating, renaming and dropping env's database (never inside it)."""
    return "template1" if database_of(settings, env) == "postgres" else "postgres"


def source_for(settings: Settings, env: Environment, resolved: Resolved) -> BackupSource:
    environments = [env] + ([resolved.source_env] if resolved.source_env is not None else [])
    return BackupSource(resolved.repository, resolved.manifest, age_keys.identities(settings, environments))


def _missing_roles(conn: psycopg.Connection[Any], statements: list[toc.Statement]) -> tuple[set[str], set[str]]:
    owners = set().union(*(s.owner_roles for s in statements)) if statements else set()
    others = set().union(*(s.other_roles for s in statements)) if statements else set()
    wanted = sorted(owners | others)
    present = {row[0] for row in conn.execute(queries.load("restore/existing_roles"), {"names": wanted})}
    return owners - present, others - present


def role_flags(conn: psycopg.Connection[Any], statements: list[toc.Statement]) -> tuple[list[str], list[str]]:
    """pg_restore flags for roles the target lacks (another environment's owners and grantees), and why."""
    missing_owners, missing_others = _missing_roles(conn, statements)
    flags, warnings = [], []
    if missing_owners:
        flags.append("--no-owner")
        warnings.append(f"roles {', '.join(sorted(missing_owners))} do not exist here: objects are owned by the "
                        "restoring role instead")
    if missing_others:
        flags.append("--no-acl")
        warnings.append(f"roles {', '.join(sorted(missing_others))} do not exist here: grants were not restored")
    return flags, warnings


def _create_fresh(admin: psycopg.Connection[Any], name: str, manifest_dump: dict[str, Any], owner: str) -> None:
    params = {
        "name": sql.Identifier(name),
        "encoding": sql.Literal(manifest_dump.get("encoding", "UTF8")),
        "owner": sql.Identifier(owner),
    }
    try:
        admin.execute(queries.load("restore/create_database").format(
            collate=sql.Literal(manifest_dump.get("collate", "C")),
            ctype=sql.Literal(manifest_dump.get("ctype", "C")), **params))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.FeatureNotSupported):
        # The backup's locale does not exist on this server: use the server's own.
        admin.execute(queries.load("restore/create_database_plain").format(**params))


def drop_quietly(settings: Settings, env: Environment, admin: psycopg.Connection[Any], name: str) -> None:
    """Drop a database this run created; on a new connection if the old one broke. Failing that, it stays
    behind as a leftover (`cuisine-db restore leftovers`) rather than hiding the original error."""
    statement = queries.load("restore/drop_database_force").format(name=sql.Identifier(name))
    with contextlib.suppress(psycopg.Error, CuisineDbError):
        if admin.closed:
            with connect(settings, env, "restore cleanup", dbname=admin_database(settings, env), start=False) as again:
                again.execute(statement)
        else:
            admin.execute(statement)


def _produce(source: BackupSource, entry: ObjectEntry, progress: Progress | None, frames: bool,
             out: BinaryIO) -> Any:
    return source.stream(entry, out, progress=progress, frames=frames)


def _run_pg_restore(settings: Settings, env: Environment, source: BackupSource, work: Path, *, database: str,
                    flags: list[str], jobs: int, client: PgBuild, progress: Progress | None,
                    schema: dict[int, tuple[str, frozenset[int]]],
                    after_pre_data: Callable[[], None] = lambda: None,
                    early_done: Callable[[Split], None] = lambda _: None) -> dict[str, int | None]:
    """pg_restore, section by section (backup/sections.py), from a folder of pipes fed by the repository; any
    failure on either side stops both. Returns the rows each table received as counted in the COPY text on its
    way (checked against the manifest by the stream itself), or None for a table whose rows are to be checked
    in the database (`loaded_rows`).

    pg_restore 16+ reads zstd data files itself (`<file>.zst`, found by name whatever the archive's header
    says): it gets the stored frames, a quarter of the bytes, and decompresses them in its own processes. They
    are not decompressed here too: their stored size and sha256 pin them to the backup's own bytes, age
    authenticates every chunk, and the rows are checked where they arrive. (Decompressing and counting them
    here as well cost a second core-second per GB of COPY text, on the restore's critical path.)"""
    folder = work / "dump"
    folder.mkdir(exist_ok=True)
    program = client.program("pg_restore")
    sections = Sections(program, folder, work, database=database, flags=flags, jobs=jobs,
                        environ=client_environ(settings, env, dbname=database) | load_options(env))
    failure: list[BaseException] = []

    def on_error(exc: BaseException) -> None:
        failure.append(exc)
        sections.kill()

    feeder = Feeder(folder, workers=jobs + 2, on_error=on_error)
    fetched: dict[str, Any] = {
        "toc.dat": feeder.write_file("toc.dat", functools.partial(_produce, source, source.entry("toc.dat"),
                                                                  progress, False))}
    # A partition may be loaded through its root (pg_dump --load-via-partition-root, automatic for some hash
    # partitioning), whose COPY locks partitions only as rows reach them: no early post-data then; and its rows
    # may land in another partition than the file's, so each file's rows are counted on the way.
    entries = toc.read_list(program, folder)
    partitioned = any(entry.kind == "TABLE ATTACH" for entry in entries)
    frames_for_restore = client.major >= 16 and not partitioned
    piped: dict[str, str] = {}
    failed: ToolError | None = None
    try:
        for entry in source.manifest.objects:
            if entry.file == "toc.dat":
                continue
            if entry.plain_size <= SMALL_FILE:
                fetched[entry.file] = feeder.write_file(entry.file,
                                                        functools.partial(_produce, source, entry, progress, False))
                continue
            frames = frames_for_restore and entry.file.endswith(".dat")
            name = f"{entry.file}.zst" if frames else entry.file
            piped[name] = entry.file
            feeder.pipe(name, functools.partial(_produce, source, entry, progress, frames))
        sizes = {entry.file: entry.plain_size for entry in source.manifest.objects}
        lists = balance(data_sizes(toc.read_list(program, folder, "data"), sizes), jobs)
        pipes = {int(file.split(".")[0]): name for name, file in piped.items() if file[:-4].isdigit()}
        feeder.start()
        try:
            post_data = toc.read_list(program, folder, "post-data")
            split = None if partitioned else post_data_split(schema, entries, post_data)
            presence = Presence(settings, env, database, post_data)
            try:
                sections.run(lists, loading=lambda dump_id: not partitioned and dump_id in pipes
                             and feeder.opened(pipes[dump_id]), after_pre_data=after_pre_data, split=split,
                             done=presence, early_done=early_done)
            finally:
                presence.close()
        except ToolError as exc:
            failed = exc  # reported after the streams' own errors, which name the object at fault
    finally:
        feeder.close()
    error = failure[0] if failure else (feeder.first_error() or failed)
    if error is not None:
        raise error
    if feeder.unread():
        raise FailedError(f"pg_restore never read {', '.join(feeder.unread())}: the restore is incomplete")
    fetched |= {piped[name]: result for name, result in feeder.piped().items()}
    return {entry.table: fetched[entry.file].rows for entry in source.manifest.objects if entry.table is not None}


def load_options(env: Environment) -> dict[str, str]:
    """Session settings for pg_restore's connections (PGOPTIONS), as PostgreSQL's "Populating a Database" advises:
    index builds get `backup.restore_maintenance_work_mem` (validated: digits and a unit, nothing to quote), and
    commits do not wait for the WAL flush — a restore that dies is run again from the start anyway, into a fresh
    database that is dropped, so no acknowledged commit is relied on before pg_restore succeeds."""
    return {"PGOPTIONS": f"-c maintenance_work_mem={env.backup.restore_maintenance_work_mem} "
                         "-c synchronous_commit=off"}


def _terminate(admin: psycopg.Connection[Any], database: str, deadline: float = 30) -> None:
    def ended() -> bool | None:
        admin.execute(queries.load("restore/terminate_database_sessions"), {"name": database})
        row = admin.execute(queries.load("restore/database_sessions"), {"name": database}).fetchone()
        return True if not row or row[0] == 0 else None

    poll_until(ended, seconds=deadline, interval=0.2,
               what=f"sessions on {database!r} did not end within {deadline:.0f}s; nothing was swapped")


def carry_over(admin: psycopg.Connection[Any], old: str, fresh: str) -> None:
    """Give the fresh database the old one's grants, settings and connection limit, which pg_dump (without
    --create) does not carry: a restore must never widen who may connect."""
    name = sql.Identifier(fresh)
    admin.execute(queries.load("restore/revoke_public").format(name=name))
    for grantee, privilege, grantable in admin.execute(queries.load("restore/database_grants"),
                                                       {"name": old}).fetchall():
        admin.execute(queries.load("restore/grant_database").format(
            privilege=sql.SQL(privilege), name=name,  # one of the server's own privilege keywords
            grantee=sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
            option=sql.SQL("WITH GRANT OPTION" if grantable else "")))
    rows = admin.execute(queries.load("restore/database_settings"), {"name": old}).fetchall()
    for setting, _ in rows:
        if setting:
            key, _, value = setting.partition("=")
            admin.execute(queries.load("restore/set_database_setting").format(
                name=name, setting=sql.Identifier(key), value=sql.Literal(value)))
    if rows and rows[0][1] != -1:
        admin.execute(queries.load("restore/database_connection_limit").format(name=name,
                                                                                limit=sql.Literal(rows[0][1])))


def swap(admin: psycopg.Connection[Any], target: str, fresh: str, kept: str, comment: str) -> str | None:
    """Put `fresh` in place of `target`, keeping the old one as `kept`; all or nothing."""
    exists = admin.execute(queries.load("restore/database_info"), {"name": target}).fetchone()
    name = sql.Identifier
    if exists is None:
        admin.execute(queries.load("restore/rename_database").format(old=name(fresh), new=name(target)))
        return None
    carry_over(admin, target, fresh)
    admin.execute(queries.load("restore/allow_connections").format(name=name(target), allow=sql.SQL("false")))
    try:
        _terminate(admin, target)
        with admin.transaction():
            admin.execute(queries.load("restore/rename_database").format(old=name(target), new=name(kept)))
            admin.execute(queries.load("restore/rename_database").format(old=name(fresh), new=name(target)))
    except BaseException:
        admin.execute(queries.load("restore/allow_connections").format(name=name(target), allow=sql.SQL("true")))
        raise
    admin.execute(queries.load("restore/allow_connections").format(name=name(kept), allow=sql.SQL("true")))
    admin.execute(queries.load("restore/comment_database").format(name=name(kept), comment=sql.Literal(comment)))
    return kept


def restore_database(settings: Settings, env: Environment, resolved: Resolved, *, test: bool = False,
                     keep: bool = False, statistics: bool = True, notify: Callable[[str], None] = lambda _: None,
                     progress: Callable[[int], Progress | None] = lambda _: None) -> RestoreReport:
    """Restore a whole-database backup (logical or schema) into env's database, or (test) beside it."""
    manifest = resolved.manifest
    if manifest.type in ("full", "incremental"):
        raise UsageError(f"{manifest.name} is a physical backup: it is restored as a whole cluster, not into a "
                         "database", hint="db-restore and db-test-restore take physical backups their own way")
    if manifest.type not in ("logical", "schema"):
        raise UsageError(f"{manifest.name} is a {manifest.type} backup: it holds tables, not a whole database",
                         hint=f"db-restore-tables (or db-restore, which restores them in place) with {manifest.name}")
    source = source_for(settings, env, resolved)
    started = time.monotonic()
    at = datetime.now(UTC)
    target = database_of(settings, env)
    fresh = database_name(target, TEST if test else FRESH, at)
    kept_name = database_name(target, KEPT, at)
    warnings: list[str] = []
    with connect(settings, env, "restore", dbname=admin_database(settings, env)) as admin:
        target_major = admin.info.server_version // 10000
        client = restore_client(settings, manifest.dump_major, target_major)
        old = admin.execute(queries.load("restore/database_info"), {"name": target}).fetchone()
        owner = old[1] if old else admin.info.user
        with scratch(settings, f"restore-{manifest.name}") as work:
            # --verbose: each entry's SQL comes after a header naming its dependencies (post_data_split).
            schema_sql = toc.schema_sql(client.program("pg_restore"), source.write_toc(work / "toc"),
                                        extra=["--verbose"])
            statements = toc.statements(schema_sql)
            flags, warnings = role_flags(admin, statements)
            notify(f"{env.name}: restoring {manifest.name} into a fresh database {fresh!r} "
                   f"(pg_restore {client.version}, {env.backup.jobs} jobs)")
            _create_fresh(admin, fresh, manifest.dump, owner)
            paused: list[tuple[str, str]] = []
            tables = [(t.schema, t.name) for t in manifest.tables]
            early = EarlyAnalyze(settings, env, fresh, tables, env.backup.jobs)
            try:
                try:
                    streamed = _run_pg_restore(
                        settings, env, source, work, database=fresh, flags=flags, jobs=env.backup.jobs,
                        client=client, progress=progress(manifest.size), schema=toc.dependencies(schema_sql),
                        after_pre_data=lambda: paused.extend(pause_autovacuum(settings, env, fresh)),
                        early_done=early.start if statistics else lambda _: None)
                except BaseException:
                    with contextlib.suppress(Exception):
                        early.finish()  # the restore's own error is the one to report
                    raise
                analyzed = early.finish()
                if test or manifest.type == "schema":
                    # A test restore counts every table in the database itself, as an independent check.
                    with connect(settings, env, "restore check", dbname=fresh) as check:
                        counted = check_counts(check, manifest.tables)
                else:
                    # Each table received exactly the manifest's rows (counted on the way in, or by the server
                    # for the frames pg_restore decompressed itself; pg_restore succeeded; every object was read
                    # and matched its sha256): that is the check before the swap.
                    counted = {table: rows for table, rows in streamed.items() if rows is not None}
                    unchecked = [t for t in manifest.tables if t.qualified in streamed and t.qualified not in counted]
                    if unchecked:
                        with connect(settings, env, "restore check", dbname=fresh) as check:
                            counted |= loaded_rows(check, unchecked)
                if statistics:
                    analyze(settings, env, fresh, [t for t in tables if t not in analyzed], env.backup.jobs)
                resume_autovacuum(settings, env, fresh, paused)
                if test:
                    seconds = round(time.monotonic() - started, 3)
                    if not keep:
                        drop_quietly(settings, env, admin, fresh)
                    return RestoreReport(env.name, manifest.name, manifest.type, fresh, None, seconds, counted,
                                         warnings, dropped=not keep)
                comment = (f"cuisine-db: {target} as it was before restoring {manifest.name} at "
                           f"{at.isoformat(timespec='seconds')}; drop it with: cuisine-db restore drop-leftover "
                           f"--env {env.name} NAME")
                kept = swap(admin, target, fresh, kept_name, comment)
            except BaseException as exc:
                drop_quietly(settings, env, admin, fresh)
                if isinstance(exc, CuisineDbError) and not (exc.hint or "").startswith("nothing was swapped"):
                    exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
                        f"nothing was swapped: {target!r} on {env.name} is as it was"
                raise
    return RestoreReport(env.name, manifest.name, manifest.type, target, kept,
                         round(time.monotonic() - started, 3), counted, warnings)
