"""What a full restore does around pg_restore's load: the rows each table received, checked against the manifest
by the server's counters or by count(*), and autovacuum kept off the tables while they load."""

from __future__ import annotations

import time

import pytest
from backup_fixtures import BackupProject, clone
from conftest import Server
from psycopg import sql

from cuisine_db.backup.manifest import TableEntry
from cuisine_db.backup.restore_load import loaded_rows, pause_autovacuum, resume_autovacuum
from cuisine_db.errors import FailedError


def insert(server: Server, database: str, table: str, rows: int, *, counted: bool = True) -> None:
    """Insert `rows` rows in a session of their own, then wait until that backend is gone (it flushes its
    statistics when it exits)."""
    with server.admin(database) as conn:
        if not counted:
            conn.execute("SET track_counts = off")
        conn.execute(sql.SQL("INSERT INTO {} SELECT generate_series(1, %s)").format(sql.Identifier(table)), [rows])
        pid = conn.info.backend_pid
    with server.admin() as conn:
        for _ in range(100):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,):
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not exit")


def test_loaded_rows_takes_the_servers_insert_counters_and_counts_the_tables_they_cannot_vouch_for(
        server: Server) -> None:
    database = clone(server, None)
    with server.admin(database) as conn:
        conn.execute("CREATE TABLE loaded (id int); CREATE TABLE uncounted (id int); CREATE TABLE short (id int)")
    insert(server, database, "loaded", 300)
    insert(server, database, "uncounted", 20, counted=False)  # its counter says 0: count(*) decides
    insert(server, database, "short", 7)
    with server.admin(database) as conn:
        assert loaded_rows(conn, [TableEntry("public", "loaded", 300), TableEntry("public", "uncounted", 20)]) == {
            "public.loaded": 300, "public.uncounted": 20}
        with pytest.raises(FailedError, match=r"public\.short has 7 rows, the manifest says 8"):
            loaded_rows(conn, [TableEntry("public", "short", 8), TableEntry("public", "loaded", 300)])
        with pytest.raises(FailedError, match=r"public\.absent is missing"):
            loaded_rows(conn, [TableEntry("public", "absent", 1)])
        conn.execute("DELETE FROM loaded WHERE id <= 100")
        claimed = loaded_rows(conn, [TableEntry("public", "loaded", 300)]) if server.major >= 15 else None
    if server.major >= 15:
        # The counter answered without reading the table: it counts what the load inserted (in a fresh database
        # nothing else writes), so rows deleted afterwards do not show. On 14 count(*) always decides.
        assert claimed == {"public.loaded": 300}


@pytest.mark.parametrize("server", [18], indirect=True)
def test_autovacuum_is_kept_off_the_tables_while_they_load_and_handed_back_before_the_swap(
        bproject: BackupProject) -> None:
    with bproject.connect("production") as conn:
        conn.execute("ALTER TABLE kitchens SET (autovacuum_enabled = false, fillfactor = 90)")
    name = bproject.backup("production", "logical")

    settings = bproject.settings
    env = settings.env("development")
    with bproject.connect("development") as conn:
        conn.execute("CREATE TABLE own (id int) WITH (autovacuum_enabled = true); CREATE TABLE plain (id int)")
    database = bproject.databases["development"]
    paused = pause_autovacuum(settings, env, database)
    assert ("public", "plain") in paused and ("public", "own") not in paused
    with bproject.connect("development") as conn:
        options = dict(conn.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN ('own', 'plain')"
                                    ).fetchall())
    assert options == {"own": ["autovacuum_enabled=true"], "plain": ["autovacuum_enabled=false"]}
    resume_autovacuum(settings, env, database, paused)
    with bproject.connect("development") as conn:
        options = dict(conn.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN ('own', 'plain')"
                                    ).fetchall())
    assert options == {"own": ["autovacuum_enabled=true"], "plain": None}

    restored = bproject.cli("restore", "database", "--env", "development", "--backup", name)
    assert restored.returncode == 0, restored.stderr
    with bproject.connect("development") as conn:
        options = dict(conn.execute("SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n "
                                    "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
                                    ).fetchall())
    # The backup's own setting comes back as it was; no other table keeps anything of the pause.
    assert options.pop("kitchens") == ["autovacuum_enabled=false", "fillfactor=90"]
    assert options and all(value is None for value in options.values()), options
    assert bproject.fingerprints("development") == bproject.fingerprints("production")


@pytest.mark.parametrize("server", [18], indirect=True)
def test_post_data_beside_the_last_table_loading_never_reads_or_needs_it_early(bproject: BackupProject) -> None:
    # A table far larger than the rest loads alone while the others' indexes and keys are built: what depends
    # on it (its keys, a key referencing it, a materialized view over it) must wait for its rows, and its own
    # foreign key needs a primary key built beside it.
    with bproject.connect("production") as conn:
        conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), "
                     "amount numeric NOT NULL, note text NOT NULL)")
        conn.execute("INSERT INTO ledger SELECT n, (SELECT min(id) FROM users) + n % 50, n * 1.5, "
                     "repeat('x', 20) || n FROM generate_series(1, 600000) AS n")
        conn.execute("CREATE TABLE ledger_notes (ledger_id bigint NOT NULL REFERENCES ledger (id), body text)")
        conn.execute("INSERT INTO ledger_notes SELECT n, 'note' FROM generate_series(1, 600000, 1000) AS n")
        conn.execute("CREATE MATERIALIZED VIEW ledger_totals AS SELECT user_id, count(*) AS n, sum(amount) AS total "
                     "FROM ledger GROUP BY user_id")
        conn.execute("CREATE UNIQUE INDEX ledger_totals_user ON ledger_totals (user_id)")
        expected = conn.execute("SELECT * FROM ledger_totals ORDER BY user_id").fetchall()
    name = bproject.backup("production", "logical")
    restored = bproject.cli("restore", "database", "--env", "development", "--backup", name)
    assert restored.returncode == 0, restored.stderr
    with bproject.connect("development") as conn:
        assert conn.execute("SELECT * FROM ledger_totals ORDER BY user_id").fetchall() == expected
        # Every table with rows was analysed, whether beside the last of post-data or after it.
        unanalysed = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples > 0 AND NOT EXISTS "
                                  "(SELECT FROM pg_statistic s WHERE s.starelid = c.oid)").fetchall()
        assert unanalysed == []
        keys = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype IN ('p', 'f') AND conrelid IN "
                            "('ledger'::regclass, 'ledger_notes'::regclass)").fetchone()
        assert keys == (3,)
    assert bproject.fingerprints("development") == bproject.fingerprints("production")
