"""The runbook's "verify statistics are up to date: VACUUM ANALYZE table_name" (db-vacuum-analyze), with the time
since the last (auto)vacuum and (auto)analyze before and after."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.table_names import Table, find_table
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.waiting import wait_for


@dataclass(frozen=True, slots=True)
class Maintenance:
    """What pg_stat_all_tables says about a table's upkeep at one moment."""

    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    vacuums: int
    analyzes: int
    live_rows: int
    dead_rows: int
    changed_since_analyze: int
    now: datetime

    def latest(self, what: str) -> tuple[datetime | None, str]:
        """The later of the manual and automatic run of `what` ('vacuum' or 'analyze'), and which one it was."""
        manual, auto = (self.last_vacuum, self.last_autovacuum) if what == "vacuum" else \
            (self.last_analyze, self.last_autoanalyze)
        if manual is None and auto is None:
            return None, "never"
        if auto is None or (manual is not None and manual >= auto):
            return manual, "manual"
        return auto, "automatic"


@dataclass(frozen=True, slots=True)
class TableUpkeep:
    table: str
    before: Maintenance
    after: Maintenance
    seconds: float


def _state(conn: psycopg.Connection[Any], oid: int) -> Maintenance:
    conn.execute(queries.load("performance/clear_stats_snapshot"))
    return queries.one(conn, Maintenance, queries.load("performance/table_maintenance"), {"oid": oid})


def _counted(conn: psycopg.Connection[Any], oid: int, before: Maintenance) -> Maintenance | None:
    """The table's state once the statistics count a VACUUM and an ANALYZE since `before`; None until then."""
    after = _state(conn, oid)
    return after if after.vacuums > before.vacuums and after.analyzes > before.analyzes else None


def _table_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(names):
        raise UsageError(f"tables {text!r}: give one or more names separated by commas", hint="e.g. table=recipes")
    return names


def vacuum_analyze(settings: Settings, env: Environment, tables: str, *, notify: Callable[[str], None] = lambda _: None
                   ) -> list[TableUpkeep]:
    """db-vacuum-analyze, journaled as `vacuum-analyze` with each table's seconds: VACUUM (ANALYZE) each table in
    turn, under the environment's lock_timeout."""
    with journaled(settings, env, "vacuum-analyze", {"table": tables}) as entry:
        done = _vacuum_analyze(settings, env, tables, notify)
        entry.details["seconds"] = {item.table: item.seconds for item in done}
    return done


def _vacuum_analyze(settings: Settings, env: Environment, tables: str, notify: Callable[[str], None]
                    ) -> list[TableUpkeep]:
    done = []
    with connect(settings, env, "vacuum-analyze") as conn:
        targets: list[Table] = [find_table(conn, name) for name in _table_list(tables)]
        conn.execute(queries.load("performance/set_session"), {"name": "lock_timeout", "value": env.lock_timeout})
        for target in targets:
            before = _state(conn, target.table_oid)
            notify(f"VACUUM (ANALYZE) {target.shown}")
            started = time.monotonic()
            try:
                conn.execute(queries.load("performance/vacuum_analyze").format(
                    table=sql.Identifier(target.schema, target.table_name)))
            except psycopg.errors.LockNotAvailable:
                raise FailedError(f"VACUUM of {target.shown} waited longer than lock_timeout={env.lock_timeout} "
                                  "(a session holds a conflicting lock, e.g. DDL or another VACUUM)",
                                  hint="see who with: make db-show-locks") from None
            seconds = time.monotonic() - started
            after = _state(conn, target.table_oid)
            # Before PostgreSQL 15 the statistics collector reports asynchronously: wait for it to catch up.
            if after.vacuums <= before.vacuums or after.analyzes <= before.analyzes:
                after = wait_for(functools.partial(_counted, conn, target.table_oid, before), seconds=10,
                                 interval=0.2) or _state(conn, target.table_oid)
            done.append(TableUpkeep(target.shown, before, after, round(seconds, 3)))
    return done
