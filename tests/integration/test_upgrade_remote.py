"""db-upgrade method=logical for an environment reached by dsn=: PostgreSQL 14 → an empty PostgreSQL 18 server
named by to_dsn=, under a writer inserting numbered rows, then back with --rollback; and the refusals.

Both servers are throwaway clusters the fixture starts; the environment knows them only by connection strings, with
the password from password_env (the two superusers share it, as one operator's credentials would).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli
from conftest import MIGRATIONS, available
from psycopg import sql
from test_upgrade_logical import WRITER, WRITER_PASSWORD, Writer, sequences_behind

from cuisine_db.config import load_settings
from cuisine_db.postgres.connect import connect
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

pytestmark = [pytest.mark.slow]

PASSWORD_ENV = "CUISINE_REMOTE_UPGRADE_PW"


@dataclass
class Remote:
    root: Path
    config: Path
    password: str
    source_port: int
    target_port: int

    def cli(self, *args: str, timeout: float = 600) -> Any:
        return run_cli(self.config, *args, cwd=self.root, timeout=timeout, extra={PASSWORD_ENV: self.password})

    def at(self, port: int, dbname: str = "cuisine") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=port, user="cuisine", password=self.password, dbname=dbname,
                               autocommit=True)

    def to_dsn(self, dbname: str = "cuisine", user: str = "cuisine", port: int | None = None) -> str:
        return f"host=127.0.0.1 port={port or self.target_port} user={user} dbname={dbname}"

    @property
    def home(self) -> Path:
        return self.root / ".cuisine" / "production"

    def routed_major(self) -> int:
        """The major of the server the tool's own connections reach now."""
        settings = load_settings({"CUISINE_DB_CONFIG": str(self.config), PASSWORD_ENV: self.password})
        with connect(settings, settings.env("production"), "test") as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None
        return int(row[0]) // 10000

    def untouched(self) -> None:
        """Nothing of an upgrade on either server, nor in the environment's state."""
        with self.at(self.source_port) as source:
            assert source.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
            assert source.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        with self.at(self.target_port, "postgres") as target:
            assert target.execute("SELECT count(*) FROM pg_subscription").fetchone() == (0,)
        assert not (self.home / "upgrade").exists()
        assert not (self.home / "route.json").exists()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    for major in (14, 18):
        if available(major) is None:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine")
    servers = tmp_path_factory.mktemp("remote-servers")
    servers_config = servers / "cuisine-db.toml"
    servers_config.write_text(
        f"[environments.old]\nport = {free_port()}\npostgres_version = 14\n"
        "[environments.old.server_settings]\nfsync = false\nsynchronous_commit = false\nwal_level = 'logical'\n"
        f"[environments.new]\nport = {free_port()}\npostgres_version = 18\n"
        "[environments.new.server_settings]\nfsync = false\nsynchronous_commit = false\nwal_level = 'logical'\n")
    server_settings = load_settings({"CUISINE_DB_CONFIG": str(servers_config)})
    old = ensure_up(server_settings, server_settings.env("old"))
    new = ensure_up(server_settings, server_settings.env("new"))
    password = old.passfile.read_text().strip().rsplit(":", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=new.port, user="cuisine", dbname="postgres",
                         passfile=str(new.passfile), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE cuisine PASSWORD {}").format(sql.Literal(password)))
    root = tmp_path_factory.mktemp("remote-project")
    shutil.copytree(MIGRATIONS, root / "db" / "migrations")
    config = root / "cuisine-db.toml"
    config.write_text(f'default_env = "production"\n[environments.production]\nprotected = false\n'
                      f'dsn = "host=127.0.0.1 port={old.port} user=cuisine dbname=cuisine"\n'
                      f'password_env = "{PASSWORD_ENV}"\n')
    made = Remote(root, config, password, old.port, new.port)
    assert made.cli("migrate", "up", "--env", "production").returncode == 0
    with made.at(old.port) as conn:
        conn.execute("CREATE TABLE tickets (id bigserial PRIMARY KEY, n integer NOT NULL, "
                     "written_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("CREATE TABLE kitchen_notes (body text NOT NULL)")  # no key: no replica identity
        conn.execute("INSERT INTO kitchen_notes SELECT 'note ' || g FROM generate_series(1, 50) AS g")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(WRITER),
                                                                         sql.Literal(WRITER_PASSWORD)))
        conn.execute(f"GRANT INSERT, SELECT ON tickets TO {WRITER}")
        conn.execute(f"GRANT USAGE ON SEQUENCE tickets_id_seq TO {WRITER}")
    yield made
    for name in ("old", "new"):
        cluster_for(server_settings, server_settings.env(name)).destroy()


def _upgrade(remote: Remote, to_dsn: str, *extra: str) -> Any:
    return remote.cli("upgrade", "--env", "production", "--method", "logical", "--to-dsn", to_dsn, *extra,
                      "--replica-identity-full", "--yes", timeout=900)


def test_in_place_method_on_a_remote_environment_prints_the_steps(remote: Remote) -> None:
    result = remote.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    for step in ("pg_upgrade --check", "--link", "vacuumdb --all --analyze-in-stages", "method=logical to_dsn="):
        assert step in result.stderr, step
    remote.untouched()


def test_refusals_change_nothing(remote: Remote) -> None:
    with remote.at(remote.target_port, "postgres") as conn:
        conn.execute("CREATE DATABASE occupied")
        conn.execute("CREATE DATABASE unprivileged")
        conn.execute(sql.SQL("CREATE ROLE plain LOGIN PASSWORD {}").format(sql.Literal(remote.password)))
        conn.execute("ALTER DATABASE unprivileged OWNER TO plain")
    with remote.at(remote.target_port, "occupied") as conn:
        conn.execute("CREATE TABLE already_here (id integer)")
    cases = [
        (("--to", "18"), remote.to_dsn(port=free_port()), 3, "cannot be reached"),
        (("--to", "18"), remote.to_dsn(port=remote.source_port), 2, "runs PostgreSQL 14, not to=18"),
        (("--to", "18"), remote.to_dsn("occupied"), 2, "not empty"),
        (("--to", "18"), remote.to_dsn("unprivileged", user="plain"), 2, "cannot create a subscription"),
        (("--to", "18"), remote.to_dsn() + " password=hunter2", 2, "holds a password"),
        (("--to", "18", "--rehearse"), remote.to_dsn(), 2, "not built for it"),
    ]
    for extra, dsn, code, reason in cases:
        result = _upgrade(remote, dsn, *extra)
        assert result.returncode == code, (dsn, result.stdout + result.stderr)
        assert reason in result.stderr, (dsn, result.stderr)
        assert "hunter2" not in result.stdout + result.stderr
        remote.untouched()
    missing = remote.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes")
    assert missing.returncode == 2 and "to_dsn" in missing.stderr
    remote.untouched()


def test_upgrade_under_writes_then_rollback(remote: Remote) -> None:
    with remote.at(remote.target_port) as target:  # the probe of a run killed while it checked the target
        target.execute("CREATE SUBSCRIPTION cuisine_db_upgrade_probe CONNECTION 'host=127.0.0.1 port=1' "
                       "PUBLICATION cuisine_db_upgrade WITH (connect = false)")
    writer = Writer(remote.source_port, first=1)
    writer.start()
    try:
        assert _wait(lambda: len(writer.committed) > 10)
        result = _upgrade(remote, remote.to_dsn(), "--to", "18")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "caught up: lag" in result.stderr + result.stdout
        assert remote.password not in result.stdout + result.stderr
        at_cutover = len(writer.committed)
        writer.port = remote.target_port  # the application is pointed at the new server, as the report says
        assert _wait(lambda: len(writer.committed) > at_cutover + 20), "the writer wrote nothing on the new server"
    finally:
        writer.stop()
    assert writer.failures > 0, "maintenance mode never stopped the writer: the cutover did not block writes"
    assert remote.routed_major() == 18
    rows = _rows(remote, remote.target_port)
    assert len(rows) == len(set(rows)), "a row was applied twice"
    assert not set(writer.committed) - set(rows), "committed rows missing after the cutover"
    assert _sequences_behind(remote, remote.target_port) == []
    with remote.at(remote.target_port) as conn:
        assert conn.execute("SELECT count(*) FROM kitchen_notes").fetchone() == (50,)
        applied = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert applied is not None and applied[0] > 0
    with remote.at(remote.source_port) as conn:  # the old server follows the new one: the way back
        assert conn.execute("SELECT count(*) FROM pg_subscription").fetchone() == (1,)
        assert _wait(lambda: conn.execute("SELECT count(*) FROM tickets").fetchone() == (len(rows),))
    assert "hunter2" not in (remote.home / "journal.jsonl").read_text()
    assert remote.password not in (remote.home / "journal.jsonl").read_text() + \
        (remote.home / "route.json").read_text()

    back = remote.cli("upgrade", "--env", "production", "--rollback", "--yes", timeout=600)
    assert back.returncode == 0, back.stdout + back.stderr
    assert remote.routed_major() == 14
    assert _rows(remote, remote.source_port) == rows, "the writes made on the new server did not come back"
    assert _sequences_behind(remote, remote.source_port) == []
    remote.untouched()


def test_finish_ends_the_way_back_and_the_route_stays(remote: Remote) -> None:
    """After a rollback the target's database holds a copy: another empty database takes the second run."""
    with remote.at(remote.target_port, "postgres") as conn:
        conn.execute("CREATE DATABASE second")
    result = _upgrade(remote, remote.to_dsn("second"), "--to", "18")
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'dsn = "host=127.0.0.1' in result.stdout  # the report names the dsn to put into cuisine-db.toml
    done = remote.cli("upgrade", "--env", "production", "--finish", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert remote.routed_major() == 18
    with remote.at(remote.source_port) as source:
        assert source.execute("SELECT count(*) FROM pg_subscription").fetchone() == (0,)
        assert source.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    with remote.at(remote.target_port, "second") as target:
        assert target.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        assert target.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert target.execute("SELECT count(*) FROM tickets").fetchone() == (len(_rows(remote, remote.source_port)),)
    assert not (remote.home / "upgrade").exists()
    assert (remote.home / "route.json").exists()


def _wait(condition: Any, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _rows(remote: Remote, port: int) -> list[int]:
    with remote.at(port) as conn:
        return [n for (n,) in conn.execute("SELECT n FROM tickets ORDER BY n").fetchall()]


def _sequences_behind(remote: Remote, port: int) -> list[str]:
    with remote.at(port) as conn:
        return sequences_behind(conn)
