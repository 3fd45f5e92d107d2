"""ALTER SYSTEM through one validated path: bad values change nothing; restarts are reported, not guessed."""

from __future__ import annotations

import pytest
from conftest import Server

from cuisine_db.errors import UsageError
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.server_settings import alter_system, describe


def auto_conf(server: Server) -> str:
    return (cluster_for(server.settings, server.env).datadir / "postgresql.auto.conf").read_text()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_connectionz", "200", "unknown server parameter"),
        ("max_connections", "0", "out of range"),
        ("max_connections", "abc", "takes a number"),
        ("max_connections", "200; DROP TABLE x", "takes a number"),
        ("work_mem", "64XB", "is not a unit"),
        ("work_mem", "64mb", "is not a unit"),
        ("work_mem", "5min", "is not a unit"),
        ("autovacuum", "maybe", "on or off"),
        ("wal_level", "everything", "is not a value of wal_level"),
        ("max_connections", "1.5", "whole number"),
        ("x'; SELECT 1; --", "1", "not a parameter name"),
    ],
)
def test_bad_changes_are_refused_before_anything_is_written(server: Server, name: str, value: str,
                                                             message: str) -> None:
    before = auto_conf(server)
    with server.admin() as conn, pytest.raises(UsageError, match=message):
        # The good change comes first: it must not be written either.
        alter_system(conn, {"log_min_duration_statement": "250ms", name: value})
    assert auto_conf(server) == before


def test_a_change_is_written_reloaded_and_reset(server: Server) -> None:
    with server.admin() as conn:
        changes = alter_system(conn, {"work_mem": "48MB", "max_connections": "60", "autovacuum": "ON"})
        assert [(c.name, c.new, c.needs_restart) for c in changes] == [
            ("work_mem", "48MB", False), ("max_connections", "60", True), ("autovacuum", "on", False)]
        assert "work_mem = '48MB'" in auto_conf(server)
    with server.admin() as conn:
        assert describe(conn, "work_mem").shown() == "49152kB"
        alter_system(conn, {"work_mem": None, "max_connections": None, "autovacuum": None})
    assert "work_mem" not in auto_conf(server)
