"""What the integrity checks look at: the database's relations, the tables an operator names, and which relation
an error message's file path points to."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from cuisine_db import sql
from cuisine_db.errors import UsageError

# "invalid page in block 5 of relation base/16384/16601", "could not open file \"base/16384/16601.1\"", ...
_FILE_PATH = re.compile(
    r"\b((?:base|global|pg_tblspc)/[0-9A-Za-z_./-]*?\d+)(?:_(fsm|vm|init))?(?:\.\d+)?(?=[\"\s:,]|$)")
_TABLE_NAME = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$")
FORK_NAMES = {"main": "data", "fsm": "free space map", "vm": "visibility map", "init": "init fork"}


@dataclass(frozen=True, slots=True)
class Relation:
    """One relation with storage, and the table that owns it (itself, for a table)."""

    oid: int
    schema: str
    name: str
    display: str  # schema.name, quoted where PostgreSQL needs it
    kind: str  # pg_class.relkind: r, m, t, i, S
    access_method: str
    persistence: str
    populated: bool
    valid: bool
    ready: bool
    filepath: str | None
    pages: int
    table_oid: int
    table_schema: str
    table_name: str
    table_arg: str  # the owning table as the runbook's tables= takes it (no schema for public)

    @property
    def is_heap(self) -> bool:
        return self.kind in ("r", "m", "t")

    @property
    def is_index(self) -> bool:
        return self.kind == "i"

    @property
    def is_btree(self) -> bool:
        return self.kind == "i" and self.access_method == "btree"

    @property
    def is_toast(self) -> bool:
        return self.schema == "pg_toast" or self.schema.startswith("pg_toast_temp")

    @property
    def is_catalog(self) -> bool:
        return self.table_schema in ("pg_catalog", "information_schema")

    @property
    def checkable(self) -> bool:
        """amcheck refuses unpopulated materialized views and invalid or unready indexes."""
        return self.populated and self.valid and self.ready


class Catalog:
    """The relations of one database, found by oid, by name or by the file path in an error message."""

    def __init__(self, relations: Iterable[Relation]) -> None:
        self.relations = list(relations)
        self.by_oid = {rel.oid: rel for rel in self.relations}
        self.by_display = {rel.display: rel for rel in self.relations}
        self.by_plain = {f"{rel.schema}.{rel.name}": rel for rel in self.relations}
        self.by_path = {rel.filepath: rel for rel in self.relations if rel.filepath}

    def owner(self, rel: Relation) -> Relation:
        return self.by_oid.get(rel.table_oid, rel)

    def named_in(self, message: str) -> tuple[Relation, str] | None:
        """The relation (and fork) whose file an error message names, if it names one we know."""
        for found in _FILE_PATH.finditer(message):
            rel = self.by_path.get(found.group(1))
            if rel is not None:
                return rel, found.group(2) or "main"
        return None

    def in_scope(self, tables: frozenset[int] | None) -> list[Relation]:
        """Every relation, or those belonging to the given tables (their indexes, TOAST and sequences too)."""
        if tables is None:
            return list(self.relations)
        return [rel for rel in self.relations if rel.table_oid in tables]


def load(conn: psycopg.Connection[Any]) -> Catalog:
    with conn.cursor(row_factory=class_row(Relation)) as cursor:
        return Catalog(cursor.execute(sql.load("integrity/relations")).fetchall())


def parse_table_names(text: str | Sequence[str]) -> list[str]:
    """tables=a,b,schema.c -> names; anything but plain (optionally schema-qualified) identifiers is bad input."""
    items = text.split(",") if isinstance(text, str) else [part for item in text for part in item.split(",")]
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise UsageError("no tables given", hint="tables=users,recipes")
    for name in names:
        if not _TABLE_NAME.match(name):
            raise UsageError(f"{name[:60]!r} is not a table name",
                             hint="table names are letters, digits and _ (optionally schema.table), comma-separated")
    return list(dict.fromkeys(names))


def resolve_tables(conn: psycopg.Connection[Any], names: Sequence[str]) -> dict[str, int]:
    """Each name's table oid (partitioned tables bring their partitions); any unknown name is bad input."""
    found: dict[str, int] = {}
    unknown = []
    partitioned = []
    for name in names:
        row = conn.execute(sql.load("integrity/resolve_table"), {"name": name}).fetchone()
        if row is None:
            unknown.append(name)
        else:
            found[name] = int(row[0])
            if row[1] == "p":
                partitioned.append(int(row[0]))
    if unknown:
        raise UsageError(f"unknown table{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                         hint="see the tables with: make db-table-sizes")
    if partitioned:
        for (oid,) in conn.execute(sql.load("integrity/partitions"), {"tables": partitioned}).fetchall():
            found[f"partition {oid}"] = int(oid)
    return found
