"""Running checks in parallel: tasks, largest first, over a few connections of their own.

Every check here only reads (amcheck and the constraint queries take ACCESS SHARE locks), so running them side
by side is safe; a task that waits too long for a lock is reported as not checked instead of blocking.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.errors import UnavailableError
from cuisine_db.findings import Finding
from cuisine_db.ops.integrity.catalog import Relation
from cuisine_db.waiting import retry

Connection = psycopg.Connection[Any]
LOCK_TIMEOUT = "10s"
WORK_MEM = "64MB"
RECONNECT_WAIT_S = 90.0
# SQLSTATE classes and codes that mean the data (not the query) is at fault.
_CORRUPTION_STATES = ("XX001", "XX002", "XX000", "58P01", "58030")
CRASH_SETTLE_S = 1.0
CRASHED = "the server process checking it crashed (the server restarted): damaged data tripped up the check"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Something a check saw that points at damage in a relation."""

    checked: Relation  # the relation whose check saw it
    message: str
    source: str  # "verify_heapam", "bt_index_check", "pg_amcheck", "page read", ...


@dataclass(slots=True)
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of checking; `cost` (pages to read) orders the work and drives the progress bar."""

    label: str
    cost: int
    run: Callable[[Connection], Outcome]
    relation: Relation | None = None  # the relation read, so an error it raises can be attributed
    source: str = ""  # what reads it ("verify_heapam", "bt_index_check", ...), named in the evidence


Progress = Callable[[int, int, str], None]  # (cost done, cost total, what finished)


def is_corruption(error: psycopg.Error) -> bool:
    return (error.sqlstate or "") in _CORRUPTION_STATES


def message_of(error: psycopg.Error) -> str:
    diag = error.diag
    text = diag.message_primary or str(error).strip()
    if diag.message_detail:
        text += f" ({diag.message_detail})"
    return text


def not_checked(task: Task, reason: str) -> Outcome:
    return Outcome(findings=[Finding("not checked", "warning", task.label, reason,
                                     "run the check again when the lock is free")])


class _Lost(Exception):
    """The server ended the session while the task ran: this task crashed it, or another one did."""


def open_when_ready(open_connection: Callable[[], Connection], wait: float = RECONNECT_WAIT_S) -> Connection:
    """Connect, waiting while the server restarts: after a backend crash it runs crash recovery first."""
    return retry(open_connection, on=(UnavailableError,), pause=1, growth=1, seconds=wait)


class _Worker:
    """One connection, reopened after the server ends it."""

    def __init__(self, open_connection: Callable[[], Connection]) -> None:
        self._open = open_connection
        self.conn: Connection | None = None

    def connection(self) -> Connection:
        if self.conn is None or self.conn.closed:
            self.conn = open_when_ready(self._open)
            self.conn.execute(sql.load("integrity/session"), {"lock_timeout": LOCK_TIMEOUT, "work_mem": WORK_MEM})
        return self.conn

    def run(self, task: Task) -> Outcome:
        conn = self.connection()
        try:
            return task.run(conn)
        except psycopg.errors.LockNotAvailable:
            return not_checked(task, f"waited {LOCK_TIMEOUT} for a lock another session holds")
        except psycopg.errors.QueryCanceled as exc:
            return not_checked(task, f"cancelled: {message_of(exc)}")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise UnavailableError(f"not allowed to check {task.label}: {message_of(exc)}",
                                   hint="run integrity checks as a superuser, or GRANT EXECUTE on amcheck's "
                                        "functions and pg_read_all_data to the environment's role") from None
        except psycopg.OperationalError:
            self.close()
            raise _Lost from None
        except psycopg.Error as exc:
            if not is_corruption(exc):
                raise
            if task.relation is not None:
                return Outcome(evidence=[Evidence(task.relation, message_of(exc), task.source or task.label)])
            return Outcome(findings=[Finding("not checked", "critical", task.label,
                                             f"reading the catalog failed: {message_of(exc)}",
                                             "make db-check-corruption (to find the damaged relation)")])

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None


def _alone(open_connection: Callable[[], Connection], task: Task) -> Outcome:
    """Run a task whose session was lost again, with nothing else running: if the server crashes again, the
    task's relation is what crashes it. Every session a crash ends looks the same to its client, and the
    warning the server sends the bystanders does not always arrive, so only a second crash convicts."""
    time.sleep(CRASH_SETTLE_S)  # let the postmaster begin the restart a crash triggers before reconnecting
    worker = _Worker(open_connection)
    try:
        return worker.run(task)
    except _Lost:
        if task.relation is None:
            raise UnavailableError(f"the server ended the session twice while checking {task.label}",
                                   hint="see the server's log") from None
        return Outcome(evidence=[Evidence(task.relation, CRASHED, task.source or task.label)])
    finally:
        worker.close()


def run_tasks(open_connection: Callable[[], Connection], tasks: Sequence[Task], jobs: int,
              on_progress: Progress | None = None) -> Outcome:
    """Run every task on `jobs` connections, largest first; return everything they found together.

    A task whose session the server ended is run again at the end, alone (see `_alone`).
    """
    ordered = sorted(tasks, key=lambda task: task.cost, reverse=True)
    pending: queue.Queue[Task] = queue.Queue()
    for task in ordered:
        pending.put(task)
    total = sum(task.cost for task in ordered) or 1
    done = 0
    result = Outcome()
    lost: list[Task] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def finished(task: Task, outcome: Outcome) -> None:
        nonlocal done
        with lock:
            result.findings += outcome.findings
            result.evidence += outcome.evidence
            done += task.cost
            if on_progress is not None:
                on_progress(done, total, task.label)

    def work() -> None:
        worker = _Worker(open_connection)
        try:
            while not errors:
                try:
                    task = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome = worker.run(task)
                except _Lost:
                    with lock:
                        lost.append(task)
                    time.sleep(CRASH_SETTLE_S)
                    continue
                finished(task, outcome)
        except BaseException as exc:  # user errors and bugs alike surface in the main thread
            errors.append(exc)
        finally:
            worker.close()

    threads = [threading.Thread(target=work, name=f"integrity-{n}", daemon=True)
               for n in range(max(1, min(jobs, len(ordered))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for task in lost:
        finished(task, _alone(open_connection, task))
    return result
