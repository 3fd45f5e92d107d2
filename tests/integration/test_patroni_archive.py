"""Backups and WAL of a Patroni environment across a failover, and members built from the repository: real Patroni
and etcd, three members, PostgreSQL 18 then 14. The tests build on each other in file order (serial):

- the cluster comes up archiving, with a full backup; the leader's log counts who copied it (BASE_BACKUP);
- db-create-replica adds a fourth member that Patroni builds with the toolkit's create_replica_method from that
  backup and the archive: the leader's log shows no new BASE_BACKUP;
- the leader dies (its Patroni and every PostgreSQL process killed -9) while its archiver is stopped, so finished
  segments were never pushed; the new leader's on_role_change callback (wal catch-up) archives them: no hole, and a
  replay of the archive to a moment after the failover holds every transaction acknowledged before it, none that
  began after it, none twice;
- db-apply-logs (through make) to a point after that failover re-bootstraps the whole cluster from the first full
  backup: every transaction acknowledged before the point is there, none after it, none twice; the other members are
  rebuilt from the repository (the restored leader's log shows no BASE_BACKUP);
- the leader dies while a physical, then a logical backup copies it: each is either complete (from the dying leader,
  or retried once from the new one) and verifies / restores, or absent from the list with nothing of it left in the
  repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import REPO
from patroni_support import ENV, ha_config, healthy, patroni_log, wait_for
from patroni_support import base_backups as support_base_backups
from test_patroni import Ha

from cuisine_db.backup.wal import archive, areas, wal_names
from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import patroni, patroni_embedded, patroni_layout
from cuisine_db.storage import open_repository

pytestmark = [pytest.mark.slow, pytest.mark.serial]

NEW_MEMBER = f"{ENV}4"


@pytest.fixture(scope="module", params=[18, 14], ids=["pg18", "pg14"])
def ha(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ha]:
    made = Ha(*ha_config(request, tmp_path_factory, "ha-archive"))
    yield made
    made.cli("cluster", "destroy", "--env", ENV, "--yes")


def base_backups(ha: Ha, name: str, since: float = 0.0) -> int:
    return support_base_backups(ha.settings, ha.env, name, since)


def archived_names(ha: Ha) -> set[str]:
    area = areas.current(ENV, ha.settings.env_dir(ha.env))
    return {item.name for item in archive.list_archive(open_repository(ha.settings, ha.env), area)}


def wal_status(ha: Ha) -> dict[str, Any]:
    result = ha.cli("wal", "status", "--env", ENV, "--json")
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def archived_through(ha: Ha) -> str:
    """Switch the leader's segment and wait until the archive reaches it; its name."""
    with ha.leader_conn() as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        conn.execute("SELECT pg_switch_wal()")
    assert row is not None
    wait_for(f"{row[0]} archived", lambda: (wal_status(ha).get("archive_end") or "")[8:] >= row[0][8:], timeout=90)
    return str(row[0])


def test_the_cluster_archives_and_has_a_full_backup(ha: Ha) -> None:
    up = ha.make("cluster-up", f"env={ENV}")
    assert up.returncode == 0, up.stderr
    wait_for("two streaming members", lambda: healthy(ha))
    assert ha.cli("backup", "keygen").returncode == 0
    enabled = ha.make("db-wal-enable", f"env={ENV}", "restart=1", "archive_timeout=5s")
    assert enabled.returncode == 0, enabled.stderr
    wait_for("every member restarted and streaming", lambda: healthy(ha) and not any(
        m.pending_restart for m in ha.view().members))
    with ha.leader_conn() as conn:
        conn.execute("CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO ticks (at) SELECT now() FROM generate_series(1, 1000)")
    backup = ha.make("db-backup", f"env={ENV}", "type=full")
    assert backup.returncode == 0, backup.stderr
    leader = ha.view().leader
    assert leader is not None
    # The full backup, at least, was a BASE_BACKUP on the leader: the count below can see one.
    assert base_backups(ha, leader.name) >= 1


def test_db_create_replica_adds_a_member_seeded_from_the_repository_the_leader_copies_nothing(ha: Ha) -> None:
    with ha.leader_conn() as conn:  # WAL after the backup: the new member replays it from the archive
        conn.execute("INSERT INTO ticks (at) SELECT now() FROM generate_series(1, 20000)")
    archived_through(ha)
    leader = ha.view().leader
    assert leader is not None
    before = base_backups(ha, leader.name)
    listed = json.loads(ha.cli("backup", "list", "--env", ENV, "--json").stdout)
    newest = [b for b in (listed if isinstance(listed, list) else listed["backups"]) if b["type"] == "full"][-1]
    result = ha.make("db-create-replica", f"env={ENV}", f"name={NEW_MEMBER}")
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"seeded from {newest['name']}" in result.stdout, result.stdout
    after = ha.view()
    assert after.leader is not None and after.leader.name == leader.name
    assert base_backups(ha, leader.name) == before  # the leader served no base backup
    member = after.member(NEW_MEMBER)
    assert member is not None and member.streaming and member.timeline == after.leader.timeline
    home = ha.settings.env_dir(ha.env) / "members" / NEW_MEMBER
    # Built by the toolkit's method (Patroni ran it), caught up through wal fetch, then the archive way closed.
    assert "installed " + newest["name"] in (
        patroni_layout.state_dir(ha.settings, ha.env) / "logs" / f"{NEW_MEMBER}.log").read_text(errors="replace")
    assert "restored log file" in "".join(p.read_text(errors="replace") for p in (home / "data" / "log").iterdir())
    config = json.loads((home / "patroni.yml").read_text())
    assert "recovery_conf" not in config["postgresql"]
    assert config["postgresql"]["create_replica_methods"] == ["cuisine_db", "basebackup"]
    assert not (home / "run" / "identity").exists() and not any((home / "run").glob("*identity*"))
    with ha.leader_conn() as conn:
        written = conn.execute("SELECT count(*) FROM ticks").fetchone()

    def same_rows() -> bool:
        with ha.member(NEW_MEMBER) as conn:
            return conn.execute("SELECT count(*) FROM ticks").fetchone() == written
    wait_for(f"{NEW_MEMBER} has every row", same_rows)
    again = ha.make("db-create-replica", f"env={ENV}", f"name={NEW_MEMBER}")
    assert again.returncode == 2 and "already has a member" in again.stderr, again.stderr


@dataclass
class Batch:
    started: datetime
    acked: datetime
    ids: list[int]


@dataclass
class TimedWriter:
    """Commits batches through connect() (which follows the leader) until stopped, noting when each began and when
    its commit was acknowledged; reconnects after a failure (an unacknowledged batch is not noted)."""

    ha: Ha
    batches: list[Batch] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)

    @property
    def rows(self) -> int:
        return sum(len(batch.ids) for batch in self.batches)

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.ha.leader_conn("writer")
                started = datetime.now(UTC)
                rows = conn.execute("INSERT INTO ticks (at) SELECT now() FROM generate_series(1, 200) "
                                    "RETURNING id").fetchall()
                self.batches.append(Batch(started, datetime.now(UTC), [r[0] for r in rows]))
            except (psycopg.Error, UnavailableError):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
        if conn is not None:
            conn.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _archiver(postmaster: int) -> int:
    for child in _children(postmaster):
        if b"archiver" in _cmdline(child):
            return child
    raise AssertionError(f"no archiver process under postmaster {postmaster}")


def test_segments_the_dying_leader_never_archived_are_archived_by_the_new_one(ha: Ha) -> None:
    wait_for("healthy", lambda: healthy(ha), timeout=120)
    archived_through(ha)
    lost = ha.view().leader
    assert lost is not None and lost.timeline is not None
    postmaster = patroni_embedded.postmaster_pid(ha.settings, ha.env, lost.name)
    assert postmaster is not None
    archiver = _archiver(postmaster)
    writer = TimedWriter(ha)
    writer.thread.start()
    try:
        os.kill(archiver, signal.SIGSTOP)  # the leader's archiver falls behind: finished segments wait
        with ha.leader_conn() as conn:
            first = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
            for _ in range(3):
                conn.execute("INSERT INTO ticks (at) SELECT now() FROM generate_series(1, 5000)")
                conn.execute("SELECT pg_switch_wal()")
            conn.execute("INSERT INTO ticks DEFAULT VALUES")  # acknowledged by the synchronous standby
            current = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert first is not None and current is not None
        numbers = range(wal_names.segment_number(first[0]), wal_names.segment_number(current[0]))
        finished = [wal_names.segment_name(lost.timeline, n) for n in numbers]
        unarchived = sorted(set(finished) - archived_names(ha))
        assert len(unarchived) >= 2, (finished, unarchived)
        # The host dies: Patroni and every PostgreSQL process of the leader, the stopped archiver too.
        assert patroni_embedded.kill_member(ha.settings, ha.env, lost.name) is not None
        for pid in [postmaster, *_children(postmaster)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        def new_leader() -> bool:
            leader = ha.view().leader
            return leader is not None and leader.name != lost.name and leader.state == "running" and \
                (leader.timeline or 0) > (lost.timeline or 0)
        wait_for("Patroni to fail over", new_leader, timeout=90)
        rows = writer.rows
        wait_for("writes to continue on the new leader", lambda: writer.rows > rows + 2000, timeout=60)
        moment = datetime.now(UTC)  # a point after the failover, while writes go on
        rows = writer.rows
        wait_for("writes after that point", lambda: writer.rows > rows + 2000, timeout=60)
    finally:
        writer.stop.set()
        writer.thread.join(timeout=60)
    leader = ha.view().leader
    assert leader is not None
    end = archived_through(ha)
    status = wal_status(ha)
    assert status["missing"] == [], status["missing"]
    assert status["duplicates"] == []
    assert status["archive_end"][8:] >= end[8:]
    assert set(unarchived) <= archived_names(ha)  # the new leader pushed what the old one never did
    log = (patroni_layout.state_dir(ha.settings, ha.env) / "logs" / f"{leader.name}.log").read_text(errors="replace")
    told = re.findall(r"cuisine-db wal catch-up: timeline \d+: .*?: (\d+) stored.*?(\d+) failed", log)
    assert told and int(told[-1][0]) >= len(unarchived) and told[-1][1] == "0", log[-3000:]
    # db-apply-logs to `moment`, through make: the whole cluster (the lost member too) re-bootstrapped from the first
    # full backup, on the first timeline, replayed across the failover. Every batch acknowledged before `moment` is
    # there, none begun after it, none twice.
    listed = _backups(ha)
    full = [name for name, b in listed.items() if b["type"] == "full"][-1]
    others = [m.name for m in ha.view().members]
    installed = {name: patroni_log(ha.settings, ha.env, name).count(f"installed {full}") for name in others}
    laid = ha.make("db-restore", f"env={ENV}", "backup=latest", "open=0")
    assert laid.returncode == 0, laid.stderr + laid.stdout
    since = time.time()
    applied = ha.make("db-apply-logs", f"env={ENV}", f"target={moment.isoformat()}")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    wait_for("healthy after db-apply-logs", lambda: healthy(ha), timeout=300)
    restored = ha.view()
    assert restored.leader is not None and (restored.leader.timeline or 0) > (leader.timeline or 0)
    with ha.leader_conn() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM ticks").fetchall()]
    assert len(ids) == len(set(ids))
    present = set(ids)
    before = [i for batch in writer.batches if batch.acked < moment for i in batch.ids]
    after = [i for batch in writer.batches if batch.started > moment for i in batch.ids]
    assert before and after
    assert not set(before) - present, f"{len(set(before) - present)} acknowledged rows lost"
    assert not set(after) & present
    # The other members were rebuilt from the repository and the archive, not copied from the restored leader.
    assert base_backups(ha, restored.leader.name, since) == 0
    for name in others:
        if name != restored.leader.name:
            assert patroni_log(ha.settings, ha.env, name).count(f"installed {full}") > installed[name], name


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = [child for parent in frontier for child in _children(parent)]
        found += children
        frontier = children
    return found


def _backups(ha: Ha) -> dict[str, dict[str, Any]]:
    listed = json.loads(ha.cli("backup", "list", "--env", ENV, "--json").stdout)
    return {b["name"]: b for b in (listed if isinstance(listed, list) else listed["backups"])}


def _kill_leader_during(ha: Ha, kind: str, program: bytes) -> tuple[patroni.Member, int, str, str, set[str]]:
    """`make db-backup type=kind` on the leader; once `program` copies it, its processes are stopped, the leader's
    Patroni and every PostgreSQL process killed -9, and the copy let go on. (lost leader, exit, stdout, stderr,
    backups the list gained)."""
    wait_for("healthy", lambda: healthy(ha), timeout=180)
    before = set(_backups(ha))
    lost = ha.view().leader
    assert lost is not None
    postmaster = patroni_embedded.postmaster_pid(ha.settings, ha.env, lost.name)
    assert postmaster is not None
    backup = subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO), "db-backup", f"env={ENV}",
                               f"type={kind}"], env=ha.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL)
    copier: list[int] = []
    deadline = time.monotonic() + 120
    try:
        while not copier and backup.poll() is None and time.monotonic() < deadline:
            copier = [pid for pid in _descendants(backup.pid) if program in _cmdline(pid)]
            time.sleep(0.02)
        if not copier:  # say why: the backup's own exit and error output (it may have ended before the copy began)
            if backup.poll() is None:
                backup.kill()
            _out, err = backup.communicate(timeout=60)
            raise AssertionError(f"{program.decode()} never ran; make db-backup exited {backup.returncode}: "
                                 f"{err[-3000:]}")
        for pid in copier:
            os.kill(pid, signal.SIGSTOP)  # mid-copy, the leader's host dies
        assert patroni_embedded.kill_member(ha.settings, ha.env, lost.name) is not None
        for pid in [postmaster, *_children(postmaster)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        for pid in copier:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    out, err = backup.communicate(timeout=900)
    added = set(_backups(ha)) - before
    # Which branch ran: complete from the dying leader, retried from the new one, or failed and absent.
    print(f"{kind} backup when the leader died: exit {backup.returncode}, listed {sorted(added)}\n{err}")
    return lost, backup.returncode, out, err, added


def _nothing_left_behind(ha: Ha) -> None:
    listed = set(_backups(ha))
    leftovers = {info.key.split("/")[1] for info in open_repository(ha.settings, ha.env).list("backups/")}
    assert leftovers <= listed, leftovers - listed  # an attempt that failed left no objects


def _lost_member_back(ha: Ha, lost: patroni.Member) -> None:
    wait_for("Patroni to fail over", lambda: (ha.view().leader or lost).name != lost.name, timeout=120)
    up = ha.make("cluster-up", f"env={ENV}")
    assert up.returncode == 0, up.stderr
    wait_for("healthy with the lost member back", lambda: healthy(ha), timeout=300)


def _retried_from_a_new_leader(ha: Ha, err: str, lost: patroni.Member) -> None:
    """When the output says the backup was taken again, it names the new leader and the journal records it."""
    if "retrying the backup once from the new leader" not in err:
        return
    line = [line for line in (json.loads(raw) for raw in (ha.settings.env_dir(ha.env) / "journal.jsonl").read_text()
                              .splitlines() if raw.strip()) if line["command"] == "backup"][-1]
    assert line["outcome"] == "ok", line
    retried = line["details"]["retried"]
    assert retried["lost_leader"] == lost.name, line
    assert retried["new_leader"] != lost.name or retried["timeline"] > (lost.timeline or 0), line


def test_a_backup_running_when_the_leader_dies_is_complete_and_verifies_or_absent(ha: Ha) -> None:
    with ha.leader_conn() as conn:  # enough data that the copy is still under way when the leader dies
        conn.execute("INSERT INTO ticks (at) SELECT now() FROM generate_series(1, 300000)")
    lost, code, _out, err, added = _kill_leader_during(ha, "full", b"pg_basebackup")
    _nothing_left_behind(ha)
    if code == 0:  # complete from the dying leader, or retried from the new one: it must verify
        assert len(added) == 1, err
        verified = ha.cli("backup", "verify", "--env", ENV, added.pop())
        assert verified.returncode == 0, verified.stderr + verified.stdout
        _retried_from_a_new_leader(ha, err, lost)
    else:
        assert added == set(), added  # never listed complete when it is not
    _lost_member_back(ha, lost)


def test_a_logical_backup_running_when_the_leader_dies_is_complete_and_restores_or_absent(ha: Ha) -> None:
    with ha.leader_conn() as conn:
        committed = conn.execute("SELECT count(*), max(id) FROM ticks").fetchone()
    assert committed is not None
    lost, code, _out, err, added = _kill_leader_during(ha, "logical", b"pg_dump")
    _nothing_left_behind(ha)
    if code == 0:
        assert len(added) == 1, err
        name = added.pop()
        _retried_from_a_new_leader(ha, err, lost)
        # Restorable: restored beside the database and every table's rows compared with the manifest; the rows
        # committed before the backup began are in it.
        tested = ha.make("db-test-restore", f"env={ENV}", f"backup={name}")
        assert tested.returncode == 0, tested.stderr + tested.stdout
        shown = json.loads(ha.cli("backup", "show", "--env", ENV, "--json", name).stdout)
        tables = shown["manifest"]["tables"]
        rows = next(t["rows"] for t in tables if t["name"] == "ticks")
        assert rows >= committed[0], (rows, committed)
    else:
        assert added == set(), added
    _lost_member_back(ha, lost)


def test_cluster_down_stops_every_member_the_added_one_too(ha: Ha) -> None:
    result = ha.make("cluster-down", f"env={ENV}")
    assert result.returncode == 0, result.stderr
    names = {p.name for p in patroni_embedded.processes(ha.settings, ha.env)}
    assert NEW_MEMBER in names
    assert not any(p.running for p in patroni_embedded.processes(ha.settings, ha.env))
