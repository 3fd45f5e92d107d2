"""db-drop-replica: stop and remove a local replica (or a former primary) and drop its slot on the primary.

The slot goes first, before any file: a slot nobody uses keeps WAL on the primary until its disk is full.
When the primary cannot be reached nothing is removed. A remote environment's replica is not the tool's to
stop: only its slot is dropped, once the replica no longer streams through it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.postgres import topology
from cuisine_db.postgres.local import node_cluster
from cuisine_db.replicas.members import check_name, find
from cuisine_db.waiting import poll_until

SLOT_RELEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Dropped:
    env: str
    name: str
    kind: str  # replica, former primary, or remote replica
    slot: str | None  # the slot dropped on the primary
    removed: str | None  # the folder removed (local)
    note: str = ""


def kind_of(settings: Settings, env: Environment, name: str) -> str:
    """replica or former primary; an unknown name is bad input, and so is a Patroni environment (its members leave
    through Patroni)."""
    if env.patroni is not None:
        raise UsageError(f"{env.name} is a Patroni environment: a member leaves when its Patroni is stopped and "
                         "removed (patronictl remove for the whole cluster); nothing was changed")
    check_name(name)
    if not env.is_local:
        find(settings, env, name)
        return "remote replica"
    current = topology.load(settings, env)
    if current.replica(name) is not None:
        return "replica"
    if current.former_primary(name) is not None:
        return "former primary"
    known = ", ".join(sorted(current.names() - ({current.primary.name} if current.primary else set()))) or "none"
    raise UsageError(f"environment {env.name!r} has no replica or former primary {name!r} (known: {known})")


def _drop_slot(conn: psycopg.Connection[Any], slot: str, seconds: float) -> bool:
    """Drop a slot once no walsender holds it; False when there was none."""
    holder: list[Any] = [None]

    def dropped() -> bool | None:
        row = conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone()
        if row is None:
            return False
        if not row[0]:
            conn.execute(sql.load("replication/drop_slot"), {"slot": slot})
            return True
        holder[0] = row[1]
        return None

    return poll_until(dropped, seconds=seconds, interval=0.2, what=lambda: UnavailableError(
        f"slot {slot} is still in use (pid {holder[0]}) after {seconds:.0f} s",
        hint="is another server streaming through it?"))


def drop(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: AskWord | None = None,
         notify: Callable[[str], None] = lambda _: None) -> Dropped:
    """Remove a replica or former primary of a local environment; a remote replica's slot only. Confirmed before
    anything changes: a former primary's data (transactions nobody else has) on every environment (`yes`, or its name
    typed in answer to `ask`, the environment's on a protected one), a replica on a protected environment."""
    kind = kind_of(settings, env, name)
    if kind == "former primary":
        confirmation.require_always(env, f"Deleting former primary {name}'s data: transactions it took after the "
                                    "promotion exist nowhere else", name, yes=yes, ask=ask)
    else:
        confirmation.require(env, f"Dropping replica {name}", yes=yes, ask=confirmation.env_name_asker(env, ask))
    if not env.is_local:
        return _drop_remote(settings, env, name)
    with topology.editing(settings, env) as edit:
        node = edit.current.replica(name) or edit.current.former_primary(name)
        if node is None:
            raise UsageError(f"environment {env.name!r} has no replica {name!r}")
        home = topology.home_of(settings, env, node)
        cluster = node_cluster(settings, env, home, node.port)
        dropped_slot = None
        if kind == "replica" and node.slot:
            # The primary must answer before anything is stopped or removed.
            with connect(settings, env, "db-drop-replica", start=False) as conn:
                notify(f"stopping replica {name} (port {node.port})")
                cluster.stop()
                dropped_slot = node.slot if _drop_slot(conn, node.slot, SLOT_RELEASE_SECONDS) else None
        else:
            cluster.stop()
        if node.home == ".":
            # A former primary in the environment's own folder: its data goes, the journal and pgpass stay.
            shutil.rmtree(cluster.datadir, ignore_errors=True)
            shutil.rmtree(home / "run", ignore_errors=True)
        else:
            shutil.rmtree(home, ignore_errors=True)
        if cluster.datadir.exists():
            raise UnavailableError(f"could not remove {cluster.datadir}", hint="remove it by hand, then drop again")
        edit.set(edit.current.without(name))
    return Dropped(env=env.name, name=name, kind=kind, slot=dropped_slot, removed=str(cluster.datadir))


def _drop_remote(settings: Settings, env: Environment, name: str) -> Dropped:
    member = find(settings, env, name)
    note = (f"stop the server, then remove [environments.{env.name}.replicas.{name}] from cuisine-db.toml")
    if member.slot is None:
        return Dropped(env.name, name, "remote replica", None, None, note)
    with connect(settings, env, "db-drop-replica") as conn:
        row = conn.execute(sql.load("replication/slot"), {"slot": member.slot}).fetchone()
        if row is not None and row[0]:
            raise RefusedError(f"replica {name} still streams through slot {member.slot} (walsender pid {row[1]})",
                               hint="stop the replica's server first; then drop it again")
        dropped = _drop_slot(conn, member.slot, 0) if row is not None else False
    return Dropped(env.name, name, "remote replica", member.slot if dropped else None, None, note)
