"""The remote logical upgrade's run, cutover, rollback and finish (logical_remote.py prepares it).

Cutover, under maintenance mode: the source's last LSN confirmed applied on the target, sequences set past the
source's values, row counts and checksums compared, the forward replication replaced by a backward one (the source
subscribes to the target), then the environment's connection target switches: `.cuisine/<env>/route.json`
(postgres/route.py) sends every connection of the tool to the target while cuisine-db.toml still names the source.
Applications are pointed at the new server by the operator (the report says how); `--rollback` returns to the source
with the writes made since, `--finish` ends the reverse replication.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError
from cuisine_db.ops import maintenance
from cuisine_db.ops.journal import journaled
from cuisine_db.postgres import route
from cuisine_db.upgrade import logical
from cuisine_db.upgrade.logical import BACKWARD, FORWARD, LogicalReport, Notify, TableCheck
from cuisine_db.upgrade.logical_remote import RemoteState, at_phase, open_dsn

METHOD = "logical"


def _drop(name: str, what: str) -> sql.Composed:
    return queries.load(f"upgrade/logical_drop_{what}").format(name=sql.Identifier(name))


def _checked(settings: Settings, env: Environment, publisher: str, subscriber: str, slot: str,
             notify: Notify) -> tuple[list[TableCheck], int]:
    """Writes are stopped: the publisher's last LSN applied, sequences carried, every table compared."""
    with open_dsn(settings, env, publisher, "the publisher") as old, \
            open_dsn(settings, env, subscriber, "the subscriber") as new:
        return logical.verify_stopped(old, new, slot, notify)


def upgrade(settings: Settings, env: Environment, to: int | None, to_dsn: str | None, *, identity_full: bool,
            confirm: Callable[[str], None], notify: Notify = lambda _: None) -> LogicalReport:
    """Checks (nothing changed when one fails), confirmation, roles and schema, subscription, catch-up, cutover."""
    from cuisine_db.upgrade import logical_remote

    source, target = logical_remote.validate(settings, env, to, to_dsn)
    target_dsn = to_dsn or ""  # validate refused a missing one
    with open_dsn(settings, env, env.dsn or "", "the source") as conn:
        missing = logical.tables(conn, "logical_without_identity")
    if missing and not identity_full:
        raise RefusedError(f"{len(missing)} table(s) have no primary key or replica identity, so logical replication "
                           f"cannot send their UPDATE and DELETE: {', '.join(missing)}; nothing was changed",
                           hint="add primary keys, or run again with replica_identity_full=1 "
                                "(--replica-identity-full) to give them REPLICA IDENTITY FULL")
    notify(f"checking the target: PostgreSQL {target}, an empty database, a subscription to {env.name} allowed")
    logical_remote.check_target(settings, env, target_dsn, target)
    confirm(f"upgrade {env.name} from PostgreSQL {source} to {target} with method=logical onto the server of to_dsn: "
            "it is filled by logical replication, then a cutover under maintenance mode; --rollback returns")
    current = RemoteState(env=env.name, source=source, target=target, source_dsn=env.dsn or "", target_dsn=target_dsn,
                          phase="replicating", maintenance_was_on=maintenance.status(settings, env).on,
                          identity_full=tuple(missing), started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        with journaled(settings, env, "upgrade logical: prepare", {"to": target, "remote": True}) as entry:
            logical_remote.prepare(settings, env, current, notify)
            entry.details.update(identity_full=list(missing))
        with journaled(settings, env, "upgrade logical: catch-up", {}) as entry:
            entry.details.update(lag_bytes=logical_remote.catch_up(settings, env, current, notify))
    except Exception:
        notify(f"the target could not be prepared: removing the replication; {env.name} stays on PostgreSQL "
               f"{source}")
        rollback(settings, env, notify=notify)
        raise
    return cutover(settings, env, current, notify=notify)


def cutover(settings: Settings, env: Environment, current: RemoteState, *,
            notify: Notify = lambda _: None) -> LogicalReport:
    from cuisine_db.upgrade import logical_remote

    started = time.monotonic()
    notify("cutover: maintenance mode on (application roles blocked, their sessions ended)")
    maintenance.enable(settings, env, f"upgrade to PostgreSQL {current.target} (logical cutover)")
    current = at_phase(current, "cutover")
    logical_remote.STATE.save(settings, env, current)
    try:
        with journaled(settings, env, "upgrade logical: verify", {}) as entry:
            checks, sequences = _checked(settings, env, current.source_dsn, current.target_dsn, FORWARD, notify)
            entry.details.update(tables=len(checks), sequences=sequences)
    except BaseException:
        if not current.maintenance_was_on:
            maintenance.disable(settings, env)
        logical_remote.STATE.save(settings, env, at_phase(current, "replicating"))
        raise
    with journaled(settings, env, "upgrade logical: switch", {}):
        with open_dsn(settings, env, current.target_dsn, "to_dsn") as new:
            maintenance.enable_on(new, settings, env, None)  # the target's application roles stay out until the end
            new.execute(_drop(FORWARD, "subscription"))
            new.execute(queries.load("upgrade/logical_create_publication").format(name=sql.Identifier(BACKWARD)))
        with open_dsn(settings, env, current.source_dsn, "the source") as old:
            old.execute(_drop(FORWARD, "publication"))
            logical_remote.quiet(old)
            logical.subscribe(old, BACKWARD, logical_remote.server_conninfo(settings, env, current.target_dsn),
                              copy_data=False)
        notify(f"reverse replication: the source subscribes to the target ({BACKWARD}); --rollback returns to it")
        route.save(settings, env, route.Route(env=env.name, dsn=current.target_dsn, replaces=current.source_dsn,
                                              major=current.target,
                                              since=datetime.now(UTC).isoformat(timespec="seconds")))
        current = at_phase(current, "done")
        logical_remote.STATE.save(settings, env, current)
        notify(f"switch: {env.name}'s connections go to the target from now on ({route.path(settings, env)})")
    if not current.maintenance_was_on:
        maintenance.disable(settings, env)  # on the target: the route sends the connection there
        notify("maintenance mode off: applications may write to the new server")
    downtime = time.monotonic() - started
    notes = (f"{env.name} now runs PostgreSQL {current.target} on the server of to_dsn; the tool follows it through "
             f"{route.path(settings, env)}",
             f"point the applications (or PgBouncer's [databases] entry) at it, and put dsn = \"{current.target_dsn}\" "
             "into cuisine-db.toml: the route stops applying once the file names the new server",
             f"PostgreSQL {current.source} follows the new server: --rollback returns to it, --finish ends the way "
             "back")
    return LogicalReport(env.name, current.source, current.target, METHOD, current.identity_full, tuple(checks),
                         sequences, round(downtime, 2), 0, notes)


def rollback(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> RemoteState:
    """Back to the source: before the cutover by removing the replication; after it once the reverse replication
    has caught up (writes stopped meanwhile), with the writes made on the target."""
    from cuisine_db.upgrade import logical_remote

    current = logical_remote.STATE.load(settings, env)
    if current is None:
        raise RefusedError(f"{env.name} has no logical upgrade to roll back")
    if current.phase != "done":
        notify("removing the subscription and the publication (the cutover never happened)")
        # A run killed during its switch may have begun the backward replication and the route: both go too.
        with open_dsn(settings, env, current.source_dsn, "the source") as old:  # drops its slot on the target
            old.execute(_drop(BACKWARD, "subscription"))
        with open_dsn(settings, env, current.target_dsn, "to_dsn") as new:  # drops its slot on the source too
            new.execute(_drop(FORWARD, "subscription"))
            new.execute(_drop(BACKWARD, "publication"))
        with open_dsn(settings, env, current.source_dsn, "the source") as old:
            old.execute(_drop(FORWARD, "publication"))
        route.forget(settings, env)
        if current.phase == "cutover" and not current.maintenance_was_on:
            maintenance.disable(settings, env)
        logical_remote.STATE.forget(settings, env, folder_too=True)
        notify("the target's database keeps the copied schema and rows: drop and create it empty before another run")
        return current
    notify("rollback: maintenance mode on the new server")
    maintenance.enable(settings, env, f"rollback to PostgreSQL {current.source}")
    try:
        with journaled(settings, env, "upgrade logical: rollback verify", {}):
            _checked(settings, env, current.target_dsn, current.source_dsn, BACKWARD, notify)
    except BaseException:
        if not current.maintenance_was_on:
            maintenance.disable(settings, env)
        raise
    with journaled(settings, env, "upgrade logical: switch back", {}):
        with open_dsn(settings, env, current.source_dsn, "the source") as old:
            maintenance.enable_on(old, settings, env, None)
            old.execute(_drop(BACKWARD, "subscription"))
        with open_dsn(settings, env, current.target_dsn, "to_dsn") as new:
            new.execute(_drop(BACKWARD, "publication"))
        route.forget(settings, env)
        logical_remote.STATE.forget(settings, env, folder_too=True)
    if not current.maintenance_was_on:
        maintenance.disable(settings, env)  # on the source again
    notify(f"{env.name} is back on PostgreSQL {current.source}, with the writes made since the cutover; the new "
           "server keeps its copy, its application roles blocked")
    return current


def finish(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> RemoteState:
    """End the reverse replication: the end of the way back. The source server itself is the operator's."""
    from cuisine_db.upgrade import logical_remote

    current = logical_remote.STATE.load(settings, env)
    if current is None or current.phase != "done":
        raise RefusedError(f"{env.name} has no finished logical cutover to finish")
    notify(f"removing the reverse replication from PostgreSQL {current.source}")
    with open_dsn(settings, env, current.source_dsn, "the source") as old:  # also drops its slot on the target
        old.execute(_drop(BACKWARD, "subscription"))
    with open_dsn(settings, env, current.target_dsn, "to_dsn") as new:
        new.execute(_drop(BACKWARD, "publication"))
    logical_remote.STATE.forget(settings, env, folder_too=True)
    return current
