"""env list/show and psql: every environment is described, and no secret reaches output or argv."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import CLI, Project
from psycopg import sql

SECRET = "s3cr3t-Pa55-never-shown"


def with_password_env(project: Project) -> None:
    """Production reaches the database as a role whose password comes only from $CUISINE_PW."""
    with project.server.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(f"reader_{project.database}"), sql.Literal(SECRET)))
    dsn = f"host=127.0.0.1 port={project.server.port} user=reader_{project.database} dbname={project.database}"
    text = project.config.read_text().split("[environments.production]")[0]
    project.config.write_text(text + f'[environments.production]\ndsn = "{dsn}"\npassword_env = "CUISINE_PW"\n'
                                     "protected = true\n")


def test_env_list_and_show_describe_connections_without_secrets(project: Project) -> None:
    with_password_env(project)
    listed = project.cli("env", "list", "--json", extra_env={"CUISINE_PW": SECRET})
    assert listed.returncode == 0, listed.stderr
    views = {view["name"]: view for view in json.loads(listed.stdout)}
    assert set(views) == {"development", "production"}
    assert views["production"]["protected"] is True and views["production"]["password_from"] == "$CUISINE_PW"
    assert f"dbname={project.database}" in views["development"]["connection"]
    shown = project.cli("env", "show", "--env", "production", extra_env={"CUISINE_PW": SECRET})
    assert shown.returncode == 0 and "protected" in shown.stdout
    for result in (listed, shown):
        assert SECRET not in result.stdout + result.stderr


def test_an_inline_password_in_a_dsn_is_refused(project: Project) -> None:
    project.config.write_text('[environments.x]\ndsn = "postgresql://u:hunter2@db.internal/cuisine"\n')
    result = project.cli("env", "list")
    assert result.returncode == 2
    assert "environments.x.dsn" in result.stderr and "password" in result.stderr
    assert "hunter2" not in result.stderr


def test_psql_runs_with_credentials_in_its_environment_not_its_argv(project: Project) -> None:
    with_password_env(project)
    # A wrapper psql would be overkill: ask the server what psql's own process saw instead.
    result = project.cli("psql", "--env", "production", "--", "-X", "-A", "-t", "-c",
                         "SELECT current_database()", extra_env={"CUISINE_PW": SECRET})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == project.database
    failing = project.cli("psql", "--", "-X", "-c", "SELECT 1/0")
    assert failing.returncode != 0 and "division by zero" in failing.stderr


def test_the_password_never_appears_in_a_child_process_argv(project: Project) -> None:
    with_password_env(project)
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config), "CUISINE_PW": SECRET}
    child = subprocess.Popen([*CLI, "psql", "--env", "production", "--", "-X", "-c", "SELECT pg_sleep(2)"],
                             cwd=project.root, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[str] = []
    try:
        while child.poll() is None:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/cmdline", "rb") as handle:
                            seen.append(handle.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        continue
    finally:
        child.wait(timeout=30)
    assert child.returncode == 0
    assert any("pg_sleep" in line for line in seen), "the psql child was never observed"
    assert not any(SECRET in line for line in seen)
