"""Ending a query or session (db-terminate-query): look first, refuse what must not be ended, cancel first."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import psycopg

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose.locks import BlockNode, read_tree
from cuisine_db.diagnose.query_text import shown
from cuisine_db.diagnose.session import diagnostic
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.waiting import wait_for

Mode = Literal["auto", "cancel", "terminate"]
MODES: tuple[Mode, ...] = ("auto", "cancel", "terminate")
_PID = re.compile(r"^[0-9]+$")
_MAX_PID = 2**31 - 1
# Process kinds whose current query may be cancelled or whose session may be ended.
_ENDABLE = ("client backend", "autovacuum worker")


@dataclass(frozen=True, slots=True)
class Backend:
    """The process a pid names, as pg_stat_activity shows it."""

    pid: int
    backend_type: str
    database: str
    username: str
    application: str
    client: str
    state: str
    backend_start: datetime
    xact_seconds: float | None
    query_seconds: float | None
    query_start: datetime | None
    query: str
    is_self: bool
    wraparound: bool


@dataclass(frozen=True, slots=True)
class Target:
    """What the pid is doing and whom it blocks, shown before anything is sent to it."""

    backend: Backend
    holds: list[str]
    blocks: list[int]
    blocks_total: list[int]


@dataclass(frozen=True, slots=True)
class EndResult:
    pid: int
    mode: Mode
    steps: list[str] = field(default_factory=list)
    cancelled: bool = False
    terminated: bool = False
    freed: list[int] = field(default_factory=list)
    still_waiting: list[int] = field(default_factory=list)


def parse_pid(text: str) -> int:
    """A pid given on the command line, validated before anything connects."""
    raw = text.strip()
    if not raw:
        raise UsageError("pid= is required", hint="the pid comes from make db-show-locks or db-connections, "
                                                  "e.g. make db-terminate-query env=production pid=12345")
    if not _PID.match(raw):
        raise UsageError(f"pid must be a positive whole number (a server process id), not {text!r}",
                         hint="make db-show-locks env=E lists the blocking pids")
    # Length first: int() of thousands of digits is slow, or refused by Python outright.
    if len(raw.lstrip("0")) > len(str(_MAX_PID)) or int(raw) > _MAX_PID:
        shown = raw if len(raw) <= 24 else raw[:24] + "..."
        raise UsageError(f"pid {shown} is not a valid process id (out of range: at most {_MAX_PID})",
                         hint="make db-show-locks env=E lists the blocking pids")
    if int(raw) == 0:
        raise UsageError("pid 0 is not a session: db-show-locks shows a prepared transaction as pid 0",
                         hint="end a prepared transaction with ROLLBACK PREPARED 'gid' (its gid is in db-show-locks)")
    return int(raw)


def parse_mode(text: str) -> Mode:
    for mode in MODES:
        if text == mode:
            return mode
    raise UsageError(f"mode must be one of {', '.join(MODES)}, not {text!r}",
                     hint="auto cancels first and terminates only if that does not free the session")


def _read_backend(conn: psycopg.Connection[Any], pid: int) -> Backend | None:
    return sql.one_or_none(conn, Backend, sql.load("diagnose/backend"), {"pid": pid})


def refuse(env: Environment, backend: Backend) -> None:
    """Raise for a pid that must not be signalled: this session, a WAL sender, an anti-wraparound vacuum."""
    pid = backend.pid
    if backend.is_self:
        raise UsageError(f"pid {pid} is this command's own session", hint="give the pid of the session to end")
    if backend.backend_type == "walsender":
        raise UsageError(f"pid {pid} is a WAL sender (streaming to a standby or a backup client), not a query",
                         hint="stop the standby or backup client; ending its sender only makes it reconnect")
    if backend.wraparound:
        raise UsageError(f"pid {pid} is an autovacuum preventing transaction ID wraparound; ending it brings the "
                         "forced shutdown closer and it starts again at once",
                         hint=f"let it finish; make db-monitor env={env.name} shows what holds the horizon back")
    if backend.backend_type not in _ENDABLE:
        raise UsageError(f"pid {pid} is a {backend.backend_type or 'server'} process, not a session's query",
                         hint="only client sessions and ordinary autovacuum workers can be cancelled or ended here")


def _find(nodes: list[BlockNode], pid: int) -> BlockNode | None:
    for node in nodes:
        if node.pid == pid:
            return node
        found = _find(node.blocked, pid)
        if found is not None:
            return found
    return None


def _all_below(node: BlockNode) -> list[int]:
    pids: list[int] = []
    for child in node.blocked:
        pids += [child.pid, *_all_below(child)]
    return sorted(set(pids))


def inspect_on(conn: psycopg.Connection[Any], env: Environment, pid: int) -> Target:
    """What the pid is and does, and whom it blocks; refuses pids that are missing or must not be ended."""
    backend = _read_backend(conn, pid)
    if backend is None:
        raise UsageError(f"no server process with pid {pid} on {env.name!r} (it may have ended already)",
                         hint=f"make db-show-locks env={env.name} lists the blockers, "
                              f"make db-connections env={env.name} every session")
    refuse(env, backend)
    roots, _ = read_tree(conn)
    node = _find(roots, pid)
    return Target(backend=replace(backend, query=shown(backend.query, 500)), holds=node.holds if node else [],
                  blocks=[child.pid for child in node.blocked] if node else [],
                  blocks_total=_all_below(node) if node else [])


def inspect(settings: Settings, env: Environment, pid: int) -> Target:
    """inspect_on() on a connection of its own."""
    with diagnostic(settings, env, "db-terminate-query", purpose="operator") as conn:
        return inspect_on(conn, env, pid)


def _signal(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> bool:
    try:
        row = conn.execute(sql.load(statement), params).fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UnavailableError(f"the server refused: {exc.diag.message_primary}",
                               hint="use a superuser, or a role granted pg_signal_backend "
                                    "(it still cannot signal a superuser's session)") from None
    return bool(row and row[0])


def _pids(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> list[int]:
    return [row[0] for row in conn.execute(sql.load(statement), params)]


def _freed(conn: psycopg.Connection[Any], pid: int, before: Backend) -> bool:
    """Whether the cancel worked: the query the operator saw stopped and the pid blocks nobody."""
    now = _read_backend(conn, pid)
    if now is None:
        return True
    stopped = now.query_start != before.query_start or now.state != "active"
    return stopped and not _pids(conn, "diagnose/blocked_by_pid", {"pid": pid})


def end(settings: Settings, env: Environment, target: Target, mode: Mode = "auto", wait: float = 5.0, *,
        yes: bool = False, ask: Ask | None = None) -> EndResult:
    """Cancel the pid's query (auto: then end its session if that does not free it), or end it at once; a protected
    environment needs the confirmation first."""
    b = target.backend
    plan = {"auto": "Cancelling (then terminating if needed)", "cancel": "Cancelling", "terminate": "Terminating"}[mode]
    confirmation.require(env, f"{plan} pid {b.pid} ({b.username}, {b.application or 'no application'})", yes=yes,
                         ask=ask)
    pid = target.backend.pid
    result = EndResult(pid=pid, mode=mode)
    with diagnostic(settings, env, "db-terminate-query", purpose="operator") as conn:
        current = _read_backend(conn, pid)
        if current is None:
            result.steps.append(f"pid {pid} had already ended; nothing was sent")
            return _settle(conn, target, result, wait)
        if current.backend_start != target.backend.backend_start:
            raise RefusedError(f"pid {pid} is now a different session than the one shown; nothing was sent",
                               hint="look again with make db-show-locks and confirm the new pid")
        if mode in ("auto", "cancel"):
            if current.state.startswith("idle"):
                result.steps.append(f"no cancel: the session is {current.state} and cancel only stops a running "
                                    "query")
            else:
                sent = _signal(conn, "diagnose/cancel_backend", {"pid": pid})
                result.steps.append("sent pg_cancel_backend" if sent else "pg_cancel_backend found no such process")
                if wait_for(lambda: _freed(conn, pid, current) or None, seconds=wait, interval=0.1):
                    result = replace(result, cancelled=True)
                    result.steps.append("the query was cancelled and the session blocks nobody now")
                    return _settle(conn, target, result, wait)
                result.steps.append(f"cancelling did not free it within {wait:g}s")
            if mode == "cancel":
                raise FailedError(f"pid {pid} was not freed by a cancel; its session was left alone",
                                  hint=f"end the session: make db-terminate-query env={env.name} pid={pid} "
                                       "mode=terminate")
        ended = _signal(conn, "diagnose/terminate_backend", {"pid": pid, "timeout_ms": int(wait * 1000)})
        if not ended and _read_backend(conn, pid) is not None:
            raise FailedError(f"pid {pid} did not exit within {wait:g}s of pg_terminate_backend",
                              hint="it may be stuck in I/O or a system call; look again in a moment")
        result = replace(result, terminated=True)
        result.steps.append("ended the session with pg_terminate_backend (its transaction was rolled back)")
        return _settle(conn, target, result, wait)


def _settle(conn: psycopg.Connection[Any], target: Target, result: EndResult, wait: float) -> EndResult:
    """Which of the sessions it blocked go on now (each gets a moment to take its lock)."""
    if not target.blocks_total:
        return result
    waiting: list[int] = []

    def none_waiting() -> bool | None:
        waiting[:] = _pids(conn, "diagnose/waiting_pids", {"pids": target.blocks_total})
        return True if not waiting else None

    wait_for(none_waiting, seconds=wait, interval=0.1)
    freed = [pid for pid in target.blocks_total if pid not in waiting]
    return replace(result, freed=freed, still_waiting=waiting)


@dataclass(frozen=True, slots=True)
class Termination:
    """What db-terminate-query found (shown before anything was sent) and what it did."""

    target: Target
    result: EndResult


def terminate_query(settings: Settings, env: Environment, pid: str, mode: str = "auto", *, wait: float = 5.0,
                    yes: bool = False, ask: Ask | None = None, show: Callable[[Target], None] = lambda _: None
                    ) -> Termination:
    """db-terminate-query, journaled as `terminate-query`: the pid and mode as typed are checked first (bad input
    writes no line), the target is read and handed to `show` before anything is sent, then `end` confirms and acts;
    the line names whose session it was and what each step did."""
    number = parse_pid(pid)
    chosen_mode = parse_mode(mode)
    with journaled(settings, env, "terminate-query", {"pid": number, "mode": chosen_mode}) as entry:
        target = inspect(settings, env, number)
        b = target.backend
        entry.details.update(username=b.username, database=b.database, application=b.application, state=b.state,
                             query=b.query[:200], blocks=target.blocks_total)
        show(target)
        result = end(settings, env, target, mode=chosen_mode, wait=wait, yes=yes, ask=ask)
        entry.details.update(steps=result.steps, cancelled=result.cancelled, terminated=result.terminated,
                             freed=result.freed)
    return Termination(target, result)
