"""Table and column names as operators type them on the command line (`recipes`, `public.recipes`,
`user_id,created_at`): checked here, then looked up in the catalogs; never pasted into SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.errors import UsageError

# A plain identifier (folded to lower case, as PostgreSQL does) or a double-quoted one (kept as written).
_PART = re.compile(r'\s*(?:(?P<plain>[A-Za-z_][A-Za-z0-9_$]*)|"(?P<quoted>(?:[^"]|"")+)")\s*')


def _parts(text: str, what: str, separator: str) -> list[str]:
    example = "recipes or public.recipes" if what == "table" else "user_id,created_at"
    parts: list[str] = []
    position = 0
    while True:
        found = _PART.match(text, position)
        if found is None:
            raise UsageError(f"{what} {text!r} is not a name", hint=f"e.g. {example}")
        parts.append(found["plain"].lower() if found["plain"] else found["quoted"].replace('""', '"'))
        position = found.end()
        if position == len(text):
            return parts
        if text[position] != separator:
            raise UsageError(f"{what} {text!r} is not a name", hint=f"e.g. {example}")
        position += 1


def table_name(text: str) -> tuple[str | None, str]:
    """'recipes' -> (None, 'recipes'); 'app.recipes' -> ('app', 'recipes')."""
    if not text.strip():
        raise UsageError("no table given", hint="e.g. table=recipes")
    parts = _parts(text, "table", ".")
    if len(parts) > 2:
        raise UsageError(f"table {text!r} has too many parts", hint="schema.table at most")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def column_names(text: str) -> list[str]:
    """'user_id, created_at' -> ['user_id', 'created_at']; duplicates and empty lists are refused."""
    if not text.strip():
        raise UsageError("no columns given", hint="e.g. columns=user_id,created_at")
    columns = _parts(text, "columns", ",")
    if len(set(columns)) != len(columns):
        raise UsageError(f"columns {text!r} names a column twice")
    if len(columns) > 32:
        raise UsageError("an index has at most 32 columns")
    return columns


@dataclass(frozen=True, slots=True)
class Table:
    table_oid: int
    schema: str
    table_name: str
    kind: str
    columns: list[str]

    @property
    def shown(self) -> str:
        return self.table_name if self.schema == "public" else f"{self.schema}.{self.table_name}"


def find_table(conn: psycopg.Connection[Any], text: str) -> Table:
    """The table a command-line name refers to; a usage error naming it when there is none."""
    schema, name = table_name(text)
    found = queries.one_or_none(conn, Table, queries.load("performance/find_table"), {"schema": schema, "name": name})
    if found is None:
        raise UsageError(f"no table {text!r} in database {conn.info.dbname!r}",
                         hint="see the tables with: make db-table-sizes")
    if found.kind not in ("r", "p", "m"):
        raise UsageError(f"{text!r} is not a table (relkind {found.kind})")
    return found
