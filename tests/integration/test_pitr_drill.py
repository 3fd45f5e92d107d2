"""The runbook's Complete Database Failure, verbatim through make, on every PostgreSQL version available and with the
repository on the S3 test server: a production cluster under continuous writes with WAL archiving is killed
(-9) and its data directory removed; then incident-create, maintenance-mode enable, db-restore backup=latest,
db-apply-logs, db-verify-integrity, maintenance-mode disable. Every transaction whose WAL was archived before
the crash is there, none twice, and the restored server accepts writes on a new timeline. Every step is linked to
the incident, and db-verify-integrity finds nothing on the recovered cluster."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

import psycopg
import pytest
from backup_fixtures import S3_KEY_VAR, S3_SECRET, S3_SECRET_VAR, AgeKeys, S3Server
from conftest import Server
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup.wal import wal_names
from cuisine_db.storage import Repository, open_repository


class Writer:
    """Inserts one row per transaction until told to stop or the server goes; records each committed id with the
    WAL insert position read right after its commit (the commit record ends at or before it)."""

    def __init__(self, project: PitrProject) -> None:
        self.project = project
        self.committed: list[tuple[int, int]] = []
        self.attempted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            with self.project.connect() as conn:
                while not self.stop.is_set():
                    self.attempted += 1
                    conn.execute("INSERT INTO drill (id) VALUES (%s)", (self.attempted,))
                    row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                    assert row is not None
                    self.committed.append((self.attempted, wal_names.parse_lsn(row[0])))
                    time.sleep(0.005)
        except psycopg.Error:
            return  # the crash


def _repository(project: PitrProject) -> Repository:
    settings = project.settings
    return open_repository(settings, settings.env("production"))


def wait_history_archived(project: PitrProject, timeline: int) -> None:
    """The restored server's new timeline reaches the archive: its private recovery does not archive, the normal
    server's archiver pushes the history file the restore left ready for it."""
    name = f"{timeline:08X}.history-"
    deadline = time.monotonic() + 60
    while not any(info.key.split("/")[-1].startswith(name) for info in _repository(project).list("wal/production/")):
        assert time.monotonic() < deadline, f"the restored server did not archive its new timeline ({name[:-1]})"
        time.sleep(0.1)


def archived_end(project: PitrProject) -> int:
    """The WAL position up to which timeline 1 was archived (the end of its last archived segment)."""
    from cuisine_db.backup.wal import archive

    listed = archive.list_archive(_repository(project), "production")
    numbers = [wal_names.segment_number(item.name) for item in listed
               if wal_names.is_segment(item.name) and wal_names.timeline(item.name) == 1]
    return wal_names.segment_start(max(numbers) + 1)


STEPS = [
    (("incident-create", "severity=1", "description=Database failure"), None),
    (("maintenance-mode", "enable", "reason=Database restoration in progress"), None),
    (("db-restore", "env=production", "backup=latest"), "production"),  # typed at the confirmation prompt
    (("db-apply-logs", "env=production"), None),
    (("db-verify-integrity", "env=production"), None),
    (("maintenance-mode", "disable"), None),
]


def runbook_steps(project: PitrProject) -> dict[str, str]:
    """The Complete Database Failure steps through make; each one's output."""
    outputs = {}
    for args, typed in STEPS:
        result = project.make(*args, typed=typed)
        log = project.cluster().home / "run" / "recovery.log"
        assert result.returncode == 0, (f"make {' '.join(args)}: {result.stdout}\n{result.stderr}\n"
                                        + (log.read_text()[-3000:] if log.exists() else ""))
        outputs[args[0]] = result.stdout
    return outputs


def drill(project: PitrProject, *, without: tuple[str, ...] = ()) -> None:
    project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
    if without:
        # The server runs on without these variables: archiving must find what it needs elsewhere.
        project.ok("cluster", "down", "--env", "production")
        assert project.cli("cluster", "up", "--env", "production", drop=without).returncode == 0
    with project.connect() as conn:
        conn.execute("CREATE TABLE drill (id bigint, at timestamptz DEFAULT clock_timestamp())")
    backup = project.make("db-backup", "env=production", "type=full")
    assert backup.returncode == 0, backup.stderr
    writer = Writer(project)
    writer.thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(writer.committed) < 300 and time.monotonic() < deadline:
            time.sleep(0.1)
        project.wait_archived(project.switch())  # the archive holds a good share of the rows
        time.sleep(0.5)  # and some more are written that will never be archived
    finally:
        cluster = project.cluster()
        pid = int((cluster.datadir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        writer.stop.set()
        writer.thread.join(timeout=30)
    end = archived_end(project)
    shutil.rmtree(cluster.datadir)

    outputs = runbook_steps(project)
    # db-apply-logs says what it reached and the measured recovery time (one lay-down: db-restore's).
    applied = " ".join(outputs["db-apply-logs"].split())
    assert "last replayed transaction: 20" in applied and "recovery time:" in applied, applied

    must = {row_id for row_id, lsn in writer.committed if lsn <= end}
    assert len(must) >= 100, "the drill archived too little to prove anything"
    with project.connect() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM drill").fetchall()]
        timeline = conn.execute("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").fetchone()
        conn.execute("INSERT INTO drill (id) VALUES (-1)")  # it accepts writes
    assert len(ids) == len(set(ids)), "a transaction was replayed twice"
    assert must <= set(ids), f"{len(must - set(ids))} archived transactions are missing"
    assert set(ids) <= set(range(1, writer.attempted + 1))
    assert timeline is not None and int(timeline[0], 16) >= 2
    wait_history_archived(project, int(timeline[0], 16))
    journal = project.journal()
    commands = [entry["command"] for entry in journal]
    assert commands[-6:] == ["incident create", "maintenance enable", "restore", "apply-logs", "db-verify-integrity",
                             "maintenance disable"]
    incident = journal[-6]["details"]["incident"]
    assert all(entry.get("incidents") == [incident] for entry in journal[-6:]), journal[-6:]
    assert not any(project.cluster().home.glob("pre-restore-*")), "the old data directory outlived the recovery"


def test_complete_database_failure_drill(pitr: PitrProject) -> None:
    drill(pitr)
    if pitr.major != 18:
        return
    # A second failure, on the newest version: the only full backup is from timeline 1, the writes since the first
    # recovery are on timeline 2. The same steps replay across the switch, following the archived history file.
    with pitr.connect() as conn:
        before = {row[0] for row in conn.execute("SELECT id FROM drill")}
        conn.execute("INSERT INTO drill (id) SELECT -1 - g FROM generate_series(1, 50) g")
    pitr.wait_archived(pitr.switch())
    runbook_steps(pitr)
    with pitr.connect() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM drill")]
        timeline = conn.execute("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)").fetchone()
    assert sorted(ids) == sorted(before | {-1 - g for g in range(1, 51)})
    assert timeline is not None and int(timeline[0], 16) >= 3


@pytest.mark.parametrize("server", [18], indirect=True)
def test_complete_database_failure_drill_with_s3(server: Server, tmp_path: Path, age_keys: AgeKeys,
                                                 s3_server: S3Server) -> None:
    project = make_pitr_project(tmp_path / "pitr", server.major, age_keys, backend="s3", s3=s3_server)
    try:
        drill(project, without=(S3_KEY_VAR, S3_SECRET_VAR))
        wait_history_archived(project, 2)
        # The server found the S3 keys in a 0600 file of its own user, never in its command lines or settings.
        credentials = project.root / ".cuisine" / "production" / "wal-credentials"
        info = credentials.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == (os.geteuid() if project.cluster().os_user is None else
                               __import__("pwd").getpwnam(project.cluster().os_user).pw_uid)
        # Nor anywhere else the tool or the server wrote: settings, server logs (the archiver's and the recovery's
        # stderr), postmaster.opts (the private recovery's command line), the journal, the restore state.
        checked = 0
        for path in (project.root / ".cuisine").rglob("*"):
            if path.is_file() and path != credentials and path.stat().st_size < 4 << 20:
                assert S3_SECRET.encode() not in path.read_bytes(), f"the S3 secret reached {path}"
                checked += 1
        assert checked > 20
    finally:
        project.destroy()
