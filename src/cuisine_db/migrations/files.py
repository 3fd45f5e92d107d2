"""Migration files in dbmate's format: `YYYYMMDDHHMMSS_name.sql` with `-- migrate:up` / `-- migrate:down`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cuisine_db.errors import UsageError

FILE_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")
MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
VERSION = re.compile(r"^\d{14}$")
_SECTION = re.compile(r"^--\s*migrate:(?P<which>up|down)(?P<options>[^\n]*)$", re.MULTILINE)

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
    """One migration as it stands on disk."""

    version: str
    name: str
    path: Path
    up: Section
    down: Section
    checksum: str


def checksum(text: str) -> str:
    """sha256 of the file with line endings and trailing spaces normalised: those edits are not drift."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _options(raw: str, path: Path) -> bool:
    transaction = True
    for option in raw.split():
        key, _, value = option.partition(":")
        if key != "transaction" or value not in ("true", "false"):
            raise UsageError(f"{path.name}: unknown migration option {option!r}",
                             hint="the only option is transaction:false")
        transaction = value == "true"
    return transaction


def parse(path: Path) -> MigrationFile:
    """Read one migration file; a file without a `-- migrate:up` section is an error naming it."""
    match = FILE_NAME.match(path.name)
    if match is None:
        raise UsageError(f"{path.name}: migration files are named YYYYMMDDHHMMSS_name.sql")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read migration {path}: {exc}") from None
    markers = list(_SECTION.finditer(text))
    sections: dict[str, Section] = {}
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        which = marker.group("which")
        if which in sections:
            raise UsageError(f"{path.name}: more than one '-- migrate:{which}' section")
        sections[which] = Section(text[marker.end():end].strip(), _options(marker.group("options"), path))
    if "up" not in sections:
        raise UsageError(f"{path.name}: no '-- migrate:up' section")
    return MigrationFile(
        version=match.group("version"),
        name=match.group("name"),
        path=path,
        up=sections["up"],
        down=sections.get("down", Section("", True)),
        checksum=checksum(text),
    )


def refuse_empty(pending: Iterable[MigrationFile]) -> None:
    """An up section without a statement (a file just created, say) is a mistake, never a migration to record."""
    from cuisine_db.migrations.split import statements

    for migration in pending:
        if not statements(migration.up.sql):
            raise UsageError(f"{migration.path.name}: its '-- migrate:up' section has no statement; "
                             "nothing was applied",
                             hint="write the migration's SQL under '-- migrate:up', or delete the file")


def discover(folder: Path) -> list[MigrationFile]:
    """Every migration in the folder, in version order; two files with one version is an error."""
    if not folder.is_dir():
        return []
    found = [parse(path) for path in sorted(folder.glob("*.sql"))]
    seen: dict[str, Path] = {}
    for migration in found:
        if migration.version in seen:
            raise UsageError(
                f"two migrations share version {migration.version}: "
                f"{seen[migration.version].name} and {migration.path.name}"
            )
        seen[migration.version] = migration.path
    return found


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
        raise UsageError(f"bad migration version {value!r}", hint="a version is 14 digits: YYYYMMDDHHMMSS")
    return value
