"""db-update-config's rails (issue 16): memory the host cannot hold is refused, close to it is a warning, and settings
that run a program or load a library need yes=1 on every environment; nothing is written when refused."""

from __future__ import annotations

import pytest
from cli_support import error_lines
from conftest import Project, Server
from perf_helpers import auto_conf, make

from cuisine_db.config import Environment
from cuisine_db.diagnose.config_advice import _machine_ram
from cuisine_db.diagnose.server_config import MEMORY_WARNING_SHARE, host_memory, runs_code, update_config
from cuisine_db.errors import RefusedError


def worst_case(project: Project, work_mem_bytes: int) -> int:
    """The formula, re-derived from pg_settings: shared_buffers + connections x work_mem + maintenance memory."""
    with project.connect() as conn:
        rows = dict(conn.execute(
            "SELECT name, setting::bigint * CASE unit WHEN '8kB' THEN 8192 WHEN 'kB' THEN 1024 ELSE 1 END "
            "FROM pg_settings WHERE name IN ('shared_buffers', 'max_connections', 'maintenance_work_mem', "
            "'autovacuum_work_mem', 'autovacuum_max_workers')").fetchall())
    autovacuum = rows["autovacuum_work_mem"] if rows["autovacuum_work_mem"] > 0 else rows["maintenance_work_mem"]
    return int(rows["shared_buffers"] + rows["max_connections"] * work_mem_bytes
               + rows["autovacuum_max_workers"] * autovacuum + rows["maintenance_work_mem"])


def test_work_mem_of_a_terabyte_is_refused_and_nothing_is_written(server: Server, project: Project) -> None:
    before = auto_conf(server)
    result = make(project, "db-update-config", "param=work_mem", "value=1TB")
    [line] = error_lines(result.stderr)
    assert "Error 4" in result.stderr or result.returncode == 4, result.stderr
    assert line.startswith("error: work_mem = 1TB would let the server need up to")
    assert "this machine's (the dsn points at this host)" in line
    with pytest.raises(RefusedError, match="as given"):
        update_config(project.settings, project.env(), "work_mem", "256MB", ram="8GB")
    with pytest.raises(RefusedError, match="shared_buffers"):
        update_config(project.settings, project.env(), "shared_buffers", f"{_machine_ram() // 1024**2 + 1}MB")
    assert auto_conf(server) == before


def test_close_to_the_host_memory_is_a_warning(server: Server, project: Project) -> None:
    before = auto_conf(server)
    work = 8 * 1024**2
    ram = int(worst_case(project, work) / ((MEMORY_WARNING_SHARE + 1) / 2))  # between the warning share and all
    try:
        changed = update_config(project.settings, project.env(), "work_mem", "8MB", ram=f"{ram // 1024**2}MB")
        assert any("in the worst case the server needs" in note for note in changed.notes), changed.notes
        quiet = update_config(project.settings, project.env(), "work_mem", "8MB", ram="1TB")
        assert quiet.notes == []
    finally:
        update_config(project.settings, project.env(), "work_mem", None)
    assert auto_conf(server) == before


@pytest.mark.parametrize(("param", "value"), [("archive_command", "touch /tmp/pwned-by-config"),
                                              ("shared_preload_libraries", "pg_stat_statements,auto_explain"),
                                              ("restore_command", "cp /x %p")])
def test_settings_that_run_code_need_yes_even_on_development(server: Server, project: Project, param: str,
                                                             value: str) -> None:
    before = auto_conf(server)
    refused = project.cli("config", "update", param, value, "--env", "development")
    assert refused.returncode == 4, refused.stderr
    assert "run a program or load a library" in refused.stderr and "yes=1" in refused.stderr
    assert auto_conf(server) == before
    if param == "archive_command":
        done = project.cli("config", "update", param, value, "--env", "development", "--yes")
        try:
            assert done.returncode == 0, done.stderr
            assert "touch /tmp/pwned-by-config" in auto_conf(server)
        finally:
            update_config(project.settings, project.env(), param, None)
        assert auto_conf(server) == before


def test_which_settings_run_code_and_whose_memory_is_used() -> None:
    assert all(runs_code(name) for name in ("archive_command", "ssl_passphrase_command", "archive_cleanup_command",
                                            "recovery_end_command", "session_preload_libraries",
                                            "local_preload_libraries", "dynamic_library_path", "Archive_Command"))
    assert not any(runs_code(name) for name in ("work_mem", "archive_mode", "archive_timeout"))
    remote = Environment(name="prod", dsn="host=db.internal dbname=cuisine")
    assert host_memory(remote, None) is None
    assert host_memory(remote, "16GB") == (16 * 1024**3, "as given (ram=)")
    loopback = Environment(name="prod", dsn="host=127.0.0.1 port=5432 dbname=cuisine")
    found = host_memory(loopback, None)
    assert found is not None and found[0] == _machine_ram()
