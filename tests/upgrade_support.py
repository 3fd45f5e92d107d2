"""What the upgrade test modules share: a project folder whose environment `production` is a local cluster of the
tool's own, seeded; its upgrade state; running an upgrade and killing it with SIGKILL at a phase."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import TABLES, AgeKeys, table_fingerprints
from cli_support import run_cli
from conftest import CLI, MIGRATIONS, available

from cuisine_db.config import load_settings
from cuisine_db.postgres.ports import free_port


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

def need(major: int) -> None:
    if available(major) is None:
        pytest.skip(f"PostgreSQL {major} is not installed on this machine")

def unchanged(project: LocalProject, before: dict[str, tuple[int, str]]) -> None:
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()
    assert not (project.home / "postgres_major").exists()

PHASES = ("preflight", "stopped", "upgrading", "upgraded", "switched", "started", "done")


def kill_at(project: LocalProject, phase: str, *args: str) -> str:
    """Run the upgrade and SIGKILL it as soon as the state file says `phase` (or a later one: some last
    milliseconds); the phase it was killed in."""
    return kill_when(project, lambda current: current is not None and
                      PHASES.index(current["phase"]) >= PHASES.index(phase), phase, *args)


def kill_when(project: LocalProject, ready: Callable[[dict[str, Any] | None], bool], what: str, *args: str,
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


@contextmanager
def throwaway(root: Path, keys: AgeKeys, target: int) -> Iterator[LocalProject]:
    """A small unprotected PostgreSQL 14 project of its own for one upgrade to `target`, brought down after."""
    need(14)
    need(target)
    project = make_local_project(root, keys, 14, protected=False)
    try:
        yield project
    finally:
        project.cli("cluster", "down", "--env", "production")


def past_no_return_the_rerun_finishes(project: LocalProject, method: str, before: dict[str, tuple[int, str]]) -> None:
    """Killed after the point of no return: --rollback is refused (exit 4) and the re-run finishes on 18 with the
    same rows."""
    refused = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert refused.returncode == 4 and "point of no return" in refused.stderr, refused.stderr
    again = project.cli("upgrade", "--env", "production", "--to", "18", "--method", method, "--yes")
    assert again.returncode == 0, again.stderr
    assert project.major() == 18
    assert project.fingerprints() == before
