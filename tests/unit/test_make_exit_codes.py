"""Exit codes through make: GNU make exits 2 whenever a recipe fails, so every target names the CLI's own code on
one line (`make TARGET: exit N (meaning)`), and the recipe exits with it (make's `Error N`). Real CLI calls that
need no server: a risky migration (1), an empty env= (2), a server nobody listens for (3), a protected environment
without a terminal (4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from make_support import REPO

from cuisine_db.postgres.ports import free_port

RISKY = ("-- migrate:up\nCREATE INDEX recipes_title_idx ON recipes (title);\n"
         "-- migrate:down\nDROP INDEX recipes_title_idx;\n")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exit-codes")
    (root / "db" / "migrations").mkdir(parents=True)
    (root / "db" / "migrations" / "20250101000000_risky.sql").write_text(RISKY)
    dsn = f"postgresql://cuisine@127.0.0.1:{free_port()}/cuisine"  # nothing listens there
    path = root / "cuisine-db.toml"
    path.write_text(f'default_env = "gone"\n[environments.gone]\ndsn = "{dsn}"\n'
                    f'[environments.guarded]\ndsn = "{dsn}"\nprotected = true\n')
    return path


def environment(config: Path) -> dict[str, str]:
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config)}
    environ.pop("CUISINE_DB_ENV", None)
    return environ


@pytest.mark.parametrize(("args", "code", "meaning", "cli_args"), [
    (["db-migrate-lint"], 1, "a check found problems, or the work failed", ["migrate", "lint"]),
    (["db-migrate-status", "env="], 2, "bad input or usage", ["migrate", "status", "--env", ""]),
    (["db-size", "env=gone"], 3, "the server or repository cannot be reached", ["size", "--env", "gone"]),
    (["db-seed", "env=guarded"], 4, "refused by a safety rail", ["seed", "--env", "guarded"]),
])
def test_a_failing_target_names_the_cli_exit_code(config: Path, args: list[str], code: int, meaning: str,
                                                  cli_args: list[str]) -> None:
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], env=environment(config),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2  # all GNU make can say
    lines = result.stderr.splitlines()
    assert f"make {args[0]}: exit {code} ({meaning})" in lines, result.stderr
    assert re.fullmatch(rf"make: \*\*\* \[Makefile:\d+: {args[0]}\] Error {code}", lines[-1]), result.stderr
    assert len([line for line in lines if not line.startswith("make")]) == 1, result.stderr  # the CLI's one line
    # What schedulers and Nagios run: the CLI itself, whose exit status is the code.
    direct = subprocess.run([sys.executable, "-m", "cuisine_db", *cli_args], env=environment(config),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert direct.returncode == code, direct.stderr


def test_a_successful_target_adds_nothing(config: Path, tmp_path: Path) -> None:
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    quiet = tmp_path / "cuisine-db.toml"
    quiet.write_text(config.read_text())
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "db-migrate-lint"],
                            env=environment(quiet), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "exit " not in result.stderr, result.stderr
