"""db-analyze, db-show-config and db-slow-queries on a database of 5,000 tables and 15,000 indexes (goal: each ≤ 2 s).

Starts a scratch cluster with the project's own cluster code and builds the catalog with DO blocks of 250
tables each (one transaction each, to stay inside the lock table): 5,000 tables, each with a primary key and
two more indexes; every 50th table has a foreign key without an index. It then
reads from every table so pg_stat_statements holds 5,000 statements. Each command runs as an
operator runs it (a new `cuisine-db` process, output rendered), `--repeat` times; medians are reported.

Anchors in the same run: psql running the one query an operator would type for the same question (top
statements, non-default settings, never-scanned indexes), check_postgres's `bloat` action where Debian's
check-postgres is installed, and `cuisine-db --help` for the process start-up every command pays.

    .venv/bin/python bench/performance.py [--tables 5000] [--repeat 5] [--version 14]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cuisine_db.cluster import connect
from cuisine_db.config import load_settings
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.runner import tool_environ
from cuisine_db.postgres.scratch import scratch_environment

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cuisine_db"]
BATCH = 250

BUILD = """
DO $$
BEGIN
  FOR i IN %(first)s..%(last)s LOOP
    EXECUTE format('CREATE TABLE bench_%%s (id bigint PRIMARY KEY, a int, b text, c timestamptz, parent bigint)', i);
    EXECUTE format('CREATE INDEX ON bench_%%s (a)', i);
    EXECUTE format('CREATE INDEX ON bench_%%s (b, c)', i);
    IF i %% 50 = 0 THEN
      EXECUTE format('ALTER TABLE bench_%%s ADD FOREIGN KEY (parent) REFERENCES bench_%%s (id)', i, i - 1);
    END IF;
  END LOOP;
END $$
"""

ANCHORS = {
    "db-slow-queries": "SELECT query, calls, total_exec_time, mean_exec_time, rows FROM pg_stat_statements "
                       "ORDER BY total_exec_time DESC LIMIT 20",
    "db-show-config": "SELECT name, setting, unit, source, context FROM pg_settings WHERE source <> 'default'",
    "db-analyze": "SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid) FROM pg_stat_user_indexes s "
                  "JOIN pg_index i ON i.indexrelid = s.indexrelid WHERE s.idx_scan = 0 AND NOT i.indisunique",
}


def timed(argv: list[str], environ: dict[str, str], repeat: int, ok: tuple[int, ...] = (0,)) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        result = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
        times.append(time.monotonic() - started)
        if result.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    return times


def summary(times: list[float]) -> dict[str, object]:
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--version", type=int, default=14)
    args = parser.parse_args()

    settings = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as folder, \
            scratch_environment(settings, args.version, name="benchperf") as (scratch, env):
        started = time.monotonic()
        with connect(scratch, env, "bench") as conn:
            conn.execute("SET statement_timeout = 0")
            for first in range(1, args.tables + 1, BATCH):
                conn.execute(BUILD % {"first": first, "last": min(first + BATCH - 1, args.tables)})
            counts = conn.execute("SELECT (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE "
                                  "'bench%%'), (SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'bench%%')",
                                  {}).fetchone()
            built = time.monotonic() - started
            for table in range(1, args.tables + 1):
                conn.execute(f"SELECT * FROM bench_{table} WHERE a = 1")  # noqa: S608 - generated names
            conn.execute("ANALYZE")
        assert counts is not None
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f'state_dir = "{scratch.state_dir}"\n[environments.benchperf]\nport = {env.port}\n'
                          f"postgres_version = {args.version}\n")
        environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
        environ.pop("CUISINE_DB_ENV", None)
        psql = str(find(args.version, settings.cache_dir).program("psql"))
        libpq = tool_environ(client_environ(scratch, env))
        result: dict[str, object] = {
            "postgres": args.version, "tables": counts[0], "indexes": counts[1],
            "catalog_built_s": round(built, 1), "repeat": args.repeat, "goal_s": 2.0,
            "cli_startup (cuisine-db --help)": summary(timed([*CLI, "--help"], environ, args.repeat)),
        }
        commands = {
            "db-analyze": [*CLI, "analyze", "--env", "benchperf"],
            "db-show-config": [*CLI, "config", "show", "--env", "benchperf"],
            "db-slow-queries": [*CLI, "slow-queries", "--env", "benchperf"],
        }
        for target, argv in commands.items():
            ours = timed(argv, environ, args.repeat, ok=(0, 1))
            anchor = timed([psql, "-X", "-q", "-o", "/dev/null", "-c", ANCHORS[target]], libpq, args.repeat)
            result[target] = {**summary(ours), "within_goal": statistics.median(ours) <= 2.0,
                              "psql_one_query": summary(anchor),
                              "ratio_to_psql": round(statistics.median(ours) / statistics.median(anchor), 1)}
        check_postgres = shutil.which("check_postgres") or shutil.which("check_postgres.pl")
        if check_postgres:
            bloat = timed([check_postgres, "--action=bloat", "--warning=10GB", "--critical=20GB"], libpq,
                          args.repeat, ok=(0, 1, 2))
            result["db-analyze"]["check_postgres_bloat"] = summary(bloat)  # type: ignore[index]
        else:
            result["check_postgres"] = "not installed (apt-get install check-postgres for that anchor)"
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
