"""Faults during migrations: a runner killed mid-migration leaves nothing half-applied and no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import CLI, Project


def _write(project: Project, name: str, text: str) -> None:
    (project.root / "db" / "migrations" / name).write_text(text)


def _wait_for_query(project: Project, fragment: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with project.server.admin() as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                               [f"%{fragment}%"]).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)
    raise AssertionError(f"no session ran {fragment!r} within {timeout}s")


def test_kill_9_during_a_migration_keeps_nothing_and_releases_the_lock(empty_project: Project) -> None:
    project = empty_project
    _write(project, "20250101000000_slow.sql",
           "-- migrate:up\nCREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELECT pg_sleep(30);\n"
           "-- migrate:down\nDROP TABLE half;\n")
    runner = subprocess.Popen([*CLI, "migrate", "up"], cwd=project.root,
                              env={**os.environ, "CUISINE_DB_CONFIG": str(project.config)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_query(project, "pg_sleep(30)")
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    # The server notices the dead client, rolls its transaction back and frees the advisory lock.
    assert project.tables() in ([], ["schema_migrations"])
    _write(project, "20250101000000_slow.sql",
           "-- migrate:up\nCREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n"
           "-- migrate:down\nDROP TABLE half;\n")
    # The edited file is not drift: the killed run recorded nothing.
    started = time.monotonic()
    again = project.cli("migrate", "up", "--lock-wait", "60")
    assert again.returncode == 0, again.stderr
    # client_connection_check_interval makes the server notice within seconds, not after pg_sleep(30).
    assert time.monotonic() - started < 20
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM half").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (1,)


def test_a_runner_waiting_too_long_for_the_lock_gives_up_with_exit_3(empty_project: Project) -> None:
    project = empty_project
    _write(project, "20250101000000_slow.sql",
           "-- migrate:up\nSELECT pg_sleep(8);\n-- migrate:down\nSELECT 1;\n")
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config)}
    holder = subprocess.Popen([*CLI, "migrate", "up"], cwd=project.root, env=environ,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_query(project, "pg_sleep(8)")
        waiter = project.cli("migrate", "up", "--lock-wait", "1")
        assert waiter.returncode == 3
        assert "another migration runner" in waiter.stderr
    finally:
        assert holder.wait(timeout=60) == 0
