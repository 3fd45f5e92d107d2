"""What log records mean for an audit: logins, failed logins, and role, DDL and write statements.

pgaudit's lines (`AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.t,...`) say it themselves. Without
pgaudit, `log_statement` lines carry only the statement text: PostgreSQL's own parser (pglast) tells a
GRANT from a CREATE TABLE from an INSERT and names the tables written. Where a session has pgaudit lines
its log_statement lines are ignored, so nothing is counted twice.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime

import pglast
from pglast import ast

from cuisine_db.security.logs import LogRecord

ROLE, DDL, WRITE = "role", "ddl", "write"
_AUDIT_PREFIX = "AUDIT: "
_STATEMENT = re.compile(r"^(?:statement|execute [^:]*): (?P<text>.*)$", re.DOTALL)
_AUTHORIZED = re.compile(r"^(?:replication )?connection authorized: user=(?P<user>\S+)(?: database=(?P<db>\S+))?"
                         r"(?:.*?application_name=(?P<app>.*?))?(?: SSL enabled.*| GSS.*)?$")
_PASSWORD = re.compile(r"(PASSWORD\s+)('(?:[^']|'')*'|\S+)", re.IGNORECASE)
_FAILED_LOGIN_STATES = {"28P01", "28000"}
_ROLE_NODES = (ast.CreateRoleStmt, ast.AlterRoleStmt, ast.AlterRoleSetStmt, ast.DropRoleStmt, ast.GrantStmt,
               ast.GrantRoleStmt, ast.AlterDefaultPrivilegesStmt, ast.ReassignOwnedStmt, ast.DropOwnedStmt)
_WRITE_NODES = {ast.InsertStmt: "INSERT", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE",
                ast.MergeStmt: "MERGE", ast.TruncateStmt: "TRUNCATE", ast.CopyStmt: "COPY"}
# Statements that neither define, grant nor write: logged by log_statement = 'all', not audit events.
_QUIET_NODES = (ast.SelectStmt, ast.TransactionStmt, ast.VariableSetStmt, ast.VariableShowStmt, ast.ExplainStmt,
                ast.DeclareCursorStmt, ast.FetchStmt, ast.ClosePortalStmt, ast.PrepareStmt, ast.ExecuteStmt,
                ast.DeallocateStmt, ast.ListenStmt, ast.NotifyStmt, ast.UnlistenStmt, ast.DiscardStmt,
                ast.CheckPointStmt, ast.LockStmt, ast.DoStmt, ast.CallStmt, ast.VacuumStmt,
                ast.ConstraintsSetStmt, ast.LoadStmt)
_LABEL_SKIP = {"OR", "REPLACE", "UNIQUE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "IF", "NOT",
               "EXISTS", "CONCURRENTLY", "RECURSIVE", "TRUSTED", "PROCEDURAL", "DEFAULT"}


@dataclass(frozen=True, slots=True)
class Login:
    time: datetime
    user: str
    database: str | None
    client: str | None
    application: str | None


@dataclass(frozen=True, slots=True)
class FailedLogin:
    time: datetime
    user: str | None
    database: str | None
    client: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A role change, DDL statement or write, as pgaudit or log_statement recorded it."""

    time: datetime
    user: str | None
    database: str | None
    client: str | None
    kind: str
    command: str
    objects: str
    statement: str
    source: str
    session: str | None = None


def redact(statement: str, limit: int = 500) -> str:
    """A statement fit for a report: passwords replaced, whitespace folded, long text cut."""
    text = " ".join(_PASSWORD.sub(r"\1[redacted]", statement).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def label(statement: str) -> str:
    """The command a statement runs, as pgaudit names it: 'CREATE TABLE', 'GRANT', 'ALTER DEFAULT PRIVILEGES'."""
    words: list[str] = re.findall(r"[A-Za-z_]+", statement[:300].upper())
    if not words:
        return "?"
    if words[:3] == ["ALTER", "DEFAULT", "PRIVILEGES"]:
        return "ALTER DEFAULT PRIVILEGES"
    if words[0] in ("CREATE", "ALTER", "DROP", "COMMENT", "SECURITY", "REFRESH", "REASSIGN"):
        rest = [word for word in words[1:] if word not in _LABEL_SKIP]
        if rest[:2] in (["MATERIALIZED", "VIEW"], ["FOREIGN", "TABLE"], ["EVENT", "TRIGGER"]):
            return f"{words[0]} {rest[0]} {rest[1]}"
        return f"{words[0]} {rest[0]}" if rest else words[0]
    return words[0]


def _relation(node: ast.RangeVar | None) -> str | None:
    if node is None or not node.relname:
        return None
    return f"{node.schemaname}.{node.relname}" if node.schemaname else str(node.relname)


def _written(node: ast.Node) -> list[str]:
    if isinstance(node, ast.TruncateStmt):
        return [name for name in (_relation(r) for r in node.relations or ()) if name]
    relation = getattr(node, "relation", None)
    name = _relation(relation if isinstance(relation, ast.RangeVar) else None)
    return [name] if name else []


def _by_keyword(text: str) -> tuple[str, str, list[str]] | None:
    """Classification when the parser cannot read the statement (another major's syntax, a cut line)."""
    command = label(text)
    first = command.split()[0]
    if first in ("GRANT", "REVOKE", "REASSIGN") or command.split()[-1] in ("ROLE", "USER", "GROUP"):
        return ROLE, command, []
    if first in ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE"):
        return WRITE, command, []
    if first in ("CREATE", "ALTER", "DROP", "COMMENT", "SECURITY", "REFRESH"):
        return DDL, command, []
    return None


def classify_statement(text: str) -> list[tuple[str, str, list[str]]]:
    """(kind, command, tables written) for each role, DDL or write statement in a logged statement text."""
    try:
        parsed = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        found = _by_keyword(text)
        return [found] if found else []
    events: list[tuple[str, str, list[str]]] = []
    encoded = text.encode()
    for raw in parsed:
        node = raw.stmt
        if node is None:
            continue
        begin = raw.stmt_location or 0
        piece = encoded[begin: begin + raw.stmt_len if raw.stmt_len else None].decode(errors="replace")
        if isinstance(node, _QUIET_NODES) or (isinstance(node, ast.CopyStmt) and not node.is_from):
            continue
        if isinstance(node, _ROLE_NODES):
            events.append((ROLE, label(piece), []))
        elif type(node) in _WRITE_NODES:
            events.append((WRITE, _WRITE_NODES[type(node)], _written(node)))
        else:
            events.append((DDL, label(piece), []))
    return events


def is_failed_login(record: LogRecord) -> bool:
    return record.severity == "FATAL" and record.sqlstate in _FAILED_LOGIN_STATES


def login(record: LogRecord) -> Login | None:
    """A successful login, from log_connections' 'connection authorized' line."""
    found = _AUTHORIZED.match(record.message)
    if found is None:
        return None
    database = found.group("db") or ("replication" if record.message.startswith("replication") else None)
    return Login(record.time, record.user or found.group("user"), record.database or database, record.client,
                 found.group("app") or record.application)


def failed_login(record: LogRecord) -> FailedLogin:
    return FailedLogin(record.time, record.user, record.database, record.client, record.message)


def pgaudit_line(record: LogRecord) -> tuple[str, str, AuditEvent] | None:
    """(statement key, audit class, event) from one pgaudit line; None for other lines or classes."""
    if not record.message.startswith(_AUDIT_PREFIX):
        return None
    try:
        fields = next(csv.reader([record.message[len(_AUDIT_PREFIX):]]))
    except (csv.Error, StopIteration):
        return None
    if len(fields) < 8:
        return None
    _, statement_id, substatement_id, audit_class, command, _, object_name, statement = fields[:8]
    kind = {"ROLE": ROLE, "DDL": DDL, "WRITE": WRITE}.get(audit_class.upper())
    if kind is None:
        return None
    key = f"{record.session}/{statement_id}/{substatement_id}"
    return key, kind, AuditEvent(record.time, record.user, record.database, record.client, kind, command,
                                 object_name, redact(statement), "pgaudit", record.session)


def statement_events(record: LogRecord) -> list[AuditEvent]:
    """Events from a log_statement line ('statement: ...' or 'execute <name>: ...')."""
    found = _STATEMENT.match(record.message)
    if found is None:
        return []
    text = found.group("text")
    return [AuditEvent(record.time, record.user, record.database, record.client, kind, command, ", ".join(tables),
                       redact(text), "log_statement", record.session)
            for kind, command, tables in classify_statement(text)]
