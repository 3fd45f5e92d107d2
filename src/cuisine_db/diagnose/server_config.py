"""The runbook's configuration management: db-show-config (what differs from the defaults, and what waits for a
restart) and db-update-config (validated ALTER SYSTEM through `postgres.server_settings`, reload, and a restart
of a local cluster only when asked)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UnavailableError, UsageError
from cuisine_db.postgres import cluster_for, connect
from cuisine_db.postgres.server_settings import alter_system, describe, with_unit


@dataclass(frozen=True, slots=True)
class ShownSetting:
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
    def needs_restart(self) -> bool:
        return self.context == "postmaster"

    @property
    def value(self) -> str:
        return with_unit(self.setting, self.unit)

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
        with conn.cursor(row_factory=class_row(ShownSetting)) as cursor:
            shown = cursor.execute(queries.load("performance/settings_shown"), {"all": include_defaults}).fetchall()
        try:
            with conn.cursor(row_factory=class_row(FileError)) as cursor:
                errors = cursor.execute(queries.load("performance/file_settings_errors")).fetchall()
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


def _after_reload(conn: psycopg.Connection[Any], requested: datetime) -> None:
    """Wait (briefly) until this session has re-read the configuration files after `requested`: the postmaster
    re-reads them first, so from then on new sessions start with the new values too."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute(queries.load("performance/conf_load_time")).fetchone()
        if row is not None and row[0] >= requested:
            return
        time.sleep(0.05)


def _file_value(conn: psycopg.Connection[Any], name: str, default: str) -> str:
    try:
        with conn.transaction():
            row = conn.execute(queries.load("performance/file_value"), {"name": name}).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return f"its configuration-file value (or the default, {default})"
    return str(row[0]) if row else default


def update_config(settings: Settings, env: Environment, name: str, value: str | None, *, restart: bool = False
                  ) -> ConfigUpdate:
    """Validate, ALTER SYSTEM (None resets), reload; with restart=True restart a local cluster if the change needs it.

    A local cluster that will not start with the new value gets its previous postgresql.auto.conf back and is
    started again, so a bad restart never leaves the environment down.
    """
    if restart and not env.is_local:
        raise UsageError(f"restart=1 restarts local clusters only; {env.name!r} is a remote server",
                         hint="restart it with your platform's tools after the change")
    cluster = cluster_for(settings, env) if restart else None
    auto_conf = cluster.datadir / "postgresql.auto.conf" if cluster else None
    saved = auto_conf.read_bytes() if auto_conf and auto_conf.exists() else None
    with connect(settings, env, "update-config") as conn:
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
                        current.pending_restart, restarted)
