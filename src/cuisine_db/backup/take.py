"""db-backup's one entry point, whoever calls it: the type checked, physical (pg_basebackup) or logical (pg_dump)
picked by it, the source (the primary or a replica within the lag bound) chosen, a Patroni backup cut short by a
failover taken again from the new leader, and the journal line written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cuisine_db.backup import backup_names, failover_retry, logical, physical
from cuisine_db.backup.logical import BackupReport
from cuisine_db.backup.physical import PhysicalReport
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.replicas import routing

Notify = Callable[[str], None]
# Given an object's size, returns the callback that advances a progress bar by each chunk (or None: no bar).
Progress = Callable[[int], Callable[[int], None] | None]


def _retried(details: dict[str, Any], retry: failover_retry.Retry | None) -> None:
    """The journal says when a backup was taken again from a new Patroni leader, and why."""
    if retry is not None:
        details["retried"] = {"after": retry.error, "lost_leader": retry.lost_leader,
                              "new_leader": retry.new_leader, "timeline": retry.new_timeline}


def take(settings: Settings, env: Environment, kind: str, *, tables: str | None = None, replica: str | None = None,
         origin: str | None = None, notify: Notify = lambda _: None, warn: Notify = lambda _: None,
         progress: Progress = lambda _: None) -> PhysicalReport | BackupReport:
    """Back `env` up into its repository as `kind` (full or incremental: the whole cluster; logical, schema, data or
    tables: pg_dump, `tables` for the last), journaled as `backup`. `replica` (a name or any) or `origin` (primary
    or replica) choose the source; the replica chosen is said through `notify`, why none was through `warn`."""
    arguments = {"type": kind, "tables": tables, "replica": replica, "from": origin}
    with journaled(settings, env, "backup", arguments) as entry:
        backup_names.check_type(kind)
        if kind in backup_names.PHYSICAL_TYPES:
            if tables is not None:
                raise UsageError(f"tables= goes with type=tables; type={kind} backs up the whole cluster")
            wanted_replica = routing.backup_source(replica, origin)
            physical.check_source(kind, from_replica=wanted_replica is not None)
            physical_source = routing.routed(settings, env, wanted_replica, command="db-backup", notify=notify,
                                             warn=warn)
            taken_physical = failover_retry.take(settings, env, lambda: physical.create(
                settings, env, kind, notify=notify, progress=progress, source=physical_source),
                source=physical_source, notify=notify)
            physical_report = taken_physical.report
            _retried(entry.details, taken_physical.retry)
            entry.details.update(name=physical_report.name, size=physical_report.size,
                                 seconds=physical_report.seconds, stop_lsn=physical_report.stop_lsn,
                                 source=physical_report.source)
            return physical_report
        wanted = backup_names.parse_tables(tables) if tables is not None else []
        source = routing.routed(settings, env, routing.backup_source(replica, origin), command="db-backup",
                                notify=notify, warn=warn)
        taken = failover_retry.take(settings, env, lambda: logical.create(
            settings, env, kind, wanted, notify=notify, progress=progress, source=source), source=source,
            notify=notify)
        report = taken.report
        _retried(entry.details, taken.retry)
        entry.details.update(name=report.name, size=report.size, rows=report.rows, seconds=report.seconds,
                             source="primary" if source is None else source.name)
    return report
