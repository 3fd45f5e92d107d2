"""db-promote-replica for a local environment: the replica becomes the primary and the tool's view follows.

What "follows" means (docs/scaling.md):

1. While the old primary runs this is a **switchover**: it is stopped (fast shutdown: its walsenders send
   the replicas all WAL up to the shutdown checkpoint), the replica must replay past that checkpoint
   (`pg_controldata`), and only then is it promoted, so no committed transaction is lost. A replica that
   does not catch up in time means no promotion: the old primary is started again and nothing changes.
   When the old primary is down already it is a **failover**: the replica is promoted as it is.
2. The promoted replica is recorded as the environment's primary (postgres/topology.py): `connect()` and
   `cluster_for()` go to its port from then on, so every command (migrations, backups, sizes) follows.
3. The old primary is recorded as a former primary: stopped, never started again by the tool (it would
   accept writes the new primary never sees), marked as needing a rebuild (db-drop-replica removes it,
   db-create-replica makes a fresh replica).
4. The other replicas follow the new primary: a slot there, `primary_conninfo` pointed at it through
   ALTER SYSTEM, until it shows them streaming. One that cannot follow is reported, not hidden.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.postgres import server_settings, topology
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.local import cluster_for, node_cluster
from cuisine_db.postgres.runner import run
from cuisine_db.replicas.create import replication_conninfo, wait_streaming
from cuisine_db.replicas.lag import lsn
from cuisine_db.replicas.members import check_name, local_target
from cuisine_db.waiting import poll_until

CATCH_UP_SECONDS = 120.0
FOLLOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Promotion:
    """What db-promote-replica did."""

    env: str
    name: str
    port: int
    kind: str  # switchover (the old primary was stopped first: nothing lost) or failover (it was down)
    former_primary: str  # the old primary's name in db-replicas now (needs a rebuild)
    replayed_past: str | None  # the old primary's shutdown checkpoint the replica replayed past
    followed: list[str] = field(default_factory=list)
    stranded: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def final_checkpoint(cluster: LocalCluster) -> str:
    """A stopped cluster's last checkpoint location, from pg_controldata; it must have shut down cleanly."""
    output = run([cluster.build.program("pg_controldata"), "-D", cluster.datadir], user=cluster.os_user,
                 timeout=60).stdout
    fields = dict(line.split(":", 1) for line in output.splitlines() if ":" in line)
    state = fields.get("Database cluster state", "").strip()
    location = fields.get("Latest checkpoint location", "").strip()
    if state != "shut down" or not location:
        raise UnavailableError(f"the old primary did not shut down cleanly (pg_controldata: {state or 'no state'})")
    return location


def _standby_state(settings: Settings, env: Environment, node: topology.Node) -> tuple[bool, bool]:
    with connect(settings, env, "db-promote-replica", target=local_target(settings, env, node)) as conn:
        row = conn.execute(sql.load("replication/standby_status")).fetchone()
    if row is None:
        raise UnavailableError(f"replica {node.name} returned no status")
    return bool(row[0]), bool(row[4])


def _wait_replayed(settings: Settings, env: Environment, node: topology.Node, position: str,
                   seconds: float) -> None:
    wanted = lsn(position) or 0
    last: list[str] = ["nothing"]
    with connect(settings, env, "db-promote-replica", target=local_target(settings, env, node)) as conn:

        def past() -> bool | None:
            row = conn.execute(sql.load("replication/replay_lsn")).fetchone()
            last[0] = str(row[0]) if row else "nothing"
            replayed = lsn(row[0]) if row else None
            return True if replayed is not None and replayed > wanted else None

        poll_until(past, seconds=seconds, interval=0.2, what=lambda: UnavailableError(
            f"replica {node.name} replayed up to {last[0]}, not past the old primary's shutdown checkpoint "
            f"{position}, within {seconds:.0f} s"))


def follow(settings: Settings, env: Environment, node: topology.Node, primary: topology.Node) -> None:
    """Point a replica at the (new) primary: a slot there, primary_conninfo through ALTER SYSTEM, then wait."""
    home = topology.home_of(settings, env, node)
    cluster = node_cluster(settings, env, home, node.port)
    if not cluster.running():
        cluster.start()
    if node.slot:
        with connect(settings, env, "db-promote-replica") as conn:
            if conn.execute(sql.load("replication/slot"), {"slot": node.slot}).fetchone() is None:
                conn.execute(sql.load("replication/create_slot"), {"slot": node.slot})
    changes = {"primary_conninfo": replication_conninfo(home, primary.port, node.name),
               **({"primary_slot_name": node.slot} if node.slot else {})}
    with connect(settings, env, "db-promote-replica", target=local_target(settings, env, node)) as conn:
        server_settings.alter_system(conn, changes)
    wait_streaming(settings, env, node.name, cluster, FOLLOW_SECONDS)


def promote(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: AskWord | None = None,
            catch_up_seconds: float = CATCH_UP_SECONDS, notify: Callable[[str], None] = lambda _: None) -> Promotion:
    """Promote a local replica to be the environment's primary; see the module's description. Asked on every
    environment before anything changes (`yes`, or the replica's name typed in answer to `ask`, the environment's
    on a protected one)."""
    check_name(name)
    if not env.is_local:
        raise UsageError(f"{env.name!r} is a remote server", hint="cuisine-db replica promote prints the steps for it")
    confirmation.require_always(env, f"Promoting replica {name} makes it the primary of {env.name}; the current "
                                "primary is stopped and must be rebuilt", name, yes=yes, ask=ask)
    clock = time.monotonic()
    with topology.editing(settings, env) as edit:
        node = edit.current.replica(name)
        if node is None:
            raise UsageError(f"environment {env.name!r} has no replica {name!r}",
                             hint=f"make db-replicas env={env.name} lists them")
        replica = node_cluster(settings, env, topology.home_of(settings, env, node), node.port)
        if not replica.running():
            notify(f"replica {name} is stopped: starting it first")
            replica.start()
        in_recovery, paused = _standby_state(settings, env, node)
        if not in_recovery:
            raise UnavailableError(f"replica {name} is not in recovery: it was promoted outside the tool",
                                   hint="stop it, then make db-drop-replica and create it again")
        old_node = topology.primary_node(settings, env)
        old = cluster_for(settings, env)
        kind, checkpoint = "failover", None
        if old.running():
            kind = "switchover"
            if paused:
                notify(f"replica {name}'s replay is paused: resuming it")
                with connect(settings, env, "db-promote-replica", target=local_target(settings, env, node)) as conn:
                    conn.execute(sql.load("replication/resume_replay"))
            notify(f"stopping the primary (port {old.port}): its last WAL goes to the replicas before it exits")
            old.stop("fast")
            try:
                checkpoint = final_checkpoint(old)
                _wait_replayed(settings, env, node, checkpoint, catch_up_seconds)
            except CuisineDbError as exc:
                old.start()
                raise FailedError(f"replica {name} was not promoted: {exc.message}",
                                  hint="the primary was started again and nothing changed; make db-replicas "
                                       f"env={env.name} shows the replica's lag") from None
            notify(f"replica {name} has replayed past the primary's shutdown checkpoint {checkpoint}: nothing is lost")
        else:
            notify(f"the primary (port {old.port}) is not running: failing over to {name} as it is; transactions "
                   "the old primary committed after the replica's last replayed position are not on the new primary")
        replica.promote()
        with connect(settings, env, "db-promote-replica", target=local_target(settings, env, node)) as conn:
            row = conn.execute(sql.load("replication/position")).fetchone()
        if row is None or row[0]:
            raise UnavailableError(f"replica {name} is still in recovery after pg_ctl promote",
                                   hint=f"see its log in {replica.datadir / 'log'}")
        now = datetime.now(UTC)
        former = replace(old_node, name=f"{old_node.name[:14]}_{now:%Y%m%dt%H%M%S}", slot=None,
                         since=now.isoformat(timespec="seconds"),
                         note=f"primary until replica {name} was promoted ({kind}); stopped; needs a rebuild")
        primary = replace(node, slot=None, since=now.isoformat(timespec="seconds"), note=f"promoted ({kind})")
        others = tuple(other for other in edit.current.replicas if other.name != name)
        edit.set(topology.Topology(primary=primary, replicas=others, former=(*edit.current.former, former)))
        followed, stranded = [], {}
        for other in others:
            try:
                follow(settings, env, other, primary)
                followed.append(other.name)
            except CuisineDbError as exc:
                stranded[other.name] = exc.message
    return Promotion(env=env.name, name=name, port=node.port, kind=kind, former_primary=former.name,
                     replayed_past=checkpoint, followed=followed, stranded=stranded,
                     seconds=round(time.monotonic() - clock, 2))
