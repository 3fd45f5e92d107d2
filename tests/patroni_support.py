"""What the Patroni test modules share: the embedded environment's name and lag bound, the scratch configuration
of a three-member cluster (skipped without etcd), waiting, and what a healthy cluster looks like."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psycopg
import pytest
from conftest import REPO, available

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import binaries, patroni, patroni_layout

ENV = "ha"
LAG_BOUND = 1_000_000


def ha_config(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              prefix: str) -> tuple[Path, Path, int]:
    """A scratch folder and its cuisine-db.toml naming a three-member embedded cluster of the major `request.param`
    (installed into the cache when missing); skips where etcd is not installed. (root, config, major)."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed here (Debian's etcd-server package)")
    major: int = request.param
    if available(major) is None:
        binaries.install(major, load_settings({"CUISINE_DB_CONFIG": str(REPO / "cuisine-db.toml")}).cache_dir)
    root = tmp_path_factory.mktemp(f"{prefix}{major}")
    config = root / "cuisine-db.toml"
    config.write_text(f'default_env = "{ENV}"\n[environments.{ENV}]\npostgres_version = {major}\n'
                      f"replica_max_lag_bytes = {LAG_BOUND}\n[environments.{ENV}.patroni]\nmembers = 3\n")
    return root, config, major


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (UnavailableError, psycopg.Error):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting: {what}")


class Viewed(Protocol):
    def view(self) -> patroni.ClusterView: ...


def healthy(ha: Viewed) -> bool:
    """A running leader, every other member streaming within the bound, one of them the synchronous standby."""
    view = ha.view()
    return view.leader is not None and view.leader.state == "running" and sum(
        1 for m in view.members if m.streaming and m.lag_bytes is not None and m.lag_bytes <= LAG_BOUND
    ) == len(view.members) - 1 and any(m.role == "sync_standby" for m in view.members)


def base_backups(settings: Settings, env: Environment, name: str, since: float = 0.0) -> int:
    """BASE_BACKUP commands in member `name`'s server log (log_replication_commands is on in the embedded cluster),
    in the log files written since `since` (a restored member's log folder also holds the backup's old files)."""
    folder = settings.env_dir(env) / "members" / name / "data" / "log"
    return sum(path.read_text(errors="replace").count("replication command: BASE_BACKUP")
               for path in folder.iterdir() if path.is_file() and path.stat().st_mtime >= since)


def patroni_log(settings: Settings, env: Environment, name: str) -> str:
    """Member `name`'s Patroni output (its create_replica_method's lines too)."""
    return (patroni_layout.state_dir(settings, env) / "logs" / f"{name}.log").read_text(errors="replace")
