"""CLI command modules do not import each other: what they share lives in cli/common.py and cli/render.py (and a
command's own renderer), service logic in the services; and they ask for no confirmation themselves: the services
own that rule (ops/confirmation), the CLI only hands them the terminal's prompt (cli/common.asker)."""

from __future__ import annotations

import ast
from pathlib import Path

from cuisine_db.cli import COMMANDS

CLI = Path(__file__).resolve().parents[2] / "src" / "cuisine_db" / "cli"


def command_imports(source: str) -> set[str]:
    """The command modules (those COMMANDS names) that `source` imports, at any depth of the file."""
    commands = {module for module, _ in COMMANDS.values()}
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "cuisine_db.cli":
                found |= {alias.name for alias in node.names} & commands
            elif node.module.startswith("cuisine_db.cli."):
                found |= {node.module.removeprefix("cuisine_db.cli.").split(".")[0]} & commands
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("cuisine_db.cli.").split(".")[0] for alias in node.names
                      if alias.name.startswith("cuisine_db.cli.")} & commands
    return found


def test_no_cli_module_imports_a_command_module() -> None:
    imports = {path.name: command_imports(path.read_text()) for path in sorted(CLI.glob("*.py"))
               if path.name != "__init__.py"}
    assert len(imports) >= 25
    assert {name: found for name, found in imports.items() if found} == {}


def test_the_check_sees_each_spelling_of_such_an_import() -> None:
    planted = ("from cuisine_db.cli.backups import size\nfrom cuisine_db.cli import restore, render\n"
               "def f() -> None:\n    import cuisine_db.cli.sizes\n"
               "from cuisine_db.cli.common import out\nfrom cuisine_db.cli.render import show_findings\n")
    assert command_imports(planted) == {"backups", "restore", "sizes"}


def confirmation_calls(source: str) -> list[str]:
    """Calls in `source` to anything named like a confirmation (confirm, typer.confirm, confirm_always, ...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else "")
            if "confirm" in name.lower():
                found.append(f"{name}() on line {node.lineno}")
    return found


def test_no_cli_module_asks_for_a_confirmation_itself() -> None:
    calls = {path.name: confirmation_calls(path.read_text()) for path in sorted(CLI.glob("*.py"))}
    assert len(calls) >= 25
    assert "upgrade.py" in calls
    assert {name: found for name, found in calls.items() if found} == {}


def test_the_check_sees_each_spelling_of_a_confirmation() -> None:
    planted = ("def f(env, yes):\n    confirm(env, 'Dropping', yes)\n    common.confirm(env, 'x', yes)\n"
               "    _confirm_always(env, 'x', 'w', yes)\n    typer.confirm('sure?')\n"
               "    typer.prompt('New password', confirmation_prompt=True)\n    service.run(env, ask=asker(env))\n")
    assert confirmation_calls(planted) == ["confirm() on line 2", "confirm() on line 3", "_confirm_always() on line 4",
                                           "confirm() on line 5"]


def journal_imports(source: str) -> list[str]:
    """Imports in `source` of the journal (cuisine_db.ops.journal, or journal from cuisine_db.ops)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = {f"{node.module}.{alias.name}" for alias in node.names} | {str(node.module)}
        elif isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        else:
            continue
        if "cuisine_db.ops.journal" in names:
            found.append(f"line {node.lineno}")
    return found


def test_command_modules_leave_the_journal_to_the_services() -> None:
    """Every mutating command is journaled by its service, whoever calls it (schedule, drill, dashboard): no command
    module writes journal lines."""
    imports = {path.name: journal_imports(path.read_text()) for path in sorted(CLI.glob("*.py"))}
    assert {"archive.py", "backups.py", "clusters.py", "drill.py", "incidents.py", "indexes.py", "integrity.py",
            "locks.py", "maintenance.py", "migrate.py", "pooler.py", "replicas.py", "restore.py", "schedule.py",
            "security.py", "seed.py", "server_config.py", "upgrade.py", "wal.py"} <= set(imports)
    assert {name: found for name, found in imports.items() if found} == {}
    assert journal_imports("from cuisine_db.ops.journal import journaled\nfrom cuisine_db.ops import journal\n"
                           "def f() -> None:\n    import cuisine_db.ops.journal\n") == ["line 1", "line 2", "line 4"]
