"""Helpers that create real server activity for the troubleshooting tests: sessions that hold or wait for locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll until the predicate is truthy (the machine is shared and slow: generous deadline, no sleeps to tune)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


class Background:
    """Statements run on their own connection in a thread, for a session that is going to wait for a lock."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], *statements: str,
                 application: str = "test-waiter") -> None:
        self.conn = connect()
        self.conn.execute("SELECT set_config('application_name', %s, false)", (application,))
        self.pid: int = self.conn.info.backend_pid
        self.statements = statements
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for statement in self.statements:
                self.conn.execute(statement.encode())
        except BaseException as exc:
            self.error = exc

    def done(self, timeout: float = 60.0) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self) -> None:
        if not self.thread.is_alive():
            self.conn.close()


def waiting_for_lock(conn: psycopg.Connection[Any], pid: int) -> bool:
    row = conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return bool(row and row[0])


def alive(conn: psycopg.Connection[Any], pid: int) -> bool:
    return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None


