"""db-test-restore of a physical backup: laid down in a throwaway cluster of its major version, replayed to
consistency, opened, checked with amcheck, its recovery time recorded in the catalog, the cluster removed. And the
finding: a refused test restore (bad input, a safety rail) never writes a failure record; a real failure does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup import catalog
from cuisine_db.backup.manifest import TEST_RESTORE, VERIFICATION, prefix
from cuisine_db.postgres import binaries
from cuisine_db.storage import open_repository

MAJORS = [major for major in (18, 14) if available(major) is not None] or [18]


def _record(project: PitrProject, name: str, which: str = TEST_RESTORE) -> bytes | None:
    repository = open_repository(project.settings, project.settings.env("production"))
    key = prefix(name) + which
    return repository.get_bytes(key) if any(i.key == key for i in repository.list(prefix(name))) else None


def _postgres_on(folder: Path) -> list[str]:
    """Server processes whose command line names a folder under `folder` (the throwaway cluster's data)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in line and str(folder) in line:
            found.append(line)
    return found


@pytest.mark.parametrize("major", MAJORS)
def test_a_physical_test_restore_replays_checks_and_records_its_recovery_time(major: int, tmp_path: Path,
                                                                              age_keys: AgeKeys) -> None:
    if available(major) is None:
        binaries.install(major, cache_dir())
    project = make_pitr_project(tmp_path / "physical", major, age_keys)
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE dishes (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO dishes SELECT g, 'dish ' || g FROM generate_series(1, 5000) g")
        full = json.loads(project.ok("backup", "create", "--env", "production", "--type", "full", "--json").stdout)
        with project.connect() as conn:
            conn.execute("INSERT INTO dishes SELECT g, 'later' FROM generate_series(5001, 5100) g")

        tested = project.make("db-test-restore", "env=production", "backup=latest")
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert f"using backup {full['name']}" in tested.stderr and "measured recovery time" in tested.stdout
        record = catalog.Check.from_json(_record(project, full["name"]) or b"")
        assert record is not None and record.ok and record.seconds > 0, record
        assert record.details["type"] == "full" and record.details["tables"]["public.dishes"] == 5000
        assert record.details["amcheck"]["tables (verify_heapam)"] >= 1
        assert record.details["amcheck"]["B-tree indexes (bt_index_check, heapallindexed)"] >= 1
        assert record.details["server_version"].startswith(str(major))
        # The throwaway cluster is gone: no folder left in the workspace, no server on it.
        workspace = project.root / ".cuisine" / "tmp"
        assert not workspace.exists() or not any(workspace.iterdir())
        assert not _postgres_on(workspace)  # the throwaway cluster lives in the workspace
        # As the runbook writes it: production's backup tested from another environment, reading production's keys
        # and archive; that environment's own server is not needed.
        beside = project.cli("restore", "test", "--env", "development", "--backup", full["name"], "--json")
        assert beside.returncode == 0, beside.stderr
        assert json.loads(beside.stdout)["physical"] is True
        elsewhere = catalog.Check.from_json(_record(project, full["name"]) or b"")
        assert elsewhere is not None and elsewhere.ok and elsewhere.details["env"] == "development"
        # --keep means nothing for a throwaway cluster: bad input, and the good record stays as it was.
        before = _record(project, full["name"])
        kept = project.cli("restore", "test", "--env", "production", "--backup", full["name"], "--keep")
        assert kept.returncode == 2 and _record(project, full["name"]) == before, kept.stderr
        listed = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)
        assert next(b for b in listed if b["name"] == full["name"])["test_restore"]["ok"] is True
        if major >= 17:
            # An incremental chain: combined (pg_combinebackup) in the throwaway cluster, with the rows added since.
            made = json.loads(project.ok("backup", "create", "--env", "production", "--type", "incremental",
                                         "--json").stdout)
            assert made["depends_on"] == full["name"]
            project.ok("restore", "test", "--env", "production", "--backup", made["name"])
            chained = catalog.Check.from_json(_record(project, made["name"]) or b"")
            assert chained is not None and chained.ok and chained.details["tables"]["public.dishes"] == 5100
        # A real failure (an object of the backup is gone) is recorded, and the throwaway cluster goes all the same.
        repository = open_repository(project.settings, project.settings.env("production"))
        repository.delete([i.key for i in repository.list(prefix(full["name"])) if "pg_wal.tar" in i.key])
        broken = project.cli("restore", "test", "--env", "production", "--backup", full["name"])
        assert broken.returncode in (1, 3), broken.stdout + broken.stderr
        failed = catalog.Check.from_json(_record(project, full["name"]) or b"")
        assert failed is not None and not failed.ok and failed.problems
        assert not workspace.exists() or not any(workspace.iterdir())
        assert not _postgres_on(workspace)  # the throwaway cluster lives in the workspace
    finally:
        project.destroy()


def test_a_refused_test_restore_or_verification_writes_no_failure_record(tmp_path: Path, age_keys: AgeKeys) -> None:
    major = MAJORS[0]
    project = make_pitr_project(tmp_path / "refused", major, age_keys)
    try:
        project.ok("cluster", "up", "--env", "production")
        with project.connect() as conn:
            conn.execute("CREATE TABLE dishes (id int PRIMARY KEY)")
            conn.execute("INSERT INTO dishes SELECT generate_series(1, 100)")
        logical = json.loads(project.ok("backup", "create", "--env", "production", "--type", "logical",
                                        "--json").stdout)["name"]
        partial = json.loads(project.ok("backup", "create", "--env", "production", "--type", "tables", "--tables",
                                        "dishes", "--json").stdout)["name"]
        project.ok("backup", "verify", logical, "--env", "production")
        project.ok("restore", "test", "--env", "production", "--backup", logical)
        good = {which: _record(project, logical, which) for which in (TEST_RESTORE, VERIFICATION)}
        assert all(good.values())

        # Bad input (exit 2): a backup of some tables is no whole database.
        wrong = project.cli("restore", "test", "--env", "production", "--backup", partial)
        assert wrong.returncode == 2, wrong.stderr
        assert _record(project, partial) is None
        # A safety rail (exit 4): an age identity others can read is refused before anything is tried.
        age_keys.identity_file.chmod(0o644)
        try:
            for args in (("restore", "test", "--env", "production", "--backup", logical),
                         ("backup", "verify", logical, "--env", "production")):
                refused = project.cli(*args)
                assert refused.returncode == 4, refused.stdout + refused.stderr
        finally:
            age_keys.identity_file.chmod(0o600)
        assert {which: _record(project, logical, which) for which in good} == good

        # A real attempt that fails is recorded as failed: an object of the backup is gone.
        repository = open_repository(project.settings, project.settings.env("production"))
        data = [i.key for i in repository.list(prefix(logical)) if i.key.split("/")[-1][0].isdigit()]
        repository.delete(data[:1])
        failed = project.cli("restore", "test", "--env", "production", "--backup", logical)
        assert failed.returncode in (1, 3), failed.stderr
        record = catalog.Check.from_json(_record(project, logical) or b"")
        assert record is not None and not record.ok and record.problems
    finally:
        project.destroy()
