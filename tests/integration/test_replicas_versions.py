"""A replica on the other server versions: Debian's 15 and the cache's 18 (test_replicas covers 14 in depth).

What differs between versions is in the tools and the server, not in our SQL (test_replication_sql runs that
everywhere): pg_basebackup's recovery settings, the walreceiver, replay pause, a replica's own port and
configuration. One dedicated cluster per version: create a replica, see a write arrive, db-replicas and routing
judge it, drop it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from cli_support import run_cli
from conftest import available, cache_dir

from cuisine_db.config import load_settings
from cuisine_db.postgres import binaries, topology
from cuisine_db.postgres.local import cluster_for, ensure_up, node_cluster
from cuisine_db.postgres.ports import free_port
from cuisine_db.replicas import routing


@pytest.mark.parametrize("major", [15, 18], ids=["pg15", "pg18"])
def test_a_replica_streams_is_judged_and_goes_on_every_version(major: int, tmp_path: Path) -> None:
    if available(major) is None:
        if major == 15:
            pytest.skip("PostgreSQL 15 is not installed on this machine (Debian's postgresql-15)")
        binaries.install(major, cache_dir())
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f'default_env = "development"\n[environments.development]\nport = {free_port()}\n'
                      f"postgres_version = {major}\n[environments.development.server_settings]\nfsync = false\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(config, *args, "--env", "development", cwd=tmp_path)

    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("development")
    primary = ensure_up(settings, env)
    try:
        made = cli("replica", "create", "--name", "reports1")
        assert made.returncode == 0, made.stderr
        replica = topology.load(settings, env).replica("reports1")
        assert replica is not None

        def open_(port: int) -> psycopg.Connection[object]:
            return psycopg.connect(host="127.0.0.1", port=port, user="cuisine", dbname="cuisine", autocommit=True,
                                   passfile=str(primary.passfile))

        with open_(primary.port) as conn:
            conn.execute("CREATE TABLE written (id int)")
            conn.execute("INSERT INTO written SELECT generate_series(1, 100)")
        deadline = time.monotonic() + 90
        with open_(replica.port) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            while conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'written'").fetchone() != (1,):
                assert time.monotonic() < deadline, "the table never reached the replica"
                time.sleep(0.25)
            assert conn.execute("SELECT count(*) FROM written").fetchone() == (100,)
            listed = cli("replica", "list", "--json")
            assert listed.returncode == 0, listed.stdout + listed.stderr
            status = json.loads(listed.stdout)["report"]["replicas"][0]
            assert status["receiver"] == "streaming" and status["slot"]["active"] and status["replay_bytes"] == 0
            assert routing.choose(settings, env, "any").target is not None
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                with open_(primary.port) as writer:
                    writer.execute("INSERT INTO written SELECT generate_series(1, 100)")
                paused = json.loads(cli("replica", "list", "--json").stdout)
                assert paused["report"]["replicas"][0]["paused"] and paused["report"]["replicas"][0]["replay_bytes"] > 0
                assert any(f["check"] == "replay paused" for f in paused["findings"])
            finally:
                conn.execute("SELECT pg_wal_replay_resume()")
        dropped = cli("replica", "drop", "--name", "reports1", "--yes")
        assert dropped.returncode == 0, dropped.stderr
        assert not (settings.env_dir(env) / "replicas" / "reports1").exists()
        with open_(primary.port) as conn:
            assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    finally:
        current = topology.load(settings, env)
        for node in current.replicas:
            node_cluster(settings, env, topology.home_of(settings, env, node), node.port).destroy()
        cluster_for(settings, env).destroy()
