"""WAL retention: with two full backups and a policy that keeps one, `backup expire` removes the older backup and the
WAL before the kept one's start, and not one segment the kept backup needs (from its start to the archive's end);
db-verify-backup checks the kept physical backup with pg_verifybackup. Also `schedule show`, which needs no server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from backup_fixtures import AgeKeys
from conftest import CLI, available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup import catalog
from cuisine_db.backup.wal import archive, wal_names
from cuisine_db.postgres import binaries
from cuisine_db.storage import open_repository

MAJOR = 18 if available(18) is not None or available(14) is None else 14


def _archived(project: PitrProject) -> set[str]:
    settings = project.settings
    env = settings.env("production")
    return {item.name for item in archive.list_archive(open_repository(settings, env), "production")}


def _write_and_archive(project: PitrProject, rows: int) -> None:
    with project.connect() as conn:
        conn.execute("INSERT INTO kept SELECT generate_series(1, %s)", (rows,))
    project.wait_archived(project.switch())


def _incremental(project: PitrProject, parent: str) -> None:
    """PostgreSQL 17+: an incremental backup on the kept full one; retention keeps its base, verification combines
    the chain (pg_combinebackup) before pg_verifybackup, and a table comes back from the chain."""
    with project.connect() as conn:
        conn.execute("INSERT INTO kept SELECT generate_series(1, 7)")
        rows = conn.execute("SELECT count(*) FROM kept").fetchone()
    made = json.loads(project.ok("backup", "create", "--env", "production", "--type", "incremental", "--json").stdout)
    assert made["depends_on"] == parent
    verified = project.cli("backup", "verify", made["name"], "--env", "production")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    kept = json.loads(project.ok("backup", "expire", "--env", "production", "--dry-run", "--json").stdout)["kept"]
    assert f"needed by {made['name']}" in kept[parent]
    with project.connect() as conn:
        conn.execute("DELETE FROM kept")
    project.ok("restore", "tables", "--env", "production", "--backup", made["name"], "--tables", "kept", "--yes")
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == rows


def test_retention_keeps_every_segment_a_kept_backup_needs(tmp_path: Path, age_keys: AgeKeys) -> None:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    project = make_pitr_project(tmp_path / "retention", MAJOR, age_keys)
    with project.config.open("a") as config:
        config.write("[environments.production.backup.retention]\ndaily = 0\nweekly = 0\nmonthly = 0\n")
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE kept (id int)")
        project.ok("backup", "create", "--env", "production", "--type", "full")
        _write_and_archive(project, 10)
        _write_and_archive(project, 10)
        project.ok("backup", "create", "--env", "production", "--type", "full")
        _write_and_archive(project, 10)
        _write_and_archive(project, 10)
        settings = project.settings
        env = settings.env("production")
        older, newer = [e.manifest for e in catalog.list_backups(settings, env) if e.manifest is not None]
        start = wal_names.segment_number(newer.dump["start_wal"])
        before = _archived(project)
        needed = {name for name in before if wal_names.is_history(name)
                  or wal_names.segment_number(name[:24]) >= start}
        assert before - needed, "the older backup's WAL should be in the archive before expiry"

        preview = json.loads(project.ok("backup", "expire", "--env", "production", "--dry-run", "--json").stdout)
        assert preview["expired"] == [older.name]
        assert preview["wal_expired"] == len(before - needed)
        assert _archived(project) == before, "a dry run removed something"

        done = json.loads(project.ok("backup", "expire", "--env", "production", "--json", "--yes").stdout)
        assert done["expired"] == [older.name] and done["wal_kept_from"] == newer.dump["start_wal"]
        assert _archived(project) == needed, "retention removed WAL the kept backup needs, or kept older WAL"
        assert [e.name for e in catalog.list_backups(project.settings, env)] == [newer.name]

        verified = project.make("db-verify-backup", f"backup={newer.name}", "env=production")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "pg_verifybackup" in verified.stdout + verified.stderr
        status = project.cli("wal", "status", "--env", "production", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        # A hole in the archive (a lost segment between the kept backup and the end) is a finding, continuously.
        segments = sorted(name for name in needed if wal_names.is_segment(name))
        assert len(segments) >= 3
        lost = segments[1]
        repository = open_repository(project.settings, env)
        repository.delete([item.key for item in archive.list_archive(repository, "production") if item.name == lost])
        for args in (("wal", "status"), ("backup", "status")):
            found = project.cli(*args, "--env", "production")
            assert found.returncode == 1, found.stdout + found.stderr
            assert lost in found.stdout + found.stderr
        if MAJOR >= 17:
            _incremental(project, newer.name)
    finally:
        project.destroy()


def test_schedule_show(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.production]\nport = 56449\nprotected = true\n'
                      '[environments.production.schedule]\nfull_backup_at = "01:00"\n')

    def show(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "schedule", "show", "--env", "production", *args], capture_output=True,
                              text=True, check=False, env={"CUISINE_DB_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
                              timeout=120)

    shown = show("--json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    lines = [line for line in body["crontab"].splitlines() if line and not line.startswith("#")]
    assert "CRON_TZ=UTC" in lines
    nightly = next(line for line in lines if line.startswith("0 1 * * * "))
    assert f"CUISINE_DB_CONFIG={config}" in nightly and "--job nightly --once" in nightly
    assert any(line.startswith("*/15 * * * * ") and "--job status --once" in line for line in lines)
    units = "\n".join(body["systemd"].values())
    assert "OnCalendar=*-*-* 01:00:00 UTC" in units and "OnCalendar=*:0/15" in units
    assert [step[:2] for step in body["jobs"]["nightly"]["steps"]] == [["backup", "create"], ["backup", "expire"],
                                                                        ["backup", "verify"]]
    # The schedule confirms retention explicitly: unattended, a protected environment would refuse it otherwise.
    assert body["jobs"]["nightly"]["steps"][1] == ["backup", "expire", "--env", "production", "--yes"]
    bad = show("--format", "crontab")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    config.write_text(config.read_text().replace('"01:00"', '"25:00"'))
    wrong = show("--format", "cron")
    assert wrong.returncode == 2 and "full_backup_at" in wrong.stderr, wrong.stderr
