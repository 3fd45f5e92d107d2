"""Password files in libpq's format (host:port:database:user:password, `*` wildcards, `\\:` escapes).

libpq reads them itself; the tool reads one only to learn which purpose roles a local cluster has, or the
password a remote purpose role is meant to get, and writes one only for the roles it generates passwords for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cuisine_db import records
from cuisine_db.postgres import safe_files


@dataclass(frozen=True, slots=True)
class Entry:
    host: str
    port: str
    database: str
    user: str
    password: str

    def matches(self, host: str, port: str, database: str, user: str) -> bool:
        wanted = (host, port, database, user)
        return all(field in ("*", value) for field, value in zip(
            (self.host, self.port, self.database, self.user), wanted, strict=True))


def _split(line: str) -> list[str]:
    fields: list[str] = []
    current, escaped = "", False
    for char in line:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":" and len(fields) < 4:
            fields.append(current)
            current = ""
        else:
            current += char
    return [*fields, current]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def read(path: Path) -> list[Entry]:
    """The file's entries in order (libpq uses the first that matches); none when it is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    entries = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = _split(line)
            if len(fields) == 5:
                entries.append(Entry(*fields))
    return entries


def lookup(path: Path, host: str, port: str, database: str, user: str) -> str | None:
    """The password libpq would take from this file for a connection, if any."""
    for entry in read(path):
        if entry.matches(host, port, database, user):
            return entry.password
    return None


def put(path: Path, user: str, password: str) -> None:
    """Set a wildcard line for one user (replacing its earlier lines), atomically, mode 0600."""
    current = (safe_files.read(path) or b"").decode("utf-8")
    kept = [line for line in current.splitlines()
            if not (line.strip() and len(_split(line)) == 5 and _split(line)[3] == user)]
    kept.append(f"*:*:*:{_escape(user)}:{_escape(password)}")
    records.atomic_write(path, "\n".join(kept) + "\n", mode=0o600)
