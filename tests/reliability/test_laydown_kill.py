"""A physical restore killed -9 while it lays the backup down (PostgreSQL 18, or 14 without it): the backup goes
into `data.laying` beside the data directory and only a complete, configured one with its recovery.signal is moved
into place, so the kill leaves the old cluster exactly as it was (it starts, its own rows there) and nothing that
opens as a restore; the next restore removes what the killed one left and completes, its tablespace laid down beside
too and its pg_tblspc link naming the folder it was moved to.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from backup_fixtures import AgeKeys
from cli_support import run_env
from conftest import CLI, available
from pitr_fixtures import PitrProject, make_pitr_project
from psycopg import sql

from cuisine_db.backup import restore_state
from cuisine_db.postgres import osuser

MAJOR = 18 if available(18) is not None or available(14) is None else 14
ATTEMPTS = 6  # a kill that comes after the lay-down ended is not counted: try again


@dataclass
class Scenario:
    project: PitrProject
    backup: str

    @property
    def home(self) -> Path:
        return self.project.root / ".cuisine" / "development"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Scenario]:
    project = make_pitr_project(tmp_path_factory.mktemp("laykill"), MAJOR, age_keys)
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        place = project.root / "spaces" / "fast"
        user = project.cluster().os_user
        osuser.give_to(place, user)
        osuser.make_reachable(place, user)
        with project.connect() as conn:
            conn.execute(sql.SQL("CREATE TABLESPACE fast LOCATION {}").format(sql.Literal(str(place))))
            conn.execute("CREATE TABLE spaced TABLESPACE fast AS SELECT g AS id FROM generate_series(1, 1000) AS g")
            # Enough data that laying it down takes a while on any machine: the kill must land inside it.
            conn.execute("CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 8) AS filler "
                         "FROM generate_series(1, 300000) AS g")
        backup = project.make("db-backup", "env=production", "type=full")
        assert backup.returncode == 0, backup.stderr
        listed = json.loads(project.ok("backup", "list", "--env", "production", "--json").stdout)
        project.ok("cluster", "up", "--env", "development")
        yield Scenario(project, str(listed[-1]["name"]))
    finally:
        project.destroy()


def _mark_old_cluster(project: PitrProject) -> None:
    """development before the restore: up, with a row the backup does not hold."""
    project.ok("cluster", "up", "--env", "development")
    with project.connect("development") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS old_marker (note text)")
        conn.execute("TRUNCATE old_marker")
        conn.execute("INSERT INTO old_marker VALUES ('before the restore')")


def _restore(scenario: Scenario) -> subprocess.Popen[str]:
    project = scenario.project
    return subprocess.Popen([*CLI, "restore", "database", "--env", "development", "--backup", scenario.backup,
                             "--yes", "--json"], env=run_env(project.config, project.environ), cwd=project.root,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _kill_mid_laydown(scenario: Scenario) -> bool:
    """Start a restore and kill -9 it once the lay-down has written into data.laying; False if it ended first."""
    process = _restore(scenario)
    laying = scenario.home / "data.laying" / "base"
    deadline = time.monotonic() + 300
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if laying.is_dir():
                os.killpg(process.pid, signal.SIGKILL)  # the command and every child it started
                process.communicate(timeout=60)
                return True
            time.sleep(0.005)
        process.communicate(timeout=600)
        return False
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=60)


def test_a_restore_killed_mid_laydown_leaves_the_old_cluster_and_nothing_that_opens(scenario: Scenario) -> None:
    project = scenario.project
    killed = False
    for _ in range(ATTEMPTS):
        _mark_old_cluster(project)
        if _kill_mid_laydown(scenario):
            killed = True
            break
    assert killed, f"no restore was caught laying down in {ATTEMPTS} attempts"
    data = scenario.home / "data"
    assert not (data / "recovery.signal").exists(), "a half-laid data directory was moved into place"
    assert not (data / "backup_label").exists()
    assert restore_state.pending(project.settings, project.settings.env("development")) is None
    # The old cluster opens as it was (the kill may land before or after its server stopped).
    project.ok("cluster", "up", "--env", "development")
    with project.connect("development") as conn:
        assert conn.execute("SELECT note FROM old_marker").fetchall() == [("before the restore",)]
        assert conn.execute("SELECT to_regclass('bulk')").fetchone() == (None,)
    # The next restore clears what the killed one left and brings the backup's data.
    result = project.cli("restore", "database", "--env", "development", "--backup", scenario.backup, "--yes",
                         "--json")
    assert result.returncode == 0, result.stderr
    assert not (scenario.home / "data.laying").exists()
    with project.connect("development") as conn:
        assert conn.execute("SELECT count(*) FROM bulk").fetchone() == (300000,)
        assert conn.execute("SELECT to_regclass('old_marker')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM spaced").fetchone() == (1000,)
        oid = conn.execute("SELECT oid FROM pg_tablespace WHERE spcname = 'fast'").fetchone()
    assert oid is not None
    link = scenario.home / "data" / "pg_tblspc" / str(oid[0])
    assert link.is_symlink() and Path(os.readlink(link)) == scenario.home / "tablespaces" / str(oid[0])
    assert not (scenario.home / "tablespaces.laying").exists()
