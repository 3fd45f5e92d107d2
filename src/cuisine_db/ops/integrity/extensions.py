"""The contrib extensions the checks call: amcheck (as pg_amcheck --install-missing installs it) and pg_prewarm."""

from __future__ import annotations

import psycopg

from cuisine_db import sql
from cuisine_db.errors import UnavailableError
from cuisine_db.ops.integrity.tasks import Connection

_CREATE = {"amcheck": "integrity/create_amcheck", "pg_prewarm": "integrity/create_pg_prewarm"}
# verify_heapam arrived with amcheck 1.3 (PostgreSQL 14).
_MINIMUM = {"amcheck": (1, 3), "pg_prewarm": (1, 0)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def ensure(conn: Connection, name: str) -> tuple[str, bool]:
    """The schema the extension lives in, installing it in pg_catalog when it is missing; and whether we did."""
    installed = False
    row = conn.execute(sql.load("integrity/extension_schema"), {"name": name}).fetchone()
    if row is None:
        try:
            conn.execute(sql.load(_CREATE[name]))
        except psycopg.errors.InsufficientPrivilege:
            raise UnavailableError(f"the {name} extension is not installed in this database and this role may not "
                                   "install it",
                                   hint=f"ask a superuser to run: CREATE EXTENSION {name} WITH SCHEMA pg_catalog"
                                   ) from None
        except psycopg.errors.UndefinedFile:
            raise UnavailableError(f"the server has no {name} extension (PostgreSQL's contrib package)",
                                   hint="install the contrib package of the server's version") from None
        installed = True
        row = conn.execute(sql.load("integrity/extension_schema"), {"name": name}).fetchone()
        assert row is not None  # noqa: S101 - created just above
    schema, version = str(row[0]), str(row[1])
    if _version(version) < _MINIMUM[name]:
        raise UnavailableError(f"{name} {version} is too old for these checks",
                               hint=f"run: ALTER EXTENSION {name} UPDATE")
    return schema, installed
