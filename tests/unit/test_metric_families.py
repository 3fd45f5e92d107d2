"""The server statistics turned into Prometheus families: units, labels, what is left out (no server needed)."""

from __future__ import annotations

from prometheus_client.core import Metric

from cuisine_db.monitor.metric_families import families
from cuisine_db.monitor.server_stats import (
    Checkpointer,
    DatabaseActivity,
    LockCount,
    ServerStats,
    SessionCount,
    StandbyReplay,
    TableActivity,
    WalActivity,
)


def database(name: str) -> DatabaseActivity:
    return DatabaseActivity(name, 2, 10, 1, 5, 95, 1000, 100, 7, 3, 1, 0, 2, 4096, 0, 1500.0, 250.0, 60000.0,
                            30000.0, 1000.0, 9, 1, 0, 2, 0, 0, 3, 0, 0)


def table(name: str, vacuumed: float | None, tables: int = 2) -> TableActivity:
    return TableActivity("public", name, 4, 40, 100, 5, 7, vacuumed, None, tables)


STATS = ServerStats(
    checkpointer=Checkpointer(3, 2, 1500.0, 20.0, 400, 30, 1, 12, 900),
    wal=WalActivity(1000, 10, 123456, 0, 3, 48 * 2**20),
    locks=[LockCount("cuisine", "AccessShareLock", True, 2), LockCount("cuisine", "ShareLock", False, 1)],
    databases=[database("cuisine"), database("postgres")],
    tables=[table("recipes", 120.0, tables=3), table("kitchens", None, tables=3)],
    sessions=[SessionCount("cuisine", "app", "active", 3, 1), SessionCount("cuisine", "app", "idle", 5, 0),
              SessionCount("cuisine", "ops", "active", 1, 1)],
    standby=StandbyReplay(True, 4.5, 8192),
)


def scraped() -> dict[str, Metric]:
    return {family.name.removeprefix("cuisine_db_"): family for family in families(STATS)}


def samples(family: Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_times_are_exported_in_seconds_and_buffers_by_writer() -> None:
    found = scraped()
    assert samples(found["checkpoint_write_seconds"]) == {(): 1.5}
    assert samples(found["database_read_time_seconds"])[(("database", "cuisine"),)] == 1.5
    assert samples(found["database_session_time_seconds"])[(("database", "postgres"),)] == 60.0
    assert samples(found["buffers_written"]) == {(("writer", "checkpointer"),): 400, (("writer", "bgwriter"),): 30,
                                                 (("writer", "backend"),): 12}
    assert found["wal_bytes"].type == "counter" and found["wal_directory_bytes"].type == "gauge"


def test_locks_keep_mode_and_granted_and_sessions_wait_by_database_and_user() -> None:
    found = scraped()
    assert samples(found["locks"])[(("database", "cuisine"), ("granted", "false"), ("mode", "ShareLock"))] == 1
    assert samples(found["sessions_waiting_for_lock"]) == {(("database", "cuisine"), ("user", "app")): 1,
                                                           (("database", "cuisine"), ("user", "ops")): 1}
    assert len(samples(found["sessions"])) == 3


def test_a_table_never_vacuumed_has_no_age_and_the_unlisted_ones_are_counted() -> None:
    found = scraped()
    ages = samples(found["table_last_vacuum_age_seconds"])
    assert ages == {(("schema", "public"), ("table", "recipes")): 120.0}
    assert samples(found["table_last_analyze_age_seconds"]) == {}
    assert samples(found["tables"]) == {(): 3} and samples(found["tables_unlisted"]) == {(): 1}
    conflicts = samples(found["database_conflicts"])
    assert conflicts[(("database", "cuisine"), ("reason", "snapshot"))] == 3 and len(conflicts) == 10
    assert samples(found["standby_replay_lag_seconds"]) == {(): 4.5} and samples(found["in_recovery"]) == {(): 1}
