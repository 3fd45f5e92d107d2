"""Logical backups: pg_dump's directory format, each file streamed through the pipeline into the repository.

pg_dump runs with parallel jobs and no compression of its own (`--compress=0`) on an exported snapshot.
Each file it writes is read while it grows (storage/growing.py) and stored as `<file>.zst.age`: zstd,
age and sha256 happen here, per file and in parallel threads, so the rows of each table can be counted
from the COPY text on the way (no second scan of the tables) and nothing full-size is kept on disk.
The manifest is written last.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import __version__
from cuisine_db import sql as queries
from cuisine_db.backup import backup_names, catalog, toc
from cuisine_db.backup.backup_names import TableName
from cuisine_db.backup.manifest import Manifest, ObjectEntry, TableEntry, WrittenBackup, prefix
from cuisine_db.backup.streaming import stream_folder
from cuisine_db.backup.workspace import database_of, dump_client, scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.postgres.connect import client_environ
from cuisine_db.postgres.runner import ToolError, spawn
from cuisine_db.postgres.target import Target
from cuisine_db.storage import Repository, open_repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.growing import GrowingFile
from cuisine_db.storage.pipeline import StoredObject, store
from cuisine_db.waiting import free_name

Progress = Callable[[int], None]
LOCK_WAIT = "120s"


@dataclass(frozen=True, slots=True)
class BackupReport(WrittenBackup):
    """What a logical backup wrote, for people and for --json."""

    tables: dict[str, int | None]
    rows: int
    seconds: float
    pg_dump: str


def object_name(file: str) -> str:
    return f"{file}.zst.age"


def _check_request(kind: str, tables: Sequence[TableName]) -> None:
    backup_names.check_type(kind)
    if kind in backup_names.PHYSICAL_TYPES:
        raise UsageError(f"type={kind} is a physical backup: backup/physical.py takes those, not pg_dump")
    if kind == "tables" and not tables:
        raise UsageError("type=tables needs the tables: tables=users,recipes")
    if kind != "tables" and tables:
        raise UsageError(f"tables= goes with type=tables, not type={kind}")


def _resolve_tables(present: list[dict[str, Any]], wanted: Sequence[TableName], env: Environment) -> list[TableName]:
    resolved = []
    for table in wanted:
        matches = [row for row in present if row["name"] == table.name
                   and (table.schema is None or row["schema"] == table.schema)]
        if not matches:
            raise UsageError(f"environment {env.name!r} has no table {table}",
                             hint=f"make db-table-sizes env={env.name} lists the tables")
        if len(matches) > 1:
            raise UsageError(f"table {table} is ambiguous: in schemas {', '.join(m['schema'] for m in matches)}",
                             hint="qualify it, e.g. tables=public.users")
        resolved.append(TableName(matches[0]["schema"], matches[0]["name"]))
    return resolved


def _unique_name(repository: Repository, env: Environment, kind: str) -> backup_names.BackupName:
    """A name no other backup has: two backups in the same second wait for the next one."""
    return free_name(lambda at: backup_names.make(env.name, kind, at),
                     lambda name: next(iter(repository.list(prefix(str(name)))), None) is not None)


def _one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:
        raise UnavailableError("the server returned no row for a query that always returns one")
    return row


def _control(conn: psycopg.Connection[Any]) -> tuple[str | None, int | None]:
    try:
        row = conn.execute(queries.load("backup/control")).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None, None  # pg_control_* need more than a plain role; the manifest then leaves them out
    return (row[0], row[1]) if row else (None, None)


def _pg_dump_argv(program: Path, folder: Path, kind: str, jobs: int, snapshot: str,
                  tables: Sequence[TableName]) -> list[str | Path]:
    argv: list[str | Path] = [program, "--format=directory", f"--jobs={jobs}", "--compress=0", "--no-sync",
                              f"--file={folder}", f"--snapshot={snapshot}", f"--lock-wait-timeout={LOCK_WAIT}"]
    if kind == "schema":
        argv.append("--schema-only")
    elif kind == "data":
        argv.append("--data-only")
    elif kind == "tables":
        argv.append("--strict-names")
        # Quoted, so pg_dump matches the exact names and never treats a character as a pattern.
        argv += [f'--table="{table.schema}"."{table.name}"' for table in tables]
    return argv


def _failed(returncode: int, stderr: str, source: Target | None) -> None:
    """pg_dump's failure; on a replica, replay that cancelled it is explained (the dump can be taken again)."""
    error = ToolError("pg_dump", returncode, stderr)
    if source is not None and "conflict with recovery" in stderr:
        error.hint = (f"replica {source.name} cancelled the dump to replay the primary's changes: raise its "
                      "max_standby_streaming_delay, or take the backup from the primary")
    raise error


def _stream_dump(process: Any, folder: Path, repository: Repository, key_prefix: str, recipients: list[Any],
                 level: int, jobs: int, progress: Progress | None) -> dict[str, StoredObject]:
    """Store every file pg_dump writes while it writes them; stop everything at the first failure.

    Table data is compressed on `jobs` of zstd's own threads (the stored frame is the same single standard
    frame): one thread per file fell behind pg_dump on the largest table, whose last second was then compressed
    on one core after pg_dump had exited (measured at seed scale 30: 1.1-1.5 s after pg_dump's exit, 0.4 s with
    two threads)."""

    def handle(name: str, growing: GrowingFile) -> StoredObject:
        try:
            rows = name.endswith(".dat") and name[:-4].isdigit()
            return store(repository, key_prefix + object_name(name), growing, recipients, level=level,
                         count_rows=rows, progress=progress, threads=jobs if rows else 0)
        finally:
            if name != "toc.dat":  # kept for pg_restore --list; the data files go as soon as they are stored
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()

    return stream_folder(process, folder, handle, wanted=lambda _: True, workers=jobs + 1)


def create(settings: Settings, env: Environment, kind: str, tables: Sequence[TableName] = (), *,
           notify: Callable[[str], None] = lambda _: None,
           progress: Callable[[int], Progress | None] = lambda _: None,
           source: Target | None = None) -> BackupReport:
    """Take a logical backup of `env` into its repository; nothing counts as a backup until its manifest exists.

    `source` is a replica to dump from (replicas/routing.py): the same data as the primary's at the replica's
    replayed position, without the dump's reads on the primary."""
    _check_request(kind, tables)
    recipient_keys = age_keys.recipients(settings, env)
    recipients = age_keys.parse_recipients(recipient_keys)
    age_keys.signer(settings, env)  # before any work: a backup that cannot be signed would never be used
    repository = open_repository(settings, env)
    jobs = env.backup.jobs
    started = datetime.now(UTC)
    clock = time.monotonic()
    with connect(settings, env, "backup", target=source) as meta, \
            connect(settings, env, "backup snapshot", autocommit=False, target=source) as snap:
        identity = _one(meta.execute(queries.load("backup/server_identity")).fetchone())
        version, version_num, encoding, collate, ctype = identity
        system_identifier, timeline = _control(meta)
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        snapshot, start_lsn = _one(snap.execute(queries.load("backup/snapshot")).fetchone())
        with snap.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            present = cursor.execute(queries.load("backup/tables")).fetchall()
        selection = _resolve_tables(present, tables, env) if kind == "tables" else []
        chosen = {(t.schema, t.name) for t in selection}
        estimate = sum(row["bytes"] for row in present if not chosen or (row["schema"], row["name"]) in chosen)
        name = _unique_name(repository, env, kind)
        key_prefix = prefix(str(name))
        client = dump_client(settings, version_num // 10000)
        origin = "" if source is None else f" from replica {source.name}"
        notify(f"{env.name}: backing up database {database_of(settings, env)!r}{origin} as {name} "
               f"(pg_dump {client.version}, {jobs} jobs) into {repository.url}")
        with scratch(settings, f"backup-{name}") as work:
            folder = work / "dump"
            folder.mkdir()
            log = work / "pg_dump.log"
            argv = _pg_dump_argv(client.program("pg_dump"), folder, kind, jobs, snapshot, selection)
            try:
                with log.open("wb") as errors:
                    process = spawn(argv, env=client_environ(settings, env, target=source), stderr=errors)
                    stored = _stream_dump(process, folder, repository, key_prefix, recipients,
                                          env.backup.compress_level, jobs,
                                          progress(estimate if kind != "schema" else 0))
                if process.returncode != 0:
                    _failed(process.returncode, log.read_text(errors="replace"), source)
                entries = toc.read_list(client.program("pg_restore"), folder)
                # Still inside: a server lost after pg_dump finished (a Patroni leader killed) leaves nothing either.
                stop_lsn_row = meta.execute(queries.load("backup/wal_position")).fetchone()
            except BaseException:
                # An abandoned backup has no manifest, so it never counts; its objects go too, best effort.
                with contextlib.suppress(Exception):
                    repository.delete(info.key for info in repository.list(key_prefix))
                raise
        snap.rollback()
    data = toc.data_files(entries)
    objects = []
    counted: dict[str, int] = {}
    for file, item in sorted(stored.items()):
        table = None
        if file.endswith(".dat") and file[:-4].isdigit() and int(file[:-4]) in data:
            entry = data[int(file[:-4])]
            table = f"{entry.schema}.{entry.name}"
            counted[table] = item.rows or 0
        objects.append(ObjectEntry(name=object_name(file), file=file, size=item.size, sha256=item.sha256,
                                   plain_size=item.plain_size, table=table,
                                   rows=item.rows if table else None))
    table_entries = {(e.schema or "", e.name) for e in entries if e.kind in ("TABLE", "TABLE DATA")}
    manifest = Manifest(
        name=str(name), env=env.name, type=kind, database=database_of(settings, env), server_version=version,
        server_version_num=version_num, system_identifier=system_identifier, timeline=timeline,
        start_lsn=start_lsn, stop_lsn=stop_lsn_row[0] if stop_lsn_row else None,
        started_at=started, finished_at=datetime.now(UTC),
        tool={"cuisine-db": __version__, "pg_dump": client.version},
        dump={"format": "directory", "jobs": jobs, "snapshot": "exported", "encoding": encoding,
              "collate": collate, "ctype": ctype, "selection": [f"{t.schema}.{t.name}" for t in selection],
              "source": "primary" if source is None else f"replica {source.name}"},
        encryption={"algorithm": "age-x25519", "recipients": [age_keys.fingerprint(r) for r in recipient_keys]},
        compression={"algorithm": "zstd", "level": env.backup.compress_level},
        tables=tuple(TableEntry(schema, table_name, counted.get(f"{schema}.{table_name}"))
                     for schema, table_name in sorted(table_entries)),
        objects=tuple(objects),
    )
    manifest = catalog.publish(settings, env, repository, manifest)
    return BackupReport(
        name=str(name), env=env.name, type=kind, repository=repository.url, objects=len(objects),
        size=manifest.size, plain_size=manifest.plain_size,
        tables={t.qualified: t.rows for t in manifest.tables}, rows=sum(counted.values()),
        seconds=round(time.monotonic() - clock, 3), pg_dump=client.version,
    )
