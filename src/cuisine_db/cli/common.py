"""What every command shares: options, the settings, the confirmation prompts handed to services, required values,
replica routing, output."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.errors import UsageError
from cuisine_db.ops.confirmation import Ask, AskWord

if TYPE_CHECKING:
    from cuisine_db.postgres.target import Target

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room instead.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

EnvOption = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Environment from cuisine-db.toml (default: default_env or CUISINE_DB_ENV)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Confirm destructive work on a protected environment without a prompt.")
]

ReplicaOption = Annotated[str | None, typer.Option(
    "--replica", help="Read from a replica: its name, or 'any' for the least lagging one within the environment's "
                      "lag bound; falls back to the primary with a warning.")]


@cache
def settings() -> Settings:
    """The settings, read once per process."""
    return load_settings()


def environment(name: str | None) -> Environment:
    return settings().env(name)


def asker(env: Environment) -> Ask | None:
    """How a service asks the operator to confirm: on a terminal, the action in red, then env's name typed; None
    without a terminal (the service refuses then, unless --yes was given)."""
    if not sys.stdin.isatty():
        return None

    def ask(action: str) -> str:
        err.print(f"[bold red]{action}[/] on protected environment [bold]{env.name}[/].")
        return str(typer.prompt(f"Type {env.name!r} to go on", default="", show_default=False))

    return ask


def word_asker(env: Environment) -> AskWord | None:
    """How a service that asks on every environment asks: the action in red, then the word it names typed; None
    without a terminal."""
    if not sys.stdin.isatty():
        return None
    protected = asker(env)

    def ask(action: str, word: str) -> str:
        if env.protected and protected is not None and word == env.name:
            return protected(action)
        err.print(f"[bold red]{action}[/] on [bold]{env.name}[/].")
        return str(typer.prompt(f"Type {word!r} to go on", default="", show_default=False, err=True))

    return ask


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {key: _plain(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """Write JSON to stdout (dataclasses, paths and datetimes included)."""
    sys.stdout.write(json.dumps(_plain(value), default=str, indent=2) + "\n")


def say(message: str) -> None:
    """Progress for people, on stderr so that --json output stays clean."""
    err.print(message)


def required(value: str | None, what: str) -> str:
    """A value the command cannot go without, stripped; missing or blank is a usage error (exit 2)."""
    if value is None or not value.strip():
        raise UsageError(f"give {what}")
    return value.strip()


def warn(message: str) -> None:
    """A warning for people, on stderr."""
    err.print(f"[yellow]warning:[/] {escape(message)}")


def routed(env: Environment, replica: str | None, command: str) -> Target | None:
    """Where a read-only command reads: the replica routing picks (said on stderr), or None for the primary."""
    if replica is None:
        return None
    from cuisine_db.replicas import routing

    return routing.routed(settings(), env, replica, command=command, notify=say, warn=warn)
