"""`db-enable-audit`: pgaudit where the server has it, else log_statement = 'ddl'; connection logging either way.

Every setting goes through `server_settings.alter_system` (validation, restart reporting). pgaudit must be
in shared_preload_libraries, which takes a restart: the current list (pg_stat_statements on the tool's
clusters) is kept and pgaudit appended. A local cluster is restarted after the caller's confirmation, and
put back as it was if it fails to come up; a remote server is left for its operator to restart, after which
a second run creates the extension and sets pgaudit.log (pgaudit's parameters exist only once it is loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.server_settings import SettingChange, alter_system, describe, list_elements
from cuisine_db.security import defaults

DEFAULT_CLASSES = defaults.AUDIT_CLASSES
_CLASSES = ("read", "write", "function", "role", "ddl", "misc", "misc_set", "all", "none")
# Connection logging for "audit connection patterns"; the prefix matters for stderr logs (CSV and JSON
# carry these fields anyway), and UTC log times make reports unambiguous.
CONNECTION_LOGGING = {
    "log_connections": "on",
    "log_disconnections": "on",
    "log_line_prefix": "%m [%p] user=%u db=%d app=%a client=%h ",
    "log_timezone": "UTC",
}
PGAUDIT_SETTINGS = {
    # One line per table a statement touches, so writes can be counted per table.
    "pgaudit.log_relation": "on",
    # Parameter values can be personal data or secrets; the statement text is enough for an audit trail.
    "pgaudit.log_parameter": "off",
    # The catalog queries of psql and drivers would drown the trail.
    "pgaudit.log_catalog": "off",
}
FALLBACK_MISSES = [
    "writes (INSERT, UPDATE, DELETE, TRUNCATE) and reads: not logged at all, so no per-table activity",
    "statements run inside functions, procedures and DO blocks",
    "the objects a statement touched, as pgaudit resolves them (only the statement text is kept)",
    "password redaction: a CREATE/ALTER ROLE ... PASSWORD typed by hand is logged as typed "
    "(db-create-user sends only a verifier; the audit report redacts passwords)",
]


@dataclass(frozen=True, slots=True)
class AuditPlan:
    """What enabling audit logging will change, found before anything is written."""

    mode: str
    version: str | None
    preload: list[str]
    loaded: bool
    changes: dict[str, str]
    restart_needed: bool
    classes: str


@dataclass(frozen=True, slots=True)
class AuditSetup:
    """What db-enable-audit did, and what is still to do."""

    env: str
    mode: str
    classes: str | None
    changes: list[SettingChange]
    restarted: bool
    restart_pending: bool
    extension_created: bool
    complete: bool
    statement: str
    misses: list[str] = field(default_factory=list)


def normalise_classes(value: str) -> str:
    """pgaudit.log classes (`ddl, role, write`, `all, -misc`), checked against pgaudit's list."""
    words = [word.strip().lower() for word in value.split(",")]
    if not value.strip() or any(not word for word in words):
        raise UsageError(f"audit classes {value!r} name nothing", hint=f"e.g. {DEFAULT_CLASSES!r}")
    for word in words:
        if word.removeprefix("-") not in _CLASSES:
            raise UsageError(f"unknown pgaudit class {word!r}", hint=f"choose from {', '.join(_CLASSES)}")
    return ", ".join(words)


def _setting(conn: psycopg.Connection[Any], name: str) -> str:
    return describe(conn, name).setting or ""


def plan(conn: psycopg.Connection[Any], classes: str) -> AuditPlan:
    """Which settings differ from what audit logging needs, and whether that takes a restart."""
    available = conn.execute(queries.load("security/pgaudit_available")).fetchone()
    loaded = conn.execute(queries.load("security/pgaudit_loaded")).fetchone() is not None
    preload = list_elements(_setting(conn, "shared_preload_libraries"))
    wanted = dict(CONNECTION_LOGGING)
    destinations = list_elements(_setting(conn, "log_destination"))
    if not {"csvlog", "jsonlog"} & set(destinations):
        structured = "jsonlog" if conn.info.server_version >= 150000 else "csvlog"
        wanted["log_destination"] = ",".join([*destinations, structured])
        wanted["logging_collector"] = "on"
    if available is not None and "pgaudit" not in preload:
        wanted["shared_preload_libraries"] = ",".join([*preload, "pgaudit"])
    if available is None and _setting(conn, "log_statement") not in ("ddl", "mod", "all"):
        wanted["log_statement"] = "ddl"
    changes = {name: value for name, value in wanted.items() if _differs(conn, name, value)}
    restart = any(describe(conn, name).needs_restart for name in changes) or (available is not None and not loaded)
    return AuditPlan("pgaudit" if available is not None else "fallback", available[0] if available else None,
                     preload, loaded, changes, restart, classes)


def _differs(conn: psycopg.Connection[Any], name: str, value: str) -> bool:
    current = describe(conn, name)
    if name in ("shared_preload_libraries", "log_destination"):
        return list_elements(current.setting or "") != list_elements(value)
    return (current.setting or "") != value


def _restart_local(settings: Settings, env: Environment, preload: list[str]) -> None:
    """Restart; if the server does not come back, put shared_preload_libraries back and start it as it was."""
    cluster = cluster_for(settings, env)
    try:
        cluster.restart()
    except UnavailableError as exc:
        auto = cluster.datadir / "postgresql.auto.conf"
        previous = ", ".join(preload)
        lines = [f"shared_preload_libraries = '{previous}'" if line.startswith("shared_preload_libraries") else line
                 for line in auto.read_text(encoding="utf-8").splitlines()]
        # Rewritten in place: the file keeps its owner (the server's OS user) and mode.
        with auto.open("w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        cluster.start()
        raise UnavailableError(f"{env.name} did not restart with pgaudit loaded: {exc.message}",
                               hint="shared_preload_libraries was put back and the server started again") from None


def enable_audit(settings: Settings, env: Environment, *, classes: str = DEFAULT_CLASSES,
                 yes: bool = False, ask: AskWord | None = None) -> AuditSetup:
    """Configure audit logging. A local restart needs confirmation on every environment (`yes`, or the
    environment's name typed to `ask`) before any setting is changed."""
    wanted_classes = normalise_classes(classes)
    with connect(settings, env, "db-enable-audit") as conn:
        found = plan(conn, wanted_classes)
        if found.restart_needed and env.is_local:
            reasons = ", ".join(name for name in found.changes if describe(conn, name).needs_restart) or \
                "loading pgaudit"
            confirmation.require_always(env, f"Restarting {env.name}'s server (sessions are ended) to apply {reasons}",
                                        env.name, yes=yes, ask=ask)
        changes = alter_system(conn, found.changes) if found.changes else []
    restarted = False
    if found.restart_needed:
        if not env.is_local:
            return AuditSetup(env.name, found.mode, wanted_classes, changes, False, True, False, False,
                              f"restart {env.name}'s server to load {'pgaudit' if found.mode == 'pgaudit' else 'them'}"
                              f", then run make db-enable-audit env={env.name} again to finish",
                              FALLBACK_MISSES if found.mode == "fallback" else [])
        _restart_local(settings, env, found.preload)
        restarted = True
    if found.mode == "fallback":
        return AuditSetup(env.name, "fallback", None, changes, restarted, False, False, True,
                          "pgaudit is not installed on this server: falling back to log_statement = 'ddl' plus "
                          "connection logging (install the server's postgresql-<version>-pgaudit package and run "
                          "db-enable-audit again to upgrade)", FALLBACK_MISSES)
    with connect(settings, env, "db-enable-audit") as conn:
        conn.execute(queries.load("security/create_pgaudit"))
        changes += alter_system(conn, {"pgaudit.log": wanted_classes, **PGAUDIT_SETTINGS})
    return AuditSetup(env.name, "pgaudit", wanted_classes, changes, restarted, False, True, True,
                      f"pgaudit {found.version} logs {wanted_classes}, with connection logging")
