"""On a local cluster the tool manages (a dedicated one: it is restarted): restart=1 applies a postmaster setting,
a setting the server cannot start with is put back and the server runs again, pg_stat_statements is enabled
where it is missing, and recommendations use this machine's memory."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, available
from psycopg import sql

from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.diagnose.config_advice import recommend_config
from cuisine_db.diagnose.server_config import update_config
from cuisine_db.diagnose.slow_queries import slow_queries
from cuisine_db.errors import FailedError
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Environment, Path]]:
    if available(14) is None:
        pytest.skip("PostgreSQL 14 is not in the cache (make install-postgres)")
    root = tmp_path_factory.mktemp("local")
    config = root / "cuisine-db.toml"
    config.write_text(f"[environments.development]\nport = {free_port()}\npostgres_version = 14\n"
                      "[environments.development.server_settings]\nfsync = false\n")
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("development")
    ensure_up(settings, env)
    try:
        yield settings, env, config
    finally:
        cluster_for(settings, env).destroy()


def show(settings: Settings, env: Environment, name: str) -> str:
    with connect(settings, env, "test") as conn:
        row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    assert row is not None
    return str(row[0])


def test_restart_applies_and_a_bad_restart_is_undone(local: tuple[Settings, Environment, Path]) -> None:
    settings, env, config = local
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "db-update-config",
                             "param=max_connections", "value=60", "restart=1"],
                            env=environ, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "restarted the server: max_connections is now 60" in result.stderr
    assert show(settings, env, "max_connections") == "60"
    # A reset goes back to postgresql.conf's value, which the running server does not have yet.
    reset = update_config(settings, env, "max_connections", None)
    assert (reset.new, reset.needs_restart, reset.pending_restart, reset.in_effect) == ("50", True, True, "60")
    assert update_config(settings, env, "max_connections", None, restart=True).restarted
    assert show(settings, env, "max_connections") == "50"
    auto_conf = cluster_for(settings, env).datadir / "postgresql.auto.conf"
    before = auto_conf.read_text()
    # Valid for pg_settings, fatal at start-up next to max_wal_senders = 10.
    with pytest.raises(FailedError, match="did not start with wal_level = minimal") as failure:
        update_config(settings, env, "wal_level", "minimal", restart=True)
    assert "put back" in (failure.value.hint or "")
    assert auto_conf.read_text() == before
    assert show(settings, env, "wal_level") == "replica"
    assert cluster_for(settings, env).running()


def test_pg_stat_statements_is_enabled_where_the_tool_manages_the_cluster(
        local: tuple[Settings, Environment, Path]) -> None:
    settings, env, _ = local
    with connect(settings, env, "test") as conn:
        conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    report = slow_queries(settings, env)
    assert report.extension_version
    with connect(settings, env, "test") as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() \
            == (1,)


def test_recommendations_use_this_machines_memory(local: tuple[Settings, Environment, Path]) -> None:
    settings, env, _ = local
    advice = recommend_config(settings, env)
    assert "this machine" in advice.assumptions[0]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    shared = {r.name: r for r in advice.recommendations}["shared_buffers"].recommended
    shared_mb = int(shared[:-2]) * (1024 if shared.endswith("GB") else 1)
    assert abs(shared_mb - ram / 4 / 1024**2) <= 1024
