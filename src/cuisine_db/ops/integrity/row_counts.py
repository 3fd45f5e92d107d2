"""Row counts against the newest backup's manifest (db-verify-integrity, db-verify-tables).

Each table is compared with the newest complete backup of the environment that counted its rows (logical, data
or tables backups count every table's rows as they stream). A live database keeps changing after its backup, so
a difference is a problem only when nothing the server recorded explains it:
- as many rows as the backup: nothing to say;
- more rows than the backup: rows were added since; reported as info (exit 0);
- fewer rows, but the server counted at least as many deletes from the table (`pg_stat_all_tables.n_tup_del`,
  counted since its statistics began, so deletes made before the backup count too): reported as info;
- fewer rows, and the statistics began after the rows now there were written (fewer inserts counted than rows:
  a physical restore, a crash or a statistics reset since): uncounted deletes cannot be told from loss, info;
- otherwise rows went missing without a DELETE (a damaged or truncated file, a TRUNCATE): a finding, exit 1,
  with the table restore that brings them back.
Right after `db-restore-tables backup=latest` the restored tables hold exactly the backup's rows, so any
difference there is found.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql as pgsql

from cuisine_db import sql
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.findings import Finding
from cuisine_db.ops.integrity.catalog import Relation
from cuisine_db.ops.integrity.damage import restore_tables_command
from cuisine_db.ops.integrity.tasks import Connection, Outcome, Task


@dataclass(frozen=True, slots=True)
class Baseline:
    """A table's row count in the newest backup that counted it."""

    backup: str
    taken_at: datetime
    rows: int


def baselines(settings: Settings, env: Environment, notes: list[str]) -> dict[str, Baseline]:
    """Per table (schema.name), its rows in the newest complete backup of `env` holding them; a note when there is
    none or the repository cannot be read (the other checks still run)."""
    from cuisine_db.backup.catalog import list_backups

    try:
        entries = list_backups(settings, env)
    except CuisineDbError as exc:
        notes.append(f"row counts not compared with a backup: {exc.message}")
        return {}
    found: dict[str, Baseline] = {}
    for entry in entries:  # oldest first: newer backups overwrite
        if entry.manifest is None:
            continue
        for table in entry.manifest.tables:
            if table.rows is not None:
                found[table.qualified] = Baseline(entry.name, entry.manifest.started_at, table.rows)
    if not found:
        notes.append(f"row counts not compared: {env.name} has no logical backup yet "
                     f"(make db-backup env={env.name} type=logical)")
    return found


def _compare(env_name: str, rel: Relation, baseline: Baseline, conn: Connection) -> Outcome:
    table = pgsql.Identifier(rel.schema, rel.name)
    row = conn.execute(sql.load("integrity/count_rows").format(table=table)).fetchone()
    rows = int(row[0]) if row else 0
    if rows == baseline.rows:
        return Outcome()
    when = baseline.taken_at.strftime("%Y-%m-%d %H:%M UTC")
    said = f"{rows} rows, {baseline.rows} in backup {baseline.backup} ({when})"
    if rows > baseline.rows:
        return Outcome(findings=[Finding("row count", "info", rel.display, f"{said}: rows added since the backup",
                                         "nothing to do")])
    counted = conn.execute(sql.load("integrity/rows_deleted"), {"oid": rel.oid}).fetchone()
    inserted, deleted = (int(counted[0] or 0), int(counted[1] or 0)) if counted else (0, 0)
    missing = baseline.rows - rows
    if missing <= deleted:
        return Outcome(findings=[Finding(
            "row count", "info", rel.display,
            f"{said}: the server counted {deleted} deleted row(s) in this table, enough to explain it",
            "nothing to do if those deletes were meant")])
    if inserted < rows:
        # The statistics began after these rows were written (a physical restore, a crash, a reset): deletes made
        # since the backup may have gone uncounted, so loss cannot be told from them.
        return Outcome(findings=[Finding(
            "row count", "info", rel.display,
            f"{said}: the server's statistics began after these rows were written (a physical restore, a crash or "
            "a reset), so deletes since the backup cannot be told from loss",
            f"make db-verify-tables env={env_name} tables={rel.table_arg} checks the pages themselves")])
    return Outcome(findings=[Finding(
        "row count", "error", rel.display,
        f"{said}: {missing} row(s) fewer, and the server counted only {deleted} deleted (a TRUNCATE or a damaged "
        "file is not counted)",
        f"{restore_tables_command(env_name, [rel.table_arg])} if they were lost; if they were removed on purpose, "
        f"take a new backup: make db-backup env={env_name} type=logical")])


def tasks(baseline_of: Mapping[str, Baseline], env_name: str, relations: list[Relation]) -> list[Task]:
    """One count per table that is in scope and counted by a backup."""
    planned = []
    for rel in relations:
        baseline = baseline_of.get(f"{rel.schema}.{rel.name}")
        if baseline is None or rel.kind != "r":
            continue
        planned.append(Task(f"row count {rel.display}", max(rel.pages // 4, 1),
                            functools.partial(_compare, env_name, rel, baseline), relation=rel, source="row count"))
    return planned
