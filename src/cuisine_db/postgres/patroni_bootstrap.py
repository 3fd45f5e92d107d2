"""The command of Patroni's custom bootstrap `cuisine_restore` (patroni_embedded.Bootstrap), run by Patroni as the
member's OS user: it moves the backup db-restore laid down (`--staged`, beside the member's data directory) into
the data directory Patroni names (`--datadir`), which must be empty. Patroni then starts it with the recovery
settings of the method (the toolkit's `wal fetch` as restore_command, the target) and waits for the promotion.

It only renames: laying the backup down needs the repository and its keys, which only root's cuisine-db reads
(backup/patroni_restore.py does it before Patroni starts)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cuisine_restore", description=__doc__)
    parser.add_argument("--staged", required=True, type=Path)
    parser.add_argument("--datadir", required=True, type=Path)
    parser.add_argument("--scope", default="")
    args = parser.parse_args(argv)
    staged: Path = args.staged
    datadir: Path = args.datadir
    if not (staged / "PG_VERSION").is_file():
        print(f"cuisine_restore: no laid-down backup at {staged}: run make db-restore again", file=sys.stderr)
        return 1
    if datadir.exists():
        if any(datadir.iterdir()):
            print(f"cuisine_restore: {datadir} is not empty: nothing was moved", file=sys.stderr)
            return 1
        datadir.rmdir()
    os.rename(staged, datadir)
    print(f"cuisine_restore: {staged} moved to {datadir} for scope {args.scope}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
