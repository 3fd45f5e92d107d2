"""Grants, revokes and the permissions listing on real servers; hostile input changes nothing (fuzzed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cli_support import error_lines
from conftest import Project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from security_support import STRONG, cli, make

from cuisine_db import migrations, security
from cuisine_db.cli import main
from cuisine_db.cli.common import settings as cli_settings


@pytest.fixture
def migrated(project: Project) -> Iterator[tuple[Project, str]]:
    """A migrated project and a login role of this test's own (dropped afterwards)."""
    migrations.migrate(project.settings, project.env())
    role = "g" + project.database[-8:]
    security.create_user(project.settings, project.env(), role, security.Secret(STRONG))
    yield project, role
    with project.server.admin(project.database) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def snapshot(project: Project) -> tuple[Any, ...]:
    """Roles, table ACLs, default ACLs and schema ACLs: what a grant or a user command could change."""
    with project.connect() as conn:
        return (
            conn.execute("SELECT rolname FROM pg_roles ORDER BY 1").fetchall(),
            conn.execute("SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                         "ORDER BY 1").fetchall(),
            conn.execute("SELECT defaclrole, defaclacl::text FROM pg_default_acl ORDER BY 1").fetchall(),
            conn.execute("SELECT nspname, nspacl::text FROM pg_namespace ORDER BY 1").fetchall(),
        )


def as_role(project: Project, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=project.server.port, user=role, password=STRONG,
                           dbname=project.database, autocommit=True)


def test_select_on_all_tables_also_covers_future_tables(migrated: tuple[Project, str]) -> None:
    project, role = migrated
    result = make(project.config, "db-grant-permission", "env=development", f"username={role}", "permission=SELECT",
                  "tables=ALL")
    assert result.returncode == 0, result.stderr
    with project.connect() as conn:
        conn.execute("CREATE TABLE added_later (id int)")
    with as_role(project, role) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM added_later").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO added_later VALUES (1)")
    listed = cli(project.config, "security", "permissions", "-u", role, "--json")
    report = json.loads(listed.stdout)
    tables = {row["table_name"] for row in report["permissions"] if row["via"] == "direct"}
    assert {"users", "recipes", "added_later"} <= tables
    assert any(d["grantee"] == role and d["kind"] == "tables" for d in report["defaults"])


def test_named_tables_insert_and_revoke_with_what_remains_through_membership(migrated: tuple[Project, str]) -> None:
    project, role = migrated
    group = role + "_grp"
    with project.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        conn.execute(sql.SQL("GRANT SELECT ON users TO {}").format(sql.Identifier(group)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)))
    try:
        granted = cli(project.config, "security", "grant", "-u", role, "-p", "select,insert", "-t", "users,recipes")
        assert granted.returncode == 0, granted.stderr
        with as_role(project, role) as conn:
            conn.execute("INSERT INTO users (email, display_name) VALUES ('a@b.c', 'A')")
        listed = json.loads(cli(project.config, "security", "permissions", "-u", role, "--json").stdout)
        via = {(row["table_name"], row["via"]): row["privileges"] for row in listed["permissions"]}
        assert via[("users", "direct")] == "INSERT,SELECT" and via[("users", f"member of {group}")] == "SELECT"
        revoked = cli(project.config, "security", "revoke", "-u", role, "-p", "SELECT", "-t", "users", "--json")
        assert revoked.returncode == 0, revoked.stderr
        remaining = json.loads(revoked.stdout)["remaining"]
        assert {(r["table_name"], r["via"]) for r in remaining} >= {("users", f"member of {group}")}
    finally:
        with project.connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(group)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(group)))


def test_insert_on_a_schema_with_serial_columns_then_revoke_all(migrated: tuple[Project, str]) -> None:
    project, role = migrated
    with project.connect() as conn:
        conn.execute("CREATE SCHEMA reporting")
        conn.execute("CREATE TABLE reporting.daily (id serial PRIMARY KEY, total int)")
    granted = cli(project.config, "security", "grant", "-u", role, "-p", "INSERT,SELECT", "-t", "ALL",
                  "--schema", "reporting", "--json")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout)["sequences"] == ["reporting.daily_id_seq"]
    with project.connect() as conn:
        conn.execute("CREATE TABLE reporting.weekly (id serial PRIMARY KEY, total int)")
    with as_role(project, role) as conn:
        # serial columns need the sequence: granted for today's tables and, by default privileges, tomorrow's.
        conn.execute("INSERT INTO reporting.daily (total) VALUES (1)")
        conn.execute("INSERT INTO reporting.weekly (total) VALUES (1)")
    revoked = cli(project.config, "security", "revoke", "-u", role, "-p", "INSERT,SELECT", "-t", "ALL",
                  "--schema", "reporting")
    assert revoked.returncode == 0, revoked.stderr
    with project.connect() as conn:
        conn.execute("CREATE TABLE reporting.monthly (id serial PRIMARY KEY)")
        assert conn.execute("SELECT count(*) FROM pg_default_acl WHERE defaclnamespace = 'reporting'::regnamespace"
                            ).fetchone() == (0,)
    with as_role(project, role) as conn:
        for table in ("daily", "weekly", "monthly"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES").format(sql.Identifier("reporting", table)))


BAD_GRANTS = [
    (["username=x; DROP ROLE postgres", "permission=SELECT", "tables=users"], "not a plain role name"),
    (["username=o'brien", "permission=SELECT", "tables=users"], "not a plain role name"),
    (['username=x"y', "permission=SELECT", "tables=users"], "not a plain role name"),
    (["username=réports", "permission=SELECT", "tables=users"], "not a plain role name"),
    (["username=" + "r" * 64, "permission=SELECT", "tables=users"], "longer than 63 bytes"),
    (["username={role}", "permission=SELEKT", "tables=users"], "unknown table privilege"),
    (["username={role}", "permission=SELECT", "tables=users,nosuchtable"], "no such table: nosuchtable"),
    (["username={role}", "permission=SELECT", "tables=users", "schema=nosuch"], "schema 'nosuch' does not exist"),
    (["username={role}", "permission=SELECT", "tables=pg_catalog.pg_authid"],
     "schema 'pg_catalog' is PostgreSQL's own"),
]


once = pytest.mark.postgres(max=14, reason="make and the CLI's validation are the same on every server version")


@once
def test_bad_grants_through_make_are_one_line_exit_2_and_change_nothing(migrated: tuple[Project, str]) -> None:
    project, role = migrated
    before = snapshot(project)
    for args, expected in BAD_GRANTS:
        result = make(project.config, "db-grant-permission", *[arg.format(role=role) for arg in args])
        lines = error_lines(result.stderr)
        assert "Error 2" in result.stderr and len(lines) == 1 and expected in lines[0], (args, result.stderr)
    assert snapshot(project) == before


@once
def test_bad_usernames_for_every_user_command_change_nothing(migrated: tuple[Project, str]) -> None:
    project, _ = migrated
    before = snapshot(project)
    for target in ("db-create-user", "db-update-password", "db-drop-user", "db-revoke-permission", "db-permissions"):
        result = make(project.config, target, "username=x; DROP ROLE postgres", "permission=SELECT", "tables=users",
                      input_text=STRONG + "\n")
        lines = error_lines(result.stderr)
        assert "Error 2" in result.stderr and len(lines) == 1 and "not a plain role name" in lines[0], target
    assert snapshot(project) == before


def run_in_process(project: Project, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The CLI's main() in this process (no interpreter start per example), returning its exit code."""
    monkeypatch.setenv("CUISINE_DB_CONFIG", str(project.config))
    monkeypatch.setenv("FUZZ_PW", STRONG)
    cli_settings.cache_clear()
    monkeypatch.setattr("sys.argv", ["cuisine-db", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        cli_settings.cache_clear()
    return 0


def _plain(value: str) -> bool:
    return value.isascii() and value.replace("_", "a").isalnum() and value == value.lower() and 0 < len(value) < 64 \
        and not value[0].isdigit()


hostile = st.one_of(
    st.text(min_size=0, max_size=80).filter(lambda v: not _plain(v.strip())),
    st.sampled_from(["x; DROP ROLE postgres", "x' OR '1'='1", 'x"; --', "r" * 64, "rôle", "ρόλος", "x\ny", "a b",
                     "pg_monitor", "public", "Robert'); DROP TABLE users;--"]),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=hostile, permission=st.sampled_from(["SELECT", "SELECT,INSERT", "ALL", "DROP", "SELECT;", ""]),
       tables=st.sampled_from(["users", "ALL", "users,recipes", "nope", "users;x", ""]))
def test_fuzz_hostile_usernames_never_reach_the_server(migrated: tuple[Project, str], monkeypatch: pytest.MonkeyPatch,
                                                       username: str, permission: str, tables: str) -> None:
    project, _ = migrated
    before = snapshot(project)
    for args in (["security", "grant", "-u", username, "-p", permission, "-t", tables],
                 ["security", "create-user", "-u", username, "--password-env", "FUZZ_PW"],
                 ["security", "drop-user", "-u", username, "--yes"]):
        assert run_in_process(project, monkeypatch, *args) == 2, args
    assert snapshot(project) == before


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(permission=st.text(min_size=1, max_size=30).filter(
           lambda v: {w.strip().upper() for w in v.split(",")} - {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE",
                                                                   "REFERENCES", "TRIGGER", "MAINTAIN", "ALL"}),
       table=st.from_regex(r"\A[a-z_][a-z0-9_]{0,20}\Z").filter(
           lambda v: v not in ("users", "recipes", "ingredients", "transformations", "recipe_steps", "kitchens",
                               "executions", "recipe_step_ingredients", "schema_migrations", "all")))
def test_fuzz_unknown_privileges_and_missing_tables_change_nothing(migrated: tuple[Project, str],
                                                                    monkeypatch: pytest.MonkeyPatch, permission: str,
                                                                    table: str) -> None:
    project, role = migrated
    before = snapshot(project)
    assert run_in_process(project, monkeypatch, "security", "grant", "-u", role, "-p", permission, "-t", "users") == 2
    assert run_in_process(project, monkeypatch, "security", "grant", "-u", role, "-p", "SELECT",
                          "-t", f"users,{table}") == 2
    assert snapshot(project) == before


CATALOG_GRANTS = [
    (["tables=pg_catalog.pg_authid"], "schema 'pg_catalog' is PostgreSQL's own"),
    (["tables=Pg_Catalog.pg_authid"], "schema 'Pg_Catalog' is PostgreSQL's own"),
    (["tables=pg_authid"], "pg_authid is a PostgreSQL system catalog"),
    (["tables=PG_SHADOW,users"], "pg_shadow is a PostgreSQL system catalog"),
    (["tables=ALL", "schema=pg_catalog"], "schema 'pg_catalog' is PostgreSQL's own"),
    (["tables=ALL", "schema=information_schema"], "schema 'information_schema' is PostgreSQL's own"),
    (["tables=pg_toast.pg_toast_1260"], "schema 'pg_toast' is PostgreSQL's own"),
]


def test_catalogs_are_refused_and_a_grant_made_by_hand_is_flagged(migrated: tuple[Project, str]) -> None:
    project, role = migrated
    before = snapshot(project)
    for args, expected in CATALOG_GRANTS:
        result = cli(project.config, "security", "grant", "--username", role, "--permission", "SELECT",
                     *_options(args))
        assert result.returncode == 2, (args, result.stderr)
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and expected in lines[0], (args, result.stderr)
    assert snapshot(project) == before
    # What db-grant-permission refuses, a hand-made GRANT can still do: db-security-check flags it, with the fix.
    with project.connect() as conn:
        conn.execute(sql.SQL("GRANT SELECT ON pg_catalog.pg_authid TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT (rolpassword) ON pg_catalog.pg_authid TO {}").format(sql.Identifier(role)))
    checked = cli(project.config, "security", "check", "--admin", "--json")
    assert checked.returncode == 1, checked.stderr
    [finding] = [f for f in json.loads(checked.stdout) if f["check"] == "catalog-grants"]
    assert finding["severity"] == "error" and finding["subject"] == "pg_catalog.pg_authid"
    assert role in finding["evidence"] and "SELECT" in finding["evidence"]
    assert f"REVOKE ALL ON TABLE pg_catalog.pg_authid FROM {role}" in finding["fix"]
    with project.connect() as conn:
        conn.execute(sql.SQL("REVOKE ALL ON TABLE pg_catalog.pg_authid FROM {}").format(sql.Identifier(role)))
    after = cli(project.config, "security", "check", "--admin", "--json")
    assert not [f for f in json.loads(after.stdout) if f["check"] == "catalog-grants"]


def _options(args: list[str]) -> list[str]:
    options = []
    for arg in args:
        key, _, value = arg.partition("=")
        options += [f"--{key}", value]
    return options
