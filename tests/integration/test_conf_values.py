"""Values the tool writes into postgresql.conf and postgresql.auto.conf (cluster settings, a restored cluster's own
configuration, a replica's restore_command and primary_conninfo) reach the server as written: quotes and
backslashes included (a backslash in a quoted value starts an escape where the server reads it)."""

from __future__ import annotations

import time

from conftest import Server

from cuisine_db.postgres.cluster import conf_value
from cuisine_db.postgres.local import cluster_for

AWKWARD = "C:\\new\\table's path \\\\ %f 'quoted' \\"  # backslashes before letters the server would unescape


def test_a_value_with_backslashes_and_quotes_arrives_as_written(server: Server) -> None:
    conf = cluster_for(server.settings, server.env).datadir / "postgresql.conf"
    kept = conf.read_text()
    conf.write_text(kept + f"\ncuisine_test.value = {conf_value(AWKWARD)}\n")
    try:
        with server.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
        shown = None
        deadline = time.monotonic() + 30  # the reload is a signal: new sessions see it soon, not at once
        while shown != AWKWARD and time.monotonic() < deadline:
            with server.admin() as fresh:
                row = fresh.execute("SELECT current_setting('cuisine_test.value', true)").fetchone()
            shown = row[0] if row else None
            time.sleep(0.1)
        assert shown == AWKWARD
    finally:
        conf.write_text(kept)
        with server.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
