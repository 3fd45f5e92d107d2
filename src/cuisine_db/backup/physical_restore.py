"""db-restore of a physical backup, and the two ways on from there: db-apply-logs (the disaster flow) or opening the
backup as it is (the full-restore flow).

`restore()` stops the environment's local cluster and lays the backup down beside its data directory
(`data.laying`). Only once the lay-down is complete, configured and holds its recovery.signal does it move the old
data directory aside (kept until the restored server has opened) and the new one into its place: a restore killed
mid-way leaves the old cluster as it was and a `data.laying` that the next restore removes, never a data directory
that opens. It leaves the backup *laid down*: a recovery.signal and no restore_command, so nothing but this
module can start it.
Under maintenance mode (always, on a protected environment) it stops there; otherwise it opens it at once.
From the laid-down state:

- `apply_logs()` replays the archive onto it — to its end or to a target — without laying anything down
  again, after checking the archive has no hole between the backup and its end;
- `open_pending()` (`cuisine-db restore open`, or restore itself: open=1, or no maintenance mode) replays only
  the backup's own WAL and opens it: exactly the backup's data. Turning maintenance mode off never opens it
  (it refuses while a restore waits).

Both run the server in private (recovery.py), then set the roles the tool connects as back to the
environment's pgpass passwords, turn archiving off when the backup came from another environment (its archive
is not ours to write), re-block application roles while maintenance mode is on, and start it normally.
Once opened, db-apply-logs refuses: replaying the archive would mean laying the backup down over whatever has
been written since.
"""

from __future__ import annotations

import contextlib
import os
import secrets as random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.backup import catalog, fast_replay, laydown
from cuisine_db.backup import restore_state as states
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.recovery import PrivateServer, Progress, Reached, StoppedEarly, private_server
from cuisine_db.backup.restore_state import RestoreState
from cuisine_db.backup.targets import IMMEDIATE, RecoveryTarget
from cuisine_db.backup.wal import archive, areas, enable, fetch, wal_names
from cuisine_db.backup.workspace import scratch
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, RefusedError, UsageError
from cuisine_db.ops import maintenance
from cuisine_db.postgres import osuser, pgpass, safe_files
from cuisine_db.postgres.cluster import SUPERUSER, LocalCluster, base_settings
from cuisine_db.postgres.local import cluster_for, os_user_of
from cuisine_db.postgres.server_settings import alter_system
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository

Notify = Callable[[str], None]
STAMP = "%Y%m%dT%H%M%SZ"
IDENTITY_COPY = "recovery-identity"


@dataclass(frozen=True, slots=True)
class OpenReport:
    """How a restored backup was opened: up to where, on which timeline, and how long recovery took in all."""

    env: str
    backup: str
    target: str
    reached_lsn: str | None
    reached_time: datetime | None
    timeline: int | None
    replay_seconds: float
    restore_seconds: float
    archive_end: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def recovery_seconds(self) -> float:
        """The measured recovery time: laying the backup down plus replaying and opening it."""
        return round(self.restore_seconds + self.replay_seconds, 3)


@dataclass(frozen=True, slots=True)
class LaidReport:
    env: str
    backup: str
    chain: list[str]
    seconds: float
    kept: str | None
    opened: OpenReport | None
    next_steps: list[str]
    notes: list[str] = field(default_factory=list)


def _local(settings: Settings, env: Environment) -> LocalCluster:
    if not env.is_local:
        raise UsageError(f"environment {env.name!r} is a remote server: a physical restore lays files down on the "
                         "database host itself",
                         hint="run cuisine-db there, or follow docs/break-glass.md (physical backups)")
    return cluster_for(settings, env)


def _prepare_home(cluster: LocalCluster) -> None:
    """What init() would have made: a home the server's user can pass, its run folder, the binaries reachable."""
    osuser.own_home(cluster.home, cluster.os_user)
    osuser.make_reachable(cluster.build.bindir, cluster.os_user)
    osuser.give_to(cluster.home / "run", cluster.os_user)


def _maintenance_on(settings: Settings, env: Environment) -> bool:
    return maintenance.state(settings, env) is not None


def restore(settings: Settings, env: Environment, resolved: Resolved, *, open_now: bool | None = None,
            notify: Notify = lambda _: None, progress: Callable[[int], Any] = lambda _: None) -> LaidReport:
    """Replace env's cluster with a physical backup (and its incremental chain); open it unless told to wait."""
    manifest = resolved.manifest
    cluster = _local(settings, env)
    if manifest.server_major != env.postgres_version:
        raise UsageError(f"{manifest.name} is a PostgreSQL {manifest.server_major} cluster; {env.name} runs "
                         f"{env.postgres_version}: physical backups restore only into the same major version",
                         hint="restore a logical backup instead, or set postgres_version for the environment")
    sources = laydown.chain(settings, env, resolved)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime(STAMP)
    _prepare_home(cluster)
    notify(f"{env.name}: stopping the server and laying down {manifest.name}"
           + (f" (a chain of {len(sources)}: {', '.join(s.manifest.name for s in sources)})" if len(sources) > 1
              else ""))
    will_open = open_now if open_now is not None else not _maintenance_on(settings, env)
    kept = cluster.home / f"pre-restore-{stamp}"
    laying = {part: cluster.home / f"{part}{LAYING}" for part in ("data", "tablespaces")}
    for leftover in laying.values():  # what a restore killed mid-way left: never opened, never complete
        shutil.rmtree(leftover, ignore_errors=True)
    moved: list[str] = []
    placed: list[str] = []
    spool = enable.spool_dir(settings, env)
    try:
        with _stopping_then_prefetching(settings, env, cluster, sources[-1].manifest, spool, will_open):
            warnings = lay_down_into(settings, sources, laying["data"], laying["tablespaces"],
                                     cluster.os_user, progress(sum(s.manifest.size for s in sources)),
                                     own_settings=own_settings(cluster),
                                     keep_settings=own_archiving(settings, env, manifest.env),
                                     links_to=cluster.home / "tablespaces")
        safe_files.write(laying["data"] / "recovery.signal", b"", owner=cluster.os_user)
        if durable(own_settings(cluster)):
            settle(list(laying.values()))
        for part in ("data", "tablespaces"):
            if (cluster.home / part).exists():
                kept.mkdir(exist_ok=True, mode=0o700)
                (cluster.home / part).rename(kept / part)
                moved.append(part)
        for part in ("tablespaces", "data"):  # data last: a data directory in place is a complete one
            if laying[part].exists():
                laying[part].rename(cluster.home / part)
                placed.append(part)
    except BaseException:
        # Put the old cluster back exactly as it was (stopped); the half-laid one goes.
        for folder in laying.values():
            shutil.rmtree(folder, ignore_errors=True)
        for part in placed:
            shutil.rmtree(cluster.home / part, ignore_errors=True)
        for part in moved:
            (kept / part).rename(cluster.home / part)
        with contextlib.suppress(OSError):
            kept.rmdir()
        fetch.clear_prefetched(spool)
        raise
    newest = sources[-1].manifest
    state = laid_down(env, sources, started=started, kept=str(kept) if moved else None)
    states.save(settings, env, state)
    if open_now is None:
        open_now = not _maintenance_on(settings, env)
    opened = open_pending(settings, env, notify=notify) if open_now else None
    steps = [] if opened else waiting_steps(env)
    return LaidReport(env.name, newest.name, state.chain, state.lay_seconds, state.kept if not opened else None,
                      opened, steps, notes=[f"from the backup: {line}" for line in warnings])


LAYING = ".laying"  # data.laying, tablespaces.laying: a restore lays down there, then moves them into place


def durable(settings_: Mapping[str, str | int | bool]) -> bool:
    """Whether the server runs with fsync on (an environment with `fsync = off` has given durability up)."""
    return str(settings_.get("fsync", "on")).lower() not in ("off", "false", "0", "no")


def settle(folders: list[Path]) -> None:
    """What was laid down reaches the disk before it is moved into place (one syncfs per file system), so after a
    power loss too a data directory in place is a whole one. The private start's own syncfs
    (recovery_init_sync_method) then finds nothing left to write: the time moves, it is not spent twice."""
    import ctypes

    syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    for folder in folders:
        if not folder.is_dir():
            continue
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            if syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)


STRAYS = ("standby.signal", "postmaster.pid")


def lay_down_into(settings: Settings, sources: list[BackupSource], data: Path, tablespaces: Path, os_user: str | None,
                  progress: laydown.Progress | None, *, own_settings: dict[str, str | int | bool],
                  keep_settings: dict[str, str | None] | None = None, strays: tuple[str, ...] = STRAYS,
                  links_to: Path | None = None) -> list[str]:
    """The lay-down step of every physical restore (single cluster, Patroni re-bootstrap): the chain into `data`
    through a scratch folder the server's user may pass (pg_combinebackup runs as that user), the environment's own
    configuration in place of the backup's, and none of the `strays` a running or standby cluster leaves behind.
    Returns what the backup carried that was not applied."""
    with scratch(settings, f"lay-down-{sources[-1].manifest.name}") as work:
        osuser.make_reachable(work, os_user)
        osuser.give_to(work, os_user, 0o711)
        warnings = laydown.lay_down(settings, sources, data, tablespaces, os_user, work, progress,
                                    own_settings=own_settings, keep_settings=keep_settings, links_to=links_to)
    for stray in strays:
        safe_files.remove(data / stray)
    return warnings


@contextmanager
def _stopping_then_prefetching(settings: Settings, env: Environment, cluster: LocalCluster, newest: Any, spool: Path,
                               will_open: bool) -> Iterator[None]:
    """The body lays the backup down beside the old data directory (into data.laying) while, on a thread, the
    environment's server stops (its shutdown checkpoint: 0.1-0.2 s for a small cluster, longer for a busy one) and
    then the prefetcher starts fetching the first segments the replay will ask for (up to the backup's own end when
    it opens at once). The archive is opened to the server's OS user and the identities copied only once its server
    is down. On leaving, the server is down, or the reason it did not stop is raised. The prefetch is best effort:
    the replay starts its own prefetcher anyway."""
    failed: list[BaseException] = []
    identity: list[Path] = []
    with contextlib.ExitStack() as stack:

        def stop_then_prefetch() -> None:
            try:
                cluster.stop()
                fetch.clear_prefetched(spool)
            except BaseException as exc:  # raised below, in the caller's thread
                failed.append(exc)
                return
            with contextlib.suppress(Exception):  # no early fetch: the replay fetches for itself, as it always could
                _prefetch(settings, env, cluster, newest, spool, will_open, stack, identity)

        worker = threading.Thread(target=stop_then_prefetch, name="stop-then-prefetch", daemon=True)
        worker.start()
        try:
            yield
        finally:
            worker.join()
            for path in identity:
                path.unlink(missing_ok=True)
    if failed:
        raise failed[0]


def _prefetch(settings: Settings, env: Environment, cluster: LocalCluster, newest: Any, spool: Path, will_open: bool,
              stack: contextlib.ExitStack, identity: list[Path]) -> None:
    """Start the prefetcher after the backup's start (the launcher waited for here: it is this thread's child,
    and Linux kills a child whose starting thread ended); what it needs is left in `stack` and `identity`."""
    source = settings.environments.get(newest.env)
    size = int(newest.dump.get("wal_segment_size", wal_names.DEFAULT_SEGMENT_SIZE))
    after = fast_replay.first_needed(newest.timeline, newest.start_lsn, size)
    if source is None or after is None:
        return
    credentials = stack.enter_context(enable.archive_access(settings, source, cluster.os_user, cluster.home / "run"))
    identity.append(identity_copy(settings, [env, source], cluster.home / "run", cluster.os_user))
    launch = fast_replay.start(settings, source, cluster.os_user, spool, after,
                               for_tag=fast_replay.tag(newest.env, newest.system_identifier, newest.name),
                               identity=identity[0], credentials=credentials, drop=secret_variables(settings),
                               until=newest.dump.get("stop_wal") if will_open else None,
                               system_identifier=newest.system_identifier)
    fast_replay.started(launch)


def own_archiving(settings: Settings, env: Environment, source: str) -> dict[str, str | None]:
    """What `wal enable` wrote into postgresql.auto.conf that a restore of the environment's own backup keeps:
    archiving goes on as before, but only with exactly this installation's archive command."""
    if source != env.name:
        return {}
    return {"archive_mode": None, "archive_timeout": None, "archive_command": enable.archive_command(settings, env)}


def own_settings(cluster: LocalCluster) -> dict[str, str | int | bool]:
    """The settings a fresh cluster of this environment gets (init() writes them): a restored one gets them too,
    whatever the backup's configuration said."""
    return {**base_settings(cluster.build.major, cluster.port), **(cluster.extra_settings or {})}


def laid_down(env: Environment, sources: list[BackupSource], *, started: float, kept: str | None,
              notes: list[str] | None = None) -> RestoreState:
    """The record of a backup chain (oldest first) just laid down for `env`, nothing replayed or opened yet;
    `started`: when the lay-down began (time.monotonic())."""
    newest = sources[-1].manifest
    return RestoreState(
        env=env.name, state=states.LAID_DOWN, backup=newest.name, chain=[s.manifest.name for s in sources],
        source_env=newest.env, system_identifier=newest.system_identifier, timeline=newest.timeline,
        stop_lsn=newest.stop_lsn, stop_wal=newest.dump.get("stop_wal"),
        wal_segment_size=int(newest.dump.get("wal_segment_size", wal_names.DEFAULT_SEGMENT_SIZE)),
        backup_stopped_at=stopped_at(newest), laid_at=datetime.now(UTC),
        lay_seconds=round(time.monotonic() - started, 3), kept=kept, cross_env=newest.env != env.name,
        notes=notes or [])


def waiting_steps(env: Environment, replay: str = "") -> list[str]:
    """The two ways on from a backup laid down and left waiting; `replay`: what replaying does besides."""
    return [
        f"make db-apply-logs env={env.name} [target=\"YYYY-MM-DD HH:MM:SS+00\" | lsn= | xid=]: replay the archive "
        f"onto it{replay} (the disaster flow), or",
        f"cuisine-db restore open --env {env.name}: open it with exactly the backup's data; then make "
        f"maintenance-mode disable env={env.name}",
    ]


def stopped_at(manifest: Any) -> datetime:
    """When a physical backup became consistent (pg_basebackup ended): no target before it is reachable."""
    stop = manifest.dump.get("stop_time")
    return datetime.fromisoformat(stop) if stop else manifest.finished_at


def secret_variables(settings: Settings) -> tuple[str, ...]:
    """Every variable any environment reads a secret from: a server the tool starts inherits none of them (the
    archive and restore commands read S3 keys from their credentials file)."""
    return tuple(sorted({name for env in settings.environments.values() for name in env.secret_variables()}))


def identity_copy(settings: Settings, environments: list[Environment], folder: Path, os_user: str | None) -> Path:
    """The age identities, readable by the server's user alone, for the restore_command it runs (removed after)."""
    identities = age_keys.identities(settings, environments)
    target = folder / IDENTITY_COPY
    # The folder may be the server user's: never through a link it planted, 0600 and its owner from the start.
    safe_files.write(target, "\n".join(str(identity) for identity in identities) + "\n", owner=os_user)
    return target


def recovery_options(settings: Settings, env: Environment, source: Environment | None, target: RecoveryTarget, *,
                     spool: Path, identity: Path | None, action: str, archive_off: bool,
                     credentials: Path | None = None, trust_unsigned: bool = False,
                     system_identifier: str | None = None, major: int | None = None) -> dict[str, str]:
    """The settings a private recovery starts with (on the command line, never in a file): the archive area read
    is the one of the backup's `system_identifier`; with `major`, the settings that make the replay fast too
    (fast_replay.py)."""
    command = enable.restore_command(settings, source, spool=spool, identity_file=identity,
                                     credentials_file=credentials, trust_unsigned=trust_unsigned,
                                     system_identifier=system_identifier) if source else "false"
    options = {**(fast_replay.replay_settings(major) if major else {}), "restore_command": command,
               **target.settings(), "recovery_target_action": action}
    if archive_off:
        options["archive_mode"] = "off"
    return options


def _fix_passwords(conn: psycopg.Connection[Any], settings: Settings, env: Environment,
                   cluster: LocalCluster) -> list[str]:
    """The roles the tool connects as get the passwords of the environment's pgpass (a backup carries the
    cluster's old ones, another environment's, or none this machine knows). No pgpass: a new one is made."""
    entries = pgpass.read(cluster.passfile)
    if not any(entry.user == SUPERUSER for entry in entries):
        password = random.token_urlsafe(24)
        pgpass.put(cluster.passfile, SUPERUSER, password)
        entries = pgpass.read(cluster.passfile)
    done = []
    for entry in entries:
        exists = conn.execute(queries.load("pitr/role_exists"), {"name": entry.user}).fetchone()
        if entry.user in done or exists is None:
            continue
        verifier = conn.pgconn.encrypt_password(entry.password.encode(), entry.user.encode(), b"scram-sha-256")
        conn.execute(queries.load("pitr/set_role_password").format(role=sql.Identifier(entry.user),
                                                                  verifier=sql.Literal(verifier.decode())))
        done.append(entry.user)
    return done


def _finish(settings: Settings, env: Environment, cluster: LocalCluster, state: RestoreState, conn: Any) -> list[str]:
    notes = []
    _fix_passwords(conn, settings, env, cluster)
    if state.cross_env:
        alter_system(conn, {"archive_mode": "off"})
        notes.append(f"WAL archiving is off: this cluster came from {state.source_env}, whose archive is not "
                     f"{env.name}'s to write (cuisine-db wal enable --env {env.name} turns it on for {env.name})")
    if _maintenance_on(settings, env):
        try:
            blocked = maintenance.enable_on(conn, settings, env, None)
        except CuisineDbError as exc:
            notes.append(f"maintenance mode is on, but application roles could not be blocked: {exc.message}")
        else:
            notes.append(f"maintenance mode is on: {len(blocked.roles)} application role(s) blocked on the restored "
                         "server before it opened")
    return notes


def _recover(settings: Settings, env: Environment, state: RestoreState, target: RecoveryTarget,
             report: Callable[[Progress], None], trust_unsigned: bool = False
             ) -> tuple[Reached, str | None, list[str]]:
    """Replay privately to `target`, promote, fix up, checkpoint and stop (the caller records it, then starts)."""
    cluster = cluster_for(settings, env)
    _prepare_home(cluster)
    source = settings.environments.get(state.source_env)
    if source is None and target.kind != "immediate":
        raise UsageError(f"{state.backup} came from environment {state.source_env!r}, which cuisine-db.toml no longer "
                         "names: its archive cannot be read", hint="add it back to replay its WAL")
    spool = enable.spool_dir(settings, env)
    for_tag = fast_replay.tag(state.source_env, state.system_identifier, state.backup)
    filled, after = fast_replay.tagged(spool)
    if filled != for_tag:  # nothing prefetched for another restore (another archive, perhaps) may be delivered
        fetch.clear_prefetched(spool)
        after = _before(state.stop_wal, state.wal_segment_size)
    identity: Path | None = None
    run_dir = cluster.home / "run"
    try:
        access = contextlib.nullcontext(None) if source is None else \
            enable.archive_access(settings, source, cluster.os_user, run_dir)
        with access as credentials:
            launch = None
            try:
                if source is not None:
                    osuser.give_to(spool, cluster.os_user)
                    identity = identity_copy(settings, [env, source], run_dir, cluster.os_user)
                    if after is not None:
                        launch = fast_replay.start(
                            settings, source, cluster.os_user, spool, after, for_tag=for_tag, identity=identity,
                            credentials=credentials, drop=secret_variables(settings),
                            until=state.stop_wal if target.kind == "immediate" else None,
                            system_identifier=state.system_identifier)
                # Archiving stays off in private (history_for_archiver()); the normal start archives.
                options = recovery_options(settings, env, source, target, spool=spool, identity=identity,
                                           action="promote", archive_off=True, credentials=credentials,
                                           trust_unsigned=trust_unsigned, system_identifier=state.system_identifier,
                                           major=cluster.build.major)
                reached, next_xid, notes = _replay(settings, env, cluster, state, options, report)
            finally:
                fast_replay.started(launch)
    finally:
        if identity is not None:
            identity.unlink(missing_ok=True)
        fetch.clear_prefetched(spool)
    safe_files.remove(cluster.datadir / "backup_manifest")
    return reached, next_xid[0] if next_xid else None, notes


def _before(name: str | None, segment_size: int) -> str | None:
    """The segment before `name` (the prefetcher works on what follows it)."""
    if name is None or not wal_names.is_segment(name):
        return None
    number = wal_names.segment_number(name, segment_size)
    return wal_names.segment_name(wal_names.timeline(name), max(number - 1, 0), segment_size)


def _replay(settings: Settings, env: Environment, cluster: LocalCluster, state: RestoreState, options: dict[str, str],
            report: Callable[[Progress], None]) -> tuple[Reached, Any, list[str]]:
    with private_server(cluster.build.bindir, cluster.datadir, cluster.port, cluster.os_user,
                        cluster.home / "run" / "recovery.log", options, secret_variables(settings)) as server:
        reached = server.wait(pause=False, report=report)
        with server.connect() as conn:
            if not state.cross_env:
                history_for_archiver(conn, cluster.datadir, reached.timeline, cluster.os_user)
            notes = _finish(settings, env, cluster, state, conn)
            next_xid = conn.execute(queries.load("pitr/next_xid")).fetchone()
            conn.execute(queries.load("pitr/checkpoint"))
    return reached, next_xid, notes


def history_for_archiver(conn: psycopg.Connection[Any], datadir: Path, timeline: int | None,
                         os_user: str | None) -> None:
    """The private server runs with archive_mode off, so that its stop does not wait for its archiver to push the
    new timeline's history file (and the old timeline's last segment as `.partial`, a prefix of what the new
    timeline's first segment holds too): 0.1-0.2 s of the downtime. The history file must still reach the archive
    (another restore's promotion picks a timeline no history file names): its `.ready`, which PostgreSQL writes only
    with archiving on, is written here, before the private stop, for the normal server's archiver. Only where the
    configuration archives (never for a backup of another environment: that archive is not ours to write)."""
    configured = conn.execute(queries.load("pitr/archive_mode_configured")).fetchone()
    if timeline is None or configured is None or str(configured[0]).lower() not in ("on", "always"):
        return
    name = f"{timeline:08X}.history"
    pg_wal = datadir / "pg_wal"
    if (pg_wal / name).is_file() and not (pg_wal / "archive_status" / f"{name}.done").exists():
        safe_files.write(pg_wal / "archive_status" / f"{name}.ready", b"", owner=os_user)


def _opened(settings: Settings, env: Environment, state: RestoreState, reached: Reached, next_xid: str | None,
            how: str) -> RestoreState:
    opened = state.with_(state=states.OPENED, opened_at=datetime.now(UTC), opened_by=how,
                         opened_timeline=reached.timeline, next_xid=next_xid, reached_lsn=reached.lsn,
                         reached_time=reached.time, kept=None)
    states.save(settings, env, opened)
    return opened


def _drop_kept(state: RestoreState, env: Environment, notify: Notify) -> None:
    """The data directory the restore set aside goes once the restored server is up: deleting gigabytes takes
    seconds (4 s for 5 GB on the benchmark's machine) that need not be downtime. The operator is told the server
    is open first: the command returns only after the deletion."""
    if state.kept:
        notify(f"{env.name}: the restored server is up and accepting writes; removing the data directory the "
               f"restore set aside ({state.kept})")
        shutil.rmtree(state.kept, ignore_errors=True)


def open_pending(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> OpenReport | None:
    """Open a laid-down restore at the backup's own end (exactly its data); None when nothing is pending."""
    state = states.pending(settings, env)
    if state is None or not env.is_local:
        return None
    notify(f"{env.name}: opening {state.backup} at the end of the backup (its own WAL only)")
    started = time.monotonic()
    reached, next_xid, notes = _recover(settings, env, state, IMMEDIATE, lambda _: None)
    _opened(settings, env, state, reached, next_xid, "open")
    cluster_for(settings, env).start()
    _drop_kept(state, env, notify)
    return OpenReport(env.name, state.backup, IMMEDIATE.describe(), reached.lsn, reached.time, reached.timeline,
                      round(time.monotonic() - started, 3), state.lay_seconds, notes=notes)


def _writes_since(settings: Settings, env: Environment, state: RestoreState) -> str:
    from cuisine_db.cluster import connect

    try:
        with connect(settings, env, "apply-logs check", dbname="postgres") as conn:
            row = conn.execute(queries.load("pitr/next_xid")).fetchone()
    except Exception:
        return "it may have taken writes since"
    if row is None or state.next_xid is None:
        return "it may have taken writes since"
    count = int(row[0]) - int(state.next_xid)
    return f"{count} transaction(s) have written to it since" if count > 0 else \
        "nothing has written to it yet, but it has been open to connections"


def _older_backup(settings: Settings, env: Environment, target: RecoveryTarget) -> str | None:
    moment = target.time
    if moment is None:
        return None
    candidates = [e.manifest for e in catalog.list_backups(settings, env)
                  if e.manifest is not None and e.type in laydown.PHYSICAL and stopped_at(e.manifest) <= moment]
    return candidates[-1].name if candidates else None


def check_target(settings: Settings, env: Environment, state: RestoreState, target: RecoveryTarget) -> None:
    """A target before the backup's end cannot be reached from it: say which backup can."""
    early = False
    if target.time is not None:
        early = target.time < state.backup_stopped_at
    elif target.kind == "lsn" and state.stop_lsn and target.value:
        early = wal_names.parse_lsn(target.value) < wal_names.parse_lsn(state.stop_lsn)
    if early:
        older = _older_backup(settings, env, target)
        raise RefusedError(
            f"{target.describe()} is before the end of {state.backup} (at {state.stop_lsn}, "
            f"{state.backup_stopped_at:%Y-%m-%d %H:%M:%S} UTC): replay only goes forward from a backup",
            hint=(f"make db-restore env={env.name} backup={older}, then db-apply-logs again" if older else
                  "no physical backup of this environment ends before that point"))


def check_archive(settings: Settings, env: Environment, state: RestoreState, *, force: bool) -> str | None:
    """The archive must hold every segment from the backup's end to its own end: a hole would end recovery there
    and open the database without everything after it. Returns the last archived segment on the path."""
    source = settings.environments.get(state.source_env) or env
    repository = open_repository(settings, source)
    listed = archive.list_archive(repository, areas.area_for(source.name, settings.env_dir(source),
                                                             state.system_identifier))
    doubled = archive.duplicates(listed)
    if doubled and not force:
        raise RefusedError(f"the archive holds {doubled[0]} twice with different content; replay would stop there",
                           hint=f"cuisine-db wal status --env {source.name}; force=1 replays up to it")
    if state.stop_wal is None:
        return None
    identities = age_keys.identities(settings, [env, source])
    switches = archive.newest_history(repository, listed, identities)
    covered = archive.coverage(listed, state.stop_wal, switches, state.wal_segment_size)
    if not covered.on_path and not force:
        raise RefusedError(f"{state.backup} is on timeline {state.timeline}, which is not an ancestor of the "
                           "archive's newest timeline: its WAL leads elsewhere",
                           hint="restore a backup taken on the current timeline, or force=1")
    if covered.missing and not force:
        raise RefusedError(
            f"the archive of {source.name} misses {len(covered.missing)} segment(s) between {state.backup} and "
            f"its end, first {covered.missing[0]}: replay would stop there and open the database without "
            f"everything after it (up to {covered.end})",
            hint="find the missing segments (another copy of the archive, the old data directory's pg_wal), or "
                 "force=1 to replay up to the hole")
    return covered.end


def apply_logs(settings: Settings, env: Environment, target: RecoveryTarget, *, force: bool = False,
               notify: Notify = lambda _: None, report: Callable[[Progress], None] = lambda _: None,
               trust_unsigned: bool = False) -> OpenReport:
    """Replay the archive onto the laid-down restore, to its end or to `target`, then open it. WAL archived before
    signatures is replayed only with `trust_unsigned` (wal fetch takes signed files alone otherwise)."""
    _local(settings, env)
    state = states.load(settings, env)
    if state is None:
        raise RefusedError(f"nothing is laid down on {env.name} to replay onto",
                           hint=f"db-apply-logs follows a restore: make db-restore env={env.name} backup=latest")
    if state.state == states.OPENED:
        raise RefusedError(
            f"{state.backup} was restored on {env.name} and opened at "
            f"{state.opened_at:%Y-%m-%d %H:%M:%S} UTC; {_writes_since(settings, env, state)}: replaying the archive "
            "would lay the backup down again and throw those writes away",
            hint=f"if they may go: make db-restore env={env.name} backup={state.backup} (with maintenance mode on, "
                 "it waits for db-apply-logs); to keep them, take a backup first, or bring single tables back with "
                 "db-restore-tables ... target=")
    if env.protected:
        maintenance.require(settings, env, "Applying the logs")
    from cuisine_db.backup.upgrade_boundary import refuse_crossing

    refuse_crossing(settings, env, settings.environments.get(state.source_env) or env, state, target)
    check_target(settings, env, state, target)
    end = check_archive(settings, env, state, force=force)
    notify(f"{env.name}: replaying the archive of {state.source_env} onto {state.backup} up to "
           f"{target.describe()}" + (f" (archived up to {end})" if end else ""))
    started = time.monotonic()
    try:
        reached, next_xid, notes = _recover(settings, env, state, target, report, trust_unsigned)
    except StoppedEarly as exc:
        if "recovery ended before configured recovery target was reached" in exc.log:
            states.save(settings, env, state.with_(notes=[*state.notes, "replayed to the end of the archive without "
                                                          f"reaching {target.describe()}"]))
            raise FailedError(f"the archive ends before {target.describe()}: nothing was opened",
                              hint=f"leave the target out to open at the end of the archive{f' ({end})' if end else ''}"
                                   f"; an earlier target needs make db-restore env={env.name} again") from None
        raise
    _opened(settings, env, state, reached, next_xid, "apply-logs")
    cluster_for(settings, env).start()
    _drop_kept(state, env, notify)
    return OpenReport(env.name, state.backup, target.describe(), reached.lsn, reached.time, reached.timeline,
                      round(time.monotonic() - started, 3), state.lay_seconds, end, notes)


@contextmanager
def temporary_instance(settings: Settings, env: Environment, resolved: Resolved, target: RecoveryTarget, *,
                       notify: Notify = lambda _: None) -> Iterator[tuple[PrivateServer, Reached]]:
    """The backup brought up beside everything else, replayed to `target` and paused there (read-only), reachable
    only through its private socket; destroyed on exit. db-restore-tables copies tables out of it."""
    from cuisine_db.postgres import binaries

    manifest = resolved.manifest
    sources = laydown.chain(settings, env, resolved)
    source_env = resolved.source_env or settings.environments.get(manifest.env)
    build = binaries.find(manifest.server_major, settings.cache_dir)
    # The source environment's user: the instance holds that environment's data and reads its WAL archive, which
    # no other environment's user can (each archive area is its user's alone).
    os_user = os_user_of(settings, source_env or env)
    osuser.make_reachable(build.bindir, os_user)
    with scratch(settings, f"pitr-{manifest.name}") as work:
        osuser.make_reachable(work, os_user)
        osuser.give_to(work, os_user, 0o711)
        data = work / "data"
        notify(f"laying {manifest.name} down in a temporary instance, replaying to {target.describe()}")
        laydown.lay_down(settings, sources, data, work / "tablespaces", os_user, work)
        safe_files.write(data / "recovery.signal", b"", owner=os_user)
        identity = None
        spool = work / "spool"
        osuser.give_to(spool, os_user)
        from cuisine_db.postgres.ports import free_port

        if source_env is None and target.kind != "immediate":
            raise UsageError(f"{manifest.name} came from environment {manifest.env!r}, which cuisine-db.toml no "
                             "longer names: its archive cannot be read")
        access = contextlib.nullcontext(None) if source_env is None else \
            enable.archive_access(settings, source_env, os_user, work)
        with access as credentials:
            if source_env is not None:
                identity = identity_copy(settings, [env, source_env], work, os_user)
            options = recovery_options(settings, env, source_env, target, spool=spool, identity=identity,
                                       action="pause", archive_off=True, credentials=credentials,
                                       system_identifier=manifest.system_identifier, major=manifest.server_major)
            try:
                with private_server(build.bindir, data, free_port(), os_user, work / "recovery.log", options,
                                    secret_variables(settings)) as server:
                    reached = server.wait(pause=target.kind != "end")
                    yield server, reached
            finally:
                fetch.clear_prefetched(spool)
