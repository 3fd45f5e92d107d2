"""Restoring chosen tables from a logical backup, in one transaction, leaving every other table untouched.

For a table that exists: foreign keys from and to it are set aside, its user triggers disabled, it is
truncated (new storage for the heap and its indexes, so corrupted pages go too) and its rows are copied in
straight from the repository; then the foreign keys are added back, which validates them: rows elsewhere
pointing at rows the backup lacks make the whole restore roll back with the constraint named. Indexes and
constraints the backup has and the table lost are recreated. A table that does not exist is created from
the backup's definition, with its sequences, indexes and constraints. Sequences only ever move forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.backup import toc
from cuisine_db.backup.backup_names import TableName
from cuisine_db.backup.catalog import Resolved, match_table
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.restore import RestoreReport, source_for
from cuisine_db.backup.workspace import database_of, restore_client, scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UnavailableError, UsageError

Progress = Callable[[int], None]
Table = tuple[str, str]
LOCK_TIMEOUT = "30s"
_TRAILER = b"\\.\n\n\n"
_ENABLE = {"O": "", "A": "ALWAYS", "R": "REPLICA"}


class _CopySink:
    """Feeds a COPY with the backup's COPY text, holding back pg_dump's end-of-data trailer (`\\.` and two
    empty lines), which COPY through the protocol does not need."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.held = b""

    def write(self, data: bytes) -> int:
        joined = self.held + data
        self.held = joined[-len(_TRAILER):]
        if len(joined) > len(_TRAILER):
            self.copy.write(joined[: -len(_TRAILER)])
        return len(data)

    def close(self) -> None:
        if self.held and self.held != _TRAILER:
            self.copy.write(self.held)
        self.held = b""


def _qualified(table: Table) -> str:
    return f"{table[0]}.{table[1]}"


def _ident(table: Table) -> sql.Identifier:
    return sql.Identifier(*table)


def _requested(resolved: Resolved, tables: Sequence[TableName] | None) -> list[Table]:
    manifest = resolved.manifest
    if manifest.type == "schema":
        raise UsageError(f"{manifest.name} is a schema backup: it holds no rows to restore")
    if manifest.type in ("full", "incremental"):
        raise UsageError(f"{manifest.name} is a physical backup; table restores from those come with the PITR issue")
    if tables is None:
        return [(t.schema, t.name) for t in manifest.tables if t.rows is not None]
    chosen = []
    for table in tables:
        qualified = match_table(manifest, table)
        entry = manifest.table(qualified) if qualified else None
        if entry is None or entry.rows is None:
            raise UsageError(f"backup {manifest.name} holds no rows of table {table}",
                             hint="cuisine-db backup show NAME lists its tables; backup=latest picks one that has them")
        chosen.append((entry.schema, entry.name))
    return chosen


def _copy_statements(program: Path, folder: Path, ids: dict[Table, int]) -> dict[Table, toc.Statement]:
    for dump_id in ids.values():
        (folder / f"{dump_id}.dat").write_bytes(b"")  # pg_restore opens the data file even to print COPY
    found = {s.relation: s for s in toc.statements(toc.schema_sql(program, folder, entries=ids.values()))
             if s.kind == "CopyStmt" and s.relation is not None}
    missing = [t for t in ids if t not in found]
    if missing:
        raise FailedError(f"the backup's table of contents has no COPY for {', '.join(map(_qualified, missing))}")
    return found


def _related(statements: list[toc.Statement], tables: set[Table]) -> list[toc.Statement]:
    """The statements that build these tables: theirs, and those of sequences they own."""
    owned = {s.relation for s in statements if s.owned_by in tables}
    return [s for s in statements if s.relation in tables or (s.relation is not None and s.relation in owned)]


def _allowed(conn: psycopg.Connection[Any], statements: list[toc.Statement], warnings: list[str]
             ) -> list[toc.Statement]:
    """Skip ownership changes and grants for roles this server lacks (another environment's), saying so."""
    names = sorted(set().union(*(s.owner_roles | s.other_roles for s in statements))) if statements else []
    present = {row[0] for row in conn.execute(queries.load("restore/existing_roles"), {"names": names})}
    kept = []
    skipped: set[str] = set()
    for statement in statements:
        lacking = (statement.owner_roles | statement.other_roles) - present
        if lacking and statement.kind in ("AlterTableStmt", "AlterOwnerStmt", "GrantStmt") and (
                statement.owner_roles or statement.kind == "GrantStmt"):
            skipped |= lacking
            continue
        kept.append(statement)
    if skipped:
        warnings.append(f"roles {', '.join(sorted(skipped))} do not exist here: their ownership and grants "
                        "were not restored")
    return kept


def _state(conn: psycopg.Connection[Any], tables: Sequence[Table]) -> dict[Table, tuple[int, str]]:
    rows = conn.execute(queries.load("restore/table_state"),
                        {"schemas": [t[0] for t in tables], "names": [t[1] for t in tables]}).fetchall()
    return {(row[0], row[1]): (row[2], row[3]) for row in rows}


def _run_statements(conn: psycopg.Connection[Any], statements: list[toc.Statement]) -> None:
    for statement in statements:
        conn.execute(statement.sql)  # SQL of the backup's own schema, as pg_restore would run it


def restore_tables(settings: Settings, env: Environment, resolved: Resolved, tables: Sequence[TableName] | None, *,
                   notify: Callable[[str], None] = lambda _: None,
                   progress: Callable[[int], Progress | None] = lambda _: None) -> RestoreReport:
    """Replace the rows of the chosen tables (all the backup's tables when None) with the backup's, atomically."""
    manifest = resolved.manifest
    chosen = _requested(resolved, tables)
    source: BackupSource = source_for(settings, env, resolved)
    started = time.monotonic()
    warnings: list[str] = []
    by_table = {(t.split(".", 1)[0], t.split(".", 1)[1]): entry
                for entry in manifest.objects if (t := entry.table) is not None}
    with scratch(settings, f"restore-tables-{manifest.name}") as work, \
            connect(settings, env, "restore-tables", autocommit=False) as conn:
        client = restore_client(settings, manifest.dump_major, conn.info.server_version // 10000)
        program = client.program("pg_restore")
        folder = source.write_toc(work / "toc")
        data = toc.data_files(toc.read_list(program, folder))
        ids = {table: dump_id for dump_id, entry in data.items()
               if (table := (entry.schema or "public", entry.name)) in chosen}
        copies = _copy_statements(program, folder, ids)
        pre = toc.statements(toc.schema_sql(program, folder, section="pre-data")) if manifest.type != "data" else []
        post = toc.statements(toc.schema_sql(program, folder, section="post-data")) if manifest.type != "data" else []
        conn.execute(queries.load("restore/set_lock_timeout"), {"value": LOCK_TIMEOUT})
        existing = _state(conn, chosen)
        missing = [table for table in chosen if table not in existing]
        for table in existing:
            if existing[table][1] != "r":
                raise UsageError(f"{_qualified(table)} is not a plain table here (kind {existing[table][1]!r})",
                                 hint="partitioned tables are restored partition by partition: name the partitions")
        if missing and manifest.type == "data":
            raise UsageError(f"table {', '.join(map(_qualified, missing))} does not exist in {env.name!r}, and a data "
                             "backup holds no table definitions", hint=f"make db-migrate env={env.name} first")
        notify(f"{env.name}: restoring {', '.join(map(_qualified, chosen))} from {manifest.name} in one transaction")
        oids = [existing[table][0] for table in existing]
        names_before = {row[0] for row in conn.execute(queries.load("restore/relation_names"), {"oids": oids})}
        try:
            # Tables the target lacks are created from the backup first.
            _run_statements(conn, _allowed(conn, _related(pre, set(missing)), warnings))
            if existing:
                conn.execute(queries.load("restore/lock_tables").format(
                    tables=sql.SQL(", ").join(_ident(t) for t in existing)))
            foreign = conn.execute(queries.load("restore/foreign_keys"), {"oids": oids}).fetchall()
            for schema, table_name, name, _ in foreign:
                conn.execute(queries.load("restore/drop_constraint").format(
                    table=sql.Identifier(schema, table_name), name=sql.Identifier(name)))
            triggers = conn.execute(queries.load("restore/user_triggers"), {"oids": oids}).fetchall()
            for schema, table_name, name, _ in triggers:
                conn.execute(queries.load("restore/disable_trigger").format(
                    table=sql.Identifier(schema, table_name), name=sql.Identifier(name)))
            if existing:
                conn.execute(queries.load("restore/truncate").format(
                    tables=sql.SQL(", ").join(_ident(t) for t in existing)))
            counted: dict[str, int] = {}
            report = progress(sum(by_table[t].size for t in chosen if t in by_table))
            for table in chosen:
                entry = by_table.get(table)
                if entry is None:
                    raise FailedError(f"backup {manifest.name} lists no data object for {_qualified(table)}")
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in copies[table].columns)
                statement = queries.load("restore/copy_from").format(table=_ident(table), columns=columns)
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    sink = _CopySink(copy)
                    fetched = source.stream(entry, sink, progress=report)
                    sink.close()
                counted[_qualified(table)] = fetched.rows or 0
            # Indexes and constraints: all of a created table's; those an existing table lost.
            rebuild = _related(post, set(missing)) + [
                s for s in _related(post, set(existing)) if s.name is not None and s.name not in names_before]
            for rebuilt in rebuild:
                if rebuilt.relation in existing:
                    warnings.append(f"recreated {rebuilt.name} on {_qualified(rebuilt.relation)} from the backup")
            _run_statements(conn, _allowed(conn, rebuild, warnings))
            for schema, table_name, name, definition in foreign:
                conn.execute(queries.load("restore/add_constraint").format(
                    table=sql.Identifier(schema, table_name), name=sql.Identifier(name),
                    definition=sql.SQL(definition)))  # the server's own pg_get_constraintdef text
            for schema, table_name, name, enabled in triggers:
                conn.execute(queries.load("restore/enable_trigger").format(
                    table=sql.Identifier(schema, table_name), name=sql.Identifier(name),
                    mode=sql.SQL(_ENABLE.get(enabled, ""))))
            all_oids = [oid for oid, _ in _state(conn, chosen).values()]
            for sequence, schema, table_name, column in conn.execute(queries.load("restore/owned_sequences"),
                                                                     {"oids": all_oids}).fetchall():
                conn.execute(queries.load("restore/bump_sequence").format(
                    column=sql.Identifier(column), table=sql.Identifier(schema, table_name)),
                    {"sequence": sequence})
            conn.commit()
        except psycopg.errors.ForeignKeyViolation as exc:
            conn.rollback()
            raise FailedError(f"restoring would break a foreign key: {exc.diag.message_primary} "
                              f"({exc.diag.message_detail or ''}); nothing was changed",
                              hint="add the referencing table to tables= so both come from the backup, or fix "
                                   "those rows first") from None
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
            raise UnavailableError(f"another session holds a lock on the tables for more than {LOCK_TIMEOUT}; "
                                   "nothing was changed", hint="retry, or enable maintenance mode first") from None
        except BaseException:
            conn.rollback()
            raise
        conn.autocommit = True
        conn.execute(queries.load("restore/analyze_tables").format(
            tables=sql.SQL(", ").join(_ident(t) for t in chosen)))
    for qualified, rows in counted.items():
        expected = manifest.table(qualified)
        if expected is not None and expected.rows != rows:  # stream() already refuses this; never silently
            raise FailedError(f"{qualified}: restored {rows} rows, the manifest says {expected.rows}")
    return RestoreReport(env.name, manifest.name, manifest.type, database_of(settings, env), None,
                         round(time.monotonic() - started, 3), counted, warnings)
