"""What every command shares: options, the settings, confirmations, output and the error handler."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from functools import cache
from typing import Annotated, Any

import typer
from rich.console import Console

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.errors import RefusedError

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


@cache
def settings() -> Settings:
    """The settings, read once per process."""
    return load_settings()


def environment(name: str | None) -> Environment:
    return settings().env(name)


def confirm(env: Environment, action: str, yes: bool) -> None:
    """Protected environments need the operator to type the environment's name, or --yes; never a hidden prompt."""
    if not env.protected or yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError(
            f"{action} on protected environment {env.name!r} needs confirmation and there is no terminal to ask",
            hint="add yes=1 to the make command (or --yes) once you are sure",
        )
    err.print(f"[bold red]{action}[/] on protected environment [bold]{env.name}[/].")
    typed = typer.prompt(f"Type {env.name!r} to go on", default="", show_default=False)
    if typed.strip() != env.name:
        raise RefusedError("confirmation did not match the environment's name; nothing was done")


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
