"""Serving the dashboard: loopback by default; any other address only with the environment's access token, and a
warning when it travels without TLS."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import RefusedError, UsageError


@dataclass(frozen=True, slots=True)
class Plan:
    """Where the dashboard listens and whether it asks for the token."""

    address: str
    port: int
    loopback: bool
    token: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        raise UsageError(f"address={address!r} is not an IP address",
                         hint="give 127.0.0.1 (the default), ::1, or this machine's address with a token") from None


def plan(settings: Settings, env: Environment, address: str, port: int) -> Plan:
    """Check the address and port; off loopback, the token must be configured and set."""
    if not 1 <= port <= 65535:
        raise UsageError(f"port={port} is not a TCP port (1-65535)")
    if is_loopback(address):
        return Plan(address, port, loopback=True)
    variable = env.dashboard_token_env
    if variable is None:
        raise RefusedError(f"the dashboard of {env.name!r} listens on {address} only with an access token "
                           "(dashboard_token_env)",
                           hint=f"set dashboard_token_env = \"NAME\" under [environments.{env.name}] in "
                                "cuisine-db.toml and export NAME with a long random value; or use address=127.0.0.1")
    token = settings.secret(variable)
    if not token or len(token) < 16:
        raise RefusedError(f"${variable} (dashboard_token_env of {env.name!r}) is not set or shorter than 16 "
                           "characters", hint=f"export {variable}=\"$(openssl rand -hex 24)\"")
    return Plan(address, port, loopback=False, token=token)


def serve(settings: Settings, env: Environment, chosen: Plan, *, say: Callable[[str], None]) -> None:
    """Run the web server until interrupted."""
    import uvicorn

    from cuisine_db.dashboard import reads
    from cuisine_db.dashboard.app import create_app

    # Every session this process opens (the services' own included) gets the page timeouts and read-only
    # transactions: libpq reads PGOPTIONS, and no option passed by postgres/connect.py overrides it.
    os.environ["PGOPTIONS"] = reads.PGOPTIONS
    app = create_app(settings, env, token=chosen.token, loopback=chosen.loopback)
    if not chosen.loopback:
        say(f"warning: serving {env.name}'s dashboard on {chosen.address} over plain HTTP: the access token and "
            "the pages travel unencrypted; put a TLS proxy in front of it, or keep it on 127.0.0.1")
    say(f"{env.name}'s dashboard: {chosen.url} (read-only, as the monitoring role; Ctrl-C stops it)")
    # No access log: a first visit carries the token in its query string.
    uvicorn.run(app, host=chosen.address, port=chosen.port, access_log=False, log_level="warning",
                server_header=False)
