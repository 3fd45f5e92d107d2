"""Troubleshooting and monitoring on a 5,000-table database: each command's wall time, and db-monitor's server CPU.

Starts a local cluster with the project's own cluster code, migrates and seeds it, adds 5,000 tables (each with
a primary key, an index and analyzed rows), a blocking chain and idle sessions. Then, alternating, times every
diagnostic command as an operator runs it (`cuisine-db ...`, Python start-up included) against its anchor in the
same run: psql running the core catalog query of the same question (what pg-extras and PgHero run). Goal: each
command within 2 s.

Server CPU: the utime+stime of the postmaster and all its children (and of children already reaped) from /proc,
over windows of `--window` seconds without monitoring and with one `cuisine-db monitor` run at the start of the
window, as a scheduler running it every minute would. Goal: under 1% of one core.

    .venv/bin/python bench/troubleshooting.py [--tables 5000] [--repeat 5] [--windows 3] [--window 60] [--version 14]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db.config import load_settings
from cuisine_db.diagnose.connections import connection_usage
from cuisine_db.diagnose.locks import show_locks
from cuisine_db.diagnose.sizes import database_size, table_sizes
from cuisine_db.migrations import migrate
from cuisine_db.monitor import growth_report, run_monitor
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

# Each command, and the query its anchor runs in psql (the same question asked of the catalogs directly).
ANCHORS = {
    "connections": "SELECT datname, usename, application_name, client_addr, state, count(*) FROM pg_stat_activity "
                   "GROUP BY 1, 2, 3, 4, 5",
    "locks": "SELECT pid, pg_blocking_pids(pid), query FROM pg_stat_activity "
             "WHERE cardinality(pg_blocking_pids(pid)) > 0",
    "size": "SELECT pg_size_pretty(pg_database_size(current_database()))",
    "table-sizes": "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
                   "ORDER BY 2 DESC LIMIT 50",
    "monitor": "SELECT * FROM pg_stat_database WHERE datname = current_database()",
    "growth": "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r'",
}
COMMANDS = {
    "connections": ["connections"],
    "locks": ["locks"],
    "size": ["size"],
    "table-sizes": ["table-sizes"],
    "monitor": ["monitor"],
    "growth": ["growth"],
}


def server_cpu_seconds(datadir: Path) -> float:
    """CPU time of the postmaster, its live children, and its reaped children (cutime/cstime)."""
    postmaster = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def make_tables(conn: psycopg.Connection[Any], count: int) -> None:
    statement = sql.SQL("""
        DO $$ BEGIN FOR i IN {first}..{last} LOOP
          EXECUTE format('CREATE TABLE bench_%s (id int PRIMARY KEY, n int, v text)', i);
          EXECUTE format('CREATE INDEX ON bench_%s (n)', i);
          EXECUTE format('INSERT INTO bench_%s SELECT g, mod(g, 7), md5(g::text) FROM generate_series(1, 20) g', i);
        END LOOP; END $$""")
    for first in range(1, count + 1, 250):
        conn.execute(statement.format(first=sql.Literal(first), last=sql.Literal(min(first + 249, count))))
    conn.execute("ANALYZE")


def timed(argv: list[str], environ: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode not in (0, 1):  # 1: a check found something, which is fine here
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--version", type=int, default=14)
    args = parser.parse_args()
    # Stopped with SIGTERM, still destroy the cluster (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="bench-trouble-") as folder:
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f'migrations_dir = "{REPO / "db" / "migrations"}"\n'
                          f"[environments.bench]\nport = {free_port()}\npostgres_version = {args.version}\n"
                          "[environments.bench.server_settings]\nfsync = false\n")
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        cluster = ensure_up(settings, env)
        held: list[psycopg.Connection[Any]] = []
        try:
            migrate(settings, env)
            load(settings, env, scale=1, seed=42)
            params: dict[str, Any] = {"host": "127.0.0.1", "port": env.port, "user": "cuisine", "dbname": "cuisine",
                      "passfile": str(cluster.passfile)}
            with psycopg.connect(**params, autocommit=True) as conn:
                started = time.monotonic()
                make_tables(conn, args.tables)
                setup_seconds = time.monotonic() - started
                tables = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                                      "'public'::regnamespace").fetchone()
            # Something to find: a blocker, two sessions waiting behind it, three idle sessions. The lock is
            # taken in another database: the psql anchors' size queries would wait behind it forever.
            other = {**params, "dbname": "postgres"}
            with psycopg.connect(**other, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS contended (id int)")
            blocker = psycopg.connect(**other)
            blocker.execute("LOCK TABLE contended IN ACCESS EXCLUSIVE MODE")
            held.append(blocker)
            for _ in range(2):
                waiter = psycopg.connect(**other, autocommit=True)
                waiter.pgconn.send_query(b"SELECT count(*) FROM contended")
                held.append(waiter)
            held += [psycopg.connect(**params, autocommit=True) for _ in range(3)]

            environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
            cli = [sys.executable, "-m", "cuisine_db"]
            psql = [str(find(args.version, settings.cache_dir).program("psql")), "-X", "-q", "-o", "/dev/null", "-c"]
            psql_environ = tool_environ(client_environ(settings, env))
            first_monitor = timed([*cli, "monitor", "--env", "bench"], environ)  # samples 1 s, snapshots 5,000 tables
            startup = statistics.median(timed([*cli, "--help"], environ) for _ in range(args.repeat))
            runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
            anchors: dict[str, list[float]] = {name: [] for name in COMMANDS}
            for _ in range(args.repeat):
                for name, command in COMMANDS.items():
                    runs[name].append(timed([*cli, *command, "--env", "bench"], environ))
                    anchors[name].append(timed([*psql, ANCHORS[name]], psql_environ))
            # The same work in-process: what each command costs beyond the interpreter's start-up.
            services: dict[str, Callable[[], object]] = {
                "connections": lambda: connection_usage(settings, env),
                "locks": lambda: show_locks(settings, env),
                "size": lambda: database_size(settings, env),
                "table-sizes": lambda: table_sizes(settings, env, 50),
                "monitor": lambda: run_monitor(settings, env),
                "growth": lambda: growth_report(settings, env),
            }
            in_process: dict[str, list[float]] = {name: [] for name in COMMANDS}
            for _ in range(args.repeat):
                for name, service in services.items():
                    started = time.monotonic()
                    service()
                    in_process[name].append(time.monotonic() - started)
                    time.sleep(1.0)  # db-monitor compares with the previous run's counters only after a second
            commands = {name: {"median_s": round(statistics.median(runs[name]), 3),
                               "max_s": round(max(runs[name]), 3),
                               "psql_anchor_s": round(statistics.median(anchors[name]), 3),
                               "ratio": round(statistics.median(runs[name]) / statistics.median(anchors[name]), 1),
                               "within_2s": max(runs[name]) <= 2.0,
                               "in_process_median_s": round(statistics.median(in_process[name]), 3)}
                        for name in COMMANDS}

            # Server CPU: idle windows against windows that start with one monitoring run.
            idle: list[float] = []
            monitored: list[float] = []
            per_run: list[float] = []
            for _ in range(args.windows):
                before = server_cpu_seconds(cluster.datadir)
                time.sleep(args.window)
                idle.append(server_cpu_seconds(cluster.datadir) - before)
                started = time.monotonic()
                before = server_cpu_seconds(cluster.datadir)
                subprocess.run([*cli, "monitor", "--env", "bench"], env=environ, capture_output=True, check=False)
                per_run.append(server_cpu_seconds(cluster.datadir) - before)
                time.sleep(max(0.0, args.window - (time.monotonic() - started)))
                monitored.append(server_cpu_seconds(cluster.datadir) - before)
            # The hourly snapshot run (5,000 tables' sizes) costs more: measure one and spread it over the hour.
            (settings.env_dir(env) / "monitor.sqlite").unlink()
            before = server_cpu_seconds(cluster.datadir)
            subprocess.run([*cli, "monitor", "--env", "bench"], env=environ, capture_output=True, check=False)
            snapshot_run = server_cpu_seconds(cluster.datadir) - before
            added = statistics.median(monitored) - statistics.median(idle)
            cpu = {
                "window_s": args.window,
                "idle_cpu_s_per_window": round(statistics.median(idle), 3),
                "monitored_cpu_s_per_window": round(statistics.median(monitored), 3),
                "one_run_cpu_s": round(statistics.median(per_run), 3),
                "snapshot_run_cpu_s": round(snapshot_run, 3),
                "added_percent_of_one_core_every_minute": round(added / args.window * 100, 3),
                "per_run_estimate_percent": round(
                    (statistics.median(per_run) + (snapshot_run - statistics.median(per_run)) / 60) / 60 * 100, 3),
            }
            print(json.dumps({"postgres": args.version, "user_tables": tables[0] if tables else None,
                              "setup_s": round(setup_seconds, 1), "cli_startup_s": round(startup, 3),
                              "first_monitor_run_s": round(first_monitor, 3), "commands": commands,
                              "server_cpu": cpu}, indent=2))
        finally:
            for conn in held:
                conn.close()
            cluster_for(settings, env).destroy()


if __name__ == "__main__":
    main()
