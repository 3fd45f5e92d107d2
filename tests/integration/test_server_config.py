"""db-show-config, db-update-config and db-recommend-config on the shared server, every change undone: bad input is
one line, exit 2 and no change to postgresql.auto.conf (with a hypothesis fuzz of values); good changes are
reloaded and say whether they need a restart."""

from __future__ import annotations

import json
import re

import pytest
from cli_support import error_lines
from conftest import Project, Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from perf_helpers import auto_conf, cli_json, make

from cuisine_db.diagnose.server_config import show_config, update_config
from cuisine_db.errors import EXIT_REFUSED, RefusedError, UsageError
from cuisine_db.postgres.server_settings import alter_system, describe, validate

BAD = [
    ("max_connectionz", "200", "unknown server parameter 'max_connectionz'"),
    ("max_connections", "0", "'0' is out of range for max_connections"),
    ("max_connections", "9999999", "is out of range for max_connections"),
    ("work_mem", "64XB", "'XB' is not a unit work_mem accepts"),
    ("work_mem", "64mb", "'mb' is not a unit work_mem accepts"),
    ("statement_timeout", "64MB", "'MB' is not a unit statement_timeout accepts"),
    ("max_connections", "200; DROP TABLE users", "max_connections takes a number"),
    ("work_mem", "64MB'; ALTER SYSTEM SET fsync = off; --", "work_mem takes a number with a unit"),
    ("search_path", "public; DROP TABLE users", "looks like SQL"),
    ("wal_level", "everything", "is not a value of wal_level"),
    ("x'; DROP TABLE users; --", "1", "is not a parameter name"),
]


def test_bad_updates_are_refused_and_change_nothing(server: Server, project: Project) -> None:
    before = auto_conf(server)
    for param, value, expected in BAD:
        with pytest.raises(UsageError, match=re.escape(expected)) as caught:
            update_config(project.settings, project.env(), param, value)
        assert caught.value.exit_code == 2
    assert auto_conf(server) == before
    # Through make, as the runbook types it: one line on stderr, exit 2.
    for param, value, expected in (BAD[0], BAD[4], BAD[7]):
        result = make(project, "db-update-config", f"param={param}", f"value={value}")
        lines = error_lines(result.stderr)
        assert "Error 2" in result.stderr and len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ") and expected in lines[0]
    assert auto_conf(server) == before


def test_update_reload_restart_notice_and_reset(server: Server, project: Project) -> None:
    before = auto_conf(server)
    env = project.env()
    try:
        changed = make(project, "db-update-config", "param=work_mem", "value=48MB")
        assert changed.returncode == 0, changed.stderr
        assert "work_mem: 4MB -> 48MB" in changed.stderr and "in effect now: work_mem = 48MB" in changed.stderr
        needs = update_config(project.settings, env, "max_connections", "60")
        assert needs.needs_restart and needs.pending_restart and not needs.restarted
        shown = show_config(project.settings, env)
        assert shown.pending_restart == ["max_connections"]
        rows = {row.name: row for row in shown.settings}
        assert rows["work_mem"].source == "configuration file" and rows["work_mem"].value == "49152kB"
        assert rows["shared_preload_libraries"].needs_restart
        refused = make(project, "db-update-config", "env=production", "param=work_mem", "value=8MB")
        assert "Error 4" in refused.stderr and "yes=1" in error_lines(refused.stderr)[0]
        with pytest.raises(UsageError, match="local clusters only"):
            update_config(project.settings, env, "work_mem", "8MB", restart=True)
        assert "work_mem = '48MB'" in auto_conf(server)
    finally:
        for param in ("work_mem", "max_connections"):
            update_config(project.settings, env, param, None)
    assert auto_conf(server) == before
    with server.admin() as conn:
        assert not describe(conn, "max_connections").pending_restart


def test_the_update_service_asks_for_confirmation_whoever_calls_it(server: Server, project: Project) -> None:
    """diagnose/server_config.update_config owns the protected-environment rule, not the CLI: called directly on
    production without confirmation (set or reset) it refuses (exit 4) and postgresql.auto.conf is untouched."""
    before = auto_conf(server)
    production = project.env("production")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        update_config(project.settings, production, "work_mem", "8MB")
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="needs confirmation"):
        update_config(project.settings, production, "work_mem", None)
    with pytest.raises(RefusedError, match="did not match"):
        update_config(project.settings, production, "work_mem", "8MB", ask=lambda _: "development")
    assert auto_conf(server) == before


NUMERIC = ["max_connections", "work_mem", "shared_buffers", "statement_timeout", "random_page_cost",
           "checkpoint_completion_target", "log_min_duration_statement"]
VALUES = st.one_of(
    st.text(max_size=24),
    st.from_regex(r"\A[+-]?[0-9]{0,12}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})? ?(B|kB|MB|GB|TB|us|ms|s|min|h|d|mb|x)?\Z"),
    st.sampled_from(["1; SELECT pg_sleep(10)", "' OR 1=1 --", "64MB'; DROP TABLE users; --", "1e400", "nan",
                     "-1", "0x10", "\uff12\uff10\uff10", "200\n", "on", "DEFAULT"]),  # fullwidth digits
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([*NUMERIC, "autovacuum", "wal_level", "search_path"]), VALUES)
def test_fuzzed_values_are_refused_whole_or_accepted_by_the_server_too(server: Server, param: str, value: str) -> None:
    before = auto_conf(server)
    with server.admin() as conn:
        try:
            [change] = alter_system(conn, {param: value})
        except UsageError:
            assert auto_conf(server) == before
            return
        try:
            row = conn.execute("SELECT count(*) FROM pg_file_settings WHERE name = %s AND error IS NOT NULL "
                               "AND error <> 'setting could not be applied'", (param,)).fetchone()
            assert row == (0,), f"the server disagrees with {param} = {value!r}"
            assert change.new.strip() == change.new and "\n" not in change.new
        finally:
            alter_system(conn, {param: None})
    assert auto_conf(server) == before


def test_recommendations_for_a_remote_server_are_update_config_lines(server: Server, project: Project) -> None:
    missing = make(project, "db-recommend-config")
    assert "Error 2" in missing.stderr and "ram=16GB" in error_lines(missing.stderr)[0]
    with project.connect() as conn:  # a query that spills: evidence for work_mem
        conn.execute("SET work_mem = '64kB'")
        conn.execute("SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s")
    advice = cli_json(project, "config", "recommend", "--ram", "8GB", "--cpus", "4", "--disk", "ssd")
    found = {row["name"]: row for row in advice["recommendations"]}
    assert found["shared_buffers"]["recommended"] == "2GB" and found["effective_cache_size"]["recommended"] == "6GB"
    assert found["random_page_cost"]["recommended"] == "1.1"
    assert found["effective_io_concurrency"]["recommended"] == "200"
    assert found["maintenance_work_mem"]["recommended"] == "512MB"
    assert any("temporary files" in reason for reason in found["work_mem"]["reasons"])
    assert found["shared_buffers"]["command"] == \
        "make db-update-config env=development param=shared_buffers value=2GB restart=1"
    # Every suggested line is accepted by db-update-config's validation.
    with server.admin() as conn:
        for row in advice["changes"]:
            validate(describe(conn, row["name"]), row["recommended"])
    applied = make(project, *found["random_page_cost"]["command"].split()[1:])
    try:
        assert applied.returncode == 0, applied.stderr
        again = json.loads(project.cli("config", "recommend", "--ram", "8GB", "--json").stdout)
        assert "random_page_cost" not in {row["name"] for row in again["changes"]}
    finally:
        update_config(project.settings, project.env(), "random_page_cost", None)
