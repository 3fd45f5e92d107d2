"""db-restore-tables from a physical backup, to a point in time: only those tables come back, everything else stays.

The backup is brought up as a temporary instance beside the environment (recovery.py: a private socket, its own
free port number, archiving off), replayed to the target and paused there; the chosen tables are dumped from it
with pg_dump into a scratch repository, exactly like a `type=tables` backup (encrypted to the environment's own
keys, rows counted), and restored from there by restore_tables.py: one transaction, foreign keys set aside and
validated again, triggers held, sequences only moving forward. The instance is gone before the restore begins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from cuisine_db.backup import catalog, logical, restore_tables
from cuisine_db.backup.backup_names import PHYSICAL_TYPES, TableName
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.physical_restore import stopped_at, temporary_instance
from cuisine_db.backup.restore import RestoreReport
from cuisine_db.backup.targets import IMMEDIATE, RecoveryTarget
from cuisine_db.backup.wal import wal_names
from cuisine_db.backup.workspace import scratch
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.storage import open_repository

Notify = Callable[[str], None]


def resolve(settings: Settings, env: Environment, reference: str, target: RecoveryTarget, *,
            trust_unsigned: bool = False) -> Resolved:
    """A named physical backup, or `latest`: the newest physical backup of env that ends before the target."""
    if reference != "latest":
        resolved = catalog.find(settings, env, reference, trust_unsigned=trust_unsigned)
        if resolved.manifest.type not in PHYSICAL_TYPES:
            raise UsageError(f"{reference} is a {resolved.manifest.type} backup: a point in time needs a physical "
                             "one", hint=f"make db-backups env={env.name} lists them (type full or incremental)")
        return resolved
    moment, lsn = target.time, target.value if target.kind == "lsn" else None
    fitting = [(entry, manifest) for entry in catalog.list_backups(settings, env)
               if (manifest := entry.manifest) is not None and entry.type in PHYSICAL_TYPES
               and (moment is None or stopped_at(manifest) <= moment)
               and (lsn is None or manifest.stop_lsn is None
                    or wal_names.parse_lsn(manifest.stop_lsn) <= wal_names.parse_lsn(lsn))]
    if not fitting:
        raise UsageError(f"environment {env.name!r} has no physical backup that ends before {target.describe()}",
                         hint=f"make db-backups env={env.name} lists the backups")
    entry, manifest = fitting[-1]
    return catalog.Resolved(entry, manifest, open_repository(settings, env), env,
                            f"newest physical backup of {env.name} ending before {target.describe()}")


def restore_tables_at(settings: Settings, env: Environment, resolved: Resolved, tables: Sequence[TableName],
                      target: RecoveryTarget, *, notify: Notify = lambda _: None,
                      progress: Callable[[int], Any] = lambda _: None) -> RestoreReport:
    """Replace the rows of `tables` in env with those the physical backup held at `target`; without a target
    (the end of the archive), as the backup itself held them."""
    manifest = resolved.manifest
    wanted = IMMEDIATE if target.kind == "end" else target
    with scratch(settings, f"pitr-tables-{manifest.name}") as work:
        repository = work / "repository"
        with temporary_instance(settings, env, resolved, wanted, notify=notify) as (server, reached):
            temporary = env.model_copy(update={
                "dsn": server.conninfo(manifest.database), "port": None, "pg_bin": None, "passfile": None,
                "password_env": None, "roles": {}, "protected": False,
                "backup": env.backup.model_copy(update={"repository": repository.as_uri()})})
            beside = dataclasses.replace(settings, environments={**settings.environments, env.name: temporary})
            at = f"LSN {reached.lsn}" + (f", last transaction {reached.time:%Y-%m-%d %H:%M:%S} UTC"
                                         if reached.time else "")
            notify(f"temporary instance of {manifest.name} reached {at}; copying {', '.join(map(str, tables))}")
            dumped = logical.create(beside, temporary, "tables", tables)
        copied = catalog.find(beside, temporary, dumped.name)
        report = restore_tables.restore_tables(settings, env, copied, tables, notify=notify, progress=progress)
    return dataclasses.replace(report, backup=manifest.name, type=f"{manifest.type} at {wanted.describe()}",
                               warnings=[*report.warnings, f"as of {at}"])
