"""The blocking tree (db-show-locks): root blockers first, the sessions waiting on each beneath it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.query_text import shown
from cuisine_db.diagnose.session import diagnostic
from cuisine_db.humanize import duration

# pg_blocking_pids() reports a prepared transaction that holds a conflicting lock as pid 0.
PREPARED = 0


@dataclass(frozen=True, slots=True)
class LockSession:
    """A session that waits for a lock or holds one that another session waits for."""

    pid: int
    blocked_by: list[int]
    backend_type: str
    database: str
    username: str
    application: str
    client: str
    state: str
    xact_seconds: float | None
    query_seconds: float | None
    query: str


@dataclass(frozen=True, slots=True)
class LockWait:
    """One waiter-blocker pair: the lock wanted, and what the blocker holds on it (None: queued ahead)."""

    waiter: int
    blocker: int
    locktype: str
    wanted_mode: str
    target: str
    wait_seconds: float | None
    held_modes: str | None


@dataclass(frozen=True, slots=True)
class PreparedTransaction:
    gid: str
    owner: str
    database: str
    prepared_seconds: float
    xid_age: int


@dataclass(frozen=True, slots=True)
class BlockNode:
    """A session in the tree: what it holds that others want, what it waits for, and who waits on it."""

    pid: int
    session: LockSession | None
    holds: list[str]
    waits_for: str | None
    blocked_total: int
    blocked: list[BlockNode]
    prepared: list[PreparedTransaction]


@dataclass(frozen=True, slots=True)
class LockReport:
    env: str
    roots: list[BlockNode]
    waiting: int

    def pids_first_to_last(self) -> list[int]:
        """Every pid in the order the tree shows them (roots first, depth first)."""
        found: list[int] = []

        def visit(node: BlockNode) -> None:
            found.append(node.pid)
            for child in node.blocked:
                visit(child)

        for root in self.roots:
            visit(root)
        return found


def _describe_wait(wait: LockWait) -> str:
    waited = f" for {duration(wait.wait_seconds)}" if wait.wait_seconds is not None else ""
    return f"{wait.wanted_mode} on {wait.target}{waited}"


def _describe_hold(wait: LockWait) -> str:
    if wait.held_modes:
        return f"{wait.held_modes} on {wait.target}"
    return f"queued ahead for {wait.target} (wants a mode that conflicts)"


def build_tree(sessions: Sequence[LockSession], waits: Sequence[LockWait],
               prepared: Sequence[PreparedTransaction] = ()) -> list[BlockNode]:
    """Arrange sessions under the pids that block them; roots are blockers that wait for nobody."""
    by_pid = {s.pid: s for s in sessions}
    children: dict[int, list[int]] = {}
    for session in sessions:
        for blocker in session.blocked_by:
            children.setdefault(blocker, []).append(session.pid)
    holds: dict[int, list[str]] = {}
    for wait in waits:
        text = _describe_hold(wait)
        if text not in holds.setdefault(wait.blocker, []):
            holds[wait.blocker].append(text)
    wait_of = {(w.waiter, w.blocker): w for w in waits}

    def node(pid: int, parent: int | None, path: frozenset[int]) -> BlockNode:
        below = [node(child, pid, path | {child}) for child in sorted(children.get(pid, []))
                 if child not in path]
        wait = wait_of.get((pid, parent)) if parent is not None else None
        return BlockNode(
            pid=pid,
            session=by_pid.get(pid),
            holds=holds.get(pid, []),
            waits_for=_describe_wait(wait) if wait else None,
            blocked_total=len(_descendants(pid, children)),
            blocked=below,
            prepared=list(prepared) if pid == PREPARED else [],
        )

    # A blocker missing from the sessions ended between the two reads: it still heads its waiters.
    root_pids = [pid for pid in children if pid not in by_pid or not by_pid[pid].blocked_by]
    reached = set(root_pids).union(*(_descendants(pid, children) for pid in root_pids)) if root_pids else set()
    # A cycle (a deadlock the server has not broken yet) has no root: start it at its oldest transaction.
    for session in sorted(sessions, key=lambda s: -(s.xact_seconds or 0.0)):
        if session.pid not in reached and session.pid in children:
            root_pids.append(session.pid)
            reached |= {session.pid} | _descendants(session.pid, children)
    roots = [node(pid, None, frozenset({pid})) for pid in root_pids]

    def weight(root: BlockNode) -> tuple[int, float]:
        return (root.blocked_total, (root.session.xact_seconds or 0.0) if root.session else 0.0)

    return sorted(roots, key=weight, reverse=True)


def _descendants(pid: int, children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(children.get(pid, []))
    while stack:
        current = stack.pop()
        if current not in seen and current != pid:
            seen.add(current)
            stack.extend(children.get(current, []))
    return seen


def read_tree(conn: psycopg.Connection[Any]) -> tuple[list[BlockNode], int]:
    """The blocking tree on an open connection, and how many sessions wait."""
    sessions = [replace(s, query=shown(s.query))
                for s in sql.rows(conn, LockSession, sql.load("diagnose/blocking_sessions"))]
    waits = sql.rows(conn, LockWait, sql.load("diagnose/lock_waits"))
    prepared: list[PreparedTransaction] = []
    if any(PREPARED in s.blocked_by for s in sessions):
        prepared = sql.rows(conn, PreparedTransaction, sql.load("diagnose/prepared_transactions"))
    return build_tree(sessions, waits, prepared), sum(1 for s in sessions if s.blocked_by)


def show_locks(settings: Settings, env: Environment) -> LockReport:
    """Who blocks whom on the environment's server, root blockers first."""
    with diagnostic(settings, env, "db-show-locks") as conn:
        roots, waiting = read_tree(conn)
    return LockReport(env=env.name, roots=roots, waiting=waiting)
