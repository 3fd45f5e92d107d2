"""`cuisine-db dashboard` (make db-dashboard): the web dashboard of one environment."""

from __future__ import annotations

from typing import Annotated

import typer

from cuisine_db.cli.common import EnvOption, environment, say, settings


def dashboard(env: EnvOption = None,
              port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 8080,
              address: Annotated[str, typer.Option("--address", help="Address to listen on; other than loopback "
                                                   "needs dashboard_token_env in cuisine-db.toml.")] = "127.0.0.1",
              ) -> None:
    """Serve the read-only dashboard: overview, recovery, database, live and incidents pages."""
    from cuisine_db.dashboard import server

    s = settings()
    chosen = environment(env)
    server.serve(s, chosen, server.plan(s, chosen, address, port), say=say)
