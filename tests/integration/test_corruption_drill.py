"""The runbook's Corruption Recovery drill, verbatim through make, on every PostgreSQL version available.

A dedicated cluster (its files are damaged, so not the shared `server`) named production, as the runbook writes
it, with a file repository. After a logical backup, rows are written to other tables; then, with the cluster
stopped, one page of a table (recipe_steps) and one page of an index of another table (executions_pkey) are
overwritten. The procedure:

1. make db-check-corruption env=production       names exactly those two, with their repair commands
2. make db-restore-tables env=production backup=latest tables=recipe_steps   (yes=1: the confirmation an
   operator types at the terminal), and the REINDEX the check printed for the index
3. make db-verify-tables env=production tables=recipe_steps,executions       passes

The restored table holds the backup's rows; the rows written after the backup to other tables are untouched.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import make_keys
from cli_support import run_make
from conftest import MIGRATIONS, VERSIONS, available, cache_dir
from psycopg import sql

from cuisine_db.config import Settings, load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres import binaries
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

PAGE = 8192
DATA = """
INSERT INTO users (email, display_name) SELECT 'u' || n || '@example.com', 'User ' || n FROM generate_series(1, 200) n;
INSERT INTO ingredients (name, category, default_unit) SELECT 'ingredient ' || n, 'spice', 'g'
    FROM generate_series(1, 50) AS n;
INSERT INTO transformations (name, kind, description) VALUES ('chop', 'cut', 'cut small');
INSERT INTO recipes (user_id, title) SELECT 1 + n % 200, 'Recipe ' || n FROM generate_series(1, 400) AS n;
INSERT INTO recipe_steps (recipe_id, position, transformation_id, instruction)
    SELECT 1 + n % 400, 1 + n / 400, 1, 'step ' || n || ' ' || repeat('stir ', 10) FROM generate_series(0, 3999) AS n;
INSERT INTO kitchens (user_id, name) SELECT n, 'Kitchen' FROM generate_series(1, 200) AS n;
INSERT INTO executions (recipe_id, kitchen_id, user_id)
    SELECT 1 + n % 400, 1 + n % 200, 1 + n % 200 FROM generate_series(1, 3000) AS n;
"""
AFTER_BACKUP = """
INSERT INTO users (email, display_name) SELECT 'late' || n || '@example.com', 'Late ' || n
    FROM generate_series(1, 30) AS n;
INSERT INTO executions (recipe_id, kitchen_id, user_id) SELECT 1 + n % 400, 1, 1 FROM generate_series(1, 300) AS n;
UPDATE kitchens SET name = 'Renamed' WHERE id <= 20;
"""
UNTOUCHED = ("users", "kitchens", "executions", "recipes", "ingredients")


@dataclass
class Drill:
    major: int
    root: Path
    config: Path

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config)})

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_make(self.config, *args)

    def connect(self) -> psycopg.Connection[Any]:
        cluster = cluster_for(self.settings, self.settings.env("production"))
        return psycopg.connect(host="127.0.0.1", port=cluster.port, user="cuisine", dbname="cuisine",
                               passfile=str(cluster.passfile), autocommit=True)

    def fingerprints(self, tables: tuple[str, ...]) -> dict[str, tuple[int, str]]:
        found = {}
        with self.connect() as conn:
            for table in tables:
                row = conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
                                           "'')) FROM {} t").format(sql.Identifier(table))).fetchone()
                assert row is not None
                found[table] = (row[0], row[1])
        return found

    def file_of(self, relation: str) -> Path:
        with self.connect() as conn:
            row = conn.execute("SELECT pg_relation_filepath(%s::regclass)", [relation]).fetchone()
        assert row is not None
        return cluster_for(self.settings, self.settings.env("production")).datadir / str(row[0])


@pytest.fixture(params=VERSIONS, ids=[f"pg{v}" for v in VERSIONS])
def drill(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Drill]:
    major: int = request.param
    if available(major) is None:
        if major not in (14, 18):
            pytest.skip(f"PostgreSQL {major} is not installed on this machine (Debian's postgresql-{major})")
        binaries.install(major, cache_dir())
    keys = make_keys(tmp_path / "keys")
    shutil.copytree(MIGRATIONS, tmp_path / "db" / "migrations")
    config = tmp_path / "cuisine-db.toml"
    config.write_text(
        f'state_dir = "state"\ndefault_env = "production"\n[environments.production]\nport = {free_port()}\n'
        f"postgres_version = {major}\nprotected = true\n"
        "[environments.production.server_settings]\nfsync = false\n"
        f'[environments.production.backup]\nrepository = "{(tmp_path / "repository").as_uri()}"\n'
        f'recipients = ["{keys.recipient}"]\nidentity_file = "{keys.identity_file}"\n')
    found = Drill(major, tmp_path, config)
    settings = found.settings
    env = settings.env("production")
    ensure_up(settings, env)
    try:
        yield found
    finally:
        cluster_for(settings, env).destroy()


def _damage(path: Path, block: int) -> None:
    """Overwrite 32 bytes in the middle of one page: with data checksums on, reading it fails verification."""
    with path.open("r+b") as handle:
        handle.seek(block * PAGE + 4000)
        original = handle.read(32)
        handle.seek(block * PAGE + 4000)
        handle.write(bytes((byte + 97) % 256 for byte in original))


def _damaged(stderr: str) -> set[str]:
    found = re.search(r"damaged: (.*?)(?: \(hint:.*)?$", stderr, re.M)
    assert found is not None, stderr
    return {name.strip() for name in found.group(1).split(",")}


def test_corruption_recovery_drill(drill: Drill) -> None:
    settings = drill.settings
    env = settings.env("production")
    migrate(settings, env)
    with drill.connect() as conn:
        conn.execute(DATA)
        conn.execute("VACUUM ANALYZE")
    backup = drill.make("db-backup", "env=production", "type=logical")
    assert backup.returncode == 0, backup.stderr
    restored_rows = drill.fingerprints(("recipe_steps",))
    with drill.connect() as conn:
        conn.execute(AFTER_BACKUP)
    before = drill.fingerprints(UNTOUCHED)
    heap, index = drill.file_of("recipe_steps"), drill.file_of("executions_pkey")
    heap_block, index_block = 2, index.stat().st_size // PAGE - 1  # a data page; the rightmost leaf
    assert heap.stat().st_size // PAGE > heap_block and index_block > 1
    cluster = cluster_for(settings, env)
    cluster.stop()
    _damage(heap, heap_block)
    _damage(index, index_block)
    cluster.start()

    # 1. Identify corrupted tables.
    check = drill.make("db-check-corruption", "env=production")
    assert check.returncode != 0 and "Error 1" in check.stderr, check.stderr
    assert _damaged(check.stderr) == {"public.recipe_steps", "public.executions_pkey"}, check.stderr
    restore_line = "make db-restore-tables env=production backup=latest tables=recipe_steps"
    reindex_line = "cuisine-db psql --env production -c 'REINDEX INDEX CONCURRENTLY public.executions_pkey'"
    assert restore_line in check.stdout and reindex_line in check.stdout, check.stdout

    # 2. Restore the affected table from the latest backup, and rebuild the index as the check said.
    restore = drill.make(*shlex.split(restore_line)[1:], "yes=1")
    assert restore.returncode == 0, restore.stderr
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(drill.config)}
    argv = shlex.split(reindex_line)  # run as printed, with the cuisine-db next to this Python
    rebuilt = subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]], env=environ,
                             capture_output=True, text=True, timeout=300, check=False)
    assert rebuilt.returncode == 0, rebuilt.stderr

    # 3. Verify recovery: the tables pass, and the whole database has nothing damaged left.
    verify = drill.make("db-verify-tables", "env=production", "tables=recipe_steps,executions")
    assert verify.returncode == 0, verify.stderr + verify.stdout
    # executions grew after the backup: information, not a failure; recipe_steps holds the backup's rows exactly.
    assert "no problems found: 1 difference(s) from the newest backup that writes since explain" in verify.stderr
    again = drill.make("db-check-corruption", "env=production")
    assert again.returncode == 0, again.stderr
    assert drill.fingerprints(("recipe_steps",)) == restored_rows
    assert drill.fingerprints(UNTOUCHED) == before
