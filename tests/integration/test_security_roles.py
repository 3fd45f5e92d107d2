"""Least privilege: each command runs as the role meant for it, and those roles can do no more than that."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import Project
from psycopg import sql
from security_support import STRONG, cli, local_environment, make

from cuisine_db import migrations
from cuisine_db.config import load_settings
from cuisine_db.postgres import binaries, client_environ, pgpass
from cuisine_db.postgres.local import cluster_for

PURPOSES = ("monitoring", "backup", "operator")


@pytest.fixture
def purpose_roles(project: Project) -> Iterator[dict[str, str]]:
    """Role names of this test's own for each purpose; dropped afterwards (roles are cluster-wide)."""
    suffix = project.database[-8:]
    names = {"monitoring": f"mon{suffix}", "backup": f"bak{suffix}", "operator": f"ops{suffix}"}
    yield names
    with project.server.admin(project.database) as conn:
        for role in names.values():
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def role_table(env: str, names: dict[str, str]) -> str:
    lines = [f"[environments.{env}.roles]"]
    lines += [f'{purpose} = {{ user = "{role}", password_env = "{purpose.upper()}_PW" }}'
              for purpose, role in names.items()]
    return "\n".join(lines) + "\n"


def test_every_command_works_as_the_least_privileged_role_meant_for_it(project: Project,
                                                                       purpose_roles: dict[str, str]) -> None:
    migrations.migrate(project.settings, project.env())
    passwords = {f"{purpose.upper()}_PW": f"{STRONG}-{purpose}" for purpose in PURPOSES}
    log_dir = cluster_for(project.server.settings, project.server.env).datadir / "log"
    # development administers the database; "limited" has the same roles but an admin that cannot log in, so a
    # command that quietly fell back to admin would fail there.
    dsn = f"host=127.0.0.1 port={project.server.port} dbname={project.database}"
    project.config.write_text(
        project.config.read_text() + role_table("development", purpose_roles)
        + f'[environments.limited]\ndsn = "{dsn} user=no_admin_here"\naudit_log_dir = "{log_dir}"\n'
        + role_table("limited", purpose_roles))
    setup = cli(project.config, "security", "setup-roles", "--env", "development", "--json", extra=passwords)
    assert setup.returncode == 0, setup.stderr
    made = {role["purpose"]: role for role in json.loads(setup.stdout)["roles"]}
    assert made["backup"]["memberships"] == ["pg_read_all_data"]
    assert "SELECT on schema_migrations" in made["monitoring"]["grants"]
    assert STRONG not in setup.stdout + setup.stderr

    for command in (["migrate", "status"], ["size"], ["table-sizes"], ["security", "permissions"],
                    ["security", "audit-report", "--markdown", str(project.root / "audit.md")]):
        result = cli(project.config, *command, "--env", "limited", "--json", extra=passwords)
        assert result.returncode == 0, (command, result.stderr)
        json.loads(result.stdout)
    checked = cli(project.config, "security", "check", "--env", "limited", "--json", extra=passwords)
    assert checked.returncode in (0, 1), checked.stderr
    findings = json.loads(checked.stdout)
    assert any(f["check"] == "stored-passwords" and purpose_roles["monitoring"] in f["evidence"] for f in findings)
    assert not any(f["check"] == "hba" for f in findings), "the monitoring role should read pg_hba_file_rules"
    # The admin really is unusable there: a command meant for admin fails.
    refused = cli(project.config, "migrate", "up", "--env", "limited", extra=passwords)
    assert refused.returncode == 3 and "no_admin_here" in refused.stderr

    settings = load_settings({"CUISINE_DB_CONFIG": str(project.config), **passwords})
    limited = settings.env("limited")
    with project.connect() as conn:
        conn.execute("INSERT INTO users (email, display_name) VALUES ('dump@example.com', 'Dump')")
    build = binaries.find(project.server.major, settings.cache_dir)
    environ = {**os.environ, **client_environ(settings, limited, purpose="backup")}
    dump = subprocess.run([str(build.program("pg_dump")), "--data-only", "--table", "users"], env=environ,
                          capture_output=True, text=True, timeout=120, check=False)
    assert dump.returncode == 0 and "dump@example.com" in dump.stdout, dump.stderr
    identify = subprocess.run([str(build.program("psql")), "-X", "-At", "-d",
                               f"dbname={project.database} replication=database", "-c", "IDENTIFY_SYSTEM"],
                              env=environ, capture_output=True, text=True, timeout=120, check=False)
    assert identify.returncode == 0, identify.stderr

    def as_purpose(purpose: str) -> psycopg.Connection[object]:
        return psycopg.connect(host="127.0.0.1", port=project.server.port, dbname=project.database, autocommit=True,
                               user=purpose_roles[purpose], password=passwords[f"{purpose.upper()}_PW"])

    with as_purpose("monitoring") as victim, as_purpose("operator") as operator:
        for conn in (victim, operator):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM users")
        row = operator.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid]).fetchone()
        assert row == (True,)
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
    with as_purpose("backup") as backup, pytest.raises(psycopg.errors.InsufficientPrivilege):
        backup.execute("DELETE FROM users")


def test_a_local_cluster_uses_its_purpose_roles_once_set_up(tmp_path: Path) -> None:
    with local_environment(tmp_path / "local", 14) as local:
        before = json.loads(local.cli("security", "check", "--json").stdout)
        assert not any(f["check"] == "stored-passwords" for f in before), "admin reads pg_authid"
        assert local.make("db-setup-roles").returncode == 0
        users = [entry.user for entry in pgpass.read(local.cluster.passfile)]
        assert users == ["cuisine", "cuisine_backup", "cuisine_monitor", "cuisine_operator", "cuisine_explain"]
        after = json.loads(local.cli("security", "check", "--json").stdout)
        assert any(f["check"] == "stored-passwords" and "cuisine_monitor" in f["evidence"] for f in after)
        as_admin = json.loads(local.cli("security", "check", "--json", "--admin").stdout)
        assert not any(f["check"] == "stored-passwords" for f in as_admin)
        old = {entry.user: entry.password for entry in pgpass.read(local.cluster.passfile)}
        assert local.make("db-setup-roles", "rotate=1").returncode == 0
        new = {entry.user: entry.password for entry in pgpass.read(local.cluster.passfile)}
        assert new["cuisine"] == old["cuisine"] and new["cuisine_monitor"] != old["cuisine_monitor"]
        assert local.cli("size").returncode == 0
        refused = local.cli("security", "update-password", "-u", "cuisine_monitor", input_text=STRONG + "\n")
        assert refused.returncode == 4 and "--rotate" in refused.stderr

        # A server the command itself starts must not inherit what make passed along (password= included).
        local.cluster.stop()
        secret = f"{STRONG}-environ"
        created = make(local.config, "db-create-user", "username=env_check", f"password={secret}")
        assert created.returncode == 0, created.stderr
        pid = int((local.cluster.datadir / "postmaster.pid").read_text().splitlines()[0])
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert secret.encode() not in environ and b"MAKEFLAGS" not in environ
