"""Validation of what operators type for the security commands: role names, privileges, tables, schemas.

Everything is checked before anything is sent, so bad input is one clear line, exit 2, and no change.
Names are restricted to what PostgreSQL folds unquoted identifiers to (lowercase ASCII, digits,
underscore, at most 63 bytes): a role an operator types is then the role psql shows, with no quoting
surprises; psycopg's `sql.Identifier` still quotes everything that reaches the server.
"""

from __future__ import annotations

import re

from cuisine_db.errors import UsageError

_ROLE = re.compile(r"^[a-z_][a-z0-9_]*$")
_OBJECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
MAX_NAME_BYTES = 63
# Names the server gives a meaning of its own in role positions.
_RESERVED_ROLES = {"public", "none", "current_user", "current_role", "session_user", "all"}

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
MAINTAIN = "MAINTAIN"  # PostgreSQL 17+
ALL = "ALL"


def _shown(value: str) -> str:
    """The value quoted for an error line: control characters escaped, long values cut."""
    text = value.encode("unicode_escape").decode("ascii")
    return repr(text if len(text) <= 80 else text[:77] + "...")


def role_name(value: str, what: str = "username") -> str:
    """A role name an operator may type; anything else is a usage error naming the rule it breaks."""
    name = value.strip()
    if not name:
        raise UsageError(f"{what} is empty", hint=f"give {what}=NAME (lowercase letters, digits, _)")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UsageError(f"{what} {_shown(name)} is longer than {MAX_NAME_BYTES} bytes",
                         hint="PostgreSQL would cut it silently; choose a shorter name")
    if not _ROLE.match(name):
        raise UsageError(f"{what} {_shown(name)} is not a plain role name",
                         hint="use lowercase ASCII letters, digits and _, starting with a letter or _")
    if name.startswith("pg_") or name in _RESERVED_ROLES:
        raise UsageError(f"{what} {_shown(name)} is reserved by PostgreSQL", hint="choose another name")
    return name


def object_name(value: str, what: str) -> str:
    """A table or schema name: a plain identifier of at most 63 bytes (case is kept)."""
    name = value.strip()
    if not name:
        raise UsageError(f"{what} is empty")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES or not _OBJECT.match(name):
        raise UsageError(f"{what} {_shown(name)} is not a plain identifier",
                         hint="letters, digits, _ and $, starting with a letter or _, at most 63 bytes")
    return name


def privileges(value: str, server_version: int) -> list[str]:
    """`SELECT,INSERT` or `ALL` as privilege keywords, in PostgreSQL's order, without duplicates."""
    known = [*TABLE_PRIVILEGES, *([MAINTAIN] if server_version >= 170000 else [])]
    words = [word.strip().upper() for word in value.split(",")]
    if not value.strip() or any(not word for word in words):
        raise UsageError(f"permission {_shown(value)} names no privilege",
                         hint=f"e.g. permission=SELECT or permission=SELECT,INSERT; known: {', '.join(known)}, ALL")
    words = [ALL if word == "ALL PRIVILEGES" else word for word in words]
    unknown = [word for word in words if word not in known and word != ALL]
    if unknown:
        raise UsageError(f"unknown table privilege {_shown(unknown[0])}",
                         hint=f"choose from {', '.join(known)}, or ALL")
    if ALL in words:
        if len(set(words)) > 1:
            raise UsageError("permission=ALL already means every privilege; give ALL alone")
        return [ALL]
    return [word for word in known if word in words]


def table_list(value: str) -> list[tuple[str | None, str]] | None:
    """`tables=users,recipes` (optionally `schema.table`) as (schema, table) pairs; None for `ALL`."""
    if value.strip().upper() == ALL:
        return None
    parts = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not part for part in parts):
        raise UsageError(f"tables {_shown(value)} names no table", hint="e.g. tables=users,recipes or tables=ALL")
    found: list[tuple[str | None, str]] = []
    for part in parts:
        schema, _, table = part.rpartition(".")
        pair = (object_name(schema, "schema") if schema else None, object_name(table, "table"))
        if pair not in found:
            found.append(pair)
    return found
