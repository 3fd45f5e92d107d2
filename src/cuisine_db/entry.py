"""The `cuisine-db` program: `wal push|fetch|check|prefetch|catch-up` and `replica seed-member` take the light path
(PostgreSQL and Patroni run them as the server's user); everything else loads the full command-line interface."""

from __future__ import annotations

import sys

LIGHT = ("push", "fetch", "check", "prefetch", "catch-up")


def main() -> None:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "wal" and args[1] in LIGHT:
        from cuisine_db.backup.wal.main import main as wal_main

        sys.exit(wal_main(args[1:]))
    if args[:2] == ["replica", "seed-member"]:  # Patroni's create_replica_methods entry, as the member's OS user
        from cuisine_db.postgres.patroni_method import main as seed_member

        sys.exit(seed_member(args[2:]))
    from cuisine_db.cli import main as cli_main

    cli_main()
