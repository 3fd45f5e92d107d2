"""trust_unsigned=1 for every restore kind (issue 15 item 2): a backup, archive or WAL file made before signatures
is refused (exit 4 naming the object) unless trust_unsigned says so, by name only (never `latest`), journaled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backup_fixtures import AgeKeys, BackupProject, make_backup_project
from conftest import Server, available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup.manifest import SIGNATURE, prefix
from cuisine_db.backup.wal import records, wal_names
from cuisine_db.postgres import binaries
from cuisine_db.storage import open_repository

EVENTS = """
CREATE TABLE events (id int PRIMARY KEY, happened_at timestamp NOT NULL);
INSERT INTO events SELECT n, localtimestamp - make_interval(days => n * 3) FROM generate_series(1, 300) AS n
"""


def _unsign(project: BackupProject | PitrProject, env: str, key: str) -> None:
    """What a backup made before signatures looks like: no signature beside it."""
    settings = project.settings
    repository = open_repository(settings, settings.env(env))
    assert repository.exists(key)
    repository.delete([key])


def _journaled(project: BackupProject, env: str, command: str) -> dict[str, Any]:
    path = project.root / ".cuisine" / env / "journal.jsonl"
    entries: list[dict[str, Any]] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in entries if entry.get("command") == command][-1]


@pytest.mark.parametrize("kind", ["tables", "test"])
def test_restore_tables_and_test_restore_take_an_unsigned_backup_only_by_name_with_trust_unsigned(
        bproject: BackupProject, kind: str) -> None:
    name = bproject.backup("production")
    _unsign(bproject, "production", prefix(name) + SIGNATURE)
    if kind == "tables":
        argv = ["restore", "tables", "--env", "production", "--tables", "kitchens", "--yes"]
        command = "restore-tables"
    else:
        argv = ["restore", "test", "--env", "staging"]
        command = "test-restore"
        env = "staging"
    env = "production" if kind == "tables" else "staging"
    refused = bproject.cli(*argv, "--backup", name)
    assert refused.returncode == 4, refused.stderr
    assert f"backups/{name}/manifest.json" in refused.stderr and "trust_unsigned=1" in refused.stderr
    latest = bproject.cli(*argv, "--backup", "latest", "--trust-unsigned")
    assert latest.returncode == 2 and "never latest" in latest.stderr, latest.stderr
    accepted = bproject.cli(*argv, "--backup", name, "--trust-unsigned")
    assert accepted.returncode == 0, accepted.stderr
    assert "unsigned" in accepted.stderr
    entry = _journaled(bproject, env, command)
    assert entry["arguments"]["trust_unsigned"] is True and entry["outcome"] == "ok", entry


def test_archive_restore_takes_an_unsigned_archive_only_by_name_with_trust_unsigned(server: Server, tmp_path: Path,
                                                                                     age_keys: AgeKeys) -> None:
    project = make_backup_project(server, tmp_path / "project", age_keys)
    with project.connect("development") as conn:
        conn.execute(EVENTS)
    done = project.cli("archive", "create", "--env", "development", "--table", "events", "--older-than", "52w",
                       "--column", "happened_at", "--json")
    assert done.returncode == 0, done.stderr
    (archived,) = json.loads(done.stdout)["archives"]
    name = archived["name"]
    _unsign(project, "development", f"archives/{name}/manifest.sig")
    refused = project.cli("archive", "restore", "--env", "development", "--archive", name)
    assert refused.returncode == 4 and f"archives/{name}/manifest.json" in refused.stderr, refused.stderr
    latest = project.cli("archive", "restore", "--env", "development", "--archive", "latest", "--trust-unsigned")
    assert latest.returncode == 2 and "never latest" in latest.stderr, latest.stderr
    back = project.cli("archive", "restore", "--env", "development", "--archive", name, "--trust-unsigned",
                       "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["inserted"] == archived["rows"] > 0
    entry = _journaled(project, "development", "archive-restore")
    assert entry["arguments"]["trust_unsigned"] is True, entry


def _kept(project: PitrProject) -> set[int]:
    with project.connect("development", "postgres") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM kept")}


@pytest.mark.parametrize("major", [14, 18])
def test_apply_logs_replays_pre_signature_wal_only_with_trust_unsigned(tmp_path: Path, age_keys: AgeKeys,
                                                                       major: int) -> None:
    if available(major) is None:
        binaries.install(major, cache_dir())
    project = make_pitr_project(tmp_path / "pitr", major, age_keys)
    try:
        project.ok("cluster", "up", "--env", "development")
        with project.connect("development", "postgres") as conn:
            conn.execute("CREATE TABLE kept (id int)")
        project.ok("wal", "enable", "--env", "development", "--restart", "--yes")
        full = json.loads(project.ok("backup", "create", "--env", "development", "--type", "full",
                                     "--json").stdout)["name"]
        project.switch("development", "postgres", kept=1)
        with project.connect("development", "postgres") as conn:
            conn.execute("INSERT INTO kept VALUES (2)")
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            lsn = str(row[0])
        project.wait_archived(project.switch("development", "postgres", kept=3), env="development", dbname="postgres")
        # The archive as it was when signatures began: every copy there, no signed record beside the older files,
        # the newest one signed (trust_unsigned takes no unsigned file newer than the newest signed one).
        settings = project.settings
        repository = open_repository(settings, settings.env("development"))
        claimed = {info.key: records.is_claim(info.key) for info in repository.list("wal/development/")}
        newest = max(name for name in claimed.values() if name is not None and wal_names.is_segment(name))
        older = [key for key, name in claimed.items() if name is not None and name < newest]
        assert older
        repository.delete(older)
        project.ok("restore", "database", "--env", "development", "--backup", full, "--yes", "--no-open")
        # Without trust_unsigned the unsigned files are a hole before a signed one: recovery stops there, the point
        # after it never reached (and nothing opens, so no new timeline is made that the second try would follow).
        ended = project.cli("restore", "apply-logs", "--env", "development", "--lsn", lsn)
        assert ended.returncode != 0, ended.stdout
        project.ok("restore", "database", "--env", "development", "--backup", full, "--yes", "--no-open")
        replayed = project.cli("restore", "apply-logs", "--env", "development", "--trust-unsigned")
        assert replayed.returncode == 0, replayed.stderr
        assert _kept(project) == {1, 2, 3}
        path = project.root / ".cuisine" / "development" / "journal.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        entry = [e for e in entries if e.get("command") == "apply-logs"][-1]
        assert entry["arguments"]["trust_unsigned"] is True, entry
    finally:
        project.destroy()


def test_trust_unsigned_takes_no_unsigned_wal_newer_than_the_newest_signed_file(tmp_path: Path,
                                                                                 age_keys: AgeKeys) -> None:
    """An unsigned copy is taken with trust_unsigned only where the archive holds signed files after it (archived
    before signatures began); one planted past the archive's end is never taken, nor is anything from an archive
    where nothing is signed."""
    import hashlib
    import os

    from pitr_fixtures import make_wal_archive

    from cuisine_db.storage import keys, pipeline

    archive = make_wal_archive(tmp_path / "wal", age_keys)
    first, unsigned, newest, beyond = (f"0000000100000000000000{n:02X}" for n in (1, 2, 3, 5))
    settings = archive.settings
    repository = open_repository(settings, settings.env("production"))
    recipients = keys.parse_recipients([str(settings.env("production").backup.recipients[0])])

    def plant(name: str) -> bytes:
        data = os.urandom(4096)
        pipeline.store_bytes(repository, wal_names.key("production", name, hashlib.sha256(data).hexdigest()), data,
                             recipients, level=1, overwrite=False)
        return data

    def fetch(name: str, *flags: str) -> tuple[int, bytes | None]:
        destination = archive.pg_wal.parent / "restored" / name
        destination.parent.mkdir(exist_ok=True)
        destination.unlink(missing_ok=True)
        code = archive.run("fetch", *flags, name, str(destination)).returncode
        return code, destination.read_bytes() if destination.exists() else None

    old = plant(first)
    assert fetch(first, "--trust-unsigned") == (1, None), "nothing signed at all: no unsigned file is taken"
    between = plant(unsigned)
    archive.segment(newest, os.urandom(1 << 16), ready=False)
    assert archive.run("push", f"pg_wal/{newest}").returncode == 0
    planted = plant(beyond)
    assert fetch(first, "--trust-unsigned") == (0, old)
    assert fetch(unsigned, "--trust-unsigned") == (0, between)
    assert fetch(beyond, "--trust-unsigned") == (1, None), "past the newest signed file: the archive ends there"
    assert fetch(beyond)[1] is None and fetch(unsigned)[0] > 125, "without trust_unsigned: never taken"
    assert planted != between
