"""The `cuisine-db` program's start-up: wall and CPU time of commands that stop before any work, against the
interpreter alone (`python -c pass`), in the same run.

Each command runs as an operator runs it (a new process); `backup list` and `restore database` with a
configuration file that does not exist stop right after their imports, which is the fixed cost every backup
and restore pays before pg_dump or pg_restore starts. Prints the medians as JSON.

    .venv/bin/python bench/startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("cuisine-db"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cuisine-db --help": [CLI, "--help"],
    "cuisine-db backup list --help": [CLI, "backup", "list", "--help"],
    "cuisine-db restore database --help": [CLI, "restore", "database", "--help"],
    "cuisine-db backup list (stops at the configuration)": [CLI, "backup", "list"],
    "cuisine-db restore database (stops at the configuration)": [CLI, "restore", "database"],
}


def timed(argv: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(argv, env=environ, capture_output=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    environ = {**os.environ, "CUISINE_DB_CONFIG": "/nonexistent/cuisine-db.toml"}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):  # interleaved, so a busy moment weighs on every command alike
        for name, argv in COMMANDS.items():
            runs[name].append(timed(argv, environ))
    print(json.dumps({name: {"wall_ms": round(statistics.median(w for w, _ in times) * 1000),
                             "cpu_ms": round(statistics.median(c for _, c in times) * 1000)}
                      for name, times in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
