"""db-restore, db-apply-logs and restore open on an embedded Patroni cluster (make cluster-up env=E): the whole
cluster re-bootstrapped from a physical backup through Patroni's custom `bootstrap`, never a backup laid down under
a running member behind Patroni's back.

db-restore: Patroni paused (no failover, no restart while we work), every member's Patroni stopped and then its
PostgreSQL (paused, Patroni leaves it running), replicas first; each data directory moved aside (kept until the
restored leader runs), the backup laid down beside the member that will lead (by root: the repository and its keys
are root's), and the cluster's dynamic configuration saved (archiving included). Like a single cluster it then waits
for db-apply-logs under maintenance mode, or opens at once with exactly the backup's data.

db-apply-logs / restore open: the cluster's state removed from etcd (what `patronictl remove` does), that member
started with the custom bootstrap `cuisine_restore`: postgres/patroni_bootstrap.py moves the laid-down copy into its
data directory, Patroni starts it with the toolkit's `wal fetch` as restore_command and the target (promote at the
end), and initialises the DCS from the saved configuration. Once it leads, the other members start with empty data
directories, each seeded by Patroni with the toolkit's create_replica_method from the same backup (laid down again
from the repository) and the archive, once the new timeline's first segment is archived: the restored leader serves no
base backup. The pause went with the old state; with maintenance mode on the application roles are blocked on the new
leader.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row

from cuisine_db import records
from cuisine_db import sql as queries
from cuisine_db.backup import catalog, laydown
from cuisine_db.backup import restore_state as states
from cuisine_db.backup.catalog import Resolved
from cuisine_db.backup.physical_restore import (
    STAMP,
    LaidReport,
    OpenReport,
    check_archive,
    check_target,
    identity_copy,
    laid_down,
    lay_down_into,
    recovery_options,
    waiting_steps,
)
from cuisine_db.backup.targets import IMMEDIATE, RecoveryTarget
from cuisine_db.backup.wal import enable, fetch
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError, FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.ops import maintenance
from cuisine_db.postgres import osuser, patroni, patroni_embedded, safe_files
from cuisine_db.postgres.cluster import base_settings
from cuisine_db.postgres.local import os_user_of
from cuisine_db.postgres.patroni_layout import Layout, load_layout, member_dir, state_dir
from cuisine_db.waiting import poll_until

Notify = Callable[[str], None]
STAGED = "restore-staged"
DCS_FILE = "restore-dcs.json"
BOOTSTRAP_TIMEOUT = 3600.0
ARCHIVED_TIMEOUT = 600.0
# What a laid-down backup must not carry into Patroni's bootstrap: signals and pid files of the old server, the
# old members' cached dynamic configuration, and the configuration copies Patroni would put back
# (restore_configuration_files) or include (postgresql.base.conf): the restored postgresql.conf, the environment's
# own after restored_config.take_over(), becomes Patroni's postgresql.base.conf.
STRAYS = ("standby.signal", "recovery.signal", "recovery.conf", "postmaster.pid", "postmaster.opts",
          "patroni.dynamic.json", "postgresql.base.conf", "postgresql.base.conf.backup", "pg_hba.conf.backup",
          "pg_ident.conf.backup")


def refuse_unless_embedded(env: Environment, what: str) -> None:
    """A Patroni cluster elsewhere: its members run on hosts this tool does not manage, so it cannot stop them;
    refused (exit 4) before anything changes, naming the procedure."""
    if env.patroni is None or env.embedded_patroni:
        return
    raise RefusedError(f"{what} on Patroni environment {env.name} is refused: Patroni manages its members' data "
                       "directories on their hosts; pause it, stop every member, remove the cluster's state from the "
                       "DCS (patronictl remove) and let Patroni bootstrap from the backup (docs/scaling.md, "
                       "Restoring a Patroni cluster)")


def _layout(settings: Settings, env: Environment) -> Layout:
    layout = load_layout(settings, env)
    if layout is None:
        raise UsageError(f"{env.name}'s Patroni cluster has not been created: there is nothing to restore into",
                         hint=f"make cluster-up env={env.name} creates it")
    return layout


def _leading_member(layout: Layout) -> str:
    """The member bootstrapped from the backup (the others are rebuilt from it)."""
    return layout.members[0].name


def _staged(settings: Settings, env: Environment, name: str) -> Path:
    return member_dir(settings, env, name) / STAGED / "data"


def _stop_cluster(settings: Settings, env: Environment, layout: Layout, notify: Notify) -> dict[str, Any] | None:
    """Pause Patroni and stop every member's Patroni, then its PostgreSQL, replicas first; the dynamic
    configuration read before (None when no member answered: a cluster already down)."""
    dcs: dict[str, Any] | None = None
    leader: str | None = None
    try:
        view = patroni.cluster(settings, env)
    except UnavailableError:
        notify(f"{env.name}: no Patroni member answers: nothing to pause")
    else:
        leader = view.leader.name if view.leader else None
        dcs = {key: value for key, value in patroni.dynamic_config(settings, env).items() if key != "pause"}
        if not view.paused:
            patroni.pause(settings, env, True)
            # Each member reads the pause in its next loop; one loop and a second more before any is stopped.
            time.sleep(float(patroni_embedded.DCS["loop_wait"]) + 1)
        notify(f"{env.name}: Patroni paused (no failover, no restart while the cluster is restored)")
    for name in sorted((m.name for m in layout.members), key=lambda n: n == leader):
        stopped = patroni_embedded.stop_member(settings, env, name)
        postgres = patroni_embedded.stop_postgres(settings, env, name)
        if stopped or postgres:
            notify(f"{env.name}: member {name} stopped (Patroni, then PostgreSQL)")
    return dcs


def _saved_dcs(settings: Settings, env: Environment) -> dict[str, Any] | None:
    raw = safe_files.read(state_dir(settings, env) / DCS_FILE)
    if raw is None:
        return None
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


def _move_aside(settings: Settings, env: Environment, layout: Layout, kept: Path) -> list[tuple[Path, Path]]:
    moved = []
    for member in layout.members:
        for part in ("data", "tablespaces"):
            where = member_dir(settings, env, member.name) / part
            if where.exists() and (part != "data" or any(where.iterdir())):
                target = kept / member.name / part
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                where.rename(target)
                moved.append((where, target))
            elif where.exists():
                where.rmdir()
    return moved


def restore(settings: Settings, env: Environment, resolved: Resolved, *, open_now: bool | None = None,
            notify: Notify = lambda _: None, progress: Callable[[int], Any] = lambda _: None) -> LaidReport:
    """Stop the whole Patroni cluster and lay the backup down for its re-bootstrap; open it now unless told to wait
    (by default it waits under maintenance mode, like a single cluster)."""
    refuse_unless_embedded(env, "A physical restore")
    manifest = resolved.manifest
    if manifest.server_major != env.postgres_version:
        raise UsageError(f"{manifest.name} is a PostgreSQL {manifest.server_major} cluster; {env.name} runs "
                         f"{env.postgres_version}: physical backups restore only into the same major version")
    if manifest.env != env.name:
        raise UsageError(f"{manifest.name} is a backup of {manifest.env}: a Patroni cluster is re-bootstrapped only "
                         f"from its own backups (its archive and its configuration)",
                         hint=f"restore it into a single local environment, or take a backup of {env.name}")
    layout = _layout(settings, env)
    sources = laydown.chain(settings, env, resolved)
    user = os_user_of(settings, env)
    leading = _leading_member(layout)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime(STAMP)
    will_open = open_now if open_now is not None else maintenance.state(settings, env) is None
    live = _stop_cluster(settings, env, layout, notify)
    dcs = live or _saved_dcs(settings, env)
    if dcs is None:
        notify(f"warning: {env.name}'s dynamic configuration could not be read: the restored cluster starts with the "
               f"default one (make db-wal-enable env={env.name} restart=1 turns archiving on again)")
    previous = states.pending(settings, env)
    home = settings.env_dir(env)
    kept = home / f"pre-restore-{stamp}"
    staged = _staged(settings, env, leading)
    shutil.rmtree(staged.parent, ignore_errors=True)
    moved = _move_aside(settings, env, layout, kept)
    notify(f"{env.name}: every member's data directory moved aside to {kept}; laying down {manifest.name}")
    try:
        osuser.give_to(staged.parent, user)
        port = next(m.port for m in layout.members if m.name == leading)
        warnings = lay_down_into(settings, sources, staged, member_dir(settings, env, leading) / "tablespaces",
                                 user, progress(sum(s.manifest.size for s in sources)),
                                 own_settings=base_settings(manifest.server_major, port), strays=STRAYS)
        if dcs is not None:
            records.atomic_write(state_dir(settings, env) / DCS_FILE, json.dumps(dcs, indent=2))
    except BaseException:
        # The old cluster goes back exactly as it was and starts again; the half-laid copy goes.
        shutil.rmtree(staged.parent, ignore_errors=True)
        shutil.rmtree(member_dir(settings, env, leading) / "tablespaces", ignore_errors=True)
        for where, target in moved:
            target.rename(where)
        if live is not None:  # it ran when we came: it runs again (a cluster already down stays down)
            with contextlib.suppress(CuisineDbError):
                _restart(settings, env, layout)
        raise
    newest = sources[-1].manifest
    # Laid down again over a restore still waiting: the data directories set aside the first time stay kept.
    state = laid_down(env, sources, started=started, kept=str(kept) if moved else (previous.kept if previous else None),
                      notes=[f"Patroni: re-bootstrapped from member {leading}"])
    states.save(settings, env, state)
    opened = bootstrap(settings, env, IMMEDIATE, notify=notify) if will_open else None
    steps = [] if opened else waiting_steps(env, " and re-bootstrap the Patroni cluster from it")
    notes = [f"from the backup: {line}" for line in warnings]
    notes.append(f"every member of {env.name} is stopped until then; Patroni stays paused in the DCS"
                 if not opened else f"{env.name} runs again under Patroni: leader {leading}, the others rebuilt")
    return LaidReport(env.name, newest.name, state.chain, state.lay_seconds, state.kept if not opened else None,
                      opened, steps, notes=notes)


def _restart(settings: Settings, env: Environment, layout: Layout) -> None:
    """The old cluster back after a failed lay-down: its members started, the pause lifted (paused, Patroni would
    not start a stopped PostgreSQL), every member running again."""
    for member in layout.members:
        if not patroni_embedded.process(settings, env, member.name).running:
            patroni_embedded.start_member(settings, env, member.name)
    poll_until(lambda: _unpaused(settings, env), seconds=60, interval=1.0,
               what=f"no member of {env.name} answered to lift Patroni's pause")
    patroni_embedded.wait_ready(settings, env, layout)


def _unpaused(settings: Settings, env: Environment) -> bool | None:
    try:
        patroni.pause(settings, env, False)
    except UnavailableError:
        return None
    return True


def _switch_point(data: Path, timeline: int | None) -> tuple[str | None, str | None]:
    """Where recovery ended: the new timeline's history file says at which WAL position, and why."""
    if timeline is None:
        return None, None
    raw = safe_files.read(data / "pg_wal" / f"{timeline:08X}.history")
    lines = [line for line in (raw or b"").decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return None, None
    parts = lines[-1].split("\t")
    return (parts[1].strip() if len(parts) > 1 else None), (parts[2].strip() if len(parts) > 2 else None)


def _wait_leading(settings: Settings, env: Environment, name: str) -> patroni.Member:
    """Until Patroni's bootstrap made `name` the leader (its recovery done and promoted); Patroni giving up (its
    process exits after a failed bootstrap) is a failure naming its log."""
    log = state_dir(settings, env) / "logs" / f"{name}.log"

    def leading() -> patroni.Member | None:
        if not patroni_embedded.process(settings, env, name).running:
            tail = log.read_text(errors="replace").strip().splitlines()[-4:] if log.exists() else []
            raise FailedError(f"Patroni's bootstrap of {env.name} from the backup failed: {' | '.join(tail)}",
                              hint=f"see {log} and {member_dir(settings, env, name) / 'data' / 'log'}; "
                                   f"make db-restore env={env.name} backup=... lays the backup down again")
        try:
            view = patroni.cluster(settings, env)
        except UnavailableError:
            return None
        found = view.leader
        return found if found is not None and found.name == name and found.state == "running" else None

    return poll_until(leading, seconds=BOOTSTRAP_TIMEOUT, interval=1.0,
                      what=f"Patroni did not bootstrap {env.name} from the backup within {BOOTSTRAP_TIMEOUT:.0f}s",
                      hint=f"see {log}")


def bootstrap(settings: Settings, env: Environment, target: RecoveryTarget, *, force: bool = False,
              trust_unsigned: bool = False, notify: Notify = lambda _: None) -> OpenReport:
    """Re-bootstrap the cluster from the laid-down backup, replayed to `target` (IMMEDIATE: the backup's own end),
    then rebuild the other members and resume."""
    refuse_unless_embedded(env, "Applying the logs")
    state = states.load(settings, env)
    if state is None:
        raise RefusedError(f"nothing is laid down on {env.name} to replay onto",
                           hint=f"db-apply-logs follows a restore: make db-restore env={env.name} backup=latest")
    if state.state == states.OPENED:
        raise RefusedError(f"{state.backup} was restored on {env.name} and opened at "
                           f"{state.opened_at:%Y-%m-%d %H:%M:%S} UTC; replaying the archive would lay the backup "
                           "down again and throw away what was written since",
                           hint=f"if that may go: make db-restore env={env.name} backup={state.backup} (with "
                                "maintenance mode on, it waits for db-apply-logs)")
    if env.protected:
        maintenance.require(settings, env, "Applying the logs")
    from cuisine_db.backup.upgrade_boundary import refuse_crossing

    refuse_crossing(settings, env, env, state, target)
    end = None
    if target.kind != "immediate":
        check_target(settings, env, state, target)
        end = check_archive(settings, env, state, force=force)
    layout = _layout(settings, env)
    leading = _leading_member(layout)
    staged = _staged(settings, env, leading)
    if not (staged / "PG_VERSION").is_file():
        raise RefusedError(f"the copy of {state.backup} laid down for {env.name}'s bootstrap is gone ({staged})",
                           hint=f"make db-restore env={env.name} backup={state.backup} lays it down again")
    for process in patroni_embedded.processes(settings, env):
        if process.name != "etcd" and process.running:
            raise RefusedError(f"member {process.name} of {env.name} runs while a restore waits laid down",
                               hint=f"make cluster-down env={env.name}, then db-apply-logs again")
    user = os_user_of(settings, env)
    dcs = _saved_dcs(settings, env) or patroni_embedded.default_dcs(env.postgres_version)
    notify(f"{env.name}: re-bootstrapping the Patroni cluster from {state.backup} on member {leading}, replayed "
           f"up to {target.describe()}" + (f" (archived up to {end})" if end else ""))
    started = time.monotonic()
    patroni_embedded.ensure_etcd(settings, env, notify=notify)
    removed = patroni_embedded.remove_cluster_state(settings, env)
    notify(f"{env.name}: the cluster's state removed from etcd ({removed} keys): Patroni bootstraps it again")
    spool = enable.spool_dir(settings, env)
    fetch.clear_prefetched(spool)
    osuser.give_to(spool, user)
    folder = member_dir(settings, env, leading)
    identity: Path | None = None
    try:
        # The environment's own archive, read by its own server user (as `wal push` writes it): what wal enable
        # granted, checked again; the S3 keys in that user's own credentials file.
        enable.grant_server_access(settings, env, user)
        enable.write_credentials(settings, env, user)
        identity = identity_copy(settings, [env], folder, user)
        options = recovery_options(settings, env, env, target, spool=spool, identity=identity, action="promote",
                                   archive_off=False, trust_unsigned=trust_unsigned,
                                   system_identifier=state.system_identifier)
        command = shlex.join([sys.executable, "-m", "cuisine_db.postgres.patroni_bootstrap", "--staged",
                              str(staged)])
        patroni_embedded.configure(settings, env, leading, restore=patroni_embedded.Bootstrap(command, options, dcs))
        patroni_embedded.start_member(settings, env, leading)
        leader = _wait_leading(settings, env, leading)
    finally:
        if identity is not None:
            identity.unlink(missing_ok=True)
        fetch.clear_prefetched(spool)
        # The next start of this member is an ordinary one: no bootstrap method left in its patroni.yml.
        patroni_embedded.configure(settings, env, leading)
    replay_seconds = round(time.monotonic() - started, 3)
    reached_lsn, why = _switch_point(folder / "data", leader.timeline)
    others = [m.name for m in layout.members if m.name != leading]
    notify(f"{env.name}: {leading} leads on timeline {leader.timeline}; Patroni rebuilds {', '.join(others)}")
    seeded = _seed_others(settings, env, state.backup, others, notify)
    patroni_embedded.up(settings, env, notify=notify)
    if patroni.cluster(settings, env).paused:
        patroni.pause(settings, env, False)
    how = (f"from the repository ({state.backup}) and the archive with the toolkit's create_replica_method" if seeded
           else "from it with Patroni's basebackup (the restored cluster does not archive with cuisine-db)")
    notes = [f"Patroni re-bootstrapped {env.name} from {state.backup} on {leading} and rebuilt "
             f"{len(others)} member(s) {how}"]
    if why:
        notes.append(f"recovery ended: {why}")
    notes += _block_applications(settings, env)
    states.save(settings, env, state.with_(state=states.OPENED, opened_at=datetime.now(UTC),
                                          opened_by="apply-logs" if target.kind != "immediate" else "open",
                                          opened_timeline=leader.timeline, reached_lsn=reached_lsn, kept=None))
    if state.kept:
        shutil.rmtree(state.kept, ignore_errors=True)
    safe_files.remove(state_dir(settings, env) / DCS_FILE)
    shutil.rmtree(staged.parent, ignore_errors=True)
    return OpenReport(env.name, state.backup, target.describe(), reached_lsn, None, leader.timeline, replay_seconds,
                      state.lay_seconds, end, notes)


def _archived(settings: Settings, env: Environment, segment: str) -> bool | None:
    from cuisine_db.cluster import connect

    with connect(settings, env, "restore archive") as conn, conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(queries.load("pitr/archiver")).fetchone()
    return True if row and (row["last_archived_wal"] or "") >= segment else None


def _seed_others(settings: Settings, env: Environment, backup: str, names: list[str], notify: Notify) -> bool:
    """The other members rebuilt from the restored backup and the archive, so the restored leader serves no base
    backup (replicas/patroni_member.py): once the new timeline's first segment is archived (its history file goes
    first), their replay follows the restored leader's branch, never the old timeline past it. False when the
    restored cluster does not archive with cuisine-db: Patroni's basebackup copies the leader then."""
    from cuisine_db.cluster import connect
    from cuisine_db.replicas import patroni_member
    from cuisine_db.replicas import seed as seeding

    with connect(settings, env, "restore archive") as conn, conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(queries.load("pitr/archiver")).fetchone()
        if not row or row["archive_mode"] == "off" or " wal push " not in f" {row['archive_command']} ":
            return False
        switched = cursor.execute(queries.load("upgrade/switch_wal")).fetchone()
    if switched is None:
        return False
    segment = str(switched["last_wal"])
    poll_until(lambda: _archived(settings, env, segment), seconds=ARCHIVED_TIMEOUT, interval=1.0,
               what=f"the restored leader of {env.name} did not archive {segment} within {ARCHIVED_TIMEOUT:.0f}s: its "
                    "other members replay the archive and would miss the new timeline",
               hint=f"make db-wal-status env={env.name}; make cluster-up env={env.name} then rebuilds them from the "
                    "leader")
    resolved = catalog.find(settings, env, backup)
    patroni_member.rebuild(settings, env, names, seeding.Seed(resolved, laydown.chain(settings, env, resolved)),
                           notify=notify)
    return True


def _block_applications(settings: Settings, env: Environment) -> list[str]:
    """Maintenance mode on: the restored leader carries the backup's connection limits; block the roles again."""
    if maintenance.state(settings, env) is None:
        return []
    from cuisine_db.cluster import connect

    try:
        with connect(settings, env, "restore maintenance") as conn:
            blocked = maintenance.enable_on(conn, settings, env, None)
    except CuisineDbError as exc:
        return [f"maintenance mode is on, but application roles could not be blocked: {exc.message}"]
    return [f"maintenance mode is on: {len(blocked.roles)} application role(s) blocked on the restored leader"]
