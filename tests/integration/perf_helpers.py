"""Shared by the performance-tuning tests: make runs, a seeded template database, its clones, a query workload."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from cli_support import run_make
from conftest import Project, Server, make_project
from psycopg import sql

from cuisine_db import migrations
from cuisine_db.postgres.local import cluster_for

WORKLOAD_QUERY = "SELECT * FROM recipes WHERE user_id = %s ORDER BY created_at DESC LIMIT 20"


def make(project: Project, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """A runbook target, as an operator types it, against the project's configuration."""
    return run_make(project.config, *args, input_text=input_text)


def cli_json(project: Project, *args: str) -> Any:
    result = project.cli(*args, "--json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def enable_pgss(project: Project) -> None:
    with project.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def migrated(project: Project) -> Project:
    migrations.migrate(project.settings, project.env())
    return project


def clone(server: Server, template: str, root: Path) -> Project:
    """A fresh project whose database is a copy of the template (CREATE DATABASE ... TEMPLATE)."""
    project = make_project(server, root)
    with server.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(project.database)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(project.database),
                                                                      sql.Identifier(template)))
    enable_pgss(project)
    return project


def heavy_users(project: Project, count: int = 5) -> list[int]:
    with project.connect() as conn:
        rows = conn.execute("SELECT user_id FROM recipes GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT %s", (count,))
        return [row[0] for row in rows]


def workload(project: Project, rounds: int = 40) -> list[int]:
    """The application's hot path: a heavy user's latest recipes, plus lookups the schema already serves well."""
    users = heavy_users(project)
    with project.connect() as conn:
        for _ in range(rounds):
            for user in users:
                conn.execute(WORKLOAD_QUERY, (user,)).fetchall()
        for recipe in range(1, 41):
            conn.execute("SELECT * FROM executions WHERE recipe_id = %s", (recipe,)).fetchall()
            conn.execute("SELECT * FROM recipes WHERE id = %s", (recipe,)).fetchall()
    return users


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def auto_conf(server: Server) -> str:
    return (cluster_for(server.settings, server.env).datadir / "postgresql.auto.conf").read_text()


def explain_role(project: Project) -> str:
    """Give the project's environments db-explain's own role (as a remote operator would: setup-roles, then
    roles.explain in cuisine-db.toml); db-explain refuses a remote environment without one."""
    from cuisine_db.security.roles import setup_roles

    role = f"exp_{project.database[-12:]}"
    passfile = project.root / "explain.pgpass"
    passfile.write_text(f"127.0.0.1:{project.server.port}:{project.database}:{role}:{uuid.uuid4().hex}\n")
    passfile.chmod(0o600)
    text = project.config.read_text()
    for env in ("development", "production"):
        text += f'[environments.{env}.roles]\nexplain = {{ user = "{role}", passfile = "{passfile}" }}\n'
    project.config.write_text(text)
    setup_roles(project.settings, project.env(), only=("explain",))
    return role


def has_hypopg(server: Server) -> bool:
    with server.admin() as conn:
        row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
        return bool(row and row[0])
