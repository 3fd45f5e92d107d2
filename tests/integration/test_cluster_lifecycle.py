"""Starting and stopping a local cluster: the tool reads postmaster.pid itself instead of pg_ctl's --wait (which
looks ten times a second). Attacked here: a server killed -9 (its postmaster.pid left behind), a server that cannot
start, a planted link where postmaster.pid should be, and a stop that must not return before the postmaster is gone."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cuisine_db.errors import UnavailableError
from cuisine_db.postgres import postmaster
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.safe_files import UnsafeFileError

MAJOR = 15  # the start and stop paths are the same on every version; conftest's server fixture covers the others


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    from conftest import _start_server, available

    if available(MAJOR) is None:
        pytest.skip(f"PostgreSQL {MAJOR} is not installed on this machine (Debian's postgresql-{MAJOR})")
    server = _start_server(MAJOR, tmp_path_factory.mktemp("lifecycle"))
    found = cluster_for(server.settings, server.env)
    yield found
    found.destroy()


def accepts(cluster: LocalCluster) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="cuisine", dbname="postgres",
                             passfile=str(cluster.passfile), connect_timeout=3) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_start_returns_accepting_connections_and_stop_returns_with_the_postmaster_gone(cluster: LocalCluster) -> None:
    cluster.start()
    found = postmaster.live(cluster.datadir)
    assert found is not None and found.ready and accepts(cluster)
    cluster.stop()
    assert not (cluster.datadir / "postmaster.pid").exists()
    assert postmaster.exited(found.pid)  # not only the file: the process, whose port a restart binds
    assert not cluster.running() and cluster.status().pid is None
    cluster.start()
    assert accepts(cluster) and cluster.status().running


def test_a_postmaster_killed_9_is_not_running_and_starts_again(cluster: LocalCluster) -> None:
    cluster.start()
    found = postmaster.live(cluster.datadir)
    assert found is not None
    os.kill(found.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while postmaster.live(cluster.datadir) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (cluster.datadir / "postmaster.pid").exists()  # left behind, naming a process that is gone
    assert not cluster.running()
    cluster.stop()  # nothing to stop: returns at once
    cluster.start()  # crash recovery, then accepting connections
    again = postmaster.live(cluster.datadir)
    assert again is not None and again.pid != found.pid and accepts(cluster)


def test_a_server_that_cannot_start_is_an_error_naming_why_not_a_90_second_wait(cluster: LocalCluster) -> None:
    cluster.stop()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the last test's TIME_WAIT sockets
        taken.bind(("127.0.0.1", cluster.port))
        taken.listen()
        started = time.monotonic()
        with pytest.raises(UnavailableError) as failure:
            cluster.start()
        assert time.monotonic() - started < 30
    assert "did not start: FATAL: could not create any TCP/IP sockets" in failure.value.message, failure.value
    assert not cluster.running()
    cluster.start()
    assert accepts(cluster)


def test_a_link_planted_as_postmaster_pid_is_refused_not_followed(cluster: LocalCluster, tmp_path: Path) -> None:
    cluster.stop()
    decoy = tmp_path / "decoy"
    decoy.write_text(f"{os.getpid()}\n")  # a live process: followed, the link would read as a running server
    pid_file = cluster.datadir / "postmaster.pid"
    pid_file.symlink_to(decoy)
    try:
        with pytest.raises(UnsafeFileError):
            cluster.running()
    finally:
        pid_file.unlink()
    cluster.start()
    assert accepts(cluster)
