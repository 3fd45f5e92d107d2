"""`cuisine-db wal push|fetch|check`: the light entry point PostgreSQL runs as archive_command and restore_command.

argparse and the standard library only, so a call starts in tens of milliseconds (`python -X importtime`
shows it). Errors are one line on stderr, which the server writes to its log. Secrets never appear in
arguments: the configuration is named by path, and S3 credentials come from the environment or the
credentials file (access.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FETCH_FAILED = 254  # > 125: PostgreSQL stops recovery instead of taking the failure for the end of the archive


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuisine-db wal")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("push", "archive one WAL file (archive_command = '... wal push ... %%p')"),
                       ("fetch", "restore one WAL file (restore_command = '... wal fetch ... %%f %%p')"),
                       ("check", "check that this OS user can archive (and, with --fetch, restore)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", required=True, type=Path, help="cuisine-db.toml, by absolute path")
        command.add_argument("--env", required=True, help="the environment whose archive this is")
        command.add_argument("--spool", type=Path, help="spool folder (default: <state_dir>/<env>/wal-spool)")
        if name == "push":
            command.add_argument("path", help="%%p: the file to archive, relative to the data directory")
        elif name == "fetch":
            command.add_argument("--identity-file", type=Path, help="an age identity file to decrypt with")
            command.add_argument("name", help="%%f: the file PostgreSQL wants")
            command.add_argument("destination", help="%%p: where to put it")
        else:
            command.add_argument("--fetch", action="store_true", help="also check decryption keys")
    return parser


def _say(command: str, message: str) -> None:
    sys.stderr.write(f"cuisine-db wal {command}: {' '.join(message.split())}\n")


def _describe(exc: BaseException) -> str:
    from cuisine_db.errors import CuisineDbError

    if isinstance(exc, CuisineDbError):
        return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def _push(args: argparse.Namespace) -> int:
    from cuisine_db.backup.wal import access, push

    try:
        loaded = access.load(args.config, args.env, spool=args.spool)
        path = Path(args.path)
        outcomes = push.push(loaded, path if path.is_absolute() else Path.cwd() / path)
    except Exception as exc:
        _say("push", f"{Path(args.path).name}: {_describe(exc)}")
        return 1
    ahead = [o.name for o in outcomes[1:]]
    if ahead:
        _say("push", f"{outcomes[0].name} {outcomes[0].state}; pushed ahead {len(ahead)}: {ahead[0]}..{ahead[-1]}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from cuisine_db.backup.wal import access, fetch

    try:
        loaded = access.load(args.config, args.env, identity_file=args.identity_file, spool=args.spool)
        destination = Path(args.destination)
        fetch.fetch(loaded, args.name, destination if destination.is_absolute() else Path.cwd() / destination)
    except fetch.NotArchived:
        return 1
    except BaseException as exc:  # anything else, bugs included, must stop recovery rather than end it
        _say("fetch", f"{args.name}: {_describe(exc)}; recovery stops here (exit {FETCH_FAILED})")
        return FETCH_FAILED
    return 0


def _check(args: argparse.Namespace) -> int:
    import socket

    from cuisine_db.backup.wal import access

    try:
        loaded = access.load(args.config, args.env, spool=args.spool)
        loaded.parsed_recipients()
        if args.fetch:
            loaded.identities()
        repository = loaded.repository()
        probe = f"wal/{loaded.env}/probe-{socket.gethostname()}-{os.getpid()}"
        repository.put_bytes(probe, b"cuisine-db wal check\n")
        repository.delete([probe])
        loaded.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(loaded.spool, os.W_OK):
            raise PermissionError(f"cannot write the spool folder {loaded.spool}")
    except Exception as exc:
        _say("check", _describe(exc))
        return 1
    sys.stdout.write(f"ok: user {os.geteuid()} can archive to {repository.url} (spool {loaded.spool})\n")
    return 0


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
        # A usage error in the restore command must stop recovery too, not read as "not archived".
        return FETCH_FAILED if code != 0 and argv[:1] == ["fetch"] else code
    return {"push": _push, "fetch": _fetch, "check": _check}[args.command](args)
