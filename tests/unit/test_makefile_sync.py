"""The runbook, the Makefile, docs/runbook.md and the CLI agree: every `make ...` line of the team's runbook is a
Makefile target, documented in docs/runbook.md, whose recipe is a real `cuisine-db` command line."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from make_support import (
    DOCS_RUNBOOK,
    MAKEFILE,
    Recorder,
    cli_problem,
    documents,
    find_runbook,
    help_targets,
    makefile_reads,
    runbook_commands,
    sync_problems,
)

from cuisine_db.cli import COMMANDS

RUNBOOK = find_runbook()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    return Recorder(tmp_path_factory.mktemp("recorder"))


def recorded_argv(recorder: Recorder) -> Callable[[list[str]], list[str] | None]:
    def run(words: list[str]) -> list[str] | None:
        argv = recorder.make(*words).argv
        return None if argv is None else [word.decode() for word in argv]
    return run


@pytest.mark.skipif(RUNBOOK is None, reason="the team's runbook (shared/runbook.md beside the clone) is not here")
def test_every_runbook_make_command_is_a_documented_target_running_a_real_cli_command(recorder: Recorder) -> None:
    assert RUNBOOK is not None
    commands = runbook_commands(RUNBOOK.read_text())
    assert len(commands) >= 40 and ["db-maintenance-mode", "enable"] in commands
    targets = set(makefile_reads(MAKEFILE.read_text()))
    assert sync_problems(commands, targets, DOCS_RUNBOOK.read_text(), recorded_argv(recorder)) == []


def test_every_target_of_make_help_has_a_row_in_docs_runbook() -> None:
    documented = DOCS_RUNBOOK.read_text()
    assert [target for target in help_targets() if not documents(documented, target)] == []
    assert documents("| `make cluster-up\\|cluster-down env=E` |", "cluster-down")
    assert not documents("| `make db-seeded` |", "db-seed")


def test_the_check_finds_each_kind_of_mismatch() -> None:
    """Planted mismatches: a target the Makefile lacks, one docs/runbook.md lacks, recipes calling no real command."""
    documented = "| `make db-a env=E` | ... |\n| `make db-b` | ... |\n| `make db-c` | ... |\n| `make db-d` |\n"
    recipes = {"db-a": ["migrate", "up", "--env", "production"], "db-b": ["nosuch"], "db-c": ["backup", "nosuch"],
               "db-d": ["migrate", "up", "--no-such-option"], "db-e": ["migrate", "up"]}
    commands = [["db-a", "env=production"], ["db-b"], ["db-c"], ["db-d"], ["db-e"], ["db-missing", "env=x"],
                ["db-a", "other-goal"]]
    problems = sync_problems(commands, set(recipes), documented, lambda words: recipes[words[0]])
    assert problems == [
        "make db-b: no CLI command 'nosuch' in cuisine_db.cli.COMMANDS",
        "make db-c: no CLI command `cuisine-db backup nosuch`",
        "make db-d: `cuisine-db migrate up` does not take '--no-such-option': No such option: --no-such-option",
        "make db-e: `make db-e` is not documented in docs/runbook.md",
        "make db-missing env=x: no Makefile target db-missing",
        "make db-a other-goal: no Makefile target other-goal",
    ]
    assert sync_problems([["db-a"]], {"db-a"}, documented, lambda words: None) == [
        "make db-a: the CLI is not called"]


def test_cli_commands_resolve_through_the_registry_and_typer() -> None:
    assert cli_problem(["restore", "tables", "--env", "production", "--backup", "latest", "--tables", "a,b"]) is None
    assert cli_problem(["explain", "--", "SELECT 1"]) is None
    assert cli_problem(["backup"]) == "`cuisine-db backup` needs a subcommand"
    assert cli_problem(["seed", "--scale", "many"]) is not None  # options are parsed with their types


def test_runbook_commands_are_read_from_code_blocks_and_inline_code() -> None:
    text = ("- Run: `make db-analyze env=production`\n```bash\nmake db-backup env=production type=full\n"
            "   make maintenance-mode enable reason=\"x y\"  # comment\n```\nmake believe is not a command\n")
    assert runbook_commands(text) == [["db-analyze", "env=production"], ["db-backup", "env=production", "type=full"],
                                      ["maintenance-mode", "enable", "reason=x y"]]


def module_problems(documented: str) -> list[str]:
    """Rows of docs/runbook.md's tables that do not name the CLI module holding their command: the command is the
    first `cuisine-db WORD` of the row's first two cells, its module `cli/<module>.py` from cuisine_db.cli.COMMANDS,
    and the third cell (the code column) must name it."""
    problems = []
    for line in documented.splitlines():
        if not line.startswith("| ") or line.startswith(("| ---", "|---")):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) < 3:
            continue
        found = re.search(r"`cuisine-db ([a-z-]+)", " ".join(cells[:2]))
        if found is None or found.group(1) not in COMMANDS:
            continue
        module = f"cli/{COMMANDS[found.group(1)][0]}.py"
        if module not in cells[2]:
            problems.append(f"{cells[0][:60]}: the code column does not name {module}")
    return problems


def test_every_row_of_docs_runbook_names_the_cli_module_of_its_command() -> None:
    assert module_problems(DOCS_RUNBOOK.read_text()) == []
    planted = ("| `make db-a` | `cuisine-db restore database`: ... | `backup/restore_service.py` | works |\n"
               "| `make db-b` | `cuisine-db restore tables` | `cli/restore.py` → `backup/restore_service.py` |\n"
               "| `make db-c` | `cuisine-db size` | `cli/backups.py` | works |\n| command | what runs | code |\n")
    assert module_problems(planted) == ["`make db-a`: the code column does not name cli/restore.py",
                                        "`make db-c`: the code column does not name cli/sizes.py"]
