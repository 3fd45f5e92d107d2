"""db-slow-queries from pg_stat_statements, whichever of its column layouts is installed (1.7, 1.8, 1.9-1.10,
1.11+), on every server version; a clear hint where the extension is missing."""

from __future__ import annotations

import pytest
from cli_support import error_lines
from conftest import Project, Server
from perf_helpers import cli_json, make, migrated
from psycopg import sql

from cuisine_db.diagnose.slow_queries import slow_queries

# The oldest layout of each variant file, and the server's own default.
VERSIONS = ["1.7", "1.8", "1.9", None]


def layout_available(server: Server, version: str) -> bool:
    with server.admin() as conn:
        row = conn.execute("SELECT count(*) FROM pg_available_extension_versions "
                           "WHERE name = 'pg_stat_statements' AND version = %s", (version,)).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("version", VERSIONS, ids=[v or "default" for v in VERSIONS])
def test_top_statements_with_each_extension_layout(server: Server, project: Project, version: str | None) -> None:
    if version is not None and not layout_available(server, version):
        pytest.skip(f"PostgreSQL {server.major} cannot install pg_stat_statements {version}")
    with project.connect() as conn:
        statement: sql.SQL | sql.Composed = sql.SQL("CREATE EXTENSION pg_stat_statements")
        if version is not None:
            statement += sql.SQL(" VERSION {}").format(sql.Literal(version))
        conn.execute(statement)
        conn.execute("CREATE TABLE numbers AS SELECT g FROM generate_series(1, 20000) g")
        for n in range(25):
            conn.execute("SELECT count(*) FROM numbers WHERE g > %s", (n,)).fetchone()
    report = slow_queries(project.settings, project.env(), limit=50)
    assert version is None or report.extension_version == version
    [mine] = [s for s in report.statements if "FROM numbers WHERE g >" in s.query]
    assert mine.calls == 25 and mine.rows == 25 and mine.total_ms > 0 and mine.max_ms >= mine.mean_ms
    assert 0 < mine.share <= 1 and mine.cache_hit is not None
    if version in ("1.7", "1.8"):
        assert report.stats_reset is None and mine.toplevel is None
    else:
        assert report.stats_reset is not None and mine.toplevel is True
    # Only this database's statements: the other tests' databases on this server are not listed.
    assert all(s.query.strip() for s in report.statements)


def test_slow_queries_through_make_and_json(project: Project) -> None:
    migrated(project)
    with project.connect() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for n in range(10):
            conn.execute("SELECT * FROM recipes WHERE user_id = %s", (n,)).fetchall()
    shown = make(project, "db-slow-queries", "limit=3")
    assert shown.returncode == 0, shown.stderr
    assert "slowest statements on development" in shown.stdout and "statistics since" in shown.stderr
    assert shown.stdout.count("│ 3 │") == 1 and "│ 4 │" not in shown.stdout
    report = cli_json(project, "slow-queries", "--limit", "100")
    [mine] = [s for s in report["statements"] if s["query"] == "SELECT * FROM recipes WHERE user_id = $1"]
    assert mine["calls"] == 10


def test_a_missing_extension_gives_the_statement_that_installs_it(project: Project) -> None:
    result = make(project, "db-slow-queries")
    assert "Error 3" in result.stderr
    [line] = error_lines(result.stderr)
    assert "not installed in database" in line and "CREATE EXTENSION pg_stat_statements" in line
    bad = make(project, "db-slow-queries", "limit=0")
    assert "Error 2" in bad.stderr
