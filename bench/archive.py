"""db-archive-data against the plain way of archiving (COPY the old rows out, then one DELETE), same table, same run.

Starts a local cluster with the project's own code and makes `bench_events` (`--rows` rows: bigint primary key,
`created_at` spread evenly over two years, a ~200-byte payload), kept as a template. Each repetition refills the
table from the template, then runs, alternating which goes first:
- the anchor, what an operator types today: psql `\\copy (SELECT * ... WHERE created_at < now() - '365 days') TO
  file`, then `DELETE FROM bench_events WHERE created_at < now() - interval '365 days'` (one transaction);
- ours, as an operator runs it (`cuisine-db archive create --json`, Python start-up included): compressed,
  encrypted, checksummed, read back and decrypted, manifest, then deleted in batches of `--batch` rows.
Both are timed end to end. A sampler reads pg_stat_activity every few milliseconds and records the longest open
transaction of the session that deletes (the anchor's DELETE; ours, the batches): the longest time row locks on
old rows were held, i.e. how long a writer touching one of those rows could have had to wait.

    .venv/bin/python bench/archive.py [--rows 1000000] [--repeat 3] [--batch 1000] [--version 14]
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
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db.config import load_settings
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import tool_environ

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cuisine_db"]
OURS = "cuisine-db archive-data"  # the application_name of the session that runs our delete batches
ANCHOR = "bench-anchor-delete"


class LongestTransaction(threading.Thread):
    """Samples pg_stat_activity: the longest transaction seen of sessions with a given application_name."""

    def __init__(self, params: dict[str, Any], application: str) -> None:
        super().__init__(daemon=True)
        self.params = params
        self.application = application
        self.longest = 0.0
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(**self.params, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute("SELECT max(extract(epoch FROM clock_timestamp() - xact_start)) "
                                   "FROM pg_stat_activity WHERE application_name = %s", [self.application]
                                   ).fetchone()
                self.samples += 1
                if row and row[0] is not None:
                    self.longest = max(self.longest, float(row[0]))
                time.sleep(0.002)


def timed(params: dict[str, Any], application: str, work: Any) -> tuple[float, float]:
    sampler = LongestTransaction(params, application)
    sampler.start()
    started = time.monotonic()
    work()
    seconds = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    return seconds, sampler.longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--version", type=int, default=14)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cuisine-bench-archive-") as folder:
        root = Path(folder)
        config = root / "cuisine-db.toml"
        config.write_text(f"[environments.bench]\nport = {free_port()}\npostgres_version = {args.version}\n"
                          f'[environments.bench.backup]\nrepository = "{root / "repository"}"\n')
        environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
        settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
        env = settings.env("bench")
        cluster = ensure_up(settings, env)
        try:
            subprocess.run([*CLI, "backup", "keygen"], env=environ, check=True, capture_output=True)
            params = {"host": "127.0.0.1", "port": cluster.port, "user": "cuisine", "dbname": env.database,
                      "passfile": str(cluster.passfile)}
            with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
                conn.execute("CREATE TABLE bench_template (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, "
                             "payload text NOT NULL)")
                conn.execute("INSERT INTO bench_template SELECT n, now() - make_interval(secs => n * "
                             "(2 * 365 * 86400.0 / %s)), repeat(md5(n::text), 6) FROM generate_series(1, %s) AS n",
                             [args.rows, args.rows])
                conn.execute("CREATE TABLE bench_events (LIKE bench_template INCLUDING ALL)")
                old = conn.execute("SELECT count(*) FROM bench_template WHERE created_at < now() - "
                                   "interval '365 days'").fetchone()[0]  # type: ignore[index]
            psql = find(args.version, settings.cache_dir).program("psql")
            libpq = tool_environ(client_environ(settings, env))
            results: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "longest_transaction_s": []}
                                                          for name in ("anchor", "ours")}

            def refill() -> None:
                with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
                    conn.execute("TRUNCATE bench_events")
                    conn.execute("INSERT INTO bench_events SELECT * FROM bench_template")
                    conn.execute("VACUUM ANALYZE bench_events")
                shutil.rmtree(root / "repository", ignore_errors=True)

            def anchor() -> None:
                out = root / "anchor.copy"
                copy = "\\copy (SELECT * FROM bench_events WHERE created_at < now() - interval '365 days') TO STDOUT"
                with out.open("wb") as handle:
                    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy],
                                   env={**libpq, "PGAPPNAME": "bench-anchor-copy"}, stdout=handle, check=True)
                subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                                "DELETE FROM bench_events WHERE created_at < now() - interval '365 days'"],
                               env={**libpq, "PGAPPNAME": ANCHOR}, check=True)
                out.unlink()

            def ours() -> None:
                result = subprocess.run([*CLI, "archive", "create", "--env", "bench", "--table", "bench_events",
                                         "--older-than", "365d", "--batch-size", str(args.batch), "--json"],
                                        env=environ, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise SystemExit(result.stderr)
                report = json.loads(result.stdout)
                assert report["archives"][0]["deleted"] == old, report

            for repetition in range(args.repeat):
                order = [("anchor", ANCHOR, anchor), ("ours", OURS, ours)]
                for name, application, work in order if repetition % 2 == 0 else reversed(order):
                    refill()
                    seconds, longest = timed(params, application, work)
                    results[name]["seconds"].append(round(seconds, 3))
                    results[name]["longest_transaction_s"].append(round(longest, 4))
        finally:
            cluster_for(settings, env).destroy()

    medians = {name: {key: statistics.median(values) for key, values in figures.items()}
               for name, figures in results.items()}
    print(json.dumps({
        "rows": args.rows, "old_rows": old, "batch": args.batch, "repeat": args.repeat,
        "postgres": args.version, "runs": results, "medians": medians,
        "ratios": {"seconds_ours_over_anchor": round(medians["ours"]["seconds"] / medians["anchor"]["seconds"], 2),
                   "longest_transaction_anchor_over_ours": round(
                       medians["anchor"]["longest_transaction_s"]
                       / max(medians["ours"]["longest_transaction_s"], 1e-4), 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
