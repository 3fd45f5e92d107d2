"""Named SQL statements, one per file under this package, loaded by name (`load("migrations/applied")`).

Where a statement differs by server version, `VARIANTS` names the file for each version range and
`for_server()` picks it: `VARIANTS["diagnose/slow_queries"] = [(170000, "diagnose/slow_queries_pg17"),
(0, "diagnose/slow_queries")]` (newest first; the number is `server_version_num`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql

VARIANTS: dict[str, list[tuple[int, str]]] = {}


@cache
def text(name: str) -> str:
    """The statement stored in `<name>.sql`, without its leading comment lines."""
    raw = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in raw.splitlines() if not line.startswith("--")).strip()


def load(name: str) -> sql.SQL:
    """The statement as a psycopg SQL object, ready for `.format()` with identifiers."""
    # Read from our own package, never from input.
    return sql.SQL(text(name))


def variant(name: str, server_version: int) -> str:
    """The file that serves `name` on a server of `server_version` (e.g. 140011); `name` itself if none differ."""
    for minimum, file_name in VARIANTS.get(name, []):
        if server_version >= minimum:
            return file_name
    return name


def for_server(name: str, server_version: int) -> sql.SQL:
    """Load the statement variant for this server version (`conn.info.server_version`)."""
    return load(variant(name, server_version))


def names() -> list[str]:
    """Every statement the package ships, as `area/name`."""
    root = resources.files(__package__)
    found = []
    for area in root.iterdir():
        if area.is_dir():
            found += [f"{area.name}/{f.name[:-4]}" for f in area.iterdir() if f.name.endswith(".sql")]
    return sorted(found)
