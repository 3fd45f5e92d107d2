"""The top-level CLI imports only the command being run, and still lists, helps and refuses as it always did."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.core import TyperGroup

from cuisine_db.cli import COMMANDS, load

# What `cuisine-db --help` listed before commands were loaded lazily, in its order.
LISTED = ["psql", "seed", "size", "table-sizes", "connections", "locks", "terminate-query", "monitor", "growth",
          "slow-queries", "explain", "analyze", "vacuum-analyze", "dr-drill", "dashboard", "env", "postgres", "cluster",
          "migrate",
          "backup", "restore", "maintenance", "security", "metrics", "archive", "index", "config", "wal", "schedule",
          "replica", "pooler", "incident", "integrity", "upgrade"]

# Runs the real entry point with ARGV and prints which cuisine_db (and rich.progress) modules it imported.
PROBE = """
import json, sys
sys.argv = ["cuisine-db", *json.loads(sys.argv[1])]
from cuisine_db.entry import main
try:
    main()
except SystemExit:
    pass
print("MODULES " + json.dumps(sorted(m for m in sys.modules if m.startswith(("cuisine_db", "rich.progress")))))
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "COLUMNS": "120", "CUISINE_DB_CONFIG": "/nonexistent/cuisine-db.toml"}
    return subprocess.run([sys.executable, "-m", "cuisine_db", *args], capture_output=True, text=True, check=False,
                          env=environ, timeout=120)


def imported_by(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                            check=True, timeout=120)
    line = result.stdout.splitlines()[-1]
    assert line.startswith("MODULES "), result.stdout
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.mark.parametrize(("args", "needed"), [
    (("backup", "list", "--help"), "cuisine_db.cli.backups"),
    (("restore", "database", "--help"), "cuisine_db.cli.restore"),
])
def test_a_command_imports_its_own_module_only(args: tuple[str, ...], needed: str) -> None:
    modules = imported_by(*args)
    assert needed in modules
    unrelated = {"cuisine_db.cli.archive", "cuisine_db.archive.service", "cuisine_db.cli.security",
                 "cuisine_db.cli.migrate", "cuisine_db.migrations.runner", "cuisine_db.cli.integrity",
                 "cuisine_db.cli.incidents", "cuisine_db.cli.indexes", "cuisine_db.diagnose.connections",
                 "cuisine_db.diagnose.locks", "cuisine_db.diagnose.sizes",
                 "rich.progress"}  # drawn only on a terminal
    assert not modules & unrelated, modules & unrelated


def test_the_full_help_still_imports_and_lists_every_command() -> None:
    assert list(COMMANDS) == LISTED
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    # Rows of the Commands panel: "│ name   help..."; continuation lines start with spaces.
    listed = re.findall(r"^│ ([a-z][a-z-]*) ", result.stdout.split("Commands", 1)[1], flags=re.MULTILINE)
    assert listed == LISTED
    assert "Restores: whole database, chosen tables" in result.stdout  # a group's help, from its module


def test_every_registered_command_loads_under_its_name() -> None:
    for name in COMMANDS:
        command = load(name)
        assert command.name == name and command.help, name
    # A Typer app with one command would otherwise run that command as the root: groups stay groups.
    assert isinstance(load("metrics"), TyperGroup) and "serve" in load("metrics").commands  # type: ignore[attr-defined]
    assert load("psql").context_settings == {"allow_extra_args": True, "ignore_unknown_options": True}


def test_a_subcommand_runs_through_its_group() -> None:
    result = cli("backup", "list", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: cuisine-db backup list [OPTIONS]" in result.stdout


@pytest.mark.parametrize(("args", "line"), [
    (("bogus",), "error: cuisine-db: No such command 'bogus'."),
    (("tabel-sizes",), "error: cuisine-db: No such command 'tabel-sizes'. Did you mean 'table-sizes'?"),
    (("--bogus",), "error: cuisine-db: No such option: --bogus"),
    (("backup", "lst"), "error: cuisine-db backup: No such command 'lst'. Did you mean 'list'?"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], line: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_no_arguments_shows_the_help_and_exits_2() -> None:
    result = cli()
    assert result.returncode == 2
    assert "Usage: cuisine-db [OPTIONS] COMMAND [ARGS]..." in result.stdout and "dr-drill" in result.stdout


def test_the_progress_bar_draws_on_a_terminal_and_stays_silent_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from cuisine_db.cli import render

    screen = io.StringIO()
    monkeypatch.setattr(render, "err", Console(file=screen, force_terminal=True, width=100))
    with render.progress_bar("backup", enabled=True) as start:
        advance = start(2_000_000)
        assert advance is not None
        advance(1_000_000)
    assert "backup" in screen.getvalue() and "MB" in screen.getvalue()
    with render.progress_bar("backup", enabled=False) as start:
        assert start(10) is None
