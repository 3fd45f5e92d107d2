"""A dedicated small cluster (12 connections, prepared transactions, a failing archive_command) for the situations
that must not be made on the shared server: connections near the limit, forgotten prepared transactions, failed
archiving, idle replication slots, a streaming WAL receiver; and the metrics endpoint that shows them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from activity import Background, wait_until, waiting_for_lock
from cli_support import run_cli
from conftest import Server
from prometheus_client.parser import text_string_to_metric_families

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

MAX_CONNECTIONS = 12
RESERVED = 3  # superuser_reserved_connections' default


@dataclass
class Small:
    config: Path
    settings: Settings
    env: Environment
    major: int

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.env.port, user="cuisine", dbname="cuisine",
                               passfile=str(self.settings.env_dir(self.env) / "pgpass"), autocommit=True)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args)


@pytest.fixture(scope="module")
def small(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    folder = tmp_path_factory.mktemp(f"small{server.major}")
    config = folder / "cuisine-db.toml"
    config.write_text(
        f"[environments.small]\nport = {free_port()}\npostgres_version = {server.major}\n"
        "[environments.small.server_settings]\nfsync = false\nsynchronous_commit = false\n"
        f"max_connections = {MAX_CONNECTIONS}\nmax_prepared_transactions = 2\narchive_mode = 'on'\n"
        "archive_command = 'exit 1'\n"
        "[environments.small.monitoring]\nprepared_transaction_seconds = 0.01\nslot_retained_warning_bytes = 1\n"
        "slow_query_mean_ms = 40\n"
        "snapshot_interval_seconds = 0\n"
    )
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("small")
    ensure_up(settings, env)
    try:
        yield Small(config, settings, env, server.major)
    finally:
        cluster_for(settings, env).destroy()


def test_connections_near_the_limit_get_the_runbooks_remedies(small: Small) -> None:
    available = MAX_CONNECTIONS - RESERVED
    sessions = [small.connect() for _ in range(available - 1)]
    try:
        for conn in sessions:
            conn.execute("SET application_name = 'leaky-pool'")
        near = small.cli("connections", "--env", "small", "--json")
        assert near.returncode == 1, near.stderr
        report = json.loads(near.stdout)
        assert report["usage"]["in_use"] == available - 1 and report["usage"]["available"] == available
        assert report["usage"]["by_application"]["leaky-pool"] == available - 1
        (finding,) = [f for f in report["findings"] if f["check"] == "connection pool usage"]
        assert finding["severity"] == "warning"
        for remedy in ("leaks", "pool size", "max_connections", "restart", "PgBouncer"):
            assert remedy in finding["fix"]

        sessions.append(small.connect())  # every ordinary slot taken; the tool gets a superuser's reserved one
        full = small.cli("monitor", "--env", "small", "--nagios", "--window", "0")
        assert full.returncode == 2, full.stdout + full.stderr
        assert full.stdout.startswith("CUISINE-DB CRITICAL - small:")
        assert f"connections={available};;;0;{available}" in full.stdout
        text = small.cli("connections", "--env", "small")
        assert text.returncode == 1
        assert f"{available} of {available} connection slots in use (100%)" in text.stdout
    finally:
        for conn in sessions:
            conn.close()


@pytest.fixture
def trouble(small: Small) -> Iterator[dict[str, Any]]:
    """A prepared transaction holding a lock someone waits for, an idle slot, a WAL receiver, failed archiving."""
    with small.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS p (id int)")
        conn.execute("SELECT pg_create_physical_replication_slot('idle_slot', true)")
        conn.execute("INSERT INTO p SELECT generate_series(1, 1000)")
        conn.execute("SELECT pg_switch_wal()")
    preparer = small.connect()
    preparer.autocommit = False
    preparer.execute("LOCK TABLE p IN ACCESS EXCLUSIVE MODE")
    preparer.execute("PREPARE TRANSACTION 'forgotten-2pc'")
    preparer.close()
    waiter = Background(small.connect, "SELECT count(*) FROM p", application="waits-on-2pc")
    folder = tempfile.TemporaryDirectory()
    receiver = subprocess.Popen(
        [str(find(small.major, small.settings.cache_dir).program("pg_receivewal")), "-D", folder.name, "--no-loop"],
        env=client_environ(small.settings, small.env), stderr=subprocess.DEVNULL)
    try:
        with small.connect() as watch:
            wait_until(lambda: waiting_for_lock(watch, waiter.pid), "a session waiting on the prepared transaction")
            wait_until(lambda: watch.execute("SELECT count(*) FROM pg_stat_replication").fetchone() == (1,),
                       "pg_receivewal to stream")
            wait_until(lambda: watch.execute("SELECT failed_count > 0 FROM pg_stat_archiver").fetchone() == (True,),
                       "the archive_command to fail")
        yield {"waiter": waiter.pid}
    finally:
        receiver.terminate()
        receiver.wait(30)
        folder.cleanup()
        with small.connect() as conn:
            conn.execute("ROLLBACK PREPARED 'forgotten-2pc'")
            wait_until(lambda: conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone() == (0,),
                       "the receiver to go")
            conn.execute("SELECT pg_drop_replication_slot('idle_slot')")
        waiter.done()
        waiter.close()


def test_monitor_reports_what_takes_databases_down(small: Small, trouble: dict[str, Any]) -> None:
    with small.connect() as conn:
        for _ in range(3):  # a recurring slow statement, seen by pg_stat_statements
            conn.execute("SELECT pg_sleep(0.05)")
    result = small.cli("monitor", "--env", "small", "--json", "--window", "0")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "critical"
    found = {(f["check"], f["subject"]): f for f in report["findings"]}
    archiving = next(f for (check, _), f in found.items() if check == "archiving")
    assert archiving["severity"] == "critical" and "failure" in archiving["evidence"]
    prepared = found[("wraparound", "prepared transaction 'forgotten-2pc'")]
    assert "ROLLBACK PREPARED 'forgotten-2pc'" in prepared["fix"]
    slot = found[("replication", "replication slot idle_slot")]
    assert "inactive" in slot["evidence"] and "pg_drop_replication_slot('idle_slot')" in slot["fix"]
    slow = [f for f in report["findings"] if f["check"] == "query performance"]
    assert any("SELECT pg_sleep" in f["evidence"] and "over 3 call(s)" in f["evidence"] for f in slow), slow
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["replication"]["summary"].startswith("1 standby(s) streaming")
    assert "prepared transaction gid 'forgotten-2pc'" in checks["wraparound"]["summary"]
    storage = report["figures"]["filesystem"]
    assert storage is not None and storage["free_bytes"] > 0 and storage["path"].endswith("data")

    nagios = small.cli("monitor", "--env", "small", "--nagios", "--window", "0")
    assert nagios.returncode == 2 and nagios.stdout.startswith("CUISINE-DB CRITICAL - small:")
    assert "\nCRITICAL: archiving:" in nagios.stdout

    locks = json.loads(small.cli("locks", "--env", "small", "--json").stdout)
    (root,) = locks["roots"]
    assert root["pid"] == 0 and root["prepared"][0]["gid"] == "forgotten-2pc"
    assert [child["pid"] for child in root["blocked"]] == [trouble["waiter"]]
    assert root["holds"] == ["AccessExclusiveLock on relation p"]
    refused = small.cli("terminate-query", "--env", "small", "--pid", "0")
    assert refused.returncode == 2 and "ROLLBACK PREPARED" in refused.stderr

    # Size functions would queue behind the prepared transaction's lock: the locked table is reported, not waited on.
    tables = json.loads(small.cli("table-sizes", "--env", "small", "--json").stdout)
    assert next(t for t in tables if t["table_name"] == "p")["locked"] is True
    size = json.loads(small.cli("size", "--env", "small", "--json").stdout)
    assert size["filesystem"]["total_bytes"] >= size["filesystem"]["free_bytes"] > 0


def scrape(port: int) -> dict[str, list[Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_the_metrics_endpoint_serves_the_same_figures(small: Small, trouble: dict[str, Any]) -> None:
    port = free_port()
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(small.config)}
    served = subprocess.Popen([sys.executable, "-m", "cuisine_db", "metrics", "serve", "--env", "small",
                               "--port", str(port)], env=environ, stderr=subprocess.PIPE, text=True)
    try:
        def ready() -> dict[str, list[Any]] | None:
            try:
                return scrape(port)
            except OSError:
                assert served.poll() is None, served.stderr.read() if served.stderr else ""
                return None

        families = wait_until(ready, "the metrics endpoint")

        def value(name: str, **labels: str) -> float:
            samples = [s for s in families[name] if all(s.labels.get(k) == v for k, v in labels.items())]
            assert samples, f"{name} {labels} missing"
            return float(samples[0].value)

        assert value("cuisine_db_up") == 1
        assert value("cuisine_db_max_connections") == MAX_CONNECTIONS
        assert value("cuisine_db_connections_available") == MAX_CONNECTIONS - RESERVED
        assert value("cuisine_db_prepared_transactions") == 1
        assert value("cuisine_db_lock_waiting_sessions") == 1
        assert value("cuisine_db_archiver_failed") >= 1  # a counter: the parser names the family without _total
        assert any(s.name == "cuisine_db_archiver_failed_total" for s in families["cuisine_db_archiver_failed"])
        assert value("cuisine_db_archiver_failing") == 1
        assert value("cuisine_db_replication_slot_retained_bytes", slot="idle_slot", active="false") > 0
        assert value("cuisine_db_replication_lag_bytes", standby="pg_receivewal") >= 0
        assert value("cuisine_db_transactions_committed") > 0
        assert value("cuisine_db_filesystem_free_bytes") > 0
        assert value("cuisine_db_check_status", check="archiving") == 2
        # p is locked by the prepared transaction: it is listed with pg_class's figure rather than waited for.
        assert value("cuisine_db_table_size_bytes", schema="public", table="p") >= 0
        with small.connect() as conn:
            row = conn.execute("SELECT pg_database_size('cuisine')").fetchone()
        assert row is not None and abs(value("cuisine_db_database_size_bytes") - row[0]) < 1024 * 1024
        listening = Path("/proc/net/tcp").read_text()
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening  # loopback only
    finally:
        served.send_signal(signal.SIGTERM)
        assert served.wait(30) == 0
