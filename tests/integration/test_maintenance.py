"""Maintenance mode through the runbook's spelling: application roles cannot connect while it is on, each gets its
exact previous connection limit back after disable, and a protected environment restores only in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from backup_fixtures import BackupProject
from psycopg import sql

PASSWORD = "app-Pa55-for-maintenance"


@pytest.fixture
def app_roles(bproject: BackupProject) -> Iterator[dict[str, int]]:
    """Three application roles with different limits (unlimited, 7, already 0), dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    roles = {f"app_{suffix}": -1, f"reports_{suffix}": 7, f"retired_{suffix}": 0}
    with bproject.server.admin() as conn:
        # Only granted roles may connect: a restore must carry that over, never widen it.
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(bproject.databases["production"])))
        for role, limit in roles.items():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD), sql.Literal(limit)))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(bproject.databases["production"]), sql.Identifier(role)))
    listed = ", ".join(f'"{role}"' for role in roles)
    bproject.config.write_text(bproject.config.read_text() +
                               f"[environments.production.maintenance]\napplication_roles = [{listed}]\n")
    yield roles
    with bproject.server.admin() as conn:
        for role in roles:
            # Privileges on databases are shared objects: DROP OWNED revokes them on the kept copy too.
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def limits(project: BackupProject, roles: dict[str, int]) -> dict[str, int]:
    with project.server.admin() as conn:
        rows = conn.execute("SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY(%s)", [list(roles)])
        return dict(rows.fetchall())


def connect_as(project: BackupProject, role: str) -> psycopg.Connection[object]:
    return psycopg.connect(host="127.0.0.1", port=project.server.port, user=role, password=PASSWORD,
                           dbname=project.databases["production"], connect_timeout=10)


@pytest.mark.parametrize("server", [14], indirect=True)
def test_maintenance_blocks_application_roles_and_restores_their_exact_limits(
        bproject: BackupProject, app_roles: dict[str, int]) -> None:
    app = next(role for role in app_roles if role.startswith("app_"))
    session = connect_as(bproject, app)
    name = bproject.backup("production", "logical")
    refused = bproject.make("db-restore", "env=production", f"backup={name}", "yes=1")
    assert "needs maintenance mode" in refused.stderr and "Error 4" in refused.stderr

    enabled = bproject.make("maintenance-mode", "enable", "env=production", 'reason=Database restoration in progress')
    assert enabled.returncode == 0, enabled.stderr
    assert limits(bproject, app_roles) == dict.fromkeys(app_roles, 0)
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # its session was ended
    with pytest.raises(psycopg.OperationalError, match="too many connections"):
        connect_as(bproject, app)
    state = json.loads((bproject.root / ".cuisine" / "production" / "maintenance.json").read_text())
    assert state["roles"] == app_roles and state["reason"] == "Database restoration in progress"
    status = bproject.cli("maintenance", "status", "--env", "production", "--json")
    report = json.loads(status.stdout)
    assert report["on"] is True and report["who"] and report["since"] and report["roles"] == app_roles
    # Enabling again (a second operator, a retried script) keeps the recorded previous limits.
    again = bproject.make("db-maintenance-mode", "enable", "env=production")
    assert again.returncode == 0 and json.loads(
        (bproject.root / ".cuisine" / "production" / "maintenance.json").read_text())["roles"] == app_roles

    restored = bproject.make("db-restore", "env=production", f"backup={name}", "yes=1")
    assert restored.returncode == 0, restored.stderr
    with pytest.raises(psycopg.OperationalError):
        connect_as(bproject, app)  # still blocked after the restore, until disable

    with bproject.server.admin() as conn:
        public = conn.execute("SELECT count(*) FROM pg_database AS d, aclexplode(d.datacl) AS a "
                              "WHERE d.datname = %s AND a.grantee = 0 AND a.privilege_type = 'CONNECT'",
                              [bproject.databases["production"]]).fetchone()
    assert public == (0,)
    disabled = bproject.make("db-maintenance-mode", "disable", "env=production")
    assert disabled.returncode == 0, disabled.stderr
    assert limits(bproject, app_roles) == app_roles
    connect_as(bproject, app).close()
    assert not (bproject.root / ".cuisine" / "production" / "maintenance.json").exists()
    journal = (bproject.root / ".cuisine" / "production" / "journal.jsonl").read_text()
    assert '"maintenance enable"' in journal and '"maintenance disable"' in journal


@pytest.mark.parametrize("server", [14], indirect=True)
def test_by_default_superusers_and_the_tools_own_role_are_never_blocked(bproject: BackupProject) -> None:
    suffix = uuid.uuid4().hex[:8]
    with bproject.server.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 3").format(sql.Identifier(f"web_{suffix}")))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(f"dba_{suffix}")))
    try:
        enabled = bproject.cli("maintenance", "enable", "--env", "development", "--json")
        assert enabled.returncode == 0, enabled.stderr
        blocked = json.loads(enabled.stdout)["roles"]
        assert blocked[f"web_{suffix}"] == 3
        assert f"dba_{suffix}" not in blocked and "cuisine" not in blocked
        assert bproject.cli("maintenance", "disable", "--env", "development").returncode == 0
        assert limits(bproject, {f"web_{suffix}": 0})[f"web_{suffix}"] == 3
    finally:
        with bproject.server.admin() as conn:
            for role in (f"web_{suffix}", f"dba_{suffix}"):
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
