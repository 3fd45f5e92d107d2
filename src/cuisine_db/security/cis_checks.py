"""`db-security-check`: the CIS PostgreSQL benchmark checks that SQL can see, plus local file permissions.

Everything comes from SQL (pg_settings, pg_roles, pg_hba_file_rules, ACLs), so the check runs on managed
servers too; it connects as the monitoring role, and reports what that role may not read (pg_authid) as an
info finding instead of failing. Each check is a small function from the gathered facts to findings, whose
fix is a command an operator can run.

Severities: CIS rates recommendations by impact; here "critical" is what lets anyone in without a
password, "error" is CIS's high-impact items (weak password storage or transport, unexpected superusers,
schema or function hijacking, an unsupported server, unsafe files), "warning" is hardening (logging,
audit, connection limits, broad networks), "info" is advice. Any error or critical finding exits 1.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from pglast import keywords
from psycopg import errors as pgerrors

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding
from cuisine_db.postgres import connection_params, purposes
from cuisine_db.postgres.local import cluster_for
from cuisine_db.security.file_modes import check_files
from cuisine_db.security.hba import HbaRule, check_rules
from cuisine_db.security.releases import end_of_life

SETTINGS = ("password_encryption", "ssl", "ssl_min_protocol_version", "listen_addresses", "log_connections",
            "log_disconnections", "log_statement", "log_line_prefix", "log_destination", "data_checksums",
            "hba_file", "shared_preload_libraries", "server_version", "pgaudit.log")
_LOOPBACK_LISTEN = {"127.0.0.1", "localhost", "::1", ""}
Row = TypeVar("Row")
_RESERVED = {word.upper() for word in (*keywords.RESERVED_KEYWORDS, *keywords.TYPE_FUNC_NAME_KEYWORDS,
                                       *keywords.COL_NAME_KEYWORDS)}


@dataclass(frozen=True, slots=True)
class PasswordKind:
    role: str
    login: bool
    kind: str


@dataclass(frozen=True, slots=True)
class PrivilegedRole:
    role: str
    superuser: bool
    createrole: bool
    bypassrls: bool
    replication: bool
    login: bool
    bootstrap: bool


@dataclass(frozen=True, slots=True)
class PublicTable:
    schema: str
    table_name: str
    privileges: str


@dataclass(frozen=True, slots=True)
class CatalogGrant:
    catalog: str
    grantee: str
    privileges: str


@dataclass(frozen=True, slots=True)
class DefinerRoutine:
    routine: str
    owner: str


@dataclass(frozen=True, slots=True)
class LoginRole:
    role: str
    connection_limit: int
    valid_until: datetime | None
    superuser: bool
    bootstrap: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What the check gathered from the server (None where the connecting role may not look)."""

    env: str
    server_version: int
    connected_as: str
    settings: dict[str, str]
    passwords: list[PasswordKind] | None
    privileged: list[PrivilegedRole]
    hba: list[HbaRule] | None
    public_create_schemas: list[str]
    public_tables: list[PublicTable]
    definer_routines: list[DefinerRoutine]
    login_roles: list[LoginRole]
    pgaudit_available: bool
    pgaudit_extension: bool
    expected: dict[str, set[str]]
    tool_roles: set[str]
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    catalog_grants: list[CatalogGrant] = field(default_factory=list)


def _fetch(conn: psycopg.Connection[Any], name: str, row: type[Row], **params: Any) -> list[Row]:
    return queries.rows(conn, row, queries.load(f"security/{name}"), params)


def _readable(conn: psycopg.Connection[Any], name: str, row: type[Row]) -> list[Row] | None:
    """Rows of a catalog only privileged roles may read, or None when this role may not."""
    try:
        with conn.transaction():
            return _fetch(conn, name, row)
    except pgerrors.InsufficientPrivilege:
        return None


def gather(conn: psycopg.Connection[Any], settings: Settings, env: Environment) -> Facts:
    values = {str(r[0]): str(r[1]) for r in conn.execute(queries.load("security/check_settings"),
                                                         {"names": list(SETTINGS)})}
    admin = str(connection_params(settings, env)["user"])
    tool_roles = {purposes.role_name(env, purpose) for purpose in purposes.PURPOSES}
    allowed = {admin, *env.expected_privileged_roles}
    return Facts(
        env=env.name,
        server_version=conn.info.server_version,
        connected_as=conn.info.user,
        settings=values,
        passwords=_readable(conn, "password_kinds", PasswordKind),
        privileged=_fetch(conn, "privileged_roles", PrivilegedRole),
        hba=_readable(conn, "hba_rules", HbaRule),
        public_create_schemas=[r[0] for r in conn.execute(queries.load("security/public_create_schemas"), {})],
        public_tables=_fetch(conn, "public_table_privileges", PublicTable),
        definer_routines=_fetch(conn, "definer_functions", DefinerRoutine),
        login_roles=_fetch(conn, "login_roles", LoginRole),
        pgaudit_available=conn.execute(queries.load("security/pgaudit_available")).fetchone() is not None,
        pgaudit_extension=conn.execute(queries.load("security/pgaudit_extension")).fetchone() is not None,
        expected={"superuser": allowed, "createrole": allowed, "bypassrls": allowed,
                  # The replicas' walreceivers log in as cuisine_replication (issue 9, replicas/role.py).
                  "replication": allowed | {purposes.role_name(env, "backup"), "cuisine_replication"}},
        tool_roles=tool_roles,
        catalog_grants=_fetch(conn, "catalog_grants", CatalogGrant),
    )


def _shell(statement: str) -> str:
    """A statement as one shell word, in double quotes where that reads better and means the same."""
    return f'"{statement}"' if not re.search(r'["$`\\!]', statement) else shlex.quote(statement)


def _psql(env: str, *statements: str) -> str:
    command = shlex.join(["cuisine-db", "psql", "--env", env, "--", "-X"])
    return " ".join([command, *(f"-c {_shell(statement)}" for statement in statements)])


def _setting_fix(env: str, name: str, value: str) -> str:
    return _psql(env, f"ALTER SYSTEM SET {name} = '{value}'", "SELECT pg_reload_conf()")


def _quoted(name: str) -> str:
    """An identifier as psql would need it typed: bare when it can be, else in double quotes."""
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name.upper() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def password_encryption(facts: Facts) -> list[Finding]:
    value = facts.settings.get("password_encryption", "")
    if value and value != "scram-sha-256":
        return [Finding("password-encryption", "error", "password_encryption", f"new passwords are stored as {value}",
                        _setting_fix(facts.env, "password_encryption", "scram-sha-256"))]
    return []


def stored_passwords(facts: Facts) -> list[Finding]:
    if facts.passwords is None:
        return [Finding("stored-passwords", "info", "pg_authid",
                        f"not checked: {facts.connected_as} may not read pg_authid (superusers only)",
                        f"cuisine-db security check --env {facts.env} --admin")]
    findings = []
    for row in facts.passwords:
        if row.kind in ("md5", "plain"):
            findings.append(Finding("stored-passwords", "error", row.role,
                                    f"the password is stored as {row.kind.upper()}: a stolen hash logs in as the role",
                                    f"make db-update-password env={facts.env} username={row.role}"))
        elif row.kind == "none" and row.login:
            findings.append(Finding("stored-passwords", "info", row.role,
                                    "login role without a password: only trust, peer or certificate rules admit it",
                                    f"make db-update-password env={facts.env} username={row.role}"))
    return findings


def privileged_roles(facts: Facts) -> list[Finding]:
    findings = []
    for row in facts.privileged:
        if row.bootstrap:
            continue
        for attribute, severity in (("superuser", "error"), ("createrole", "warning"), ("bypassrls", "warning"),
                                    ("replication", "warning")):
            if not getattr(row, attribute) or row.role in facts.expected[attribute]:
                continue
            if attribute != "superuser" and row.superuser:
                continue
            keyword = {"superuser": "NOSUPERUSER", "createrole": "NOCREATEROLE", "bypassrls": "NOBYPASSRLS",
                       "replication": "NOREPLICATION"}[attribute]
            findings.append(Finding("privileged-role", severity, row.role,
                                    f"holds {attribute.upper()}, which no expected role of {facts.env} needs",
                                    _psql(facts.env, f"ALTER ROLE {_quoted(row.role)} {keyword}")))
    return findings


def hba(facts: Facts) -> list[Finding]:
    if facts.hba is None:
        return [Finding("hba", "info", "pg_hba_file_rules",
                        f"not checked: {facts.connected_as} may not read pg_hba_file_rules (setup-roles lets the "
                        "monitoring role read it)", f"cuisine-db security setup-roles --env {facts.env}")]
    superusers = {row.role for row in facts.privileged if row.superuser}
    return check_rules(facts.hba, env=facts.env, hba_file=facts.settings.get("hba_file"), superusers=superusers)


def ssl(facts: Facts, datadir: str | None, server_user: str | None) -> list[Finding]:
    if facts.settings.get("ssl") == "on":
        version = facts.settings.get("ssl_min_protocol_version", "TLSv1.2")
        if version in ("TLSv1", "TLSv1.1"):
            return [Finding("ssl", "warning", "ssl_min_protocol_version", f"clients may use {version}",
                            _setting_fix(facts.env, "ssl_min_protocol_version", "TLSv1.2"))]
        return []
    listen = {part.strip() for part in facts.settings.get("listen_addresses", "*").split(",")}
    loopback_only = listen <= _LOOPBACK_LISTEN
    severity = "warning" if loopback_only else "error"
    evidence = ("ssl is off; the server listens on loopback only" if loopback_only else
                f"ssl is off while the server listens on {', '.join(sorted(listen))}: passwords and data cross the "
                "network in clear")
    enable = _setting_fix(facts.env, "ssl", "on")
    if datadir is None:
        fix = f"install server.crt and server.key in the data directory, then: {enable}"
    else:
        key, crt = f"{datadir}/server.key", f"{datadir}/server.crt"
        steps = [shlex.join(["openssl", "req", "-new", "-x509", "-days", "365", "-nodes", "-subj", "/CN=localhost",
                             "-keyout", key, "-out", crt]), shlex.join(["chmod", "600", key])]
        if server_user:
            steps.append(shlex.join(["chown", f"{server_user}:", key, crt]))
        fix = " && ".join([*steps, enable])
    return [Finding("ssl", severity, "ssl", evidence, fix)]


def public_schemas(facts: Facts) -> list[Finding]:
    return [Finding("public-schema-create", "error", schema,
                    "every role may create objects here: a planted function or table can hijack other roles' queries "
                    "(CVE-2018-1058)", _psql(facts.env, f"REVOKE CREATE ON SCHEMA {_quoted(schema)} FROM PUBLIC"))
            for schema in facts.public_create_schemas]


def public_tables(facts: Facts) -> list[Finding]:
    findings = []
    for row in facts.public_tables:
        writes = set(row.privileges.split(",")) - {"SELECT", "REFERENCES", "TRIGGER"}
        findings.append(Finding("public-table-privileges", "error" if writes else "warning",
                                f"{row.schema}.{row.table_name}", f"every role (PUBLIC) holds {row.privileges}",
                                _psql(facts.env, f"REVOKE ALL ON TABLE {_quoted(row.schema)}.{_quoted(row.table_name)} "
                                                 "FROM PUBLIC")))
    return findings


def catalog_grants(facts: Facts) -> list[Finding]:
    """Grants on catalogs that hold password hashes, column samples or user-mapping passwords: only superusers
    should read them (PostgreSQL grants them to no one)."""
    return [Finding("catalog-grants", "error", f"pg_catalog.{row.catalog}",
                    f"{row.grantee} holds {row.privileges}: it can read what this catalog hides from every other "
                    "role (password hashes, sampled column values or stored passwords)",
                    _psql(facts.env, f"REVOKE ALL ON TABLE pg_catalog.{row.catalog} FROM {_quoted(row.grantee)}"
                          if row.grantee != "PUBLIC" else f"REVOKE ALL ON TABLE pg_catalog.{row.catalog} FROM PUBLIC"))
            for row in facts.catalog_grants]


def definer_routines(facts: Facts) -> list[Finding]:
    return [Finding("security-definer-search-path", "error", row.routine,
                    f"runs with {row.owner}'s rights and the caller's search_path: the caller can substitute objects",
                    _psql(facts.env, f"ALTER ROUTINE {row.routine} SET search_path = pg_catalog, pg_temp"))
            for row in facts.definer_routines]


def logging(facts: Facts) -> list[Finding]:
    findings = []
    enable = f"make db-enable-audit env={facts.env}"
    for name in ("log_connections", "log_disconnections"):
        if facts.settings.get(name) == "off":
            findings.append(Finding("logging", "warning", name,
                                    f"{name} is off: the audit report cannot tell who connected from where", enable))
    destinations = facts.settings.get("log_destination", "")
    prefix = facts.settings.get("log_line_prefix", "")
    says_who = "%u" in prefix and "%d" in prefix and ("%h" in prefix or "%r" in prefix)
    if "stderr" in destinations and not says_who:
        findings.append(Finding("logging", "warning", "log_line_prefix",
                                f"stderr log lines ({prefix!r}) do not say which user, database and client",
                                enable))
    return findings


def audit(facts: Facts) -> list[Finding]:
    enable = f"make db-enable-audit env={facts.env}"
    loaded = "pgaudit" in facts.settings.get("shared_preload_libraries", "")
    statements = facts.settings.get("log_statement", "none")
    if facts.pgaudit_available:
        if not loaded or not facts.pgaudit_extension:
            return [Finding("audit-logging", "warning", "pgaudit",
                            "pgaudit is installed but not " + ("loaded (enabling it restarts the server)" if not loaded
                                                               else "created in this database"), enable)]
        if facts.settings.get("pgaudit.log", "none") == "none":
            return [Finding("audit-logging", "warning", "pgaudit.log",
                            "pgaudit is loaded but pgaudit.log is 'none': nothing is audited", enable)]
        return []
    if statements in ("ddl", "mod", "all"):
        major = facts.server_version // 10000
        return [Finding("audit-logging", "info", "pgaudit",
                        f"pgaudit is not installed; log_statement = '{statements}' keeps DDL and role changes but not "
                        "per-table writes", f"install the server's postgresql-{major}-pgaudit package, then: {enable}")]
    return [Finding("audit-logging", "warning", "log_statement",
                    "no audit trail: pgaudit is not installed and log_statement is 'none' (DDL, GRANT and role "
                    "changes leave no record)", enable)]


def checksums(facts: Facts, datadir: str | None) -> list[Finding]:
    if facts.settings.get("data_checksums") != "off":
        return []
    fix = (f"cuisine-db cluster down --env {facts.env} && {shlex.join(['pg_checksums', '--enable', '-D', datadir])} "
           f"&& cuisine-db cluster up --env {facts.env}") if datadir else \
        "enable data checksums with pg_checksums --enable while the server is stopped"
    return [Finding("data-checksums", "warning", "data_checksums", "silent corruption on disk would go unnoticed", fix)]


def connection_limits(facts: Facts) -> list[Finding]:
    return [Finding("connection-limit", "warning", row.role,
                    "login role without a connection limit: one runaway client can take every connection",
                    _psql(facts.env, f"ALTER ROLE {_quoted(row.role)} CONNECTION LIMIT 20"))
            for row in facts.login_roles if row.connection_limit < 0 and not row.superuser]


def password_expiry(facts: Facts) -> list[Finding]:
    findings = []
    now = datetime.now(UTC)
    next_year = (facts.today + timedelta(days=365)).isoformat()
    for row in facts.login_roles:
        if row.superuser or row.role in facts.tool_roles:
            continue
        fix = _psql(facts.env, f"ALTER ROLE {_quoted(row.role)} VALID UNTIL '{next_year}'")
        if row.valid_until is None:
            findings.append(Finding("password-expiry", "info", row.role,
                                    "the password never expires (rotate it on a schedule, or set VALID UNTIL)", fix))
        elif row.valid_until < now:
            findings.append(Finding("password-expiry", "warning", row.role,
                                    f"the password expired on {row.valid_until:%Y-%m-%d}: the role can no longer "
                                    "log in with it", f"make db-update-password env={facts.env} username={row.role}"))
    return findings


def version_support(facts: Facts) -> list[Finding]:
    major = facts.server_version // 10000
    version = facts.settings.get("server_version", str(major))
    last = end_of_life(major)
    if last is None:
        return []
    if last < facts.today:
        return [Finding("version-support", "error", f"PostgreSQL {version}",
                        f"PostgreSQL {major} stopped receiving security fixes on {last}",
                        "upgrade to a supported major version (pg_upgrade or a logical copy)")]
    if last - facts.today < timedelta(days=365):
        return [Finding("version-support", "warning", f"PostgreSQL {version}",
                        f"PostgreSQL {major} stops receiving security fixes on {last}",
                        "plan the upgrade to a newer major version (pg_upgrade) before then")]
    return []


def run_checks(facts: Facts, *, datadir: str | None = None, server_user: str | None = None) -> list[Finding]:
    """Every SQL-visible check, worst first."""
    findings = [
        *password_encryption(facts), *stored_passwords(facts), *privileged_roles(facts), *hba(facts),
        *ssl(facts, datadir, server_user), *public_schemas(facts), *public_tables(facts), *catalog_grants(facts),
        *definer_routines(facts),
        *logging(facts), *audit(facts), *checksums(facts, datadir), *connection_limits(facts),
        *password_expiry(facts), *version_support(facts),
    ]
    return worst_first(findings)


def worst_first(findings: list[Finding]) -> list[Finding]:
    order = ("critical", "error", "warning", "info")
    return sorted(findings, key=lambda f: (order.index(f.severity), f.check, f.subject))


def security_check(settings: Settings, env: Environment, *, admin: bool = False) -> list[Finding]:
    """Connect (as the monitoring role unless `admin`), gather the facts, run every check."""
    purpose = purposes.ADMIN if admin else "monitoring"
    with connect(settings, env, "db-security-check", purpose=purpose) as conn:
        facts = gather(conn, settings, env)
    if not env.is_local:
        return run_checks(facts)
    cluster = cluster_for(settings, env)
    findings = run_checks(facts, datadir=str(cluster.datadir), server_user=cluster.os_user)
    return worst_first(findings + check_files(cluster.datadir, cluster.passfile, cluster.os_user))
