"""Around pg_restore's load in a full restore (restore.py): which post-data entries may run beside the last table
still loading (from the archive's own dependencies), whether the ones the rest needs exist yet, autovacuum kept
off the new tables while they load, tables analysed in post-data's tail, and each table's rows checked against the
manifest where they arrived."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.backup import toc
from cuisine_db.backup.manifest import TableEntry
from cuisine_db.backup.sections import Split
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError


def post_data_split(schema: dict[int, tuple[str, frozenset[int]]], entries: list[toc.TocEntry],
                    post_data: list[toc.TocEntry]) -> Callable[[int], Split]:
    """For a data item being loaded: the post-data entries that may run meanwhile (they depend on nothing of its
    table), and the others (its table's indexes and constraints, foreign keys referencing it, materialized view
    data, anything not in `schema`: the dependencies `pg_restore --verbose` writes), with what those need of the
    first ones, which go first."""
    tables = {(entry.schema, entry.name): entry.dump_id for entry in entries if entry.kind == "TABLE"}
    data = {entry.dump_id: (entry.schema, entry.name) for entry in entries if entry.kind == "TABLE DATA"}

    def split(data_id: int) -> Split:
        table = tables.get(data.get(data_id, (None, "")))
        closures = {entry.dump_id: toc.closure(schema, entry.dump_id) for entry in post_data}
        first: list[int] = []
        later: list[int] = []
        for entry in post_data:
            free = (table is not None and entry.dump_id in schema and entry.kind != "MATERIALIZED VIEW DATA"
                    and table not in closures[entry.dump_id])
            (first if free else later).append(entry.dump_id)
        needed = frozenset(first) & frozenset().union(*(closures[item] for item in later))
        used = set().union(*(schema[item][1] for item in later if item in schema))
        known = all(item in schema for item in later)
        settled = frozenset(name for name, dump_id in tables.items()
                            if known and dump_id != table and dump_id not in used and name[0] is not None)
        return Split(sorted(first, key=lambda item: item not in needed), later, needed,
                     settled)  # type: ignore[arg-type]  # TABLE entries always have a schema

    return split


class Presence:
    """Whether post-data entries (constraints and indexes) exist yet in the database being restored: each is
    committed on its own, so once it is in the catalog it is done. Other kinds never count as done here (the
    run that makes them is waited for instead). One connection, opened at the first question."""

    def __init__(self, settings: Settings, env: Environment, database: str, entries: list[toc.TocEntry]) -> None:
        self.settings, self.env, self.database = settings, env, database
        self.entries = {entry.dump_id: entry for entry in entries}
        self.conn: psycopg.Connection[Any] | None = None

    def __call__(self, wanted: frozenset[int]) -> bool:
        constraints = [self.entries[i] for i in wanted if self.entries[i].kind in ("CONSTRAINT", "FK CONSTRAINT")]
        indexes = [self.entries[i] for i in wanted if self.entries[i].kind == "INDEX"]
        if len(constraints) + len(indexes) != len(wanted) or any(" " not in e.name for e in constraints):
            return False
        if self.conn is None:
            self.conn = connect(self.settings, self.env, "restore load", dbname=self.database)
        tables, names = zip(*(e.name.split(" ", 1) for e in constraints), strict=True) if constraints else ((), ())
        row = self.conn.execute(queries.load("restore/present_objects"), {
            "constraint_schemas": [e.schema for e in constraints], "constraint_tables": list(tables),
            "constraint_names": list(names), "index_schemas": [e.schema for e in indexes],
            "index_names": [e.name for e in indexes]}).fetchone()
        return row is not None and row[0] == len(wanted)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def check_counts(conn: psycopg.Connection[Any], tables: Iterable[TableEntry]) -> dict[str, int]:
    """Each table's row count in the restored database against the manifest's; any difference fails."""
    counted: dict[str, int] = {}
    problems = []
    for table in tables:
        try:
            row = conn.execute(queries.load("restore/count_rows").format(
                table=sql.Identifier(table.schema, table.name))).fetchone()
        except psycopg.errors.UndefinedTable:
            problems.append(f"{table.qualified} is missing")
            continue
        counted[table.qualified] = row[0] if row else 0
        expected = table.rows if table.rows is not None else 0
        if counted[table.qualified] != expected:
            problems.append(f"{table.qualified} has {counted[table.qualified]} rows, the manifest says {expected}")
    if problems:
        raise FailedError("the restored database does not match the backup's manifest: " + "; ".join(problems),
                          hint="nothing was swapped; the environment is as it was")
    return counted


def loaded_rows(conn: psycopg.Connection[Any], tables: Iterable[TableEntry]) -> dict[str, int]:
    """The rows a load inserted into each table of a fresh database, checked against the manifest's.

    The server's own counter of inserted rows (pg_stat_user_tables.n_tup_ins: exact since PostgreSQL 15 keeps
    statistics in shared memory, and a backend flushes its counts when it exits) answers without reading the
    tables. Any table whose counter disagrees with the manifest (statistics off, a pg_restore session not gone
    yet, PostgreSQL 14's collector, which may drop a message) is counted with count(*), which decides."""
    wanted = list(tables)
    inserted: dict[str, int] = {}
    if conn.info.server_version >= 150000:
        inserted = {f"{schema}.{name}": rows
                    for schema, name, rows in conn.execute(queries.load("restore/inserted_rows")).fetchall()}
    agreed = {t.qualified: t.rows or 0 for t in wanted if inserted.get(t.qualified) == (t.rows or 0)}
    return agreed | check_counts(conn, [t for t in wanted if t.qualified not in agreed])


def analyze(settings: Settings, env: Environment, database: str, tables: list[tuple[str, str]], jobs: int) -> None:
    """ANALYZE every table, on `jobs` connections at once (as vacuumdb --jobs does): a restored database has no
    statistics, and the first queries after the swap should not be planned blind."""
    pending: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    for table in tables:
        pending.put(table)

    def work() -> None:
        with connect(settings, env, "restore analyze", dbname=database) as conn:
            while True:
                try:
                    table = pending.get_nowait()
                except queue.Empty:
                    return
                conn.execute(queries.load("restore/analyze_tables").format(tables=sql.Identifier(*table)))

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(tables)))) as pool:
        for done in [pool.submit(work) for _ in range(max(1, min(jobs, len(tables))))]:
            done.result()


class EarlyAnalyze:
    """ANALYZE, while the last post-data entries run, the tables post-data is done with (Split.settled: their
    indexes, expression indexes and statistics objects exist, and nothing still to come locks them), one at a
    time and only while the database being restored has fewer working sessions than `jobs`: a core to spare
    at the tail of post-data, where the foreign keys of the last table run one after the other. What it has not
    reached when post-data ends is analysed with the rest."""

    def __init__(self, settings: Settings, env: Environment, database: str, tables: list[tuple[str, str]],
                 jobs: int) -> None:
        self.settings, self.env, self.database, self.tables, self.jobs = settings, env, database, tables, jobs
        self.stopping = threading.Event()
        self.analyzed: list[tuple[str, str]] = []
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, plan: Split) -> None:
        wanted = [table for table in self.tables if table in plan.settled]
        if wanted and self.thread is None:
            self.thread = threading.Thread(target=self._run, args=(wanted,), name="restore-analyze", daemon=True)
            self.thread.start()

    def _run(self, wanted: list[tuple[str, str]]) -> None:
        try:
            with connect(self.settings, self.env, "restore analyze", dbname=self.database) as conn:
                for table in wanted:
                    while not self.stopping.is_set():
                        row = conn.execute(queries.load("restore/working_sessions")).fetchone()
                        if row is None or row[0] < self.jobs:
                            break
                        self.stopping.wait(0.05)
                    if self.stopping.is_set():
                        return
                    conn.execute(queries.load("restore/analyze_tables").format(tables=sql.Identifier(*table)))
                    self.analyzed.append(table)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> list[tuple[str, str]]:
        """Stop starting ANALYZEs (one running ends first); the tables analysed."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return list(self.analyzed)


def pause_autovacuum(settings: Settings, env: Environment, database: str) -> list[tuple[str, str]]:
    """Keep autovacuum off the fresh database's tables while they load: its insert-triggered VACUUM and ANALYZE
    of a half-loaded table would take CPU from the load, do again what the restore's own ANALYZE does, and hold
    the lock that ANALYZE then waits for (deadlock_timeout) before autovacuum yields it. Tables that set
    autovacuum_enabled themselves keep their setting; a table this role may not alter is left as it is.
    Returns the tables paused, for resume_autovacuum."""
    paused = []
    with connect(settings, env, "restore load", dbname=database) as conn:
        for schema, name in conn.execute(queries.load("restore/autovacuum_tables")).fetchall():
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute(queries.load("restore/pause_autovacuum").format(table=sql.Identifier(schema, name)))
                paused.append((schema, name))
    return paused


def resume_autovacuum(settings: Settings, env: Environment, database: str, tables: list[tuple[str, str]]) -> None:
    """Give the paused tables back to autovacuum's defaults (before the swap: nothing of the pause stays)."""
    if not tables:
        return
    with connect(settings, env, "restore load", dbname=database) as conn:
        for table in tables:
            conn.execute(queries.load("restore/resume_autovacuum").format(table=sql.Identifier(*table)))
