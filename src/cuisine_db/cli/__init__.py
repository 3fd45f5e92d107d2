"""The `cuisine-db` command: parse, call a service, render. No SQL here.

Every command is listed in COMMANDS with the module that holds it (`cuisine_db.cli.<module>`). Only the module of
the command being run is imported: start-up is paid on every command, and the backup and restore benchmarks
(issue 3) measure it. `cuisine-db --help` loads them all, since it shows each command's help.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import typer

# Typer vendors click; its usage errors are caught here so each becomes one line and exit 2.
from typer._click import Command
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from cuisine_db.errors import EXIT_USAGE, CuisineDbError

# command name -> (module in cuisine_db.cli, attribute): a Typer app is a group of subcommands, a function is
# one command. In the order `cuisine-db --help` lists them: single commands first, then groups.
COMMANDS: dict[str, tuple[str, str]] = {
    "psql": ("environments", "psql"),
    "seed": ("seed", "seed"),
    "size": ("sizes", "size"),
    "table-sizes": ("sizes", "sizes"),
    "connections": ("connections", "connections"),
    "locks": ("locks", "locks"),
    "terminate-query": ("locks", "terminate_query"),
    "monitor": ("monitor", "monitor"),
    "growth": ("monitor", "growth"),
    # Performance tuning (issue 5)
    "slow-queries": ("queries", "slow_queries"),
    "explain": ("queries", "explain"),
    "analyze": ("indexes", "analyze"),
    "vacuum-analyze": ("indexes", "vacuum_analyze"),
    "dr-drill": ("drill", "dr_drill"),
    "dashboard": ("dashboard", "dashboard"),
    "env": ("environments", "env_app"),
    "postgres": ("clusters", "postgres_app"),
    "cluster": ("clusters", "cluster_app"),
    "migrate": ("migrate", "app"),
    "backup": ("backups", "app"),
    "restore": ("restore", "app"),
    "maintenance": ("maintenance", "app"),
    "security": ("security", "app"),
    "metrics": ("monitor", "metrics_app"),
    "archive": ("archive", "app"),
    "index": ("indexes", "app"),
    "config": ("server_config", "app"),
    # Point-in-time recovery (issue 4): WAL archiving (push/fetch/check take the light path in entry.py)
    "wal": ("wal", "app"),
    "schedule": ("schedule", "app"),
    # Read replicas and pooling (issue 9)
    "replica": ("replicas", "app"),
    "pooler": ("pooler", "app"),
    "incident": ("incidents", "app"),
    "integrity": ("integrity", "app"),
}

# psql hands what it does not know (after `--`) to psql itself.
CONTEXT_SETTINGS: dict[str, dict[str, Any]] = {
    "psql": {"allow_extra_args": True, "ignore_unknown_options": True},
}


def load(name: str) -> Command:
    """The click command for `cuisine-db NAME`, built exactly as Typer builds a registered command or group."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(f"cuisine_db.cli.{module}"), attribute)
    holder = typer.Typer()  # a throwaway parent: Typer only turns a sub-app into a group through add_typer
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name, context_settings=CONTEXT_SETTINGS.get(name))(target)
    return typer.main.get_group(holder).commands[name]


class _Commands(Mapping[str, Command]):
    """The registry as the mapping click reads: every name is listed, a command is built when it is looked up."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load(name)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """The top-level group: lists every command in COMMANDS and imports only the one looked up."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()  # type: ignore[assignment]  # read-only: nothing adds commands at run time


app = typer.Typer(
    name="cuisine-db",
    cls=LazyGroup,
    help="The Cuisine Code database runbook, as commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Without a callback Typer would not build a group, as no command is added to `app` itself."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    """Entry point: user errors become one line and an exit code; bugs keep their traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="cuisine-db", standalone_mode=False)
    except CuisineDbError as exc:
        line = f"error: {_one_line(exc.message)}"
        if exc.hint:
            line += f" (hint: {_one_line(exc.hint)})"
        sys.stderr.write(line + "\n")
        sys.exit(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError:
        sys.exit(EXIT_USAGE)  # the help has been shown
    except click_exceptions.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        sys.stderr.write(f"error: {where}{_one_line(exc.format_message())}\n")
        sys.exit(EXIT_USAGE)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("aborted; nothing more was done\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
