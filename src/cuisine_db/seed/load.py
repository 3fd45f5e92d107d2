"""Replace the Cuisine Code tables' rows with generated data, in one transaction, with COPY."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.seed.generate import CuisineData


@contextmanager
def _server_errors(env: Environment) -> Iterator[None]:
    """A statement the server rejects ends the load; the transaction guarantees nothing was kept."""
    try:
        yield
    except psycopg.Error as exc:
        reason = exc.diag.message_primary or str(exc).strip()
        raise FailedError(f"seeding {env.name!r} failed: {reason}",
                          hint="nothing was changed: the whole load runs in one transaction") from None


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What was loaded: rows per table, COPY bytes sent, table bytes on disk, and the time it took."""

    env: str
    scale: int
    seed: int
    until: date
    rows: dict[str, int]
    bytes: int
    table_bytes: int
    seconds: float


def replace_rows(settings: Settings, env: Environment, *, scale: int, seed: int = 42, until: date | None = None,
                 yes: bool = False, ask: Ask | None = None, notify: Callable[[str], None] = lambda _: None
                 ) -> SeedReport:
    """db-seed, journaled as `seed` with the rows per table: on a protected environment the confirmation first,
    then `load`."""
    arguments = {"scale": scale, "seed": seed, "until": until.isoformat() if until else None}
    with journaled(settings, env, "seed", arguments) as entry:
        confirmation.require(env, "Replacing every row of the Cuisine Code tables with generated data", yes=yes,
                             ask=ask)
        notify(f"{env.name}: generating scale {scale} and loading it with COPY")
        report = load(settings, env, scale=scale, seed=seed, until=until, notify=notify)
        entry.details["rows"] = report.rows
    return report


def load(settings: Settings, env: Environment, *, scale: int, seed: int = 42, until: date | None = None,
         notify: Callable[[str], None] = lambda _: None) -> SeedReport:
    """Truncate the Cuisine Code tables and COPY freshly generated rows into them; all or nothing. It asks no one:
    the lower level under `replace_rows`, for tests and benchmarks that build fixtures on purpose."""
    data = CuisineData(scale, seed, until)
    tables = data.tables()
    names = [table.name for table in tables]
    rows: dict[str, int] = {}
    sent = 0
    started = time.monotonic()
    with connect(settings, env, "seed", autocommit=False) as conn, _server_errors(env):
        missing = [row[0] for row in conn.execute(queries.load("seed/missing_tables"), {"tables": names})]
        if missing:
            raise UsageError(f"environment {env.name!r} has no table {', '.join(missing)}",
                             hint=f"apply the migrations first: make db-migrate env={env.name}")
        identifiers = sql.SQL(", ").join(sql.Identifier(name) for name in names)
        conn.execute(queries.load("seed/truncate").format(tables=identifiers))
        with conn.cursor() as cursor:
            for table in tables:
                statement = queries.load("seed/copy").format(
                    table=sql.Identifier(table.name),
                    columns=sql.SQL(", ").join(sql.Identifier(column) for column in table.columns),
                )
                count = 0
                # The queued writer sends on its own thread, so generating the next chunk overlaps the server's work.
                with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
                    for chunk in table.chunks:
                        copy.write(chunk)
                        count += chunk.count(b"\n")
                        sent += len(chunk)
                rows[table.name] = count
                notify(f"  {table.name}: {count:,} rows")
            for table in tables:
                if "id" in table.columns:
                    cursor.execute(queries.load("seed/reset_identity").format(table=sql.Identifier(table.name)),
                                   {"table": table.name})
        conn.commit()
        seconds = time.monotonic() - started
        conn.autocommit = True
        conn.execute(queries.load("seed/analyze").format(tables=identifiers))
        row = conn.execute(queries.load("seed/table_bytes"), {"tables": names}).fetchone()
    return SeedReport(env=env.name, scale=scale, seed=seed, until=data.until, rows=rows, bytes=sent,
                      table_bytes=int(row[0]) if row else 0, seconds=seconds)
