"""A physical restore never lays a backup down under Patroni's members behind its back: on a Patroni cluster the
tool cannot stop (one elsewhere, named by its REST endpoints) db-apply-logs and restore open are refused with exit
4 in one line naming the procedure, and nothing is written — no Patroni answers behind these ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import error_lines, run_cli, run_make

from cuisine_db.config import load_settings
from cuisine_db.postgres.ports import free_port


def remote_patroni(tmp_path: Path) -> Path:
    config = tmp_path / "cuisine-db.toml"
    config.write_text('[environments.ha]\ndsn = "host=ignored user=cuisine_ops dbname=cuisine"\n'
                      f'[environments.ha.patroni]\nrest = ["http://127.0.0.1:{free_port()}"]\n')
    return config


@pytest.mark.parametrize("command", [("make", "db-apply-logs", "env=ha"),
                                     ("make", "db-apply-logs", "env=ha", "target=2026-01-01 00:00:00+00"),
                                     ("cli", "restore", "open", "--env", "ha")])
def test_a_physical_restore_step_on_a_remote_patroni_cluster_is_refused_with_exit_4(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    config = remote_patroni(tmp_path)
    runner = run_make if command[0] == "make" else run_cli
    result = runner(config, *command[1:])
    if command[0] == "make":  # make exits 2 itself and says the command's code
        assert result.returncode == 2 and f"{command[1]}: exit 4 (refused" in result.stderr, result.stderr
    else:
        assert result.returncode == 4, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Patroni environment ha is refused" in lines[0] and "patronictl remove" in lines[0]
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert not (settings.env_dir(settings.env("ha")) / "restore.json").exists()
