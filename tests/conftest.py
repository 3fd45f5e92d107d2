"""Shared fixtures: throwaway PostgreSQL servers started with the project's own cluster code."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import CLI as CLI
from cli_support import REPO as REPO
from cli_support import run_cli
from psycopg import sql

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.postgres import binaries
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

# Fixtures of the backup tests (S3 server, age keys, seeded projects) live in their own module; deps_guard fails
# a run that skips for lack of a package `make deps` installs; module_order runs the slowest modules first.
pytest_plugins = ["backup_fixtures", "pitr_fixtures", "deps_guard", "module_order"]

# `make test` runs pytest inside make: its MAKELEVEL and MAKEFLAGS would turn every `make` a test runs into a sub-make
# (`make[1]:` in its messages, the parent's flags inherited). Tests run make as an operator types it.
for _variable in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"):
    os.environ.pop(_variable, None)

MIGRATIONS = REPO / "db" / "migrations"
VERSIONS = (14, 15, 18)


def cache_dir() -> Path:
    return load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")}).cache_dir


def available(major: int) -> binaries.PgBuild | None:
    try:
        return binaries.find(major, cache_dir())
    except Exception:
        return None


@dataclass
class Server:
    """A running throwaway cluster shared by the tests of one worker."""

    major: int
    port: int
    passfile: Path
    settings: Settings
    env: Environment

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="cuisine", dbname=dbname,
                               passfile=str(self.passfile), autocommit=True)


def _start_server(major: int, folder: Path) -> Server:
    config = folder / "cuisine-db.toml"
    config.write_text(
        f"[environments.pg{major}]\nport = {free_port()}\npostgres_version = {major}\n"
        f"[environments.pg{major}.server_settings]\nfsync = false\nsynchronous_commit = false\n"
    )
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env(f"pg{major}")
    cluster = ensure_up(settings, env)
    return Server(major, cluster.port, cluster.passfile, settings, env)


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"pg{v}" for v in VERSIONS])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    major: int = request.param
    if available(major) is None:
        if major in (14, 18):
            binaries.install(major, cache_dir())
        else:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine (Debian's postgresql-{major})")
    started = _start_server(major, tmp_path_factory.mktemp(f"pg{major}"))
    yield started
    cluster_for(started.settings, started.env).destroy()


@dataclass
class Project:
    """A throwaway project folder: its own config, migrations folder and state, on a session server."""

    root: Path
    config: Path
    server: Server
    database: str

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config)})

    def env(self, name: str = "development") -> Environment:
        return self.settings.env(name)

    def connect(self) -> psycopg.Connection[Any]:
        return self.server.admin(self.database)

    def cli(self, *args: str, input_text: str | None = None, extra_env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        result = run_cli(self.config, *args, extra=extra_env, input_text=input_text, cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"cuisine-db {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def tables(self) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
        return [row[0] for row in rows]


def make_project(server: Server, root: Path, migrations: Path | None = MIGRATIONS) -> Project:
    database = "t_" + uuid.uuid4().hex[:12]
    with server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    root.mkdir(parents=True, exist_ok=True)
    if migrations is not None:
        shutil.copytree(migrations, root / "db" / "migrations")
    else:
        (root / "db" / "migrations").mkdir(parents=True)
    dsn = f"host=127.0.0.1 port={server.port} user=cuisine dbname={database}"
    config = root / "cuisine-db.toml"
    config.write_text(
        'default_env = "development"\n'
        f'[environments.development]\ndsn = "{dsn}"\npassfile = "{server.passfile}"\nlock_timeout = "1s"\n'
        f'[environments.production]\ndsn = "{dsn}"\npassfile = "{server.passfile}"\nprotected = true\n'
    )
    return Project(root, config, server, database)


@pytest.fixture
def project(server: Server, tmp_path: Path) -> Project:
    """A project with the Cuisine Code migrations, on a fresh database of the session server."""
    return make_project(server, tmp_path / "project")


@pytest.fixture
def empty_project(server: Server, tmp_path: Path) -> Project:
    """A project with an empty migrations folder, for tests that write their own migrations."""
    return make_project(server, tmp_path / "project", migrations=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`@pytest.mark.postgres(min=15)`, `(max=14)`: skip the test on the session servers outside that range of
    major versions (known from the `server` parameter), before any server starts."""
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is None:
            continue
        callspec = getattr(item, "callspec", None)
        major = callspec.params.get("server") if callspec is not None else None
        if not isinstance(major, int):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.postgres needs the server fixture's versions")
        reason = version_skip(major, marker.kwargs.get("min"), marker.kwargs.get("max"), marker.kwargs.get("reason"))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def version_skip(major: int, low: int | None, high: int | None, why: str | None = None) -> str | None:
    """Why a test marked `postgres(min=low, max=high)` does not run on `major`; None when it does."""
    if (low is None or major >= low) and (high is None or major <= high):
        return None
    wanted = (f"PostgreSQL {low}" if low == high else
              f"PostgreSQL {low} and later" if high is None else
              f"PostgreSQL {high} and earlier" if low is None else f"PostgreSQL {low} to {high}")
    return f"runs on {wanted}" + (f": {why}" if why else "")
