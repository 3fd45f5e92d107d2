"""Migration files in dbmate's format: `YYYYMMDDHHMMSS_name.sql` with `-- migrate:up` / `-- migrate:down`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cuisine_db.errors import UsageError

# dbmate's rules: a file is a migration when its name starts with digits (the version) and ends in `.sql`;
# anything else in the folder is not a migration and is left alone. Character classes are spelled out so that
# Python matches exactly the ASCII digits and blanks Go's regexp does.
FILE_NAME = re.compile(r"(?P<version>[0-9]+)(?P<rest>[^\n]*)\.sql")
MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
VERSION = re.compile(r"^[0-9]{1,128}$")
_BLANK = "[ \t\n\f\r]"
# A marker is `--`, optional blanks, `migrate:up` or `migrate:down`, then the end of the line or blanks and options;
# `-- migrate:upper` is an ordinary comment.
_MARKER = re.compile(rf"^--{_BLANK}*migrate:(?P<which>up|down)(?={_BLANK}*$|{_BLANK}+[^ \t\n\f\r])", re.MULTILINE)
_COMMENT_OR_BLANK = re.compile(rf"{_BLANK}*(--.*)?")

TEMPLATE = """-- migrate:up


-- migrate:down

"""


@dataclass(frozen=True, slots=True)
class Section:
    """The SQL of one direction and whether it runs inside a transaction."""

    sql: str
    transaction: bool


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One migration as it stands on disk; `problem` says why dbmate would refuse to run it (then up and down
    are empty and the file can be listed, not applied or rolled back)."""

    version: str
    name: str
    path: Path
    up: Section
    down: Section
    checksum: str
    problem: str | None = None


def checksum(text: str) -> str:
    """sha256 of the file with line endings and trailing spaces normalised: those edits are not drift."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def is_migration_name(file_name: str) -> bool:
    """True for the file names dbmate treats as migrations (`001_init.sql`, `20250101000000_a.sql`, `7.sql`)."""
    return FILE_NAME.fullmatch(file_name) is not None


def transaction_option(marker_line: str) -> bool:
    """Whether a section runs in a transaction, read from its marker line as dbmate reads it.

    Options are blank-separated `key:value` words; a word that is not exactly one key and one value, and any
    key but `transaction`, is ignored. Only the exact value `false` turns the transaction off (dbmate compares
    case-sensitively, so `transaction:FALSE` runs in a transaction, in both tools); the last word wins.
    """
    options: dict[str, str] = {}
    for word in re.split(f"{_BLANK}+", marker_line.strip(" \t\n\f\r")):
        pair = word.split(":")
        if len(pair) == 2:
            options[pair[0]] = pair[1]
    return options.get("transaction") != "false"


def _sections(text: str) -> tuple[Section, Section]:
    """The up and down sections, or UsageError with the reason dbmate refuses the file for."""
    markers = list(_MARKER.finditer(text))
    ups = [marker for marker in markers if marker.group("which") == "up"]
    if not ups:
        raise UsageError("no '-- migrate:up' section (dbmate refuses it too)")
    before = text[:ups[0].start()].split("\n")
    if not all(_COMMENT_OR_BLANK.fullmatch(line) for line in before):
        raise UsageError("SQL before '-- migrate:up' would never run; dbmate refuses such a file too",
                         hint="move it under '-- migrate:up' or delete it")
    if len(ups) > 1:
        raise UsageError("more than one '-- migrate:up' section",
                         hint="dbmate records the version once per section and fails on the second; "
                              "split the file into two migrations")
    downs = [marker for marker in markers if marker.group("which") == "down" and marker.start() > ups[0].start()]
    if not downs:
        raise UsageError("no '-- migrate:down' section (dbmate refuses it too, when it applies the file)",
                         hint="add '-- migrate:down' with the SQL that undoes the migration (it may stay empty)")
    if len(downs) > 1:
        raise UsageError("more than one '-- migrate:down' section (dbmate refuses it too)")
    up, down = ups[0], downs[0]

    def section(marker: re.Match[str], end: int) -> Section:
        line_end = text.find("\n", marker.end())
        line_end = end if line_end == -1 or line_end > end else line_end
        return Section(text[line_end:end].strip(), transaction_option(text[marker.end():line_end]))

    return section(up, down.start()), section(down, len(text))


def read(path: Path) -> MigrationFile:
    """Read one migration file found by `discover`; a file dbmate would refuse carries the reason as `problem`."""
    match = FILE_NAME.fullmatch(path.name)
    if match is None:
        raise UsageError(f"{path.name}: not a migration file name: it must start with digits and end in .sql",
                         hint="dbmate names them YYYYMMDDHHMMSS_name.sql")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read migration {path}: {exc}") from None
    name = match.group("rest").removeprefix("_")
    try:
        up, down = _sections(text)
    except UsageError as exc:
        empty = Section("", True)
        return MigrationFile(match.group("version"), name, path, empty, empty, checksum(text),
                             problem=f"{path.name}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
    return MigrationFile(match.group("version"), name, path, up, down, checksum(text))


def parse(path: Path) -> MigrationFile:
    """Read one migration file; a file dbmate would refuse is an error naming it and the reason."""
    migration = read(path)
    if migration.problem is not None:
        raise UsageError(migration.problem)
    return migration


def refuse_problems(chosen: Iterable[MigrationFile]) -> None:
    """Files about to run that dbmate would refuse stop the run before anything is applied."""
    for migration in chosen:
        if migration.problem is not None:
            raise UsageError(migration.problem, hint="nothing was applied or rolled back; fix the file and run again")


def refuse_empty(pending: Iterable[MigrationFile]) -> None:
    """An up section without a statement (a file just created, say) is a mistake, never a migration to record."""
    from cuisine_db.migrations.split import statements

    for migration in pending:
        if not statements(migration.up.sql):
            raise UsageError(f"{migration.path.name}: its '-- migrate:up' section has no statement; "
                             "nothing was applied",
                             hint="write the migration's SQL under '-- migrate:up', or delete the file")


def discover(folder: Path) -> list[MigrationFile]:
    """Every migration in the folder in dbmate's order (by file name); two files with one version is an error.

    Like dbmate, only regular files whose names start with digits and end in `.sql` are migrations; a file
    dbmate would refuse to run is listed with its `problem`, so that status still works and only running it stops.
    """
    if not folder.is_dir():
        return []
    found = [read(path) for path in sorted(folder.iterdir(), key=lambda p: p.name.encode())
             if is_migration_name(path.name) and path.is_file()]
    seen: dict[str, Path] = {}
    for migration in found:
        if migration.version in seen:
            raise UsageError(
                f"two migrations share version {migration.version}: "
                f"{seen[migration.version].name} and {migration.path.name}",
                hint="dbmate would apply only the first and call the second applied; rename one",
            )
        seen[migration.version] = migration.path
    return found


def ignored(folder: Path) -> list[str]:
    """Names of `.sql` files in the folder that are not migrations (dbmate skips them without a word)."""
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir()
                  if path.name.endswith(".sql") and not is_migration_name(path.name))


def create(folder: Path, name: str, now: datetime | None = None) -> Path:
    """Write a new empty migration named after a UTC timestamp; refuse bad and duplicate names."""
    if not MIGRATION_NAME.match(name):
        raise UsageError(
            f"bad migration name {name!r}",
            hint="use lowercase letters, digits and underscores, starting with a letter (add_user_preferences)",
        )
    existing = discover(folder)
    for migration in existing:
        if migration.name == name:
            raise UsageError(f"a migration named {name!r} already exists: {migration.path.name}")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    versions = {migration.version for migration in existing}
    while moment.strftime("%Y%m%d%H%M%S") in versions:
        moment += timedelta(seconds=1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{moment.strftime('%Y%m%d%H%M%S')}_{name}.sql"
    with path.open("x", encoding="utf-8") as handle:
        handle.write(TEMPLATE)
    return path


def check_version(value: str) -> str:
    if not VERSION.match(value):
        raise UsageError(f"bad migration version {value!r}",
                         hint="a version is the digits a migration file name starts with: YYYYMMDDHHMMSS")
    return value
