"""Fixtures of the point-in-time recovery tests: a project whose `production` is a local cluster of its own (a
physical restore stops it, replaces its data directory and starts it again, so it cannot be the shared session
server), archiving WAL to a folder or to the S3 test server, encrypted to the session's age keys.

conftest.py loads these as a plugin (after backup_fixtures).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import S3_KEY_VAR, S3_SECRET, S3_SECRET_VAR, AgeKeys, S3Server, repository_settings
from cli_support import run_cli, run_env, run_make
from conftest import CLI, REPO, Server

from cuisine_db.config import Settings, load_settings
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.ports import free_port
from cuisine_db.storage import signing


@dataclass
class PitrProject:
    """A project folder with a local `production` (protected) and `development` cluster of one major version."""

    root: Path
    config: Path
    major: int
    keys: AgeKeys
    repository: str
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config), **self.environ})

    def _environ(self, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
        return run_env(self.config, {**self.environ, **(extra or {})}, drop)

    def cli(self, *args: str, timeout: float = 600, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, extra=self.environ, drop=drop, cwd=self.root, timeout=timeout)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.cli(*args)
        assert result.returncode == 0, (f"cuisine-db {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
                                        f"\n{result.stdout[-3000:]}")
        return result

    def make(self, *args: str, typed: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A runbook line through make; `typed` is what the operator types at a confirmation prompt (a terminal)."""
        if typed is None:
            return run_make(self.config, *args, extra=self.environ, timeout=timeout)
        argv = ["make", "--no-print-directory", "-C", str(REPO), *args]
        leader, follower = pty.openpty()
        try:
            os.write(leader, typed.encode() + b"\n")
            process = subprocess.Popen(argv, env=self._environ(), stdin=follower, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            drain = threading.Thread(target=_drain, args=(leader,), daemon=True)
            drain.start()
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            os.close(follower)
            os.close(leader)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    def connect(self, env: str = "production", dbname: str = "cuisine") -> psycopg.Connection[Any]:
        settings = self.settings
        chosen = settings.env(env)
        return psycopg.connect(host="127.0.0.1", port=chosen.port, user="cuisine", dbname=dbname, autocommit=True,
                               passfile=str(settings.env_dir(chosen) / "pgpass"), connect_timeout=10)

    def cluster(self, env: str = "production") -> Any:
        settings = self.settings
        return cluster_for(settings, settings.env(env))

    def journal(self, env: str = "production") -> list[dict[str, Any]]:
        path = self.root / ".cuisine" / env / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_archived(self, name: str, deadline: float = 120, env: str = "production", dbname: str = "cuisine"
                      ) -> None:
        """Until env's server has archived `name` (or a later segment)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with self.connect(env, dbname) as conn:
                row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
            if row and row[0] and row[0][:24] >= name:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} was not archived within {deadline:.0f}s")

    def switch(self, env: str = "production", dbname: str = "cuisine", kept: int | None = None) -> str:
        """Close the current segment (so the archiver takes it), after inserting `kept` into table kept when given;
        the name of the segment closed."""
        with self.connect(env, dbname) as conn:
            if kept is not None:
                conn.execute("INSERT INTO kept VALUES (%s)", [kept])
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        return str(row[0])

    def destroy(self) -> None:
        settings = self.settings
        for env in settings.environments.values():
            if env.is_local:
                cluster_for(settings, env).destroy()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1024):
            pass
    except OSError:
        return


def make_pitr_project(root: Path, major: int, keys: AgeKeys, *, backend: str = "file", s3: S3Server | None = None,
                      archive_timeout: str = "15min", settings: str = "") -> PitrProject:
    root.mkdir(parents=True, exist_ok=True)
    repository, storage, environ = repository_settings(root, backend, s3)
    lines = ['default_env = "production"\n']
    for env, protected in (("production", "true"), ("development", "false")):
        lines.append(
            f"[environments.{env}]\nport = {free_port()}\npostgres_version = {major}\nprotected = {protected}\n"
            f"[environments.{env}.server_settings]\nfsync = false\n{settings}"
            f'[environments.{env}.wal]\narchive_timeout = "{archive_timeout}"\n'
            # The share of this machine's disk that is free is not what these tests are about: db-monitor (the
            # dashboard's fixture wants it clean) warns below 20% free, which a shared test machine can reach.
            f"[environments.{env}.monitoring]\ndisk_free_warning = 0.02\ndisk_free_critical = 0.01\n"
            f"[environments.{env}.backup]\n{storage}recipients = [\"{keys.recipient}\"]\n"
            f'identity_file = "{keys.identity_file}"\n')
    config = root / "cuisine-db.toml"
    config.write_text("".join(lines))
    project = PitrProject(root, config, major, keys, repository, environ)
    # The operator starts a protected environment's cluster (make cluster-up); no other command starts it.
    project.ok("cluster", "up", "--env", "production")
    return project


@pytest.fixture
def pitr(server: Server, tmp_path: Path, age_keys: AgeKeys) -> Iterator[PitrProject]:
    """A PITR project on the session server's major version (its skip rules apply), file repository."""
    project = make_pitr_project(tmp_path / "pitr", server.major, age_keys)
    try:
        yield project
    finally:
        project.destroy()


@dataclass
class WalArchive:
    """A configuration whose `production` archives WAL into a folder or the S3 test server, and a fake pg_wal
    folder: `wal push` and `wal fetch` run as PostgreSQL runs them, without a server."""

    root: Path
    config: Path
    pg_wal: Path
    environ: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*CLI, "wal", *args[:1], "--config", str(self.config), "--env", "production",
                               *args[1:]], cwd=self.pg_wal.parent, env={**os.environ, **self.environ},
                              capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*CLI, "wal", *args[:1], "--config", str(self.config), "--env", "production",
                                 *args[1:]], cwd=self.pg_wal.parent, env={**os.environ, **self.environ},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def segment(self, name: str, data: bytes, *, ready: bool = True) -> Path:
        path = self.pg_wal / name
        path.write_bytes(data)
        if ready:
            (self.pg_wal / "archive_status" / f"{name}.ready").touch()
        return path

    def fetch(self, name: str) -> tuple[int, bytes | None]:
        destination = self.pg_wal.parent / "restored" / name
        destination.parent.mkdir(exist_ok=True)
        destination.unlink(missing_ok=True)
        result = self.run("fetch", name, str(destination))
        return result.returncode, destination.read_bytes() if destination.exists() else None

    def as_postgres(self, command: str, name: str, path: str) -> subprocess.CompletedProcess[bytes]:
        """`command` (an archive_command or restore_command) run as PostgreSQL runs it: %f, %p and %% replaced, then
        through /bin/sh in the data directory."""
        replaced = re.sub("%([fp%])", lambda found: {"f": name, "p": path, "%": "%"}[found.group(1)], command)
        return subprocess.run(["/bin/sh", "-c", replaced], cwd=self.pg_wal.parent, env={**os.environ, **self.environ},
                              capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL)

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config), **self.environ})


def real_segments(server: Server, count: int) -> list[tuple[str, bytes]]:
    """`count` complete segments of the running server, each with some writes, then a switch, read back through the
    server: names and 16 MB contents, oldest first."""
    found: list[tuple[str, bytes]] = []
    with server.admin() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS wal_segments_probe (id int, payload text)")
        for _ in range(20 * count):
            if len(found) == count:
                break
            conn.execute("INSERT INTO wal_segments_probe SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()  # the segment it completed
            assert row is not None
            name = str(row[0])
            if any(name == seen for seen, _ in found):
                continue  # a switch that completed nothing new
            data = conn.execute("SELECT pg_read_binary_file(%s)", (f"pg_wal/{name}",)).fetchone()
            assert data is not None
            found.append((name, bytes(data[0])))
        conn.execute("DROP TABLE wal_segments_probe")
    assert len(found) == count, found
    return found


def make_wal_archive(root: Path, keys: AgeKeys, *, backend: str = "file", s3: S3Server | None = None,
                     endpoint: str | None = None, extra: str = "") -> WalArchive:
    root.mkdir(parents=True, exist_ok=True)
    environ: dict[str, str] = {}
    if backend == "s3":
        where = endpoint or (s3.endpoint if s3 else "")
        bucket = s3.bucket() if s3 is not None and endpoint is None else "nowhere"
        storage = (f'repository = "s3://{bucket}/cuisine"\ns3_endpoint = "{where}"\n'
                   f's3_access_key_env = "{S3_KEY_VAR}"\ns3_secret_key_env = "{S3_SECRET_VAR}"\n')
        environ = {S3_KEY_VAR: "test", S3_SECRET_VAR: S3_SECRET}
    else:
        storage = f'repository = "{(root / "repository").as_uri()}"\n'
    config = root / "cuisine-db.toml"
    config.write_text(f"[environments.production]\nport = {free_port()}\n"
                      f"[environments.production.wal]\n{extra}"
                      f"[environments.production.backup]\n{storage}recipients = [\"{keys.recipient}\"]\n"
                      f'identity_file = "{keys.identity_file}"\n')
    signing.generate(root / ".cuisine" / "keys")  # what `backup keygen` makes: WAL records are signed with it
    pg_wal = root / "data" / "pg_wal"
    (pg_wal / "archive_status").mkdir(parents=True)
    (root / "home").mkdir()
    environ["HOME"] = str(root / "home")  # the settings cache of wal push/fetch goes under ~/.cache
    return WalArchive(root, config, pg_wal, environ)
