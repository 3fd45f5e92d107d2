"""db-upgrade on seeded Cuisine Code data: a local PostgreSQL 14 environment upgraded in place with pg_upgrade.

One module-scoped environment goes through the runs in order (copy and rollback, kills, link and finish), so the
pre-flight's full backup is taken once; 14 → 15 (Debian) and swap get their own small environments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import TABLES, AgeKeys, make_keys, table_fingerprints
from cli_support import run_cli
from conftest import CLI, MIGRATIONS, available

from cuisine_db.config import load_settings
from cuisine_db.postgres.ports import free_port

# The tests build on each other's work in file order (the pre-flight's backup, a passing rehearsal), so they run in
# make test's second, single-process pytest run (marker `serial`).
pytestmark = [pytest.mark.slow, pytest.mark.serial]


@dataclass
class LocalProject:
    """A project folder whose environment `production` is a local cluster of the tool's own."""

    root: Path
    config: Path
    env: str = "production"

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, cwd=self.root, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        environ = {**os.environ, "CUISINE_DB_CONFIG": str(self.config)}
        environ.pop("CUISINE_DB_ENV", None)
        return subprocess.Popen([*CLI, *args], cwd=self.root, env=environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    @property
    def home(self) -> Path:
        return self.root / ".cuisine" / self.env

    def connect(self, dbname: str = "cuisine") -> psycopg.Connection[Any]:
        settings = load_settings({"CUISINE_DB_CONFIG": str(self.config)})
        env = settings.env(self.env)
        return psycopg.connect(host="127.0.0.1", port=env.port, user="cuisine", dbname=dbname,
                               passfile=str(self.home / "pgpass"), autocommit=True)

    def major(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None
        return int(row[0]) // 10000

    def fingerprints(self) -> dict[str, tuple[int, str]]:
        with self.connect() as conn:
            return table_fingerprints(conn, TABLES)

    def system_identifier(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
        assert row is not None
        return int(row[0])

    def state(self) -> dict[str, Any] | None:
        path = self.home / "upgrade" / "state.json"
        try:
            loaded: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return loaded


def make_local_project(root: Path, keys: AgeKeys, major: int, *, protected: bool = True) -> LocalProject:
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(MIGRATIONS, root / "db" / "migrations")
    config = root / "cuisine-db.toml"
    flag = "true" if protected else "false"
    config.write_text(
        f'default_env = "production"\n[environments.production]\nport = {free_port()}\npostgres_version = {major}\n'
        f'protected = {flag}\n[environments.production.backup]\nrecipients = ["{keys.recipient}"]\n'
        f'identity_file = "{keys.identity_file}"\n'
        "[environments.production.server_settings]\nfsync = false\nsynchronous_commit = false\n")
    project = LocalProject(root, config)
    assert project.cli("cluster", "up", "--env", "production").returncode == 0
    from cuisine_db import migrations
    from cuisine_db.seed import load

    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("production")
    migrations.migrate(settings, env)
    load(settings, env, scale=1, seed=7)
    with project.connect() as conn:
        conn.execute("DELETE FROM executions WHERE id % 5 <> 0")
        conn.execute("DELETE FROM recipe_step_ingredients WHERE step_id % 3 <> 0")
        conn.execute("VACUUM FULL ANALYZE")
    return project


def _need(major: int) -> None:
    if available(major) is None:
        pytest.skip(f"PostgreSQL {major} is not installed on this machine")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    return make_keys(tmp_path_factory.mktemp("upgrade-keys"))


@pytest.fixture(scope="module")
def pg14(tmp_path_factory: pytest.TempPathFactory, keys: AgeKeys) -> Iterator[LocalProject]:
    _need(14)
    _need(18)
    project = make_local_project(tmp_path_factory.mktemp("upgrade14"), keys, 14)
    yield project
    project.cli("cluster", "down", "--env", "production")


def _unchanged(project: LocalProject, before: dict[str, tuple[int, str]]) -> None:
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()
    assert not (project.home / "postgres_major").exists()


@pytest.mark.parametrize(("args", "reason"), [
    (("--to", "13"), "older than production's PostgreSQL 14"),
    (("--to", "99"), "not a major version"),
    (("--to", "14"), "already runs PostgreSQL 14"),
    (("--to", "18", "--method", "teleport"), "not an upgrade method"),
    (("--to", "15", "--method", "swap"), "needs pg_upgrade 18"),
    (("--to", "18", "--method", ""), "not an upgrade method"),
    (("--to", ""), "--to"),
])
def test_hostile_input_is_refused_with_nothing_changed(pg14: LocalProject, args: tuple[str, ...],
                                                       reason: str) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", *args, "--yes")
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr
    _unchanged(pg14, before)


def test_protected_without_confirmation_is_refused_before_any_work(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18")
    assert result.returncode == 4
    assert "needs confirmation" in result.stderr
    assert "pre-flight" not in result.stderr  # nothing ran: no snapshot, no backup
    _unchanged(pg14, before)


def test_remote_environment_refuses_in_place_methods(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.far]\ndsn = "host=db.invalid user=cuisine dbname=cuisine"\n')
    project = LocalProject(tmp_path, config, "far")
    result = project.cli("upgrade", "--env", "far", "--to", "18", "--method", "link")
    assert result.returncode == 2
    assert "remote server" in result.stderr
    assert "pg_upgrade" in result.stderr  # the steps to take on the server instead


def test_clone_without_reflinks_is_a_no_go(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "clone", "--check", "--json")
    report = json.loads(result.stdout)
    check = next(row for row in report["preflight"]["rows"] if row["check"] == "pg_upgrade --check")
    if check["status"] == "go":
        pytest.skip("this file system clones files (reflinks): clone is a go here")
    assert result.returncode == 1
    assert "clon" in check["detail"].lower()
    _unchanged(pg14, before)


def _limit(project: LocalProject, role: str) -> int:
    with project.connect() as conn:
        row = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return int(row[0])


def test_copy_upgrade_then_rollback_restores_the_old_cluster_exactly(pg14: LocalProject) -> None:
    with pg14.connect() as conn:  # an application role: maintenance mode blocks it during the upgrade
        conn.execute("CREATE ROLE cuisine_app LOGIN CONNECTION LIMIT 7")
    before = pg14.fingerprints()
    system = pg14.system_identifier()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "copy", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["preflight"]["take_backup"] is True  # the first run takes the verified full backup
    assert report["backup"]
    assert report["rehearsal"] == report["backup"]  # protected: rehearsed first, on the backup just taken
    assert report["can_roll_back"] is True
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    assert pg14.system_identifier() != system
    assert _limit(pg14, "cuisine_app") == 7  # maintenance mode is off again on the new cluster
    with pg14.connect() as conn:
        conn.execute("CREATE TABLE only_on_18 (id int)")
    back = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert back.returncode == 0, back.stderr
    assert pg14.system_identifier() == system
    assert _limit(pg14, "cuisine_app") == 7  # the old cluster stopped with it blocked: given back
    _unchanged(pg14, before)
    with pg14.connect() as conn:
        assert conn.execute("SELECT to_regclass('only_on_18')").fetchone() == (None,)


def test_rehearsal_predicts_the_downtime_and_leaves_env_alone(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--rehearse", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["go"] is True
    assert report["predicted_downtime_seconds"] > 0
    assert report["row_count_differences"] == [] and report["migrations_missing"] == []
    assert report["amcheck_problems"] == []
    _unchanged(pg14, before)
    assert not (pg14.root / ".cuisine" / "rehearse-production").exists()
    listed = json.loads(pg14.cli("backup", "list", "--env", "production", "--json").stdout)
    rehearsed = next(b for b in listed if b["name"] == report["backup"])
    assert rehearsed["test_restore"]["details"]["upgrade_rehearsal"] is True
    assert rehearsed["test_restore"]["ok"] is True
    unrehearsed = next(b["name"] for b in listed if not b["test_restore"])
    refused = pg14.cli("upgrade", "--env", "production", "--to", "18", "--rehearsed", unrehearsed, "--yes")
    assert refused.returncode == 4, refused.stderr
    assert "no passing rehearsal" in refused.stderr
    _unchanged(pg14, before)


def _rehearsed(project: LocalProject) -> str:
    """The backup whose passing upgrade rehearsal stands for the protected environment's runs."""
    listed = json.loads(project.cli("backup", "list", "--env", "production", "--json").stdout)
    return next(str(b["name"]) for b in listed if b["test_restore"] and b["test_restore"]["ok"]
                and b["test_restore"]["details"].get("upgrade_rehearsal"))


PHASES = ("preflight", "stopped", "upgrading", "upgraded", "switched", "started", "done")


def _kill_at(project: LocalProject, phase: str, *args: str) -> str:
    """Run the upgrade and SIGKILL it as soon as the state file says `phase` (or a later one: some last
    milliseconds); the phase it was killed in."""
    return _kill_when(project, lambda current: current is not None and
                      PHASES.index(current["phase"]) >= PHASES.index(phase), phase, *args)


def _kill_when(project: LocalProject, ready: Callable[[dict[str, Any] | None], bool], what: str, *args: str,
               pause: float = 0.01) -> str:
    """Run the upgrade and SIGKILL it as soon as `ready(state)` holds; the phase it was killed in."""
    process = project.popen("upgrade", "--env", "production", "--to", "18", *args, "--yes")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        current = project.state()
        if ready(current):
            process.send_signal(signal.SIGKILL)
            killed: str = current["phase"] if current is not None else "none"
            break
        if process.poll() is not None:
            pytest.fail(f"the upgrade ended before reaching {what}: {process.stderr.read() if process.stderr else ''}")
        time.sleep(pause)
    else:
        pytest.fail(f"the upgrade did not reach {what} in time")
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert killed != "done"
    return killed


@pytest.mark.parametrize("phase", ["preflight", "stopped", "upgrading", "upgraded", "switched", "started"])
def test_kill_in_every_phase_leaves_the_old_cluster_or_the_new_one(pg14: LocalProject, phase: str) -> None:
    """kill -9 at each phase of a copy upgrade; the re-run either rolls back and upgrades again, or finishes."""
    before = pg14.fingerprints()
    rehearsed = _rehearsed(pg14)
    _kill_at(pg14, phase, "--method", "copy", "--rehearsed", rehearsed)
    again = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "copy", "--rehearsed", rehearsed,
                     "--yes")
    assert again.returncode == 0, again.stderr
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    back = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert back.returncode == 0, back.stderr
    _unchanged(pg14, before)


def test_link_upgrade_and_the_commands_after_it(pg14: LocalProject) -> None:
    before = pg14.fingerprints()
    with pg14.connect() as conn:
        applied = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    listed = pg14.cli("backup", "list", "--env", "production", "--json")
    old_full = next(b["name"] for b in json.loads(listed.stdout) if b["type"] == "full")
    eol = pg14.cli("security", "check", "--env", "production", "--json")
    assert "version-support" in eol.stdout  # PostgreSQL 14 is past its end of life
    result = pg14.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--rehearsed",
                      _rehearsed(pg14), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["can_roll_back"] is False
    assert report["backup"] is None  # the copy run's backup is recent, verified, and of this very cluster
    assert report["backup_after"]  # the new system identifier's first full backup
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    with pg14.connect() as conn:
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall() == applied
    assert (pg14.home / "postgres_major").read_text().strip() == "18"
    refused = pg14.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert refused.returncode == 4
    assert "point of no return" in refused.stderr
    assert pg14.cli("migrate", "status", "--env", "production").returncode == 0
    check = pg14.cli("security", "check", "--env", "production", "--json")
    assert "version-support" not in check.stdout
    for args in (("backup", "create", "--env", "production", "--type", "full"),
                 ("backup", "create", "--env", "production", "--type", "logical"),
                 ("monitor", "--env", "production"), ("analyze", "--env", "production")):
        done = pg14.cli(*args)
        assert done.returncode in (0, 1), (args, done.stderr)  # 1: the monitor's or analysis's findings
        assert "Traceback" not in done.stderr
    # db-restore on the new major: its first full backup, in place of the whole cluster; a backup from before the
    # upgrade is refused there (another major), and names the way it does restore.
    assert pg14.cli("maintenance", "enable", "--env", "production", "--reason", "restore").returncode == 0
    wrong = pg14.cli("restore", "database", "--env", "production", "--backup", old_full, "--yes")
    assert wrong.returncode == 2 and "PostgreSQL 14" in wrong.stderr, wrong.stderr
    again = pg14.cli("restore", "database", "--env", "production", "--backup", report["backup_after"], "--open",
                     "--yes")
    assert again.returncode == 0, again.stderr
    assert pg14.cli("maintenance", "disable", "--env", "production").returncode == 0
    assert pg14.major() == 18
    assert pg14.fingerprints() == before
    # A backup from before the upgrade still restores, into a scratch cluster of its own major.
    restored = pg14.cli("restore", "test", "--env", "production", "--backup", old_full, "--json")
    assert restored.returncode == 0, restored.stderr
    finished = pg14.cli("upgrade", "--env", "production", "--finish", "--yes")
    assert finished.returncode == 0, finished.stderr
    assert not (pg14.home / "upgrade").exists()
    assert pg14.major() == 18


def test_14_to_15_debian_build(tmp_path: Path, keys: AgeKeys) -> None:
    _need(14)
    _need(15)
    project = make_local_project(tmp_path / "p15", keys, 14, protected=False)
    try:
        before = project.fingerprints()
        result = project.cli("upgrade", "--env", "production", "--to", "15", "--method", "link", "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
        assert project.major() == 15
        assert project.fingerprints() == before
    finally:
        project.cli("cluster", "down", "--env", "production")


def test_swap_upgrade(tmp_path: Path, keys: AgeKeys) -> None:
    _need(14)
    _need(18)
    project = make_local_project(tmp_path / "swap", keys, 14, protected=False)
    try:
        before = project.fingerprints()
        result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "swap", "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
        assert project.major() == 18
        assert project.fingerprints() == before
    finally:
        project.cli("cluster", "down", "--env", "production")




@pytest.mark.parametrize("phase", ["upgrading", "upgraded", "started"])
def test_link_killed_in_a_phase_leaves_the_old_cluster_or_the_new_one(tmp_path: Path, keys: AgeKeys,
                                                                      phase: str) -> None:
    """kill -9 of a link upgrade (each on its own 14 environment: link cannot go back once the new server started).
    Before the point of no return --rollback brings PostgreSQL 14 back exactly (pg_upgrade's pg_control.old renamed
    back); after it, --rollback is refused and the re-run finishes the upgrade."""
    _need(14)
    _need(18)
    project = make_local_project(tmp_path / "link", keys, 14, protected=False)
    try:
        before = project.fingerprints()
        system = project.system_identifier()
        killed = _kill_at(project, phase, "--method", "link")
        state = project.state()
        assert state is not None, killed
        if not state["point_of_no_return"]:
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, back.stderr
            assert project.system_identifier() == system
            _unchanged(project, before)
        else:  # the kill landed at or after the first start (it can, even when asked for an earlier phase)
            assert PHASES.index(killed) >= PHASES.index("started"), killed
            refused = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert refused.returncode == 4 and "point of no return" in refused.stderr, refused.stderr
            again = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--yes")
            assert again.returncode == 0, again.stderr
            assert project.major() == 18
            assert project.fingerprints() == before
    finally:
        project.cli("cluster", "down", "--env", "production")


def _swapping(project: LocalProject) -> bool:
    """pg_upgrade --swap is moving the old cluster's database directories into the new one (its own folder for
    what it moves aside exists in the old data directory, which is then no longer a cluster that can start)."""
    return (project.home / "data" / "base" / "moved_for_upgrade").exists() or (
        project.home / "upgrade" / "pg14" / "data" / "base" / "moved_for_upgrade").exists()


def test_swap_killed_in_every_phase_leaves_the_old_cluster_or_the_new_one(tmp_path: Path, keys: AgeKeys) -> None:
    """kill -9 of a swap upgrade in each phase, on one 14 environment. Up to the first start of the new server
    --rollback brings PostgreSQL 14 back exactly, also when the kill lands while pg_upgrade --swap is moving the
    old cluster's directories (its hard-linked copy is put back); after the first start the rollback is refused and
    the re-run finishes the upgrade."""
    _need(14)
    _need(18)
    project = make_local_project(tmp_path / "swapkill", keys, 14, protected=False)
    try:
        before = project.fingerprints()
        system = project.system_identifier()
        moved_midway = False
        for attempt in range(3):  # pg_upgrade moves directories in milliseconds: a kill may land after
            killed = _kill_when(project, lambda _state: _swapping(project), "pg_upgrade --swap moving directories",
                                "--method", "swap", pause=0.001)
            state = project.state()
            assert state is not None and state["kept"] is True, (attempt, killed, state)
            assert state["point_of_no_return"] is False, state
            moved_midway = killed == "upgrading"  # pg_upgrade had begun moving and had not finished
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, back.stderr
            assert project.system_identifier() == system
            _unchanged(project, before)
            if moved_midway:
                break
        assert moved_midway or killed == "upgraded", killed
        for phase in ("stopped", "upgraded", "switched"):
            killed = _kill_at(project, phase, "--method", "swap")
            state = project.state()
            assert state is not None and not state["point_of_no_return"], (phase, killed, state)
            back = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
            assert back.returncode == 0, (phase, back.stderr)
            assert project.system_identifier() == system
            _unchanged(project, before)
        killed = _kill_at(project, "started", "--method", "swap")
        state = project.state()
        assert state is not None and state["point_of_no_return"] is True, state
        refused = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
        assert refused.returncode == 4 and "point of no return" in refused.stderr, refused.stderr
        again = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "swap", "--yes")
        assert again.returncode == 0, again.stderr
        assert project.major() == 18
        assert project.fingerprints() == before
        assert not (project.home / "upgrade" / "pg14.kept").exists()
        assert project.cli("upgrade", "--env", "production", "--finish", "--yes").returncode == 0
        assert not (project.home / "upgrade").exists()
    finally:
        project.cli("cluster", "down", "--env", "production")
