"""Writes unavailable during a Patroni switchover and a failover, the archive's lag right after, and a logical
backup from a replica against one from the leader, on an embedded three-member cluster (etcd + Patroni).

Starts a scratch project with an `ha` environment (`[environments.ha.patroni] members = 3`) through the project's
own code, turns WAL archiving on (`wal enable`), loads pgbench's tables (`pgbench -i -s SCALE` on the leader),
then `--repeat` times: `--writers` threads commit one pgbench_history row per transaction through `connect()`
(which follows the leader Patroni names, reconnecting after a failure); a switchover is asked of Patroni
(db-promote-replica), later the leader's Patroni and postmaster are killed -9 and Patroni fails over by itself.
The unavailability of each is the longest gap between two successful commits around it; the archive's lag is
how long the new leader takes to archive the segment `pg_switch_wal()` closes right after the failover.
Patroni's own figures for these settings are the reference: a failover takes up to ttl + loop_wait (`DCS` in
postgres/patroni_embedded.py).

    .venv/bin/python bench/patroni.py --version 14 --scale 1 --repeat 1 --seconds 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db.backup.wal.enable import enable
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.postgres import binaries, client_environ, connect, patroni, patroni_embedded
from cuisine_db.postgres.connect import ensure_database
from cuisine_db.postgres.runner import run
from cuisine_db.replicas import patroni as patroni_replicas

REPO = Path(__file__).resolve().parents[1]


class Writers:
    """Threads that each commit one row per transaction and remember when each commit returned."""

    def __init__(self, settings: Settings, env: Environment, count: int) -> None:
        self.settings, self.env = settings, env
        self.stop = threading.Event()
        self.commits: list[float] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(count)]

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(self.settings, self.env, "bench writer")
                conn.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())")
                with self.lock:
                    self.commits.append(time.monotonic())
            except (psycopg.Error, CuisineDbError):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def gap(self, start: float, end: float) -> float:
        """The longest time without a commit between `start` and `end`."""
        with self.lock:
            points = [start, *sorted(t for t in self.commits if start <= t <= end), end]
        return max(b - a for a, b in itertools.pairwise(points))


def healthy(settings: Settings, env: Environment) -> bool:
    try:
        view = patroni.cluster(settings, env)
    except CuisineDbError:
        return False
    return view.leader is not None and view.leader.state == "running" and \
        all(m.streaming for m in view.members if not m.is_leader) and \
        any(m.role == "sync_standby" for m in view.members)


def healthy_leader_other_than(settings: Settings, env: Environment, name: str) -> bool:
    try:
        leader = patroni.cluster(settings, env).leader
    except CuisineDbError:
        return False
    return leader is not None and leader.name != name and leader.state == "running"


def wait(check: Any, timeout: float = 180) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(0.2)
    return time.monotonic() - started


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "cuisine_db", *args], env=environ, capture_output=True, text=True,
                          check=True, timeout=900)


def archived_segment(config: Path, name: str) -> bool:
    status = json.loads(subprocess.run([sys.executable, "-m", "cuisine_db", "wal", "status", "--env", "ha", "--json"],
                                       env={**os.environ, "CUISINE_DB_CONFIG": str(config)}, capture_output=True,
                                       text=True, check=False, timeout=300).stdout)
    return (status.get("last_archived") or "") >= name


def one_round(settings: Settings, env: Environment, config: Path, writers: int, seconds: float) -> dict[str, Any]:
    load = Writers(settings, env, writers)
    for thread in load.threads:
        thread.start()
    try:
        time.sleep(seconds)
        view = patroni.cluster(settings, env)
        target = next(m.name for m in view.members if m.role == "sync_standby")
        asked = time.monotonic()
        patroni_replicas.promote(settings, env, target, yes=True)  # the bench is its own operator
        time.sleep(seconds)
        switchover_gap = load.gap(asked, time.monotonic())
        wait(lambda: healthy(settings, env))
        time.sleep(seconds)
        lost = patroni.leader(settings, env)
        postmaster = patroni_embedded.postmaster_pid(settings, env, lost.name)
        killed = time.monotonic()
        patroni_embedded.kill_member(settings, env, lost.name)
        if postmaster is not None:
            os.kill(postmaster, signal.SIGKILL)
        wait(lambda: healthy_leader_other_than(settings, env, lost.name))
        time.sleep(seconds)
        failover_gap = load.gap(killed, time.monotonic())
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(timeout=60)
    with connect(settings, env, "bench") as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        conn.execute("SELECT pg_switch_wal()")
    assert row is not None
    archive_lag = wait(lambda: archived_segment(config, row[0]), timeout=300)
    patroni_embedded.up(settings, env)
    wait(lambda: healthy(settings, env))
    return {"switchover_unavailable_s": round(switchover_gap, 3), "failover_unavailable_s": round(failover_gap, 3),
            "archive_lag_after_switch_wal_s": round(archive_lag, 3), "commits": len(load.commits)}


def backups(config: Path) -> dict[str, float]:
    timings = {}
    for label, extra in (("leader", []), ("replica", ["--from", "replica"])):
        started = time.monotonic()
        cli(config, "backup", "create", "--env", "ha", "--type", "logical", *extra)
        timings[f"logical_backup_from_{label}_s"] = round(time.monotonic() - started, 3)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", type=int, default=14)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10, help="writes before and after each change of leader")
    parser.add_argument("--keep", action="store_true", help="leave the scratch project behind")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="patroni-bench-"))
    config = root / "cuisine-db.toml"
    config.write_text(f'[environments.ha]\npostgres_version = {args.version}\n[environments.ha.patroni]\nmembers = 3\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("ha")
    try:
        patroni_embedded.up(settings, env)
        ensure_database(settings, env)
        cli(config, "backup", "keygen")
        enable(settings, env, archive_timeout="60s", restart=True)
        wait(lambda: healthy(settings, env) and not any(
            m.pending_restart for m in patroni.cluster(settings, env).members))
        build = binaries.find(args.version, settings.cache_dir)
        run([build.program("pgbench"), "-i", "-q", "-s", str(args.scale)], env=client_environ(settings, env),
            timeout=3600)
        rounds = [one_round(settings, env, config, args.writers, args.seconds) for _ in range(args.repeat)]
        result = {
            "version": args.version, "scale": args.scale, "writers": args.writers,
            "patroni_settings": patroni_embedded.DCS,
            "patroni_reference_failover_bound_s": patroni_embedded.DCS["ttl"] + patroni_embedded.DCS["loop_wait"],
            "rounds": rounds,
            "median": {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]},
            **backups(config),
        }
        print(json.dumps(result, indent=2))
    finally:
        patroni_embedded.destroy(settings, env)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
