"""`cuisine-db wal push|fetch|check`: the light entry point PostgreSQL runs as archive_command and restore_command.

The standard library only, and little of it, so a call starts in a few milliseconds (`python -X importtime`
shows it): the arguments are read by a small parser of our own rather than argparse, whose import and parser
construction cost 4 ms of each segment's push. Errors are one line on stderr, which the server writes to its
log. Secrets never appear in arguments: the configuration is named by path, and S3 credentials come from the
environment or the credentials file (access.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FETCH_FAILED = 254  # > 125: PostgreSQL stops recovery instead of taking the failure for the end of the archive

USAGE = """usage: cuisine-db wal push --config PATH --env NAME [--spool PATH] path
       cuisine-db wal fetch --config PATH --env NAME [--spool PATH] [--identity-file PATH]
                            [--credentials-file PATH] [--system-id N] [--trust-unsigned] name destination
       cuisine-db wal check --config PATH --env NAME [--spool PATH] [--fetch]
       cuisine-db wal prefetch --config PATH --env NAME [--spool PATH] [--identity-file PATH]
                            [--credentials-file PATH] [--system-id N] [--until NAME] [--detach] name
       cuisine-db wal catch-up --config PATH --env NAME [--spool PATH] --pgdata PATH [ACTION ROLE SCOPE]

  push    archive one WAL file (archive_command = '... wal push ... %p')
  fetch   restore one WAL file (restore_command = '... wal fetch ... %f %p')
  check   check that this OS user can archive (and, with --fetch, restore)
  prefetch  fill the spool with the segments after `name` (wal fetch starts it; --detach: in the background)
  catch-up  after a promotion, archive the earlier timelines' complete segments pg_wal holds and the archive
            lacks (Patroni's on_role_change callback, which appends ACTION ROLE SCOPE: only a leader acts)

  --config PATH         cuisine-db.toml, by absolute path
  --env NAME            the environment whose archive this is
  --spool PATH          spool folder (default: <state_dir>/<env>/wal-spool)
  --identity-file PATH  fetch: an age identity file to decrypt with
  --credentials-file PATH  fetch: the S3 keys file (another environment's server reading this archive)
  --trust-unsigned      fetch: also take a file archived before signatures (db-apply-logs trust_unsigned=1)
  --system-id N         fetch: read the archive area of this system identifier (a backup from before an upgrade)
  --pgdata PATH         catch-up: the new leader's data directory
"""
_VALUED = {"push": ("--config", "--env", "--spool"),
           "fetch": ("--config", "--env", "--spool", "--identity-file", "--credentials-file", "--system-id"),
           "check": ("--config", "--env", "--spool"),
           "prefetch": ("--config", "--env", "--spool", "--identity-file", "--credentials-file", "--system-id",
                        "--until"),
           "catch-up": ("--config", "--env", "--spool", "--pgdata")}
_FLAGS = {"push": (), "fetch": ("--trust-unsigned",), "check": ("--fetch",), "prefetch": ("--detach",),
          "catch-up": ()}
_POSITIONAL = {"push": ("path",), "fetch": ("name", "destination"), "check": (), "prefetch": ("name",),
               "catch-up": ()}
_CALLBACK = ("action", "role", "scope")  # what Patroni appends to a callback's command



class UsageProblem(Exception):
    """Arguments that do not make a call: one line on stderr, exit 2 (FETCH_FAILED for fetch)."""


class Args:
    """The parsed command line; options absent from it are None (flags False)."""

    def __init__(self, command: str, values: dict[str, str], flags: set[str], positional: list[str]) -> None:
        self.command = command
        self.config = Path(values["--config"])
        self.env = values["--env"]
        self.spool = Path(values["--spool"]) if "--spool" in values else None
        self.identity_file = Path(values["--identity-file"]) if "--identity-file" in values else None
        self.credentials_file = Path(values["--credentials-file"]) if "--credentials-file" in values else None
        self.system_id = values.get("--system-id")
        if self.system_id is not None and not self.system_id.isdigit():
            raise UsageProblem(f"--system-id takes a system identifier (digits), not {self.system_id!r}")
        self.fetch = "--fetch" in flags
        self.trust_unsigned = "--trust-unsigned" in flags
        self.detach = "--detach" in flags
        self.until = values.get("--until")
        self.pgdata = Path(values["--pgdata"]) if "--pgdata" in values else None
        if command == "catch-up" and len(positional) == len(_CALLBACK):
            self.role: str | None = positional[1]  # ACTION ROLE SCOPE
            positional = []
        else:
            self.role = None
        named = dict(zip(_POSITIONAL[command], positional, strict=True))
        self.path = named.get("path", "")
        self.name = named.get("name", "")
        self.destination = named.get("destination", "")


def parse(argv: list[str]) -> Args:
    """`push|fetch|check` with their options (`--name value` or `--name=value`, anywhere) and positionals."""
    if not argv or argv[0] not in _VALUED:
        raise UsageProblem("expected push, fetch, check, prefetch or catch-up" + (f", not {argv[0]!r}" if argv else ""))
    command, rest = argv[0], argv[1:]
    values: dict[str, str] = {}
    flags: set[str] = set()
    positional: list[str] = []
    index = 0
    while index < len(rest):
        item = rest[index]
        index += 1
        if item == "--":
            positional += rest[index:]
            break
        if not item.startswith("-") or item == "-":
            positional.append(item)
            continue
        name, has_value, value = item.partition("=")
        if name in _FLAGS[command] and not has_value:
            flags.add(name)
        elif name in _VALUED[command]:
            if not has_value:
                if index >= len(rest):
                    raise UsageProblem(f"{name} needs a value")
                value = rest[index]
                index += 1
            values[name] = value
        else:
            raise UsageProblem(f"unknown option {item.partition('=')[0]!r} for wal {command}")
    missing = [name for name in ("--config", "--env") if name not in values]
    if missing:
        raise UsageProblem(f"wal {command} needs {' and '.join(missing)}")
    wanted = _POSITIONAL[command]
    if command == "catch-up" and len(positional) == len(_CALLBACK):
        wanted = _CALLBACK
    if len(positional) != len(wanted):
        raise UsageProblem(f"wal {command} takes {len(wanted)} argument(s) ({', '.join(wanted) or 'none'}), "
                           f"not {len(positional)}")
    return Args(command, values, flags, positional)


def _say(command: str, message: str) -> None:
    sys.stderr.write(f"cuisine-db wal {command}: {' '.join(message.split())}\n")


def _describe(exc: BaseException) -> str:
    from cuisine_db.errors import CuisineDbError

    if isinstance(exc, CuisineDbError):
        return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def _push(args: Args) -> int:
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


def _options(args: Args, spool: Path) -> list[str]:
    """The call's own options, for the prefetcher it starts."""
    options = ["--config", str(args.config), "--env", args.env, "--spool", str(spool)]
    if args.identity_file is not None:
        options += ["--identity-file", str(args.identity_file)]
    if args.credentials_file is not None:
        options += ["--credentials-file", str(args.credentials_file)]
    if args.system_id is not None:
        options += ["--system-id", args.system_id]
    return options


def _fetch(args: Args) -> int:
    from cuisine_db.backup.wal import access, fetch

    try:
        loaded = access.load(args.config, args.env, identity_file=args.identity_file, spool=args.spool,
                             credentials_file=args.credentials_file, system_identifier=args.system_id)
        destination = Path(args.destination)
        fetch.fetch(loaded, args.name, destination if destination.is_absolute() else Path.cwd() / destination,
                    _options(args, loaded.spool), trust_unsigned=args.trust_unsigned)
    except fetch.NotArchived:
        return 1
    except BaseException as exc:  # anything else, bugs included, must stop recovery rather than end it
        _say("fetch", f"{args.name}: {_describe(exc)}; recovery stops here (exit {FETCH_FAILED})")
        return FETCH_FAILED
    return 0


def _check(args: Args) -> int:
    import socket

    from cuisine_db.backup.wal import access

    try:
        loaded = access.load(args.config, args.env, spool=args.spool)
        loaded.parsed_recipients()
        loaded.signer()  # the WAL records must be signable by this user
        if args.fetch:
            loaded.identities()
        repository = loaded.repository()
        probe = f"wal/{loaded.area}/probe-{socket.gethostname()}-{os.getpid()}"
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


def _prefetch(args: Args) -> int:
    from cuisine_db.backup.wal import access, spool, wal_names

    try:
        wal_names.check(args.name)
        until = wal_names.check(args.until) if args.until else None
        loaded = access.load(args.config, args.env, identity_file=args.identity_file, spool=args.spool,
                             credentials_file=args.credentials_file, system_identifier=args.system_id)
        if args.detach:
            # Returns once the prefetcher has read its keys: the caller removes the copies it made for it after.
            spool.ready(loaded.spool, spool.start(loaded, args.name,
                                                  _options(args, loaded.spool) + (["--until", until] if until else [])))
            return 0
        from cuisine_db.backup.wal.prefetcher import Prefetcher

        return Prefetcher(loaded, args.name, until=until).run()
    except Exception as exc:
        _say("prefetch", _describe(exc))
        return 1


def _catch_up(args: Args) -> int:
    from cuisine_db.backup.wal import access, catch_up

    if args.role is not None and args.role not in catch_up.LEADER_ROLES:
        return 0  # a member that became a replica has nothing to archive
    if args.pgdata is None:
        _say("catch-up", "--pgdata names the new leader's data directory")
        return 2
    if not catch_up.archiving(args.pgdata):
        _say("catch-up", f"{args.pgdata} does not archive with cuisine-db: nothing to catch up")
        return 0
    if not catch_up.wait_promoted(args.pgdata):
        _say("catch-up", f"{args.pgdata} is still in recovery after {catch_up.PROMOTION_SECONDS:.0f}s: run "
                         "cuisine-db wal catch-up again once it leads")
        return 1
    try:
        loaded = access.load(args.config, args.env, spool=args.spool)
        result = catch_up.catch_up(loaded, args.pgdata / "pg_wal")
    except Exception as exc:
        _say("catch-up", _describe(exc))
        return 1
    for name, why in result.skipped:
        _say("catch-up", f"{name} skipped: {why}")
    for name, why in result.failed:
        _say("catch-up", f"{name} FAILED: {why}")
    stored = f"{len(result.stored)} stored" + (f" ({result.stored[0]}..{result.stored[-1]})" if result.stored else "")
    _say("catch-up", f"timeline {result.timeline or '-'}: earlier timelines' segments in pg_wal: {stored}, "
                     f"{len(result.present)} already archived, {len(result.failed)} failed")
    return 1 if result.failed else 0


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(USAGE)
        return 0
    try:
        args = parse(argv)
    except UsageProblem as exc:
        sys.stderr.write(f"cuisine-db wal: error: {exc} (cuisine-db wal --help shows the usage)\n")
        # A usage error in the restore command must stop recovery too, not read as "not archived".
        return FETCH_FAILED if argv[:1] == ["fetch"] else 2
    return {"push": _push, "fetch": _fetch, "check": _check, "prefetch": _prefetch,
            "catch-up": _catch_up}[args.command](args)
