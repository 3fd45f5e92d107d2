"""No silent starts, and maintenance mode that leaves the tool's own roles connected (issue 16, items 4 and 7).

Reproduced as found: a stopped production was started by db-monitor, db-backup and db-show-locks, and monitoring then
said "all 8 checks ok"; `cluster status` exited 0 when stopped; maintenance mode blocked cuisine_monitor, so
monitoring went blind with "too many connections for role ... (hint: is the server running?)". Each runs here on
real local clusters (the project's own cluster code), a protected production and an unprotected development.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import run_cli
from cli_support import run_make as make
from conftest import available, cache_dir
from psycopg import sql

from cuisine_db.config import Settings, load_settings
from cuisine_db.postgres import binaries
from cuisine_db.postgres.ports import free_port

APP_PASSWORD = "app-Pa55-while-maintained"


@dataclass
class Place:
    """A project folder whose environments are local clusters under its own .cuisine/."""

    root: Path
    config: Path

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config)})

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, extra=extra_env, cwd=self.root)

    def pid_file(self, env: str) -> Path:
        return self.root / ".cuisine" / env / "data" / "postmaster.pid"

    def port(self, env: str) -> int:
        port = self.settings.env(env).port
        assert port is not None
        return port

    def up(self, env: str) -> None:
        started = self.cli("cluster", "up", "--env", env)
        assert started.returncode == 0, started.stderr

    def down(self, env: str) -> None:
        stopped = self.cli("cluster", "down", "--env", env)
        assert stopped.returncode == 0, stopped.stderr
        assert not self.pid_file(env).exists()

    def admin(self, env: str, dbname: str = "cuisine") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port(env), user="cuisine", dbname=dbname,
                               passfile=str(self.root / ".cuisine" / env / "pgpass"), autocommit=True)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """Production (protected) and development, both created once and left stopped."""
    if available(18) is None:
        binaries.install(18, cache_dir())
    root = tmp_path_factory.mktemp("silent")
    config = root / "cuisine-db.toml"
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    config.write_text(
        'default_env = "development"\n'
        f"[environments.production]\nport = {ports[0]}\npostgres_version = 18\nprotected = true\n"
        "[environments.production.server_settings]\nfsync = false\n"
        f"[environments.development]\nport = {ports[1]}\npostgres_version = 18\n"
        "[environments.development.server_settings]\nfsync = false\n")
    found = Place(root, config)
    assert found.cli("backup", "keygen").returncode == 0
    for env in ("production", "development"):
        found.up(env)
        found.down(env)
    yield found
    for env in ("production", "development"):
        found.cli("cluster", "destroy", "--env", env, "--yes")


@pytest.fixture
def stopped(place: Place) -> Place:
    for env in ("production", "development"):
        if place.pid_file(env).exists():
            place.down(env)
    return place


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_monitoring_a_stopped_production_is_exit_3_and_critical_without_starting_it(stopped: Place) -> None:
    plain = stopped.cli("monitor", "--env", "production", "--window", "0")
    assert plain.returncode == 3, plain.stdout + plain.stderr
    line = one_error(plain)
    assert "production's cluster is stopped" in line and "make cluster-up env=production" in line
    assert "checks ok" not in plain.stdout
    nagios = stopped.cli("monitor", "--env", "production", "--nagios", "--window", "0")
    # Nagios's own codes: a server down is CRITICAL (2), never OK and never a shrug (UNKNOWN).
    assert nagios.returncode == 2, nagios.stdout + nagios.stderr
    assert nagios.stdout.startswith("CUISINE-DB CRITICAL - production: server down: production's cluster is stopped")
    assert "make cluster-up env=production" in nagios.stdout
    through_make = make(stopped.config, "db-monitor", "env=production", "nagios=1")
    assert through_make.returncode != 0 and "CUISINE-DB CRITICAL" in through_make.stdout
    assert not stopped.pid_file("production").exists()


def test_metrics_of_a_stopped_server_say_it_is_down_without_starting_it(stopped: Place) -> None:
    from cuisine_db.monitor.metrics import ServerCollector

    settings = stopped.settings
    for env in ("production", "development"):  # metrics never start any cluster, protected or not
        families = {family.name: family for family in ServerCollector(settings, settings.env(env)).collect()}
        assert [sample.value for sample in families["cuisine_db_up"].samples] == [0]
        assert "cuisine_db_connections_in_use" not in families
        assert not stopped.pid_file(env).exists()


@pytest.mark.parametrize("command", [
    ("locks",), ("connections",), ("backup", "create", "--type", "logical"), ("migrate", "up"),
    ("replica", "list"),
])
def test_no_command_starts_a_stopped_protected_environment(stopped: Place, command: tuple[str, ...]) -> None:
    result = stopped.cli(*command, "--env", "production")
    assert result.returncode == 3, result.stdout + result.stderr
    line = one_error(result)
    assert "production's cluster is stopped" in line and "nothing was started" in line, line
    assert "make cluster-up env=production" in line
    assert not stopped.pid_file("production").exists()
    journal = stopped.root / ".cuisine" / "production" / "journal.jsonl"
    if command[0] == "backup":  # a refused start is a failure of the backup, recorded as one, not a success
        assert json.loads(journal.read_text().splitlines()[-1])["outcome"] != "ok"


@pytest.mark.parametrize("command", [("monitor", "--window", "0"), ("locks",), ("connections",), ("size",),
                                     ("replica", "list")])
def test_commands_that_only_look_never_start_even_an_unprotected_cluster(stopped: Place,
                                                                          command: tuple[str, ...]) -> None:
    result = stopped.cli(*command, "--env", "development")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "development's cluster is stopped" in one_error(result)
    assert not stopped.pid_file("development").exists()


def test_status_commands_answer_from_what_they_can_read_without_starting_anything(stopped: Place) -> None:
    # wal status and backup status read the repository when the server is down; they never start it.
    for env in ("production", "development"):
        for command in (("wal", "status"), ("backup", "status")):
            result = stopped.cli(*command, "--env", env)
            assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
            assert not stopped.pid_file(env).exists()


def test_cluster_status_is_exit_3_when_stopped_and_0_when_running(stopped: Place) -> None:
    down = stopped.cli("cluster", "status", "--env", "production")
    assert down.returncode == 3 and "production: stopped" in down.stdout
    assert "make cluster-up env=production" in down.stderr
    as_json = stopped.cli("cluster", "status", "--env", "production", "--json")
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["running"] is False
    assert not stopped.pid_file("production").exists()
    stopped.up("production")
    running = stopped.cli("cluster", "status", "--env", "production")
    assert running.returncode == 0 and "production: running" in running.stdout


def test_an_unprotected_environment_is_started_on_demand_with_a_one_line_notice(stopped: Place) -> None:
    result = stopped.cli("backup", "create", "--env", "development", "--type", "logical")
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if line.startswith("started ")]
    assert notices == ["started development's cluster (it was stopped)"]
    assert stopped.pid_file("development").exists()
    again = stopped.cli("psql", "--env", "development", "--", "-X", "-A", "-t", "-c", "SELECT 1")
    assert again.returncode == 0 and again.stdout.strip() == "1"
    assert "started" not in again.stderr  # it was running: nothing to say


@pytest.fixture
def maintained(place: Place) -> Iterator[tuple[Place, str]]:
    """Production running with the tool's roles set up and one application role with a session open."""
    place.up("production")
    roles = place.cli("security", "setup-roles", "--env", "production")
    assert roles.returncode == 0, roles.stderr
    app = f"app_{uuid.uuid4().hex[:8]}"
    with place.admin("production") as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT 9").format(
            sql.Identifier(app), sql.Literal(APP_PASSWORD)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE cuisine TO {}").format(sql.Identifier(app)))
    yield place, app
    place.cli("maintenance", "disable", "--env", "production")
    with place.admin("production") as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(app)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(app)))


def limits(place: Place, roles: list[str]) -> dict[str, int]:
    with place.admin("production") as conn:
        rows = conn.execute("SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY(%s)", [roles])
        return {str(row[0]): int(row[1]) for row in rows.fetchall()}


def test_maintenance_mode_keeps_the_tools_roles_connected_and_names_whom_it_blocked(
        maintained: tuple[Place, str]) -> None:
    place, app = maintained
    own = ["cuisine_monitor", "cuisine_backup", "cuisine_operator"]
    before = limits(place, own)
    session = psycopg.connect(host="127.0.0.1", port=place.port("production"), user=app, password=APP_PASSWORD,
                              dbname="cuisine", autocommit=True)
    enabled = place.cli("maintenance", "enable", "--env", "production", "--reason", "restore in progress")
    assert enabled.returncode == 0, enabled.stderr
    told = " ".join(enabled.stderr.split())
    assert f"blocked 1 application role(s): {app}; 1 session(s) ended ({app}: 1)" in told
    assert "left connected: cuisine_backup (the tool's backup role), " in told
    assert "cuisine_monitor (the tool's monitoring role)" in told.split("left connected:", 1)[1]
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    assert limits(place, own) == before and limits(place, [app]) == {app: 0}
    entry = json.loads((place.root / ".cuisine" / "production" / "journal.jsonl").read_text().splitlines()[-1])
    assert entry["command"] == "maintenance enable" and entry["details"]["roles"] == {app: 9}
    assert entry["details"]["ended"] == {app: 1} and set(own) <= set(entry["details"]["left_connected"])

    # Monitoring sees the maintenance instead of going blind: it connects as cuisine_monitor and judges.
    watched = place.cli("monitor", "--env", "production", "--window", "0", "--json")
    assert watched.returncode in (0, 1), watched.stderr
    assert json.loads(watched.stdout)["env"] == "production"
    assert place.cli("connections", "--env", "production").returncode in (0, 1)
    # A configuration that lists a tool role as an application role is refused, naming the key.
    text = place.config.read_text()
    try:
        place.config.write_text(text + "[environments.production.maintenance]\n"
                                       'application_roles = ["cuisine_monitor"]\n')
        listed = place.cli("maintenance", "enable", "--env", "production")
        assert listed.returncode == 2 and "application_roles" in listed.stderr and "monitoring role" in listed.stderr
    finally:
        place.config.write_text(text)
    assert place.cli("maintenance", "disable", "--env", "production").returncode == 0
    assert limits(place, [app]) == {app: 9}


def test_a_refused_role_is_named_with_the_reason(maintained: tuple[Place, str]) -> None:
    place, app = maintained
    assert place.cli("maintenance", "enable", "--env", "production", "--reason", "restore in progress").returncode == 0
    # An environment that reaches production's server as the application's role (a report tool's view).
    text = place.config.read_text()
    try:
        place.config.write_text(text + f'[environments.appview]\ndsn = "host=127.0.0.1 port={place.port("production")} '
                                       f'user={app} dbname=cuisine"\npassword_env = "APP_PW"\n')
        refused = place.cli("size", "--env", "appview", extra_env={"APP_PW": APP_PASSWORD})
    finally:
        place.config.write_text(text)
    assert refused.returncode == 3, refused.stderr
    line = one_error(refused)
    assert line.startswith(f"error: {app}: connection limit 0 — maintenance mode is on for production since ")
    assert "(restore in progress)" in line and "is the server running" not in line
    assert place.cli("maintenance", "disable", "--env", "production").returncode == 0

    # The tool's own role at a limit a DBA set: named, with its limit as the reason, not "is the server running?".
    with place.admin("production") as conn:
        conn.execute("ALTER ROLE cuisine_monitor CONNECTION LIMIT 0")
    try:
        blind = place.cli("size", "--env", "production")
    finally:
        with place.admin("production") as conn:
            conn.execute("ALTER ROLE cuisine_monitor CONNECTION LIMIT 5")
    assert blind.returncode == 3
    line = one_error(blind)
    assert line.startswith("error: cuisine_monitor: its connection limit is reached") and "monitoring" in line


def test_maintenance_mode_on_a_stopped_production_is_recorded_without_starting_it(stopped: Place) -> None:
    # The Complete Database Failure begins with maintenance mode on a dead server: it must not start (or initdb) it.
    state = stopped.root / ".cuisine" / "production" / "maintenance.json"
    enabled = stopped.cli("maintenance", "enable", "--env", "production", "--reason", "server lost")
    assert enabled.returncode == 0, enabled.stderr
    assert "the server is down" in enabled.stderr and "no role was changed" in enabled.stderr
    assert not stopped.pid_file("production").exists()
    assert json.loads(state.read_text())["reason"] == "server lost"
    refused = stopped.cli("maintenance", "disable", "--env", "production")
    assert refused.returncode == 3 and "make cluster-up env=production" in refused.stderr
    assert state.exists() and not stopped.pid_file("production").exists()
    stopped.up("production")
    assert stopped.cli("maintenance", "disable", "--env", "production").returncode == 0
    assert not state.exists()


def test_destroying_a_protected_cluster_needs_confirmation_whoever_asks(stopped: Place) -> None:
    """ops/clusters.destroy owns the confirmation, not the CLI: called directly on production without it, it refuses
    (exit 4) and the data directory stays; the CLI without --yes is refused the same way."""
    from cuisine_db.errors import EXIT_REFUSED, RefusedError
    from cuisine_db.ops import clusters

    settings = stopped.settings
    version = stopped.root / ".cuisine" / "production" / "data" / "PG_VERSION"
    assert version.exists()
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        clusters.destroy(settings, settings.env("production"))
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        clusters.destroy(settings, settings.env("production"), ask=lambda _: "development")
    by_hand = stopped.cli("cluster", "destroy", "--env", "production")
    assert by_hand.returncode == 4 and "needs confirmation" in by_hand.stderr
    assert version.exists()


def test_turning_on_wal_archiving_with_a_restart_needs_confirmation_whoever_asks(stopped: Place) -> None:
    """backup/wal/enable.enable owns the restart's confirmation, not the CLI: called directly on a protected
    production with restart and without confirmation it refuses (exit 4) before it changes a setting, writes a key
    or starts the server."""
    from cuisine_db.backup.wal import enable as enabling
    from cuisine_db.errors import EXIT_REFUSED, RefusedError

    settings = stopped.settings
    auto_conf = stopped.root / ".cuisine" / "production" / "data" / "postgresql.auto.conf"
    before = auto_conf.read_text()
    state = sorted(path.name for path in (stopped.root / ".cuisine" / "production").iterdir())
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        enabling.enable(settings, settings.env("production"), restart=True)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        enabling.enable(settings, settings.env("production"), restart=True, ask=lambda _: "development")
    assert auto_conf.read_text() == before
    assert sorted(path.name for path in (stopped.root / ".cuisine" / "production").iterdir()) == state
    assert not stopped.pid_file("production").exists()
