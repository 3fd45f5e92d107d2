"""Scrape time of `cuisine-db metrics serve` on a 5,000-table database: median and p95 over repeated scrapes.

Starts a local cluster with the project's own cluster code, adds `--tables` tables (each with a primary key, an
index and analyzed rows, some scanned), sets up the monitoring role, starts `cuisine-db metrics serve` as an
operator would, and GETs /metrics `--repeat` times over HTTP, one scrape at a time as Prometheus does. Each
scrape is timed end to end (every query, the families, the text exposition, the transfer); the serving process's
CPU time per scrape, and its server backend's (read from /proc: run as root or as the server's user), are the
part that does not depend on how busy the machine is. The load average is read before
and after, so the wall times can be judged against it. Goal: ≤ 1 s.

    .venv/bin/python bench/metrics.py [--tables 5000] [--repeat 30] [--version 18]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db.config import load_settings
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def make_tables(conn: psycopg.Connection[Any], count: int) -> None:
    statement = sql.SQL("""
        DO $$ BEGIN FOR i IN {first}..{last} LOOP
          EXECUTE format('CREATE TABLE bench_%s (id int PRIMARY KEY, n int, v text)', i);
          EXECUTE format('CREATE INDEX ON bench_%s (n)', i);
          EXECUTE format('INSERT INTO bench_%s SELECT g, mod(g, 7), md5(g::text) FROM generate_series(1, 20) g', i);
          EXECUTE format('SELECT count(*) FROM bench_%s WHERE id = 3', i);
        END LOOP; END $$""")
    for first in range(1, count + 1, 250):
        conn.execute(statement.format(first=sql.Literal(first), last=sql.Literal(min(first + 249, count))))
    conn.execute("VACUUM ANALYZE")


def scrape(url: str) -> tuple[float, bytes]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - a loopback URL this script made
        body = bytes(response.read())
    return time.monotonic() - started, body


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--version", type=int, default=18)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder:
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f"[environments.bench]\nport = {free_port()}\npostgres_version = {args.version}\n"
                          "[environments.bench.server_settings]\nfsync = false\n")
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        cluster = ensure_up(settings, env)
        server: subprocess.Popen[str] | None = None
        try:
            params: dict[str, Any] = {"host": "127.0.0.1", "port": env.port, "user": "cuisine", "dbname": "cuisine",
                      "passfile": str(cluster.passfile)}
            with psycopg.connect(**params, autocommit=True) as conn:
                started = time.monotonic()
                make_tables(conn, args.tables)
                setup_seconds = time.monotonic() - started
            environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
            environ.pop("CUISINE_DB_ENV", None)
            cli = [sys.executable, "-m", "cuisine_db"]
            subprocess.run([*cli, "security", "setup-roles", "--env", "bench"], env=environ, check=True,
                           capture_output=True, text=True)
            port = free_port()
            server = subprocess.Popen([*cli, "metrics", "serve", "--env", "bench", "--port", str(port)], env=environ,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"metrics serve did not start: {server.communicate()[1]}")
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/metrics"
            first, body = scrape(url)  # opens the kept connection
            with psycopg.connect(**params, autocommit=True) as conn:
                row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'cuisine-db metrics%%'"
                                   ).fetchone()
            assert row is not None, "the metrics endpoint keeps one connection"
            backend = int(row[0])
            load_before = os.getloadavg()
            times = []
            cpu_before = cpu_seconds(server.pid)
            backend_before = cpu_seconds(backend)
            for _ in range(args.repeat):
                elapsed, body = scrape(url)
                times.append(elapsed)
            cpu_per_scrape = (cpu_seconds(server.pid) - cpu_before) / args.repeat
            backend_per_scrape = (cpu_seconds(backend) - backend_before) / args.repeat
            load_after = os.getloadavg()
            text = body.decode()
            samples = [line for line in text.splitlines() if line and not line.startswith("#")]
            per_table = sum(1 for line in samples if line.startswith("cuisine_db_table_"))
            print(json.dumps({
                "postgres": args.version, "user_tables": args.tables, "setup_s": round(setup_seconds, 1),
                "first_scrape_s": round(first, 3), "scrapes": args.repeat,
                "median_s": round(statistics.median(times), 3), "p95_s": round(percentile(times, 0.95), 3),
                "max_s": round(max(times), 3), "serve_cpu_s_per_scrape": round(cpu_per_scrape, 3),
                "backend_cpu_s_per_scrape": round(backend_per_scrape, 3),
                "samples": len(samples), "per_table_samples": per_table,
                "bytes": len(body), "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after], "cpus": os.cpu_count(),
            }, indent=2))
        finally:
            if server is not None:
                server.terminate()
                server.communicate(timeout=30)
            cluster_for(settings, env).destroy()


if __name__ == "__main__":
    main()
