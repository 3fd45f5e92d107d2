"""A replica's port is "in use" only while something listens there: the connections a server stopped a moment
ago leave in TIME_WAIT do not count (PostgreSQL binds with SO_REUSEADDR and starts there all the same)."""

from __future__ import annotations

import socket
import time

import pytest

from cuisine_db.errors import UnavailableError
from cuisine_db.postgres.ports import free_port_outside
from cuisine_db.replicas.create import _port_is_free


def test_a_listening_port_is_in_use_and_one_left_in_time_wait_is_not() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    assert not _port_is_free(port)
    accepted.close()  # the server's side closes first, as PostgreSQL's shutdown does: TIME_WAIT on `port`
    time.sleep(0.1)
    client.close()
    server.close()
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        plain.bind(("127.0.0.1", port))
        lingering = False
    except OSError:
        lingering = True
    finally:
        plain.close()
    assert lingering, "the closed connection should linger in TIME_WAIT on the port (what made the check fail)"
    assert _port_is_free(port)


def test_a_port_given_out_is_never_given_again_and_a_full_set_is_refused() -> None:
    taken: set[int] = set()
    first = free_port_outside(taken, "a test")
    second = free_port_outside(taken, "a test")
    assert first != second
    assert taken == {first, second}
    with pytest.raises(UnavailableError, match="found no free port for a test") as caught:
        free_port_outside(set(range(65536)), "a test", hint="give one")
    assert caught.value.hint == "give one"
