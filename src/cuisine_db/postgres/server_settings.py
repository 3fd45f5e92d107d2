"""Server parameters: read from pg_settings, validated against it on the client, written with ALTER SYSTEM.

Every command that changes configuration (db-update-config, wal enable, enable-audit) goes through
`alter_system()`, so each validates the same way and says the same thing about restarts. Values are
checked against the parameter's type, unit, range and enum values before anything is written, so a bad
value in a batch changes nothing; the server's own check stays behind it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from cuisine_db import sql as queries
from cuisine_db.errors import UsageError

_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
# ASCII only: Python's \d also matches other scripts' digits, which the server rejects.
_QUANTITY = re.compile(r"^\s*(?P<number>[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)\s*(?P<unit>[a-zA-Z]+)?\s*$",
                       re.ASCII)
# PostgreSQL's memory units (base 1024, as the server labels them), smallest first.
MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_MEMORY_FAMILY = {k: float(v) for k, v in MEMORY_UNITS.items()}
_TIME_FAMILY = dict(_TIME_UNITS)
# Lists the server quotes element by element (GUC_LIST_QUOTE): ALTER SYSTEM must get one literal per element,
# or 'pg_stat_statements,pgaudit' becomes a single library name and the server no longer starts.
_LIST_QUOTED = {"search_path", "temp_tablespaces", "shared_preload_libraries", "session_preload_libraries",
                "local_preload_libraries", "unix_socket_directories"}
_TRUE = {"on", "true", "yes", "1", "t", "y"}
_FALSE = {"off", "false", "no", "0", "f", "n"}


class SettingsRow:
    """What any row read from pg_settings says the same way, whichever columns its query picked."""

    __slots__ = ()
    setting: str | None
    unit: str | None
    context: str

    @property
    def needs_restart(self) -> bool:
        return self.context == "postmaster"

    def shown(self) -> str:
        """The current value with its unit, as an operator would write it."""
        return with_unit(self.setting, self.unit)


@dataclass(frozen=True, slots=True)
class Setting(SettingsRow):
    """One row of pg_settings."""

    name: str
    setting: str | None
    unit: str | None
    vartype: str
    min_val: str | None
    max_val: str | None
    enumvals: list[str] | None
    context: str
    source: str
    boot_val: str | None
    reset_val: str | None
    pending_restart: bool
    short_desc: str


def with_unit(value: str | None, unit: str | None) -> str:
    """A pg_settings value with its unit: ('16384', '8kB') -> '131072kB'; ('-1', 'ms') -> '-1' (the special value)."""
    if not unit or value in (None, "-1"):
        return str(value)
    count = re.match(r"^(\d+)(\D+)$", unit)
    if count and value.lstrip("-").isdigit():
        return f"{int(value) * int(count.group(1))}{count.group(2)}"
    return f"{value}{unit}"


@dataclass(frozen=True, slots=True)
class SettingChange:
    """What ALTER SYSTEM changed for one parameter, and what it takes to apply it."""

    name: str
    old: str
    new: str
    needs_restart: bool


def describe(conn: psycopg.Connection[Any], name: str) -> Setting:
    """The parameter's pg_settings row; an unknown name is a usage error that names it."""
    wanted = name.strip().lower()
    if not _NAME.match(wanted):
        raise UsageError(f"{name!r} is not a parameter name", hint="e.g. max_connections or pgaudit.log")
    with conn.cursor(row_factory=class_row(Setting)) as cursor:
        row = cursor.execute(queries.load("settings/describe"), {"name": wanted}).fetchone()
    if row is None:
        raise UsageError(f"unknown server parameter {wanted!r}",
                         hint="see the known ones with: make db-show-config (an extension's must be loaded first)")
    return row


def _unit_scale(unit: str) -> tuple[dict[str, float], float] | None:
    """For a pg_settings unit such as '8kB' or 'ms': the family of units it belongs to and its own size."""
    match = re.match(r"^(\d*)([a-zA-Z]+)$", unit)
    if match is None:
        return None
    count = int(match.group(1) or 1)
    for family in (_MEMORY_FAMILY, _TIME_FAMILY):
        if match.group(2) in family:
            return family, count * family[match.group(2)]
    return None


def _number(setting: Setting, value: str) -> float:
    found = _QUANTITY.match(value)
    if found is None:
        raise UsageError(f"{setting.name} takes a number{' with a unit' if setting.unit else ''}, not {value!r}",
                         hint=_range_hint(setting))
    number = float(found.group("number"))
    unit = found.group("unit")
    if unit is None:
        return number
    scale = _unit_scale(setting.unit or "")
    if scale is None:
        raise UsageError(f"{setting.name} takes no unit, but {value!r} has one", hint=_range_hint(setting))
    family, own = scale
    if unit not in family:
        raise UsageError(f"{unit!r} is not a unit {setting.name} accepts",
                         hint=f"valid units: {', '.join(family)} (case matters)")
    return number * family[unit] / own


def bytes_of(setting: Setting, value: str) -> int | None:
    """A memory parameter's value (as validated) in bytes: '1TB' -> 1099511627776; None for -1 or non-memory."""
    scale = _unit_scale(setting.unit or "")
    if scale is None or scale[0] is not _MEMORY_FAMILY:
        return None
    number = _number(setting, value)
    return None if number < 0 else int(number * scale[1])


def count_of(setting: Setting, value: str) -> int:
    """A plain integer parameter's value (max_connections, autovacuum_max_workers)."""
    return int(_number(setting, value))


def _range_hint(setting: Setting) -> str:
    unit = f" (in {setting.unit})" if setting.unit else ""
    if setting.min_val is not None and setting.max_val is not None:
        return f"{setting.name} ranges from {setting.min_val} to {setting.max_val}{unit}"
    return f"current value: {setting.shown()}"


def validate(setting: Setting, value: str) -> str:
    """The value as it will be written, after checking it fits the parameter's type, unit, range or enum."""
    text = value.strip()
    if not text or any(ord(char) < 32 for char in text):
        raise UsageError(f"empty or unprintable value for {setting.name}")
    if setting.vartype == "bool":
        lowered = text.lower()
        if lowered not in _TRUE | _FALSE:
            raise UsageError(f"{setting.name} is on or off, not {value!r}")
        return "on" if lowered in _TRUE else "off"
    if setting.vartype == "enum":
        choices = setting.enumvals or []
        matched = [choice for choice in choices if choice.lower() == text.lower()]
        if not matched:
            raise UsageError(f"{value!r} is not a value of {setting.name}", hint=f"choose one of: {', '.join(choices)}")
        return matched[0]
    if setting.vartype in ("integer", "real"):
        number = _number(setting, text)
        # With a unit the server rounds to the parameter's own unit; a bare fraction is a mistake.
        bare = text.lstrip("+-").replace(".", "", 1).isdigit()
        if setting.vartype == "integer" and bare and not number.is_integer():
            raise UsageError(f"{setting.name} takes a whole number, not {value!r}")
        low = float(setting.min_val) if setting.min_val is not None else float("-inf")
        high = float(setting.max_val) if setting.max_val is not None else float("inf")
        if not low <= number <= high:
            raise UsageError(f"{value!r} is out of range for {setting.name}", hint=_range_hint(setting))
        return text
    if ";" in text and not setting.name.endswith("_command"):
        # Written as one quoted literal, it could never run; but a ';' here is almost always a pasted statement.
        raise UsageError(f"{setting.name} = {value!r}: a ';' in the value looks like SQL, not a setting",
                         hint="only the *_command parameters take ';'; set anything unusual in postgresql.conf")
    return text


def list_elements(value: str) -> list[str]:
    """The elements of a list parameter as SHOW prints it ('"$user", public'), without their quotes."""
    elements = [part.strip() for part in re.findall(r'(?:"(?:[^"]|"")*"|[^,])+', value)]
    return [part[1:-1].replace('""', '"') if part.startswith('"') and part.endswith('"') and len(part) > 1
            else part for part in elements if part]


def _value_sql(name: str, value: str) -> sql.Composable:
    if name in _LIST_QUOTED and list_elements(value):
        return sql.SQL(", ").join(sql.Literal(element) for element in list_elements(value))
    return sql.Literal(value)


def alter_system(conn: psycopg.Connection[Any], changes: Mapping[str, str | None]) -> list[SettingChange]:
    """Validate every change first, then ALTER SYSTEM each (None resets it) and reload the configuration."""
    planned: list[tuple[Setting, str | None]] = []
    for name, value in changes.items():
        setting = describe(conn, name)
        planned.append((setting, None if value is None else validate(setting, value)))
    done: list[SettingChange] = []
    for setting, value in planned:
        parts = setting.name.split(".")
        identifier = sql.Identifier(*parts)
        try:
            if value is None:
                conn.execute(queries.load("settings/alter_system_reset").format(name=identifier))
            else:
                conn.execute(queries.load("settings/alter_system").format(name=identifier,
                                                                           value=_value_sql(setting.name, value)))
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.UndefinedObject) as exc:
            # The server's own check caught what ours let through: nothing was written for this parameter.
            raise UsageError(f"the server refused {setting.name} = {value!r}: {exc.diag.message_primary}",
                             hint="; ".join(f"{c.name} was already changed" for c in done) or None) from None
        new = value if value is not None else (setting.boot_val or "")
        done.append(SettingChange(setting.name, setting.shown(), new, setting.needs_restart))
    conn.execute(queries.load("settings/reload"))
    return done
