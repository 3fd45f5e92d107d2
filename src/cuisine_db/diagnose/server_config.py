"""The runbook's configuration management: db-show-config (what differs from the defaults, and what waits for a
restart) and db-update-config (validated ALTER SYSTEM through `postgres.server_settings`, reload, and a restart
of a local cluster only when asked)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.humanize import size
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import REDACTED, journaled
from cuisine_db.postgres import cluster_for
from cuisine_db.postgres.server_settings import (
    MEMORY_UNITS,
    SettingsRow,
    alter_system,
    bytes_of,
    count_of,
    describe,
    validate,
    with_unit,
)
from cuisine_db.waiting import wait_for

# Parameters whose values may hold credentials (primary_conninfo, ssl_passphrase_command): never shown or recorded.
_SECRET_PARAMETER = re.compile(r"conninfo|pass|secret|key|token", re.IGNORECASE)
_UNITS = tuple(MEMORY_UNITS)
_MEMORY = re.compile(rf"^(\d+)({'|'.join(_UNITS)})$")

# Settings that make the server run a program or load a library: db-update-config wants yes=1 for them on every
# environment (besides these, every *_command), since a wrong value runs code as the server's OS user.
LOADS_CODE = frozenset({"shared_preload_libraries", "session_preload_libraries", "local_preload_libraries",
                        "dynamic_library_path", "archive_library", "jit_provider"})
# What the worst case of the server's memory is made of: shared_buffers, one work_mem per connection, and the
# maintenance memory of each autovacuum worker plus one manual VACUUM or CREATE INDEX.
MEMORY_TERMS = ("shared_buffers", "work_mem", "max_connections", "maintenance_work_mem", "autovacuum_work_mem",
                "autovacuum_max_workers")
# Past this share of the host's memory the worst case is a warning; past all of it, a refusal.
MEMORY_WARNING_SHARE = 0.75
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class ShownSetting(SettingsRow):
    name: str
    setting: str | None
    unit: str | None
    vartype: str
    source: str
    sourcefile: str | None
    sourceline: int | None
    context: str
    pending_restart: bool
    boot_val: str | None
    short_desc: str
    category: str

    @property
    def value(self) -> str:
        return self.shown()

    @property
    def default(self) -> str:
        return with_unit(self.boot_val, self.unit)


@dataclass(frozen=True, slots=True)
class FileError:
    name: str | None
    setting: str | None
    sourcefile: str | None
    sourceline: int | None
    error: str


@dataclass(frozen=True, slots=True)
class ConfigReport:
    env: str
    server_version: str
    settings: list[ShownSetting]
    file_errors: list[FileError]
    notes: list[str]

    @property
    def pending_restart(self) -> list[str]:
        return [s.name for s in self.settings if s.pending_restart]


def show_config(settings: Settings, env: Environment, *, include_defaults: bool = False) -> ConfigReport:
    """Every setting not at its built-in default: value, source, context, pending restart; and file errors."""
    notes = []
    with connect(settings, env, "show-config") as conn:
        shown = queries.rows(conn, ShownSetting, queries.load("performance/settings_shown"), {"all": include_defaults})
        try:
            errors = queries.rows(conn, FileError, queries.load("performance/file_settings_errors"))
        except psycopg.errors.InsufficientPrivilege:
            errors = []
            notes.append("configuration files not checked: reading pg_file_settings needs superuser or "
                         "pg_read_all_settings")
        version = str(conn.info.parameter_status("server_version") or conn.info.server_version)
    return ConfigReport(env.name, version, shown, errors, notes)


@dataclass(frozen=True, slots=True)
class ConfigUpdate:
    """What db-update-config changed and whether it is in effect."""

    env: str
    name: str
    old: str
    new: str
    needs_restart: bool
    in_effect: str
    pending_restart: bool
    restarted: bool
    notes: list[str] = field(default_factory=list)


def runs_code(name: str) -> bool:
    """Whether setting this parameter makes the server run a program or load a library."""
    return name.strip().lower() in LOADS_CODE or name.strip().lower().endswith("_command")


def host_memory(env: Environment, ram: str | None) -> tuple[int, str] | None:
    """The server host's memory and where the figure comes from; None when it is unknown (a remote host)."""
    from cuisine_db.diagnose.config_advice import _machine_ram, parse_size

    if ram is not None:
        return parse_size(ram), "as given (ram=)"
    if env.is_local:
        return _machine_ram(), "this machine's (the local cluster runs here)"
    from psycopg.conninfo import conninfo_to_dict

    # No host at all is libpq's default Unix socket: this machine too.
    hosts = [host for host in str(conninfo_to_dict(env.dsn or "").get("host") or "").split(",") if host]
    if all(host in _LOOPBACK or host.startswith("/") for host in hosts):
        return _machine_ram(), "this machine's (the dsn points at this host)"
    return None


def _memory_check(conn: psycopg.Connection[Any], name: str, value: str, memory: tuple[int, str]) -> str | None:
    """Refuse a value the host cannot hold in the worst case; a warning line when it comes close."""
    terms = {term: describe(conn, term) for term in MEMORY_TERMS}
    texts = {term: value if setting.name == name else with_unit(setting.setting, setting.unit)
             for term, setting in terms.items()}
    shared = bytes_of(terms["shared_buffers"], texts["shared_buffers"]) or 0
    work = bytes_of(terms["work_mem"], texts["work_mem"]) or 0
    maintenance = bytes_of(terms["maintenance_work_mem"], texts["maintenance_work_mem"]) or 0
    autovacuum = bytes_of(terms["autovacuum_work_mem"], texts["autovacuum_work_mem"]) or maintenance
    connections = count_of(terms["max_connections"], texts["max_connections"])
    workers = count_of(terms["autovacuum_max_workers"], texts["autovacuum_max_workers"])
    worst = shared + connections * work + workers * autovacuum + maintenance
    ram, source = memory
    formula = (f"shared_buffers {size(shared)} + {connections} connections x work_mem {size(work)} + "
               f"{workers} autovacuum workers x {size(autovacuum)} + maintenance_work_mem {size(maintenance)} "
               f"= {size(worst)}")
    if worst > ram:
        raise RefusedError(
            f"{name} = {value} would let the server need up to {size(worst)} ({formula}), more than the host's "
            f"{size(ram)} of memory ({source}); nothing was changed",
            hint="choose a smaller value (make db-recommend-config sizes them for this host), or fewer connections "
                 "behind a pooler; ram=SIZE if the host's memory is not what was used")
    if worst > ram * MEMORY_WARNING_SHARE:
        return (f"{name} = {value}: in the worst case the server needs {size(worst)} ({formula}), over "
                f"{MEMORY_WARNING_SHARE:.0%} of the host's {size(ram)} ({source})")
    return None


def _after_reload(conn: psycopg.Connection[Any], requested: datetime) -> None:
    """Wait (briefly) until this session has re-read the configuration files after `requested`: the postmaster
    re-reads them first, so from then on new sessions start with the new values too."""
    def reloaded() -> bool | None:
        row = conn.execute(queries.load("performance/conf_load_time")).fetchone()
        return True if row is not None and row[0] >= requested else None

    wait_for(reloaded, seconds=10, interval=0.05)


def _file_value(conn: psycopg.Connection[Any], name: str, default: str) -> str:
    try:
        with conn.transaction():
            row = conn.execute(queries.load("performance/file_value"), {"name": name}).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return f"its configuration-file value (or the default, {default})"
    return str(row[0]) if row else default


def pretty(value: str) -> str:
    """A memory value in its largest exact unit: 65536kB -> 64MB, 131072kB -> 128MB; anything else as it is."""
    found = _MEMORY.match(value)
    if found is None:
        return value
    number, unit = int(found.group(1)), _UNITS.index(found.group(2))
    while unit < len(_UNITS) - 1 and number and number % 1024 == 0:
        number, unit = number // 1024, unit + 1
    return f"{number}{_UNITS[unit]}"


def visible(name: str, value: str | None) -> str | None:
    """A setting's value as people and the journal see it: secrets redacted, memory in its largest exact unit."""
    if value is None:
        return None
    return REDACTED if _SECRET_PARAMETER.search(name) else pretty(value)


def update_config(settings: Settings, env: Environment, name: str, value: str | None, *, restart: bool = False,
                  yes: bool = False, ask: Ask | None = None, ram: str | None = None) -> ConfigUpdate:
    """db-update-config, journaled as `update-config` (values that may hold credentials redacted): see
    `_update_config`."""
    arguments = {"param": name, "value": visible(name, value), "reset": value is None, "restart": restart}
    with journaled(settings, env, "update-config", arguments) as entry:
        result = _update_config(settings, env, name, value, restart=restart, yes=yes, ask=ask, ram=ram)
        entry.details.update(old=visible(result.name, result.old), new=visible(result.name, result.new),
                             needs_restart=result.needs_restart, restarted=result.restarted)
    return result


def _update_config(settings: Settings, env: Environment, name: str, value: str | None, *, restart: bool,
                   yes: bool, ask: Ask | None, ram: str | None) -> ConfigUpdate:
    """Validate, ALTER SYSTEM (None resets), reload; with restart=True restart a local cluster if the change needs it.

    A protected environment needs the confirmation first (`yes`, or its name typed to `ask`). Memory settings are
    checked against the host's memory (the worst case of MEMORY_TERMS); settings that run a program or load a
    library need `yes` on every environment. A local cluster that will not start with the new
    value gets its previous postgresql.auto.conf back and is started again, so a bad restart never leaves the
    environment down.
    """
    if restart and not env.is_local:
        raise UsageError(f"restart=1 restarts local clusters only; {env.name!r} is a remote server",
                         hint="restart it with your platform's tools after the change")
    action = ("Resetting " if value is None else "Setting ") + name + (" and restarting the server" if restart else "")
    confirmation.require(env, action, yes=yes, ask=ask)
    if value is not None and runs_code(name) and not yes:
        raise RefusedError(f"{name.strip().lower()} makes the server run a program or load a library (as its OS "
                           f"user, on {env.name!r}): it needs confirmation on every environment",
                           hint="add yes=1 (or --yes) once the value is checked")
    memory = host_memory(env, ram) if value is not None else None
    notes: list[str] = []
    cluster = cluster_for(settings, env) if restart else None
    auto_conf = cluster.datadir / "postgresql.auto.conf" if cluster else None
    saved = auto_conf.read_bytes() if auto_conf and auto_conf.exists() else None
    with connect(settings, env, "update-config") as conn:
        if value is not None and describe(conn, name).name in MEMORY_TERMS:
            checked = describe(conn, name)
            if memory is None:
                notes.append(f"{checked.name} was not checked against the host's memory: {env.name!r} is a remote "
                             "server (give ram=SIZE to check it)")
            else:
                warning = _memory_check(conn, checked.name, validate(checked, value), memory)
                if warning:
                    notes.append(warning)
        [change] = alter_system(conn, {name: value})
        # One more reload, requested after the file was written: once this session has seen a reload newer than
        # that, it (and every new session) runs with the new file, whatever reloads others asked for meanwhile.
        clock = conn.execute(queries.load("performance/conf_load_time")).fetchone()
        conn.execute(queries.load("settings/reload"))
        if clock is not None:
            _after_reload(conn, clock[1])
        current = describe(conn, change.name)
        new = change.new
        if value is None:  # a reset falls back to the configuration files' value, maybe the running one
            new = current.shown() if not current.pending_restart else _file_value(conn, change.name, change.new)
    needs_restart = change.needs_restart and (value is not None or current.pending_restart)
    restarted = False
    if cluster is not None and needs_restart:
        try:
            cluster.restart()
        except UnavailableError as exc:
            if auto_conf is not None and saved is not None:
                auto_conf.write_bytes(saved)
            cluster.start()
            raise FailedError(f"{env.name!r} did not start with {change.name} = {change.new}: {exc.message}",
                              hint="the previous postgresql.auto.conf was put back and the server is running "
                                   "again with the old value") from None
        restarted = True
        with connect(settings, env, "update-config") as conn:
            current = describe(conn, change.name)
    return ConfigUpdate(env.name, change.name, change.old, new, needs_restart, current.shown(),
                        current.pending_restart, restarted, notes)
