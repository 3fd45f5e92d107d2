"""db-migrate, db-rollback and migrate status against real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI, REPO, Project

from cuisine_db import migrations
from cuisine_db.errors import EXIT_REFUSED, RefusedError
from cuisine_db.migrations import schema_dump

CUISINE_TABLES = ["executions", "ingredients", "kitchens", "recipe_step_ingredients", "recipe_steps", "recipes",
                  "schema_migrations", "transformations", "users"]


def write(project: Project, file_name: str, text: str) -> Path:
    path = project.root / "db" / "migrations" / file_name
    path.write_text(text)
    return path


def applied_versions(project: Project) -> list[str]:
    with project.connect() as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_migrate_creates_the_cuisine_schema_and_records_each_migration(project: Project) -> None:
    result = project.cli("migrate", "up", "--env", "development")
    assert result.returncode == 0, result.stderr
    assert project.tables() == CUISINE_TABLES
    with project.connect() as conn:
        rows = conn.execute(
            "SELECT version, name, checksum, applied_at, applied_by, duration_ms, applied_seq"
            " FROM schema_migrations ORDER BY applied_seq").fetchall()
    assert [row[1] for row in rows] == ["create_users", "create_ingredients_and_transformations",
                                        "create_recipes", "create_kitchens", "create_executions"]
    assert all(len(row[2]) == 64 and row[3] is not None and row[4] and row[5] >= 0 for row in rows)
    assert [row[6] for row in rows] == [1, 2, 3, 4, 5]
    # No index on recipes (user_id, created_at): the runbook creates it with db-create-index.
    with project.connect() as conn:
        defs = [row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'recipes'")]
    assert not any("created_at" in d for d in defs)
    again = project.cli("migrate", "up", "--env", "development")
    assert again.returncode == 0 and "already up to date" in again.stderr


def test_five_runners_at_once_apply_each_migration_exactly_once(empty_project: Project) -> None:
    project = empty_project
    # A slow migration widens the window in which the runners overlap.
    write(project, "20250101000000_slow.sql",
          "-- migrate:up\nCREATE TABLE counter (n int);\nSELECT pg_sleep(1.5);\nINSERT INTO counter VALUES (1);\n"
          "-- migrate:down\nDROP TABLE counter;\n")
    write(project, "20250101000001_more.sql",
          "-- migrate:up\nINSERT INTO counter VALUES (2);\n-- migrate:down\nDELETE FROM counter WHERE n = 2;\n")
    environ = {"CUISINE_DB_CONFIG": str(project.config)}
    # Through make, as the runbook runs it: five `make db-migrate env=development` at once.
    runners = [subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO), "db-migrate", "env=development"],
                                env={**os.environ, **environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(5)]
    outcomes = [(runner.wait(timeout=120), runner.stderr.read() if runner.stderr else "") for runner in runners]
    assert all(code == 0 for code, _ in outcomes), outcomes
    with project.connect() as conn:
        assert sorted(row[0] for row in conn.execute("SELECT n FROM counter")) == [1, 2]
    assert applied_versions(project) == ["20250101000000", "20250101000001"]
    assert sum("applied 2 migration(s)" in err for _, err in outcomes) == 1


def test_an_edited_applied_migration_is_refused_and_named(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    edited = project.root / "db" / "migrations" / "20250101090300_create_kitchens.sql"
    edited.write_text(edited.read_text().replace("char_length(name) BETWEEN 1 AND 100",
                                                 "char_length(name) BETWEEN 1 AND 120"))
    write(project, "20250601000000_add_column.sql",
          "-- migrate:up\nALTER TABLE users ADD COLUMN nickname text;\n"
          "-- migrate:down\nALTER TABLE users DROP COLUMN nickname;\n")
    result = project.cli("migrate", "up")
    assert result.returncode == 4
    assert "20250101090300_create_kitchens.sql" in result.stderr
    assert "20250601000000" not in applied_versions(project)
    status = project.cli("migrate", "status", "--json")
    assert status.returncode == 1
    assert '"drifted"' in status.stdout
    # Line endings and trailing spaces are not drift.
    other = project.root / "db" / "migrations" / "20250101090000_create_users.sql"
    other.write_bytes(other.read_text().replace("\n", "   \r\n").encode())
    accepted = project.cli("migrate", "accept-edit", "20250101090300")
    assert accepted.returncode == 0, accepted.stderr
    assert project.cli("migrate", "up").returncode == 0
    assert "20250601000000" in applied_versions(project)


def test_a_missing_applied_migration_is_refused(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    (project.root / "db" / "migrations" / "20250101090400_create_executions.sql").unlink()
    result = project.cli("migrate", "up")
    assert result.returncode == 4 and "20250101090400_create_executions.sql is missing" in result.stderr


def test_a_failing_migration_leaves_the_schema_exactly_as_it_was(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    before = schema_dump.dump(project.settings, project.env())
    write(project, "20250701000000_broken.sql",
          "-- migrate:up\nALTER TABLE users ADD COLUMN locale text;\nCREATE INDEX users_locale_idx ON users (locale);\n"
          "ALTER TABLE recipes ADD COLUM broken text;\n-- migrate:down\nALTER TABLE users DROP COLUMN locale;\n")
    result = project.cli("migrate", "up")
    assert result.returncode == 1
    assert "20250701000000_broken.sql" in result.stderr and "syntax error" in result.stderr
    assert "statement 3 of 3" in result.stderr
    assert schema_dump.dump(project.settings, project.env()) == before
    assert "20250701000000" not in applied_versions(project)


def test_rollback_by_steps_and_version_round_trips_the_schema(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    full = schema_dump.dump(project.settings, project.env())
    one = project.cli("migrate", "rollback", "--steps", "1")
    assert one.returncode == 0, one.stderr
    assert "executions" not in project.tables()
    to_version = project.cli("migrate", "rollback", "--version", "20250101090100")
    assert to_version.returncode == 0, to_version.stderr
    assert applied_versions(project) == ["20250101090000", "20250101090100"]
    assert "recipes" not in project.tables() and "ingredients" in project.tables()
    assert project.cli("migrate", "up").returncode == 0
    assert schema_dump.dump(project.settings, project.env()) == full
    schema_file = project.root / "db" / "schema.sql"
    assert "CREATE TABLE public.executions" in schema_file.read_text()


def test_rollback_undoes_the_highest_version_first_as_dbmate_does(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250102000000_b.sql", "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n")
    assert project.cli("migrate", "up").returncode == 0
    # An older migration merged late is applied after the newer one; dbmate still rolls back the highest version
    # first, and so does cuisine-db, so that the two tools never disagree on what rollback undoes.
    write(project, "20250101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n")
    assert project.cli("migrate", "up").returncode == 0
    assert project.cli("migrate", "rollback", "--steps", "1").returncode == 0
    assert project.tables() == ["a", "schema_migrations"]


def test_rollback_to_a_version_that_is_not_applied_is_an_error(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    result = project.cli("migrate", "rollback", "--version", "20990101000000")
    assert result.returncode == 2 and "not applied" in result.stderr
    assert len(applied_versions(project)) == 5


def test_rollback_on_a_protected_environment_needs_confirmation(project: Project) -> None:
    assert project.cli("migrate", "up", "--env", "production").returncode == 0
    refused = project.cli("migrate", "rollback", "--env", "production", "--steps", "1")
    assert refused.returncode == 4 and "yes=1" in refused.stderr
    assert len(applied_versions(project)) == 5
    confirmed = project.cli("migrate", "rollback", "--env", "production", "--steps", "1", "--yes")
    assert confirmed.returncode == 0, confirmed.stderr
    assert len(applied_versions(project)) == 4


def test_rollback_and_accept_edit_ask_for_confirmation_whoever_calls_them(project: Project) -> None:
    """The migrations services own the protected-environment rule, not the CLI: called directly on production
    without confirmation, rollback and accept-edit refuse (exit 4) and nothing changes."""
    assert project.cli("migrate", "up", "--env", "production").returncode == 0
    settings, production = project.settings, project.env("production")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        migrations.rollback(settings, production, steps=1)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        migrations.rollback(settings, production, steps=1, ask=lambda _: "staging")
    assert len(applied_versions(project)) == 5
    assert len(migrations.rollback(settings, production, steps=1, dry_run=True).steps) == 1  # a dry run only looks
    edited = project.root / "db" / "migrations" / "20250101090300_create_kitchens.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        migrations.accept_edit(settings, production, "20250101090300")
    assert refused.value.exit_code == EXIT_REFUSED
    drifted = [state.version for state in migrations.status(settings, production) if state.state == "drifted"]
    assert drifted == ["20250101090300"]
    assert len(applied_versions(project)) == 5


def test_concurrent_index_builds_without_a_transaction(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250101000000_table.sql",
          "-- migrate:up\nCREATE TABLE t (a int, b int);\n"
          "CREATE FUNCTION add_one(x int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN x + 1; END; $$;\n"
          "-- migrate:down\nDROP FUNCTION add_one(int);\nDROP TABLE t;\n")
    write(project, "20250101000001_indexes.sql",
          "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n"
          "CREATE INDEX CONCURRENTLY t_b_idx ON t (b);\n"
          "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_b_idx;\nDROP INDEX CONCURRENTLY t_a_idx;\n")
    result = project.cli("migrate", "up")
    assert result.returncode == 0, result.stderr
    with project.connect() as conn:
        names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 't'")}
        assert conn.execute("SELECT add_one(41)").fetchone() == (42,)
    assert names == {"t_a_idx", "t_b_idx"}


def test_a_failed_concurrent_build_reports_the_invalid_index(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250101000000_table.sql",
          "-- migrate:up\nCREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n-- migrate:down\nDROP TABLE t;\n")
    write(project, "20250101000001_unique.sql",
          "-- migrate:up transaction:false\nCREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a);\n"
          "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_a_key;\n")
    result = project.cli("migrate", "up")
    assert result.returncode == 1
    assert "could not create unique index" in result.stderr
    assert "INVALID index left behind: t_a_key" in result.stderr
    assert "DROP INDEX CONCURRENTLY t_a_key" in result.stderr


def test_a_waiting_runner_does_not_deadlock_a_concurrent_index_build(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250101000000_table.sql",
          "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n")
    assert project.cli("migrate", "up").returncode == 0
    write(project, "20250101000001_index.sql",
          "-- migrate:up transaction:false\nSELECT pg_sleep(1);\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n"
          "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY t_a_idx;\n")
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config)}
    first = subprocess.Popen([*CLI, "migrate", "up"], cwd=project.root, env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    second = subprocess.Popen([*CLI, "migrate", "up"], cwd=project.root, env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.wait(timeout=60) == 0, first.stderr.read() if first.stderr else ""
    assert second.wait(timeout=60) == 0


def test_status_lists_applied_and_pending(project: Project) -> None:
    assert project.cli("migrate", "rollback", "--steps", "1").returncode == 2  # nothing applied yet
    assert project.cli("migrate", "up").returncode == 0
    write(project, "20250801000000_next.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n")
    result = project.cli("migrate", "status", "--json")
    assert result.returncode == 0
    assert result.stdout.count('"applied"') == 5 and result.stdout.count('"pending"') == 1


def test_python_dash_m_runs(project: Project) -> None:
    result = subprocess.run([sys.executable, "-m", "cuisine_db", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "migrate" in result.stdout


def test_verify_catches_a_down_section_that_does_not_undo_its_up(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250101000000_t.sql",
          "-- migrate:up\nCREATE TABLE t (id int);\nCREATE INDEX t_id_idx ON t (id);\n"
          "-- migrate:down\nDROP INDEX t_id_idx;\n")
    result = project.cli("migrate", "verify", "--json")
    assert result.returncode == 1, result.stderr
    assert '"down_matches_empty": false' in result.stdout
    assert "CREATE TABLE public.t" in result.stdout
    (project.root / "db" / "migrations" / "20250101000000_t.sql").write_text(
        "-- migrate:up\nCREATE TABLE t (id int);\nCREATE INDEX t_id_idx ON t (id);\n-- migrate:down\nDROP TABLE t;\n")
    assert project.cli("migrate", "verify").returncode == 0


def test_mutating_commands_are_journaled(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    assert project.cli("migrate", "rollback", "--env", "production", "--steps", "1").returncode == 4
    journal = project.root / ".cuisine" / "development" / "journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    assert entries[-1]["command"] == "migrate" and entries[-1]["outcome"] == "ok"
    assert len(entries[-1]["details"]["applied"]) == 5
    refused = [json.loads(line) for line in
               (project.root / ".cuisine" / "production" / "journal.jsonl").read_text().splitlines()]
    assert refused[-1]["outcome"] == "refused" and refused[-1]["arguments"]["steps"] == 1


def test_a_terminal_confirmation_asks_for_the_environment_name(project: Project) -> None:
    import os
    import pty

    assert project.cli("migrate", "up", "--env", "production").returncode == 0

    def rollback_typing(answer: str) -> int:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([*CLI, "migrate", "rollback", "--env", "production", "--steps", "1"],
                                cwd=project.root, env={**os.environ, "CUISINE_DB_CONFIG": str(project.config)},
                                stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(follower)
        time.sleep(3)
        os.write(leader, answer.encode() + b"\n")
        code = proc.wait(timeout=60)
        os.close(leader)
        return code

    assert rollback_typing("staging") == 4
    assert len(applied_versions(project)) == 5
    assert rollback_typing("production") == 0
    assert len(applied_versions(project)) == 4


def test_risky_statements_are_reported_before_they_run(project: Project) -> None:
    assert project.cli("migrate", "up").returncode == 0
    write(project, "20250901000000_index.sql",
          "-- migrate:up\nCREATE INDEX recipes_user_created_idx ON recipes (user_id, created_at);\n"
          "-- migrate:down\nDROP INDEX recipes_user_created_idx;\n")
    result = project.cli("migrate", "up", "--env", "production")
    assert result.returncode == 0, result.stderr
    warning = result.stderr.index("index-without-concurrently")
    assert warning < result.stderr.index("applying 20250901000000_index.sql")
    assert project.cli("migrate", "lint").returncode == 1


def test_a_database_migrated_by_dbmate_is_taken_over_without_reapplying(project: Project) -> None:
    with project.connect() as conn:
        conn.execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('20250101090000')")
    result = project.cli("migrate", "up")
    assert result.returncode == 0, result.stderr
    assert "applied 4 migration(s)" in result.stderr
    with project.connect() as conn:
        assert conn.execute("SELECT checksum IS NULL FROM schema_migrations WHERE version = '20250101090000'"
                            ).fetchone() == (True,)
    assert project.cli("migrate", "status").returncode == 0


def test_an_empty_migration_is_refused_naming_the_file(empty_project: Project) -> None:
    project = empty_project
    write(project, "20250101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n")
    write(project, "20250102000000_empty.sql", "-- migrate:up\n-- to do\n\n-- migrate:down\nSELECT 1;\n")
    result = project.cli("migrate", "up")
    assert result.returncode == 2, result.stderr
    assert "20250102000000_empty.sql: its '-- migrate:up' section has no statement" in result.stderr
    assert project.tables() in ([], ["schema_migrations"])  # not even the good one before it ran
    assert project.cli("migrate", "status").returncode == 0  # listing is not refused: only applying
