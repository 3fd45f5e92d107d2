"""The dashboard on a 5,000-table database: each page's server time, the same with 20 viewers at once, and the
database's extra CPU per viewer.

Starts a local cluster with the project's own cluster code, migrates and seeds it (scale 1), adds `--tables` tables
(each with a primary key, an index and 20 analyzed rows) and the monitoring role, then serves the dashboard in this
process (uvicorn on a loopback port, the page timeouts as `cuisine-db dashboard` sets them). Server time is the
time from request to the last byte over loopback, measured by the client.

1. Alone: each page `--repeat` times in turn; median and p95. Goal: p95 ≤ 300 ms.
   Each round waits past the reuse interval, so every request is a fresh read of the page; the slow parts
   (index advice, configuration advice, security check: reads.Slow) are shared for a minute and read anew in
   the background, so a viewer waits for them only on the very first request (the warm-up here). The parts'
   times of one cold read (no sharing) are printed too: where the time would go without it.
2. `--viewers` viewers at once for `--window` seconds, each loading a page and then waiting as the Live page's
   refresh does (5 s), going round the five pages; every answer's time; p95 per page (viewers within 2 s of
   a page's last read share it: app.REUSE_SECONDS).
3. Server CPU (utime+stime of the postmaster and its children, from /proc) over an idle window and over the
   viewers' window: the extra per viewer, as a share of one core.

    .venv/bin/python bench/dashboard.py [--tables 5000] [--repeat 10] [--viewers 20] [--window 60] [--version 18]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db.config import load_settings
from cuisine_db.migrations import migrate
from cuisine_db.postgres.local import ensure_up
from cuisine_db.postgres.ports import free_port
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
PAGES = ["/", "/recovery", "/database", "/live", "/incidents"]
THINK_SECONDS = 5.0


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
            total += sum(int(value) for value in fields[11:15])
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


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - our own loopback server
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url}: HTTP {answer.status}")
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def viewers(base: str, count: int, window: float) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {page: [] for page in PAGES}
    lock = threading.Lock()
    end = time.monotonic() + window

    def viewer(index: int) -> None:
        turn = index
        time.sleep(index * THINK_SECONDS / count)  # viewers arrive spread over one refresh interval
        while time.monotonic() < end:
            page = PAGES[turn % len(PAGES)]
            took = fetch(base + page)
            with lock:
                times[page].append(took)
            turn += 1
            time.sleep(THINK_SECONDS)

    threads = [threading.Thread(target=viewer, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--version", type=int, default=18)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import uvicorn

    from cuisine_db.dashboard import reads
    from cuisine_db.dashboard.app import REUSE_SECONDS, create_app
    from cuisine_db.security.roles import setup_roles

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f'migrations_dir = "{REPO / "db" / "migrations"}"\n'
                          f"[environments.bench]\nport = {free_port()}\npostgres_version = {args.version}\n"
                          "[environments.bench.server_settings]\nfsync = false\n")
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        cluster = ensure_up(settings, env)
        server = None
        try:
            migrate(settings, env)
            load(settings, env, scale=1, seed=42)
            setup_roles(settings, env)
            params: dict[str, Any] = {"host": "127.0.0.1", "port": env.port, "user": "cuisine", "dbname": "cuisine",
                      "passfile": str(cluster.passfile)}
            with psycopg.connect(**params, autocommit=True) as conn:
                make_tables(conn, args.tables)
                tables = conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone()
            os.environ["PGOPTIONS"] = reads.PGOPTIONS
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(create_app(settings, env), host="127.0.0.1", port=port,
                                                   access_log=False, log_level="warning"))
            threading.Thread(target=server.run, daemon=True).start()
            base = f"http://127.0.0.1:{port}"
            while not server.started:
                time.sleep(0.05)
            for page in PAGES:  # warm: first imports, the explain role, caches
                fetch(base + page)
            # Where a cold read's time goes (no shared parts), page by page.
            parts = {"database": reads.database(settings, env).timings,
                     "overview": reads.overview(settings, env).timings}
            time.sleep(REUSE_SECONDS + 0.1)
            load_alone = os.getloadavg()
            alone: dict[str, list[float]] = {page: [] for page in PAGES}
            for _ in range(args.repeat):
                for page in PAGES:
                    alone[page].append(fetch(base + page))
                time.sleep(REUSE_SECONDS + 0.1)  # each round reads anew: no reuse between viewers here
            datadir = cluster.datadir
            cpu = server_cpu_seconds(datadir)
            time.sleep(args.window)
            idle_cpu = server_cpu_seconds(datadir) - cpu
            load_before = os.getloadavg()
            cpu = server_cpu_seconds(datadir)
            crowd = viewers(base, args.viewers, args.window)
            crowd_cpu = server_cpu_seconds(datadir) - cpu
            load_after = os.getloadavg()
            per_viewer = max(0.0, crowd_cpu - idle_cpu) / args.viewers / args.window
            result = {
                "tables": tables[0] if tables else None, "version": args.version,
                "alone": {page: {"median_ms": round(statistics.median(v) * 1000),
                                 "p95_ms": round(p95(v) * 1000)} for page, v in alone.items()},
                "loadavg_alone": load_alone,
                "cold_parts_ms": {page: {what: round(seconds * 1000) for what, seconds in timings.items()}
                                  for page, timings in parts.items()},
                "viewers": args.viewers,
                "crowd": {page: {"requests": len(v), "median_ms": round(statistics.median(v) * 1000),
                                 "p95_ms": round(p95(v) * 1000)} for page, v in crowd.items() if v},
                "idle_cpu_s": round(idle_cpu, 2), "crowd_cpu_s": round(crowd_cpu, 2), "window_s": args.window,
                "cpu_share_per_viewer": round(per_viewer * 100, 3),
                "loadavg_before": load_before, "loadavg_after": load_after,
            }
            print(json.dumps(result, indent=2))
        finally:
            if server is not None:
                server.should_exit = True
            cluster.destroy()


if __name__ == "__main__":
    main()
