"""The runbook's "identify slow queries" (db-slow-queries): pg_stat_statements, most total time first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose import pgss
from cuisine_db.postgres.target import Target


@dataclass(frozen=True, slots=True)
class SlowQueryReport:
    """The top statements and how far back their statistics reach."""

    env: str
    database: str
    extension_version: str
    stats_reset: datetime | None
    evicted: int | None
    statements: list[pgss.Statement]


def slow_queries(settings: Settings, env: Environment, limit: int = 20,
                 target: Target | None = None) -> SlowQueryReport:
    """Top statements by total execution time, with calls, mean/max, rows, share, cache hit and temp blocks
    (a replica's own statements when routing chose one: `target`)."""
    with connect(settings, env, "slow-queries", target=target) as conn:
        found = pgss.locate(conn, env)
        covered = pgss.coverage(conn, found)
        rows = pgss.top(conn, found, limit)
        return SlowQueryReport(env=env.name, database=conn.info.dbname, extension_version=found.version,
                               stats_reset=covered.reset_at, evicted=covered.evicted, statements=rows)
