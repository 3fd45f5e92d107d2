"""The local clusters behind environments without a DSN: found, created and started on demand."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UsageError
from cuisine_db.postgres import binaries, osuser
from cuisine_db.postgres.cluster import LocalCluster


def cluster_for(settings: Settings, env: Environment) -> LocalCluster:
    """The local cluster an environment names (it may not exist yet)."""
    if not env.is_local or env.port is None:
        raise UsageError(f"environment {env.name!r} is a remote server, not a local cluster")
    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    return LocalCluster(
        home=settings.env_dir(env),
        port=env.port,
        build=build,
        os_user=osuser.server_user(settings.server_user),
        extra_settings=env.server_settings,
    )


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialise cluster start-up between processes (five `make db-migrate` at once must not race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _refuse_pending_restore(settings: Settings, env: Environment) -> None:
    """A physical restore laid down and not opened starts only through db-apply-logs or by being opened."""
    from cuisine_db.backup.restore_state import pending

    waiting = pending(settings, env)
    if waiting is not None:
        raise RefusedError(
            f"{env.name} holds {waiting.backup}, laid down by db-restore and not opened yet",
            hint=f"make db-apply-logs env={env.name} replays the archive onto it; make maintenance-mode disable "
                 f"env={env.name} (or cuisine-db restore open --env {env.name}) opens it as the backup left it")


def ensure_up(settings: Settings, env: Environment) -> LocalCluster:
    """Create and start the environment's cluster if needed, and make sure its database exists."""
    cluster = cluster_for(settings, env)
    with _exclusive(settings.state_dir / f".{env.name}.lock"):
        if not cluster.initialized():
            cluster.init()
        if not cluster.running():
            _refuse_pending_restore(settings, env)
            cluster.start()
        from cuisine_db.postgres.connect import ensure_database

        ensure_database(settings, env)
    return cluster
