"""The finding as written: `make db-expire-backups env=production` with no yes=1, no terminal and no dry-run deleted
the only verified and test-restored backup, full backups that were point-in-time bases, and WAL, and exited 0.
Now it shows the plan and refuses (exit 4) without deleting anything; with yes=1 the protected backups stay."""

from __future__ import annotations

import json
import time
from pathlib import Path

from backup_fixtures import AgeKeys
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup.wal import wal_names
from cuisine_db.postgres import binaries
from cuisine_db.storage import open_repository

MAJOR = 18 if available(18) is not None or available(14) is None else 14


def _everything(project: PitrProject) -> set[str]:
    """Every key in production's repository: backups, their records and the WAL archive."""
    repository = open_repository(project.settings, project.settings.env("production"))
    return {info.key for info in repository.list("")}


def _backup(project: PitrProject, kind: str) -> str:
    with project.connect() as conn:
        conn.execute("INSERT INTO kept SELECT generate_series(1, 25)")
    project.wait_archived(project.switch())
    time.sleep(1.1)  # backup names carry the second they were taken
    made = json.loads(project.ok("backup", "create", "--env", "production", "--type", kind, "--json").stdout)
    return str(made["name"])


def test_expire_on_production_previews_refuses_without_yes_and_keeps_the_protected_backups(
        tmp_path: Path, age_keys: AgeKeys) -> None:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    project = make_pitr_project(tmp_path / "expire", MAJOR, age_keys)
    with project.config.open("a") as config:
        # One backup a day by the calendar: every backup of today but the newest of each type would go.
        config.write("[environments.production.backup.retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n")
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE kept (id int)")
        first_full = _backup(project, "full")
        tested = _backup(project, "logical")
        project.ok("backup", "verify", tested, "--env", "production")
        project.ok("restore", "test", "--env", "production", "--backup", tested)
        second_full = _backup(project, "full")
        middle_logical = _backup(project, "logical")
        newest_logical = _backup(project, "logical")
        newest_full = _backup(project, "full")
        before = _everything(project)

        # No terminal, no yes=1, no dry-run: the plan is shown, nothing goes, exit 4 (make reports its failure).
        refused = project.cli("backup", "expire", "--env", "production")
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "no terminal" in refused.stderr and "yes=1" in refused.stderr
        assert middle_logical in refused.stdout and "goes" in refused.stdout
        assert "point-in-time window" in refused.stderr
        through_make = project.make("db-expire-backups", "env=production")
        assert through_make.returncode != 0 and "no terminal" in through_make.stderr, through_make.stderr
        # On a terminal, a wrong answer deletes nothing either.
        mistyped = project.make("db-expire-backups", "env=production", typed="staging")
        assert mistyped.returncode != 0 and "did not match" in mistyped.stderr, mistyped.stdout + mistyped.stderr
        preview = project.make("db-expire-backups", "env=production", "dry-run=1")
        assert preview.returncode == 0 and middle_logical in preview.stdout, preview.stdout + preview.stderr
        assert _everything(project) == before, "a refused or previewed expiry deleted something"
        journal = [line for line in project.journal() if line["command"] == "backup expire"]
        assert [line["outcome"] for line in journal][:3] == ["refused", "refused", "refused"]

        done = json.loads(project.ok("backup", "expire", "--env", "production", "--yes", "--json").stdout)
        kept = done["kept"]
        assert any("newest verified" in r for r in kept[tested]) and any("test-restored" in r for r in kept[tested])
        assert any("point-in-time base" in r for r in kept[first_full]), kept
        assert any("newest physical" in r for r in kept[newest_full]), kept
        assert set(done["expired"]) == {second_full, middle_logical}, done
        assert newest_logical in kept
        # The window the policy promises is whole: it still starts at the first full backup, whose WAL all stays
        # (only segments from before it went).
        assert done["window_after"] == done["window_before"]
        start = json.loads(project.ok("backup", "show", first_full, "--env", "production", "--json").stdout)[
            "manifest"]["dump"]["start_wal"]
        assert done["wal_kept_from"] == start and done["wal_last"] < start
        after = _everything(project)
        assert not any(second_full in key or middle_logical in key for key in after)
        needed = {key for key in before if (parsed := wal_names.parse_key(key)) is not None
                  and (wal_names.is_history(parsed.name) or parsed.name[:24] >= start)}
        assert needed and needed <= after
        assert any(key.endswith(f"{tested}/test-restore.json") for key in after)
    finally:
        project.destroy()
