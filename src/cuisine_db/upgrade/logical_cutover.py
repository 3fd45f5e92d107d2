"""The logical method's cutover, its rollback and its finish.

Cutover, under maintenance mode: the old cluster's last LSN confirmed applied on the new one, sequences set past
the old values, the forward replication removed, then the switch: the new cluster's data directory becomes
`.cuisine/<env>/data` on the environment's port (so every command, the pooler and the applications follow it), the
old one waits in `upgrade/pg<old>/` on another port; a slot for the backward replication and a snapshot of the new
cluster are taken before maintenance mode ends. Writes back, the old cluster subscribes to the new one and the row
counts and checksums of both, as they were at the cutover, are compared (logical_window.py keeps the window short).
`--rollback` reverses the same steps; `--finish` removes the old cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError
from cuisine_db.ops.journal import journaled
from cuisine_db.postgres import osuser
from cuisine_db.postgres.local import os_user_of, startup_lock
from cuisine_db.postgres.ports import free_port
from cuisine_db.upgrade import logical, logical_preflight, logical_window
from cuisine_db.upgrade import state as states
from cuisine_db.upgrade.inplace import at_major, pooler_held
from cuisine_db.upgrade.logical import BACKWARD, FORWARD, LogicalReport, LogicalState, Notify, TableCheck
from cuisine_db.upgrade.preflight import NO_GO, PreflightReport


def _set_port(settings: Settings, env: Environment, at: int, port: int) -> None:
    with logical.open_at(settings, env, at, dbname="postgres") as conn:
        conn.execute(queries.load("upgrade/logical_set_port").format(port=sql.Literal(port)))


def _checked(settings: Settings, env: Environment, publisher: int, subscriber: int, slot: str,
             notify: Notify) -> tuple[list[TableCheck], int]:
    """Writes are stopped: the publisher's last LSN applied, sequences carried, every table compared."""
    with logical.open_at(settings, env, publisher) as old, logical.open_at(settings, env, subscriber) as new:
        return logical.verify_stopped(old, new, slot, notify)


def cutover(settings: Settings, env: Environment, current: LogicalState, *,
            notify: Notify = lambda _: None) -> LogicalReport:
    """Writes are blocked from maintenance mode on to off (_window). The tables are compared after, between the old
    cluster (following no one since the cutover) and a snapshot of the new one taken before writes came back."""
    port = env.port or 0
    timer = logical_window.Phases(notify)
    with timer.step("close in (lag, checkpoints, sequences)", writes_blocked=False):
        logical_window.close_in(settings, env, current, notify)
    started = time.monotonic()
    with pooler_held(settings, env, notify):
        current, sequences, frozen = _window(settings, env, current, timer, notify)
    downtime = time.monotonic() - started
    with frozen:
        with journaled(settings, env, "upgrade logical: reverse replication", {}):
            with timer.step("old cluster started, its subscription made", writes_blocked=False):
                logical_window.reverse_subscription(settings, env, current, enable=False)
            current = logical.with_phase(current, "done")
            logical.STATE.save(settings, env, current)
        try:
            with journaled(settings, env, "upgrade logical: compare", {}) as entry, \
                    timer.step("tables compared", writes_blocked=False), \
                    logical.open_at(settings, env, current.back_port) as old:
                try:
                    checks = logical.compare_checked(old, frozen, notify)
                except FailedError as exc:
                    raise FailedError(f"{env.name} runs PostgreSQL {current.target} now, but {exc.message}",
                                      hint="--rollback returns to PostgreSQL "
                                           f"{current.source} with the writes made since") from None
                entry.details.update(tables=len(checks))
        finally:
            logical_window.reverse_subscription(settings, env, current, enable=True)
    notify(f"reverse replication: PostgreSQL {current.source} subscribes to {current.target} "
           f"({BACKWARD}); --rollback returns to it")
    notes = [f"{env.name} now runs PostgreSQL {current.target} on port {port}",
             f"PostgreSQL {current.source} waits on port {current.back_port}, following the new cluster: "
             "--rollback returns to it, --finish removes it"]
    backup_after = None
    if current.archive_mode != "off":
        # The first base backup of the new system identifier: replay from the old backups ends at the cutover.
        from cuisine_db.backup import physical

        notify(f"a full backup of PostgreSQL {current.target}, the new cluster's first")
        with timer.step("the new cluster's first full backup", writes_blocked=False):
            backup_after = physical.create(settings, at_major(env, current.target), "full", notify=notify).name
        notes.append(f"the new cluster archives into its own area; its first full backup: {backup_after}")
    return LogicalReport(env.name, current.source, current.target, logical.METHOD, current.identity_full,
                         tuple(checks), sequences, round(downtime, 2), current.back_port, tuple(notes),
                         backup_after=backup_after, phases=timer.done())


def _window(settings: Settings, env: Environment, current: LogicalState, timer: logical_window.Phases,
            notify: Notify) -> tuple[LogicalState, int, psycopg.Connection[Any]]:
    """Maintenance mode on to off: the last LSN applied, the sequences, the forward replication removed, the
    switch, the reverse replication's slot and a snapshot of the new cluster (the open connection returned)."""
    from cuisine_db.ops import maintenance

    port = env.port or 0
    with timer.step("maintenance mode on"):
        notify("cutover: maintenance mode on (application roles blocked, their sessions ended)")
        maintenance.enable(settings, env, f"upgrade to PostgreSQL {current.target} (logical cutover)")
        current = logical.with_phase(current, "cutover")
        logical.STATE.save(settings, env, current)
    try:
        with journaled(settings, env, "upgrade logical: verify", {}) as entry, \
                logical.open_at(settings, env, port) as old, logical.open_at(settings, env, current.new_port) as new:
            with timer.step("last LSN applied, sequences"):
                sequences = logical.confirm_stopped(old, new, FORWARD, notify)
            entry.details.update(sequences=sequences)
    except BaseException:
        if not current.maintenance_was_on:
            maintenance.disable(settings, env)
        logical.STATE.save(settings, env, logical.with_phase(current, "replicating"))
        raise
    with journaled(settings, env, "upgrade logical: switch", {}) as entry:
        with timer.step("forward replication removed"), logical.open_at(settings, env, current.new_port) as new:
            # Blocks the new cluster's application roles too (the saved limits stay those of the old cluster).
            maintenance.enable_on(new, settings, env, None)
            new.execute(queries.load("upgrade/logical_drop_subscription").format(name=sql.Identifier(FORWARD)))
            new.execute(queries.load("upgrade/logical_create_publication").format(name=sql.Identifier(BACKWARD)))
            with logical.open_at(settings, env, port) as old:
                old.execute(queries.load("upgrade/logical_drop_publication").format(name=sql.Identifier(FORWARD)))
        current = logical.with_phase(current, "switching", back_port=free_port())
        logical.STATE.save(settings, env, current)
        between: Callable[[], None] | None = None
        if current.archive_mode != "off":
            with timer.step("old cluster's last WAL archived"):
                old_system, new_system = _prepare_archiving(settings, env, current, notify)
            between = functools.partial(_begin_area, settings, env, current, old_system, new_system, notify)
        notify(f"switch: PostgreSQL {current.target} takes port {port}; PostgreSQL {current.source} moves to "
               f"{current.back_port}")
        with timer.step("switch (both stopped, folders exchanged, new started)"):
            _swap(settings, env, current, forward=True, between=between)
        with timer.step("reverse slot, snapshot for the comparison"):
            logical_window.reverse_slot(settings, env)
            current = logical.with_phase(current, "switched")
            logical.STATE.save(settings, env, current)
            # Taken before writes come back: the new cluster as it was at the cutover, compared once they flow.
            frozen = logical.open_at(settings, env, port)
            frozen.autocommit = False
            frozen.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            frozen.read_only = True
            frozen.execute(queries.load("upgrade/logical_current_lsn"))
        entry.details.update(back_port=current.back_port)
    if not current.maintenance_was_on:
        with timer.step("maintenance mode off"):
            maintenance.disable(settings, at_major(env, current.target))
        notify("maintenance mode off: applications write to the new cluster")
    return current, sequences, frozen


def _system(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(queries.load("upgrade/system_identifier")).fetchone()
    if row is None:
        raise FailedError("the server reported no system identifier")
    return str(row[0])


def _set_archiving(conn: psycopg.Connection[Any], mode: str) -> None:
    conn.execute(queries.load("upgrade/logical_archiving_on").format(mode=sql.Literal(mode)))


def _prepare_archiving(settings: Settings, env: Environment, current: LogicalState,
                       notify: Notify) -> tuple[str, str]:
    """Writes are stopped: the old cluster's last segment archived into its area, archiving off for it from its
    next start (it follows the new cluster from another port; its WAL is no longer the environment's), and the new
    cluster set to archive with this installation's command from its start on the environment's port. Returns the
    (old, new) system identifiers."""
    from cuisine_db.backup.wal import enable
    from cuisine_db.upgrade.inplace import _archive_last_segment

    with logical.open_at(settings, env, env.port or 0) as old:
        _archive_last_segment(old, notify)
        old_system = _system(old)
        timeout = old.execute(queries.load("upgrade/archive_timeout")).fetchone()
        _set_archiving(old, "off")
    with logical.open_at(settings, env, current.new_port) as new:
        new_system = _system(new)
        _set_archiving(new, current.archive_mode)
        new.execute(queries.load("upgrade/logical_archive_command").format(
            command=sql.Literal(enable.archive_command(settings, env))))
        if timeout is not None:
            new.execute(queries.load("upgrade/logical_archive_timeout").format(timeout=sql.Literal(timeout[0])))
        if current.target >= 17:
            new.execute(queries.load("upgrade/logical_summarize_wal"))
    return old_system, new_system


def _begin_area(settings: Settings, env: Environment, current: LogicalState, old_system: str, new_system: str,
                notify: Notify) -> None:
    """Both clusters stopped (the old one's shutdown archived its last records into its own area): from here on
    the environment's archive area is the new system identifier's."""
    from cuisine_db.backup.wal import areas, enable

    area = areas.begin(env.name, settings.env_dir(env), old_system=old_system, old_major=current.source,
                       new_system=new_system, new_major=current.target,
                       at=datetime.now(UTC).isoformat(timespec="seconds"))
    enable.grant_server_access(settings, env, os_user_of(settings, env))
    notify(f"the new cluster archives into its own area: wal/{area}/")


def _swap(settings: Settings, env: Environment, current: LogicalState, *, forward: bool,
          between: Callable[[], None] | None = None) -> None:
    """Exchange the two clusters' places: ports first (ALTER SYSTEM), then both stopped, data folders renamed,
    the major recorded, `between` run, the arriving one started (the leaving one, forward, waits for writes to come
    back: reverse_subscription starts it). `forward`: the new cluster becomes the environment's."""
    port = env.port or 0
    live = settings.env_dir(env) / "data"
    old_home = states.home(settings, env, current.source)
    new_home = states.home(settings, env, current.target)
    if forward:
        _set_port(settings, env, current.new_port, port)
        _set_port(settings, env, port, current.back_port)
        leaving, arriving, waiting = current.source, current.target, old_home
        leaving_home, arriving_home = settings.env_dir(env), new_home
        parked_at = current.back_port
    else:
        _set_port(settings, env, current.back_port, port)
        _set_port(settings, env, port, current.new_port)
        leaving, arriving, waiting = current.target, current.source, new_home
        leaving_home, arriving_home = settings.env_dir(env), old_home
        parked_at = current.new_port
    with startup_lock(settings, env):
        logical.old_cluster(settings, env, leaving, leaving_home, port).stop()
        logical.old_cluster(settings, env, arriving, arriving_home, parked_at).stop()
        waiting.mkdir(parents=True, exist_ok=True)
        waiting.chmod(0o711)
        osuser.give_to(waiting / "run", os_user_of(settings, env))
        live.rename(waiting / "data")
        (arriving_home / "data").rename(live)
        states.record_major(settings, env, current.target if forward else current.major_file_before)
        if between is not None:
            between()
        logical.old_cluster(settings, env, arriving, settings.env_dir(env), port).start()


def rollback(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> LogicalState:
    """Back to the old cluster: before the cutover by removing the new one; after it once the reverse replication
    has caught up (writes stopped meanwhile), with the writes made on the new cluster."""
    from cuisine_db.ops import maintenance

    current = logical.STATE.load(settings, env)
    if current is None:
        raise RefusedError(f"{env.name} has no logical upgrade to roll back")
    port = env.port or 0
    if current.phase == "switching":
        _undo_switch(settings, env, current, notify)
        return current
    if current.phase not in ("switched", "done"):
        notify(f"removing the new PostgreSQL {current.target} cluster (the cutover never happened)")
        unused = logical.new_cluster(settings, env, current.target, current.new_port)
        if unused.initialized():
            unused.start()
            with logical.open_at(settings, env, current.new_port) as conn:  # drops its slot on the old cluster too
                conn.execute(queries.load("upgrade/logical_drop_subscription").format(name=sql.Identifier(FORWARD)))
        with logical.open_at(settings, env, port) as old:
            old.execute(queries.load("upgrade/logical_drop_publication").format(name=sql.Identifier(FORWARD)))
            if current.archive_mode != "off":
                _set_archiving(old, current.archive_mode)
        if current.phase == "cutover" and not current.maintenance_was_on:  # a run killed during its checks
            maintenance.disable(settings, env)
        _remove_new(settings, env, current)
        return current
    # Starts the old cluster (after a reboot nothing else does) and completes a run killed before it followed.
    logical_window.reverse_subscription(settings, env, current, enable=True)
    with pooler_held(settings, env, notify):
        old_system = _switch_back(settings, env, current, notify)
    _remove_new(settings, env, current)
    notify(f"{env.name} is back on PostgreSQL {current.source}, with the writes made since the cutover")
    if old_system is not None:
        # Its WAL while it followed the new cluster was not archived: a new base for point-in-time recovery.
        from cuisine_db.backup import physical

        notify(f"a full backup of PostgreSQL {current.source}: its WAL since the cutover was not archived")
        physical.create(settings, at_major(env, current.source), "full", notify=notify)
    return current


def _switch_back(settings: Settings, env: Environment, current: LogicalState, notify: Notify) -> str | None:
    """Maintenance mode on to off: the new cluster's last LSN applied on the old one, tables compared, the reverse
    replication removed, the clusters swapped back. Returns the old system identifier where WAL is archived."""
    from cuisine_db.ops import maintenance

    port = env.port or 0
    maintenance_was_on = current.maintenance_was_on
    notify("rollback: maintenance mode on the new cluster")
    maintenance.enable(settings, env, f"rollback to PostgreSQL {current.source}")
    try:
        with journaled(settings, env, "upgrade logical: rollback verify", {}):
            _checked(settings, env, port, current.back_port, BACKWARD, notify)
    except BaseException:
        if not maintenance_was_on:
            maintenance.disable(settings, env)
        raise
    old_system: str | None = None
    with logical.open_at(settings, env, current.back_port) as old:
        maintenance.enable_on(old, settings, env, None)
        old.execute(queries.load("upgrade/logical_drop_subscription").format(name=sql.Identifier(BACKWARD)))
        if current.archive_mode != "off":
            _set_archiving(old, current.archive_mode)  # from its start on the environment's port
            old_system = _system(old)
    with logical.open_at(settings, env, port) as new:
        new.execute(queries.load("upgrade/logical_drop_publication").format(name=sql.Identifier(BACKWARD)))
        new_system = _system(new)
    with journaled(settings, env, "upgrade logical: switch back", {}):
        notify(f"switch: PostgreSQL {current.source} takes port {port} again")
        _swap(settings, env, current, forward=False, between=None if old_system is None else functools.partial(
            areas_back, settings, env, old_system, new_system))
    if not maintenance_was_on:
        maintenance.disable(settings, at_major(env, current.source))
    return old_system


def areas_back(settings: Settings, env: Environment, old_system: str, new_system: str) -> None:
    """The old cluster archives into its own area again; the new one's stays in the repository, unused."""
    from cuisine_db.backup.wal import areas

    areas.take_back(settings.env_dir(env), old_system=old_system, new_system=new_system)


def _undo_switch(settings: Settings, env: Environment, current: LogicalState, notify: Notify) -> None:
    """A run killed during its switch: no application wrote to the new cluster yet (its roles were blocked before
    the switch began), so the old cluster goes back on the environment's port as it was, and the new one is removed.
    The servers are stopped, the data folders put back, and the ports the switch set with ALTER SYSTEM forgotten."""
    from cuisine_db.ops import maintenance
    from cuisine_db.upgrade.inplace import _pg_version, _stop_any, _take_back_area

    live = settings.env_dir(env) / "data"
    old_data = states.home(settings, env, current.source) / "data"
    new_data = states.home(settings, env, current.target) / "data"
    notify(f"the switch to PostgreSQL {current.target} was interrupted: putting PostgreSQL {current.source} back")
    with startup_lock(settings, env):
        for datadir in (live, old_data, new_data):
            major = _pg_version(datadir)
            if major is not None:
                _stop_any(major, datadir, settings)
        if _pg_version(live) == current.target:
            live.rename(new_data)
        if not live.exists() and old_data.exists():
            old_data.rename(live)
        auto = live / "postgresql.auto.conf"
        if auto.exists():  # rewritten in place: the file keeps its owner and mode
            kept = [line for line in auto.read_text().splitlines(keepends=True) if not line.startswith("port =")]
            if current.archive_mode != "off":  # the switch had turned the old cluster's archiving off
                kept = [f"archive_mode = '{current.archive_mode}'\n" if line.startswith("archive_mode =") else line
                        for line in kept]
            auto.write_text("".join(kept))
        _take_back_area(settings, env, new_data, live)
        states.record_major(settings, env, current.major_file_before)
        logical.old_cluster(settings, env, current.source, settings.env_dir(env), env.port or 0).start()
    with logical.open_at(settings, env, env.port or 0) as old:
        old.execute(queries.load("upgrade/logical_drop_publication").format(name=sql.Identifier(FORWARD)))
    if not current.maintenance_was_on:
        maintenance.disable(settings, at_major(env, current.source))
    _remove_new(settings, env, current)


def _remove_new(settings: Settings, env: Environment, current: LogicalState) -> None:
    home = states.home(settings, env, current.target)
    cluster = logical.new_cluster(settings, env, current.target, current.new_port)
    if cluster.initialized():
        cluster.stop(mode="immediate")
    shutil.rmtree(home, ignore_errors=True)
    logical.STATE.forget(settings, env)
    shutil.rmtree(states.folder(settings, env), ignore_errors=True)


def finish(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> LogicalState:
    """Remove the old cluster and the reverse replication: the end of the way back."""
    current = logical.STATE.load(settings, env)
    if current is None or current.phase not in ("switched", "done"):
        raise RefusedError(f"{env.name} has no finished logical cutover to finish")
    home = states.home(settings, env, current.source)
    notify(f"removing PostgreSQL {current.source} (port {current.back_port}) and the reverse replication")
    # DROP SUBSCRIPTION on the old cluster also drops its slot on the new one: the subscription is made if missing.
    logical_window.reverse_subscription(settings, env, current, enable=False)
    with logical.open_at(settings, env, current.back_port) as old:
        old.execute(queries.load("upgrade/logical_drop_subscription").format(name=sql.Identifier(BACKWARD)))
    with logical.open_at(settings, env, env.port or 0) as new:
        new.execute(queries.load("upgrade/logical_drop_publication").format(name=sql.Identifier(BACKWARD)))
    logical.old_cluster(settings, env, current.source, home, current.back_port).stop(mode="immediate")
    shutil.rmtree(home, ignore_errors=True)
    logical.STATE.forget(settings, env)
    shutil.rmtree(states.folder(settings, env), ignore_errors=True)
    return current


def upgrade(settings: Settings, env: Environment, to: int | None, *, identity_full: bool,
            confirm: Callable[[str], None], notify: Notify = lambda _: None,
            checks: PreflightReport | None = None) -> LogicalReport:
    """The logical path: pre-flight (unless `checks` holds it), new cluster, roles, schema, subscription, catch-up,
    then the cutover. The rehearsal runs this on its scratch copy; logical_run.py puts a rehearsal before it."""
    from cuisine_db.ops import maintenance

    source, target = logical.validate(settings, env, to)
    if checks is None:
        checks = preflight_gate(settings, env, source, target, identity_full=identity_full, notify=notify)
    with logical.open_at(settings, env, env.port or 0) as conn:
        missing = logical.tables(conn, "logical_without_identity")
        archiving = conn.execute(queries.load("upgrade/archiving")).fetchone()
    confirm(f"upgrade {env.name} from PostgreSQL {source} to {target} with method=logical: a new cluster is filled "
            "by logical replication, then a cutover under maintenance mode; --rollback returns to the old one")
    current = LogicalState(env=env.name, database=env.database, source=source, target=target, phase="replicating",
                           new_port=free_port(), back_port=0,
                           maintenance_was_on=maintenance.status(settings, env).on,
                           major_file_before=states.current_major_file(settings, env), identity_full=tuple(missing),
                           started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                           archive_mode=str(archiving[0]) if archiving else "off")
    try:
        with journaled(settings, env, "upgrade logical: prepare", {"to": target}) as entry:
            logical.prepare(settings, env, current, notify)
            entry.details.update(new_port=current.new_port, identity_full=list(missing))
        with journaled(settings, env, "upgrade logical: catch-up", {}) as entry:
            entry.details.update(lag_bytes=logical.catch_up(settings, env, current, notify))
    except Exception:
        notify(f"the new cluster could not be prepared: removing it; {env.name} stays on PostgreSQL {source}")
        rollback(settings, env, notify=notify)
        raise
    return dataclasses.replace(cutover(settings, env, current, notify=notify), preflight=checks)


def preflight_gate(settings: Settings, env: Environment, source: int, target: int, *, identity_full: bool,
                   notify: Notify = lambda _: None,
                   show: Callable[[PreflightReport], None] = lambda _: None) -> PreflightReport:
    """The logical pre-flight, shown; tables without a replica identity are refused (exit 4, a safety rail), any
    other no-go stops the run (exit 1). Nothing has been changed either way."""
    with connect(settings, env, "upgrade logical"):
        pass  # a stopped cluster is started here where the start policy allows it, else the error says so
    checks = logical_preflight.run_preflight(settings, env, source, target, identity_full=identity_full,
                                             notify=notify)
    show(checks)
    if logical_preflight.identity_refused(checks) is not None:
        with logical.open_at(settings, env, env.port or 0) as conn:
            missing = logical.tables(conn, "logical_without_identity")
        raise RefusedError(f"{len(missing)} table(s) have no primary key or replica identity, so logical replication "
                           f"cannot send their UPDATE and DELETE: {', '.join(missing)}; nothing was changed",
                           hint="add primary keys, or run again with replica_identity_full=1 "
                                "(--replica-identity-full) to give them REPLICA IDENTITY FULL")
    if not checks.go:
        failed = [row for row in checks.rows if row.status == NO_GO]
        raise FailedError(f"pre-flight: no-go for {env.name} to PostgreSQL {target} with method=logical: "
                          + "; ".join(f"{row.check}: {row.detail}" for row in failed) + "; nothing was changed",
                          hint=failed[0].fix or "fix the no-go rows and run it again")
    return checks
