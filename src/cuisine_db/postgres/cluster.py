"""A local PostgreSQL cluster driven by initdb and pg_ctl: create, start, stop, inspect, destroy."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import osuser, postmaster, safe_files
from cuisine_db.postgres.binaries import PgBuild
from cuisine_db.postgres.runner import run
from cuisine_db.waiting import wait_for

SUPERUSER = "cuisine"
START_SECONDS = 90.0  # pg_ctl start --wait's --timeout as it was given here
STOP_SECONDS = 120.0
# A postmaster writes postmaster.pid first thing; none alive this long after pg_ctl returned means it exited
# (a bad setting, a port in use): its log says why.
START_GONE_SECONDS = 5.0


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
        return self.initialized() and postmaster.live(self.datadir) is not None

    def start(self) -> None:
        """Started and accepting connections (what `pg_ctl start --wait` waits for, polled at postmaster.POLL)."""
        if not self.initialized():
            raise UnavailableError(f"no cluster in {self.datadir}", hint="run: cuisine-db cluster up")
        if self.running():
            return
        log = self._run_dir / "pg_ctl.log"
        launched = time.monotonic()
        launched_at = time.time()

        def ready() -> bool | None:
            found = postmaster.live(self.datadir)
            if found is None and time.monotonic() - launched > START_GONE_SECONDS:
                raise self._not_started(log, "it exited", launched_at)
            return True if found is not None and found.ready else None

        try:
            self._pg_ctl("start", "--no-wait", "--log", log, timeout=30)
        except UnavailableError as exc:
            raise self._not_started(log, exc.message, launched_at) from None
        if wait_for(ready, seconds=START_SECONDS, interval=postmaster.POLL) is None:
            raise self._not_started(log, f"not accepting connections after {START_SECONDS:.0f} s", launched_at)

    def _not_started(self, log: Path, why: str, since: float) -> UnavailableError:
        said = postmaster.fatal_lines(self.datadir / "log", since=since - 1) or \
            (log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else [])
        return UnavailableError(f"PostgreSQL in {self.datadir} did not start: {' '.join(said) or why}",
                                hint=f"see {self.datadir / 'log'}")

    def stop(self, mode: str = "fast") -> None:
        """Stopped: postmaster.pid removed (what `pg_ctl stop --wait` waits for) and, beyond pg_ctl, the postmaster
        process exited too (it removes the file a moment before it exits), polled at postmaster.POLL."""
        found = postmaster.live(self.datadir) if self.initialized() else None
        if found is None:
            return
        self._pg_ctl("stop", "--no-wait", "--mode", mode, timeout=30)
        if wait_for(lambda: (postmaster.live(self.datadir) is None and postmaster.exited(found.pid)) or None,
                    seconds=STOP_SECONDS, interval=postmaster.POLL) is None:
            raise UnavailableError(f"PostgreSQL in {self.datadir} did not stop within {STOP_SECONDS:.0f} s",
                                   hint=f"see {self.datadir / 'log'}")

    def promote(self) -> None:
        """End a standby's recovery (pg_ctl promote): it starts a new timeline and accepts writes."""
        self._pg_ctl("promote", "--wait", "--timeout", "90", timeout=120)

    def restart(self) -> None:
        """Stop (fast: sessions are ended, transactions rolled back) and start again, e.g. for postmaster settings."""
        self.stop()
        self.start()

    def status(self) -> ClusterStatus:
        found = postmaster.live(self.datadir) if self.initialized() else None
        return ClusterStatus(
            initialized=self.initialized(),
            running=found is not None,
            pid=found.pid if found else None,
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
