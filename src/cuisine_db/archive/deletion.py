"""Deleting what an archive holds, in short batches that never hold locks for long.

The ledger (primary key and row version of every archived row, in key order) is read `batch` lines at a time
into a temporary table; each batch is one transaction with `lock_timeout` and `statement_timeout` that deletes
the rows still at their exported version (`xmin`), looked up by primary key. A row updated since the export has a
new version and stays, as does a row someone started to reference; rows already gone (an interrupted run
deleted them, or someone else did) are counted, not an error. Running the same ledger again is therefore
harmless, which is what makes a killed run resumable: the next run simply goes through it again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.archive.table import ArchiveTable, one_row, pairs, unreferenced
from cuisine_db.errors import UnavailableError
from cuisine_db.waiting import retry

BATCH_TABLE = "cuisine_db_archive_batch"
VERSION_COLUMN = "cuisine_db_row_version"
STATEMENT_TIMEOUT = "60s"
NOTIFY_EVERY_S = 5.0
# What a busy table does to a batch; each is rolled back and tried again after a short wait.
_TRANSIENT = (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled, psycopg.errors.DeadlockDetected,
              psycopg.errors.SerializationFailure, psycopg.errors.ForeignKeyViolation)


@dataclass(frozen=True, slots=True)
class DeletionResult:
    """What one pass over a ledger did: `deleted` now, `gone` before (an earlier run or someone else), `kept`
    (changed since the export, or referenced since)."""

    rows: int
    deleted: int
    gone: int
    kept: int
    batches: int
    seconds: float


def _batches(handle: BinaryIO, size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in handle:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _one_batch(conn: psycopg.Connection[Any], table: ArchiveTable, lines: list[bytes], lock_timeout: str,
               statement: sql.Composed) -> tuple[int, int]:
    batch = sql.Identifier(BATCH_TABLE)
    with conn.transaction():
        conn.execute(queries.load("archive/batch_settings"),
                     {"lock_timeout": lock_timeout, "statement_timeout": STATEMENT_TIMEOUT})
        with conn.cursor() as cursor, cursor.copy(queries.load("archive/load_batch").format(batch=batch)) as copy:
            copy.write(b"".join(lines))
        row = one_row(conn.execute(statement).fetchone())
    return int(row[0]), int(row[1])


def delete_archived(conn: psycopg.Connection[Any], table: ArchiveTable, ledger: Path, *, batch_size: int,
                    pause: float, lock_timeout: str, retries: int,
                    notify: Callable[[str], None] = lambda _: None) -> DeletionResult:
    """Go through the ledger batch by batch on `conn` (autocommit), deleting what may be deleted."""
    started = time.monotonic()
    batch = sql.Identifier(BATCH_TABLE)
    version = sql.Identifier(VERSION_COLUMN)
    conn.execute(queries.load("archive/drop_batch_table").format(batch=batch))
    conn.execute(queries.load("archive/batch_table").format(batch=batch, key=table.key_sql(), version=version,
                                                            table=table.ident()))
    statement = queries.load("archive/delete_batch").format(
        table=table.ident(), batch=batch, version=version, match=pairs("t", table.key, "b", table.key),
        unreferenced=unreferenced(table))
    rows = deleted = gone = kept = batches = 0
    told = time.monotonic()
    try:
        with ledger.open("rb") as handle:
            for lines in _batches(handle, batch_size):
                try:
                    done, present = retry(functools.partial(_one_batch, conn, table, lines, lock_timeout, statement),
                                          on=_TRANSIENT, attempts=retries + 1, pause=0.5, longest=5.0)
                except _TRANSIENT as exc:
                    raise UnavailableError(
                        f"a batch of {table.qualified} could not be deleted after {retries} retries "
                        f"({exc.diag.message_primary or type(exc).__name__}); {deleted:,} rows were deleted "
                        "before it, the rest are still in the table and in the archive",
                        hint="run the same command again to continue where it stopped (lock_timeout and "
                             "lock_retries in cuisine-db.toml set the patience)") from None
                rows += len(lines)
                deleted += done
                kept += present - done
                gone += len(lines) - present
                batches += 1
                if time.monotonic() - told > NOTIFY_EVERY_S:
                    notify(f"  deleted {deleted:,} rows so far ({rows:,} of the archive's rows gone through)")
                    told = time.monotonic()
                if pause and done:  # batches an earlier run already deleted need no rest
                    time.sleep(pause)
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(queries.load("archive/drop_batch_table").format(batch=batch))
    return DeletionResult(rows, deleted, gone, kept, batches, round(time.monotonic() - started, 3))
