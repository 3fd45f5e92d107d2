"""A laid-down backup's server configuration is never trusted as it is: the environment's own replaces it.

A physical backup carries its cluster's `postgresql.conf`, `postgresql.auto.conf`, `pg_hba.conf` and
`pg_ident.conf`. From a forged backup they could run code when the restored server starts (`archive_command`,
`shared_preload_libraries`, `dynamic_library_path`), open it (`trust` lines, `listen_addresses = '*'`), or point it
at files elsewhere (`hba_file`, `include`). So after laying a backup down the restore writes what a fresh cluster
of the environment would have (its settings, loopback SCRAM-only access, no ident map); from the backup it keeps
only what cannot do any of that: the operator's tuning in `postgresql.auto.conf` (work_mem and the like) and the
capacity settings recovery needs to be at least the source's. Everything it drops that runs code, opens access
or names a path is reported, never applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cuisine_db.postgres import safe_files
from cuisine_db.postgres.cluster import conf_value

CONF, AUTO_CONF, HBA, IDENT = "postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"
_LINE = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(?P<value>'(?:[^'\\]|''|\\.)*'|[^\s#']*)\s*(#.*)?$")
_RUNS_CODE = re.compile(r"(_command|_library|_libraries|^dynamic_library_path|^jit_provider)$")
_PATH = re.compile(r"(_file|_directory|_directories|^include(_dir|_if_exists)?|^log_filename)$")
_ACCESS = ("unix_socket_permissions", "unix_socket_group", "ssl", "krb_server_keyfile", "db_user_namespace",
           "password_encryption", "row_security", "allow_system_table_mods", "session_replication_role")
# The environment's own, whatever the backup says: where it listens, its logs, its archive, recovery.
_IDENTITY = re.compile(r"^(port|listen_addresses|archive_mode|archive_timeout|hot_standby|wal_level|primary_.*|"
                       r"recovery_.*|logging_collector|log_destination|cluster_name)$")
# Recovery refuses to start when these are lower than on the source: a backup's larger values are kept.
CAPACITY = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
            "max_locks_per_transaction")
_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


def hba_lines() -> str:
    """The access rules a fresh local cluster has: SCRAM passwords, loopback only."""
    return ("# Written by cuisine-db after a restore: this environment's own rules (the backup's are not used)\n"
            "local   all          all                  scram-sha-256\n"
            "host    all          all  127.0.0.1/32    scram-sha-256\n"
            "host    all          all  ::1/128         scram-sha-256\n"
            "local   replication  all                  scram-sha-256\n"
            "host    replication  all  127.0.0.1/32    scram-sha-256\n"
            "host    replication  all  ::1/128         scram-sha-256\n")


def parse(text: str) -> list[tuple[str, str]]:
    """(name, value as written) for each setting line; lines it cannot read are left out."""
    found = []
    for line in text.splitlines():
        matched = _LINE.match(line)
        if matched and matched["value"] != "":
            found.append((matched["name"].lower(), matched["value"]))
    return found


def unquote(value: str) -> str:
    return value[1:-1].replace("''", "'") if len(value) >= 2 and value[0] == value[-1] == "'" else value


def danger(name: str, value: str) -> str | None:
    """Why a setting from a backup must not be applied, or None when it cannot run code or open access."""
    if _RUNS_CODE.search(name):
        return "runs code"
    if "." in name:
        return "an extension's setting (some run code)"
    if _PATH.search(name) or name in ("data_directory", "config_file", "hba_file", "ident_file"):
        return "names a file or folder"
    if name in _ACCESS:
        return "changes who can connect or what they may do"
    if name == "listen_addresses":
        wanted = {part.strip() for part in unquote(value).split(",")}
        if not wanted <= _LOOPBACK:
            return "opens access beyond loopback"
    return None


def _hba_warnings(text: str) -> list[str]:
    notes = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if "trust" in fields or fields[-1] in ("password", "ident"):
            notes.append(f"{HBA}: {' '.join(fields)[:120]!r} not applied: no real password check")
        elif fields[0] == "include" or fields[0].startswith("include_"):
            notes.append(f"{HBA}: {' '.join(fields)[:120]!r} not applied: names a file")
    return notes


def take_over(data: Path, owner: str | None, own: Mapping[str, str | int | bool], source: str,
              keep: Mapping[str, str | None] | None = None) -> list[str]:
    """Replace the four configuration files in `data` with the environment's own (`own`: its settings); what the
    backup carried that runs code, opens access or names a path comes back as warnings. `keep` names settings of
    the backup's postgresql.auto.conf that stay when their value is exactly the one given (None: any value), such
    as the environment's own archive command written there by `wal enable`."""
    keep = keep or {}
    warnings: list[str] = []
    kept_capacity: dict[str, str] = {}
    for name, value in parse((safe_files.read(data / CONF) or b"").decode("utf-8", errors="replace")):
        reason = danger(name, value)
        if reason:
            warnings.append(f"{CONF}: {name} = {value[:120]} not applied: {reason}")
        elif name in CAPACITY and value.strip("'").isdigit():
            mine = own.get(name)
            if not isinstance(mine, int) or int(value.strip("'")) > mine:
                kept_capacity[name] = value.strip("'")
    tuning: dict[str, str] = {}
    for name, value in parse((safe_files.read(data / AUTO_CONF) or b"").decode("utf-8", errors="replace")):
        if name in keep and keep[name] in (None, unquote(value)):
            tuning[name] = value
            continue
        reason = danger(name, value)
        if reason:
            warnings.append(f"{AUTO_CONF}: {name} = {value[:120]} not applied: {reason}")
        elif not _IDENTITY.match(name):
            tuning[name] = value
    warnings += _hba_warnings((safe_files.read(data / HBA) or b"").decode("utf-8", errors="replace"))
    ident = (safe_files.read(data / IDENT) or b"").decode("utf-8", errors="replace")
    if any(line.split("#", 1)[0].strip() for line in ident.splitlines()):
        warnings.append(f"{IDENT}: its user name maps were not applied")
    settings = {**{key: conf_value(value) for key, value in own.items()}, **kept_capacity}
    safe_files.write(data / CONF, f"# Written by cuisine-db: this environment's own settings after restoring {source}"
                                  "\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()),
                     owner=owner)
    safe_files.write(data / AUTO_CONF, "# Do not edit this file manually!\n# It will be overwritten by the ALTER "
                                       "SYSTEM command.\n" + "".join(f"{k} = {v}\n" for k, v in tuning.items()),
                     owner=owner)
    safe_files.write(data / HBA, hba_lines(), owner=owner)
    safe_files.write(data / IDENT, "# Written by cuisine-db after a restore: no user name maps\n", owner=owner)
    return warnings
