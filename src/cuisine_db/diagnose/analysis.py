"""The runbook's weekly index analysis (db-analyze) and its per-table form (db-analyze-table): every check of
`index_checks` plus recommended indexes, from one read of the catalogs and statistics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import args_row

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose import index_checks as checks
from cuisine_db.diagnose import pgss
from cuisine_db.diagnose.index_advice import IndexRecommendation, recommend
from cuisine_db.diagnose.table_names import find_table
from cuisine_db.errors import UnavailableError
from cuisine_db.findings import SEVERITIES, Finding

# Indexes smaller than this are not worth a bloat estimate (10 MB of 8 kB pages).
BLOAT_MIN_PAGES = 1280


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    env: str
    table: str | None
    stats_window: str
    stats_since: datetime | None
    findings: list[Finding]
    recommendations: list[IndexRecommendation]
    advice_method: str | None
    notes: list[str]


@dataclass(frozen=True, slots=True)
class _Window:
    reset_at: datetime | None
    server_started: datetime
    now: datetime


def stats_window(conn: psycopg.Connection[Any]) -> checks.StatsWindow:
    """Since when the usage statistics reach: their reset, else the database's creation (when readable)."""
    row = queries.one(conn, _Window, queries.load("performance/stats_window"))
    if row.reset_at is not None:
        return checks.StatsWindow(row.reset_at, "reset", row.now)
    try:
        with conn.transaction():
            created = conn.execute(queries.load("performance/database_created")).fetchone()
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFile):
        created = None
    if created is None or created[0] is None:
        return checks.StatsWindow(None, "unknown", row.now)
    return checks.StatsWindow(created[0], "created", row.now)


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the checks read: indexes, foreign keys, table activity, bloat figures, builds in progress."""

    window: checks.StatsWindow
    indexes: list[checks.IndexRow]
    foreign_keys: list[checks.ForeignKey]
    tables: list[checks.TableActivity]
    bloat: list[checks.BloatRow]
    being_built: set[int]


def read_catalog(conn: psycopg.Connection[Any], table_oid: int | None) -> Catalog:
    """One read of everything the checks need; per-row catalog functions are avoided (15,000 indexes in ~0.3 s)."""
    params = {"table": table_oid}
    columns = conn.execute(queries.load("performance/table_columns"), params)
    names: dict[tuple[int, int], str] = {(table, number): name for table, number, name in columns}

    # Positional rows (the statement's columns in the dataclass's field order): 15,000 rows build fast.
    def index_row(*values: Any) -> checks.IndexRow:
        return checks.IndexRow(*(*values, [names.get((values[1], key)) for key in values[6]]))

    inventory = queries.for_server("performance/index_inventory", conn.info.server_version)
    with conn.cursor(row_factory=args_row(index_row)) as index_cursor:
        indexes = index_cursor.execute(inventory, params).fetchall()
    index_scans: dict[int, int] = defaultdict(int)
    for index in indexes:
        index_scans[index.table_oid] += index.scans

    def table_row(*values: Any) -> checks.TableActivity:
        return checks.TableActivity(*(*values, index_scans[values[0]]))

    foreign_keys = queries.rows(conn, checks.ForeignKey, queries.load("performance/foreign_keys"), params)
    with conn.cursor(row_factory=args_row(table_row)) as table_cursor:
        tables = table_cursor.execute(queries.load("performance/table_activity"), params).fetchall()
    bloat = queries.rows(conn, checks.BloatRow, queries.load("performance/index_bloat"),
                         {**params, "min_pages": BLOAT_MIN_PAGES})
    building = {row[0] for row in conn.execute(queries.load("performance/indexes_being_built"))}
    return Catalog(stats_window(conn), indexes, foreign_keys, tables, bloat, building)


def _recommendation_finding(item: IndexRecommendation) -> Finding:
    top = item.statements[0]
    calls = sum(s.calls for s in item.statements)
    total = sum(s.total_ms for s in item.statements)
    evidence = (f"[{item.method}] {top.detail}; serves {len(item.statements)} statement(s), {calls:,} calls, "
                f"{total:,.0f} ms in total; e.g. {' '.join(top.query.split())[:160]}")
    return Finding("recommended-index", "warning", f"{item.table} ({', '.join(item.columns)})", evidence, item.command)


def analyze(settings: Settings, env: Environment, table: str | None = None, *, method: str = "auto",
            min_days: float | None = None, statements: int = 50) -> AnalysisReport:
    """Every index and table check, and recommended indexes, for the whole database or one table."""
    min_days = env.unused_index_min_days if min_days is None else min_days
    notes: list[str] = []
    with connect(settings, env, "analyze") as conn:
        conn.execute(queries.load("performance/set_session"), {"name": "statement_timeout", "value": "120s"})
        chosen = find_table(conn, table) if table is not None else None
        catalog = read_catalog(conn, chosen.table_oid if chosen else None)
        unused = checks.unused_indexes(catalog.indexes, catalog.foreign_keys, catalog.window)
        findings = [
            *checks.invalid_indexes(catalog.indexes, catalog.being_built),
            *checks.duplicate_indexes(catalog.indexes),
            *checks.unused_index_findings(unused, catalog.window, env.name, min_days=min_days),
            *checks.overlapping_indexes(catalog.indexes),
            *checks.unindexed_foreign_keys(catalog.foreign_keys, catalog.indexes, env.name),
            *checks.seq_scan_heavy_tables(catalog.tables, env.name, large_rows=env.large_table_rows),
            *checks.bloated_indexes(catalog.bloat),
            *checks.stale_statistics(catalog.tables, env.name),
        ]
        recommendations: list[IndexRecommendation] = []
        advice_method = None
        try:
            found = pgss.locate(conn, env)
        except UnavailableError as exc:
            notes.append(f"no index recommendations: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        else:
            top = pgss.top(conn, found, statements)
            conn.autocommit = False
            advice = recommend(conn, env.name, top, catalog.indexes, method=method,
                               table_oid=chosen.table_oid if chosen else None)
            conn.autocommit = True
            recommendations, advice_method = advice.recommendations, advice.method
            notes += advice.notes
            covered = pgss.coverage(conn, found)
            if covered.reset_at is not None:
                notes.append(f"query statistics since {covered.reset_at:%Y-%m-%d %H:%M} UTC")
        findings += [_recommendation_finding(item) for item in recommendations]
    findings.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return AnalysisReport(env=env.name, table=chosen.shown if chosen else None,
                          stats_window=catalog.window.describe(), stats_since=catalog.window.since,
                          findings=findings, recommendations=recommendations, advice_method=advice_method,
                          notes=notes)
