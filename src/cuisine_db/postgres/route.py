"""Where a remote environment's connections go after a logical upgrade moved it to another server.

`cuisine-db.toml` is the operator's file and is never rewritten: a cutover records the new server's connection
string in `.cuisine/<env>/route.json`, and every connection of the tool (psycopg and libpq programs alike) follows
it while the environment's configured dsn is still the one the cutover left (`replaces`). Once the operator puts
the new dsn into the file the route no longer applies; `--rollback` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cuisine_db import records
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError

FILE = "route.json"


@dataclass(frozen=True, slots=True)
class Route:
    """The environment's connections go to `dsn` (no password: refused before it is recorded) instead of
    `replaces`, the configured dsn the cutover left behind."""

    env: str
    dsn: str
    replaces: str
    major: int
    since: str


def path(settings: Settings, env: Environment) -> Path:
    return settings.env_dir(env) / FILE


def load(settings: Settings, env: Environment) -> Route | None:
    try:
        return records.load(Route, path(settings, env))
    except records.DamagedRecord as exc:
        raise UnavailableError(exc.message, hint=f"the connection target of {env.name} is unknown; see "
                                                 "docs/upgrade.md, 'Remote servers'") from None


def save(settings: Settings, env: Environment, route: Route) -> None:
    settings.env_dir(env).mkdir(parents=True, exist_ok=True)
    records.save(path(settings, env), route)


def forget(settings: Settings, env: Environment) -> None:
    path(settings, env).unlink(missing_ok=True)


def dsn_of(settings: Settings, env: Environment) -> str:
    """The connection string a remote environment's connections use now."""
    configured = env.dsn or ""
    route = load(settings, env)
    if route is not None and route.replaces == configured:
        return route.dsn
    return configured
