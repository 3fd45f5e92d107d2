"""Exporting old rows into a new archive: one repeatable-read snapshot, four objects through the stream pipeline
(zstd -> age -> sha256), every one read back and checked, and the manifest written last.

Objects, each `<file>.zst.age`:
- `rows.copy`: the rows, as COPY text in primary key order (generated columns left out: they are computed again);
- `ledger.copy`: each row's primary key and row version (`xmin`) at export: deletion removes a row only while it
  is still that version, so a row changed after the export stays in the table;
- `schema.sql`: `pg_dump --schema-only` of the table, from the same snapshot;
- `restore.sql`: a psql script that brings the rows back by hand (docs/break-glass.md).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import __version__
from cuisine_db import sql as queries
from cuisine_db.archive import catalog
from cuisine_db.archive.archive_verify import check_objects
from cuisine_db.archive.catalog import Intent
from cuisine_db.archive.request import ArchiveRequest
from cuisine_db.archive.table import ArchiveTable, inspect, one_row, refuse_references
from cuisine_db.backup.manifest import MANIFEST, VERIFICATION, Manifest, ObjectEntry, TableEntry
from cuisine_db.backup.workspace import database_of, dump_client
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError
from cuisine_db.postgres.connect import client_environ
from cuisine_db.postgres.runner import run
from cuisine_db.storage import Repository
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import StoredObject, store
from cuisine_db.whoami import who

ROWS, LEDGER, SCHEMA, RESTORE = "rows.copy", "ledger.copy", "schema.sql", "restore.sql"
LOCK_WAIT = "60s"
ROWS_TABLE = "archived_rows"


def object_name(file: str) -> str:
    return f"{file}.zst.age"


class _CopyReader:
    """COPY TO STDOUT as a source for the pipeline. A server error becomes UnavailableError, which the pipeline
    raises as it is (any other error would read as an encryption failure)."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.buffer = bytearray()
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) < size):
            try:
                chunk = self.copy.read()
            except psycopg.Error as exc:
                raise UnavailableError(f"the server stopped sending rows: {str(exc).strip()}") from None
            if chunk:
                self.buffer += chunk
            else:
                self.done = True
        size = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def _stream(conn: psycopg.Connection[Any], statement: sql.Composed, cutoff: datetime, repository: Repository,
            key: str, recipients: Sequence[Any], level: int) -> StoredObject:
    with conn.cursor() as cursor, cursor.copy(statement, {"cutoff": cutoff}) as copy:
        return store(repository, key, _CopyReader(copy), recipients, level=level, count_rows=True, overwrite=False)


def _schema(settings: Settings, env: Environment, table: ArchiveTable, snapshot: str, server_major: int
            ) -> tuple[bytes, str]:
    """pg_dump's definition of the table as the snapshot sees it, and pg_dump's version."""
    client = dump_client(settings, server_major)
    quoted = '"{}"."{}"'.format(table.schema.replace('"', '""'), table.name.replace('"', '""'))
    result = run([client.program("pg_dump"), "--schema-only", f"--snapshot={snapshot}", "--strict-names",
                  f"--table={quoted}", f"--lock-wait-timeout={LOCK_WAIT}"], env=client_environ(settings, env))
    return result.stdout.encode(), client.version


def restore_script(conn: psycopg.Connection[Any], table: ArchiveTable, name: str, rows: int, cutoff: datetime
                   ) -> bytes:
    """The psql script that brings the rows back by hand: the same statements `restore=1` runs."""
    rows_table = sql.Identifier(ROWS_TABLE)
    columns = table.copied_sql()
    statements = [
        queries.load("archive/restore_rows_table").format(rows=rows_table, columns=columns, table=table.ident()),
        queries.load("archive/restore_insert").format(table=table.ident(), columns=columns, rows=rows_table,
                                                      key=table.key_sql()),
    ]
    copy = sql.SQL("\\copy {rows} ({columns}) FROM pstdin").format(rows=rows_table, columns=columns)
    lines = [
        f"-- Brings back the {rows:,} rows of {table.qualified} archived in {name} (older than {cutoff.isoformat()});",
        "-- rows the table already holds (same primary key) are left as they are. The rows come on standard input:",
        "-- age --decrypt --identity KEY rows.copy.zst.age | zstd --decompress --quiet --stdout \\",
        "--   | psql -X -v ON_ERROR_STOP=1 --single-transaction -f restore.sql",
        "SET client_encoding = 'UTF8';",
        statements[0].as_string(conn) + ";",
        copy.as_string(conn),
        statements[1].as_string(conn) + ";",
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True, slots=True)
class Exported:
    """A new archive, complete: its manifest is stored and its objects were read back and checked."""

    manifest: Manifest
    table: ArchiveTable
    seconds: float


def _identity(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    return one_row(conn.execute(queries.load("backup/server_identity")).fetchone())


def _control(conn: psycopg.Connection[Any]) -> tuple[str | None, int | None]:
    try:
        row = conn.execute(queries.load("backup/control")).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None, None
    return (row[0], row[1]) if row else (None, None)


def export(settings: Settings, env: Environment, meta: psycopg.Connection[Any], repository: Repository,
           request: ArchiveRequest, identities: list[Any], *, cutoff: datetime | None = None,
           notify: Callable[[str], None] = lambda _: None) -> Exported | None:
    """Archive the rows of `request.table` older than its age as one new archive; None when there are none.
    `cutoff`: the line the confirmed plan drew (the run then archives what the operator agreed to, however long
    the confirmation took); by default the server's clock less the age, now.

    `meta` is the run's own autocommit connection (it holds the run's lock). Nothing is deleted here; if anything
    fails before the manifest is stored, the objects written so far are removed and the archive never existed."""
    recipient_keys = age_keys.recipients(settings, env)
    recipients = age_keys.parse_recipients(recipient_keys)
    level = env.backup.compress_level
    started = datetime.now(UTC)
    version, version_num, _, _, _ = _identity(meta)
    system_identifier, timeline = _control(meta)
    database = database_of(settings, env)
    with connect(settings, env, "archive-data export", autocommit=False) as snap:
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        snap.execute(queries.load("archive/session"))
        now_cutoff, standby = one_row(snap.execute(queries.load("archive/cutoff"),
                                                   {"seconds": request.age.total_seconds()}).fetchone())
        cutoff = cutoff if cutoff is not None else now_cutoff
        if standby:
            raise RefusedError(f"environment {env.name!r} points at a standby: rows can only be deleted on the primary")
        table = inspect(snap, request.table, request.column)
        refuse_references(snap, table, cutoff)
        column = sql.Identifier(table.column)
        rows, oldest, newest = one_row(snap.execute(queries.load("archive/candidates").format(
            table=table.ident(), column=column), {"cutoff": cutoff}).fetchone())
        if rows == 0:
            snap.rollback()
            return None
        snapshot, start_lsn = snap.execute(queries.load("backup/snapshot")).fetchone() or (None, None)
        name = catalog.unique_name(repository, env.name)
        folder = catalog.prefix(name)
        notify(f"{env.name}: archiving {rows:,} rows of {table.qualified} with {table.column} before "
               f"{cutoff:%Y-%m-%d %H:%M:%S} UTC as {name} in {repository.url}")
        catalog.sign_and_put(settings, env, repository, folder + catalog.INTENT, Intent(
            env.name, database, table.qualified, table.column, cutoff, request.older_than, started, who()).to_json(),
            overwrite=False)
        try:
            schema, pg_dump = _schema(settings, env, table, str(snapshot), version_num // 10000)
            stored = {
                SCHEMA: store(repository, folder + object_name(SCHEMA), io.BytesIO(schema), recipients, level=level,
                              overwrite=False),
                RESTORE: store(repository, folder + object_name(RESTORE),
                               io.BytesIO(restore_script(snap, table, name, rows, cutoff)), recipients, level=level,
                               overwrite=False),
                ROWS: _stream(snap, queries.load("archive/export_rows").format(
                    columns=table.copied_sql(), table=table.ident(), column=column, key=table.key_sql()),
                    cutoff, repository, folder + object_name(ROWS), recipients, level),
                LEDGER: _stream(snap, queries.load("archive/export_ledger").format(
                    key=table.key_sql(), table=table.ident(), column=column),
                    cutoff, repository, folder + object_name(LEDGER), recipients, level),
            }
            snap.rollback()
            for file in (ROWS, LEDGER):
                if stored[file].rows != rows:
                    raise FailedError(f"{name}: the server counted {rows:,} old rows but sent {stored[file].rows:,} "
                                      f"in {file}; nothing was deleted")
            manifest = Manifest(
                name=name, env=env.name, type=catalog.TYPE, database=database, server_version=version,
                server_version_num=version_num, system_identifier=system_identifier, timeline=timeline,
                start_lsn=start_lsn, stop_lsn=None, started_at=started, finished_at=datetime.now(UTC),
                tool={"cuisine-db": __version__, "pg_dump": pg_dump},
                dump={"format": "copy-text", "encoding": "UTF8", "snapshot": "repeatable read",
                      "table": table.qualified, "column": table.column, "column_type": table.column_type,
                      "older_than": request.older_than, "cutoff": cutoff.isoformat(), "oldest": oldest,
                      "newest": newest, "primary_key": table.key, "columns": table.copied,
                      "ledger": "primary key columns, then the row version (xmin) at export"},
                encryption={"algorithm": "age-x25519",
                            "recipients": [age_keys.fingerprint(r) for r in recipient_keys]},
                compression={"algorithm": "zstd", "level": level},
                tables=(TableEntry(table.schema, table.name, rows),),
                objects=tuple(ObjectEntry(name=object_name(file), file=file, size=item.size, sha256=item.sha256,
                                          plain_size=item.plain_size,
                                          table=table.qualified if file == ROWS else None,
                                          rows=item.rows if file in (ROWS, LEDGER) else None)
                              for file, item in sorted(stored.items())),
            )
            # Read back before the manifest exists: an archive that cannot be decrypted never counts.
            check = check_objects(repository, manifest, identities)
            if not check.ok:
                raise FailedError(f"{name} failed its check after writing: {check.problems[0]}; nothing was deleted",
                                  hint="check the repository's storage and the age keys, then run again")
            catalog.sign_and_put(settings, env, repository, folder + MANIFEST, manifest.to_json(), overwrite=False)
        except BaseException:
            with contextlib.suppress(Exception):
                snap.rollback()
            with contextlib.suppress(Exception):
                repository.delete([info.key for info in repository.list(folder)])
            raise
    catalog.record(settings, env, repository, name, VERIFICATION, check.to_json())
    return Exported(manifest, table, round((datetime.now(UTC) - started).total_seconds(), 3))
