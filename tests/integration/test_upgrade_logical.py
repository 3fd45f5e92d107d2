"""db-upgrade method=logical on seeded Cuisine Code data, PostgreSQL 14 -> 18, under continuous writes.

One module-scoped environment goes through the runs in order: the refusals (a table without replica identity, an
unreachable to_dsn), the upgrade while a writer inserts numbered rows, then the rollback while it keeps writing.
The writer connects as an application role, so maintenance mode stops it as it stops applications.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from backup_fixtures import make_keys
from conftest import available
from upgrade_support import LocalProject, make_local_project

from cuisine_db.config import load_settings
from cuisine_db.postgres.ports import free_port
from cuisine_db.upgrade.inplace import _stop_any

pytestmark = [pytest.mark.slow, pytest.mark.serial]

WRITER = "line_cook"
WRITER_PASSWORD = "written-by-the-test"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProject]:
    for major in (14, 18):
        if available(major) is None:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine")
    keys = make_keys(tmp_path_factory.mktemp("logical-keys"))
    made = make_local_project(tmp_path_factory.mktemp("logical14"), keys, 14, protected=False)
    with made.connect() as conn:
        conn.execute("CREATE TABLE tickets (id bigserial PRIMARY KEY, n integer NOT NULL, "
                     "written_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("CREATE TABLE kitchen_notes (body text NOT NULL)")  # no key: no replica identity
        conn.execute("INSERT INTO kitchen_notes SELECT 'note ' || g FROM generate_series(1, 50) AS g")
        conn.execute(f"CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}'")
        conn.execute(f"GRANT INSERT, SELECT ON tickets TO {WRITER}")
        conn.execute(f"GRANT USAGE ON SEQUENCE tickets_id_seq TO {WRITER}")
    yield made
    made.cli("cluster", "down", "--env", "production")
    settings = load_settings({"CUISINE_DB_CONFIG": str(made.config)})
    for leftover in sorted(made.home.glob("upgrade/pg*/data")):  # a failed run's other cluster
        _stop_any(int(leftover.parent.name.removeprefix("pg")), leftover, settings)


class Writer(threading.Thread):
    """Inserts numbered rows as an application role; remembers each number whose commit it saw succeed. A commit
    whose outcome is unknown (the connection broke) is looked up before the number is written again."""

    def __init__(self, port: int, first: int, *, pooled: bool = False) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.pooled = pooled
        self.next = first
        self.committed: list[int] = []
        self.failures = 0
        self.stopping = threading.Event()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=WRITER, password=WRITER_PASSWORD,
                               dbname="cuisine", autocommit=True, connect_timeout=3,
                               prepare_threshold=None if self.pooled else 5)

    def run(self) -> None:
        uncertain = False
        while not self.stopping.is_set():
            try:
                with self._connect() as conn:
                    while not self.stopping.is_set():
                        if uncertain:
                            found = conn.execute("SELECT count(*) FROM tickets WHERE n = %s", (self.next,)).fetchone()
                            uncertain = False
                            if found is not None and found[0] > 0:
                                self.committed.append(self.next)
                                self.next += 1
                                continue
                        uncertain = True
                        conn.execute("INSERT INTO tickets (n) VALUES (%s)", (self.next,))
                        uncertain = False
                        self.committed.append(self.next)
                        self.next += 1
                        time.sleep(0.005)
            except psycopg.Error:
                self.failures += 1
                time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def _port(project: LocalProject) -> int:
    port = load_settings({"CUISINE_DB_CONFIG": str(project.config)}).env("production").port
    assert port is not None
    return port


def _rows(project: LocalProject) -> list[int]:
    with project.connect() as conn:
        return [n for (n,) in conn.execute("SELECT n FROM tickets ORDER BY n").fetchall()]


def _sequences_ahead(project: LocalProject) -> list[str]:
    with project.connect() as conn:
        return sequences_behind(conn)


def sequences_behind(conn: psycopg.Connection[Any]) -> list[str]:
    """Columns whose sequence would hand out an id that already exists."""
    behind = []
    columns = conn.execute(
        "SELECT format('%I.%I', table_schema, table_name), column_name, "
        "pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name) "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "AND pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name) IS NOT NULL"
    ).fetchall()
    assert columns, "the seeded schema has sequences"
    for table, column, sequence in columns:
        top = conn.execute(psycopg.sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
            psycopg.sql.Identifier(column), psycopg.sql.SQL(table))).fetchone()
        following = conn.execute("SELECT nextval(%s)", (sequence,)).fetchone()
        assert top is not None and following is not None
        if following[0] <= top[0]:
            behind.append(f"{table}.{column}: next {following[0]} <= max {top[0]}")
    return behind


def _journal(project: LocalProject) -> list[dict[str, Any]]:
    lines = (project.home / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_table_without_replica_identity_is_refused(project: LocalProject) -> None:
    before = project.fingerprints()
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "public.kitchen_notes" in result.stderr
    assert "replica-identity-full" in result.stderr
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)


def test_unreachable_to_dsn_is_exit_3_with_nothing_changed(project: LocalProject) -> None:
    before = project.fingerprints()
    dsn = f"host=127.0.0.1 port={free_port()} dbname=cuisine user=cuisine connect_timeout=3"
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--to-dsn", dsn,
                         "--replica-identity-full", "--yes")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot be reached" in result.stderr
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()


@pytest.mark.parametrize(("dsn", "reason"), [
    ("host=127.0.0.1 port={port} dbname=cuisine user=cuisine password=secret", "holds a password"),
    ("host=127.0.0.1 port={port} dbname=cuisine user=cuisine passfile={passfile}", "not built yet"),
    ("not a = connection string =", "not a libpq connection string"),
])
def test_to_dsn_refusals_are_exit_2_with_nothing_changed(project: LocalProject, dsn: str, reason: str) -> None:
    before = project.fingerprints()
    given = dsn.format(port=_port(project), passfile=project.home / "pgpass")
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--to-dsn", given,
                         "--replica-identity-full", "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert reason in result.stderr
    assert "secret" not in result.stdout + result.stderr + (project.home / "journal.jsonl").read_text()
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()


def _rows_by_check(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in report["preflight"]["rows"]}


def test_logical_preflight_table_says_what_logical_replication_needs(project: LocalProject) -> None:
    """check=1 with method=logical: the table of logical's own needs; no-go is exit 1 and nothing is changed."""
    before = project.fingerprints()
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--check", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows_by_check(json.loads(result.stdout))
    assert rows["replica identity"]["status"] == "no-go"
    assert "public.kitchen_notes" in rows["replica identity"]["detail"]
    assert rows["wal_level"]["status"] == "note" and "restart" in rows["wal_level"]["detail"]  # replica today
    assert rows["replication slots and senders"]["status"] == "go"
    assert rows["free disk"]["status"] == "go"
    assert rows["sequences"]["status"] == "go"
    assert rows["sequences"]["detail"].split()[0].isdigit() and int(rows["sequences"]["detail"].split()[0]) > 0
    assert rows["large objects"]["status"] == "go"
    assert rows["WAL archive"]["status"] == "go"
    with project.connect() as conn:
        row = conn.execute("SELECT lo_from_bytea(0, 'a recipe photo')").fetchone()
        assert row is not None
        conn.execute("CREATE UNLOGGED TABLE scratchpad (id int PRIMARY KEY)")
    try:
        with_lo = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--check",
                              "--replica-identity-full", "--json")
        assert with_lo.returncode == 1, with_lo.stdout + with_lo.stderr
        rows = _rows_by_check(json.loads(with_lo.stdout))
        assert rows["replica identity"]["status"] == "note"  # replica_identity_full=1: given FULL at the run
        assert rows["large objects"]["status"] == "no-go" and rows["large objects"]["detail"].startswith("1 ")
        assert rows["unlogged tables"]["status"] == "no-go" and "public.scratchpad" in rows["unlogged tables"]["detail"]
        refused = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical",
                              "--replica-identity-full", "--yes")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "large objects" in refused.stderr and "nothing was changed" in refused.stderr
    finally:
        with project.connect() as conn:
            conn.execute("SELECT lo_unlink(%s)", (row[0],))
            conn.execute("DROP TABLE scratchpad")
    ok = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--check",
                     "--replica-identity-full", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert all(row["status"] != "no-go" for row in _rows_by_check(json.loads(ok.stdout)).values())
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        assert conn.execute("SHOW wal_level").fetchone() == ("replica",)


def test_logical_rehearsal_predicts_the_cutover_and_leaves_env_alone(project: LocalProject) -> None:
    """rehearse=1 method=logical: the newest full backup restored into a scratch cluster, the logical path run
    there end to end; the cutover's downtime is the prediction, recorded as the backup's test restore."""
    made = project.cli("backup", "create", "--env", "production", "--type", "full")
    assert made.returncode == 0, made.stdout + made.stderr
    before = project.fingerprints()
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--rehearse",
                         "--replica-identity-full", "--json", timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "logical" and report["go"] is True
    assert 0 < report["predicted_downtime_seconds"] < report["total_seconds"]
    assert report["row_count_differences"] == [] and report["migrations_missing"] == []
    assert report["amcheck_problems"] == []
    assert project.major() == 14
    assert project.fingerprints() == before
    assert not (project.home / "upgrade").exists()
    assert not (project.root / ".cuisine" / "rehearse-production").exists()
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    listed = json.loads(project.cli("backup", "list", "--env", "production", "--json").stdout)
    rehearsed = next(b for b in listed if b["name"] == report["backup"])
    details = rehearsed["test_restore"]["details"]
    assert rehearsed["test_restore"]["ok"] is True
    assert details["upgrade_rehearsal"] is True and details["method"] == "logical"
    assert details["predicted_downtime_seconds"] == report["predicted_downtime_seconds"]
    # A logical rehearsal does not stand for an in-place run (nor the other way round).
    refused = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "link", "--rehearsed",
                          report["backup"], "--yes")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "no passing rehearsal" in refused.stderr
    assert project.major() == 14
    assert not (project.home / "upgrade").exists()


def test_logical_upgrade_under_writes_keeps_every_committed_row(project: LocalProject) -> None:
    writer = Writer(_port(project), first=1)
    writer.start()
    time.sleep(1)
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical",
                         "--replica-identity-full", "--yes", timeout=1200)
    at_return = len(writer.committed)
    time.sleep(2)  # writes after the cutover go to the new cluster
    writer.stop()
    assert len(writer.committed) > at_return, "the writer wrote nothing after the cutover"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "caught up: lag" in result.stderr + result.stdout
    assert project.major() == 18
    rows = _rows(project)
    assert len(rows) == len(set(rows)), "a row was applied twice"
    missing = set(writer.committed) - set(rows)
    assert not missing, f"committed rows missing after the cutover: {sorted(missing)[:10]}"
    assert len(writer.committed) > 20
    assert writer.failures > 0, "maintenance mode never stopped the writer: the cutover did not block writes"
    assert _sequences_ahead(project) == []
    with project.connect() as conn:
        assert conn.execute("SELECT relreplident FROM pg_class WHERE relname = 'kitchen_notes'").fetchone() == ("f",)
        assert conn.execute("SELECT count(*) FROM kitchen_notes").fetchone() == (50,)
        applied = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert applied is not None and applied[0] > 0
    steps = [entry["command"] for entry in _journal(project)]
    for step in ("upgrade logical: prepare", "upgrade logical: catch-up", "upgrade logical: verify",
                 "upgrade logical: switch", "upgrade logical: reverse replication"):
        assert step in steps
    # the old cluster waits on its own port, following the new one
    state = json.loads((project.home / "upgrade" / "logical.json").read_text())
    assert state["phase"] == "done"
    with psycopg.connect(host="127.0.0.1", port=state["back_port"], user="cuisine", dbname="cuisine",
                         passfile=str(project.home / "pgpass")) as old:
        version = old.execute("SHOW server_version_num").fetchone()
    assert version is not None and int(version[0]) // 10000 == 14


def test_rollback_returns_to_the_old_cluster_with_the_writes_made_since(project: LocalProject) -> None:
    with project.connect() as conn:
        top = conn.execute("SELECT max(n) FROM tickets").fetchone()
        conn.execute("UPDATE kitchen_notes SET body = body || ' (after the cutover)' WHERE body = 'note 7'")
    assert top is not None
    writer = Writer(_port(project), first=int(top[0]) + 1)
    writer.start()
    time.sleep(1)
    result = project.cli("upgrade", "--env", "production", "--rollback", "--yes", timeout=600)
    at_return = len(writer.committed)
    time.sleep(2)
    writer.stop()
    assert len(writer.committed) > at_return, "the writer wrote nothing on the old cluster after the rollback"
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.major() == 14
    rows = set(_rows(project))
    missing = set(writer.committed) - rows
    assert not missing, f"rows written on PostgreSQL 18 missing after the rollback: {sorted(missing)[:10]}"
    assert len(_rows(project)) == len(rows)
    assert _sequences_ahead(project) == []
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM kitchen_notes WHERE body LIKE '%(after the cutover)'"
                            ).fetchone() == (1,)
    assert not (project.home / "upgrade").exists()
    assert not (project.home / "postgres_major").exists()


def test_finish_removes_the_old_cluster_and_the_reverse_replication(project: LocalProject) -> None:
    result = project.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical",
                         "--replica-identity-full", "--yes", timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads((project.home / "upgrade" / "logical.json").read_text())
    result = project.cli("upgrade", "--env", "production", "--finish", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.major() == 18
    assert not (project.home / "upgrade").exists()
    with project.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=state["back_port"], user="cuisine", dbname="cuisine",
                        passfile=str(project.home / "pgpass"), connect_timeout=3)
    again = project.cli("upgrade", "--env", "production", "--rollback", "--yes")
    assert again.returncode == 4, again.stdout + again.stderr


def test_pgbouncer_follows_the_cutover(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The pooler points at the environment's port, which the new cluster takes: clients of PgBouncer write to
    PostgreSQL 18 after the cutover without being told, and no committed row is lost on the way."""
    from cuisine_db.pooler import process

    for major in (14, 18):
        if available(major) is None:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine")
    try:
        process.program()
    except Exception:
        pytest.skip("pgbouncer is not installed here (Debian's pgbouncer package)")
    made = make_local_project(tmp_path_factory.mktemp("logical-pooled"), make_keys(
        tmp_path_factory.mktemp("logical-pooled-keys")), 14, protected=False)
    pooler_port = free_port()
    with made.config.open("a") as config:
        config.write(f"[environments.production.pooler]\nport = {pooler_port}\nreserved_server_connections = 20\n"
                     "applications = 2\nconnections_per_application = 10\n")
    try:
        with made.connect() as conn:
            conn.execute("CREATE TABLE tickets (id bigserial PRIMARY KEY, n integer NOT NULL)")
            conn.execute(f"CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}'")
            conn.execute(f"GRANT INSERT, SELECT ON tickets TO {WRITER}")
            conn.execute(f"GRANT USAGE ON SEQUENCE tickets_id_seq TO {WRITER}")
        for step in (("pooler", "config", "--env", "production"), ("pooler", "start", "--env", "production")):
            done = made.cli(*step)
            assert done.returncode == 0, done.stdout + done.stderr
        writer = Writer(pooler_port, first=1, pooled=True)
        writer.start()
        time.sleep(1)
        result = made.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes",
                          timeout=1200)
        at_return = len(writer.committed)
        time.sleep(3)
        writer.stop()
        assert result.returncode == 0, result.stdout + result.stderr
        with psycopg.connect(host="127.0.0.1", port=pooler_port, user=WRITER, password=WRITER_PASSWORD,
                             dbname="cuisine", prepare_threshold=None, connect_timeout=10) as through:
            version = through.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) // 10000 == 18
        rows = _rows(made)
        assert len(rows) == len(set(rows))
        assert not set(writer.committed) - set(rows)
        assert len(writer.committed) > at_return, "no write went through PgBouncer after the cutover"
    finally:
        made.cli("pooler", "stop", "--env", "production")
        made.cli("upgrade", "--env", "production", "--finish", "--yes")
        made.cli("cluster", "down", "--env", "production")


def test_kill_during_the_switch_then_rollback_puts_the_old_cluster_back(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """kill -9 of the upgrade while the clusters swap places: --rollback puts PostgreSQL 14 back on the
    environment's port with every committed row, and removes the new cluster."""
    import signal

    for major in (14, 18):
        if available(major) is None:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine")
    made = make_local_project(tmp_path_factory.mktemp("logical-killed"), make_keys(
        tmp_path_factory.mktemp("logical-killed-keys")), 14, protected=False)
    try:
        with made.connect() as conn:
            conn.execute("CREATE TABLE tickets (id bigserial PRIMARY KEY, n integer NOT NULL)")
            conn.execute(f"CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}'")
            conn.execute(f"GRANT INSERT, SELECT ON tickets TO {WRITER}")
            conn.execute(f"GRANT USAGE ON SEQUENCE tickets_id_seq TO {WRITER}")
        before = made.fingerprints()
        writer = Writer(_port(made), first=1)
        writer.start()
        process = made.popen("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes")
        state_file = made.home / "upgrade" / "logical.json"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if json.loads(state_file.read_text())["phase"] == "switching":
                    break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.02)
        assert process.poll() is None, "the upgrade ended before its switch"
        process.send_signal(signal.SIGKILL)
        process.communicate()
        time.sleep(3)  # a pg_ctl the killed run had started finishes
        result = made.cli("upgrade", "--env", "production", "--rollback", "--yes")
        at_return = len(writer.committed)
        time.sleep(2)
        writer.stop()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "interrupted" in result.stdout + result.stderr
        assert made.major() == 14
        assert not (made.home / "upgrade").exists()
        assert not (made.home / "postgres_major").exists()
        rows = _rows(made)
        assert len(rows) == len(set(rows))
        assert not set(writer.committed) - set(rows)
        assert len(writer.committed) > at_return, "the application roles were not given back their limits"
        assert made.fingerprints() == before  # the seeded tables, as they were
    finally:
        made.cli("cluster", "down", "--env", "production")
        settings = load_settings({"CUISINE_DB_CONFIG": str(made.config)})
        for leftover in sorted(made.home.glob("upgrade/pg*/data")):
            _stop_any(int(leftover.parent.name.removeprefix("pg")), leftover, settings)


def test_a_protected_environment_rehearses_the_logical_upgrade_first(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A protected environment's logical run rehearses on its newest full backup before anything changes, and
    records which backup stood for it."""
    for major in (14, 18):
        if available(major) is None:
            pytest.skip(f"PostgreSQL {major} is not installed on this machine")
    made = make_local_project(tmp_path_factory.mktemp("logical-protected"), make_keys(
        tmp_path_factory.mktemp("logical-protected-keys")), 14, protected=True)
    try:
        taken = made.cli("backup", "create", "--env", "production", "--type", "full")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        before = made.fingerprints()
        result = made.cli("upgrade", "--env", "production", "--to", "18", "--method", "logical", "--yes", "--json",
                          timeout=1800)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["rehearsal"], report
        assert "rehearsing the logical upgrade" in result.stderr
        listed = json.loads(made.cli("backup", "list", "--env", "production", "--json").stdout)
        rehearsed = next(b for b in listed if b["name"] == report["rehearsal"])
        assert rehearsed["test_restore"]["ok"] is True
        assert rehearsed["test_restore"]["details"]["method"] == "logical"
        assert made.major() == 18
        assert made.fingerprints() == before
        assert not (made.root / ".cuisine" / "rehearse-production").exists()
    finally:
        made.cli("upgrade", "--env", "production", "--finish", "--yes")
        made.cli("cluster", "down", "--env", "production")
        settings = load_settings({"CUISINE_DB_CONFIG": str(made.config)})
        for leftover in sorted(made.home.glob("upgrade/pg*/data")):
            _stop_any(int(leftover.parent.name.removeprefix("pg")), leftover, settings)
