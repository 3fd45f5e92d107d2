"""Read replicas on a dedicated local environment (PostgreSQL 14 only: these tests start, pause, promote and
remove servers, and one version keeps them within the suite's time budget; the SQL they run is the same on
every version, and test_replication_sql runs it on 14, 15 and 18).

Two replicas are made with `make db-create-replica` (pg_basebackup -R and a slot each). The tests see rows
written on the primary reach both, lag that grows while a replay is paused and shrinks once it resumes,
routing that never takes a lagging replica and falls back to the primary with a warning, a logical backup from
a replica that restores to the same data as one from the primary, failures that leave nothing behind, and
(last: it changes the topology) a promotion that makes the replica writable with the tool's view following.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import AgeKeys, table_fingerprints
from cli_support import run_cli, run_env, run_make
from conftest import available

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.postgres import pgpass, topology
from cuisine_db.postgres.local import cluster_for, ensure_up, node_cluster
from cuisine_db.postgres.ports import free_port
from cuisine_db.replicas import lag, routing
from cuisine_db.replicas.role import REPLICATION_ROLE

BOUND_SECONDS = 2
TABLES = ("kitchens", "recipes")


@dataclass
class Topo:
    root: Path
    config: Path
    keys: AgeKeys

    @property
    def settings(self) -> Settings:
        return load_settings({"CUISINE_DB_CONFIG": str(self.config)})

    @property
    def env(self) -> Environment:
        return self.settings.env("production")

    def environ(self) -> dict[str, str]:
        return run_env(self.config)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, cwd=self.root)

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_make(self.config, *args)

    def port(self, name: str) -> int:
        current = topology.load(self.settings, self.env)
        node = current.replica(name) or (current.primary if current.primary and current.primary.name == name
                                         else None)
        assert node is not None, name
        return node.port

    def open(self, port: int, dbname: str = "cuisine") -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=port, user="cuisine", dbname=dbname, autocommit=True,
                               passfile=str(self.settings.env_dir(self.env) / "pgpass"))

    def count(self, port: int, query: str = "SELECT count(*) FROM recipes") -> int:
        with self.open(port) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def primary(self) -> psycopg.Connection[Any]:
        return connect(self.settings, self.env, "test")

    def report(self) -> tuple[int, dict[str, Any]]:
        result = self.cli("replica", "list", "--env", "production", "--json")
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout)


def status_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in report["report"]["replicas"] if r["name"] == name)
    return found


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _destroy_all(settings: Settings, env: Environment) -> None:
    current = topology.load(settings, env)
    for node in (*current.replicas, *current.former, *([current.primary] if current.primary else [])):
        node_cluster(settings, env, topology.home_of(settings, env, node), node.port).destroy()
    cluster_for(settings, env).destroy()
    node_cluster(settings, env, settings.env_dir(env), env.port or 0).destroy()


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Topo]:
    if available(14) is None:
        pytest.skip("PostgreSQL 14 is not in the cache (make install-postgres)")
    root = tmp_path_factory.mktemp("replicas")
    port = free_port()
    repository = (root / "repository").as_uri()
    backup = (f'[environments.ENV.backup]\nrepository = "{repository}"\nrecipients = ["{age_keys.recipient}"]\n'
              f'identity_file = "{age_keys.identity_file}"\n')
    config = root / "cuisine-db.toml"
    config.write_text(
        f'default_env = "production"\n'
        f"[environments.production]\nport = {port}\npostgres_version = 14\nprotected = true\n"
        f"replica_max_lag_seconds = {BOUND_SECONDS}\n"
        "[environments.production.server_settings]\nfsync = false\n" + backup.replace("ENV", "production")
        + f'[environments.copy]\ndsn = "host=127.0.0.1 port={port} user=cuisine dbname=copy"\n'
          f'passfile = "{root / ".cuisine" / "production" / "pgpass"}"\n' + backup.replace("ENV", "copy")
        + '[environments.remote]\ndsn = "host=db.internal port=5432 user=cuisine_ops dbname=cuisine"\n'
          '[environments.remote.replicas.reports9]\ndsn = "host=replica9.internal port=5433"\n'
          'slot = "cuisine_reports9"\n')
    made = Topo(root, config, age_keys)
    settings, env = made.settings, made.env
    ensure_up(settings, env)
    try:
        with made.primary() as conn:
            conn.execute("CREATE TABLE kitchens (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE TABLE recipes (id serial PRIMARY KEY, kitchen_id int REFERENCES kitchens, "
                         "title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
            conn.execute("INSERT INTO kitchens SELECT g, 'kitchen ' || g FROM generate_series(1, 50) g")
            conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 1 + g % 50, 'recipe ' || g "
                         "FROM generate_series(1, 2000) g")
        for name in ("reports1", "reports2"):
            result = made.make("db-create-replica", "env=production", f"name={name}")
            assert result.returncode == 0, result.stderr
            assert f"replica {name} streams" in result.stdout
        # Each replays a commit (the measurement's heartbeat), so a test that runs first on this worker and
        # pauses a replay still has a last replayed commit to date its lag from.
        wait_for(lambda: all(lag.unfit(s, env) is None for s in lag.measure(settings, env).replicas),
                 "both replicas to replay a commit")
        yield made
    finally:
        _destroy_all(settings, env)


def fingerprint(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    return table_fingerprints(conn, TABLES)


def test_two_replicas_see_the_primarys_writes_within_the_lag_bound(topo: Topo) -> None:
    settings, env = topo.settings, topo.env
    recorded = topology.load(settings, env)
    assert sorted(node.name for node in recorded.replicas) == ["reports1", "reports2"]
    with topo.primary() as conn:
        slots = {row[0] for row in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE active")}
        conn.execute("INSERT INTO recipes (kitchen_id, title) SELECT 7, 'fresh ' || g FROM generate_series(1, 300) g")
        wanted = conn.execute("SELECT count(*) FROM recipes").fetchone()
    assert slots == {"cuisine_reports1", "cuisine_reports2"}
    assert wanted is not None
    started = time.monotonic()
    for name in ("reports1", "reports2"):
        wait_for(lambda name=name: topo.count(topo.port(name)) == wanted[0],  # type: ignore[misc]
                 f"the rows on {name}")
    assert time.monotonic() - started < 60
    code, report = topo.report()
    assert code == 0, report["findings"]
    for name in ("reports1", "reports2"):
        status = status_of(report, name)
        assert status["receiver"] == "streaming" and status["in_recovery"] and status["slot"]["active"]
        assert status["delay_seconds"] <= BOUND_SECONDS and status["streaming"]["state"] == "streaming"
    # The walreceiver's password is in a file the server user owns, never in the configuration or state.
    password = next(e.password for e in pgpass.read(settings.env_dir(env) / "pgpass") if e.user == REPLICATION_ROLE)
    home = settings.env_dir(env) / "replicas" / "reports1"
    auto_conf = (home / "data" / "postgresql.auto.conf").read_text()
    assert "passfile=" in auto_conf and "application_name=reports1" in auto_conf and password not in auto_conf
    passfile = home / "run" / "replication.pgpass"
    assert password in passfile.read_text() and passfile.stat().st_mode & 0o077 == 0
    for kept in (settings.env_dir(env) / "journal.jsonl", topology.path(settings, env)):
        assert password not in kept.read_text()
    if os.geteuid() == 0:
        assert (home / "data").stat().st_uid != 0  # runs as the unprivileged server user, like every local cluster


def test_db_replicas_shows_lag_grow_while_replay_is_paused_and_shrink_once_it_resumes(topo: Topo) -> None:
    paused_port = topo.port("reports2")
    with topo.open(paused_port) as replica, topo.primary() as primary:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            readings = []
            for round_ in range(3):
                primary.execute("INSERT INTO recipes (kitchen_id, title) SELECT 3, 'paused ' || g "
                                "FROM generate_series(1, 200) g")
                time.sleep(1.2)
                code, report = topo.report()
                readings.append((code, status_of(report, "reports2"), report["findings"], round_))
            bytes_seen = [r[1]["replay_bytes"] for r in readings]
            delays = [r[1]["delay_seconds"] for r in readings]
            assert bytes_seen == sorted(bytes_seen) and bytes_seen[0] > 0 and bytes_seen[-1] > bytes_seen[0]
            assert delays == sorted(delays) and delays[-1] > BOUND_SECONDS
            last_code, last, findings, _ = readings[-1]
            assert last["paused"] and last_code == 1
            assert {"replay paused", "replica lag"} <= {f["check"] for f in findings if f["subject"] == "reports2"}
            assert status_of(report, "reports1")["replay_bytes"] == 0  # the other one kept up
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")

    def caught_up() -> bool:
        code, report = topo.report()
        status = status_of(report, "reports2")
        return code == 0 and status["replay_bytes"] == 0 and status["delay_seconds"] <= BOUND_SECONDS
    wait_for(caught_up, "reports2 to catch up after resuming")


def test_routing_never_takes_a_lagging_replica_and_falls_back_to_the_primary_with_a_warning(topo: Topo) -> None:
    settings, env = topo.settings, topo.env
    ports = {name: topo.port(name) for name in ("reports1", "reports2")}
    with topo.open(ports["reports2"]) as lagging, topo.open(ports["reports1"]) as other, topo.primary() as primary:
        lagging.execute("SELECT pg_wal_replay_pause()")
        try:
            primary.execute("CREATE TABLE only_after_pause (id int)")
            primary.execute("INSERT INTO only_after_pause SELECT generate_series(1, 10)")
            wait_for(lambda: lag.unfit(lag.measure(settings, env).replicas[1], env) is not None, "reports2 to lag")
            wait_for(lambda: topo.count(ports["reports1"], "SELECT count(*) FROM pg_class WHERE relname = "
                                   "'only_after_pause'") == 1, "reports1 to have the new table")
            for _ in range(3):
                route = routing.choose(settings, env, "any")
                assert route.target is not None and route.target.name == "reports1" and route.warning is None
            named = routing.choose(settings, env, "reports2")
            assert named.target is None and named.warning and "reports2" in named.warning
            # What the commands read shows where they read: reports2 has no table only_after_pause.
            result = topo.cli("table-sizes", "--env", "production", "--replica", "any", "--json")
            assert result.returncode == 0 and "reading from replica reports1" in result.stderr
            assert "only_after_pause" in result.stdout
            result = topo.cli("table-sizes", "--env", "production", "--replica", "reports2", "--json")
            assert result.returncode == 0 and "warning:" in result.stderr and "reports2" in result.stderr
            assert "only_after_pause" in result.stdout  # the primary's tables, not the paused replica's
            # Both lag: any falls back to the primary, with the reasons.
            other.execute("SELECT pg_wal_replay_pause()")
            primary.execute("CREATE TABLE only_on_primary (id int)")
            wait_for(lambda: all(lag.unfit(s, env) for s in lag.measure(settings, env).replicas), "both to lag")
            fallback = routing.choose(settings, env, "any")
            assert fallback.target is None and fallback.warning
            assert "reports1" in fallback.warning and "reports2" in fallback.warning
            result = topo.make("db-table-sizes", "env=production", "replica=any")
            assert result.returncode == 0 and "reading from the primary instead" in result.stderr
            assert "only_on_primary" in result.stdout
        finally:
            lagging.execute("SELECT pg_wal_replay_resume()")
            other.execute("SELECT pg_wal_replay_resume()")
    wait_for(lambda: all(lag.unfit(s, env) is None for s in lag.measure(settings, env).replicas), "both to catch up")
    # Every reporting target takes replica=.
    for target in ("db-size", "db-slow-queries", "db-audit-report"):
        result = topo.make(target, "env=production", "replica=reports1")
        assert result.returncode == 0, (target, result.stderr)
        assert "reading from replica reports1" in result.stderr, target
    size = topo.cli("size", "--env", "production", "--replica", "reports1", "--json")
    assert json.loads(size.stdout)["filesystem"]["path"].endswith("replicas/reports1/data")


def test_a_logical_backup_from_a_replica_restores_to_the_same_data_as_one_from_the_primary(topo: Topo) -> None:
    settings, env = topo.settings, topo.env
    with topo.primary() as conn:
        conn.execute("UPDATE recipes SET title = title || ' (edited)' WHERE id % 7 = 0")
        live = fingerprint(conn)
    wait_for(lambda: all(s.replay_bytes == 0 for s in lag.measure(settings, env).replicas), "the replicas")
    from_primary = topo.cli("backup", "create", "--env", "production", "--type", "logical", "--json")
    assert from_primary.returncode == 0, from_primary.stderr
    from_replica = topo.make("db-backup", "env=production", "type=logical", "from=replica")
    assert from_replica.returncode == 0, from_replica.stderr
    assert "reading from replica" in from_replica.stderr
    names = [json.loads(from_primary.stdout)["name"], from_replica.stdout.split(":")[0].strip()]
    manifests = [json.loads(topo.cli("backup", "show", name, "--env", "production", "--json").stdout)["manifest"]
                 for name in names]
    assert manifests[0]["dump"]["source"] == "primary" and manifests[1]["dump"]["source"].startswith("replica ")
    restored = []
    for name in names:
        result = topo.cli("restore", "database", "--env", "copy", "--backup", name)
        assert result.returncode == 0, result.stderr
        with connect(settings, settings.env("copy"), "test") as conn:
            restored.append(fingerprint(conn))
    assert restored[0] == restored[1] == live


def test_bad_input_and_refusals_change_nothing(topo: Topo) -> None:
    settings, env = topo.settings, topo.env
    state = topology.path(settings, env).read_text()
    taken = env.port
    cases = [
        (["replica", "create", "--env", "production", "--name", "reports1"], 2, "already has"),
        (["replica", "create", "--env", "production", "--name", "Bad-Name"], 2, "bad replica name"),
        (["replica", "create", "--env", "production", "--name", "any"], 2, "bad replica name"),
        (["replica", "create", "--env", "production", "--name", "spare", "--port", str(taken)], 2, "belongs to"),
        (["replica", "promote", "--env", "production", "--name", "reports1"], 4, "needs confirmation"),
        (["replica", "promote", "--env", "production", "--name", "nope", "--yes"], 2, "no replica"),
        (["replica", "drop", "--env", "production", "--name", "nope"], 2, "no replica"),
        (["replica", "drop", "--env", "production", "--name", "reports1"], 4, "needs confirmation"),
        (["size", "--env", "production", "--replica", "nope"], 2, "no replica 'nope'"),
        (["table-sizes", "--env", "production", "--replica", "x;y"], 2, "bad replica name"),
        (["backup", "create", "--env", "production", "--type", "logical", "--from", "elsewhere"], 2, "from="),
        (["backup", "create", "--env", "production", "--type", "incremental", "--from", "replica"], 2, "not offered"),
        (["replica", "create", "--env", "production", "--name", "spare", "--from", "backup"], 2, "no physical backup"),
        (["replica", "promote", "--env", "remote", "--name", "reports1"], 2, "lists no replica"),
    ]
    for args, code, words in cases:
        result = topo.cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert topology.path(settings, env).read_text() == state
    assert not (settings.env_dir(env) / "replicas" / "spare").exists()
    with topo.primary() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    # A remote environment gets the steps to apply, with no password in them.
    plan = topo.cli("replica", "create", "--env", "remote", "--name", "reports1")
    assert plan.returncode == 0, plan.stderr
    for words in ("pg_basebackup", "--write-recovery-conf", "--slot cuisine_reports1", "PGAPPNAME=reports1",
                  "pg_create_physical_replication_slot('cuisine_reports1', true)", "\\password cuisine_replication",
                  "[environments.remote.replicas.reports1]", "hot_standby_feedback = on"):
        assert words in plan.stdout, words
    assert "PASSWORD '" not in plan.stdout
    promote_plan = topo.cli("replica", "promote", "--env", "remote", "--name", "reports9")
    assert promote_plan.returncode == 0 and "pg_promote" in promote_plan.stdout and "Fence" in promote_plan.stdout


def test_a_copy_that_fails_leaves_no_folder_slot_or_record_behind(topo: Topo) -> None:
    settings, env = topo.settings, topo.env
    hba = cluster_for(settings, env).datadir / "pg_hba.conf"
    original = hba.read_text()
    state = topology.path(settings, env).read_text()
    hba.write_text("\n".join(line for line in original.splitlines() if "replication" not in line) + "\n")
    try:
        with topo.primary() as conn:
            conn.execute("SELECT pg_reload_conf()")
        result = topo.cli("replica", "create", "--env", "production", "--name", "broken")
        assert result.returncode == 3, result.stderr
        assert "pg_hba.conf" in result.stderr and "nothing was kept" in result.stderr
    finally:
        hba.write_text(original)
        with topo.primary() as conn:
            conn.execute("SELECT pg_reload_conf()")
    assert not (settings.env_dir(env) / "replicas" / "broken").exists()
    assert topology.path(settings, env).read_text() == state
    with topo.primary() as conn:
        assert conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cuisine_broken'").fetchone() is None
    journal = [json.loads(line) for line in (settings.env_dir(env) / "journal.jsonl").read_text().splitlines()]
    assert journal[-1]["command"] == "create-replica" and journal[-1]["outcome"] == "failed"


def test_promotion_makes_the_replica_writable_and_the_tools_view_follows(topo: Topo) -> None:
    """Runs last in this module: the environment's primary changes."""
    settings, env = topo.settings, topo.env
    old_port = env.port
    new_port = topo.port("reports1")
    with topo.open(new_port) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")  # a promotion resumes it and waits for it to catch up
    with topo.primary() as conn:
        conn.execute("INSERT INTO kitchens VALUES (999, 'written just before the switchover')")
    result = topo.make("db-promote-replica", "env=production", "name=reports1", "yes=1")
    assert result.returncode == 0, result.stderr
    assert "switchover" in result.stdout and "nothing is lost" in result.stderr and "resuming" in result.stderr
    with topo.open(new_port) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert conn.execute("SELECT name FROM kitchens WHERE id = 999").fetchone() is not None
        conn.execute("INSERT INTO kitchens VALUES (1000, 'written on the new primary')")
    # The tool's view: connections, the cluster, and db-replicas follow the new primary.
    with connect(settings, env, "test") as conn:
        assert conn.execute("SELECT inet_server_port()").fetchone() == (new_port,)
    status = json.loads(topo.cli("cluster", "status", "--env", "production", "--json").stdout)
    assert status["port"] == new_port and status["datadir"].endswith("replicas/reports1/data")
    code, report = topo.report()
    assert [r["name"] for r in report["report"]["replicas"]] == ["reports2"]
    former = report["report"]["former"]
    assert len(former) == 1 and former[0]["port"] == old_port and "needs a rebuild" in former[0]["note"]
    assert code == 1 and any(f["check"] == "former primary" for f in report["findings"])
    wait_for(lambda: topo.count(topo.port("reports2"), "SELECT count(*) FROM kitchens WHERE id = 1000") == 1,
             "reports2 to follow the new primary")
    # The old primary stays down: starting the environment starts the new one.
    assert topo.cli("cluster", "up", "--env", "production").returncode == 0
    with pytest.raises(psycopg.OperationalError):
        topo.open(old_port or 0).close()
    # Rebuild: drop the former primary (its data goes; the journal and pgpass stay), then the replica's slot.
    name = former[0]["name"]
    dropped = topo.make("db-drop-replica", "env=production", f"name={name}", "yes=1")
    assert dropped.returncode == 0, dropped.stderr
    assert not (settings.env_dir(env) / "data").exists()
    assert (settings.env_dir(env) / "pgpass").exists() and (settings.env_dir(env) / "journal.jsonl").exists()
    dropped = topo.make("db-drop-replica", "env=production", "name=reports2", "yes=1")
    assert dropped.returncode == 0 and "slot cuisine_reports2 dropped" in dropped.stdout
    with topo.open(new_port) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    code, report = topo.report()
    assert code == 0 and report["report"]["replicas"] == [] and report["report"]["former"] == []
    commands = [json.loads(line) for line in (settings.env_dir(env) / "journal.jsonl").read_text().splitlines()]
    ok = {(entry["command"], entry["outcome"]) for entry in commands}
    assert {("create-replica", "ok"), ("promote-replica", "ok"), ("drop-replica", "ok")} <= ok
