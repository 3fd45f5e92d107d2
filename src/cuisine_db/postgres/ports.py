"""Free TCP ports on loopback for scratch clusters."""

from __future__ import annotations

import socket

from cuisine_db.errors import UnavailableError


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port_outside(taken: set[int], what: str, hint: str | None = None) -> int:
    """A free port that is not in `taken` (ports already given out that nothing may listen on yet), added to it."""
    for _ in range(20):
        port = free_port()
        if port not in taken:
            taken.add(port)
            return port
    raise UnavailableError(f"found no free port for {what}", hint=hint)
