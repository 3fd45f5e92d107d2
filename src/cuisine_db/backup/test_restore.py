"""db-test-restore: restore a backup where it cannot hurt, check it, time it, and record the result in the catalog.

A logical backup goes through the whole restore path into a scratch database beside the environment's own
(backup/restore.py). A physical one (a full backup, or an incremental chain) is laid down in a throwaway cluster of
the backup's major version (physical_restore.temporary_instance: a private socket, no TCP, archiving off), replayed
to consistency from the WAL it carries (and the environment's archive if it needs more), opened, checked with
amcheck (ops/integrity's verify_heapam and bt_index_check) and its tables counted against the manifest where it has
counts; the cluster is removed whatever happens. The measured recovery time is from the start of the restore to the
restored database being open.

Only a real attempt that failed is recorded as failed: bad input and refusals (exit 2 and 4) leave the catalog as
it was (`catalog.counts_as_failure`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import sql as pgsql

from cuisine_db import sql as queries
from cuisine_db.backup import catalog, laydown, restore
from cuisine_db.backup.backup_names import PHYSICAL_TYPES
from cuisine_db.backup.catalog import Check, Resolved
from cuisine_db.backup.manifest import TEST_RESTORE
from cuisine_db.backup.restore_load import check_counts
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, UsageError
from cuisine_db.postgres import binaries
from cuisine_db.storage import keys as age_keys
from cuisine_db.whoami import who

Notify = Callable[[str], None]
Progress = Callable[[int], Any]


@dataclass(frozen=True, slots=True)
class TestRestoreReport:
    """What a test restore did: how long recovery took (the measured RTO), what it checked, and where."""

    __test__ = False  # not a pytest class, whatever its name

    env: str
    backup: str
    type: str
    database: str
    seconds: float  # the measured recovery time
    tables: dict[str, int]
    physical: bool = False
    matched_manifest: bool = True  # False: the manifest held no row counts (physical backups), rows only counted
    dropped: bool = True
    amcheck: dict[str, int] = field(default_factory=dict)  # what amcheck looked at, per check
    check_seconds: float = 0.0
    reached_lsn: str | None = None
    server_version: str | None = None
    warnings: list[str] = field(default_factory=list)


def test_restore(settings: Settings, env: Environment, resolved: Resolved, *, keep: bool = False,
                 notify: Notify = lambda _: None, progress: Progress = lambda _: None) -> TestRestoreReport:
    """Test-restore one backup and record the outcome next to it (test-restore.json)."""
    manifest = resolved.manifest
    physical = manifest.type in PHYSICAL_TYPES
    # What is wrong before anything is tried is bad input, not a failed restore: checked first, never recorded.
    if not physical and manifest.type not in ("logical", "schema"):
        raise UsageError(f"{manifest.name} is a {manifest.type} backup: it holds tables, not a whole database",
                         hint="test-restore a logical or physical (full) backup")
    if physical and keep:
        raise UsageError(f"{manifest.name} is a physical backup: it is restored into a throwaway cluster, which is "
                         "always removed (keep applies to logical backups)")
    if physical:
        laydown.chain(settings, env, resolved)  # every backup of the chain is there, of one cluster
        binaries.find(manifest.server_major, settings.cache_dir)  # a server of its major version is here
    age_keys.identities(settings, [env] + ([resolved.source_env] if resolved.source_env is not None else []))
    started = datetime.now(UTC)
    try:
        if physical:
            report = _physical(settings, env, resolved, notify)
        else:
            restored = restore.restore_database(settings, env, resolved, test=True, keep=keep, notify=notify,
                                                progress=progress)
            report = TestRestoreReport(env.name, restored.backup, restored.type, restored.database, restored.seconds,
                                       restored.tables, dropped=restored.dropped, warnings=restored.warnings)
    except CuisineDbError as exc:
        if catalog.counts_as_failure(exc):
            catalog.record(settings, resolved.source_env or env, resolved.repository, manifest.name, TEST_RESTORE,
                           Check(at=started, ok=False, by=who(), seconds=0, problems=[exc.message],
                                 details={"env": env.name, "type": manifest.type}))
        raise
    details: dict[str, Any] = {"env": env.name, "type": manifest.type, "tables": report.tables,
                               "database": report.database}
    if physical:
        details.update(amcheck=report.amcheck, check_seconds=report.check_seconds, reached_lsn=report.reached_lsn,
                       server_version=report.server_version, scratch="a throwaway cluster, removed")
    catalog.record(settings, resolved.source_env or env, resolved.repository, manifest.name, TEST_RESTORE,
                   Check(at=started, ok=True, by=who(), seconds=report.seconds, problems=[], details=details))
    return report


def _physical(settings: Settings, env: Environment, resolved: Resolved, notify: Notify) -> TestRestoreReport:
    """Lay down, replay to consistency, open, amcheck and count; the throwaway cluster goes on the way out."""
    from cuisine_db.backup.physical_restore import temporary_instance
    from cuisine_db.backup.targets import IMMEDIATE
    from cuisine_db.ops.integrity import CHECKS, verify_integrity

    manifest = resolved.manifest
    started = time.monotonic()
    with temporary_instance(settings, env, resolved, IMMEDIATE, notify=notify) as (server, reached):
        with server.connect() as conn:
            conn.execute(queries.load("test_restore/resume_replay"))
        opened = server.wait(pause=False)
        seconds = round(time.monotonic() - started, 3)
        notify(f"{manifest.name} is consistent at LSN {reached.lsn} and open after {seconds:.1f}s; running amcheck "
               f"on {manifest.database!r}")
        scratch_env = env.model_copy(update={
            "dsn": server.conninfo(manifest.database), "port": None, "pg_bin": None, "passfile": None,
            "password_env": None, "roles": {}, "protected": False, "replicas": {}})
        beside = dataclasses.replace(settings, environments={**settings.environments, env.name: scratch_env})
        checked = verify_integrity(beside, scratch_env, selected=[check for check in CHECKS if check.amcheck])
        if not checked.ok:
            first = checked.problems[0]
            raise FailedError(f"amcheck found {len(checked.problems)} problem(s) in {manifest.name} restored: "
                              f"{first.subject}: {first.evidence}",
                              hint=f"make db-verify-backup backup={manifest.name}; take a new full backup")
        with connect(beside, scratch_env, "test-restore check", start=False) as conn:
            if any(table.rows is not None for table in manifest.tables):
                tables = check_counts(conn, manifest.tables)
            else:
                tables = _count(conn)
    return TestRestoreReport(env.name, manifest.name, manifest.type, manifest.database, seconds, tables,
                             physical=True, matched_manifest=bool(manifest.tables), amcheck=checked.checked,
                             check_seconds=checked.seconds, reached_lsn=opened.lsn or reached.lsn,
                             server_version=checked.server_version, warnings=list(checked.notes))


def _count(conn: Any) -> dict[str, int]:
    counted = {}
    for schema, name in conn.execute(queries.load("test_restore/user_tables")).fetchall():
        row = conn.execute(queries.load("restore/count_rows").format(table=pgsql.Identifier(schema, name))).fetchone()
        counted[f"{schema}.{name}"] = row[0] if row else 0
    return counted
