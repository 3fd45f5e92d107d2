"""Fixtures for the backup tests: a real S3-compatible server (moto's standalone server) on loopback, age keys,
a seeded template database per server, and projects whose environments are databases on the session server.

Test modules load these with `pytest_plugins = ["backup_fixtures"]`.
"""

from __future__ import annotations

import calendar
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from cli_support import run_cli, run_make
from conftest import MIGRATIONS, Server
from psycopg import sql

from cuisine_db.config import Settings, load_settings

S3_PORTS = range(56300, 56400)
S3_KEY_VAR = "CUISINE_TEST_S3_KEY"
S3_SECRET_VAR = "CUISINE_TEST_S3_SECRET"
S3_SECRET = "s3-Secret-never-shown-0123456789"
TABLES = ("users", "ingredients", "transformations", "recipes", "recipe_steps", "recipe_step_ingredients",
          "kitchens", "executions", "schema_migrations")
BACKENDS = ("file", "s3")


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key=S3_SECRET)

    def bucket(self) -> str:
        name = "b-" + uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=name)
        return name


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server in its own process, on a loopback port of this project's range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    offset = (int(worker) * 17) % len(S3_PORTS) if worker.isdigit() else 0
    for attempt in range(len(S3_PORTS)):
        port = S3_PORTS[(offset + attempt) % len(S3_PORTS)]
        if not _port_is_free(port):
            continue
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        if process.poll() is None:
            server = S3Server(f"http://127.0.0.1:{port}", process)
            try:
                yield server
            finally:
                process.terminate()
                process.wait(timeout=30)
            return
    pytest.fail("no free port for the S3 test server in 56300-56399")


@dataclass(frozen=True)
class AgeKeys:
    identity_file: Path
    recipient: str
    secret: str


def make_keys(folder: Path) -> AgeKeys:
    identity = pyrage.x25519.Identity.generate()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backup.key"
    path.write_text(f"# test identity\n{identity}\n")
    path.chmod(0o600)
    return AgeKeys(path, str(identity.to_public()), str(identity))


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    return make_keys(tmp_path_factory.mktemp("keys"))


_TEMPLATES: dict[tuple[str, int, bool], str] = {}


def seeded_template(server: Server, tmp_path_factory: pytest.TempPathFactory, *, seed: int = 7,
                    trimmed: bool = True) -> str:
    """A database with the Cuisine Code schema and the scale-1 seed (`trimmed`: a fifth of the executions, a third
    of the step ingredients), made once per server and seed, cloned per test (CREATE DATABASE ... TEMPLATE)."""
    # Keyed by the server's own folder: a new server may reuse an old one's port.
    key = (str(server.passfile), seed, trimmed)
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    name = f"tpl_seed_{server.port}_{seed}" + ("_trimmed" if trimmed else "")
    folder = tmp_path_factory.mktemp(name)
    with server.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    shutil.copytree(MIGRATIONS, folder / "db" / "migrations")
    config = folder / "cuisine-db.toml"
    config.write_text(f'[environments.seed]\ndsn = "host=127.0.0.1 port={server.port} user=cuisine dbname={name}"\n'
                      f'passfile = "{server.passfile}"\n')
    from cuisine_db import migrations
    from cuisine_db.seed import load

    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("seed")
    migrations.migrate(settings, env)
    load(settings, env, scale=1, seed=seed)
    if trimmed:
        with server.admin(name) as conn:
            # A fifth of the executions and a third of the step ingredients: every table kept, tests kept quick.
            conn.execute("DELETE FROM executions WHERE id % 5 <> 0")
            conn.execute("DELETE FROM recipe_step_ingredients WHERE step_id % 3 <> 0")
            conn.execute("VACUUM FULL ANALYZE")
    _TEMPLATES[key] = name
    return name


def clone(server: Server, template: str | None) -> str:
    database = "t_" + uuid.uuid4().hex[:12]
    with server.admin() as conn:
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database),
                                                                          sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return database


def table_fingerprints(conn: psycopg.Connection[Any], tables: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """Per table: row count and an md5 of its rows in order (equal data gives equal fingerprints)."""
    found = {}
    for table in tables:
        query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                        "FROM {} t").format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        found[table] = (row[0], row[1])
    return found


@dataclass
class BackupProject:
    """A project folder whose production (protected, seeded), development and staging are databases on one
    session server, all backing up to one repository (a folder or an S3 bucket)."""

    root: Path
    config: Path
    server: Server
    databases: dict[str, str]
    repository: str
    keys: AgeKeys
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config), **self.environ})

    def cli(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 600,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, extra={**self.environ, **(extra_env or {})}, input_text=input_text,
                       cwd=self.root, timeout=timeout)

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_make(self.config, *args, extra=self.environ)

    def connect(self, env: str) -> psycopg.Connection[Any]:
        return self.server.admin(self.databases[env])

    def fingerprints(self, env: str, tables: tuple[str, ...] = TABLES) -> dict[str, tuple[int, str]]:
        """Per table: row count and an md5 of its rows in order."""
        with self.connect(env) as conn:
            return table_fingerprints(conn, tables)

    def backup(self, env: str = "production", kind: str = "logical", *extra: str) -> str:
        import json

        result = self.cli("backup", "create", "--env", env, "--type", kind, "--json", *extra)
        assert result.returncode == 0, result.stderr
        name: str = json.loads(result.stdout)["name"]
        return name

    def backups(self, env: str = "production", *extra: str) -> list[dict[str, Any]]:
        import json

        result = self.cli("backup", "list", "--env", env, "--json", *extra)
        assert result.returncode == 0, result.stderr
        listed: list[dict[str, Any]] = json.loads(result.stdout)
        return listed

    def repository_keys(self) -> list[str]:
        from cuisine_db.storage import open_repository

        settings = self.settings
        return [info.key for info in open_repository(settings, settings.env("production")).list("")]


def repository_settings(root: Path, backend: str, s3: S3Server | None) -> tuple[str, str, dict[str, str]]:
    """A test project's repository: its URL, its `[...backup]` lines, and the variables holding S3 credentials."""
    if backend == "s3":
        assert s3 is not None
        repository = f"s3://{s3.bucket()}/cuisine"
        storage = (f'repository = "{repository}"\ns3_endpoint = "{s3.endpoint}"\n'
                   f's3_access_key_env = "{S3_KEY_VAR}"\ns3_secret_key_env = "{S3_SECRET_VAR}"\n')
        return repository, storage, {S3_KEY_VAR: "test", S3_SECRET_VAR: S3_SECRET}
    repository = (root / "repository").as_uri()
    return repository, f'repository = "{repository}"\n', {}


def make_backup_project(server: Server, root: Path, keys: AgeKeys, *, backend: str = "file",
                        s3: S3Server | None = None, template: str | None = None, extra: str = "") -> BackupProject:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(MIGRATIONS, root / "db" / "migrations")
    databases = {"production": clone(server, template), "development": clone(server, None),
                 "staging": clone(server, None)}
    repository, storage, environ = repository_settings(root, backend, s3)
    lines = ['default_env = "development"\n']
    for env, database in databases.items():
        lines.append(f'[environments.{env}]\ndsn = "host=127.0.0.1 port={server.port} user=cuisine dbname={database}"\n'
                     f'passfile = "{server.passfile}"\nprotected = {"true" if env == "production" else "false"}\n'
                     f"[environments.{env}.backup]\n{storage}recipients = [\"{keys.recipient}\"]\n"
                     f'identity_file = "{keys.identity_file}"\n{extra}')
    config = root / "cuisine-db.toml"
    config.write_text("".join(lines))
    return BackupProject(root, config, server, databases, repository, keys, environ)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def bproject(server: Server, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys,
             request: pytest.FixtureRequest) -> BackupProject:
    """A seeded production with a file repository (or S3 when the test also asks for `backend`)."""
    chosen = request.getfixturevalue("backend") if "backend" in request.fixturenames else "file"
    s3 = request.getfixturevalue("s3_server") if chosen == "s3" else None
    return make_backup_project(server, tmp_path / "project", age_keys, backend=chosen, s3=s3,
                               template=seeded_template(server, tmp_path_factory))


def gfs_by_calendar(today: date, daily_n: int, weekly_n: int, monthly_n: int) -> set[date]:
    """The grandfather-father-son set of a history of one backup every day up to today, from the calendar:
    the last days; each week's Sunday (today for this week); each month's last day (today for this month)."""
    kept = {today - timedelta(days=n) for n in range(daily_n)}
    sunday = today + timedelta(days=6 - today.weekday())
    for n in range(weekly_n):
        kept.add(min(sunday - timedelta(weeks=n), today))
    year, month = today.year, today.month
    for _ in range(monthly_n):
        last = date(year, month, calendar.monthrange(year, month)[1])
        kept.add(min(last, today))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return kept
