"""Backups, replicas and the pooler across a major-version upgrade: a production of PostgreSQL 14 on seeded Cuisine
Code data, archiving WAL, with a replica and PgBouncer, upgraded to 18 with method=link. The new system identifier
archives into its own area; the backup from before still verifies and restores (into 14, with the old area's WAL);
db-apply-logs refuses to cross the upgrade in either direction and names the backup to use; retention keeps the
last pre-upgrade full backup; the replica is rebuilt from the new backup and the archive (the primary serves one
BASE_BACKUP: the backup's); a client connected through PgBouncer before the upgrade goes on after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import AgeKeys
from conftest import MIGRATIONS, available
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.postgres.ports import free_port

APP_PASSWORD = "pooled-app-Secret-42"

pytestmark = [pytest.mark.slow, pytest.mark.serial]


@dataclass
class Upgraded:
    project: PitrProject
    before_backup: str  # the full backup of PostgreSQL 14
    after_backup: str  # the upgraded cluster's first full backup
    old_system: str
    new_system: str
    before_mark: datetime  # just after the last write on 14
    old_area_at_upgrade: set[str]
    report: dict[str, Any]
    pooled_before: int  # server_version_num a pooled client saw before the upgrade
    pooled_after: int  # ... and on the same connection after it
    pooler_port: int


def _system(project: PitrProject, env: str = "production") -> str:
    with project.connect(env) as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None
    return str(row[0])


def _area(project: PitrProject, area: str) -> Path:
    return Path(project.repository.removeprefix("file://")) / "wal" / area


def _keys(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _claims(folder: Path) -> list[dict[str, Any]]:
    """The bodies of the signed records in one archive area (the first line of each claim file)."""
    return [json.loads(path.read_bytes().split(b"\n", 1)[0]) for path in folder.rglob("*-claim-*")]


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Upgraded]:
    if available(14) is None or available(18) is None:
        pytest.skip("PostgreSQL 14 and 18 are both needed")
    try:
        from cuisine_db.pooler import process

        process.program()
    except Exception:
        pytest.skip("pgbouncer is not installed here (Debian's pgbouncer package)")
    project = make_pitr_project(tmp_path_factory.mktemp("upgrade-archive"), 14, age_keys,
                                settings='log_replication_commands = "on"\n')
    text = project.config.read_text().replace("protected = true", "protected = false", 1)
    backup_lines = text.split("[environments.development.backup]\n", 1)[1]
    project.config.write_text(
        text + f"[environments.staging]\nport = {free_port()}\npostgres_version = 18\nprotected = false\n"
        "[environments.staging.server_settings]\nfsync = false\n"
        f"[environments.staging.backup]\n{backup_lines}")
    try:
        import shutil

        from cuisine_db import migrations

        shutil.copytree(MIGRATIONS, project.root / "db" / "migrations")
        from cuisine_db.seed import load

        settings = project.settings
        migrations.migrate(settings, settings.env("production"))
        load(settings, settings.env("production"), scale=1, seed=7)
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        project.ok("backup", "create", "--env", "production", "--type", "full")
        before_backup = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)[-1]["name"]
        project.ok("replica", "create", "--env", "production", "--name", "r1", "--from", "backup")
        with project.connect() as conn:
            conn.execute(f"CREATE ROLE pool_app LOGIN PASSWORD '{APP_PASSWORD}'")
        # The pooler's port is chosen only now: one picked minutes earlier, before the seed and the replica, was
        # taken by another test's server in the meantime (CI saw it).
        pooler_port = free_port()
        with project.config.open("a") as config:
            config.write(f"[environments.production.pooler]\nport = {pooler_port}\n")
        project.ok("pooler", "config", "--env", "production")
        project.ok("pooler", "start", "--env", "production")
        pooled = psycopg.connect(host="127.0.0.1", port=pooler_port, user="pool_app", password=APP_PASSWORD,
                                 dbname="cuisine", autocommit=True, prepare_threshold=None, connect_timeout=10)
        pooled_before = _version(pooled)
        with project.connect() as conn:
            conn.execute("CREATE TABLE marks (note text PRIMARY KEY)")
            conn.execute("INSERT INTO marks VALUES ('written on 14')")
            mark = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            time.sleep(0.05)
            conn.execute("INSERT INTO marks VALUES ('written on 14 after the mark')")  # a commit past the target
        old_system = _system(project)
        result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--yes", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        old_area = _keys(_area(project, "production"))
        new_system = _system(project)
        pooled_after = _version(pooled)
        pooled.close()
        with project.connect() as conn:
            conn.execute("INSERT INTO marks VALUES ('written on 18')")
        project.wait_archived(project.switch())
        yield Upgraded(project, before_backup, report["backup_after"], old_system, new_system, mark, old_area,
                       report, pooled_before, pooled_after, pooler_port)
    finally:
        project.cli("pooler", "stop", "--env", "production")
        project.cli("replica", "drop", "--env", "production", "--name", "r1", "--yes")
        project.destroy()


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return int(row[0])


def test_the_new_system_identifier_archives_into_its_own_area(upgraded: Upgraded) -> None:
    project = upgraded.project
    archive_row = next(row for row in upgraded.report["preflight"]["rows"] if row["check"] == "WAL archive")
    assert archive_row["status"] == "go", archive_row
    record = json.loads((project.root / ".cuisine" / "production" / "wal-areas.json").read_text())
    assert [(a["system_identifier"], a["area"], a["major"]) for a in record["areas"]] == [
        (upgraded.old_system, "production", 14),
        (upgraded.new_system, f"production+{upgraded.new_system}", 18)]
    assert record["areas"][0]["until"] == record["areas"][1]["since"]
    new_area = _area(project, f"production+{upgraded.new_system}")
    new_claims = _claims(new_area)
    assert new_claims, "nothing archived into the new area"
    assert {c["system_identifier"] for c in new_claims if c["system_identifier"]} == {upgraded.new_system}
    old_claims = _claims(_area(project, "production"))
    assert {c["system_identifier"] for c in old_claims if c["system_identifier"]} == {upgraded.old_system}
    # The old cluster's last segment was archived before the stop; nothing reached its area since.
    assert _keys(_area(project, "production")) == upgraded.old_area_at_upgrade
    status = project.cli("wal", "status", "--env", "production", "--json")
    assert status.returncode == 0, status.stdout + status.stderr


def test_the_backup_from_before_is_listed_verified_and_restores_into_14(upgraded: Upgraded) -> None:
    project = upgraded.project
    listed = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)
    names = [b["name"] for b in listed]
    assert upgraded.before_backup in names and upgraded.after_backup in names
    project.ok("backup", "verify", "--env", "production", upgraded.before_backup)
    restored = project.cli("restore", "test", "--env", "production", "--backup", upgraded.before_backup, "--json")
    assert restored.returncode == 0, restored.stdout + restored.stderr


def test_apply_logs_refuses_to_cross_the_upgrade_and_names_the_backup(upgraded: Upgraded) -> None:
    project = upgraded.project
    # The backup from before, restored into an environment of 14: its WAL ends at the upgrade.
    project.ok("cluster", "up", "--env", "development")
    project.ok("maintenance", "enable", "--env", "development", "--reason", "upgrade boundary test")
    project.ok("restore", "database", "--env", "development", "--backup", upgraded.before_backup, "--yes")
    across = project.cli("restore", "apply-logs", "--env", "development")
    assert across.returncode == 4, across.stdout + across.stderr
    assert "upgraded to PostgreSQL 18" in across.stderr and upgraded.after_backup in across.stderr
    before = upgraded.before_mark.isoformat()
    project.ok("restore", "apply-logs", "--env", "development", "--target", before)
    with project.connect("development") as conn:  # replayed from the old area (the backup's system identifier)
        assert conn.execute("SELECT note FROM marks").fetchall() == [("written on 14",)]
    project.ok("maintenance", "disable", "--env", "development")
    # The new cluster's first backup, restored into an environment of 18: replay cannot go back before the upgrade.
    project.ok("cluster", "up", "--env", "staging")
    project.ok("maintenance", "enable", "--env", "staging", "--reason", "upgrade boundary test")
    project.ok("restore", "database", "--env", "staging", "--backup", upgraded.after_backup, "--yes")
    back = project.cli("restore", "apply-logs", "--env", "staging", "--target", before)
    assert back.returncode == 4, back.stdout + back.stderr
    assert "before production's upgrade from PostgreSQL 14 to 18" in back.stderr
    assert upgraded.before_backup in back.stderr
    project.ok("restore", "apply-logs", "--env", "staging")
    with project.connect("staging") as conn:  # replayed from the new area
        assert ("written on 18",) in conn.execute("SELECT note FROM marks").fetchall()
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")  # type: ignore[index]
    project.ok("maintenance", "disable", "--env", "staging")


def test_retention_keeps_the_last_full_backup_from_before_the_upgrade(upgraded: Upgraded) -> None:
    project = upgraded.project
    plan = project.cli("backup", "expire", "--env", "production", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    kept = json.loads(plan.stdout)["kept"]
    last_before = upgraded.report["backup"] or upgraded.before_backup  # the pre-flight's, when it took one
    assert any("before the upgrade" in reason for reason in kept[last_before]), kept
    assert not any("before the upgrade" in reason for name, reasons in kept.items() if name != last_before
                   for reason in reasons), kept


def test_the_replica_is_rebuilt_from_the_new_backup_and_the_pooler_keeps_its_clients(upgraded: Upgraded) -> None:
    project = upgraded.project
    slots = next(row for row in upgraded.report["preflight"]["rows"] if row["check"] == "replication slots")
    assert slots["status"] == "go" and "r1" in slots["detail"], slots
    project.ok("replica", "list", "--env", "production", "--json")
    with project.connect() as conn:
        streaming = conn.execute("SELECT application_name, state FROM pg_stat_replication").fetchall()
    assert ("r1", "streaming") in streaming, streaming
    topology = json.loads((project.root / ".cuisine" / "production" / "replicas.json").read_text())
    node = next(node for node in topology["replicas"] if node["name"] == "r1")
    assert node["note"] == f"seeded from {upgraded.after_backup}"  # the new cluster's first full backup
    replica_port = node["port"]
    settings = project.settings
    with psycopg.connect(host="127.0.0.1", port=replica_port, user="cuisine", dbname="cuisine", autocommit=True,
                         passfile=str(settings.env_dir(settings.env("production")) / "pgpass")) as conn:
        assert _version(conn) // 10000 == 18
    # Routing follows: a read-only command sent to "any replica" reads from the rebuilt one.
    routed = project.cli("table-sizes", "--env", "production", "--replica", "any", "--limit", "3")
    assert routed.returncode == 0, routed.stderr
    assert "reading from" in routed.stdout + routed.stderr and "r1" in routed.stdout + routed.stderr, routed
    # The new primary served exactly one base backup (its first full backup); the replica came from the repository.
    logs = "".join(path.read_text(errors="replace")
                   for path in (project.root / ".cuisine" / "production" / "data" / "log").glob("*"))
    assert logs.count("received replication command: BASE_BACKUP") == 1
    assert upgraded.pooled_before // 10000 == 14 and upgraded.pooled_after // 10000 == 18
    with psycopg.connect(host="127.0.0.1", port=upgraded.pooler_port, user="pool_app", password=APP_PASSWORD,
                         dbname="cuisine", autocommit=True, prepare_threshold=None, connect_timeout=10) as conn:
        assert _version(conn) // 10000 == 18


def test_a_copy_upgrade_rolled_back_brings_the_replica_back_on_14(tmp_path: Path, age_keys: AgeKeys) -> None:
    """copy keeps the old cluster: after the upgrade (the replica rebuilt on 18) a rollback restores PostgreSQL 14
    exactly, archiving into its own area again, and its replica streams again, rebuilt from 14's newest backup."""
    if available(14) is None or available(18) is None:
        pytest.skip("PostgreSQL 14 and 18 are both needed")
    project = make_pitr_project(tmp_path / "copy", 14, age_keys)
    project.config.write_text(project.config.read_text().replace("protected = true", "protected = false", 1))
    try:
        with project.connect() as conn:
            conn.execute("CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 1000) g")
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        project.ok("backup", "create", "--env", "production", "--type", "full")
        project.ok("replica", "create", "--env", "production", "--name", "r1", "--from", "backup")
        system = _system(project)
        project.ok("upgrade", "--env", "production", "--to", "18", "--method", "copy", "--yes")
        assert _system(project) != system
        with project.connect() as conn:
            assert ("r1", "streaming") in conn.execute("SELECT application_name, state FROM pg_stat_replication")
        project.ok("upgrade", "--env", "production", "--rollback", "--yes")
        assert _system(project) == system
        assert not (project.root / ".cuisine" / "production" / "wal-areas.json").exists()
        with project.connect() as conn:
            assert _version(conn) // 10000 == 14
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
            deadline = time.monotonic() + 120
            while ("r1", "streaming") not in conn.execute("SELECT application_name, state FROM pg_stat_replication"):
                assert time.monotonic() < deadline, "the replica does not stream from 14 again"
                time.sleep(0.5)
        project.wait_archived(project.switch())  # archiving into the first area again
        claims = _claims(_area(project, "production"))
        assert {c["system_identifier"] for c in claims if c["system_identifier"]} == {system}
    finally:
        project.cli("replica", "drop", "--env", "production", "--name", "r1", "--yes")
        project.destroy()
