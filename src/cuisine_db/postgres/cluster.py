"""A local PostgreSQL cluster driven by initdb and pg_ctl: create, start, stop, inspect, destroy."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import osuser, safe_files
from cuisine_db.postgres.binaries import PgBuild
from cuisine_db.postgres.runner import run

SUPERUSER = "cuisine"


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """What a local cluster is doing right now."""

    initialized: bool
    running: bool
    pid: int | None
    port: int
    version: str
    datadir: Path


def conf_value(value: str | int | bool) -> str:
    """A value as postgresql.conf (and postgresql.auto.conf) spells it: a string quoted, its quotes doubled and its
    backslashes too (the server reads a backslash in a quoted value as the start of an escape: a path or conninfo
    holding one would otherwise arrive changed)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def base_settings(major: int, port: int) -> dict[str, str | int | bool]:
    """The server settings every cluster the tool creates starts with."""
    return {
        "listen_addresses": "127.0.0.1",
        "port": port,
        # TCP only: socket paths under deep folders exceed the 107-byte limit.
        "unix_socket_directories": "",
        "wal_level": "replica",
        "max_wal_senders": 10,
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "track_io_timing": True,
        "logging_collector": True,
        "log_destination": "jsonlog" if major >= 15 else "csvlog",
        "log_directory": "log",
        "log_min_duration_statement": 1000,
        "log_lock_waits": True,
        "log_checkpoints": True,
        "password_encryption": "scram-sha-256",
        "max_connections": 50,
    }


@dataclass(frozen=True, slots=True)
class LocalCluster:
    """One data directory, its port and the build that serves it."""

    home: Path  # holds data/, run/ and the credentials file
    port: int
    build: PgBuild
    os_user: str | None
    extra_settings: Mapping[str, str | int | bool] | None = None

    @property
    def datadir(self) -> Path:
        return self.home / "data"

    @property
    def passfile(self) -> Path:
        return self.home / "pgpass"

    @property
    def _run_dir(self) -> Path:
        return self.home / "run"

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb with checksums and SCRAM authentication; the superuser's password goes to a 0600 pgpass."""
        osuser.own_home(self.home, self.os_user)
        osuser.make_reachable(self.build.bindir, self.os_user)
        osuser.give_to(self._run_dir, self.os_user)
        password = secrets.token_urlsafe(24)
        pwfile = self._run_dir / "initdb.pw"
        # run/ is the server user's folder: created 0600 through no link, owned by that user from the start.
        safe_files.write(pwfile, password + "\n", owner=self.os_user)
        osuser.give_to(self.datadir, self.os_user)
        try:
            run(
                [
                    self.build.program("initdb"), "--pgdata", self.datadir, "--username", SUPERUSER,
                    "--pwfile", pwfile, "--auth", "scram-sha-256", "--data-checksums",
                    "--encoding", "UTF8", "--locale", "C",
                ],
                user=self.os_user,
                timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        safe_files.write(self.passfile, f"*:*:*:{SUPERUSER}:{password}\n")  # 0600 from its creation
        settings = {**base_settings(self.build.major, self.port), **(self.extra_settings or {})}
        lines = [f"{key} = {conf_value(value)}" for key, value in settings.items()]
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# Set by cuisine-db\n" + "\n".join(lines) + "\n")

    def _pg_ctl(self, *args: str | Path, timeout: float = 120, check: bool = True) -> int:
        result = run(
            [self.build.program("pg_ctl"), "--pgdata", self.datadir, *args],
            user=self.os_user,
            timeout=timeout,
            check=check,
        )
        return result.returncode

    def running(self) -> bool:
        return self.initialized() and self._pg_ctl("status", check=False) == 0

    def start(self) -> None:
        if not self.initialized():
            raise UnavailableError(f"no cluster in {self.datadir}", hint="run: cuisine-db cluster up")
        if self.running():
            return
        log = self._run_dir / "pg_ctl.log"
        try:
            self._pg_ctl("start", "--wait", "--timeout", "90", "--log", log, timeout=120)
        except UnavailableError as exc:
            startup = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise UnavailableError(
                f"PostgreSQL in {self.datadir} did not start: {' '.join(startup) or exc.message}",
                hint=f"see {self.datadir / 'log'}",
            ) from None

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._pg_ctl("stop", "--wait", "--mode", mode, "--timeout", "120", timeout=150)

    def promote(self) -> None:
        """End a standby's recovery (pg_ctl promote): it starts a new timeline and accepts writes."""
        self._pg_ctl("promote", "--wait", "--timeout", "90", timeout=120)

    def restart(self) -> None:
        """Stop (fast: sessions are ended, transactions rolled back) and start again, e.g. for postmaster settings."""
        self.stop()
        self.start()

    def status(self) -> ClusterStatus:
        pid = None
        running = self.running()
        if running:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        return ClusterStatus(
            initialized=self.initialized(),
            running=running,
            pid=pid,
            port=self.port,
            version=self.build.version,
            datadir=self.datadir,
        )

    def destroy(self) -> None:
        """Stop the server (immediately) and remove the data directory and credentials; the journal stays."""
        if self.initialized():
            self.stop(mode="immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.rmtree(self._run_dir, ignore_errors=True)
        self.passfile.unlink(missing_ok=True)
