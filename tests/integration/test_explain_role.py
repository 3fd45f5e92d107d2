"""db-explain is harmless (issue 16): the statement runs as a role that cannot end sessions, leave the transaction
through dblink or read server files, and a DML with ANALYZE on a protected environment asks first."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
from conftest import Project
from perf_helpers import explain_role, make, migrated
from psycopg import sql
from security_support import local_environment

from cuisine_db.diagnose.explain import explain
from cuisine_db.errors import EXIT_REFUSED, RefusedError, UsageError
from cuisine_db.postgres import pgpass
from cuisine_db.postgres.local import cluster_for


@pytest.fixture
def explained(project: Project) -> Project:
    migrated(project)
    with project.connect() as conn:
        conn.execute("INSERT INTO users (email, display_name) SELECT 'u' || g || '@example.com', 'User ' || g "
                     "FROM generate_series(1, 20) g")
    explain_role(project)
    return project


def test_the_role_holds_table_privileges_and_nothing_else(explained: Project) -> None:
    role = f"exp_{explained.database[-12:]}"
    with explained.connect() as conn:
        attributes = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
                                  "FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        memberships = conn.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                   "WHERE r.rolname = %s", [role]).fetchone()
        usable = conn.execute("SELECT has_table_privilege(%s, 'recipes', 'SELECT'), "
                              "has_table_privilege(%s, 'recipes', 'DELETE'), "
                              "has_function_privilege(%s, 'pg_read_file(text)', 'EXECUTE')",
                              [role, role, role]).fetchone()
    assert attributes == (False, False, False, False, False)
    assert memberships == (0,)
    assert usable == (True, True, False)


def test_a_remote_environment_without_the_role_is_refused_not_run_as_admin(project: Project) -> None:
    migrated(project)
    refused = project.cli("explain", "SELECT 1")
    assert refused.returncode == 4, refused.stderr
    assert "never runs them as the admin role" in refused.stderr and "db-setup-roles" in refused.stderr


def test_explain_cannot_terminate_another_session(explained: Project) -> None:
    with explained.connect() as victim:
        pid = victim.info.backend_pid
        result = explained.cli("explain", f"SELECT pg_terminate_backend({pid})")
        assert result.returncode == 2, result.stderr
        assert "permission denied" in result.stderr or "must be a" in result.stderr
        assert victim.execute("SELECT 1").fetchone() == (1,)  # the session lives


def test_explain_cannot_reach_through_dblink(explained: Project) -> None:
    with explained.connect() as conn:
        try:
            conn.execute("CREATE EXTENSION dblink")
        except psycopg.errors.UndefinedFile as exc:
            # The 17/18 wheels' dblink.so needs a newer libpq than the system's, which the server loads.
            pytest.skip(f"dblink does not load on this build: {exc.diag.message_primary}")
    target = f"host=127.0.0.1 port={explained.server.port} dbname={explained.database} user=cuisine"
    query = f"SELECT dblink_exec('{target}', 'CREATE TABLE leaked (i int)')"
    # dblink is executable by every role by default: db-explain will not run statements until that is taken away.
    refused = explained.cli("explain", query)
    assert refused.returncode == 4, refused.stderr
    assert "dblink" in refused.stderr
    with explained.connect() as conn:
        conn.execute("""DO $$ DECLARE f regprocedure; BEGIN
            FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
                     JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'dblink' AND d.deptype = 'e'
            LOOP EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f); END LOOP; END $$""")
    with pytest.raises(UsageError, match="permission denied"):
        explain(explained.settings, explained.env(), query)
    with explained.connect() as conn:
        assert conn.execute("SELECT to_regclass('leaked')").fetchone() == (None,)


def test_explain_cannot_read_a_server_file_through_an_error(explained: Project) -> None:
    datadir = cluster_for(explained.server.settings, explained.server.env).datadir
    secret = (datadir / "postmaster.opts").read_text().split()[0]
    result = explained.cli("explain", "SELECT pg_read_file('postmaster.opts')::int")
    assert result.returncode == 2, result.stderr
    assert "permission denied" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_a_write_with_analyze_on_a_protected_environment_asks_first(explained: Project) -> None:
    with explained.connect() as holder:
        holder.autocommit = False
        holder.execute("LOCK TABLE recipes IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        refused = explained.cli("explain", "--env", "production", "DELETE FROM users")
        assert refused.returncode == 4, refused.stderr
        assert "protected environment 'production'" in refused.stderr and "yes=1" in refused.stderr
        assert time.monotonic() - started < 4  # never waited for the lock (lock_timeout is 5s)
        waiting = holder.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        assert waiting == (0,)
        holder.rollback()
    through_make = make(explained, "db-explain", "env=production", "query=DELETE FROM users")
    assert "yes=1" in through_make.stderr
    done = explained.cli("explain", "--env", "production", "--yes", "DELETE FROM users")
    assert done.returncode == 0, done.stderr
    assert "sequences" in done.stderr and "nothing was changed" not in done.stderr
    with explained.connect() as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (20,)
    # Reads and plans need no confirmation.
    assert explained.cli("explain", "--env", "production", "SELECT * FROM users").returncode == 0
    assert explained.cli("explain", "--env", "production", "--plan-only", "DELETE FROM users").returncode == 0


def test_the_explain_service_asks_for_confirmation_whoever_calls_it(explained: Project) -> None:
    """diagnose/explain.explain owns the rule, not the CLI: a write with ANALYZE on production, called directly
    without confirmation (no one to ask, or a wrong name typed), is refused (exit 4) and nothing runs."""
    production = explained.env("production")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        explain(explained.settings, production, "DELETE FROM users")
    assert refused.value.exit_code == EXIT_REFUSED
    asked: list[str] = []

    def answer(action: str) -> str:
        asked.append(action)
        return "x"

    with pytest.raises(RefusedError, match="did not match") as refused:
        explain(explained.settings, production, "DELETE FROM users", ask=answer)
    assert refused.value.exit_code == EXIT_REFUSED and "DELETE" in asked[0]
    with explained.connect() as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (20,)
    done = explain(explained.settings, production, "DELETE FROM users", ask=lambda _: "production")
    assert done.analyzed


def test_a_role_with_more_power_is_refused(explained: Project) -> None:
    role = f"exp_{explained.database[-12:]}"
    with explained.connect() as conn:
        conn.execute(sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(role)))
    try:
        with pytest.raises(RefusedError, match="pg_signal_backend"):
            explain(explained.settings, explained.env(), "SELECT 1")
    finally:
        with explained.connect() as conn:
            conn.execute(sql.SQL("REVOKE pg_signal_backend FROM {}").format(sql.Identifier(role)))


def test_the_generated_password_never_shows(explained: Project) -> None:
    password = (explained.root / "explain.pgpass").read_text().strip().rsplit(":", 1)[1]
    result = explained.cli("explain", "SELECT count(*) FROM recipes")
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    with (psycopg.connect(host="127.0.0.1", port=explained.server.port, dbname=explained.database,
                          user=f"exp_{explained.database[-12:]}", password=password) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute("SELECT * FROM pg_authid")


def test_a_local_cluster_gets_the_role_on_first_use_and_journals_it(tmp_path: Path) -> None:
    with local_environment(tmp_path / "local", 18) as local:
        with local.admin() as conn:
            conn.execute("CREATE TABLE dishes (id serial PRIMARY KEY, name text)")
            conn.execute("INSERT INTO dishes (name) SELECT 'dish ' || g FROM generate_series(1, 10) g")
        first = local.cli("explain", "INSERT INTO dishes (name) VALUES ('soup')")
        assert first.returncode == 0, first.stderr
        assert "created cuisine_explain" in first.stderr and "ran as cuisine_explain" in first.stderr
        assert [e.user for e in pgpass.read(local.cluster.passfile)] == ["cuisine", "cuisine_explain"]
        journal = [json.loads(line) for line in
                   (local.settings.env_dir(local.env) / "journal.jsonl").read_text().splitlines()]
        assert any(e["command"] == "security setup-roles" and e["outcome"] == "ok" for e in journal)
        second = local.cli("explain", "SELECT count(*) FROM dishes")
        assert second.returncode == 0 and "created" not in second.stderr, second.stderr
        with local.admin() as conn:
            assert conn.execute("SELECT count(*) FROM dishes").fetchone() == (10,)
            # A table made after the role still works: default privileges follow the admin's new tables.
            conn.execute("CREATE TABLE later (id int)")
        assert local.cli("explain", "SELECT * FROM later").returncode == 0
