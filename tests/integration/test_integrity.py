"""db-verify-integrity, db-check-corruption and db-verify-tables against real servers: clean databases pass, each
problem the server does not re-check is found with a fix that works, bad input is refused, and the commands are
journaled (and linked to an open incident)."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli, run_make
from conftest import CLI, REPO, Project

from cuisine_db.errors import UsageError
from cuisine_db.migrations import migrate
from cuisine_db.ops import incidents
from cuisine_db.ops.integrity import check_corruption, verify_integrity


def make(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return run_make(project.config, *args)


def migrated(project: Project) -> None:
    migrate(project.settings, project.env())


def small_data(project: Project) -> None:
    """Migrations and a few rows in every table (the seed's 25 MB would only cost time here)."""
    migrated(project)
    with project.connect() as conn:
        conn.execute("""
            INSERT INTO users (email, display_name) SELECT 'u' || n || '@example.com', 'User ' || n
                FROM generate_series(1, 50) AS n;
            INSERT INTO ingredients (name, category, default_unit) SELECT 'ingredient ' || n, 'spice', 'g'
                FROM generate_series(1, 20) AS n;
            INSERT INTO transformations (name, kind, description) VALUES ('chop', 'cut', 'cut small');
            INSERT INTO recipes (user_id, title) SELECT 1 + n % 50, 'Recipe ' || n FROM generate_series(1, 100) AS n;
            INSERT INTO recipe_steps (recipe_id, position, transformation_id, instruction)
                SELECT 1 + n % 100, 1 + n / 100, 1, 'step ' || n FROM generate_series(0, 299) AS n;
            INSERT INTO kitchens (user_id, name) SELECT n, 'Kitchen' FROM generate_series(1, 50) AS n;
            INSERT INTO executions (recipe_id, kitchen_id, user_id)
                SELECT 1 + n % 100, 1 + n % 50, 1 + n % 50 FROM generate_series(1, 500) AS n;
        """)


def in_process(project: Project, tables: list[str] | None = None, verify: bool = True) -> dict[str, Any]:
    """The report the CLI would print as JSON, without its start-up time."""
    settings = project.settings
    if verify and tables is None:
        return asdict(verify_integrity(settings, project.env()))
    return asdict(check_corruption(settings, project.env(), tables=tables))


def run_json(project: Project, *args: str) -> tuple[int, dict[str, Any], str]:
    result = project.cli(*args, "--json")
    assert result.stdout.startswith("{"), result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def on_a_terminal(project: Project, *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr; return its exit code and what it showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*CLI, *args], cwd=project.root, stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "CUISINE_DB_CONFIG": str(project.config), "COLUMNS": "200"})
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=30), seen.decode(errors="replace")


def test_a_healthy_database_passes_and_the_runs_are_journaled_and_linked(project: Project) -> None:
    small_data(project)
    incident = incidents.open_incident(project.settings, 1, "Database failure")
    # On a terminal: a progress bar while it runs, then the verdict.
    code, shown = on_a_terminal(project, "integrity", "verify", "--jobs", "3")
    assert code == 0, shown
    assert "verifying" in shown and "%" in shown, shown
    assert "integrity of development: no problems found" in shown
    corruption = make(project, "db-check-corruption", "env=development")
    assert corruption.returncode == 0, corruption.stderr
    assert "no damaged relation found" in corruption.stderr
    tables = make(project, "db-verify-tables", "env=development", "tables=users,recipes")
    assert tables.returncode == 0, tables.stderr
    journal = project.root / ".cuisine" / "development" / "journal.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    ran = {line["command"]: line for line in lines}
    verified = ran["db-verify-integrity"]
    assert verified["outcome"] == "ok" and verified["details"]["findings"] == 0
    assert verified["arguments"] == {"jobs": 3}
    assert verified["details"]["checked"]["tables (verify_heapam)"] >= 8
    assert verified["details"]["checked"]["B-tree indexes (bt_index_check, heapallindexed)"] >= 15
    # recipes 1, recipe_steps 2, recipe_step_ingredients 2, kitchens 1, executions 3.
    assert verified["details"]["checked"]["foreign keys (orphan rows)"] == 9
    assert ran["db-verify-tables"]["arguments"]["tables"] == "users,recipes"
    for command in ("db-verify-integrity", "db-check-corruption", "db-verify-tables"):
        assert ran[command]["incidents"] == [incident.id]


def test_each_problem_is_found_with_its_fix(project: Project) -> None:
    small_data(project)
    with project.connect() as conn:
        # A row whose parent is gone: foreign keys are not re-checked once their triggers are bypassed.
        conn.execute("ALTER TABLE recipes DISABLE TRIGGER ALL")
        conn.execute("INSERT INTO recipes (user_id, title) VALUES (99999, 'orphan')")
        conn.execute("ALTER TABLE recipes ENABLE TRIGGER ALL")
        conn.execute("ALTER TABLE users ADD CONSTRAINT users_short_name CHECK (char_length(display_name) < 60) "
                     "NOT VALID")
        # An explicit id above the identity sequence: the next insert would collide.
        conn.execute("INSERT INTO users (id, email, display_name) VALUES (500, 'x@example.com', 'X')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ingredients_category_uniq ON ingredients (category)")
    code, report, stderr = run_json(project, "integrity", "verify")
    assert code == 1
    found = {(f["check"], f["subject"]): f for f in report["findings"]}
    orphan = found[("orphan rows", "public.recipes recipes_user_id_fkey")]
    assert "1 row(s) of public.recipes (user_id) reference no row of public.users, e.g. 99999" in orphan["evidence"]
    assert "make db-restore-tables env=development backup=latest tables=users" in orphan["fix"]
    not_valid = found[("not valid constraint", "public.users users_short_name")]
    sequence = found[("sequence behind", "public.users.id")]
    assert "hands out 51 next but the column already holds 500" in sequence["evidence"]
    invalid = found[("invalid index", "public.ingredients_category_uniq")]
    assert "REINDEX INDEX CONCURRENTLY public.ingredients_category_uniq" in invalid["fix"]
    assert len(report["findings"]) == 4, report["findings"]
    assert report["damaged"] == []
    assert "db-verify-integrity found 4 problem(s)" in stderr
    # Limited to users: what touches users is reported, the ingredients index is not.
    tables = in_process(project, ["users"])
    assert {f["check"] for f in tables["findings"]} == {"orphan rows", "not valid constraint", "sequence behind"}
    with pytest.raises(UsageError, match="unknown tables: nope, gone"):
        in_process(project, ["users", "nope", "gone"])
    # The printed fixes work as printed.
    argv = shlex.split(sequence["fix"])
    assert argv[:2] == ["cuisine-db", "psql"]
    assert project.cli(*argv[1:]).returncode == 0
    statement = shlex.split(not_valid["fix"])[-1]
    assert statement == "ALTER TABLE public.users VALIDATE CONSTRAINT users_short_name"
    with project.connect() as conn:
        conn.execute(statement)
    again = in_process(project)
    assert {f["check"] for f in again["findings"]} == {"orphan rows", "invalid index"}


def test_an_index_that_no_longer_matches_its_table_is_found_and_rebuilt(project: Project) -> None:
    """Damage without touching a file: an expression index over a function declared IMMUTABLE that then changes
    (as after a careless CREATE OR REPLACE) no longer holds what its rows compute. The environment reaches its
    database through a dsn, so pg_amcheck's report names a database other than the default 'cuisine'."""
    small_data(project)
    with project.connect() as conn:
        conn.execute("CREATE FUNCTION shout(t text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT upper(t)'")
        conn.execute("CREATE INDEX users_shout_idx ON users (shout(display_name))")
        conn.execute("CREATE OR REPLACE FUNCTION shout(t text) RETURNS text IMMUTABLE LANGUAGE sql "
                     "AS 'SELECT lower(t)'")
    result = make(project, "db-check-corruption", "env=development")
    # make exits 2 whenever a recipe fails; its last line carries the command's own exit code.
    assert result.returncode != 0 and "Error 1" in result.stderr, result.stderr
    assert "damaged: public.users_shout_idx" in result.stderr
    fix = "cuisine-db psql --env development -c 'REINDEX INDEX CONCURRENTLY public.users_shout_idx'"
    assert fix in result.stdout
    verified = in_process(project)
    assert [d["relation"] for d in verified["damaged"]] == ["public.users_shout_idx"]
    assert "lacks matching index tuple" in verified["damaged"][0]["evidence"][0]
    assert project.cli(*shlex.split(fix)[1:]).returncode == 0
    assert in_process(project, verify=False)["findings"] == []


def test_collation_version_drift_is_reported(project: Project) -> None:
    migrated(project)
    with project.connect() as conn:
        row = conn.execute("SELECT oid, quote_ident(collnamespace::regnamespace::text) || '.' || quote_ident(collname)"
                           " FROM pg_collation WHERE pg_collation_actual_version(oid) IS NOT NULL "
                           "ORDER BY collname LIMIT 1").fetchone()
        if row is None:
            pytest.skip(f"PostgreSQL {project.server.major} here has no versioned collation (built without ICU, "
                        "and the C library's C locales have no version)")
        # The database is a throwaway: its catalog may say the collation was recorded under another version.
        conn.execute("UPDATE pg_collation SET collversion = '0.bogus' WHERE oid = %s", [row[0]])
    report = in_process(project)
    (drift,) = [f for f in report["findings"] if f["check"] == "collation version"]
    assert drift["subject"] == f"collation {row[1]}"
    assert "recorded version 0.bogus" in drift["evidence"]
    assert f"ALTER COLLATION {row[1]} REFRESH VERSION" in drift["fix"]


def test_a_partitioned_table_is_checked_through_its_partitions(project: Project) -> None:
    migrated(project)
    with project.connect() as conn:
        conn.execute("CREATE TABLE events (id bigint, at date NOT NULL, body text) PARTITION BY RANGE (at)")
        conn.execute("CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
        conn.execute("CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
        conn.execute("CREATE INDEX events_at_idx ON events (at)")
        conn.execute("INSERT INTO events SELECT n, '2025-01-01'::date + n, 'x' FROM generate_series(1, 600) AS n")
    report = in_process(project, ["events"])
    assert report["findings"] == [], report
    # Both partitions, their TOAST tables and indexes were checked; the parent has no storage of its own.
    assert report["checked"]["tables and TOAST tables (pg_amcheck)"] == 4
    assert report["checked"]["B-tree indexes (pg_amcheck, heapallindexed)"] == 4


def test_bad_table_lists_are_refused_before_anything_runs(tmp_path: Path) -> None:
    # Nothing is listening on port 1: names are refused before any connection is tried.
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.development]\ndsn = "host=127.0.0.1 port=1 dbname=x user=x"\n')
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    # More spellings are unit-tested (tests/unit/test_integrity_attribution.py).
    for tables, expected in [("users;drop", "is not a table name"), ("", "no tables given")]:
        result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "db-verify-tables",
                                 f"tables={tables}"], env=environ, capture_output=True, text=True, timeout=120,
                                check=False)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Error 2" in result.stderr
    assert not (tmp_path / ".cuisine").exists()  # not even a journal line


def test_a_server_that_cannot_be_reached_is_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.development]\ndsn = "host=127.0.0.1 port=1 dbname=x user=x"\n')
    for command in (["integrity", "verify"], ["integrity", "tables", "--tables", "a"]):
        result = run_cli(config, *command, timeout=60)
        assert result.returncode == 3, result.stderr
        assert result.stderr.splitlines()[-1].startswith("error: cannot connect to environment 'development'")


def _deletes_counted(project: Project, table: str, at_least: int) -> None:
    """The server's statistics reach other sessions a moment after a commit: wait for them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with project.connect() as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute("SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = %s", [table]).fetchone()
        if row is not None and row[0] >= at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"the server never counted {at_least} deletes from {table}")


def test_row_counts_are_compared_with_the_newest_backup(project: Project) -> None:
    """Rows added or deleted since the backup are information; rows gone without a delete are a finding, and the
    table restore it prints brings them back."""
    small_data(project)
    project.cli("backup", "keygen", "--if-missing", check=True)
    project.cli("backup", "create", "--env", "development", "--type", "logical", check=True)
    report = in_process(project)
    assert report["findings"] == [], report
    assert report["checked"]["tables (row counts against the newest backup)"] == 9  # with schema_migrations
    with project.connect() as conn:
        conn.execute("INSERT INTO users (email, display_name) VALUES ('new@example.com', 'New')")
        conn.execute("DELETE FROM ingredients WHERE id > 17")
        conn.execute("TRUNCATE executions")
        conn.execute("INSERT INTO executions (recipe_id, kitchen_id, user_id) SELECT 1, 1, 1 "
                     "FROM generate_series(1, 100)")
        conn.execute("DELETE FROM recipe_steps WHERE id <= 10")
    _deletes_counted(project, "ingredients", 3)
    _deletes_counted(project, "recipe_steps", 10)
    with project.connect() as conn:
        # As after a physical restore or a crash: the statistics no longer know these rows, nor the deletes.
        conn.execute("SELECT pg_stat_reset_single_table_counters('recipe_steps'::regclass)")
    code, report, stderr = run_json(project, "integrity", "verify")
    found = {f["subject"]: f for f in report["findings"]}
    assert set(found) == {"public.users", "public.ingredients", "public.executions", "public.recipe_steps"}, \
        report["findings"]
    assert found["public.recipe_steps"]["severity"] == "info"
    assert found["public.users"]["severity"] == "info" and "51 rows, 50 in backup" in found["public.users"]["evidence"]
    assert found["public.ingredients"]["severity"] == "info"
    assert "counted 3 deleted row(s)" in found["public.ingredients"]["evidence"]
    lost = found["public.executions"]
    assert lost["severity"] == "error" and "400 row(s) fewer" in lost["evidence"], lost
    assert code == 1 and report["ok"] is False and "found 1 problem(s)" in stderr
    # db-verify-tables compares only the tables asked for.
    tables = in_process(project, ["users"])
    assert [(f["subject"], f["severity"]) for f in tables["findings"]] == [("public.users", "info")]
    assert tables["findings"] and not [f for f in tables["findings"] if f["severity"] != "info"]
    # The fix, as printed.
    fix = lost["fix"].split(" if they were lost")[0]
    assert fix == "make db-restore-tables env=development backup=latest tables=executions"
    restored = make(project, *shlex.split(fix)[1:])
    assert restored.returncode == 0, restored.stderr
    again = make(project, "db-verify-integrity", "env=development")
    assert again.returncode == 0, again.stderr
    assert "no problems found: 3 difference(s) from the newest backup that writes since explain" in again.stderr
