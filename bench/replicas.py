"""Replicas and pooling against their anchors, in the same run, on one seeded local cluster.

Starts a local environment with the project's own code (a scratch cluster with the project's defaults:
fsync on), applies the migrations and seeds it, then `--repeat` times:
  - raw `pg_basebackup -X stream -c fast` into a folder (the anchor), and `replica create` (role, slot,
    pg_basebackup -R, configuration, start, until the primary shows it streaming), then `replica drop`;
  - a logical backup from the primary and one from the replica (`backup create --replica`);
and, with the replica up: how long read routing and db-replicas take to decide, the replay lag seen while the
primary takes a burst of writes, and PgBouncer (transaction pooling, auth_query) against direct connections:
connect + one query + disconnect, and one query per transaction on a kept connection.
Prints every run, the medians and the ratios as JSON.

    .venv/bin/python bench/replicas.py --scale 2 --repeat 3 [--version 14]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pyrage
from psycopg import sql

from cuisine_db.backup import logical
from cuisine_db.cluster import connect
from cuisine_db.config import PoolerConfig, load_settings
from cuisine_db.migrations import migrate
from cuisine_db.pooler import process, setup
from cuisine_db.postgres import cluster_for
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import run
from cuisine_db.postgres.scratch import scratch_environment
from cuisine_db.postgres.server_settings import alter_system
from cuisine_db.replicas import create, drop, lag, routing
from cuisine_db.replicas.members import find
from cuisine_db.seed import load

REPO = Path(__file__).resolve().parents[1]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", type=int, default=14)
    parser.add_argument("--connections", type=int, default=200, help="connects per pooling measurement")
    args = parser.parse_args()

    base = load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")})
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as folder, \
            scratch_environment(base, args.version, name="benchreplicas") as (scratch, plain_env):
        work = Path(folder)
        identity = pyrage.x25519.Identity.generate()
        key = work / "backup.key"
        key.write_text(f"{identity}\n")
        key.chmod(0o600)
        env = plain_env.model_copy(update={
            "server_settings": {},  # the project's defaults: fsync on
            "backup": plain_env.backup.model_copy(update={"repository": (work / "repository").as_uri(),
                                                          "recipients": [str(identity.to_public())],
                                                          "identity_file": key}),
            "pooler": PoolerConfig(port=free_port())})
        settings = dataclasses.replace(scratch, environments={env.name: env})
        primary = cluster_for(settings, env)
        with connect(settings, env, "bench") as conn:  # the scratch cluster's fsync = off, undone
            alter_system(conn, {"fsync": "on", "synchronous_commit": "on"})
        migrate(settings, env)
        seeded = load(settings, env, scale=args.scale)
        with connect(settings, env, "bench") as conn:
            conn.execute("CHECKPOINT")
            cluster_bytes = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()
        runs: dict[str, list[float]] = {"pg_basebackup": [], "replica_create": [], "backup_primary": [],
                                        "backup_replica": []}
        for attempt in range(args.repeat):
            target = work / f"raw-{attempt}"
            started = time.monotonic()
            environ = {"PGHOST": "127.0.0.1", "PGPORT": str(primary.port), "PGUSER": "cuisine",
                       "PGPASSFILE": str(settings.env_dir(env) / "pgpass")}
            run([primary.build.program("pg_basebackup"), "--pgdata", target, "--wal-method=stream",
                 "--checkpoint=fast", "--no-password"], env=environ, timeout=3600)
            runs["pg_basebackup"].append(time.monotonic() - started)
            copied = folder_size(target)
            shutil.rmtree(target)
            started = time.monotonic()
            create.create(settings, env, "bench1")
            runs["replica_create"].append(time.monotonic() - started)
            source = find(settings, env, "bench1").target
            for label, where in (("backup_primary", None), ("backup_replica", source)):
                started = time.monotonic()
                logical.create(settings, env, "logical", source=where)
                runs[label].append(time.monotonic() - started)
            if attempt < args.repeat - 1:
                drop.drop(settings, env, "bench1", yes=True)  # the bench is its own operator

        decide: dict[str, list[float]] = {"routing_any": [], "db_replicas": []}
        for _ in range(20):
            started = time.monotonic()
            route = routing.choose(settings, env, "any")
            decide["routing_any"].append(time.monotonic() - started)
            assert route.target is not None
            started = time.monotonic()
            lag.measure(settings, env)
            decide["db_replicas"].append(time.monotonic() - started)

        # Replay lag seen from both sides while the primary takes a burst of writes.
        worst_bytes, worst_delay, samples = 0, 0.0, 0
        with connect(settings, env, "bench") as conn:
            conn.execute("CREATE TABLE bench_burst (id bigint, body text)")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                conn.execute("INSERT INTO bench_burst SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
                status = lag.measure(settings, env).replicas[0]
                worst_bytes = max(worst_bytes, status.replay_bytes or 0)
                worst_delay = max(worst_delay, status.delay_seconds or 0.0)
                samples += 1
            written = conn.execute("SELECT pg_total_relation_size('bench_burst')").fetchone()

        pooling = measure_pooling(settings, env, args.connections)
        drop.drop(settings, env, "bench1", yes=True)

        ratios = {
            "replica_create / pg_basebackup": round(median(runs["replica_create"]) / median(runs["pg_basebackup"]), 2),
            "backup_replica / backup_primary": round(median(runs["backup_replica"]) / median(runs["backup_primary"]),
                                                     2),
            **{f"{k} pooled / direct": round(v["pooled"] / v["direct"], 3) for k, v in pooling.items()},
        }
        print(json.dumps({
            "machine": "shared 2-core machine; other developers' tests ran at the same time",
            "version": args.version, "scale": args.scale, "seed_rows": seeded.rows,
            "cluster_bytes": int(cluster_bytes[0]) if cluster_bytes else None, "copied_bytes": copied,
            "runs_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "medians_seconds": {k: median(v) for k, v in {**runs, **decide}.items()},
            "pg_basebackup_mb_per_s": round(copied / 1e6 / median(runs["pg_basebackup"]), 1),
            "burst": {"samples": samples, "bytes_written": int(written[0]) if written else None,
                      "worst_replay_bytes": worst_bytes, "worst_delay_seconds": round(worst_delay, 3)},
            "pooling_ms": pooling,
            "ratios": ratios,
        }, indent=2))


def measure_pooling(settings: Any, env: Any, count: int) -> dict[str, dict[str, float]]:
    """Per connect+query+close and per one-query transaction, direct (SCRAM) and through PgBouncer, in ms."""
    password = secrets.token_urlsafe(24)
    with connect(settings, env, "bench") as conn:
        conn.execute(sql.SQL("CREATE ROLE bench_app LOGIN PASSWORD {}").format(sql.Literal(password)))
    setup.configure(settings, env)
    process.start(settings, env)
    try:
        assert env.pooler is not None
        ports = {"direct": cluster_for(settings, env).port, "pooled": env.pooler.port}
        found: dict[str, dict[str, float]] = {"connect_query_close": {}, "transaction": {}}
        for kind, port in ports.items():
            params = {"host": "127.0.0.1", "port": port, "user": "bench_app", "dbname": env.database,
                      "password": password, "prepare_threshold": None}
            times = []
            for _ in range(count):
                started = time.monotonic()
                with psycopg.connect(**params) as conn:
                    conn.execute("SELECT 1")
                times.append(time.monotonic() - started)
            found["connect_query_close"][kind] = round(statistics.median(times) * 1000, 3)
            with psycopg.connect(**params) as conn:
                times = []
                for _ in range(count * 5):
                    started = time.monotonic()
                    conn.execute("SELECT 1")
                    conn.commit()
                    times.append(time.monotonic() - started)
            found["transaction"][kind] = round(statistics.median(times) * 1000, 3)
        return found
    finally:
        process.stop(settings, env)


if __name__ == "__main__":
    main()
