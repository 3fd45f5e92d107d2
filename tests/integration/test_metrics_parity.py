"""The metrics beyond db-monitor's figures (issue 20), scraped from `cuisine-db metrics serve` on a busy cluster.

One PostgreSQL 18 lab (a module fixture): WAL archiving on (`wal enable`), the monitoring role set up, a
streaming replica (`make db-create-replica`), pgbench from the build's own bin for a few seconds, a temporary
file, a checkpoint, and a lock wait between two sessions. Both endpoints (primary and `--replica`) are scraped
over HTTP; every new family must be there with values the activity explains, `promtool check metrics` must be
clean, and every metric the Grafana dashboard and the alert rules use must be exported. The SQL of every family
also runs on 14, 15 and 18 through the session servers (the checkpointer statement differs from 17 on).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from activity import Background, wait_until, waiting_for_lock
from backup_fixtures import AgeKeys
from conftest import CLI, REPO, Project, available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cuisine_db.monitor.metrics import ServerCollector
from cuisine_db.monitor.store import SizeSnapshot, Store, store_path
from cuisine_db.postgres import binaries, topology
from cuisine_db.postgres.local import node_cluster
from cuisine_db.postgres.ports import free_port

MAJOR = 18
DOCS = REPO / "docs" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is missing (Debian's prometheus)")

# The families issue 20 adds, as scraped (counters with their _total); each must appear on the primary.
NEW_FAMILIES = (
    "checkpoints_timed_total", "checkpoints_requested_total", "checkpoint_write_seconds_total",
    "checkpoint_sync_seconds_total", "buffers_written_total", "bgwriter_maxwritten_stops_total",
    "buffers_allocated_total", "wal_records_total", "wal_full_page_images_total", "wal_bytes_total",
    "wal_buffers_full_total", "wal_directory_bytes", "wal_directory_files", "locks", "database_backends",
    "database_commits_total", "database_rollbacks_total", "database_blocks_hit_total", "database_blocks_read_total",
    "database_rows_returned_total", "database_rows_fetched_total", "database_rows_inserted_total",
    "database_rows_updated_total", "database_rows_deleted_total", "database_temp_files_total",
    "database_temp_bytes_total", "database_deadlocks_total", "database_read_time_seconds_total",
    "database_write_time_seconds_total", "database_session_time_seconds_total", "database_active_time_seconds_total",
    "database_idle_in_transaction_time_seconds_total", "database_sessions_total", "database_sessions_ended_total",
    "database_conflicts_total", "tables", "tables_unlisted", "table_seq_scans_total", "table_index_scans_total",
    "table_live_rows", "table_dead_rows", "table_rows_changed_since_analyze", "table_last_vacuum_age_seconds",
    "table_last_analyze_age_seconds", "sessions", "sessions_waiting_for_lock", "in_recovery",
    "standby_replay_lag_seconds", "standby_replay_lag_bytes", "archiver_last_archived_age_seconds",
)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Samples by full name (cuisine_db_ prefix removed), each with its labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name.removeprefix("cuisine_db_"), []).append((sample.labels, sample.value))
    return found


def families_in(text: str) -> set[str]:
    """The families a scrape declares (by their HELP line), with or without samples."""
    return {line.split()[2].removeprefix("cuisine_db_") for line in text.splitlines() if line.startswith("# HELP ")}


def value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for found, v in samples.get(name, []) if all(found.get(k) == want for k, want in labels.items())]
    assert len(matches) == 1, f"{name}{labels}: {matches} among {samples.get(name, [])[:10]}"
    return matches[0]


def promtool_problems(text: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                            check=False)
    return "" if result.returncode == 0 and not result.stdout.strip() else f"{result.stdout}{result.stderr}"


@dataclass
class Lab:
    project: PitrProject
    primary: str  # the primary's scrape, taken while the lock wait lasted
    standby: str  # the replica's scrape
    pgbench_transactions: int
    waiter_pid: int


def scrape(project: PitrProject, *extra: str) -> str:
    """Start `cuisine-db metrics serve`, scrape it once over HTTP, stop it."""
    port = free_port()
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(project.config)}
    environ.pop("CUISINE_DB_ENV", None)
    server = subprocess.Popen([*CLI, "metrics", "serve", "--env", "production", "--port", str(port), *extra],
                              cwd=project.root, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        def listening() -> bool:
            assert server.poll() is None, server.communicate()[1]
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, "the metrics endpoint to listen")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
            text = str(response.read().decode())
        if not extra:  # the primary's endpoint: its kept connection is the monitoring role's, not the superuser's
            with project.connect() as conn:
                users = conn.execute("SELECT usename FROM pg_stat_activity "
                                     "WHERE application_name = 'cuisine-db metrics'").fetchall()
            assert users == [("cuisine_monitor",)], users
        return text
    finally:
        server.terminate()
        server.communicate(timeout=30)


def pgbench(project: PitrProject, *args: str) -> str:
    build = binaries.find(MAJOR, cache_dir())
    settings = project.settings
    env = settings.env("production")
    environ = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(env.port), "PGUSER": "cuisine",
               "PGDATABASE": "cuisine", "PGPASSFILE": str(settings.env_dir(env) / "pgpass")}
    result = subprocess.run([str(build.program("pgbench")), *args], env=environ, capture_output=True, text=True,
                            timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[Lab]:
    if available(MAJOR) is None:
        binaries.install(MAJOR, cache_dir())
    project = make_pitr_project(tmp_path_factory.mktemp("metrics"), MAJOR, age_keys)
    try:
        project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
        project.ok("security", "setup-roles", "--env", "production")
        replica = project.make("db-create-replica", "env=production", "name=standby1")
        assert replica.returncode == 0, replica.stderr
        # Growth history: the database's size now, recorded as db-monitor would have two hours ago; db-monitor
        # records today's after pgbench, so the disk forecast (disk_full_in_seconds) has a slope to go on.
        settings = project.settings
        with project.connect() as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert size is not None
        Store(store_path(settings, settings.env("production"))).add_snapshot(
            SizeSnapshot(time.time() - 7200, int(size[0]), None, None))
        pgbench(project, "-i", "-s", "1", "-q")
        ran = pgbench(project, "-T", "4", "-c", "2", "-n")
        transactions = int(re.search(r"number of transactions actually processed: (\d+)", ran).group(1))  # type: ignore[union-attr]
        with project.connect() as conn:
            # A sort larger than work_mem spills to a temporary file; a checkpoint writes the dirty buffers.
            conn.execute("SET work_mem = '64kB'")
            conn.execute("SELECT aid FROM pgbench_accounts ORDER BY abalance, filler, aid").fetchall()
            conn.execute("CHECKPOINT")
        project.wait_archived(project.switch())
        monitored = project.cli("monitor", "--env", "production", "--json")
        assert monitored.returncode in (0, 1), monitored.stderr
        holder = project.connect()
        holder.autocommit = False
        holder.execute("LOCK TABLE pgbench_branches IN ACCESS EXCLUSIVE MODE")
        waiter = Background(project.connect, "BEGIN", "LOCK TABLE pgbench_branches IN SHARE ROW EXCLUSIVE MODE",
                            "COMMIT", application="metrics-waiter")
        try:
            with project.connect() as watch:
                wait_until(lambda: waiting_for_lock(watch, waiter.pid), "the second session to wait for the lock")
            primary = scrape(project)
        finally:
            holder.rollback()
            holder.close()
            assert waiter.done()
            waiter.close()
        standby = scrape(project, "--replica", "standby1")
        yield Lab(project, primary, standby, transactions, waiter.pid)
    finally:
        settings = project.settings
        env = settings.env("production")
        for node in topology.load(settings, env).replicas:
            node_cluster(settings, env, topology.home_of(settings, env, node), node.port).destroy()
        project.destroy()


def test_every_new_family_is_scraped_from_a_busy_primary_with_plausible_values(lab: Lab) -> None:
    s = parse(lab.primary)
    missing = [name for name in NEW_FAMILIES if name not in families_in(lab.primary)]
    assert not missing, missing
    assert value(s, "up") == 1 and value(s, "in_recovery") == 0
    assert value(s, "info", member="primary", env="production")
    # pgbench's transactions and its 100,000 accounts are counted in the database they ran in.
    assert value(s, "database_commits_total", database="cuisine") >= lab.pgbench_transactions
    assert value(s, "database_rows_inserted_total", database="cuisine") >= 100_000
    assert value(s, "database_rows_updated_total", database="cuisine") >= lab.pgbench_transactions
    assert value(s, "database_temp_files_total", database="cuisine") >= 1
    assert value(s, "database_temp_bytes_total", database="cuisine") > 0
    assert value(s, "database_sessions_total", database="cuisine") >= 3
    # The lock wait: the waiter asks for SHARE ROW EXCLUSIVE and is not granted it; the holder has ACCESS EXCLUSIVE.
    assert value(s, "locks", database="cuisine", mode="ShareRowExclusiveLock", granted="false") == 1
    assert value(s, "locks", database="cuisine", mode="AccessExclusiveLock", granted="true") >= 1
    assert value(s, "locks", database="cuisine", mode="ExclusiveLock", granted="false") == 0  # zero-filled
    assert value(s, "sessions_waiting_for_lock", database="cuisine", user="cuisine") == 1
    assert value(s, "sessions", database="cuisine", user="cuisine", state="active") >= 1
    assert value(s, "sessions", database="cuisine", user="cuisine", state="idle in transaction") >= 1
    # The checkpoint and the WAL that pgbench wrote.
    assert value(s, "checkpoints_requested_total") >= 1
    assert value(s, "buffers_written_total", writer="checkpointer") > 0
    assert value(s, "wal_bytes_total") > 5 * 2**20 and value(s, "wal_records_total") > 1000
    assert value(s, "wal_directory_bytes") >= 16 * 2**20 and value(s, "wal_directory_files") >= 1
    # Archiving on, a segment just archived; the replica streams.
    assert 0 <= value(s, "archiver_last_archived_age_seconds") < 300
    assert value(s, "disk_full_in_seconds") > 0
    assert value(s, "replication_lag_bytes", standby="standby1") >= 0
    # Every pgbench table, not only the largest: scans, rows, vacuum and analyze (pgbench -i vacuums them).
    assert value(s, "tables") == 4 and value(s, "tables_unlisted") == 0
    table = {"schema": "public", "table": "pgbench_accounts"}
    assert value(s, "table_live_rows", **table) == 100_000
    assert value(s, "table_index_scans_total", **table) >= lab.pgbench_transactions
    assert value(s, "table_seq_scans_total", **table) >= 1
    assert 0 <= value(s, "table_last_vacuum_age_seconds", **table) < 600
    assert 0 <= value(s, "table_last_analyze_age_seconds", schema="public", table="pgbench_branches") < 600
    assert value(s, "table_rows_changed_since_analyze", schema="public", table="pgbench_history") >= 0


def test_the_standby_endpoint_exports_its_replay_lag_and_conflicts(lab: Lab) -> None:
    s = parse(lab.standby)
    assert value(s, "up") == 1
    assert value(s, "info", member="standby1", env="production")
    assert value(s, "in_recovery") == 1
    # Streaming on an idle primary: replay has caught up or is seconds behind, never minutes or gigabytes.
    assert 0 <= value(s, "standby_replay_lag_seconds") < 300
    assert 0 <= value(s, "standby_replay_lag_bytes") < 64 * 2**20
    assert value(s, "wal_directory_bytes") > 0
    assert value(s, "database_conflicts_total", database="cuisine", reason="snapshot") >= 0
    # The standby replayed pgbench's data.
    assert value(s, "table_live_rows", schema="public", table="pgbench_accounts") >= 0
    assert value(s, "database_rows_inserted_total", database="cuisine") >= 0


@needs_promtool
def test_promtool_finds_nothing_to_say_about_either_scrape(lab: Lab) -> None:
    assert promtool_problems(lab.primary) == ""
    assert promtool_problems(lab.standby) == ""


def referenced_metrics() -> set[str]:
    """Every cuisine_db_ metric the dashboard's and the alert rules' expressions use."""
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    expressions.append((DOCS / "alerts.yml").read_text())
    return {name for text in expressions for name in re.findall(r"\bcuisine_db_[a-z_]+", text)}


def test_every_metric_the_dashboard_and_alerts_use_is_exported(lab: Lab) -> None:
    exported = {f"cuisine_db_{name}" for name in parse(lab.primary)} | {f"cuisine_db_{name}" for name in
                                                                       parse(lab.standby)}
    used = referenced_metrics()
    assert len(used) >= 20, used
    assert sorted(used - exported) == []


@needs_promtool
def test_the_alert_rules_pass_promtool() -> None:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "rules", str(DOCS / "alerts.yml")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: [1-9]\d* rules found", result.stdout), result.stdout


def test_every_family_reads_on_each_server_version(project: Project) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(project.settings, project.env()))
    with project.connect() as conn:
        conn.execute("CREATE TABLE kitchens (id int PRIMARY KEY)")
        conn.execute("INSERT INTO kitchens SELECT generate_series(1, 10)")
        conn.execute("VACUUM ANALYZE kitchens")
    started = time.monotonic()
    text = generate_latest(registry).decode()
    assert time.monotonic() - started < 60
    s = parse(text)
    assert value(s, "up") == 1
    declared = families_in(text)
    missing = [name for name in NEW_FAMILIES if name not in declared and name != "archiver_last_archived_age_seconds"]
    assert not missing, missing
    assert value(s, "tables") == 1 and value(s, "table_live_rows", schema="public", table="kitchens") >= 0
    assert value(s, "database_backends", database=project.database) >= 1
    if PROMTOOL is not None:
        assert promtool_problems(text) == ""
    # Per-table series stop at the limit, largest first; the rest are counted.
    with project.connect() as conn:
        # Autovacuum off and the maps made now: a free-space or visibility map page appearing between the scrape
        # and the exact measurement below would change the size by 8 kB (it did once in CI, on 14).
        conn.execute("CREATE TABLE recipes (id int PRIMARY KEY, title text) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO recipes SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g")
        conn.execute("VACUUM ANALYZE recipes")
    bounded = CollectorRegistry(auto_describe=False)
    bounded.register(ServerCollector(project.settings, project.env(), table_series_limit=1))
    s = parse(generate_latest(bounded).decode())
    assert value(s, "tables") == 2 and value(s, "tables_unlisted") == 1
    assert [labels["table"] for labels, _ in s["table_live_rows"]] == ["recipes"]
    # The largest tables' sizes are measured, not estimated, for the candidates the page counts put first.
    with project.connect() as conn:
        exact = conn.execute("SELECT pg_total_relation_size('recipes')").fetchone()
    assert exact is not None and value(s, "table_size_bytes", schema="public", table="recipes") == exact[0]


def test_an_unknown_replica_is_bad_input(project: Project) -> None:
    result = project.cli("metrics", "serve", "--replica", "nosuch", "--port", str(free_port()))
    assert result.returncode == 2, result.stderr
    assert "has no replica 'nosuch'" in result.stderr
