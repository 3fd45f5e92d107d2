"""Audit logging end to end: db-enable-audit, then a grant, DDL and a write show up in db-audit-report."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import VERSIONS, available
from psycopg import sql
from security_support import STRONG, LocalEnv, cli, local_environment

from cuisine_db.postgres.runner import run

HAND_TYPED = "Typed-By-Hand-Secret-42"


def pgaudit_installed(major: int) -> bool:
    """Whether the build a local cluster of `major` would use has pgaudit, without starting one."""
    build = available(major)
    if build is None:
        return False
    sharedir = run([build.program("pg_config"), "--sharedir"]).stdout.strip()
    return (Path(sharedir) / "extension" / "pgaudit.control").exists()


def has_pgaudit(local: LocalEnv) -> bool:
    with local.admin() as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgaudit'").fetchone() is not None


def report(local: LocalEnv, first: date, last: date) -> dict[str, Any]:
    result = local.cli("security", "audit-report", "--start", first.isoformat(), "--end", last.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def activity(local: LocalEnv) -> None:
    """A role change typed by hand, a grant, DDL, a write and a failed login."""
    with local.admin() as conn:
        conn.execute(f"CREATE ROLE auditee LOGIN PASSWORD '{HAND_TYPED}'")
        conn.execute("CREATE TABLE audited (id int)")
        conn.execute("GRANT SELECT ON audited TO auditee")
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier("audited")))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=local.env.port, user="auditee", password="wrong-password",
                        dbname="cuisine", connect_timeout=10)


def enable_pgaudit(local: LocalEnv) -> None:
    auto_conf = local.cluster.datadir / "postgresql.auto.conf"
    before = auto_conf.read_text()
    refused = local.make("db-enable-audit")  # loading pgaudit takes a restart: it must ask first
    assert "Error 4" in refused.stderr and "needs confirmation" in refused.stderr
    assert auto_conf.read_text() == before
    enabled = local.make("db-enable-audit", "yes=1")
    assert enabled.returncode == 0, enabled.stderr
    assert "restarted the server" in enabled.stderr and "pgaudit" in enabled.stderr
    with local.admin() as conn:
        # pg_stat_statements stays loaded: the list was extended, not replaced.
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements, pgaudit",)
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
        assert conn.execute("SHOW pgaudit.log").fetchone() == ("ddl, role, write",)


def enable_fallback(local: LocalEnv) -> None:
    enabled = local.make("db-enable-audit")
    assert enabled.returncode == 0, enabled.stderr
    assert "falling back to log_statement = 'ddl'" in enabled.stderr and "what that misses" in enabled.stderr
    with local.admin() as conn:
        assert conn.execute("SHOW log_statement").fetchone() == ("ddl",)
        assert conn.execute("SHOW log_connections").fetchone() == ("on",)


@pytest.mark.parametrize("mode", ["pgaudit", "fallback"])
@pytest.mark.parametrize("major", VERSIONS, ids=[f"pg{v}" for v in VERSIONS])
def test_enable_audit_then_report_the_day_range(tmp_path: Path, major: int, mode: str) -> None:
    pgaudit = pgaudit_installed(major)
    if mode == "pgaudit" and not pgaudit:
        pytest.skip(f"pgaudit is not installed for PostgreSQL {major} (Debian's postgresql-{major}-pgaudit; the "
                    "wheel builds have none): the fallback test covers this version")
    if mode == "fallback" and pgaudit:
        pytest.skip(f"pgaudit is installed for PostgreSQL {major}, so db-enable-audit uses it there")
    with local_environment(tmp_path / f"pg{major}", major) as local:
        assert has_pgaudit(local) == pgaudit
        enable_pgaudit(local) if pgaudit else enable_fallback(local)
        again = local.make("db-enable-audit")
        assert again.returncode == 0 and "restarted" not in again.stderr, again.stderr

        first_day = datetime.now(UTC).date()
        activity(local)
        last_day = datetime.now(UTC).date()
        deadline = time.monotonic() + 60
        found = report(local, first_day, last_day)
        while not found["failed_logins"] and time.monotonic() < deadline:  # the collector writes behind
            time.sleep(1)
            found = report(local, first_day, last_day)
        assert any(e["command"] == "GRANT" and "audited" in e["statement"] for e in found["role_changes"]), found
        assert any("CREATE ROLE" in e["command"] for e in found["role_changes"])
        assert any("CREATE TABLE" in e["command"] and "audited" in e["statement"] for e in found["ddl"])
        assert [f["user"] for f in found["failed_logins"]] == ["auditee"]
        assert any(c["user"] == "cuisine" and c["client"] == "127.0.0.1" for c in found["connections"])
        assert any(s["user"] == "cuisine" and s["statements"] >= 3 for s in found["superusers"])
        if pgaudit:
            assert found["audit_source"] == "pgaudit"
            assert any(w["table"] == "public.audited" and w["command"] == "INSERT" for w in found["writes"])
        else:
            assert found["audit_source"] == "log_statement" and found["writes"] == []
            assert any("writes are not logged" in note for note in found["notes"])
        markdown = local.settings.env_dir(local.env) / "reports" / f"audit-local-{first_day}-to-{last_day}.md"
        text = markdown.read_text()
        assert "GRANT SELECT ON audited TO auditee" in text
        assert HAND_TYPED not in text + json.dumps(found)

        earlier = report(local, first_day - timedelta(days=2), first_day - timedelta(days=1))
        assert earlier["role_changes"] == [] and earlier["ddl"] == [] and earlier["failed_logins"] == []
        assert earlier["connections"] == []


def test_a_remote_environment_reads_its_audit_log_dir(tmp_path: Path) -> None:
    with local_environment(tmp_path / "pg14", 14) as local:
        local.make("db-enable-audit")
        activity(local)
        time.sleep(1)
        config = tmp_path / "remote.toml"
        config.write_text(f'[environments.remote]\ndsn = "host=127.0.0.1 port={local.env.port} user=cuisine '
                          f'dbname=cuisine"\npassfile = "{local.cluster.passfile}"\n')
        missing = cli(config, "security", "audit-report", "--env", "remote")
        assert missing.returncode == 2 and "audit_log_dir" in missing.stderr
        config.write_text(config.read_text() + f'audit_log_dir = "{local.cluster.datadir / "log"}"\n')
        today = datetime.now(UTC).date().isoformat()
        read = cli(config, "security", "audit-report", "--env", "remote", "--start", today, "--end", today, "--json",
                   extra={"X": STRONG})
        assert read.returncode == 0, read.stderr
        assert json.loads(read.stdout)["log_dir"] == str(local.cluster.datadir / "log")


def test_a_remote_server_is_told_to_restart_and_a_second_run_finishes(tmp_path: Path) -> None:
    if not pgaudit_installed(15):
        pytest.skip("needs pgaudit for PostgreSQL 15 (Debian's postgresql-15-pgaudit)")
    with local_environment(tmp_path / "pg15", 15) as local:
        config = tmp_path / "remote.toml"
        config.write_text(f'[environments.remote]\ndsn = "host=127.0.0.1 port={local.env.port} user=cuisine '
                          f'dbname=cuisine"\npassfile = "{local.cluster.passfile}"\n')
        pid = local.cluster.status().pid
        first = cli(config, "security", "enable-audit", "--env", "remote", "--json")
        assert first.returncode == 0, first.stderr
        pending = json.loads(first.stdout)
        assert pending["restart_pending"] and not pending["complete"] and "run make db-enable-audit" in \
            pending["statement"]
        assert local.cluster.status().pid == pid, "a remote server is never restarted by the tool"
        local.cluster.restart()  # what the remote server's operator does
        second = cli(config, "security", "enable-audit", "--env", "remote", "--json")
        finished = json.loads(second.stdout)
        assert second.returncode == 0 and finished["complete"] and finished["extension_created"], second.stderr
        with local.admin() as conn:
            assert conn.execute("SHOW pgaudit.log").fetchone() == ("ddl, role, write",)


def test_the_audit_restart_asks_whoever_calls_the_service(tmp_path: Path) -> None:
    """security/audit_setup.enable_audit owns the rule, not the CLI: a restart that loads pgaudit needs `yes` or the
    environment's name typed on every environment; called directly without it, it refuses (exit 4) and no setting
    is changed."""
    from cuisine_db.errors import EXIT_REFUSED, RefusedError
    from cuisine_db.security import enable_audit

    major = next((v for v in (*VERSIONS, 15) if pgaudit_installed(v)), None)
    if major is None:
        pytest.skip("no PostgreSQL build here has pgaudit, so db-enable-audit never restarts")
    with local_environment(tmp_path / f"pg{major}", major) as local:
        auto_conf = local.cluster.datadir / "postgresql.auto.conf"
        before = auto_conf.read_text()
        with pytest.raises(RefusedError, match="needs confirmation") as refused:
            enable_audit(local.settings, local.env)
        assert refused.value.exit_code == EXIT_REFUSED
        with pytest.raises(RefusedError, match="did not match"):
            enable_audit(local.settings, local.env, ask=lambda _action, _word: "production")
        protected = local.env.model_copy(update={"protected": True})
        asked: list[str] = []

        def answer(_action: str, word: str) -> str:
            asked.append(word)
            return "something"

        with pytest.raises(RefusedError, match="environment's name"):
            enable_audit(local.settings, protected, ask=answer)
        assert asked == [local.name]
        assert auto_conf.read_text() == before
        with local.admin() as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
