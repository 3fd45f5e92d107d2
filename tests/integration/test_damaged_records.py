"""A damaged record in the repository shows as damaged with its file named, never as "never verified": backup list,
show and status for a backup's verification.json; archive list for an archive's records; and an archive run whose
deletion record is damaged stops naming it instead of deleting again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys, BackupProject, make_backup_project
from conftest import Server

from cuisine_db.archive import catalog as archives
from cuisine_db.backup.manifest import VERIFICATION, prefix
from cuisine_db.dashboard import reads
from cuisine_db.storage import Repository, open_repository

EVENTS = """
CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp NOT NULL);
INSERT INTO events SELECT n, localtimestamp - make_interval(days => n * 3) FROM generate_series(1, 200) AS n
"""


def repository(project: BackupProject, env: str = "production") -> Repository:
    settings = project.settings
    return open_repository(settings, settings.env(env))


def flip(repo: Repository, key: str) -> None:
    data = bytearray(repo.get_bytes(key))
    data[len(data) // 2] ^= 0x20
    repo.put_bytes(key, bytes(data))


@pytest.mark.parametrize("server", [18], indirect=True)
def test_a_corrupt_verification_record_shows_as_damaged_naming_it(bproject: BackupProject) -> None:
    name = bproject.backup("production", "logical")
    # latest is resolved by the verify service itself, which says which backup it took.
    latest = bproject.cli("backup", "verify", "latest", "--env", "production")
    assert latest.returncode == 0 and f"using backup {name} (" in latest.stderr, latest.stderr
    (listed,) = bproject.backups("production")
    assert listed["verification"]["ok"] is True and listed["damaged"] == []

    repo = repository(bproject)
    key = prefix(name) + VERIFICATION
    flip(repo, key)
    where = f"{repo.url.rstrip('/')}/{key}"

    (listed,) = bproject.backups("production")
    assert listed["verification"] == "damaged", listed
    assert [damage["where"] for damage in listed["damaged"]] == [where]
    assert listed["test_restore"] is None  # no test restore yet: that one is "never"
    table = bproject.cli("backup", "list", "--env", "production")
    assert table.returncode == 0, table.stderr
    assert "damaged" in table.stdout and "never" in table.stdout  # the test restore column
    assert where in table.stdout  # in full, on a line of its own

    shown = bproject.cli("backup", "show", name, "--env", "production", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["verification"] == "damaged"

    status = bproject.cli("backup", "status", "--env", "production", "--json")
    findings = [f for f in json.loads(status.stdout)["findings"] if f["check"] == "damaged record"]
    assert [(f["subject"], where in f["evidence"]) for f in findings] == [(name, True)]

    settings = bproject.settings
    (row,) = reads.recovery(settings, settings.env("production")).backups  # the dashboard's Recovery page
    assert (row.verified, row.test_restore) == ("damaged", "never") and [d.split(": ")[0] for d in row.damaged] == [
        where]

    # Verifying again writes a sound record: damaged no more.
    assert bproject.cli("backup", "verify", name).returncode == 0
    (listed,) = bproject.backups("production")
    assert listed["verification"]["ok"] is True and listed["damaged"] == []


@pytest.mark.parametrize("server", [18], indirect=True)
def test_damaged_archive_records_are_listed_and_a_damaged_deletion_record_stops_the_run(
        server: Server, tmp_path: Path, age_keys: AgeKeys) -> None:
    project = make_backup_project(server, tmp_path / "project", age_keys)
    with project.connect("development") as conn:
        conn.execute(EVENTS)
    run = ("archive", "create", "--env", "development", "--table", "events", "--column", "happened_at",
           "--older-than", "52w", "--yes", "--json")
    done = project.cli(*run)
    assert done.returncode == 0, done.stderr
    (archived,) = json.loads(done.stdout)["archives"]
    name = archived["name"]
    repo = repository(project, "development")
    for record in (VERIFICATION, archives.DELETION):
        flip(repo, archives.prefix(name) + record)

    listed = project.cli("archive", "list", "--env", "development", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["state"], entry["verification"], entry["deletion"], entry["pending"]) == (
        "damaged", "damaged", "damaged", False)
    wheres = sorted(damage["where"] for damage in entry["damaged"])
    assert wheres == sorted(f"{repo.url.rstrip('/')}/{archives.prefix(name)}{record}"
                            for record in (archives.DELETION, VERIFICATION))
    table = project.cli("archive", "list", "--env", "development")
    assert "damaged" in table.stdout and all(where in table.stdout for where in wheres)

    with project.connect("development") as conn:
        conn.execute("INSERT INTO events SELECT n, localtimestamp - interval '2 years' "
                     "FROM generate_series(1001, 1010) AS n")
    again = project.cli(*run)
    assert again.returncode == 1, again.stderr
    assert archives.DELETION in again.stderr and "damaged" in again.stderr
    with project.connect("development") as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE id > 1000").fetchone()
    assert row is not None and row[0] == 10  # nothing was deleted
