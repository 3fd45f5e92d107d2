"""db-show-locks and db-terminate-query on real blocking chains: root blockers first, the chain freed, refusals."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from activity import Background, alive, wait_until, waiting_for_lock
from cli_support import error_lines
from cli_support import run_make as make
from conftest import Project, Server
from psycopg import sql

from cuisine_db.cluster import connect
from cuisine_db.diagnose import terminate
from cuisine_db.errors import EXIT_REFUSED, RefusedError, UsageError
from cuisine_db.ops.journal import journal_path, read
from cuisine_db.postgres import client_environ
from cuisine_db.postgres.binaries import find


def nodes(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in tree:
        yield node
        yield from nodes(node["blocked"])


@pytest.fixture
def chains(project: Project) -> Iterator[dict[str, Any]]:
    """Three root blockers: a relation chain three deep, a row chain three deep, and an advisory lock."""
    with project.connect() as setup:
        setup.execute("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); "
                      "CREATE TABLE r (id int PRIMARY KEY, v int); INSERT INTO r VALUES (1, 0)")
    held: list[psycopg.Connection[Any]] = []

    def holder(*statements: str) -> psycopg.Connection[Any]:
        conn = project.connect()
        conn.autocommit = False
        for statement in statements:
            conn.execute(statement.encode())
        held.append(conn)
        return conn

    a = holder("SET application_name = 'root-a'", "LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE")
    b = Background(project.connect, "BEGIN", "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE", "SELECT count(*) FROM t1",
                   "COMMIT", application="waiter-b")
    with project.connect() as watch:
        wait_until(lambda: waiting_for_lock(watch, b.pid), "B to wait for t1")
        c = Background(project.connect, "SELECT count(*) FROM t2", application="waiter-c")
        wait_until(lambda: waiting_for_lock(watch, c.pid), "C to wait for t2")
        e = holder("SET application_name = 'root-e'", "UPDATE r SET v = 1 WHERE id = 1")
        f = Background(project.connect, "UPDATE r SET v = 2 WHERE id = 1", application="waiter-f")
        wait_until(lambda: waiting_for_lock(watch, f.pid), "F to wait for E's row")
        g = Background(project.connect, "UPDATE r SET v = 3 WHERE id = 1", application="waiter-g")
        wait_until(lambda: waiting_for_lock(watch, g.pid), "G to wait behind F")
        h = project.connect()
        held.append(h)
        h.execute("SELECT pg_advisory_lock(4242)")
        i = Background(project.connect, "SELECT pg_advisory_lock(4242)", application="waiter-i")
        wait_until(lambda: waiting_for_lock(watch, i.pid), "I to wait for the advisory lock")
    waiters = {"b": b, "c": c, "f": f, "g": g, "i": i}
    try:
        yield {"a": a.info.backend_pid, "e": e.info.backend_pid, "h": h.info.backend_pid,
               **{name: w.pid for name, w in waiters.items()}, "waiters": waiters}
    finally:
        for conn in held:
            conn.close()
        for waiter in waiters.values():
            waiter.done(30)
            waiter.close()


def test_the_blocking_tree_names_root_blockers_first_with_every_lock_type(project: Project,
                                                                          chains: dict[str, Any]) -> None:
    result = project.cli("locks", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    roots = report["roots"]
    assert [root["pid"] for root in roots] == [chains["a"], chains["e"], chains["h"]]
    order = [node["pid"] for node in nodes(roots)]
    assert order == [chains[k] for k in ("a", "b", "c", "e", "f", "g", "h", "i")]
    by_pid = {node["pid"]: node for node in nodes(roots)}
    a, b, c = by_pid[chains["a"]], by_pid[chains["b"]], by_pid[chains["c"]]
    assert a["blocked_total"] == 2 and a["session"]["application"] == "root-a"
    assert a["session"]["state"] == "idle in transaction" and "LOCK TABLE t1" in a["session"]["query"]
    assert a["holds"] == ["AccessExclusiveLock on relation t1"]
    assert b["waits_for"].startswith("AccessShareLock on relation t1")
    assert b["holds"] == ["AccessExclusiveLock on relation t2"]
    assert c["waits_for"].startswith("AccessShareLock on relation t2") and c["blocked"] == []
    f, g = by_pid[chains["f"]], by_pid[chains["g"]]
    assert f["waits_for"].startswith("ShareLock on transaction ")        # a transaction lock
    assert g["waits_for"].startswith("ExclusiveLock on row (0,1) of r")  # a tuple lock
    assert by_pid[chains["e"]]["holds"][0].startswith("ExclusiveLock on transaction ")
    assert by_pid[chains["i"]]["waits_for"].startswith("ExclusiveLock on advisory lock 4242")
    assert report["waiting"] == 5

    text = project.cli("locks")
    assert text.returncode == 0
    lines = text.stdout
    positions = [lines.index(f"pid {chains[k]} ") for k in ("a", "b", "c", "e", "f", "g", "h", "i")]
    assert positions == sorted(positions)
    assert f"make db-terminate-query env=development pid={chains['a']}" in text.stderr


def test_terminating_the_root_blocker_frees_the_chain_after_confirmation(project: Project,
                                                                         chains: dict[str, Any]) -> None:
    a = chains["a"]
    waiters = chains["waiters"]
    refused = make(project.config, "db-terminate-query", "env=production", f"pid={a}")
    assert refused.returncode != 0 and "Error 4" in refused.stderr, refused.stderr
    assert "yes=1" in refused.stderr
    with project.connect() as watch:
        assert alive(watch, a) and waiting_for_lock(watch, chains["b"])

    done = make(project.config, "db-terminate-query", "env=production", f"pid={a}", "yes=1")
    assert done.returncode == 0, done.stderr
    # A is idle in its transaction: a cancel cannot end that, so auto mode terminates it.
    assert "no cancel: the session is idle in transaction" in done.stdout
    assert "ended the session with pg_terminate_backend" in done.stdout
    assert "blocks 2 session(s)" in done.stdout
    assert waiters["b"].done() and waiters["c"].done()
    assert waiters["b"].error is None and waiters["c"].error is None
    with project.connect() as watch:
        assert not alive(watch, a)
        assert waiting_for_lock(watch, chains["f"])  # the other chains are untouched
    entries = [e for e in read(journal_path(project.settings, project.env("production")))
               if e["command"] == "terminate-query"]
    assert [e["outcome"] for e in entries] == ["refused", "ok"]
    assert entries[-1]["arguments"] == {"pid": a, "mode": "auto"}
    assert entries[-1]["details"]["terminated"] is True
    assert sorted(entries[-1]["details"]["freed"]) == sorted([chains["b"], chains["c"]])


def test_ending_a_session_needs_confirmation_whoever_calls_the_service(project: Project,
                                                                      chains: dict[str, Any]) -> None:
    """diagnose/terminate.end owns the protected-environment rule, not the CLI: called directly on production without
    confirmation it refuses (exit 4) and nothing is sent to the server."""
    a = chains["a"]
    production = project.env("production")
    target = terminate.inspect(project.settings, production, a)
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        terminate.end(project.settings, production, target, mode="terminate")
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        terminate.end(project.settings, production, target, ask=lambda _: "development")
    with project.connect() as watch:
        assert alive(watch, a) and waiting_for_lock(watch, chains["b"])


def test_a_running_query_is_cancelled_and_its_session_kept(project: Project) -> None:
    sleeper = Background(project.connect, "SELECT pg_sleep(120)", application="long-sleeper")
    with project.connect() as watch:
        wait_until(lambda: watch.execute("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s",
                                         (sleeper.pid,)).fetchone() == (True,), "the sleeper to run")
        result = project.cli("terminate-query", "--pid", str(sleeper.pid), "--json")
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)["result"]
        assert outcome["cancelled"] is True and outcome["terminated"] is False
        assert sleeper.done()
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
        assert alive(watch, sleeper.pid)  # cancelled, not terminated
    sleeper.close()


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("0", "pid 0 is not a session"),
        ("abc", "pid must be a positive whole number"),
        ("1;select 1", "pid must be a positive whole number"),
        ("-5", "pid must be a positive whole number"),
        ("12 34", "pid must be a positive whole number"),
        ("99999999999", "pid 99999999999 is not a valid process id (out of range"),
        ("99999999999999999999", "pid 99999999999999999999 is not a valid process id (out of range"),
        ("", "pid= is required"),
        ("2147483000", "no server process with pid 2147483000"),
    ],
)
def test_bad_pids_are_refused_with_one_line_and_exit_2(project: Project, pid: str, expected: str) -> None:
    result = make(project.config, "db-terminate-query", "env=development", f"pid={pid}")
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert "Error 2" in result.stderr
    assert result.stdout == ""


def test_its_own_session_is_refused(project: Project) -> None:
    env = project.env()
    with connect(project.settings, env, "test") as conn, pytest.raises(UsageError, match="own session"):
        terminate.inspect_on(conn, env, conn.info.backend_pid)


def test_a_walsender_is_refused(server: Server, project: Project) -> None:
    environ = client_environ(project.settings, project.env())
    with tempfile.TemporaryDirectory() as folder:
        receiver = subprocess.Popen(
            [str(find(server.major, server.settings.cache_dir).program("pg_receivewal")), "-D", folder,
             "--no-loop"], env=environ, stderr=subprocess.PIPE)
        try:
            with project.connect() as watch:
                pid = wait_until(lambda: (row := watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'").fetchone()) and row[0],
                    "pg_receivewal's walsender")
            result = make(project.config, "db-terminate-query", "env=development", f"pid={pid}")
            lines = error_lines(result.stderr)
            assert len(lines) == 1 and "is a WAL sender" in lines[0], result.stderr
            assert "Error 2" in result.stderr
            assert receiver.poll() is None  # still streaming
        finally:
            receiver.terminate()
            receiver.wait(30)


def test_an_anti_wraparound_autovacuum_is_refused() -> None:
    from datetime import UTC, datetime

    from cuisine_db.config import Environment

    worker = terminate.Backend(
        pid=4321, backend_type="autovacuum worker", database="cuisine", username="", application="",
        client="local socket", state="active", backend_start=datetime.now(UTC), xact_seconds=5.0,
        query_seconds=5.0, query_start=datetime.now(UTC),
        query="autovacuum: VACUUM public.executions (to prevent wraparound)", is_self=False, wraparound=True)
    env = Environment(name="production", port=55999)
    with pytest.raises(UsageError, match="preventing transaction ID wraparound"):
        terminate.refuse(env, worker)
    ordinary = terminate.Backend(**{**{k: getattr(worker, k) for k in terminate.Backend.__slots__},
                                    "wraparound": False, "query": "autovacuum: VACUUM public.executions"})
    terminate.refuse(env, ordinary)  # an ordinary autovacuum may be cancelled


def test_the_journal_and_output_never_show_a_password_from_the_query(project: Project, tmp_path: Path) -> None:
    with project.connect() as setup:
        setup.execute("CREATE ROLE leaky LOGIN")
    victim = project.connect()
    victim.autocommit = False
    victim.execute("ALTER ROLE leaky PASSWORD 'hunter2-very-secret'")
    pid = victim.info.backend_pid
    try:
        shown = project.cli("connections", "--json")
        assert "hunter2-very-secret" not in shown.stdout + shown.stderr
        assert "PASSWORD '[redacted]'" in shown.stdout
        ended = project.cli("terminate-query", "--pid", str(pid))
        assert ended.returncode == 0, ended.stderr
        assert "hunter2-very-secret" not in ended.stdout + ended.stderr
        journal = journal_path(project.settings, project.env()).read_text()
        assert "hunter2-very-secret" not in journal and "[redacted]" in journal
    finally:
        victim.close()
        with project.connect() as cleanup:
            cleanup.execute("DROP ROLE leaky")


def test_the_troubleshooting_commands_work_as_the_monitoring_and_operator_roles(project: Project) -> None:
    """With roles configured, diagnostics connect as the monitoring role (pg_monitor) and db-terminate-query as
    the operator role (pg_signal_backend): an environment whose admin cannot log in proves no fallback."""
    suffix = project.database[-8:]
    names = {"monitoring": f"mon{suffix}", "backup": f"bak{suffix}", "operator": f"ops{suffix}"}
    passwords = {f"{purpose.upper()}_PW": f"kitchen-lemon-orbit-7-Quay-{purpose}" for purpose in names}

    def roles(env: str) -> str:
        return f"[environments.{env}.roles]\n" + "".join(
            f'{purpose} = {{ user = "{role}", password_env = "{purpose.upper()}_PW" }}\n'
            for purpose, role in names.items())

    dsn = f"host=127.0.0.1 port={project.server.port} dbname={project.database}"
    project.config.write_text(project.config.read_text() + roles("development")
                              + f'[environments.limited]\ndsn = "{dsn} user=no_admin_here"\n' + roles("limited"))
    assert project.cli("security", "setup-roles", "--env", "development", extra_env=passwords).returncode == 0
    try:
        def as_monitor() -> psycopg.Connection[Any]:
            return psycopg.connect(f"{dsn} user={names['monitoring']}", autocommit=True,
                                   password=passwords["MONITORING_PW"])

        holder = as_monitor()
        holder.execute("SELECT pg_advisory_lock(77)")
        waiter = Background(as_monitor, "SELECT pg_advisory_lock(77)", application="role-waiter")
        with project.connect() as watch:
            wait_until(lambda: waiting_for_lock(watch, waiter.pid), "the waiter")
            superuser_pid = watch.info.backend_pid
            locks = project.cli("locks", "--env", "limited", "--json", extra_env=passwords)
            assert locks.returncode == 0, locks.stderr
            assert [root["pid"] for root in json.loads(locks.stdout)["roots"]] == [holder.info.backend_pid]
            usage = json.loads(project.cli("connections", "--env", "limited", "--json", extra_env=passwords).stdout)
            seen = {s["pid"]: s for s in usage["usage"]["sessions"]}
            assert "pg_advisory_lock(77)" in seen[waiter.pid]["query"]  # pg_monitor reads other roles' queries
            monitored = project.cli("monitor", "--env", "limited", "--json", "--window", "0", extra_env=passwords)
            assert monitored.returncode in (0, 1), monitored.stderr
            ended = project.cli("terminate-query", "--env", "limited", "--pid", str(holder.info.backend_pid),
                                extra_env=passwords)
            assert ended.returncode == 0, ended.stderr
            assert waiter.done()
            # The operator role cannot signal a superuser's session: a clear refusal from the server, exit 3.
            refused = project.cli("terminate-query", "--env", "limited", "--pid", str(superuser_pid),
                                  extra_env=passwords)
            assert refused.returncode == 3 and "pg_signal_backend" in refused.stderr, refused.stderr
            assert alive(watch, superuser_pid)
        holder.close()
        waiter.close()
    finally:
        with project.server.admin(project.database) as conn:
            for role in names.values():
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
