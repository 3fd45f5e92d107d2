"""Backup names (`<env>-<type>-<UTC yyyymmddThhmmssZ>`), backup types, and the `tables=` list, validated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cuisine_db.errors import UsageError

# Physical types are pg_basebackup (backup/physical.py); logical ones are pg_dump's directory format.
PHYSICAL_TYPES = ("full", "incremental")
LOGICAL_TYPES = ("logical", "schema", "data", "tables")
TYPES = (*PHYSICAL_TYPES, *LOGICAL_TYPES)
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(rf"^(?P<env>[a-z][a-z0-9_-]{{0,30}})-(?P<type>{'|'.join(TYPES)})-(?P<stamp>\d{{8}}T\d{{6}}Z)$")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
_TABLE = re.compile(rf"^({_IDENTIFIER}\.)?{_IDENTIFIER}$")


@dataclass(frozen=True, slots=True)
class BackupName:
    env: str
    type: str
    taken_at: datetime

    def __str__(self) -> str:
        return f"{self.env}-{self.type}-{self.taken_at.strftime(STAMP_FORMAT)}"


def make(env: str, kind: str, at: datetime) -> BackupName:
    return BackupName(env, kind, at.astimezone(UTC).replace(microsecond=0))


def parse(name: str) -> BackupName:
    """A backup name, or exit 2: names come from operators and must never reach a path unchecked."""
    found = _NAME.match(name)
    if not found:
        raise UsageError(f"bad backup name {name!r}",
                         hint="names look like production-logical-20250315T010000Z; `make db-backups env=E` lists "
                              "them, or use backup=latest")
    taken = datetime.strptime(found["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    return BackupName(found["env"], found["type"], taken)


def check_type(kind: str) -> str:
    if kind not in TYPES:
        raise UsageError(f"unknown backup type {kind!r}", hint=f"type is one of {', '.join(TYPES)}")
    return kind


@dataclass(frozen=True, slots=True, order=True)
class TableName:
    """A table as the operator named it; `schema` is None when unqualified."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_tables(value: str | None) -> list[TableName]:
    """`users,recipes` or `public.users`: plain identifiers only (folded to lower case, as SQL does).
    Quotes, semicolons, spaces or anything else are refused before anything runs."""
    if value is None or not value.strip():
        raise UsageError("give the tables: tables=users,recipes")
    found: list[TableName] = []
    for item in value.split(","):
        item = item.strip()
        if not _TABLE.match(item):
            raise UsageError(f"bad table name {item!r}",
                             hint="tables= takes plain names like users or public.users, separated by commas")
        schema, _, name = item.lower().rpartition(".")
        table = TableName(schema or None, name)
        if table not in found:
            found.append(table)
    return found
