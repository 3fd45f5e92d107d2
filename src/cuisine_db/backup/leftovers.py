"""What restores leave on a server: the database they replaced (kept until dropped) and interrupted attempts."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.backup.restore import FRESH, KEPT, TEST, admin_database, leftover_pattern
from cuisine_db.backup.workspace import database_of
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled

# Most specific first: "_test_restore_" and "_pre_restore_" both end like "_restore_".
_KINDS = {TEST: "test restore", KEPT: "replaced by a restore", FRESH: "interrupted restore"}


@dataclass(frozen=True, slots=True)
class Leftover:
    name: str
    kind: str
    bytes: int
    sessions: int
    comment: str | None


def find(settings: Settings, env: Environment) -> list[Leftover]:
    pattern = leftover_pattern(database_of(settings, env))
    with connect(settings, env, "restore leftovers", dbname=admin_database(settings, env)) as conn:
        rows = conn.execute(queries.load("restore/leftovers"), {"pattern": pattern}).fetchall()
    found = []
    for name, size, comment, sessions in rows:
        kind = next(label for key, label in _KINDS.items() if re.search(rf"_{key}_\d{{8}}T", name))
        found.append(Leftover(name, kind, size, sessions, comment))
    return found


def get(settings: Settings, env: Environment, name: str) -> Leftover:
    """A leftover by name; any other database name is refused, so this can never drop a live database."""
    database = database_of(settings, env)
    if not re.match(leftover_pattern(database), name):
        raise UsageError(f"{name!r} is not a restore leftover of {env.name}'s database {database!r}",
                         hint=f"cuisine-db restore leftovers --env {env.name} lists them")
    for item in find(settings, env):
        if item.name == name:
            return item
    raise UsageError(f"there is no database {name!r} on {env.name}")


def drop(settings: Settings, env: Environment, item: Leftover) -> None:
    with connect(settings, env, "restore drop-leftover", dbname=admin_database(settings, env)) as conn:
        try:
            conn.execute(queries.load("restore/drop_database").format(name=sql.Identifier(item.name)))
        except psycopg.errors.ObjectInUse:
            raise RefusedError(f"{item.name!r} is in use by another session; it was not dropped",
                               hint="if a restore is running, let it finish") from None


def drop_named(settings: Settings, env: Environment, name: str, *, yes: bool = False, ask: Ask | None = None
               ) -> Leftover:
    """restore drop-leftover, journaled: drop the leftover called `name` (only a leftover; a protected environment
    asks first); what was dropped."""
    with journaled(settings, env, "restore drop-leftover", {"database": name}):
        item = get(settings, env, name)
        confirmation.require(env, f"Dropping database {item.name!r} ({item.kind}, {item.bytes:,} bytes)", yes=yes,
                             ask=ask)
        drop(settings, env, item)
    return item
