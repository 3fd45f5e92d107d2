"""cuisine-db seed against real servers: all-or-nothing, deterministic, usable by the application afterwards."""

from __future__ import annotations

import json

import pytest
from conftest import Project
from psycopg import sql

from cuisine_db.errors import EXIT_REFUSED, RefusedError
from cuisine_db.seed import replace_rows

TABLES = ("users", "ingredients", "transformations", "recipes", "recipe_steps", "recipe_step_ingredients",
          "kitchens", "executions")


def fingerprints(project: Project) -> dict[str, tuple[int, str]]:
    found = {}
    with project.connect() as conn:
        for table in TABLES:
            query = sql.SQL("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t")
            row = conn.execute(query.format(sql.Identifier(table))).fetchone()
            assert row is not None
            found[table] = (row[0], row[1])
    return found


def test_seed_loads_every_table_deterministically(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    first = project.cli("seed", "--scale", "1", "--seed", "5", "--until", "2026-06-30", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    loaded = fingerprints(project)
    assert {table: count for table, (count, _) in loaded.items()} == report["rows"]
    assert report["rows"]["users"] == 1000 and report["rows"]["executions"] == 60000
    assert report["table_bytes"] > 20_000_000
    assert project.cli("seed", "--scale", "1", "--seed", "5", "--until", "2026-06-30").returncode == 0
    assert fingerprints(project) == loaded
    # Identity sequences follow the loaded ids, so the application's inserts work at once.
    with project.connect() as conn:
        row = conn.execute("INSERT INTO users (email, display_name) VALUES ('new@example.com', 'New') RETURNING id"
                           ).fetchone()
        assert row == (1001,)
        stats = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'executions'").fetchone()
        assert stats is not None and stats[0] > 0


def test_seed_without_the_schema_says_to_migrate_and_changes_nothing(project: Project) -> None:
    result = project.cli("seed", "--scale", "1")
    assert result.returncode == 2
    assert "make db-migrate env=development" in result.stderr
    assert project.tables() == []


def test_seed_on_a_protected_environment_needs_confirmation(project: Project) -> None:
    assert project.cli("migrate", "up", "--env", "production").returncode == 0
    refused = project.cli("seed", "--env", "production", "--scale", "1")
    assert refused.returncode == 4 and "yes=1" in refused.stderr
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_the_seed_service_asks_for_confirmation_whoever_calls_it(project: Project) -> None:
    """seed.replace_rows (db-seed's service) owns the protected-environment rule, not the CLI: called directly on
    production without confirmation it refuses (exit 4) and no row is written."""
    assert project.cli("migrate", "up", "--env", "production").returncode == 0
    production = project.env("production")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        replace_rows(project.settings, production, scale=1)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        replace_rows(project.settings, production, scale=1, ask=lambda _: "staging")
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_a_failed_seed_keeps_the_previous_rows(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    assert project.cli("seed", "--scale", "1", "--until", "2026-06-30").returncode == 0
    before = fingerprints(project)
    with project.connect() as conn:
        # A constraint the generated data breaks: the load must fail as a whole.
        conn.execute("ALTER TABLE executions ADD CONSTRAINT no_notes CHECK (notes IS NULL) NOT VALID")
    failed = project.cli("seed", "--scale", "1", "--seed", "9")
    assert failed.returncode != 0
    assert "no_notes" in failed.stderr
    assert fingerprints(project) == before
