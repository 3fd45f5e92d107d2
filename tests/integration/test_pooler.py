"""PgBouncer in front of the session server (every version): `pooler config` writes a transaction-pooling
configuration that authenticates through auth_query, Debian's pgbouncer runs it on loopback as the server's
OS user, and db-connections reads SHOW POOLS: clients queueing for a server connection and a pooler that is
down are findings. Skipped where pgbouncer is not installed. The server-wide changes (the auth role, an
application role) are undone at the end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli, run_env, run_make
from conftest import Server
from psycopg import sql

from cuisine_db.config import load_settings
from cuisine_db.pooler import process
from cuisine_db.postgres import pgpass
from cuisine_db.postgres.ports import free_port

APP_PASSWORD = "Kettle-Saffron-Orbit-9931"
AUTH_USER = "cuisine_pgbouncer"


@dataclass
class Pooled:
    config: Path
    server: Server
    port: int
    env: str

    def environ(self) -> dict[str, str]:
        return run_env(self.config)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args)

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_make(self.config, *args)

    def app(self, password: str = APP_PASSWORD, user: str = "pool_app") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, dbname="cuisine", password=password,
                               connect_timeout=10, prepare_threshold=None)


@pytest.fixture
def pooled(server: Server, tmp_path: Path) -> Iterator[Pooled]:
    try:
        process.program()
    except Exception:
        pytest.skip("pgbouncer is not installed here (Debian's pgbouncer package)")
    settings, env = server.settings, server.env
    with server.admin() as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int - current_setting("
                           "'superuser_reserved_connections')::int - coalesce(current_setting('reserved_connections', "
                           "true), '0')::int").fetchone()
        assert row is not None
        conn.execute(f"CREATE ROLE pool_app LOGIN PASSWORD '{APP_PASSWORD}'")
    port = free_port()
    config = tmp_path / "cuisine-db.toml"
    # The session server's own environment, seen through a configuration that adds a pooler with two server
    # connections (every other slot kept out): one for auth_query's lookups, one for the application's pool, so
    # that a second client has to queue.
    config.write_text(
        f'state_dir = "{settings.state_dir}"\n'
        f"[environments.{env.name}]\nport = {env.port}\npostgres_version = {env.postgres_version}\n"
        f"[environments.{env.name}.pooler]\nport = {port}\nreserved_server_connections = {row[0] - 2}\n"
        f"applications = 2\nconnections_per_application = 10\n")
    made = Pooled(config, server, port, env.name)
    try:
        yield made
    finally:
        made.cli("pooler", "stop", "--env", env.name)
        with server.admin("cuisine") as conn:
            conn.execute("DROP SCHEMA IF EXISTS cuisine_pooler CASCADE")
            for role in ("pool_app", AUTH_USER):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_pgbouncer_pools_transactions_authenticates_through_auth_query_and_db_connections_reads_its_pools(
        pooled: Pooled) -> None:
    env = pooled.env
    result = pooled.make("db-pooler-config", f"env={env}")
    assert result.returncode == 0, result.stderr
    settings = load_settings({"CUISINE_DB_CONFIG": str(pooled.config)})
    folder = settings.env_dir(settings.env(env)) / "pgbouncer"
    ini = (folder / "pgbouncer.ini").read_text()
    for line in ("pool_mode = transaction", "auth_type = scram-sha-256", f"auth_user = {AUTH_USER}",
                 "auth_query = SELECT uname, phash FROM cuisine_pooler.lookup($1)", "default_pool_size = 1",
                 "max_db_connections = 2", "max_client_conn = 25", f"listen_port = {pooled.port}",
                 "listen_addr = 127.0.0.1"):
        assert line in ini.splitlines(), line
    # Only the auth role's password is in a file, only in the auth file, and only the pooler's user reads it.
    auth_password = next(e.password for e in pgpass.read(pooled.server.passfile) if e.user == AUTH_USER)
    superuser_password = next(e.password for e in pgpass.read(pooled.server.passfile) if e.user == "cuisine")
    assert (folder / "userlist.txt").read_text() == f'"{AUTH_USER}" "{auth_password}"\n'
    assert auth_password not in ini and superuser_password not in ini
    for path in (folder, folder / "pgbouncer.ini", folder / "userlist.txt"):
        assert path.stat().st_mode & 0o077 == 0, path
        if os.geteuid() == 0:
            assert path.stat().st_uid != 0, path
    with pooled.server.admin("cuisine") as conn:
        definer = conn.execute("SELECT p.prosecdef, p.proconfig, has_function_privilege('pool_app', p.oid, "
                               "'EXECUTE'), has_function_privilege(%s, p.oid, 'EXECUTE') FROM pg_proc p "
                               "WHERE p.oid = 'cuisine_pooler.lookup(text)'::regprocedure", [AUTH_USER]).fetchone()
    assert definer == (True, ["search_path=pg_catalog, pg_temp"], False, True)
    assert pooled.cli("pooler", "start", "--env", env).returncode == 0
    state = process.status(settings, settings.env(env))
    assert state.running and state.pid is not None
    argv = Path(f"/proc/{state.pid}/cmdline").read_bytes().decode()
    assert auth_password not in argv and APP_PASSWORD not in argv
    # Clients log in with their own SCRAM password, which PgBouncer checks against auth_query's verifier.
    with pooled.app() as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pool_app",)
    with pytest.raises(psycopg.OperationalError):
        pooled.app(password="Wrong-Password-000000").close()
    with pytest.raises(psycopg.OperationalError):  # superusers never log in through the pooler
        psycopg.connect(host="127.0.0.1", port=pooled.port, user="cuisine", dbname="cuisine",
                        passfile=str(pooled.server.passfile), connect_timeout=10).close()
    # One server connection: a second client's transaction queues while the first holds it.
    holder = pooled.app()
    holder.execute("SELECT 1")  # a transaction stays open
    done = threading.Event()

    def second() -> None:
        with pooled.app() as conn:
            conn.execute("SELECT 2")
            conn.commit()
        done.set()

    waiter = threading.Thread(target=second, daemon=True)
    waiter.start()
    try:
        for _ in range(120):
            seen = pooled.cli("connections", "--env", env, "--json")
            report = json.loads(seen.stdout)
            if any(p["user"] == "pool_app" and p["cl_waiting"] >= 1 for p in report["pooler"]["pools"]):
                break
        else:
            raise AssertionError("SHOW POOLS never showed the second client waiting")
        assert seen.returncode == 1
        assert any(f["check"] == "clients waiting" and f["subject"] == "pool_app@cuisine" for f in report["findings"])
        shown = pooled.cli("connections", "--env", env)
        assert "PgBouncer on 127.0.0.1" in shown.stdout and "pool_app" in shown.stdout
    finally:
        holder.commit()
        holder.close()
    assert done.wait(60), "the queued client never got its server connection"
    # A pooler that is down is a finding, not a crash.
    stopped = pooled.cli("pooler", "stop", "--env", env)
    assert stopped.returncode == 0 and f"{env}: PgBouncer stopped" in stopped.stderr, stopped.stderr
    again = pooled.cli("pooler", "stop", "--env", env)
    assert again.returncode == 0 and f"{env}: PgBouncer was not running" in again.stderr, again.stderr
    down = pooled.cli("connections", "--env", env, "--json")
    assert down.returncode == 1
    assert any(f["check"] == "pooler down" and f["severity"] == "error" for f in json.loads(down.stdout)["findings"])
    for output in (result.stdout + result.stderr, down.stdout, down.stderr,
                   (settings.env_dir(settings.env(env)) / "journal.jsonl").read_text()):
        assert auth_password not in output and APP_PASSWORD not in output


def test_pooler_config_without_a_pooler_or_with_no_room_for_pools_is_bad_input(pooled: Pooled, tmp_path: Path) -> None:
    text = pooled.config.read_text()
    bare = tmp_path / "bare.toml"
    bare.write_text(text.split(f"[environments.{pooled.env}.pooler]")[0])
    result = run_cli(bare, "pooler", "config", "--env", pooled.env, timeout=120)
    assert result.returncode == 2 and "no pooler configured" in result.stderr
    full = tmp_path / "full.toml"
    full.write_text(re.sub(r"reserved_server_connections = \d+", "reserved_server_connections = 5000", text))
    result = run_cli(full, "pooler", "config", "--env", pooled.env, timeout=120)
    assert result.returncode == 2 and "no server connections left for the pooler" in result.stderr
    with pooled.server.admin("cuisine") as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_USER]).fetchone() is None
