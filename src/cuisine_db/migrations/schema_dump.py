"""The schema as pg_dump prints it: written to db/schema.sql after migrations and compared by `verify`."""

from __future__ import annotations

from pathlib import Path

from cuisine_db import records, sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.postgres import binaries, client_environ
from cuisine_db.postgres.runner import run


def dump(settings: Settings, env: Environment) -> str:
    """`pg_dump --schema-only` of the environment's database, stable across runs and client versions."""
    with connect(settings, env, "schema dump") as conn:
        server_major = conn.info.server_version // 10000
    build = binaries.client_for(server_major, settings.cache_dir)
    result = run(
        [build.program("pg_dump"), "--schema-only", "--no-owner", "--no-privileges"],
        env=client_environ(settings, env),
        timeout=300,
    )
    return normalise(result.stdout)


def normalise(text: str) -> str:
    """Drop what changes between runs without the schema changing (versions, \\restrict keys)."""
    kept = []
    for line in text.splitlines():
        if line.startswith(("\\restrict", "\\unrestrict", "-- Dumped from", "-- Dumped by")):
            continue
        kept.append(line)
    return "\n".join(kept).strip() + "\n"


def applied_inserts(settings: Settings, env: Environment) -> str:
    """The applied versions as the INSERT that `dbmate load` runs: every row, in byte order, schema-qualified
    (pg_dump's output empties search_path)."""
    with connect(settings, env, "schema dump") as conn:
        rows = conn.execute(sql.load("migrations/dump_versions")).fetchall()
    text = "\n--\n-- Applied migrations: `dbmate load` and `psql -f` record them as applied\n--\n\n"
    if rows:
        text += f"INSERT INTO {rows[0][0]} (version) VALUES\n    " + ",\n    ".join(f"({row[1]})" for row in rows)
        text += ";\n"
    return text


def write(settings: Settings, env: Environment) -> Path:
    """Write db/schema.sql atomically: the schema, then the applied versions as dbmate writes them."""
    text = dump(settings, env) + applied_inserts(settings, env)
    target = settings.schema_file
    target.parent.mkdir(parents=True, exist_ok=True)
    records.atomic_write(target, text, mode=0o644)
    return target
