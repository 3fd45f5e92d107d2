"""Values typed on make's command line reach the real CLI as typed: a `$1` in db-explain's query (the line
db-slow-queries prints as its hint), a leading dash in db-update-config's value (validated there, not taken for an
option). The Makefile side for every target is tests/unit/test_make_values.py."""

from __future__ import annotations

import subprocess

import pytest
from cli_support import run_make
from conftest import Project
from perf_helpers import explain_role

pytestmark = pytest.mark.parametrize("server", [18], indirect=True)


def make(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return run_make(project.config, *args)


def test_a_dollar_parameter_in_db_explain_reaches_the_cli(project: Project) -> None:
    project.cli("migrate", "up", check=True)
    explain_role(project)  # db-explain runs statements only as its own role
    query = "query=SELECT * FROM recipes WHERE user_id = $1"
    generic = make(project, "db-explain", "env=development", query, "analyze=0")
    assert generic.returncode == 0, generic.stderr
    assert "generic plan" in generic.stderr and "user_id = $1" in generic.stdout
    run = make(project, "db-explain", "env=development", query, "params=123")
    assert run.returncode == 0, run.stderr
    assert "EXPLAIN ANALYZE, rolled back" in run.stderr and "actual time" in run.stdout, run.stdout


def test_a_negative_value_reaches_db_update_config_and_is_validated_there(project: Project) -> None:
    def auto_conf() -> str:
        with project.server.admin() as conn:
            return str(conn.execute("SELECT pg_read_file('postgresql.auto.conf')").fetchone()[0])  # type: ignore[index]

    before = auto_conf()
    result = make(project, "db-update-config", "env=development", "param=max_connections", "value=-1")
    errors = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(errors) == 1 and "-1" in errors[0] and "No such option" not in errors[0], result.stderr
    assert "make db-update-config: exit 2 (bad input or usage)" in result.stderr
    assert auto_conf() == before
