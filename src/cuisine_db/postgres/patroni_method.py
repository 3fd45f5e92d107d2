"""`cuisine-db replica seed-member`: the toolkit's entry in Patroni's `create_replica_methods` (`cuisine_db`).

Patroni runs it as the member's OS user when the member has no data directory, appending `--scope= --role=
--datadir= --connstring=`. It installs the data directory `db-create-replica` laid down for this member from the
repository's newest physical backup (`--seed FOLDER`: `FOLDER/data`, with the backup's name in `FOLDER/BACKUP`): a
rename on the same file system, so the leader copies nothing. Patroni then starts it as a standby whose
`restore_command` (`wal fetch`, in the member's patroni.yml while it catches up) replays the archive from the
backup's start until streaming takes over.

The repository and the age identity are the operator's (docs/security.md): the member's OS user never reads a
backup, so the decryption and the lay-down happen in db-create-replica and only the install happens here. With
nothing staged it exits 1 saying so, and Patroni goes on to its next method (`basebackup`, configured only for
members that have no backup staged). Standard library only: Patroni runs it with a bare environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA = "data"
BACKUP_NAME = "BACKUP"


def _options(argv: list[str]) -> dict[str, str]:
    """`--name=value` or `--name value` pairs; Patroni's own (scope, role, connstring, ...) are accepted and kept."""
    found: dict[str, str] = {}
    index = 0
    while index < len(argv):
        name, equals, value = argv[index].partition("=")
        index += 1
        if not name.startswith("--"):
            raise ValueError(f"unexpected argument {argv[index - 1]!r}")
        if not equals:
            if index >= len(argv):
                raise ValueError(f"{name} needs a value")
            value = argv[index]
            index += 1
        found[name[2:]] = value
    return found


def install(seed: Path, datadir: Path) -> str | None:
    """Move the staged data directory into place; the backup's name, or None when nothing is staged."""
    staged = seed / DATA
    if not (staged / "PG_VERSION").is_file():
        return None
    if datadir.exists():
        if any(datadir.iterdir()):
            raise FileExistsError(f"{datadir} is not empty: Patroni empties it before calling a method")
        datadir.rmdir()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, datadir)
    try:
        return (seed / BACKUP_NAME).read_text(encoding="utf-8").strip() or "a backup"
    except OSError:
        return "a backup"


def main(argv: list[str]) -> int:
    def say(line: str) -> None:
        sys.stderr.write(f"cuisine-db replica seed-member: {line}\n")

    try:
        options = _options(argv)
        seed, datadir = Path(options["seed"]), Path(options["datadir"])
    except (ValueError, KeyError) as exc:
        say(f"error: {exc} (usage: seed-member --seed FOLDER --datadir PATH, as Patroni calls it)")
        return 2
    try:
        name = install(seed, datadir)
    except OSError as exc:
        say(f"error: could not install the staged backup: {exc}")
        return 1
    if name is None:
        say(f"nothing is staged in {seed} (db-create-replica lays the newest physical backup down there): "
            "Patroni's next method builds this member")
        return 1
    say(f"installed {name} from the repository into {datadir}; it replays the archive, then streams")
    return 0
