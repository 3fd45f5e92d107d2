"""Seed -> backup -> restore into another environment gives identical data, for each type and both repositories."""

from __future__ import annotations

import json

import pytest
from backup_fixtures import TABLES, BackupProject


def columns(project: BackupProject, env: str) -> list[tuple[str, ...]]:
    with project.connect(env) as conn:
        rows = conn.execute("SELECT table_name, column_name, data_type, coalesce(column_default, '') "
                            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()
    return [tuple(row) for row in rows]


def indexes(project: BackupProject, env: str) -> list[tuple[str, ...]]:
    with project.connect(env) as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
        return [tuple(row) for row in rows.fetchall()]


def restore(project: BackupProject, *args: str) -> dict[str, object]:
    result = project.cli("restore", *args, "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("server", [14], indirect=True)
def test_every_type_round_trips_through_both_repositories(bproject: BackupProject, backend: str) -> None:
    source = bproject.fingerprints("production")
    schema = bproject.backup("production", "schema")
    data = bproject.backup("production", "data")
    logical = bproject.backup("production", "logical")
    tables = bproject.backup("production", "tables", "--tables", "users,public.recipes")
    listed = {b["name"]: b for b in bproject.backups("production")}
    assert [listed[n]["type"] for n in (schema, data, logical, tables)] == ["schema", "data", "logical", "tables"]
    assert set(listed[tables]["tables"]) == {"public.users", "public.recipes"}
    assert listed[logical]["tables"] == {f"public.{t}": count for t, (count, _) in source.items()}

    # schema: a fresh database with every table, index and default, and no rows.
    restore(bproject, "database", "--env", "development", "--backup", schema)
    assert columns(bproject, "development") == columns(bproject, "production")
    assert indexes(bproject, "development") == indexes(bproject, "production")
    assert all(count == 0 for count, _ in bproject.fingerprints("development").values())

    # logical: the whole database, swapped in place of the schema-only one.
    report = restore(bproject, "database", "--env", "development", "--backup", logical)
    assert bproject.fingerprints("development") == source
    assert report["tables"] == {f"public.{table}": source[table][0] for table in TABLES}
    assert indexes(bproject, "development") == indexes(bproject, "production")

    # data: rows only, into a migrated environment.
    assert bproject.cli("migrate", "up", "--env", "staging").returncode == 0
    restore(bproject, "database", "--env", "staging", "--backup", data)
    assert bproject.fingerprints("staging") == source

    # tables: only those two, into tables whose rows were changed; the others keep their changes.
    with bproject.connect("staging") as conn:
        conn.execute("UPDATE users SET display_name = 'changed' WHERE id % 2 = 0")
        conn.execute("UPDATE recipes SET title = 'changed' WHERE id % 3 = 0")
        conn.execute("UPDATE ingredients SET name = name || ' (changed)'")
    changed = bproject.fingerprints("staging")
    restore(bproject, "tables", "--env", "staging", "--backup", tables, "--tables", "users,recipes")
    after = bproject.fingerprints("staging")
    assert after["users"] == source["users"] and after["recipes"] == source["recipes"]
    assert after["ingredients"] == changed["ingredients"] != source["ingredients"]
    # The restored database takes writes at once: identity sequences follow the data.
    with bproject.connect("development") as conn:
        row = conn.execute("INSERT INTO users (email, display_name) VALUES ('n@x', 'N') RETURNING id").fetchone()
        assert row is not None and row[0] > source["users"][0]


@pytest.mark.parametrize("server", [15, 18], indirect=True)
def test_logical_round_trip_on_the_other_versions(bproject: BackupProject) -> None:
    name = bproject.backup("production", "logical")
    restore(bproject, "database", "--env", "development", "--backup", name)
    assert bproject.fingerprints("development") == bproject.fingerprints("production")
