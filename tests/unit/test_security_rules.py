"""Security checks on gathered facts: pg_hba rules, versions, roles; every fix is a command."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from cuisine_db.security.cis_checks import Facts, LoginRole, PrivilegedRole, run_checks, version_support
from cuisine_db.security.hba import HbaRule, check_rules


def rule(line: int, kind: str, address: str | None, netmask: str | None, method: str, users: str = "all",
         database: str = "all") -> HbaRule:
    return HbaRule(line, kind, [database], [users], address, netmask, method, None, "/data/pg_hba.conf")


SETTINGS = {"password_encryption": "scram-sha-256", "ssl": "on", "log_connections": "on", "log_disconnections": "on",
            "log_statement": "ddl", "log_destination": "jsonlog", "data_checksums": "on", "listen_addresses": "*",
            "server_version": "18.1", "shared_preload_libraries": "pg_stat_statements, pgaudit",
            "pgaudit.log": "ddl, role, write"}


def facts(settings: dict[str, str] | None = None, **changes: Any) -> Facts:
    """A hardened PostgreSQL 18 server's facts, with the given differences."""
    base = Facts(env="production", server_version=180001, connected_as="cuisine_monitor",
                 settings={**SETTINGS, **(settings or {})}, passwords=[], privileged=[], hba=[],
                 public_create_schemas=[], public_tables=[], definer_routines=[], login_roles=[],
                 pgaudit_available=True, pgaudit_extension=True,
                 expected={"superuser": {"cuisine"}, "createrole": {"cuisine"}, "bypassrls": {"cuisine"},
                           "replication": {"cuisine", "cuisine_backup"}},
                 tool_roles={"cuisine_backup", "cuisine_monitor", "cuisine_operator"}, today=date(2026, 1, 1))
    return dataclasses.replace(base, **changes)


def test_loopback_scram_rules_are_clean() -> None:
    rules = [rule(1, "local", None, None, "scram-sha-256"), rule(2, "host", "127.0.0.1", "255.255.255.255",
                                                                 "scram-sha-256"),
             rule(3, "host", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "scram-sha-256")]
    assert check_rules(rules, env="production", hba_file=None, superusers={"cuisine"}) == []


def test_weak_broad_and_remote_superuser_rules() -> None:
    anywhere = "0.0.0.0"  # noqa: S104 - an address in a rule, not a socket
    rules = [rule(7, "host", anywhere, anywhere, "trust"), rule(8, "hostssl", "10.0.0.0", "255.0.0.0", "md5",
                                                                   users="cuisine"),
             rule(9, "local", None, None, "trust"), rule(10, "hostssl", "192.168.1.10", "255.255.255.255",
                                                         "password", users="app")]
    found = {(f.check, f.subject.rsplit(":", 1)[1], f.severity)
             for f in check_rules(rules, env="production", hba_file=None, superusers={"cuisine"})}
    assert found == {
        ("hba-auth-method", "7", "critical"), ("hba-broad-network", "7", "warning"),
        ("hba-remote-superuser", "7", "warning"), ("hba-no-ssl", "7", "warning"),
        ("hba-auth-method", "8", "warning"), ("hba-broad-network", "8", "warning"),
        ("hba-remote-superuser", "8", "warning"),
        ("hba-auth-method", "9", "error"),
        ("hba-auth-method", "10", "error"),
    }
    fix = next(f.fix for f in check_rules(rules[:1], env="production", hba_file=None, superusers=set())
               if f.check == "hba-auth-method")
    assert fix.startswith("sed -i '7s/^") and "pg_reload_conf" in fix


def test_version_support_follows_the_calendar() -> None:
    assert version_support(facts(server_version=140020, today=date(2026, 11, 13)))[0].severity == "error"
    assert version_support(facts(server_version=140020, today=date(2026, 1, 1)))[0].severity == "warning"
    assert version_support(facts(server_version=180001, today=date(2026, 1, 1))) == []
    assert version_support(facts(server_version=990000)) == []


def test_a_hardened_server_has_no_findings_and_each_problem_one_with_a_command() -> None:
    assert run_checks(facts()) == []
    problems = facts(
        settings={"password_encryption": "md5", "ssl": "off", "log_connections": "off", "data_checksums": "off"},
        privileged=[PrivilegedRole("intruder", True, False, False, False, True, False),
                    PrivilegedRole("cuisine_backup", False, False, False, True, True, False)],
        login_roles=[LoginRole("app", -1, None, False, False)],
        public_create_schemas=["public"],
    )
    found = {(f.check, f.subject, f.severity) for f in run_checks(problems)}
    assert found == {
        ("password-encryption", "password_encryption", "error"), ("ssl", "ssl", "error"),
        ("logging", "log_connections", "warning"), ("privileged-role", "intruder", "error"),
        ("connection-limit", "app", "warning"), ("password-expiry", "app", "info"),
        ("public-schema-create", "public", "error"), ("data-checksums", "data_checksums", "warning"),
    }
    assert all(f.fix for f in run_checks(problems))
