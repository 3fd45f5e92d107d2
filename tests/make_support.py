"""The Makefile's contract, read and run: which variables each target reads, what it hands the CLI (a recorder stands
in for it), and whether the runbook's make lines, the Makefile, docs/runbook.md and the CLI's commands agree."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from typer._click import Command, Context
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from cuisine_db.cli import COMMANDS, load

REPO = Path(__file__).resolve().parents[1]
MAKEFILE = REPO / "Makefile"
DOCS_RUNBOOK = REPO / "docs" / "runbook.md"

# The recorder: its argv, NUL-separated, to $CUISINE_DB_RECORD; the password make passes in the environment beside it.
RECORDER = """#!/bin/bash
printf '%s\\0' "$@" > "$CUISINE_DB_RECORD"
if [ -n "${CUISINE_DB_PASSWORD+set}" ]; then printf '%s' "$CUISINE_DB_PASSWORD" > "$CUISINE_DB_RECORD.password"; fi
"""

# How the Makefile reads an operator's variable: $(call v|opt|given,NAME) and $(value NAME) as data, flag01 as 0/1.
_DATA_READ = re.compile(r"\$\((?:call (?:v|opt|given),|value )([A-Za-z_][A-Za-z0-9_-]*)[,)]")
_FLAG_READ = re.compile(r"\$\(call flag01,([A-Za-z_][A-Za-z0-9_-]*)[,)]")
_MACRO = re.compile(r"\$\(([A-Z][A-Z0-9_]*)\)")
# What make would expand: a plain reference to a lowercase variable ($(x), ${x}, $x) or a computed one ($($(1))).
_RAW_READ = re.compile(r"(?<!\$)\$(?:[({][a-z][a-z0-9_-]*[)}]|[a-z]|\(\$\()")
_RULE = re.compile(r"^([a-z][a-z0-9 -]*[a-z0-9]):(?!=)\s*(.*)$")
_DEFINITION = re.compile(r"^(?:override\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?=|:=|=)\s*(.*)$")


@dataclass
class Reads:
    """The operator's variables one target reads: data (handed to the CLI) and 0/1 flags."""

    data: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    calls_cli: bool = False


def _logical_lines(text: str) -> list[str]:
    """The Makefile's lines with backslash continuations joined, `define` blocks left out."""
    lines: list[str] = []
    inside_define = False
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("define "):
            inside_define = True
        elif line.startswith("endef"):
            inside_define = False
        elif not inside_define:
            lines.append(line)
    return lines


def makefile_reads(text: str) -> dict[str, Reads]:
    """For every rule's target: what its recipe (through the Makefile's variables, recursively) reads."""
    definitions: dict[str, str] = {}
    bodies: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _logical_lines(text):
        if line.startswith("\t"):
            for target in current:
                bodies[target].append(line)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rule = _RULE.match(line)
        if rule and not line.startswith(("override ", "export ", "unexport ")):
            current = rule.group(1).split()
            rest = rule.group(2).split("#", 1)[0]
            for target in current:
                bodies.setdefault(target, [])
                if "=" in rest:  # a target-specific variable: `target: export X := $(value password)`
                    bodies[target].append(rest)
            if "=" in rest:
                current = []
            continue
        definition = _DEFINITION.match(line)
        if definition:
            definitions[definition.group(1)] = definition.group(2)
        current = []

    def expand(body: str, seen: frozenset[str]) -> str:
        parts = [body]
        for name in _MACRO.findall(body):
            if name in definitions and name not in seen:
                parts.append(expand(definitions[name], seen | {name}))
        return " ".join(parts)

    reads: dict[str, Reads] = {}
    for target, lines in bodies.items():
        body = expand(" ".join(lines), frozenset())
        reads[target] = Reads(set(_DATA_READ.findall(body)), set(_FLAG_READ.findall(body)), "$(call cli," in body)
    return reads


def raw_reads(text: str) -> list[str]:
    """Lines that let make expand an operator's variable (a plain $(x), ${x}, $x or $($(...)) reference)."""
    return [line for line in _logical_lines(text) if not line.lstrip().startswith("#") and _RAW_READ.search(line)]


def help_targets() -> list[str]:
    """The targets `make help` lists, in its order."""
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "help"], capture_output=True, text=True,
                            check=True, timeout=60, env=clean_environment())
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def clean_environment(**extra: str) -> dict[str, str]:
    """An environment without stray variables make would read as an operator's (`env`, `name`, ...)."""
    keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    return {**keep, **extra}


@dataclass
class Run:
    """One make run against the recorder: make's result, the CLI's argv (None: not called) and password."""

    result: subprocess.CompletedProcess[bytes]
    argv: list[bytes] | None
    password: bytes | None


class Recorder:
    """make with CLI= pointed at the recorder and READY= at a file newer than pyproject.toml (no venv needed)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.program = folder / "recorder"
        self.program.write_text(RECORDER)
        self.program.chmod(0o755)
        self.ready = folder / "ready"
        self.ready.touch()
        self.record = folder / "argv"
        self.password_record = folder / "argv.password"

    def make(self, *args: str, dry_run: bool = False, program: Path | None = None,
             environ: dict[str, str] | None = None) -> Run:
        for stale in (self.record, self.password_record):
            stale.unlink(missing_ok=True)
        argv = ["make", "--no-print-directory", "-C", str(REPO)]
        if dry_run:
            argv.append("-n")
        argv += [*args, f"CLI={program or self.program}", f"READY={self.ready}"]
        environment = environ or clean_environment()
        result = subprocess.run(argv, capture_output=True, timeout=60, check=False,
                                env={**environment, "CUISINE_DB_RECORD": str(self.record)})
        recorded = self.record.read_bytes().split(b"\0")[:-1] if self.record.exists() else None
        password = self.password_record.read_bytes() if self.password_record.exists() else None
        return Run(result, recorded, password)


# --- The runbook, the Makefile, docs/runbook.md and the CLI in sync ------------------------------------------------

_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def find_runbook() -> Path | None:
    """The team's runbook: `shared/runbook.md` beside the clone (CI) or beside one of its parent folders (worktrees)."""
    for folder in REPO.parents:
        candidate = folder / "shared" / "runbook.md"
        if candidate.is_file():
            return candidate
    return None


def runbook_commands(text: str) -> list[list[str]]:
    """Every `make ...` command of a Markdown text (fenced code blocks and inline code), as make's arguments."""
    snippets: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            snippets.append(line.strip())
        else:
            snippets += [code.strip() for code in _INLINE_CODE.findall(line)]
    commands: list[list[str]] = []
    for snippet in snippets:
        if snippet.startswith("make "):
            words = shlex.split(snippet, comments=True)[1:]
            if words and words not in commands:
                commands.append(words)
    return commands


def cli_problem(argv: list[str]) -> str | None:
    """Why ARGV is not a real `cuisine-db` command line (its command, subcommand and options), or None."""
    if not argv:
        return "the CLI is not called"
    name, *rest = argv
    if name not in COMMANDS:
        return f"no CLI command {name!r} in cuisine_db.cli.COMMANDS"
    command: Command = load(name)
    path = [name]
    parent: Context | None = None
    while isinstance(command, TyperGroup):  # Typer vendors click: its groups are TyperGroups
        if not rest:
            return f"`cuisine-db {' '.join(path)}` needs a subcommand"
        parent = Context(command, info_name=path[-1], parent=parent)
        sub = command.get_command(parent, rest[0])
        if sub is None:
            return f"no CLI command `cuisine-db {' '.join(path)} {rest[0]}`"
        path.append(rest.pop(0))
        command = sub
    try:
        command.make_context(path[-1], list(rest), parent=parent)
    except ClickException as exc:
        return f"`cuisine-db {' '.join(path)}` does not take {' '.join(rest)!r}: {exc.format_message()}"
    return None


def documents(documented: str, target: str) -> bool:
    """Whether docs/runbook.md shows `make TARGET` (alone, or among alternatives: `make a\\|b\\|c`)."""
    return re.search(r"`make (?:[a-z-]+\\\|)*" + re.escape(target) + r"[ `\\]", documented) is not None


def sync_problems(commands: Iterable[list[str]], targets: set[str], documented: str,
                  cli_argv: Callable[[list[str]], list[str] | None]) -> list[str]:
    """For each runbook make command: a Makefile target, a row in docs/runbook.md, a real CLI command line behind it.
    `cli_argv` runs the command and returns the argv the CLI received (None when it was not called)."""
    problems: list[str] = []
    for words in commands:
        shown = "make " + " ".join(words)
        goals = [word for word in words if "=" not in word]
        missing = [goal for goal in goals if goal not in targets]
        if missing:
            problems.append(f"{shown}: no Makefile target {', '.join(missing)}")
            continue
        if not documents(documented, goals[0]):
            problems.append(f"{shown}: `make {goals[0]}` is not documented in docs/runbook.md")
        argv = cli_argv(words)
        problem = cli_problem(argv or [])
        if problem:
            problems.append(f"{shown}: {problem}")
    return problems
