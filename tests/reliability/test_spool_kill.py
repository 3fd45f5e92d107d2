"""The fetch-ahead spool under faults, on one restore scenario (PostgreSQL 18, or 14 without it): a full backup, then
80 archived segments each holding a committed row, restored into development with db-restore + db-apply-logs.

- The prefetcher is killed -9 again and again (>= 10 times) while the WAL replays: every `wal fetch` still
  delivers (a new prefetcher is started by the next miss), replay reaches the end of the archive and the restored
  table is exactly the source's; meanwhile the spool is sampled and never holds more than its bound (segments and
  bytes, copies being written included).
- A segment damaged in the archive: recovery stops at it, naming it, and nothing is opened.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys
from conftest import available
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup import restore_state
from cuisine_db.backup.wal import spool, wal_names

MAJOR = 18 if available(18) is not None or available(14) is None else 14
SEGMENTS = 80
PREFETCH = 4  # the bound in segments...
SPOOL_MB = 40  # ...and in bytes: two and a half 16 MB segments, so the byte bound is the one that binds
KILLS = 10


@dataclass
class Scenario:
    project: PitrProject
    backup: str
    rows: list[int]
    segments: list[str] = field(default_factory=list)

    @property
    def spool_dir(self) -> Path:
        return self.project.root / ".cuisine" / "development" / "wal-spool"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Scenario]:
    project = make_pitr_project(tmp_path_factory.mktemp("spool"), MAJOR, age_keys)
    project.config.write_text(project.config.read_text().replace(
        'archive_timeout = "15min"\n', f'archive_timeout = "15min"\nprefetch = {PREFETCH}\nspool_mb = {SPOOL_MB}\n'))
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        with project.connect() as conn:
            conn.execute("CREATE TABLE replayed (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        backup = project.make("db-backup", "env=production", "type=full")
        assert backup.returncode == 0, backup.stderr
        name = _newest_backup(project)
        closed = []
        with project.connect() as conn:
            for row in range(1, SEGMENTS + 1):
                conn.execute("INSERT INTO replayed (id) VALUES (%s)", (row,))
                closed.append(str(conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]))  # type: ignore[index]
        project.wait_archived(closed[-1], deadline=300)
        project.ok("cluster", "up", "--env", "development")
        yield Scenario(project, name, list(range(1, SEGMENTS + 1)), closed)
    finally:
        project.destroy()


def _newest_backup(project: PitrProject) -> str:
    import json

    return str(json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)[-1]["name"])


def _lay_down(scenario: Scenario) -> None:
    project = scenario.project
    for step in (("maintenance-mode", "enable", "env=development", "reason=spool test"),
                 ("db-restore", "env=development", f"backup={scenario.backup}")):
        result = project.make(*step)
        assert result.returncode == 0, f"make {' '.join(step)}: {result.stdout}\n{result.stderr}"


def _spool_usage(folder: Path) -> tuple[int, int]:
    count = size = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0, 0
    for entry in entries:
        if wal_names.is_segment(entry.name) or entry.name.endswith(spool.PART):
            try:
                size += entry.stat().st_size
            except OSError:
                continue
            count += wal_names.is_segment(entry.name)
    return count, size


def test_prefetcher_killed_9_again_and_again_replay_still_matches_the_source(scenario: Scenario) -> None:
    project = scenario.project
    _lay_down(scenario)
    result: list[subprocess.CompletedProcess[str]] = []
    applying = threading.Thread(target=lambda: result.append(project.make("db-apply-logs", "env=development")))
    rng = random.Random(22)
    killed: list[int] = []
    worst = [0, 0]
    folder = spool.folder(scenario.spool_dir)

    def sample() -> None:
        """The spool's usage every millisecond, apart from the kills' pauses: the restore command's shell moves a
        spooled segment out within a few milliseconds of recovery asking for it."""
        while applying.is_alive():
            count, size = _spool_usage(folder)
            worst[:] = [max(worst[0], count), max(worst[1], size)]
            time.sleep(0.001)

    sampling = threading.Thread(target=sample)
    applying.start()
    sampling.start()
    while applying.is_alive():
        pid = spool.alive(scenario.spool_dir)
        if pid is not None and pid not in killed:
            time.sleep(rng.uniform(0, 0.15))  # mid-download, mid-listing, or idle at its bound
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    applying.join()
    sampling.join()
    (applied,) = result
    log = project.cluster("development").home / "run" / "recovery.log"
    assert applied.returncode == 0, (applied.stdout, applied.stderr, log.read_text()[-3000:] if log.exists() else "")
    assert len(killed) >= KILLS, f"only {len(killed)} prefetchers were caught running during replay"
    assert worst[0] <= PREFETCH and worst[1] <= SPOOL_MB << 20, f"the spool held {worst} at its fullest"
    assert worst[1] > 0, "the spool was never seen holding or writing a segment: the kills were not mid-replay"
    disable = project.make("maintenance-mode", "disable", "env=development")
    assert disable.returncode == 0, disable.stderr
    with project.connect("development") as conn:
        restored = [row[0] for row in conn.execute("SELECT id FROM replayed ORDER BY id")]
    with project.connect("production") as conn:
        source = [row[0] for row in conn.execute("SELECT id FROM replayed ORDER BY id")]
    assert restored == source == scenario.rows
    assert spool.alive(scenario.spool_dir) is None and not folder.exists(), "the spool outlived its recovery"


def test_a_damaged_segment_stops_recovery_before_it_naming_it(scenario: Scenario) -> None:
    project = scenario.project
    victim = scenario.segments[SEGMENTS // 2]
    (stored,) = (project.root / "repository").rglob(f"{victim}-*.zst.age")
    body = bytearray(stored.read_bytes())
    body[len(body) // 2] ^= 0xFF
    stored.write_bytes(bytes(body))
    _lay_down(scenario)
    applied = project.make("db-apply-logs", "env=development")
    assert applied.returncode != 0
    said = applied.stdout + applied.stderr
    assert victim in said, said
    state = restore_state.load(project.settings, project.settings.env("development"))
    assert state is not None and state.state == restore_state.LAID_DOWN, "a recovery that stopped opened something"
    log = (project.cluster("development").home / "run" / "recovery.log").read_text()
    assert f"{victim}: " in log and "recovery stops here" in log, log[-3000:]
    assert spool.alive(scenario.spool_dir) is None
