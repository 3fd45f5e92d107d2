"""The one way subprocesses run: argv as a list, secrets only through the environment, errors quoting stderr."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from cuisine_db.errors import UnavailableError

# Variables that would silently redirect a PostgreSQL client tool somewhere else.
_LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE")


class ToolError(UnavailableError):
    """A PostgreSQL program exited non-zero."""

    def __init__(self, tool: str, returncode: int, stderr: str) -> None:
        tail = "\n".join(line for line in stderr.strip().splitlines()[-5:])
        super().__init__(f"{tool} failed (exit {returncode}): {tail or 'no error output'}")
        self.tool = tool
        self.returncode = returncode
        self.stderr = stderr


def tool_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without stray libpq settings, plus what the caller adds."""
    environ = {key: value for key, value in os.environ.items() if key not in _LIBPQ_VARIABLES}
    environ.setdefault("LC_ALL", "C.UTF-8")
    if extra:
        environ.update(extra)
    return environ


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    drop: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion, capturing its output; raise ToolError on failure when check is set.
    `drop` names variables of this process's environment the program must not inherit."""
    args = [str(part) for part in argv]
    environ = {key: value for key, value in tool_environ(env).items() if key not in drop}
    # Switching user must also switch group and drop root's supplementary groups.
    group = pwd.getpwnam(user).pw_gid if user else None
    try:
        result = subprocess.run(
            args,
            env=environ,
            cwd=cwd,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=user,
            group=group,
            extra_groups=[] if user else None,
        )
    except FileNotFoundError:
        raise UnavailableError(f"program not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise UnavailableError(f"{Path(args[0]).name} did not finish within {timeout:.0f}s") from None
    if check and result.returncode != 0:
        raise ToolError(Path(args[0]).name, result.returncode, result.stderr or result.stdout)
    return result


def run_attached(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None) -> int:
    """Run an interactive program (psql) on this terminal and return its exit code."""
    args = [str(part) for part in argv]
    try:
        return subprocess.run(args, env=tool_environ(env), check=False).returncode
    except FileNotFoundError:
        raise UnavailableError(f"program not found: {args[0]}") from None


def _die_with_parent() -> Any:
    """A pre-exec hook: the child receives SIGKILL when this process dies, so a killed command leaves no
    orphan. prctl is looked up here, before fork: the child only calls it (no loader locks after fork)."""
    import ctypes
    import signal

    if os.uname().sysname != "Linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    kill = int(signal.SIGKILL)
    return lambda: prctl(pr_set_pdeathsig, kill)


def spawn(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    drop: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start a program whose output the caller streams (pg_dump, pg_restore), or that it waits for later; it dies
    if this process dies. `drop` names variables of this process's environment the program must not inherit.

    Linux sends the death signal when the *thread* that started the child ends: start children from the
    thread that waits for them (the main thread), never from a short-lived worker thread.
    """
    args = [str(part) for part in argv]
    group = pwd.getpwnam(user).pw_gid if user else None
    try:
        environ = {key: value for key, value in tool_environ(env).items() if key not in drop}
        return subprocess.Popen(args, env=environ, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
                                preexec_fn=_die_with_parent(), user=user, group=group,
                                extra_groups=[] if user else None)
    except FileNotFoundError:
        raise UnavailableError(f"program not found: {args[0]}") from None


def daemon(argv: Sequence[str | Path], *, user: str | None, cwd: Path, stdout: IO[Any],
           env: Mapping[str, str] | None = None) -> int:
    """Start a long-lived server (etcd, Patroni) in a session of its own that outlives this process; its pid.
    Output goes to `stdout` (a log file), input is closed."""
    args = [str(part) for part in argv]
    group = pwd.getpwnam(user).pw_gid if user else None
    try:
        child = subprocess.Popen(args, env=tool_environ(env), stdin=subprocess.DEVNULL, stdout=stdout,
                                 stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True, user=user, group=group,
                                 extra_groups=[] if user else None)
    except FileNotFoundError:
        raise UnavailableError(f"program not found: {args[0]}") from None
    return child.pid
