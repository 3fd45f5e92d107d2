"""Running cuisine-db and the runbook's make targets from tests, as an operator does: the one runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cuisine_db"]


def run_env(config: Path | str, extra: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment with `config` as the configuration and no CUISINE_DB_ENV of the caller's."""
    environ = {**os.environ, "CUISINE_DB_CONFIG": str(config), **(extra or {})}
    for name in ("CUISINE_DB_ENV", *drop):
        environ.pop(name, None)
    return environ


def run_cli(config: Path | str, *args: str, extra: Mapping[str, str] | None = None, drop: Iterable[str] = (),
            input_text: str | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`cuisine-db ARGS` against `config`; stdin is `input_text`, or nothing (never the test's terminal)."""
    return subprocess.run([*CLI, *args], env=run_env(config, extra, drop), cwd=cwd, input=input_text,
                          stdin=subprocess.DEVNULL if input_text is None else None, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_make(config: Path | str, *args: str, extra: Mapping[str, str] | None = None, drop: Iterable[str] = (),
             input_text: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A runbook target through make (`make db-backup env=...`), as an operator types it."""
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], env=run_env(config, extra, drop),
                          input=input_text, stdin=subprocess.DEVNULL if input_text is None else None,
                          capture_output=True, text=True, timeout=timeout, check=False)


def error_lines(stderr: str) -> list[str]:
    """What the CLI said on stderr, without make's own 'Error N' line."""
    return [line for line in stderr.splitlines() if not line.startswith("make")]
