"""Named SQL statements, one per file under this package, loaded by name (`load("migrations/applied")`)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql


@cache
def text(name: str) -> str:
    """The statement stored in `<name>.sql`, without its leading comment lines."""
    raw = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in raw.splitlines() if not line.startswith("--")).strip()


def load(name: str) -> sql.SQL:
    """The statement as a psycopg SQL object, ready for `.format()` with identifiers."""
    # Read from our own package, never from input.
    return sql.SQL(text(name))


def names() -> list[str]:
    """Every statement the package ships, as `area/name`."""
    root = resources.files(__package__)
    found = []
    for area in root.iterdir():
        if area.is_dir():
            found += [f"{area.name}/{f.name[:-4]}" for f in area.iterdir() if f.name.endswith(".sql")]
    return sorted(found)
