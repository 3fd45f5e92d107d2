"""The one entry point for restores, whoever calls it (the CLI, dr-drill, the upgrade rehearsal): the backup
resolved and checked, the restore kind picked by the manifest's type, maintenance mode required for a full restore
of a protected environment, the confirmation asked, and the journal line written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cuisine_db.backup import backup_names, catalog, patroni_restore, physical_restore, pitr_tables, targets
from cuisine_db.backup import restore as logical_restore
from cuisine_db.backup import restore_state as states
from cuisine_db.backup import restore_tables as table_restore
from cuisine_db.backup import test_restore as testing
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.physical_restore import LaidReport, OpenReport
from cuisine_db.backup.recovery import Progress as ReplayProgress
from cuisine_db.backup.restore import RestoreReport
from cuisine_db.backup.test_restore import TestRestoreReport
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import confirmation, maintenance
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled

Notify = Callable[[str], None]
# Given an object's size, returns the callback that advances a progress bar by each chunk (or None: no bar).
Progress = Callable[[int], Callable[[int], None] | None]
Kind = Literal["physical", "tables", "logical"]

WANTED = "the backup: backup=NAME (or backup=latest)"


@dataclass(frozen=True, slots=True)
class DatabaseRestore:
    """What db-restore did: `physical` laid the whole cluster down (`laid`); `tables` restored a data or tables
    backup's tables in place, `logical` a fresh database swapped in (`restored`)."""

    env: str
    backup: str
    kind: Kind
    laid: LaidReport | None = None
    restored: RestoreReport | None = None


def kind_of(resolved: Resolved) -> Kind:
    """The restore a backup gets by its manifest's type."""
    if resolved.manifest.type in backup_names.PHYSICAL_TYPES:
        return "physical"
    if resolved.manifest.type in ("data", "tables"):
        return "tables"
    return "logical"


def _reference(backup: str | None) -> str:
    if backup is None or not backup.strip():
        raise UsageError(f"give {WANTED}")
    return backup.strip()


def resolve(settings: Settings, env: Environment, backup: str | None, *, purpose: str,
            tables: Sequence[backup_names.TableName] = (), trust_unsigned: bool = False,
            notify: Notify = lambda _: None) -> Resolved:
    """A backup name (checked against the names the tool writes) or `latest`, resolved for `purpose`. An unsigned
    backup is used only by name with `trust_unsigned`, and said so."""
    reference = _reference(backup)
    if reference != "latest":
        backup_names.parse(reference)
    if trust_unsigned and reference == "latest":
        raise UsageError("trust_unsigned=1 (--trust-unsigned) needs a backup named explicitly, never latest",
                         hint=f"make db-backups env={env.name} lists them")
    resolved = catalog.resolve(settings, env, reference, purpose=purpose, tables=tables,
                               trust_unsigned=trust_unsigned)
    if resolved.entry.signer and resolved.entry.signer.startswith("unsigned"):
        notify(f"warning: backup {resolved.manifest.name} is unsigned: used because trust_unsigned=1 said so")
    if reference == "latest":
        notify(f"using backup {resolved.manifest.name} ({resolved.reason})")
    return resolved


def restore_database(settings: Settings, env: Environment, backup: str | None, *, yes: bool = False,
                     ask: Ask | None = None, statistics: bool = True, open_now: bool | None = None,
                     trust_unsigned: bool = False, notify: Notify = lambda _: None,
                     progress: Progress = lambda _: None) -> DatabaseRestore:
    """Full restore (db-restore) of `backup` (a name or latest) into env, journaled as `restore`. A protected
    environment must be in maintenance mode and the operator must confirm (`yes`, or env's name typed in answer to
    `ask`); both are checked before anything changes. A physical backup replaces the whole cluster (opened now, or
    left laid down for db-apply-logs: `open_now`, by default waiting under maintenance mode); a data or tables
    backup restores its tables in place; a logical one goes into a fresh database, checked, then swapped in."""
    arguments = {"backup": backup, "no_analyze": not statistics, "open": open_now, "trust_unsigned": trust_unsigned}
    with journaled(settings, env, "restore", arguments) as entry:
        resolved = resolve(settings, env, backup, purpose="restore", trust_unsigned=trust_unsigned, notify=notify)
        name = resolved.manifest.name
        if env.protected:
            maintenance.require(settings, env, "A full restore")
        kind = kind_of(resolved)
        if kind == "physical":
            patroni_restore.refuse_unless_embedded(env, "A physical restore")
            confirmation.require(env, f"Replacing the whole cluster of {env.name} with backup {name}", yes=yes,
                                 ask=ask)
            # A Patroni cluster is restored through Patroni (paused, stopped, re-bootstrapped from the backup).
            lay = patroni_restore.restore if env.patroni is not None else physical_restore.restore
            laid = lay(settings, env, resolved, open_now=open_now, notify=notify, progress=progress)
            entry.details.update(backup=name, seconds=laid.seconds, opened=laid.opened is not None)
            return DatabaseRestore(env.name, name, kind, laid=laid)
        confirmation.require(env, f"Replacing database {env.database!r} with backup {name}", yes=yes, ask=ask)
        if kind == "tables":
            notify(f"{name} is a {resolved.manifest.type} backup: its tables are restored in place")
            restored = table_restore.restore_tables(settings, env, resolved, None, notify=notify, progress=progress)
        else:
            restored = logical_restore.restore_database(settings, env, resolved, statistics=statistics,
                                                        notify=notify, progress=progress)
        entry.details.update(backup=name, kept=restored.kept, seconds=restored.seconds)
    return DatabaseRestore(env.name, name, kind, restored=restored)


def apply_logs(settings: Settings, env: Environment, target: str | None = None, lsn: str | None = None,
               xid: str | None = None, *, inclusive: bool = True, force: bool = False, trust_unsigned: bool = False,
               notify: Notify = lambda _: None,
               report: Callable[[ReplayProgress], None] = lambda _: None) -> OpenReport:
    """db-apply-logs, journaled as `apply-logs`: the archive replayed onto the physical restore db-restore laid down,
    to its end or to the target as typed (target=, lsn= or xid=, checked before anything changes); on a Patroni
    cluster replayed by the member Patroni bootstraps from it, the others rebuilt from that one."""
    arguments = {"target": target, "lsn": lsn, "xid": xid, "inclusive": inclusive, "force": force,
                 "trust_unsigned": trust_unsigned}
    with journaled(settings, env, "apply-logs", arguments) as entry:
        point = targets.parse(target, lsn, xid, inclusive=inclusive)
        if trust_unsigned:
            notify("warning: WAL archived before signatures is replayed too: trust_unsigned=1 said so")
        if env.patroni is not None:
            opened = patroni_restore.bootstrap(settings, env, point, force=force, trust_unsigned=trust_unsigned,
                                               notify=notify)
        else:
            opened = physical_restore.apply_logs(settings, env, point, force=force, notify=notify, report=report,
                                                 trust_unsigned=trust_unsigned)
        entry.details.update(backup=opened.backup, reached_lsn=opened.reached_lsn, timeline=opened.timeline,
                             reached_time=opened.reached_time, recovery_seconds=opened.recovery_seconds)
    return opened


def open_pending(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> OpenReport:
    """cuisine-db restore open, journaled as `restore open`: the laid-down physical restore opened as the backup
    left it; refused as bad input when none waits."""
    with journaled(settings, env, "restore open", {}) as entry:
        opened = _open_pending(settings, env, notify)
        if opened is None:
            raise UsageError(f"no physical restore is waiting on {env.name}")
        entry.details.update(backup=opened.backup, timeline=opened.timeline)
    return opened


def _open_pending(settings: Settings, env: Environment, notify: Notify) -> OpenReport | None:
    if env.patroni is not None:
        patroni_restore.refuse_unless_embedded(env, "Opening a physical restore")
        if states.pending(settings, env) is None:
            return None
        notify(f"{env.name}: opening the laid-down restore at the end of the backup (its own WAL only)")
        return patroni_restore.bootstrap(settings, env, targets.IMMEDIATE, notify=notify)
    return physical_restore.open_pending(settings, env, notify=notify)


def restore_tables(settings: Settings, env: Environment, backup: str | None, tables: str | None, *,
                   target: str | None = None, lsn: str | None = None, xid: str | None = None,
                   inclusive: bool = True, yes: bool = False, ask: Ask | None = None,
                   trust_unsigned: bool = False, notify: Notify = lambda _: None,
                   progress: Progress = lambda _: None) -> RestoreReport:
    """Table restore (db-restore-tables), journaled as `restore-tables`: from a logical backup directly, from a
    physical one through a temporary instance (to a point in time with target=, lsn= or xid=); confirmed on a
    protected environment before anything changes."""
    arguments = {"backup": backup, "tables": tables, "target": target, "lsn": lsn, "xid": xid,
                 "inclusive": inclusive, "trust_unsigned": trust_unsigned}
    with journaled(settings, env, "restore-tables", arguments) as entry:
        wanted = backup_names.parse_tables(tables)
        point = targets.parse(target, lsn, xid, inclusive=inclusive)
        reference = _reference(backup)
        if point.kind != "end" or (reference != "latest"
                                   and backup_names.parse(reference).type in backup_names.PHYSICAL_TYPES):
            if trust_unsigned and reference == "latest":
                raise UsageError("trust_unsigned=1 (--trust-unsigned) needs a backup named explicitly, never latest",
                                 hint=f"make db-backups env={env.name} lists them")
            resolved = pitr_tables.resolve(settings, env, reference, point, trust_unsigned=trust_unsigned)
            if reference == "latest":
                notify(f"using backup {resolved.manifest.name} ({resolved.reason})")
        else:
            resolved = resolve(settings, env, reference, purpose="restore-tables", tables=wanted,
                               trust_unsigned=trust_unsigned, notify=notify)
        listed = ", ".join(str(t) for t in wanted)
        confirmation.require(env, f"Replacing the rows of {listed} with those of backup {resolved.manifest.name}",
                             yes=yes, ask=ask)
        if resolved.manifest.type in backup_names.PHYSICAL_TYPES:
            report = pitr_tables.restore_tables_at(settings, env, resolved, wanted, point, notify=notify,
                                                   progress=progress)
        else:
            report = table_restore.restore_tables(settings, env, resolved, wanted, notify=notify, progress=progress)
        entry.details.update(backup=resolved.manifest.name, tables=list(report.tables), seconds=report.seconds)
    return report


def test_restore(settings: Settings, env: Environment, backup: str | None, *, keep: bool = False,
                 trust_unsigned: bool = False, notify: Notify = lambda _: None,
                 progress: Callable[[int], Any] = lambda _: None) -> TestRestoreReport:
    """db-test-restore, journaled as `test-restore`: the backup restored where it cannot hurt, checked, timed."""
    arguments = {"backup": backup, "keep": keep, "trust_unsigned": trust_unsigned}
    with journaled(settings, env, "test-restore", arguments) as entry:
        resolved = resolve(settings, env, backup, purpose="restore", trust_unsigned=trust_unsigned, notify=notify)
        report = testing.test_restore(settings, env, resolved, keep=keep, notify=notify, progress=progress)
        entry.details.update(backup=report.backup, seconds=report.seconds, physical=report.physical)
    return report
