"""Bringing an archive's rows back into their table, in one transaction, without duplicating any.

The rows stream from the repository (age, zstd; size, sha256 and row count checked against the manifest) into a
temporary table, then `INSERT ... ON CONFLICT (primary key) DO NOTHING` adds those the table lacks: a row
present (never deleted, restored before, or changed and kept) stays as it is. Running it twice inserts nothing
the second time. Foreign keys, checks and triggers apply as to any insert; a violation rolls everything back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.archive import catalog
from cuisine_db.archive.catalog import Outcome
from cuisine_db.archive.export import ROWS, ROWS_TABLE, object_name
from cuisine_db.archive.table import inspect, quoted
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.table_names import find_table
from cuisine_db.errors import FailedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage.pipeline import fetch
from cuisine_db.whoami import who

LOCK_TIMEOUT = "30s"


@dataclass(frozen=True, slots=True)
class RestoreReport:
    env: str
    archive: str
    table: str
    rows: int
    inserted: int
    present: int
    seconds: float


class _CopySink:
    """Feeds COPY FROM STDIN; a server error becomes FailedError, which the pipeline raises as it is."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy

    def write(self, data: bytes) -> int:
        try:
            self.copy.write(data)
        except psycopg.Error as exc:
            raise FailedError(f"the server refused the archived rows: {str(exc).strip()}") from None
        return len(data)


def _columns_fit(manifest_columns: list[str], present: list[str], key: list[str], manifest_key: list[str],
                 table: str, name: str) -> None:
    missing = [c for c in manifest_columns if c not in present]
    if missing:
        raise UsageError(f"{table} no longer has column(s) {', '.join(missing)} that archive {name} holds",
                         hint="restore by hand into a table of the archive's shape (docs/break-glass.md: schema.sql)")
    if key != manifest_key:
        raise UsageError(f"{table}'s primary key is now ({', '.join(key)}), archive {name} was taken with "
                         f"({', '.join(manifest_key)}): rows cannot be matched", hint="restore by hand "
                         "(docs/break-glass.md)")


def restore(settings: Settings, env: Environment, reference: str, table_text: str | None = None, *,
            yes: bool = False, ask: Ask | None = None, notify: Callable[[str], None] = lambda _: None,
            trust_unsigned: bool = False) -> RestoreReport:
    """Insert the archive's rows that its table lacks; record the restore next to the archive. A protected
    environment needs the confirmation first."""
    confirmation.require(env, f"Bringing back the rows of archive {reference}", yes=yes, ask=ask)
    started = time.monotonic()
    with connect(settings, env, "archive-data restore", autocommit=False) as conn:
        named = None
        if table_text is not None:
            found_table = find_table(conn, table_text)
            named = f"{found_table.schema}.{found_table.table_name}"
            conn.rollback()
        found = catalog.find(settings, env, reference, named, trust_unsigned=trust_unsigned)
        manifest = found.manifest
        identities = age_keys.identities(settings, [env] + ([found.source_env] if found.source_env else []))
        dump = manifest.dump
        qualified = manifest.tables[0].qualified
        if named is not None and named != qualified:
            raise UsageError(f"archive {manifest.name} holds rows of {qualified}, not {named}")
        conn.execute(queries.load("archive/session"))
        conn.execute(queries.load("archive/set_lock_timeout"), {"value": LOCK_TIMEOUT})
        table = inspect(conn, quoted(manifest.tables[0].schema, manifest.tables[0].name), quoted(dump["column"]))
        columns: list[str] = list(dump["columns"])
        _columns_fit(columns, table.copied, table.key, list(dump["primary_key"]), qualified, manifest.name)
        entry = next(item for item in manifest.objects if item.file == ROWS)
        expected = manifest.tables[0].rows or 0
        notify(f"{env.name}: bringing back the {expected:,} rows of {qualified} in {manifest.name}")
        rows_table = sql.Identifier(ROWS_TABLE)
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        try:
            conn.execute(queries.load("archive/restore_rows_table").format(rows=rows_table, columns=column_list,
                                                                          table=table.ident()))
            with conn.cursor() as cursor, cursor.copy(queries.load("archive/restore_copy").format(
                    rows=rows_table, columns=column_list)) as copy:
                fetched = fetch(found.repository, catalog.prefix(manifest.name) + entry.name, _CopySink(copy),
                                identities, expect_size=entry.size, expect_sha256=entry.sha256, count_rows=True)
            if fetched.rows != expected or not entry.fits(fetched.plain_size):
                raise FailedError(f"{manifest.name}: {object_name(ROWS)} holds {fetched.rows} rows, the manifest "
                                  f"says {expected}; nothing was restored")
            inserted = conn.execute(queries.load("archive/restore_insert").format(
                table=table.ident(), columns=column_list, rows=rows_table, key=table.key_sql())).rowcount
            conn.commit()
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
            raise UnavailableError(f"another session held a lock on {qualified} for more than {LOCK_TIMEOUT}; "
                                   "nothing was restored", hint="run it again") from None
        except psycopg.errors.IntegrityConstraintViolation as exc:
            conn.rollback()
            raise FailedError(f"bringing back {manifest.name} would break a constraint of {qualified}: "
                              f"{exc.diag.message_primary} ({exc.diag.message_detail or ''}); nothing was restored",
                              hint="a referenced row is gone, or another unique key now holds the value: restore "
                                   "or fix that first") from None
        except psycopg.errors.InsufficientPrivilege as exc:
            conn.rollback()
            raise UnavailableError(f"{env.name}: {exc.diag.message_primary}; nothing was restored",
                                   hint="the environment's own role needs INSERT on the table") from None
        except BaseException:
            conn.rollback()
            raise
    seconds = round(time.monotonic() - started, 3)
    outcome = Outcome(datetime.now(UTC), who(), seconds, {"rows": expected, "inserted": inserted,
                                                          "present": expected - inserted})
    catalog.record(settings, found.source_env or env, found.repository, manifest.name, catalog.RESTORED,
                   outcome.to_json())
    return RestoreReport(env.name, manifest.name, qualified, expected, inserted, expected - inserted, seconds)

