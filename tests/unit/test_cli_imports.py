"""CLI command modules do not import each other: what they share lives in cli/common.py and cli/render.py (and a
command's own renderer), service logic in the services."""

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
