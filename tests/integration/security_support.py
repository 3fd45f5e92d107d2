"""Helpers for the security tests: make and CLI runs, dedicated local clusters, watching for leaked secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cli_support
import psycopg
from cli_support import run_cli, run_make
from conftest import available

from cuisine_db.config import Environment, Settings, load_settings
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.local import cluster_for, ensure_up
from cuisine_db.postgres.ports import free_port

STRONG = "kitchen-lemon-orbit-7-Quay"
BIN = str(Path(sys.executable).parent)


def run_env(config: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The shared runner's environment, with this interpreter's folder first on PATH (the fixes run its tools)."""
    return cli_support.run_env(config, {"PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(extra or {})})


def make(config: Path, *args: str, input_text: str | None = None,
         extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_make(config, *args, input_text=input_text, extra={"PATH": run_env(config)["PATH"], **(extra or {})})


def cli(config: Path, *args: str, input_text: str | None = None, extra: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(config, *args, input_text=input_text, cwd=cwd or config.parent,
                   extra={"PATH": run_env(config)["PATH"], **(extra or {})})


@dataclass
class LocalEnv:
    """A dedicated local cluster behind an environment, as `cuisine-db.toml` would define one."""

    config: Path
    settings: Settings
    env: Environment

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def cluster(self) -> LocalCluster:
        return cluster_for(self.settings, self.env)

    def admin(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.env.port, user="cuisine", dbname=dbname or "cuisine",
                               passfile=str(self.cluster.passfile), autocommit=True)

    def cli(self, *args: str, input_text: str | None = None,
            extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return cli(self.config, *args, input_text=input_text, extra=extra)

    def make(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return make(self.config, *args, input_text=input_text)


@contextmanager
def local_environment(folder: Path, major: int, name: str = "local") -> Iterator[LocalEnv]:
    """A new local cluster of `major`, destroyed afterwards whatever happens."""
    if available(major) is None:
        import pytest

        pytest.skip(f"PostgreSQL {major} is not installed on this machine (Debian's postgresql-{major})")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "cuisine-db.toml"
    config.write_text(f'default_env = "{name}"\n[environments.{name}]\nport = {free_port()}\n'
                      f"postgres_version = {major}\n[environments.{name}.server_settings]\nfsync = false\n")
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env(name)
    try:
        ensure_up(settings, env)
        yield LocalEnv(config, settings, env)
    finally:
        cluster_for(settings, env).destroy()


@dataclass
class ProcessWatch:
    """Samples every process's argv while commands run, recording any that carries one of the secrets."""

    secrets: list[str]
    ignore_pids: set[int] = field(default_factory=set)
    ignore_lines: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    found: list[tuple[int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _scan(self) -> None:
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as handle:
                        line = handle.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if "cuisine_db" in line or "cuisine-db" in line:
                    self.seen.append(line)
                if any(secret in line for secret in self.secrets):
                    self.found.append((int(entry), line))

    @property
    def leaks(self) -> list[str]:
        """Processes whose argv held a secret, other than those the test typed it into on purpose."""
        # A process make forks shows make's own argv until it execs the recipe's shell: that is make, too.
        return [f"{pid}: {line}" for pid, line in self.found
                if pid not in self.ignore_pids and line not in self.ignore_lines]

    def __enter__(self) -> ProcessWatch:
        self._thread = threading.Thread(target=self._scan, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def popen_watched(watch: ProcessWatch, argv: list[str], config: Path, *, input_text: str | None = None,
                  extra: dict[str, str] | None = None, owns_secret: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command while `watch` samples argv; `owns_secret` exempts the started process itself (make's own
    argv holds what the operator typed after `make`, which is the shell-history warning's point)."""
    child = subprocess.Popen(argv, env=run_env(config, extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=config.parent)
    if owns_secret:
        watch.ignore_pids.add(child.pid)
        watch.ignore_lines.add(" ".join(argv) + " ")
    stdout, stderr = child.communicate(input_text, timeout=300)
    return subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)
