"""Helpers of the archive tests: what the repository's archives hold, read back with the test's age identity."""

from __future__ import annotations

import io
import json
from typing import Any

from backup_fixtures import BackupProject
from psycopg import sql

from cuisine_db.archive import catalog
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository
from cuisine_db.storage.pipeline import fetch


def archived_lines(project: BackupProject, env: str = "production") -> dict[str, list[bytes]]:
    """Per complete archive of `env`: its rows, one COPY text line each."""
    settings = project.settings
    chosen = settings.env(env)
    repository = open_repository(settings, chosen)
    identities = age_keys.identities(settings, [chosen])
    found = {}
    for entry in catalog.trusted_scan(settings, chosen, repository):
        if entry.manifest is None:
            continue
        item = next(o for o in entry.manifest.objects if o.file == "rows.copy")
        buffer = io.BytesIO()
        fetch(repository, catalog.prefix(entry.name) + item.name, buffer, identities)
        found[entry.name] = buffer.getvalue().splitlines()
    return found


def first_fields(lines: list[bytes]) -> list[int]:
    return [int(line.split(b"\t", 1)[0]) for line in lines]


def archive_list(project: BackupProject, env: str = "production", *extra: str) -> list[dict[str, Any]]:
    result = project.cli("archive", "list", "--env", env, "--json", *extra)
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def ids(project: BackupProject, env: str, table: str = "executions") -> list[int]:
    query = sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(table))
    with project.connect(env) as conn:
        return [row[0] for row in conn.execute(query)]
