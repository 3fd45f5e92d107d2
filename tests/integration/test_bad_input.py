"""Bad input through the runbook's make targets: one clear line, exit code 2 from the CLI, nothing changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_support import run_make
from conftest import REPO, Project


def make(project: Project, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_make(config or project.config, *args)


def snapshot(project: Project) -> tuple[list[str], list[str], bool]:
    with project.connect() as conn:
        applied = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    files = sorted(path.name for path in (project.root / "db" / "migrations").iterdir())
    return applied, files, (REPO / "db" / "migrations" / "x.sql").exists()


def cli_error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("make")]


@pytest.mark.postgres(max=14, reason="make's variables and the CLI's validation are the same on every server version")
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["db-create-migration", "name=../../x"], "bad migration name '../../x'"),
        (["db-create-migration", "name=x'; touch /tmp/pwned; '"], "bad migration name"),
        (["db-create-migration", "name=create_users"], "already exists"),
        (["db-migrate", "env=nope"], "unknown environment 'nope'"),
        (["db-rollback", "env=development", "steps=-1"], "steps must be a positive number"),
        (["db-rollback", "env=development", "steps=two"], "Invalid value for '--steps'"),
        (["db-rollback", "env=development", "version=abc"], "bad migration version 'abc'"),
        (["db-rollback", "env=development", "version=20990101000000"], "is not applied"),
        (["db-rollback", "env=development"], "give either steps=N or version="),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(project: Project, target: list[str], expected: str) -> None:
    assert project.cli("migrate", "up").returncode == 0
    before = snapshot(project)
    result = make(project, *target)
    lines = cli_error_lines(result.stderr)
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    # make reports the CLI's own exit code in its last line.
    assert "Error 2" in result.stderr
    assert snapshot(project) == before
    assert not Path("/tmp/pwned").exists()


def test_an_unreadable_or_invalid_config_is_one_line_and_exit_2(project: Project, tmp_path: Path) -> None:
    assert project.cli("migrate", "up").returncode == 0
    before = snapshot(project)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text('[environments.development]\nport = 55999\nprotectd = true\n')
    cases = {
        tmp_path: "cannot read configuration file",           # a directory: unreadable as a file
        tmp_path / "absent.toml": "does not exist",
        binary: "not valid TOML",
        unknown_key: "environments.development.protectd: unknown key",
    }
    for config, expected in cases.items():
        result = make(project, "db-migrate", "env=development", config=config)
        lines = cli_error_lines(result.stderr)
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Error 2" in result.stderr
    assert snapshot(project) == before
