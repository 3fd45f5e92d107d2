"""The connection every diagnostic opens: named, autocommit, bounded by timeouts, with their errors explained."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError
from cuisine_db.postgres.target import Target

STATEMENT_TIMEOUT = "30s"
# Size functions open tables and would queue behind an ACCESS EXCLUSIVE lock; the queries skip tables
# locked when they start, and this bounds the wait for one locked just after.
LOCK_TIMEOUT = "2s"


def set_timeouts(conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.load("diagnose/set_timeouts"),
                 {"statement_timeout": STATEMENT_TIMEOUT, "lock_timeout": LOCK_TIMEOUT})


@contextmanager
def diagnostic(settings: Settings, env: Environment, command: str, *, start: bool = True,
               purpose: str = "monitoring", target: Target | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A diagnostic session, as the environment's monitoring role unless told otherwise (postgres/purposes.py),
    on a replica when routing chose one (`target`); timeouts become errors that say what happened and what to do."""
    with connect(settings, env, command, start=start, purpose=purpose, target=target) as conn:
        set_timeouts(conn)
        try:
            yield conn
        except psycopg.errors.LockNotAvailable:
            raise UnavailableError(f"a table of {env.name!r} was locked while {command} read its size "
                                   f"(waited {LOCK_TIMEOUT})",
                                   hint=f"run it again; make db-show-locks env={env.name} shows who holds it") from None
        except psycopg.errors.QueryCanceled:
            raise UnavailableError(f"{env.name!r} did not answer {command} within {STATEMENT_TIMEOUT}",
                                   hint="the server may be overloaded: make db-connections and db-show-locks "
                                        "are the lightest looks") from None
