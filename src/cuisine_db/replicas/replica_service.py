"""The entry points of the replica commands, whoever calls them: which environment gets what (a local replica, a
Patroni member, or the steps for a remote server) and the journal line of each change; the confirmations are the
services' own (replicas/promote.py, drop.py, patroni.py), through ops/confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.ops.journal import journaled
from cuisine_db.replicas import plans
from cuisine_db.replicas.members import check_name

if TYPE_CHECKING:
    from cuisine_db.postgres.cluster import LocalCluster
    from cuisine_db.replicas.create import CreatedReplica
    from cuisine_db.replicas.drop import Dropped
    from cuisine_db.replicas.patroni import Promotion as PatroniPromotion
    from cuisine_db.replicas.patroni_member import AddedMember
    from cuisine_db.replicas.promote import Promotion
# Each path imports only its own services: a Patroni member's brings the lay-down code, a local one's does not.

Notify = Callable[[str], None]


def create_replica(settings: Settings, env: Environment, name: str, *, port: int | None = None,
                   origin: str | None = None, backup: str | None = None, notify: Notify = lambda _: None
                   ) -> CreatedReplica | AddedMember | plans.Plan:
    """db-create-replica: a Patroni environment gets a member (seeded from its newest physical backup), a remote one
    the steps to apply, a local one a streaming replica (copied from the primary, or seeded from `backup`); the
    changes are journaled as `create-replica`."""
    from cuisine_db.replicas import create as creating

    if env.patroni is not None:
        from cuisine_db.replicas import patroni_member

        if port is not None or origin is not None or backup is not None:
            raise UsageError(f"{env.name} is a Patroni environment: a new member is always seeded from the newest "
                             "physical backup and the archive (Patroni copies the leader only when there is none), "
                             "on free ports; port=, from= and backup= do not apply; nothing was changed")
        with journaled(settings, env, "create-replica", {"name": name, "patroni": True}) as entry:
            added = patroni_member.add(settings, env, name, notify=notify)
            entry.details.update(port=added.port, seconds=added.seconds, seeded_from=added.seeded_from)
        return added
    seed = creating.seed_backup(env, origin, backup)
    if not env.is_local:
        return plans.create_plan(env, name, port)
    with journaled(settings, env, "create-replica", {"name": name, "port": port, "backup": seed}) as entry:
        made = creating.create(settings, env, name, port=port, backup=seed, notify=notify)
        entry.details.update(port=made.port, slot=made.slot, seconds=made.seconds, seeded_from=made.seeded_from)
    return made


def promote_replica(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: AskWord | None = None,
                    notify: Notify = lambda _: None) -> Promotion | PatroniPromotion | plans.Plan:
    """db-promote-replica, journaled as `promote-replica`: through Patroni on a Patroni environment (which confirms on
    a protected one), a local replica (which asks on every environment: the replica's name typed, the environment's
    on a protected one); a remote environment gets the steps."""
    if env.patroni is not None:
        from cuisine_db.replicas import patroni as patroni_replicas

        with journaled(settings, env, "promote-replica", {"name": name, "yes": yes}) as entry:
            led = patroni_replicas.promote(settings, env, name, yes=yes, ask=confirmation.env_name_asker(env, ask),
                                           notify=notify)
            entry.details.update(kind=led.kind, former_leader=led.former_leader, timeline=led.timeline)
        return led
    check_name(name)
    if not env.is_local:
        return plans.promote_plan(env, name)
    from cuisine_db.replicas import promote as promoting

    with journaled(settings, env, "promote-replica", {"name": name, "yes": yes}) as entry:
        done = promoting.promote(settings, env, name, yes=yes, ask=ask, notify=notify)
        entry.details.update(kind=done.kind, former_primary=done.former_primary, followed=done.followed,
                             stranded=done.stranded)
    return done


def drop_replica(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: AskWord | None = None,
                 notify: Notify = lambda _: None) -> Dropped:
    """db-drop-replica, journaled as `drop-replica` (replicas/drop.py confirms: a former primary's data on every
    environment, a replica on a protected one)."""
    from cuisine_db.replicas import drop as dropping

    dropping.kind_of(settings, env, name)  # an unknown name is bad input, before the journal
    with journaled(settings, env, "drop-replica", {"name": name, "yes": yes}) as entry:
        done = dropping.drop(settings, env, name, yes=yes, ask=ask, notify=notify)
        entry.details.update(kind=done.kind, slot=done.slot)
    return done


def start_replica(settings: Settings, env: Environment, name: str) -> LocalCluster:
    """replica start, journaled."""
    from cuisine_db.replicas import control

    with journaled(settings, env, "replica start", {"name": name}):
        return control.start(settings, env, name)


def stop_replica(settings: Settings, env: Environment, name: str) -> LocalCluster:
    """replica stop, journaled."""
    from cuisine_db.replicas import control

    with journaled(settings, env, "replica stop", {"name": name}):
        return control.stop(settings, env, name)
