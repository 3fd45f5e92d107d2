"""A backup of a Patroni environment's leader that the leader's death cut short: retried once from the new leader.

The attempt that failed cleaned up after itself (logical.py and physical.py remove every object of a backup without
a manifest), so it is absent from the list. Unless the leader Patroni names still answers, Patroni's /cluster is
then asked until it names another running leader (or the same member on a later timeline), and the backup is taken
again from it, once; otherwise the first failure stands.
Backups from a replica (`source`) and backups of other environments are never retried here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError
from cuisine_db.postgres import patroni
from cuisine_db.postgres.target import Target
from cuisine_db.waiting import wait_for

R = TypeVar("R")
# Patroni's ttl is the longest a dead leader's key lives; a new leader is waited for well past it.
NEW_LEADER_SECONDS = 180.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Why the first attempt was given up, and between which leaders the backup moved."""

    error: str
    lost_leader: str
    lost_timeline: int | None
    new_leader: str
    new_timeline: int | None


@dataclass(frozen=True, slots=True)
class Taken(Generic[R]):
    report: R
    retry: Retry | None


def _leader(settings: Settings, env: Environment) -> patroni.Member | None:
    try:
        return patroni.cluster(settings, env).leader
    except UnavailableError:
        return None


def _replaced(settings: Settings, env: Environment, lost: patroni.Member) -> patroni.Member | None:
    """A running leader other than `lost` (another member, or the same one on a later timeline), or None."""
    now = _leader(settings, env)
    if now is None or now.state != "running":
        return None
    if now.name != lost.name or (now.timeline or 0) > (lost.timeline or 0):
        return now
    return None


def _answers(settings: Settings, env: Environment) -> bool:
    """Whether the leader Patroni names accepts a connection (a dead leader's key outlives it by up to ttl)."""
    try:
        with connect(settings, env, "backup"):
            return True
    except (CuisineDbError, psycopg.Error):
        return False


def take(settings: Settings, env: Environment, backup: Callable[[], R], *, source: Target | None,
         notify: Callable[[str], None] = lambda _: None, new_leader_seconds: float = NEW_LEADER_SECONDS) -> Taken[R]:
    """Run `backup`; on a Patroni environment whose leader changed while it ran (from the leader), run it once more
    from the new leader, saying so."""
    if env.patroni is None or source is not None:
        return Taken(backup(), None)
    before = _leader(settings, env)
    try:
        return Taken(backup(), None)
    except (CuisineDbError, psycopg.Error) as exc:
        if before is None:
            raise
        if _replaced(settings, env, before) is None and _answers(settings, env):
            raise  # the same leader still answers: the failure is not a failover
        error = " ".join((exc.message if isinstance(exc, CuisineDbError) else str(exc)).split())[-300:]
        notify(f"{env.name}: the backup from leader {before.name} failed ({error}); its partial copy was removed; "
               f"waiting for Patroni's new leader to take it again")
        after = wait_for(lambda: _replaced(settings, env, before), seconds=new_leader_seconds, interval=1.0)
        if after is None:
            notify(f"{env.name}: Patroni named no new leader within {new_leader_seconds:.0f}s: not retried")
            raise
        notify(f"{env.name}: retrying the backup once from the new leader {after.name} (timeline {after.timeline})")
    return Taken(backup(), Retry(error, before.name, before.timeline, after.name, after.timeline))
