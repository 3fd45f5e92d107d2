"""pg_hba.conf rules judged the way the CIS benchmark does: weak methods, broad networks, remote superusers."""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from cuisine_db.findings import Finding

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_WEAK = {"trust": "critical", "password": "error", "md5": "warning"}
# IPv4 networks wider than this (or IPv6 wider than /48) are "broad": thousands of possible clients.
_BROAD_V4, _BROAD_V6 = 16, 48


@dataclass(frozen=True, slots=True)
class HbaRule:
    """One row of pg_hba_file_rules."""

    line_number: int
    type: str | None
    database: list[str]
    user_name: list[str]
    address: str | None
    netmask: str | None
    auth_method: str | None
    error: str | None
    file_name: str | None


def network(rule: HbaRule) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The rule's address range; None for local sockets and host names."""
    if rule.type == "local" or not rule.address:
        return None
    if rule.address == "all":
        return ipaddress.ip_network("0.0.0.0/0")
    try:
        if rule.netmask:
            # pg_hba_file_rules shows masks (255.255.0.0, ffff:ffff::); a prefix length reads in both families.
            bits = bin(int(ipaddress.ip_address(rule.netmask))).count("1")
            return ipaddress.ip_network(f"{rule.address}/{bits}", strict=False)
        return ipaddress.ip_network(rule.address, strict=False)
    except ValueError:
        return None


def is_loopback(rule: HbaRule) -> bool:
    if rule.type == "local":
        return True
    if rule.address in ("samehost", "localhost"):
        return True
    found = network(rule)
    return found is not None and any(
        found.version == loop.version and found.subnet_of(loop) for loop in _LOOPBACK  # type: ignore[arg-type]
    )


def _broad(rule: HbaRule) -> bool:
    found = network(rule)
    if rule.address in ("samenet",):
        return True
    if found is None:
        return False
    return found.prefixlen < (_BROAD_V4 if found.version == 4 else _BROAD_V6)


def _where(rule: HbaRule, hba_file: str | None) -> str:
    return f"{rule.file_name or hba_file or 'pg_hba.conf'}:{rule.line_number}"


def _reload(env: str) -> str:
    return shlex.join(["cuisine-db", "psql", "--env", env, "--", "-X", "-c", "SELECT pg_reload_conf()"])


def _rule_text(rule: HbaRule) -> str:
    address = f" {rule.address}{'/' + rule.netmask if rule.netmask else ''}" if rule.address else ""
    return f"{rule.type} {','.join(rule.database)} {','.join(rule.user_name)}{address} {rule.auth_method}"


def check_rules(rules: list[HbaRule], *, env: str, hba_file: str | None, superusers: set[str]) -> list[Finding]:
    """Findings for every rule that is weak, broad, or lets superusers in from the network."""
    findings = []
    for rule in rules:
        where = _where(rule, hba_file)
        if rule.error:
            findings.append(Finding("hba-error", "error", where, f"the server cannot use this line: {rule.error}",
                                    f"correct or remove line {rule.line_number}, then: {_reload(env)}"))
            continue
        method = rule.auth_method or ""
        text = _rule_text(rule)
        if method in _WEAK:
            severity = _WEAK[method]
            if method == "trust" and is_loopback(rule):
                severity = "error"  # any local OS user can log in as anyone, superusers included
            path = rule.file_name or hba_file
            # The last whole-word occurrence before any comment is the method column.
            script = rf"{rule.line_number}s/^\([^#]*\)\b{method}\b/\1scram-sha-256/"
            fix = f"{shlex.join(['sed', '-i', script, path])} && {_reload(env)}" if path else \
                f"change {method} to scram-sha-256 on line {rule.line_number}"
            findings.append(Finding("hba-auth-method", severity, where,
                                    f"'{text}' authenticates with {method}"
                                    + (" (no password at all)" if method == "trust" else
                                       " (password sent in clear)" if method == "password" else
                                       " (MD5 is deprecated; SCRAM resists replay and stolen hashes)"),
                                    fix))
        if rule.type != "local" and not is_loopback(rule):
            users = set(rule.user_name)
            exposed = "all" in users or bool(users & superusers)
            if _broad(rule):
                span = network(rule) or "a whole subnet"
                findings.append(Finding("hba-broad-network", "warning", where,
                                        f"'{text}' admits clients from {rule.address} ({span})",
                                        f"narrow the address on line {rule.line_number} to the application's hosts, "
                                        f"then: {_reload(env)}"))
            if exposed and "replication" not in rule.database:
                findings.append(Finding("hba-remote-superuser", "warning", where,
                                        f"'{text}' lets superusers log in over the network",
                                        f"name the application roles instead of 'all' on line {rule.line_number} "
                                        "(superusers: local socket or loopback only), then reload"))
            if rule.type == "host" and method not in ("reject", "cert"):
                findings.append(Finding("hba-no-ssl", "warning", where,
                                        f"'{text}' accepts unencrypted connections from the network",
                                        f"use hostssl instead of host on line {rule.line_number}, then: "
                                        f"{_reload(env)}"))
    return findings
