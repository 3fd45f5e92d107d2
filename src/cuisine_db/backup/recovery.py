"""Starting a laid-down data directory in private: recovery to a target, then the fix-ups, then a normal start.

The server starts with its recovery settings on the command line (`pg_ctl -o "-c restore_command=..."`), so no
configuration file is edited and nothing of the recovery stays behind; with no TCP listener at all
(`listen_addresses = ''`) and one Unix socket in a private 0700 folder, where a temporary pg_hba.conf trusts only
the tool's own superuser. Applications cannot connect while WAL replays, and the tool needs no password for a
cluster whose roles came from a backup (their passwords are set back to the environment's pgpass afterwards).
Logs go to a plain file, read back when the server stops on its own (a target past the end of the archive,
a failed restore_command).
"""

from __future__ import annotations

import contextlib
import functools
import math
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.errors import FailedError, UnavailableError
from cuisine_db.postgres import osuser, postmaster
from cuisine_db.postgres.cluster import SUPERUSER
from cuisine_db.postgres.runner import run
from cuisine_db.waiting import poll_until, wait_for

POLL = 0.02  # a start or a short replay is over in a second or two: coarser polling was a visible share of it
STOP_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Progress:
    """Where replay stands: still recovering?, the last replayed WAL position and transaction time."""

    in_recovery: bool
    replay_lsn: str | None
    replay_time: datetime | None
    current_wal: str | None


@dataclass(frozen=True, slots=True)
class Reached:
    """Where recovery ended: the last replayed position and transaction, and the timeline the server is on now."""

    lsn: str | None
    time: datetime | None
    timeline: int | None
    paused: bool


class StoppedEarly(FailedError):
    """The server stopped during recovery; `log` holds what it said."""

    def __init__(self, message: str, log: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.log = log


def _quote_option(name: str, value: str) -> str:
    return shlex.quote(f"{name}={value}")


@dataclass
class PrivateServer:
    """A server on a data directory, reachable only through a private socket, for recovery and its fix-ups."""

    bindir: Path
    data: Path
    port: int
    os_user: str | None
    log: Path
    options: Mapping[str, str]
    drop: tuple[str, ...] = ()  # the operator's secret variables: the server does not inherit them
    socket_dir: Path | None = None

    def _pg_ctl(self, *args: str | Path, timeout: float = 150, check: bool = True) -> int:
        return run([self.bindir / "pg_ctl", "--pgdata", self.data, *args], user=self.os_user, timeout=timeout,
                   check=check, drop=self.drop).returncode

    def start(self) -> None:
        # A short path: socket names are limited to 107 bytes, and the folder is private to the server's user.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="cuisine-db-", dir="/tmp"))
        hba = self.socket_dir / "pg_hba.conf"
        hba.write_text(f"local all {SUPERUSER} trust\n")
        osuser.give_to(self.socket_dir, self.os_user)
        if self.os_user:
            shutil.chown(hba, self.os_user)
        fixed = {"listen_addresses": "", "unix_socket_directories": str(self.socket_dir), "hba_file": str(hba),
                 "port": str(self.port), "logging_collector": "off", "log_destination": "stderr",
                 "hot_standby": "on"}
        options = " ".join(f"-c {_quote_option(k, v)}" for k, v in {**fixed, **self.options}.items())
        osuser.give_to(self.log.parent, self.os_user)
        with contextlib.suppress(FileNotFoundError):
            self.log.unlink()
        self._pg_ctl("start", "--no-wait", "--log", self.log, "-o", options)

    def pid(self) -> int | None:
        found = postmaster.live(self.data)
        return found.pid if found else None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=dbname,
                               autocommit=True, connect_timeout=10,
                               application_name="cuisine-db recovery")

    def conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.socket_dir), port=str(self.port), user=SUPERUSER,
                                              dbname=dbname)

    def _wait_connection(self, started: float, deadline: float | None) -> psycopg.Connection[Any]:
        def connected() -> psycopg.Connection[Any] | None:
            if self.pid() is None and time.monotonic() - started > 2:
                raise self._stopped()
            try:
                return self.connect()
            except psycopg.OperationalError:
                return None

        return poll_until(connected, seconds=_left(started, deadline), interval=POLL, what=lambda: UnavailableError(
            "the server did not accept connections in time during recovery", hint=f"see {self.log}"))

    def _stopped(self) -> StoppedEarly:
        text = self.log_text()
        ours = ("starting up", "not yet accepting connections")  # our own attempts to connect while it started
        lines = [line for line in text.splitlines() if ("FATAL" in line or "PANIC" in line)
                 and not any(mark in line for mark in ours)] or text.splitlines()[-3:]
        return StoppedEarly(f"the server stopped during recovery: {' / '.join(lines[-2:]) or 'no log output'}", text,
                            hint=f"the whole log: {self.log}")

    def wait(self, *, pause: bool, report: Callable[[Progress], None] = lambda _: None,
             deadline: float | None = None) -> Reached:
        """Until recovery ends (promotion) or, with `pause`, stops at its target; report progress meanwhile."""
        started = time.monotonic()

        def reached(conn: psycopg.Connection[Any]) -> Reached | None:
            row = conn.execute(queries.load("pitr/replay_progress")).fetchone()
            if row is None:
                raise UnavailableError("the server returned no replay position")
            progress = Progress(*row)
            report(progress)
            paused = pause and progress.in_recovery and _paused(conn)
            if not progress.in_recovery or paused:
                timeline = int(progress.current_wal[:8], 16) if progress.current_wal else None
                return Reached(progress.replay_lsn, progress.replay_time, timeline, paused)
            return None

        while True:
            conn = self._wait_connection(started, deadline)
            try:
                with conn:
                    return poll_until(functools.partial(reached, conn), seconds=_left(started, deadline), interval=POLL,
                                      what=lambda: UnavailableError("recovery did not finish in time",
                                                                    hint=f"see {self.log}"))
            except psycopg.OperationalError:
                # The connection was lost: the server stopped (its log says why) or restarts; connect again.
                if self.pid() is None:
                    raise self._stopped() from None

    def stop(self, mode: str = "fast") -> None:
        """Stopped when its postmaster has exited and removed postmaster.pid (what `pg_ctl stop --wait` waits for),
        polled at POLL rather than pg_ctl's tenth of a second: the private stop is on the restore's downtime path."""
        if self.pid() is None:
            return
        self._pg_ctl("stop", "--no-wait", "--mode", mode, check=False)
        wait_for(lambda: self.pid() is None or None, seconds=STOP_SECONDS, interval=POLL)

    def cleanup(self) -> None:
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def _left(started: float, deadline: float | None) -> float:
    """Seconds left of a `deadline` counted from `started` (None: no deadline)."""
    return math.inf if deadline is None else deadline - (time.monotonic() - started)


def _paused(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(queries.load("pitr/pause_state")).fetchone()
    return bool(row and row[0] == "paused")


@contextmanager
def private_server(bindir: Path, data: Path, port: int, os_user: str | None, log: Path,
                   options: Mapping[str, str], drop: tuple[str, ...] = ()) -> Iterator[PrivateServer]:
    """Start privately; whatever happens inside, the server is stopped and the socket folder removed after."""
    server = PrivateServer(bindir, data, port, os_user, log, options, drop)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.cleanup()
