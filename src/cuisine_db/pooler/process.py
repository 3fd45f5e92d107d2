"""Running PgBouncer for a local environment: Debian's `pgbouncer`, as the servers' OS user, on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.ops.journal import journaled
from cuisine_db.pooler.setup import INI, config_dir, pooler_of, server_user
from cuisine_db.postgres.runner import run
from cuisine_db.waiting import poll_until, wait_for

START_SECONDS = 30.0
STOP_SECONDS = 15.0
# Debian installs it outside a non-root PATH.
PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")


@dataclass(frozen=True, slots=True)
class PoolerState:
    env: str
    running: bool
    pid: int | None
    listen: str
    config_file: str


@dataclass(frozen=True, slots=True)
class PoolerStop:
    """What `stop` did: stopped the PgBouncer it found (`pid`), or found none running (`was_running` False)."""

    env: str
    was_running: bool
    pid: int | None


def program() -> Path:
    """The pgbouncer program, or an error saying how to install it."""
    found = shutil.which("pgbouncer") or next((place for place in PLACES if os.access(place, os.X_OK)), None)
    if found is None:
        raise UnavailableError("pgbouncer is not installed on this machine", hint="apt-get install pgbouncer")
    return Path(found)


def _pid(folder: Path) -> int | None:
    """PgBouncer's pid from its pidfile, if that process is PgBouncer (a stale file may name another)."""
    try:
        pid = int((folder / "pgbouncer.pid").read_text().split()[0])
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if name == "pgbouncer" else None


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def status(settings: Settings, env: Environment) -> PoolerState:
    pooler = pooler_of(env)
    folder = config_dir(settings, env)
    pid = _pid(folder)
    return PoolerState(env.name, pid is not None, pid, f"{pooler.host}:{pooler.port}", str(folder / INI))


def start(settings: Settings, env: Environment) -> PoolerState:
    """pooler start, journaled: `_start`."""
    with journaled(settings, env, "pooler start", {}):
        return _start(settings, env)


def _start(settings: Settings, env: Environment) -> PoolerState:
    """Start PgBouncer with the environment's configuration, in the background; a no-op when it runs."""
    if not env.is_local:
        raise UsageError(f"{env.name!r} is remote: run PgBouncer on its own host (pooler config says how)")
    pooler = pooler_of(env)
    folder = config_dir(settings, env)
    if not (folder / INI).exists():
        raise UsageError(f"no PgBouncer configuration for {env.name!r} yet", hint=f"cuisine-db pooler config --env "
                                                                             f"{env.name}")
    current = status(settings, env)
    if current.running:
        return current
    if _listening(pooler.host, pooler.port):
        raise UnavailableError(f"something else listens on {pooler.host}:{pooler.port}",
                               hint="choose another pooler.port in cuisine-db.toml, then run pooler config again")
    run([program(), "--daemon", folder / INI], user=server_user(settings, env), cwd=folder, timeout=START_SECONDS)
    def failed() -> UnavailableError:
        log = folder / "pgbouncer.log"
        tail = " ".join(log.read_text(errors="replace").splitlines()[-3:]) if log.exists() else ""
        return UnavailableError(f"PgBouncer did not start listening on {pooler.host}:{pooler.port}: {tail}")

    poll_until(lambda: _listening(pooler.host, pooler.port) or None, seconds=START_SECONDS, interval=0.1,
               what=failed)
    return status(settings, env)


def stop(settings: Settings, env: Environment) -> PoolerStop:
    """pooler stop, journaled: `_stop`."""
    with journaled(settings, env, "pooler stop", {}):
        return _stop(settings, env)


def _stop(settings: Settings, env: Environment) -> PoolerStop:
    """Safe shutdown (SIGINT: waits for transactions in flight), then SIGTERM if it lingers; says whether one ran."""
    folder = config_dir(settings, env)
    pid = _pid(folder)
    if pid is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if wait_for(lambda: _pid(folder) != pid or None, seconds=STOP_SECONDS, interval=0.1):
                break
        else:
            raise UnavailableError(f"PgBouncer (pid {pid}) did not stop")
    return PoolerStop(env.name, pid is not None, pid)
