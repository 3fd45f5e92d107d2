"""db-audit-report's log reading rate against pgBadger's, over the very same server log files, in the same run.

Starts a scratch cluster with the project's own code, runs db-enable-audit (pgaudit where the build has it,
else the log_statement fallback), then produces an audit trail: many short sessions (connection logging),
failed logins, grants, DDL, and single-row writes (one pgaudit line each). The log folder is copied once,
then `cuisine-db security audit-report --json` (end to end: start-up, parsing, report) and
`pgbadger --jobs 1` (the standard PostgreSQL log analyser, its JSON output) alternate over the copy.

    apt-get install pgbadger   # the anchor
    .venv/bin/python bench/audit_report.py --version 15 --sessions 3000 --writes 150000 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db.config import load_settings
from cuisine_db.postgres import connection_params
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.scratch import scratch_environment
from cuisine_db.security import enable_audit

REPO = Path(__file__).resolve().parents[1]


def produce(params: dict[str, object], sessions: int, writes: int) -> None:
    """An audit trail: sessions, failed logins, grants, DDL and writes."""
    with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute("CREATE TABLE IF NOT EXISTS bench_audit (id bigint, note text)")
        conn.execute("DROP ROLE IF EXISTS bench_reader")
        conn.execute("CREATE ROLE bench_reader LOGIN PASSWORD 'SCRAM-SHA-256$4096:x'")
        for number in range(50):
            conn.execute(f"GRANT SELECT ON bench_audit TO bench_reader -- {number}")
            conn.execute(f"CREATE INDEX IF NOT EXISTS bench_audit_{number} ON bench_audit (id)")
        with conn.pipeline():
            for number in range(writes):
                conn.execute("INSERT INTO bench_audit VALUES (%s, 'x')", [number], prepare=False)
    for _ in range(sessions):
        psycopg.connect(**params).close()  # type: ignore[arg-type]
    failed = {**params, "user": "bench_reader", "password": "wrong"}
    failed.pop("passfile", None)
    for _ in range(sessions // 20):
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(**failed).close()  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=int, default=15)
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--writes", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("pgbadger") is None:
        sys.exit("pgbadger is not installed (apt-get install pgbadger): it is the anchor this benchmark compares with")

    settings = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder, \
            scratch_environment(settings, args.version, name="benchaudit") as (scratch, env):
        setup = enable_audit(scratch, env, yes=True)
        produce(connection_params(scratch, env), args.sessions, args.writes)
        time.sleep(2)  # the logging collector writes behind
        logs = Path(folder) / "log"
        shutil.copytree(cluster_for(scratch, env).datadir / "log", logs)
        files = sorted(str(p) for p in logs.iterdir() if p.suffix in (".csv", ".json"))
        size = sum(os.path.getsize(p) for p in files)
        config = Path(folder) / "cuisine-db.toml"
        config.write_text(f'[environments.bench]\ndsn = "host=127.0.0.1 port=1 dbname=none"\n'
                          f'audit_log_dir = "{logs}"\n')
        today = datetime.now(UTC).date().isoformat()
        ours_argv = [sys.executable, "-m", "cuisine_db", "security", "audit-report", "--env", "bench",
                     "--start", today, "--end", today, "--json", "--markdown", str(Path(folder) / "report.md")]
        badger_argv = ["pgbadger", "--quiet", "--jobs", "1", "--format", "jsonlog" if files[0].endswith(".json")
                       else "csv", "--extension", "json", "--outfile", str(Path(folder) / "badger.json"), *files]
        environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
        ours_times: list[float] = []
        badger_times: list[float] = []
        report: dict[str, Any] = {}
        for _ in range(args.repeat):
            started = time.monotonic()
            done = subprocess.run(ours_argv, env=environ, capture_output=True, text=True, check=True)
            ours_times.append(time.monotonic() - started)
            report = json.loads(done.stdout)
            started = time.monotonic()
            subprocess.run(badger_argv, capture_output=True, check=True)
            badger_times.append(time.monotonic() - started)
        ours, badger = statistics.median(ours_times), statistics.median(badger_times)
        writes = report["writes"]
        print(json.dumps({
            "postgres": args.version, "audit": setup.mode, "log_mb": round(size / 1e6, 1),
            "log_records": report["records"], "connections": sum(c["connections"] for c in report["connections"]),
            "failed_logins": len(report["failed_logins"]),
            "writes_counted": sum(w["statements"] for w in writes) if isinstance(writes, list) else 0,
            "audit_report_s": [round(t, 2) for t in ours_times], "pgbadger_s": [round(t, 2) for t in badger_times],
            "audit_report_median_s": round(ours, 2), "pgbadger_median_s": round(badger, 2),
            "audit_report_mb_per_s": round(size / 1e6 / ours, 1), "pgbadger_mb_per_s": round(size / 1e6 / badger, 1),
            "time_ratio_vs_pgbadger": round(ours / badger, 2),
        }, indent=2))


if __name__ == "__main__":
    main()
