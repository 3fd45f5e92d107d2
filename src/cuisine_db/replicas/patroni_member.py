"""db-create-replica on an embedded Patroni environment: a new member that Patroni builds with the toolkit's own
create_replica_method, seeded from the repository and the WAL archive, so the leader serves no base backup.

1. The newest physical backup of this very cluster is chosen and checked against the leader (replicas/seed.py:
   same system identifier and major, archiving with cuisine-db); none at all: the member is left to Patroni's
   `basebackup` (the one case the leader is copied), and says so.
2. The backup is laid down (backup/laydown.py, as the member's OS user) into the member's `seed/` folder: the
   repository and the age identity are the operator's, so decryption happens here, not in Patroni's process.
3. The member's patroni.yml names `cuisine_db` as its only create_replica_method (postgres/patroni_method.py moves
   the staged folder into place) and a `restore_command` (`wal fetch`, with a copy of the identity readable by the
   member's user alone); its Patroni starts, installs the seed, and PostgreSQL replays the archive from the
   backup's start, then streams from the leader.
4. Once Patroni shows it streaming on the leader's timeline, the restore_command is taken out of its patroni.yml
   (Patroni reloads it) and the identity copy is removed.

Any failure stops the new member and removes it (layout, folder): the cluster is as it was.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.backup import laydown
from cuisine_db.backup.physical_restore import IDENTITY_COPY, identity_copy
from cuisine_db.backup.wal import enable, fetch
from cuisine_db.backup.workspace import scratch
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, UnavailableError, UsageError
from cuisine_db.postgres import osuser, patroni, patroni_embedded, patroni_layout, patroni_method, safe_files
from cuisine_db.postgres.local import os_user_of
from cuisine_db.postgres.target import Target
from cuisine_db.replicas import seed as seeding
from cuisine_db.replicas.members import check_name
from cuisine_db.waiting import poll_until

STREAMING_SECONDS = 600.0
SPOOL = "spool"
RUN = "run"


@dataclass(frozen=True, slots=True)
class AddedMember:
    """A member Patroni built and that streams, as db-create-replica reports it."""

    env: str
    name: str
    port: int
    rest: int
    leader: str
    timeline: int | None
    seconds: float
    seeded_from: str | None  # the backup it was laid down from; None: Patroni copied the leader (no backup existed)


def _stage(settings: Settings, env: Environment, seed: seeding.Seed, name: str, os_user: str | None) -> None:
    """The backup laid down in the member's seed folder as its OS user, the way pg_basebackup would leave it for
    Patroni (the backup's own configuration files: Patroni writes its own over them)."""
    folder = patroni_embedded.seed_dir(settings, env, name)
    osuser.give_to(folder, os_user)
    data = folder / patroni_method.DATA
    shutil.rmtree(data, ignore_errors=True)  # a copy an interrupted attempt left
    with scratch(settings, f"seed-{name}") as work:
        osuser.make_reachable(work, os_user)
        osuser.give_to(work, os_user, 0o711)
        laydown.lay_down(settings, seed.sources, data, folder / "tablespaces", os_user, work, keep_config=True)
    for stray in ("recovery.signal", "standby.signal", "postmaster.pid", laydown.MANIFEST_FILE,
                  "current_logfiles"):
        safe_files.remove(data / stray)
    logs = data / "log"  # the leader's server logs came with the backup: they would mislead here
    for item in sorted(logs.iterdir()) if logs.is_dir() and not logs.is_symlink() else []:
        if item.is_file() and not item.is_symlink():
            item.unlink()
    safe_files.write(folder / patroni_method.BACKUP_NAME, seed.name + "\n", owner=os_user)


def _streams(settings: Settings, env: Environment, name: str) -> patroni.Member | None:
    view = patroni.cluster(settings, env)
    member, leader = view.member(name), view.leader
    if member is None or leader is None or not member.streaming or member.timeline != leader.timeline:
        return None
    return member


def _wait_streaming(settings: Settings, env: Environment, name: str, seconds: float,
                    notify: Callable[[str], None]) -> patroni.Member:
    told = time.monotonic()
    last = "not registered"

    def streams() -> patroni.Member | None:
        nonlocal told, last
        try:
            found = _streams(settings, env, name)
            if found is not None:
                return found
            member = patroni.cluster(settings, env).member(name)
            last = f"{member.role} {member.state}" if member else "not registered"
        except UnavailableError as exc:
            last = exc.message
        if time.monotonic() - told > 30:
            notify(f"{name}: {last}")
            told = time.monotonic()
        return None

    def stuck() -> UnavailableError:
        log = patroni_layout.state_dir(settings, env) / "logs" / f"{name}.log"
        return UnavailableError(
            f"member {name} of {env.name} does not stream after {seconds:.0f}s (Patroni: {last})",
            hint=f"see {log} and {patroni_layout.member_dir(settings, env, name) / 'data' / 'log'}")

    return poll_until(streams, seconds=seconds, interval=1, what=stuck)


def _restore_command_gone(settings: Settings, env: Environment, member: patroni_layout.MemberPorts) -> bool:
    target = Target(member.name, {"host": "127.0.0.1", "port": str(member.port)})
    try:
        with connect(settings, env, "db-create-replica", target=target) as conn:
            row: Any = conn.execute(queries.load("pitr/current_setting"), {"name": "restore_command"}).fetchone()
    except (psycopg.Error, UnavailableError):
        return False
    return row is not None and row[0] == ""


def _finish(settings: Settings, env: Environment, member: patroni_layout.MemberPorts) -> None:
    """Streaming now: the archive is no longer its way in, so restore_command goes, then the identity copy."""
    layout = patroni_layout.load_layout(settings, env)
    if layout is None:
        raise UnavailableError(f"{env.name}'s Patroni layout disappeared while {member.name} was added")
    patroni_embedded.configure(settings, env, member.name)
    patroni.post(settings, env, "/reload", {}, api_url=f"http://127.0.0.1:{member.rest}")
    home = patroni_layout.member_dir(settings, env, member.name)
    poll_until(lambda: _restore_command_gone(settings, env, member) or None, seconds=60, interval=0.5,
               what=f"{member.name} still has its restore_command a minute after Patroni's reload",
               hint=f"its patroni.yml no longer names one: patronictl reload, then remove {home / RUN / IDENTITY_COPY}")
    safe_files.remove(home / RUN / IDENTITY_COPY)
    fetch.clear_prefetched(home / SPOOL)


def _prepare(settings: Settings, env: Environment, seed: seeding.Seed, name: str, os_user: str | None) -> str:
    """`seed` staged for member `name`, the archive opened to its OS user; the restore_command it catches up with."""
    home = patroni_layout.member_dir(settings, env, name)
    _stage(settings, env, seed, name, os_user)
    enable.grant_server_access(settings, env, os_user)
    enable.write_credentials(settings, env, os_user)
    osuser.give_to(home / RUN, os_user)
    osuser.give_to(home / SPOOL, os_user)
    identity = identity_copy(settings, [env], home / RUN, os_user)
    return enable.restore_command(settings, env, spool=home / SPOOL, identity_file=identity,
                                  system_identifier=seed.resolved.manifest.system_identifier)


def rebuild(settings: Settings, env: Environment, names: Sequence[str], seed: seeding.Seed, *,
            stream_seconds: float = STREAMING_SECONDS, notify: Callable[[str], None] = lambda _line: None) -> None:
    """Members of the layout with no data directory (the others of a cluster Patroni re-bootstrapped from `seed`)
    built by Patroni with the toolkit's create_replica_method from `seed` and the archive, as db-create-replica
    builds a new one: all staged and started, then each waited for until it streams."""
    os_user = os_user_of(settings, env)
    layout = patroni_layout.load_layout(settings, env)
    members = [m for m in (layout.members if layout else ()) if m.name in names]
    for member in members:
        notify(f"{env.name}: laying {seed.name} down for member {member.name} from the repository (the leader "
               "copies nothing)")
        restore = _prepare(settings, env, seed, member.name, os_user)
        patroni_embedded.configure(settings, env, member.name, staged=True, restore_command=restore)
        patroni_embedded.start_member(settings, env, member.name)
    for member in members:
        _wait_streaming(settings, env, member.name, stream_seconds, notify)
        _finish(settings, env, member)
        notify(f"{env.name}: member {member.name} streams, built from {seed.name} and the archive")


def add(settings: Settings, env: Environment, name: str, *, stream_seconds: float = STREAMING_SECONDS,
        notify: Callable[[str], None] = lambda _line: None) -> AddedMember:
    """Add member `name` to an embedded Patroni cluster, seeded from the newest physical backup and the archive
    (Patroni's basebackup only when the environment has no physical backup); wait until it streams."""
    check_name(name)
    if not env.embedded_patroni:
        raise UsageError(f"{env.name} is a Patroni cluster on other hosts: a member is added by starting Patroni on "
                         "its host, with cuisine_db in create_replica_methods; nothing was changed",
                         hint="docs/scaling.md, 'Adding a member from the repository', gives the patroni.yml lines")
    clock = time.monotonic()
    view = patroni.cluster(settings, env)
    leader = patroni.leader(settings, env)
    layout = patroni_layout.load_layout(settings, env)
    home = patroni_layout.member_dir(settings, env, name)
    if view.member(name) is not None or (layout and any(m.name == name for m in layout.members)):
        raise UsageError(f"{env.name} already has a member {name!r}; nothing was changed",
                         hint=f"make db-replicas env={env.name} lists them")
    if home.exists():
        raise UsageError(f"{home} exists but {env.name} has no member {name!r}; nothing was changed",
                         hint="move it away (it may be a copy someone kept), then add the member again")
    with connect(settings, env, "db-create-replica") as conn:
        try:
            seed: seeding.Seed | None = seeding.check(settings, env, conn, seeding.LATEST)
        except seeding.NoBackup:
            seed = None
    os_user = os_user_of(settings, env)
    restore = None
    try:
        osuser.give_to(home, os_user)
        if seed is not None:
            notify(f"{env.name}: laying {seed.name} down for member {name} from the repository; the WAL since comes "
                   f"from the archive, then streaming from {leader.name} (the leader copies nothing)")
            restore = _prepare(settings, env, seed, name, os_user)
        else:
            notify(f"{env.name} has no physical backup: Patroni copies the leader {leader.name} for member {name} "
                   f"(make db-backup env={env.name} type=full first to spare it)")
        member = patroni_embedded.add_member(settings, env, name, staged=seed is not None, restore_command=restore,
                                             notify=notify)
        streaming = _wait_streaming(settings, env, name, stream_seconds, notify)
        if seed is not None:
            _finish(settings, env, member)
    except BaseException as exc:
        patroni_embedded.remove_member(settings, env, name)
        if isinstance(exc, CuisineDbError):
            exc.message += f" (nothing was kept: member {name} is stopped and removed)"
        raise
    return AddedMember(env.name, name, member.port, member.rest, leader.name, streaming.timeline,
                       round(time.monotonic() - clock, 1), seed.name if seed else None)
