"""db-connections, db-table-sizes, db-monitor and db-growth against situations made for real on the test server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from activity import Background, wait_until, waiting_for_lock
from cli_support import error_lines
from cli_support import run_make as make
from conftest import Project, Server


def thresholds(project: Project, **values: float) -> None:
    """Override the development environment's monitoring thresholds, as an operator would in cuisine-db.toml."""
    marker = "[environments.development.monitoring]\n"
    base = project.config.read_text().split(marker)[0]
    lines = "".join(f"{key} = {value}\n" for key, value in values.items())
    project.config.write_text(f"{base}{marker}{lines}")


def findings(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == check]


def idle_session(project: Project) -> psycopg.Connection[Any]:
    leak = project.connect()
    leak.execute("SET application_name = 'leaky-app'")
    leak.autocommit = False
    leak.execute("SELECT count(*) FROM pg_class")
    return leak


def test_a_session_idle_in_transaction_is_reported_as_a_leak(project: Project) -> None:
    thresholds(project, idle_in_transaction_seconds=2)
    leak = idle_session(project)
    try:
        with project.connect() as watch:
            wait_until(lambda: watch.execute("SELECT now() - state_change > interval '2.5 s' FROM pg_stat_activity "
                                             "WHERE pid = %s", (leak.info.backend_pid,)).fetchone() == (True,),
                       "the session to be idle in transaction for 2.5 s")
        result = project.cli("connections", "--json")
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        (idle,) = [s for s in report["usage"]["idle_in_transaction"] if s["pid"] == leak.info.backend_pid]
        assert idle["application"] == "leaky-app" and idle["state_seconds"] >= 2
        (finding,) = [f for f in findings(report, "idle in transaction") if str(leak.info.backend_pid) in f["subject"]]
        assert f"make db-terminate-query env=development pid={leak.info.backend_pid}" in finding["fix"]
        assert report["usage"]["by_state"]["idle in transaction"] >= 1
        assert report["usage"]["oldest_transaction"]["pid"] == leak.info.backend_pid
        monitored = project.cli("monitor", "--json", "--window", "0")
        assert monitored.returncode == 1
        checks = {c["name"]: c for c in json.loads(monitored.stdout)["checks"]}
        assert checks["connection pool usage"]["status"] == "warning"
    finally:
        leak.close()
    clean = project.cli("connections")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "connection usage is healthy" in clean.stderr


@pytest.mark.postgres(max=14, reason="the real minute runs once, on production's version; the others use a short "
                                     "threshold")
def test_idle_in_transaction_for_a_real_minute_with_the_default_threshold(server: Server, project: Project) -> None:
    leak = idle_session(project)
    try:
        quiet = project.cli("connections", "--json")
        assert quiet.returncode == 0 and not json.loads(quiet.stdout)["findings"]
        time.sleep(61)
        result = project.cli("connections", "--json")
        assert result.returncode == 1
        (finding,) = json.loads(result.stdout)["findings"]
        assert finding["check"] == "idle in transaction" and str(leak.info.backend_pid) in finding["subject"]
        assert re.search(r"idle in transaction for [1-9]m\d\ds", finding["evidence"]), finding["evidence"]
    finally:
        leak.close()


def test_heavy_dead_tuples_and_bloat_are_reported(project: Project) -> None:
    with project.connect() as conn:
        conn.execute("CREATE TABLE churn (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO churn SELECT g, repeat('x', 60) FROM generate_series(1, 20000) AS g")
        conn.execute("UPDATE churn SET payload = repeat('y', 60)")
        conn.execute("UPDATE churn SET payload = repeat('z', 60)")
    with project.connect() as conn:
        # ANALYZE resets the live and dead estimates: let the updates' statistics arrive first (PostgreSQL 14
        # sends them a moment later), so they are not added on top of ANALYZE's figures.
        wait_until(lambda: conn.execute("SELECT n_dead_tup >= 40000 FROM pg_stat_user_tables WHERE relname = "
                                        "'churn'").fetchone() == (True,), "the updates' statistics")
        conn.execute("ANALYZE churn")

    def dead_share() -> dict[str, Any] | None:
        rows = json.loads(project.cli("table-sizes", "--json").stdout)
        churn = next(r for r in rows if r["table_name"] == "churn")
        return churn if churn["dead_share"] > 0.6 else None

    churn = wait_until(dead_share, "the statistics to count the dead rows")
    assert churn["dead_rows"] >= 30000
    assert churn["bloat_share"] > 0.5 and churn["bloat_bytes"] > 1_000_000
    assert churn["row_estimate"] == 20000
    text = project.cli("table-sizes", "--limit", "1")
    assert text.returncode == 0 and "churn" in text.stdout and "bloat (est.)" in text.stdout

    report = json.loads(project.cli("monitor", "--json", "--window", "0").stdout)
    (dead,) = findings(report, "storage utilization")
    assert dead["subject"] == "table public.churn" and "VACUUM (ANALYZE) public.churn" in dead["fix"]
    with project.connect() as conn:
        conn.execute("VACUUM churn")
    wait_until(lambda: not findings(json.loads(project.cli("monitor", "--json", "--window", "0").stdout),
                                    "storage utilization"), "the dead rows to be gone after VACUUM")


def test_a_long_running_query_is_reported_and_warns_then_goes_critical(project: Project) -> None:
    thresholds(project, long_query_warning_seconds=1, long_query_critical_seconds=3600)
    sleeper = Background(project.connect, "SELECT pg_sleep(300)", application="report-job")
    try:
        with project.connect() as watch:
            wait_until(lambda: watch.execute("SELECT now() - query_start > interval '1.5 s' FROM pg_stat_activity "
                                             "WHERE pid = %s AND state = 'active'", (sleeper.pid,)).fetchone()
                       == (True,),
                       "the query to run for 1.5 s")
        warned = project.cli("monitor", "--nagios", "--window", "0")
        assert warned.returncode == 1, warned.stdout + warned.stderr
        assert warned.stdout.startswith("CUISINE-DB WARNING - development:")
        assert f"WARNING: long-running queries: pid {sleeper.pid}" in warned.stdout
        assert "SELECT pg_sleep(300)" in warned.stdout
        thresholds(project, long_query_warning_seconds=1, long_query_critical_seconds=1.5)
        critical = project.cli("monitor", "--nagios", "--window", "0")
        assert critical.returncode == 2 and critical.stdout.startswith("CUISINE-DB CRITICAL - development:")
        assert project.cli("terminate-query", "--pid", str(sleeper.pid)).returncode == 0
        assert sleeper.done()
    finally:
        sleeper.close()


def counters(project: Project) -> tuple[int, int]:
    with project.connect() as conn:
        row = conn.execute("SELECT xact_rollback, deadlocks FROM pg_stat_database WHERE datname = current_database()"
                           ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_transaction_volume_rollbacks_and_a_real_deadlock(project: Project) -> None:
    first = project.cli("monitor", "--json")  # stores the counters the next run compares with
    assert json.loads(first.stdout)["figures"]["rates"]["source"] == "sampled"
    rollbacks, deadlocks = counters(project)
    with project.connect() as conn:
        conn.execute("CREATE TABLE d (id int PRIMARY KEY); INSERT INTO d VALUES (1), (2)")
        for _ in range(150):
            conn.execute("BEGIN")
            conn.execute("ROLLBACK")
    one, two = project.connect(), project.connect()
    one.autocommit = two.autocommit = False
    one.execute("UPDATE d SET id = id WHERE id = 1")
    two.execute("UPDATE d SET id = id WHERE id = 2")
    crossing = Background(lambda: one, "UPDATE d SET id = id WHERE id = 2", application="deadlock-one")
    with project.connect() as watch:
        wait_until(lambda: waiting_for_lock(watch, one.info.backend_pid), "the first session to wait")
    # Whichever session's deadlock check runs first is the victim; the other goes on.
    second: BaseException | None = None
    try:
        two.execute("UPDATE d SET id = id WHERE id = 1")
    except psycopg.errors.DeadlockDetected as exc:
        second = exc
    two.close()
    assert crossing.done()
    assert [type(e) for e in (crossing.error, second) if e is not None] == [psycopg.errors.DeadlockDetected]
    one.close()
    # Sessions report their statistics as they end; wait until the server counts all of it.
    wait_until(lambda: counters(project) >= (rollbacks + 150, deadlocks + 1), "the statistics to count it all")
    time.sleep(1.0)  # rates since the previous run need at least a second between runs

    report = json.loads(project.cli("monitor", "--json").stdout)
    assert report["figures"]["rates"]["source"] == "since the previous run"
    found = {f["subject"]: f for f in findings(report, "transaction volume")}
    assert set(found) == {"rollback ratio", "deadlocks"}
    assert found["deadlocks"]["evidence"].startswith("1 deadlock(s) in the last")
    assert report["figures"]["rates"]["transactions"] >= 150


def test_monitor_exit_codes_keep_bad_input_distinct(project: Project, tmp_path: Path) -> None:
    ok = project.cli("monitor", "--window", "0")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    nagios_ok = project.cli("monitor", "--nagios", "--window", "0")
    assert nagios_ok.returncode == 0 and nagios_ok.stdout.startswith("CUISINE-DB OK - development: all 8 checks ok |")

    bad = make(project.config, "db-monitor", "env=development", "window=soon")
    lines = error_lines(bad.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: --window takes seconds") and "Error 2" in bad.stderr
    assert bad.stdout == ""  # nothing ran: no status line
    unknown_env = project.cli("monitor", "--env", "nope")
    assert unknown_env.returncode == 2 and unknown_env.stderr.startswith("error: unknown environment")

    # Nagios mode: what stops the check (bad input) is UNKNOWN (3) with a status line, never a false CRITICAL;
    # a server that does not answer is CRITICAL (2), as Nagios's own check_pgsql says.
    bad_nagios = make(project.config, "db-monitor", "env=development", "window=soon", "nagios=1")
    assert "Error 3" in bad_nagios.stderr
    assert bad_nagios.stdout.startswith("CUISINE-DB UNKNOWN - development: --window takes seconds")
    down = tmp_path / "down.toml"
    down.write_text('[environments.gone]\ndsn = "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2"\n')
    unreachable = project.cli("monitor", "--nagios", extra_env={"CUISINE_DB_CONFIG": str(down)})
    assert unreachable.returncode == 2 and unreachable.stdout.startswith("CUISINE-DB CRITICAL - gone: server down:")
    plain = project.cli("monitor", extra_env={"CUISINE_DB_CONFIG": str(down)})
    assert plain.returncode == 3 and plain.stderr.startswith("error: cannot connect")


def test_each_monitoring_run_stores_a_snapshot_and_growth_shows_it(project: Project) -> None:
    thresholds(project, snapshot_interval_seconds=0)
    with project.connect() as conn:
        conn.execute("CREATE TABLE growing (id int, payload text)")
    for rows in (1000, 20000):
        with project.connect() as conn:
            conn.execute("INSERT INTO growing SELECT g, repeat('x', 100) FROM generate_series(1, %s) AS g", (rows,))
        report = json.loads(project.cli("monitor", "--json", "--window", "0").stdout)
        assert report["snapshot_recorded"] is True
    result = project.cli("growth", "--json")
    assert result.returncode == 0, result.stderr
    growth = json.loads(result.stdout)
    assert growth["snapshots"] == 3  # two monitoring runs, and the one growth records itself
    (top,) = [t for t in growth["tables"] if t["name"] == "growing"]
    assert growth["tables"][0]["name"] == "growing"
    assert top["growth_bytes"] > 1_000_000 and len(top["series"]) == 3
    assert growth["forecast"]["days_until_full"] is None  # a remote server, no disk size configured
    text = project.cli("growth")
    assert "growing" in text.stdout and "days until full: unknown" in text.stdout
    assert "█" in text.stdout


def test_the_runbook_targets_run_through_make(project: Project) -> None:
    for target, code in (("db-connections", 0), ("db-show-locks", 0), ("db-size", 0), ("db-table-sizes", 0),
                         ("db-growth", 0)):
        result = make(project.config, target, "env=development")
        assert result.returncode == code, f"{target}: {result.stderr}"
    assert "no session is waiting for a lock" in make(project.config, "db-show-locks", "env=development").stdout
    nagios = make(project.config, "db-monitor", "env=development", "nagios=1", "window=0")
    assert nagios.returncode == 0 and nagios.stdout.startswith("CUISINE-DB OK")

