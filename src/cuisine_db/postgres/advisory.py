"""Advisory locks taken by polling a try-lock, so that a session waiting for one holds no snapshot meanwhile."""

from __future__ import annotations

from typing import Any

import psycopg

from cuisine_db import sql


def try_lock(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> bool | None:
    """True once `statement` (a `pg_try_advisory_lock` in `sql/`) took the lock; None while another session holds
    it: the condition `waiting.poll_until` polls."""
    row = conn.execute(sql.load(statement), params).fetchone()
    return True if row and row[0] else None
