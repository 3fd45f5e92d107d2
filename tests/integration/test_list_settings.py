"""ALTER SYSTEM for list parameters (shared_preload_libraries, search_path): one literal per element."""

from __future__ import annotations

import time

from conftest import Server

from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.server_settings import alter_system, list_elements


def test_list_parameters_are_written_element_by_element(server: Server) -> None:
    auto = cluster_for(server.settings, server.env).datadir / "postgresql.auto.conf"
    with server.admin() as conn:
        try:
            alter_system(conn, {"search_path": '"$user", public, audit'})
            # Written as three elements, as the server itself would print them; a single quoted string here
            # is what keeps a server with shared_preload_libraries = 'a,b' from starting.
            assert "search_path = '\"$user\", public, audit'" in auto.read_text()
            deadline = time.monotonic() + 30  # the reload is a signal: new sessions see it soon, not at once
            shown: list[str] = []
            while shown != ["$user", "public", "audit"] and time.monotonic() < deadline:
                with server.admin() as fresh:
                    row = fresh.execute("SHOW search_path").fetchone()
                shown = list_elements(row[0]) if row else []
                time.sleep(0.1)
            assert shown == ["$user", "public", "audit"]
        finally:
            alter_system(conn, {"search_path": None})
    assert "search_path" not in auto.read_text()
