"""db-explain never commits, refuses more than one statement, stops at its timeout, plans $n queries on every
version (GENERIC_PLAN on 16+, a prepared statement below), and diagnoses what it sees."""

from __future__ import annotations

import pytest
from cli_support import error_lines
from conftest import Project, Server
from perf_helpers import explain_role, make, migrated

from cuisine_db.diagnose.explain import explain
from cuisine_db.errors import FailedError, UsageError


@pytest.fixture
def tables(project: Project) -> Project:
    migrated(project)
    with project.connect() as conn:
        conn.execute("""
            INSERT INTO users (email, display_name) SELECT 'u' || g || '@example.com', 'User ' || g
              FROM generate_series(1, 50) g;
            INSERT INTO recipes (user_id, title) SELECT 1 + g % 50, 'Recipe ' || g FROM generate_series(1, 500) g;
            CREATE TABLE big AS SELECT g AS id, g AS twin FROM generate_series(1, 20000) g;
            ANALYZE users, recipes, big;
        """)
    explain_role(project)
    return project


def fingerprint(project: Project) -> tuple[object, ...]:
    with project.connect() as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM recipes), "
                           "(SELECT md5(string_agg(title, ',' ORDER BY id)) FROM recipes), "
                           "(SELECT last_value FROM recipes_id_seq)").fetchone()
    assert row is not None
    return tuple(row)


WRITES = [
    "INSERT INTO recipes (user_id, title) SELECT user_id, title || ' copy' FROM recipes",
    "DELETE FROM recipes WHERE user_id = 3",
    "UPDATE recipes SET title = 'changed'",
    "WITH gone AS (DELETE FROM recipes RETURNING id) SELECT count(*) FROM gone",
    "MERGE INTO recipes r USING users u ON r.user_id = u.id WHEN MATCHED THEN DELETE",
]


def test_explained_writes_are_rolled_back(server: Server, tables: Project) -> None:
    before = fingerprint(tables)
    for statement in WRITES:
        if statement.startswith("MERGE") and server.major < 15:
            continue  # MERGE came with PostgreSQL 15
        result = explain(tables.settings, tables.env(), statement)
        assert result.analyzed and result.execution_ms is not None, statement
        assert any("rolled back" in note for note in result.notes), statement
        assert fingerprint(tables)[:3] == before[:3], statement


def test_a_select_that_would_write_through_a_function_is_refused(tables: Project) -> None:
    before = fingerprint(tables)
    with pytest.raises(UsageError, match="writes"):
        explain(tables.settings, tables.env(), "SELECT nextval('recipes_id_seq')")
    assert fingerprint(tables) == before  # not even the sequence moved: the transaction was read-only


def test_two_statements_and_the_timeout_are_clear_errors(tables: Project) -> None:
    before = fingerprint(tables)
    two = make(tables, "db-explain", "query=DELETE FROM recipes; DELETE FROM users")
    assert "Error 2" in two.stderr
    assert error_lines(two.stderr) == ["error: give one statement, not 2 (hint: explain each statement on its own)"]
    slow = make(tables, "db-explain", "query=SELECT pg_sleep(30) FROM recipes LIMIT 1", "timeout=1s")
    assert "Error 1" in slow.stderr
    [line] = error_lines(slow.stderr)
    assert line.startswith("error: the query ran past the 1s statement timeout and was cancelled; "
                           "it ran read-only and was rolled back")
    assert "nothing was changed" not in slow.stderr
    assert fingerprint(tables) == before
    with pytest.raises(FailedError, match="statement timeout"):
        explain(tables.settings, tables.env(), "DELETE FROM recipes WHERE pg_sleep(5) IS NOT NULL", timeout_ms=500)
    assert fingerprint(tables) == before


def test_parameters_give_a_generic_plan_or_run_with_values(tables: Project) -> None:
    generic = explain(tables.settings, tables.env(), "SELECT * FROM recipes WHERE user_id = $1 LIMIT $2")
    assert generic.generic and not generic.analyzed and generic.plan["Node Type"] == "Limit"
    assert "$1" in str(generic.plan)
    valued = explain(tables.settings, tables.env(), "SELECT * FROM recipes WHERE user_id = $1 LIMIT $2",
                     params=["3", "5"])
    assert valued.analyzed and valued.plan["Actual Rows"] == 5
    with pytest.raises(UsageError, match="2 parameter"):
        explain(tables.settings, tables.env(), "SELECT * FROM recipes WHERE user_id = $1 LIMIT $2", params=["3"])
    planned = make(tables, "db-explain", "query=DELETE FROM recipes", "analyze=0")
    assert planned.returncode == 0 and "actual" not in planned.stdout and "Delete on recipes" in planned.stdout
    assert fingerprint(tables)[1] == 500


def test_the_diagnosis_names_scans_estimates_and_spills(tables: Project) -> None:
    scan = explain(tables.settings, tables.env(), "SELECT * FROM big WHERE id = 5")
    assert [f.check for f in scan.findings] == ["seq-scan-filter"]
    assert "read 20,000 rows to keep 1" in scan.findings[0].evidence
    guess = explain(tables.settings, tables.env(), "SELECT * FROM big WHERE id = twin")
    assert "row-estimate" in {f.check for f in guess.findings}
    spill = explain(tables.settings, tables.env(), "SELECT * FROM generate_series(1, 300000) g ORDER BY g DESC")
    assert "sort-spill" in {f.check for f in spill.findings}
    shown = make(tables, "db-explain", "query=SELECT * FROM big WHERE id = 5")
    assert shown.returncode == 0 and "Seq Scan on big" in shown.stdout and "seq-scan-filter" in shown.stdout
