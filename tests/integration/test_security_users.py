"""Users and passwords on real servers: the plain password never leaves the client, weak ones are refused."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cli_support import error_lines
from conftest import CLI, REPO, Project
from psycopg import sql
from security_support import STRONG, ProcessWatch, cli, make, popen_watched, run_env

from cuisine_db import migrations
from cuisine_db.postgres.local import cluster_for


@pytest.fixture
def prefix(project: Project) -> Iterator[str]:
    """A role-name prefix of this test's own; its roles are dropped afterwards (roles are cluster-wide)."""
    name = "t" + project.database[-8:]
    yield name
    with project.server.admin(project.database) as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", [name + "%"]).fetchall()
        for (role,) in rows:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


once = pytest.mark.postgres(max=14, reason="the same on every server version (client-side, or catalogs unchanged "
                                           "since 14)")


def can_log_in(project: Project, user: str, password: str) -> bool:
    try:
        psycopg.connect(host="127.0.0.1", port=project.server.port, user=user, password=password,
                        dbname=project.database, connect_timeout=10).close()
    except psycopg.OperationalError:
        return False
    return True


def role_exists(project: Project, name: str) -> bool:
    with project.connect() as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


def server_log(project: Project) -> str:
    folder = cluster_for(project.server.settings, project.server.env).datadir / "log"
    text = "".join(path.read_text(errors="replace") for path in sorted(folder.iterdir()))
    # CSV doubles quotes and JSON escapes them: read both as the statement was written.
    return text.replace('""', '"').replace('\\"', '"')


def journal(project: Project) -> str:
    path = project.root / ".cuisine" / "development" / "journal.jsonl"
    return path.read_text() if path.exists() else ""


def test_the_plain_password_appears_nowhere(project: Project, prefix: str, tmp_path: Path) -> None:
    with project.connect() as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(sql.Identifier(project.database)))
    secrets = {name: f"{STRONG}-{name}-{os.getpid()}" for name in ("stdin", "env", "file", "make", "update")}
    # What is searched for: each secret's plain part, which survives the escaping of JSON and CSV files.
    needles = list(secrets.values())
    secrets["make"] += "$H$(x)'\" #"  # make must pass it on as typed, without expanding or cutting it
    password_file = tmp_path / "pw"
    password_file.write_text(secrets["file"] + "\n")
    password_file.chmod(0o600)
    config = project.config
    outputs = []
    with ProcessWatch(needles) as watch:
        outputs.append(popen_watched(watch, [*CLI, "security", "create-user", "-u", f"{prefix}_a"], config,
                                     input_text=secrets["stdin"] + "\n"))
        outputs.append(popen_watched(watch, [*CLI, "security", "create-user", "-u", f"{prefix}_b", "--password-env",
                                             "MY_PW"], config, extra={"MY_PW": secrets["env"]}))
        outputs.append(popen_watched(watch, ["make", "-C", str(REPO), "db-create-user", f"username={prefix}_c",
                                             f"password_file={password_file}", "valid_until=2031-01-31",
                                             "connection_limit=3"], config))
        outputs.append(popen_watched(watch, ["make", "-C", str(REPO), "db-create-user", f"username={prefix}_d",
                                             f"password={secrets['make']}"], config, owns_secret=True))
        outputs.append(popen_watched(watch, ["make", "-C", str(REPO), "db-update-password", f"username={prefix}_a"],
                                     config, input_text=secrets["update"] + "\n"))
    for result in outputs:
        assert result.returncode == 0, result.stderr
    assert "shell history" in outputs[3].stderr
    # Every password works, so each really was set ...
    for role, key in (("a", "update"), ("b", "env"), ("c", "file"), ("d", "make")):
        assert can_log_in(project, f"{prefix}_{role}", secrets[key]), role
    assert not can_log_in(project, f"{prefix}_a", secrets["stdin"])
    with project.connect() as conn:
        assert conn.execute("SELECT rolconnlimit, rolvaliduntil::date::text FROM pg_roles WHERE rolname = %s",
                            [f"{prefix}_c"]).fetchone() == (3, "2031-01-31")
    # ... and none of them reached a process's argv (besides the make we typed it into), the output, the journal,
    assert watch.seen, "the cuisine-db processes were never observed"
    assert watch.leaks == []
    for result in outputs:
        assert not any(needle in result.stdout + result.stderr for needle in needles)
    entries = [json.loads(line) for line in journal(project).splitlines()]
    assert [e["arguments"]["supplied_by"] for e in entries if e["command"] == "db-create-user"] == [
        "standard input", "$MY_PW", f"file {password_file}", "the make command line"]
    assert not any(needle in journal(project) for needle in needles)
    # ... or the server's log, which holds the statements (log_statement = all) with verifiers only.
    deadline = time.monotonic() + 60
    while f'ALTER ROLE "{prefix}_a" PASSWORD' not in server_log(project) and time.monotonic() < deadline:
        time.sleep(0.5)
    logged = server_log(project)
    assert f'CREATE ROLE "{prefix}_d" LOGIN PASSWORD' in logged and "SCRAM-SHA-256$4096:" in logged
    assert not any(needle in logged for needle in needles)


@once
def test_the_prompt_asks_twice_without_echo(project: Project, prefix: str) -> None:
    main, child_end = pty.openpty()
    child = subprocess.Popen([*CLI, "security", "update-password", "-u", f"{prefix}_p"], env=run_env(project.config),
                             stdin=child_end, stdout=child_end, stderr=child_end, cwd=project.root)
    os.close(child_end)
    assert cli(project.config, "security", "create-user", "-u", f"{prefix}_p", input_text=STRONG + "\n"
               ).returncode == 0
    screen = b""
    answers = [f"{STRONG}-new", f"{STRONG}-new"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if answers and screen.count(b": ") > 2 - len(answers) and screen.rstrip().endswith(b":"):
                os.write(main, (answers.pop(0) + "\n").encode())
        elif child.poll() is not None:
            break
    child.wait(timeout=60)
    os.close(main)
    text = screen.decode(errors="replace")
    assert child.returncode == 0, text
    assert "New password" in text and "Repeat for confirmation" in text
    assert STRONG not in text, "the password was echoed"
    assert can_log_in(project, f"{prefix}_p", f"{STRONG}-new")


@once
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("secure_password", "too easy to guess"),  # the runbook's own example
        ("short-Pw1!", "too short"),
        ("{user}-Kitchen-Orbit-7", "contains the username"),
    ],
)
def test_weak_passwords_are_refused_and_nothing_is_created(project: Project, prefix: str, password: str,
                                                           message: str) -> None:
    result = make(project.config, "db-create-user", f"username={prefix}_w", "password_env=PW",
                  extra={"PW": password.format(user=f"{prefix}_w")})
    lines = error_lines(result.stderr)
    assert "Error 2" in result.stderr and len(lines) == 1 and message in lines[0], result.stderr
    assert not role_exists(project, f"{prefix}_w")


@once
def test_update_password_refuses_unknown_roles_and_the_tools_own(project: Project, prefix: str) -> None:
    missing = cli(project.config, "security", "update-password", "-u", f"{prefix}_none", input_text=STRONG + "\n")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    own = cli(project.config, "security", "update-password", "-u", "cuisine", input_text=STRONG + "\n")
    assert own.returncode == 4 and "lock the tool out" in own.stderr
    project.server.admin().close()  # the tool's password still works: connecting raises otherwise


def test_the_drop_user_service_asks_whoever_calls_it(project: Project, prefix: str) -> None:
    """security/users.drop_user owns the rule, not the CLI: it asks on every environment (the role's name typed, the
    environment's name on a protected one); called directly without confirmation it refuses (exit 4) and the role
    stays."""
    from cuisine_db import security
    from cuisine_db.errors import EXIT_REFUSED, RefusedError

    role = f"{prefix}_dropped"
    assert cli(project.config, "security", "create-user", "-u", role, input_text=STRONG + "\n").returncode == 0
    settings, production, development = project.settings, project.env("production"), project.env("development")
    plan = security.plan_drop(settings, production, role)
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        security.drop_user(settings, production, plan)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="environment's name"):
        security.drop_user(settings, production, plan, ask=lambda _action, _word: role)
    with pytest.raises(RefusedError, match="needs confirmation"):
        security.drop_user(settings, development, security.plan_drop(settings, development, role))
    with pytest.raises(RefusedError, match="did not match"):
        security.drop_user(settings, development, security.plan_drop(settings, development, role),
                           ask=lambda _action, _word: "development")
    assert role_exists(project, role)
    security.drop_user(settings, development, security.plan_drop(settings, development, role),
                       ask=lambda _action, word: word)
    assert not role_exists(project, role)


def test_drop_user_on_a_terminal_asks_for_the_roles_name(project: Project, prefix: str) -> None:
    """The terminal half of the moved rule: cli/common.word_asker shows the prompt the service asks through; on an
    unprotected environment the role's name is the word to type."""
    role = f"{prefix}_typed"
    assert cli(project.config, "security", "create-user", "-u", role, input_text=STRONG + "\n").returncode == 0

    def drop_typing(answer: str) -> tuple[int, str]:
        main, child_end = pty.openpty()
        child = subprocess.Popen([*CLI, "security", "drop-user", "-u", role], env=run_env(project.config),
                                 stdin=child_end, stdout=child_end, stderr=child_end, cwd=project.root)
        os.close(child_end)
        screen, sent = b"", False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
                if not sent and b"to go on" in screen:
                    os.write(main, (answer + "\n").encode())
                    sent = True
            elif child.poll() is not None:
                break
        child.wait(timeout=60)
        os.close(main)
        return child.returncode, screen.decode(errors="replace")

    code, text = drop_typing("development")
    assert code == 4 and f"Type '{role}' to go on" in text and "did not match" in text, text
    assert role_exists(project, role)
    code, text = drop_typing(role)
    assert code == 0, text
    assert not role_exists(project, role)


@once
def test_drop_user_reports_what_it_owns_and_never_loses_it(project: Project, prefix: str) -> None:
    migrations.migrate(project.settings, project.env())
    role = f"{prefix}_owner"
    assert cli(project.config, "security", "create-user", "-u", role, input_text=STRONG + "\n").returncode == 0
    assert cli(project.config, "security", "grant", "-u", role, "-p", "SELECT", "-t", "users").returncode == 0
    with project.connect() as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute(sql.SQL("ALTER TABLE kept OWNER TO {}").format(sql.Identifier(role)))
        conn.execute("INSERT INTO kept VALUES (1)")
    asked = make(project.config, "db-drop-user", f"username={role}")
    assert "Error 4" in asked.stderr and "needs confirmation" in asked.stderr  # make exits 2; the CLI said 4
    assert "kept" in asked.stdout and "privileges" in asked.stdout  # the report came first
    owns = make(project.config, "db-drop-user", f"username={role}", "yes=1")
    assert "Error 4" in owns.stderr and "reassign_to=" in owns.stderr
    assert role_exists(project, role)
    dropped = make(project.config, "db-drop-user", f"username={role}", "reassign_to=cuisine", "yes=1")
    assert dropped.returncode == 0, dropped.stderr
    assert not role_exists(project, role)
    with project.connect() as conn:
        assert conn.execute("SELECT tableowner, (SELECT count(*) FROM kept) FROM pg_tables WHERE tablename = 'kept'"
                            ).fetchone() == ("cuisine", 1)
    outcomes = [(e["command"], e["outcome"]) for e in map(json.loads, journal(project).splitlines())
                if e["command"] == "db-drop-user"]
    assert outcomes == [("db-drop-user", "refused"), ("db-drop-user", "refused"), ("db-drop-user", "ok")]
