"""The statements written once with version-dependent pieces (sql.PARTS) run on every server version and read
what that version has."""

from __future__ import annotations

from conftest import Server
from psycopg.rows import dict_row

from cuisine_db import sql


def test_the_index_inventory_reads_the_last_scan_where_the_server_keeps_it(server: Server) -> None:
    with server.admin() as conn:
        conn.execute("CREATE TABLE pieces_probe (id int PRIMARY KEY)")
        try:
            conn.execute("SET enable_seqscan = off")
            conn.execute("SELECT * FROM pieces_probe WHERE id = 1").fetchall()
            if server.major >= 15:
                conn.execute("SELECT pg_stat_force_next_flush()")  # the scan's statistics, before the next read
            with conn.cursor(row_factory=dict_row) as cursor:
                rows = cursor.execute(sql.for_server("performance/index_inventory", conn.info.server_version),
                                      {"table": None}).fetchall()
        finally:
            conn.execute("DROP TABLE pieces_probe")
    [probe] = [row for row in rows if row["index_name"] == "pieces_probe_pkey"]
    if server.major >= 15:  # 14's statistics collector reports later
        assert probe["scans"] == 1
    # pg_stat_get_lastscan() came with PostgreSQL 16; before, the column is NULL.
    assert (probe["last_scan"] is not None) == (server.major >= 16)


def test_collation_drift_runs_on_this_version_and_finds_nothing_on_a_fresh_cluster(server: Server) -> None:
    with server.admin() as conn:
        statement = sql.for_server("integrity/collation_drift", conn.info.server_version)
        assert conn.execute(statement).fetchall() == []
