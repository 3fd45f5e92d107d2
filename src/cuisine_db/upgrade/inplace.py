"""db-upgrade in place: pg_upgrade on a local environment's cluster, crash-safe, with a way back.

Layout: the environment's cluster is always `.cuisine/<env>/data`. The new major is built in
`.cuisine/<env>/upgrade/pg<new>/data`; at the switch the old data directory moves to `upgrade/pg<old>/data` and the
new one takes its place (two renames, replayed by a re-run), and `.cuisine/<env>/postgres_major` records the new
major for every later command. Each phase is written to `upgrade/state.json` before its work starts, so a killed
run is either rolled back (the old cluster exactly as it was) or finished (the new one complete).

The point of no return: clone and copy never touch the old data directory, so --rollback works until --finish
removes it. link shares the data files: once the new server has started they are the new cluster's, so its point
is the first start. swap moves the old cluster's directories into the new one while pg_upgrade runs, so a kill
midway would leave neither cluster whole: before pg_upgrade the stopped old cluster is kept as a hard-linked copy
(`upgrade/pg<old>.kept/data`; pg_upgrade renames and never writes the old files), which a rollback puts back; its
point is the first start too, as link's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError
from cuisine_db.ops import maintenance_state
from cuisine_db.postgres import binaries, osuser
from cuisine_db.postgres.cluster import LocalCluster
from cuisine_db.postgres.connect import client_environ
from cuisine_db.postgres.local import node_cluster, os_user_of, startup_lock
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import ToolError, run, spawn
from cuisine_db.upgrade import preflight
from cuisine_db.upgrade import state as states
from cuisine_db.upgrade.request import UpgradeRequest, validate
from cuisine_db.upgrade.state import UpgradeState
from cuisine_db.waiting import poll_until

Notify = Callable[[str], None]
CONFIG_FILES = ("pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf")
MAINTENANCE_COPY = "maintenance.json"


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    env: str
    source: int
    target: int
    method: str
    preflight: preflight.PreflightReport | None
    downtime_seconds: float | None
    statistics_seconds: float | None
    extensions_updated: tuple[str, ...]
    reindexed: tuple[str, ...]
    backup: str | None
    backup_after: str | None
    can_roll_back: bool
    notes: tuple[str, ...]
    rehearsal: str | None = None  # the backup whose passing rehearsal preceded the run


def at_major(env: Environment, major: int) -> Environment:
    return env.model_copy(update={"postgres_version": major})


def _cluster(settings: Settings, env: Environment, major: int) -> LocalCluster:
    return node_cluster(settings, at_major(env, major), settings.env_dir(env), env.port or 0)


def _waiting(settings: Settings, env: Environment, major: int) -> LocalCluster:
    """The cluster of `major` in its waiting place under upgrade/ (new before the switch, old after)."""
    build = binaries.find(major, settings.cache_dir)
    return preflight.new_cluster(settings, env, states.home(settings, env, major), build, env.port or 0)


def _pg_version(datadir: Path) -> int | None:
    try:
        return int((datadir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


def _stop_any(build_major: int, datadir: Path, settings: Settings) -> None:
    """Stop a server left running on `datadir` (a killed run's pg_upgrade started it), immediately."""
    if not (datadir / "postmaster.pid").exists():
        return
    build = binaries.find(build_major, settings.cache_dir)
    run([build.program("pg_ctl"), "--pgdata", datadir, "stop", "--mode", "immediate", "--wait"],
        user=osuser.owner_of(datadir) if os.geteuid() == 0 else None, timeout=120, check=False)


def point_of_no_return(method: str) -> str:
    return {"clone": "--finish (the old cluster is kept untouched until then)",
            "copy": "--finish (the old cluster is kept untouched until then)",
            "link": "the new server's first start (the old and new clusters share the data files)",
            "swap": "the new server's first start (pg_upgrade moves the old cluster's files into the new one; a "
                    "hard-linked copy of the old cluster is kept until that start)"}[method]


def what_is_lost(method: str, source: int) -> str:
    if method in ("clone", "copy"):
        return (f"nothing yet: PostgreSQL {source} stays on disk until --finish; a rollback loses the writes made "
                "on the new server")
    if method == "link":
        return (f"the way back: once PostgreSQL starts on the linked files, the PostgreSQL {source} cluster can no "
                "longer start; only a backup taken before brings it back")
    return (f"the way back: once PostgreSQL starts on the files pg_upgrade moved, the PostgreSQL {source} cluster "
            "(and its hard-linked copy) can no longer start; only a backup taken before brings it back")


def upgrade(settings: Settings, env: Environment, to: int | None, method: str | None, *,
            confirm: Callable[[str], None], check_only: bool = False, rehearsed: str | None = None,
            notify: Notify = lambda _: None) -> UpgradeReport:
    """The whole run: pre-flight, backup, rehearsal (protected environments), confirmation, pg_upgrade, switch,
    start, fix-ups. A state left by a killed run is resumed (past the switch) or rolled back first (before it)."""
    current = states.load(settings, env)
    if current is not None and not check_only:
        if current.phase == "done":
            raise RefusedError(f"{env.name} was upgraded to PostgreSQL {current.target} with {current.method} and "
                               "awaits --finish (remove the old cluster) or --rollback",
                               hint=f"cuisine-db upgrade --env {env.name} --finish")
        if current.reached("upgraded"):
            notify(f"resuming the upgrade of {env.name} to PostgreSQL {current.target} (it stopped at "
                   f"{current.phase})")
            return _forward(settings, env, current, None, None, time.monotonic(), notify)
        notify(f"an upgrade of {env.name} stopped at {current.phase}: putting PostgreSQL {current.source} back first")
        rollback(settings, env, notify=notify)
        env = at_major(env, current.source)
    request = validate(env, to, method)
    report = preflight.run_preflight(settings, env, request, notify=notify)
    if check_only or not report.go:
        return _report(request, report, notes=("pre-flight only: nothing was changed",) if check_only else ())
    backup = _fresh_backup(settings, env, notify) if report.take_backup else None
    rehearsal = (_rehearsal(settings, env, request, rehearsed, notify) if env.protected or rehearsed is not None
                 else None)
    notify(f"point of no return of method={request.method}: {point_of_no_return(request.method)}; lost then: "
           f"{what_is_lost(request.method, request.source)}")
    confirm(f"upgrade {env.name} from PostgreSQL {request.source} to {request.target} with method={request.method}. "
            f"Point of no return: {point_of_no_return(request.method)}. Lost then: "
            f"{what_is_lost(request.method, request.source)}")
    done = run_on(settings, env, request, report, backup=backup, notify=notify)
    return replace(done, rehearsal=rehearsal)


def _rehearsal(settings: Settings, env: Environment, request: UpgradeRequest, rehearsed: str | None,
               notify: Notify) -> str:
    """A protected environment's real run comes after a passing rehearsal: the one named, or one run now."""
    from cuisine_db.upgrade import rehearsal

    if rehearsed is not None:
        return rehearsal.require_passing(settings, env, request, rehearsed)
    notify(f"{env.name} is protected: rehearsing the upgrade on a restore of its newest full backup first")
    result = rehearsal.rehearse(settings, env, request, notify=notify)
    if not result.go:
        raise FailedError(f"the rehearsal on {result.backup} found problems; {env.name} was not touched",
                          hint=f"make db-upgrade env={env.name} to={request.target} rehearse=1 shows them")
    notify(f"rehearsal passed on {result.backup}: predicted downtime {result.predicted_downtime_seconds:.1f}s")
    return result.backup


def _report(request: UpgradeRequest, report: preflight.PreflightReport | None,
            notes: tuple[str, ...] = ()) -> UpgradeReport:
    """The report of a run that stopped at the pre-flight (no-go, or check only): nothing was changed."""
    return UpgradeReport(request.env, request.source, request.target, request.method, report, None, None, (), (),
                         None, None, False, notes)


def _fresh_backup(settings: Settings, env: Environment, notify: Notify) -> str:
    from cuisine_db.backup import physical
    from cuisine_db.backup.backup_verify import verify

    notify(f"taking a full backup of {env.name} before the upgrade")
    taken = physical.create(settings, env, "full", notify=notify)
    checked = verify(settings, env, taken.name)
    if not checked.ok:
        raise FailedError(f"the full backup {taken.name} taken before the upgrade did not verify; nothing changed",
                          hint=f"make db-verify-backup env={env.name} backup={taken.name}")
    return taken.name


def run_on(settings: Settings, env: Environment, request: UpgradeRequest, report: preflight.PreflightReport, *,
           backup: str | None = None, backup_after: bool = True, notify: Notify = lambda _: None) -> UpgradeReport:
    """The upgrade itself, after a go from the pre-flight (and the confirmation): `backup_after` takes the new
    cluster's first full backup (the rehearsal's scratch copy takes none)."""
    from cuisine_db.ops import maintenance

    was_on = maintenance.status(settings, env).on
    current = UpgradeState(env=env.name, source=request.source, target=request.target, method=request.method,
                           phase="preflight", maintenance_was_on=was_on,
                           major_file_before=states.current_major_file(settings, env),
                           started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    states.save(settings, env, current)
    try:
        _prepare_new(settings, env, current, notify)
    except BaseException:
        shutil.rmtree(states.folder(settings, env), ignore_errors=True)  # only the new cluster's folder: nothing else
        raise
    if _pause_pooler(settings, env, notify):
        current = replace(current, pooler_paused=True)
        states.save(settings, env, current)
    if not was_on:
        maintenance.enable(settings, env, f"upgrade to PostgreSQL {request.target}")
    blocked = maintenance_state.state(settings, env)
    if blocked is not None:  # the roles' own limits: the old cluster stops with them at 0, a rollback gives them back
        maintenance_state.save(states.folder(settings, env) / MAINTENANCE_COPY, blocked)
    started = time.monotonic()
    old = _cluster(settings, env, request.source)
    try:
        with connect(settings, env, "upgrade") as conn:
            conn.execute(queries.load("upgrade/checkpoint"))
            current = replace(current, archiving=_archive_last_segment(conn, notify))
            states.save(settings, env, current)
    except BaseException:
        # Nothing has stopped: the old cluster goes on as it was.
        if not was_on:
            maintenance.disable(settings, env)
        _resume_pooler(settings, env, current)
        states.forget(settings, env)
        raise
    try:
        with startup_lock(settings, env):
            current = _stop_replicas(settings, env, current, notify)
            notify(f"stopping PostgreSQL {request.source} (downtime starts)")
            old.stop()
            current = current.at("stopped")
            states.save(settings, env, current)
            current = _keep_linked_copy(settings, env, current, notify)
            current = _pg_upgrade(settings, env, current, notify)
    except BaseException:
        latest = states.load(settings, env)
        if latest is not None and not latest.point_of_no_return and not latest.reached("upgraded"):
            notify("pg_upgrade did not finish: putting the old cluster back")
            rollback(settings, env, notify=notify)
        raise
    return _forward(settings, env, current, report, backup, started, notify, backup_after=backup_after)


def _archive_last_segment(conn: Any, notify: Notify, *, timeout: float = 300) -> bool:
    """With writes blocked, close the old cluster's current WAL segment and wait until the archiver has stored it:
    the old archive area then holds every commit up to the upgrade (the shutdown checkpoint that follows carries
    no data). Nothing to do when archiving is off (False)."""
    row = conn.execute(queries.load("upgrade/archiving")).fetchone()
    if row is None or row[0] == "off":
        return False
    last = conn.execute(queries.load("upgrade/switch_wal")).fetchone()[0]
    notify(f"waiting for the archiver to store {last}, the old cluster's last segment")
    failed = None

    def stored() -> bool | None:
        nonlocal failed
        archived, failed, _when = conn.execute(queries.load("upgrade/archived_wal")).fetchone()
        return (archived is not None and str(archived)[:24] >= last) or None

    return poll_until(stored, seconds=timeout, interval=0.2, what=lambda: FailedError(
        f"the archiver has not stored {last} within {timeout:.0f}s (last failure: {failed or 'none'}); nothing was "
        "stopped", hint="cuisine-db wal status shows why archiving stalls"))


def _system_identifier(datadir: Path) -> str:
    """From pg_control's first 8 bytes (pg_upgrade --link renames the old one to pg_control.old)."""
    for name in ("pg_control", "pg_control.old"):
        try:
            data = (datadir / "global" / name).read_bytes()[:8]
        except FileNotFoundError:
            continue
        return str(int.from_bytes(data, "little"))
    raise FailedError(f"{datadir} has no pg_control: cannot read its system identifier")


def _new_archive_area(settings: Settings, env: Environment, current: UpgradeState) -> str:
    """Before the new server first starts: its system identifier gets its own WAL archive area (and the old one is
    closed in the timeline record), so its segments never mix with the old cluster's; idempotent."""
    from cuisine_db.backup.wal import areas, enable

    old_data = states.home(settings, env, current.source) / "data"
    area = areas.begin(env.name, settings.env_dir(env), old_system=_system_identifier(old_data),
                       old_major=current.source, new_system=_system_identifier(settings.env_dir(env) / "data"),
                       new_major=current.target, at=datetime.now(UTC).isoformat(timespec="seconds"))
    if current.archiving:  # its server user must be able to write the new area
        enable.grant_server_access(settings, env, os_user_of(settings, env))
    return area


def _prepare_new(settings: Settings, env: Environment, current: UpgradeState, notify: Notify) -> None:
    """The new cluster, initialised in its waiting place while the old one still serves (initdb is no part of
    the downtime, as in pg_upgrade's own procedure); a rollback removes it."""
    new = _waiting(settings, env, current.target)
    shutil.rmtree(new.home, ignore_errors=True)
    notify(f"initialising PostgreSQL {current.target} like {env.name}'s cluster")
    new.init()
    preflight.trust_own_socket(new, os_user_of(settings, env))


def _keep_linked_copy(settings: Settings, env: Environment, current: UpgradeState, notify: Notify) -> UpgradeState:
    """swap: the stopped old cluster as a tree of hard links beside it (pg_control copied: pg_upgrade starts the old
    server once more and its shutdown rewrites that file in place). pg_upgrade --swap only renames the old files, so
    the copy stays the old cluster exactly until the new server first writes into the shared files."""
    if current.method != "swap" or current.kept:
        return current
    live = settings.env_dir(env) / "data"
    tablespaces = live / "pg_tblspc"
    if tablespaces.is_dir() and any(tablespaces.iterdir()):
        raise FailedError(f"{env.name}'s cluster has tablespaces outside its data directory: method=swap keeps a "
                          "hard-linked copy of the data directory only, so a kill midway could not be undone there",
                          hint="choose method=link (seconds too, the same point of no return)")
    home = states.kept(settings, env, current.source)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    home.chmod(0o711)
    notify(f"keeping PostgreSQL {current.source}'s data directory as hard links in {home} until the first start")
    _link_tree(live, home / "data")
    current = replace(current, kept=True)
    states.save(settings, env, current)
    return current


def _link_tree(source: Path, target: Path) -> None:
    """`target` a copy of `source` whose files are hard links, owners and modes kept; global/pg_control copied."""
    for root, dirs, files in os.walk(source):
        here = Path(root)
        there = target / here.relative_to(source)
        info = here.stat()
        there.mkdir(mode=0o700)
        os.chown(there, info.st_uid, info.st_gid)
        there.chmod(info.st_mode & 0o7777)
        for name in [*dirs, *files]:
            item = here / name
            if item.is_symlink():
                os.symlink(os.readlink(item), there / name)
                os.lchown(there / name, item.lstat().st_uid, item.lstat().st_gid)
        dirs[:] = [name for name in dirs if not (here / name).is_symlink()]
        for name in files:
            item = here / name
            if item.is_symlink():
                continue
            if item == source / "global" / "pg_control":
                shutil.copy2(item, there / name)
                os.chown(there / name, item.stat().st_uid, item.stat().st_gid)
            else:
                os.link(item, there / name)


def _pg_upgrade(settings: Settings, env: Environment, current: UpgradeState, notify: Notify) -> UpgradeState:
    owner = os_user_of(settings, env)
    old_build = binaries.find(current.source, settings.cache_dir)
    new = _waiting(settings, env, current.target)
    current = current.at("upgrading")  # swap too: its hard-linked copy is the old cluster until the first start
    states.save(settings, env, current)
    old_password = preflight.superuser_password(settings.env_dir(env) / "pgpass")
    passfile = new.home / "run" / "pgpass.upgrade"
    old_port, new_port = free_port(), free_port()
    preflight.upgrade_passfile(passfile, owner, {old_port: old_password,
                                                 new_port: preflight.superuser_password(new.passfile)})
    notify(f"pg_upgrade --{current.method}")
    try:
        with preflight.socket_dir(owner) as sockets:
            argv = preflight.pg_upgrade_argv(old_build, new.build, settings.env_dir(env) / "data", new.datadir,
                                             old_port, new_port, current.method, check=False, sockets=sockets)
            # spawn(): pg_upgrade dies with this process, so a killed run leaves no pg_upgrade writing behind the next.
            process = spawn(argv, user=owner, cwd=new.home / "run", env={"PGPASSFILE": str(passfile)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            output, _ = process.communicate()
        if process.returncode != 0:
            raise ToolError("pg_upgrade", process.returncode, output.decode(errors="replace"))
    finally:
        passfile.unlink(missing_ok=True)
    new.passfile.unlink(missing_ok=True)  # the roles, passwords included, are the old cluster's now
    for name in CONFIG_FILES:
        source = settings.env_dir(env) / "data" / name
        if source.exists():
            shutil.copy2(source, new.datadir / name)
            if owner:
                shutil.chown(new.datadir / name, owner, owner)
    current = current.at("upgraded")
    states.save(settings, env, current)
    return current


def _switch(settings: Settings, env: Environment, current: UpgradeState) -> None:
    """data → upgrade/pg<old>/data, upgrade/pg<new>/data → data; each step replayable after a kill."""
    live = settings.env_dir(env) / "data"
    old_home = states.home(settings, env, current.source)
    new_data = states.home(settings, env, current.target) / "data"
    if _pg_version(live) == current.source:
        old_home.mkdir(parents=True, exist_ok=True)
        old_home.chmod(0o711)
        live.rename(old_home / "data")
    if not live.exists() and new_data.exists():
        new_data.rename(live)
    states.record_major(settings, env, current.target)


def _forward(settings: Settings, env: Environment, current: UpgradeState, report: preflight.PreflightReport | None,
             backup: str | None, started: float, notify: Notify, *, backup_after: bool = True) -> UpgradeReport:
    from cuisine_db.ops import maintenance

    new_env = at_major(env, current.target)
    with startup_lock(settings, env):
        if not current.reached("switched"):
            _switch(settings, env, current)
            current = current.at("switched")
            states.save(settings, env, current)
        if not current.reached("started"):
            notify(f"the new cluster archives into its own area: wal/{_new_archive_area(settings, env, current)}/")
            current = replace(current, phase="started", point_of_no_return=current.method in ("link", "swap"))
            states.save(settings, env, current)
        notify(f"starting PostgreSQL {current.target}")
        _cluster(settings, env, current.target).start()
        shutil.rmtree(states.kept(settings, env, current.source), ignore_errors=True)  # swap's copy: no way back now
    updated = _update_extensions(settings, new_env)
    reindexed = _reindex(settings, new_env, report.indexes_to_rebuild if report else ())
    if not current.maintenance_was_on:
        maintenance.disable(settings, new_env)
    _resume_pooler(settings, env, current)
    downtime = time.monotonic() - started  # stop to maintenance mode off: how long applications could not write
    clock = time.monotonic()
    notify("statistics: vacuumdb --analyze-in-stages" + (" --missing-stats-only" if current.target >= 18 else ""))
    _statistics(settings, new_env, current.target)
    statistics = time.monotonic() - clock
    # The first base backup of the new system identifier: the earlier ones restore only into the old major.
    from cuisine_db.backup import physical

    after = None
    if backup_after:
        notify(f"a full backup of PostgreSQL {current.target}, the new cluster's first")
        after = physical.create(settings, new_env, "full", notify=notify).name
        _rebuild_replicas(settings, new_env, current.replicas, after, notify)
    current = current.at("done")
    states.save(settings, env, current)
    notes = [f"{env.name} now runs PostgreSQL {current.target}; recorded in {settings.env_dir(env) / 'postgres_major'} "
             "(cuisine-db.toml's postgres_version is left as you wrote it)"]
    if current.point_of_no_return:
        notes.append(f"the PostgreSQL {current.source} cluster can no longer start; --finish removes what is left "
                     "of it")
    else:
        notes.append(f"PostgreSQL {current.source} is kept in {states.home(settings, env, current.source)}: "
                     "--rollback returns to it (losing writes made since), --finish removes it")
    return UpgradeReport(env.name, current.source, current.target, current.method, report, round(downtime, 2),
                         round(statistics, 2), tuple(updated), tuple(reindexed), backup, after,
                         not current.point_of_no_return, tuple(notes))


def _databases(settings: Settings, env: Environment) -> list[str]:
    with connect(settings, env, "upgrade") as conn:
        return [name for (name,) in conn.execute(queries.load("upgrade/databases")).fetchall()
                if name != "template0"]


def _update_extensions(settings: Settings, env: Environment) -> list[str]:
    updated = []
    for database in _databases(settings, env):
        with connect(settings, env, "upgrade", dbname=database) as conn:
            for name, before, after in conn.execute(queries.load("upgrade/outdated_extensions")).fetchall():
                conn.execute(preflight.quote_update(name))
                updated.append(f"{database}: {name} {before}→{after}")
    return updated


def _reindex(settings: Settings, env: Environment, indexes: tuple[str, ...]) -> list[str]:
    done = []
    for item in indexes:
        database, index = item.split(": ", 1)
        with connect(settings, env, "upgrade", dbname=database) as conn:
            # The name is the server's own regclass text (quoted where needed), read by the pre-flight.
            conn.execute(queries.load("upgrade/reindex").format(index=sql.SQL(index)))
        done.append(item)
    return done


def _statistics(settings: Settings, env: Environment, target: int) -> None:
    """18's pg_upgrade keeps the planner statistics (extended statistics excepted); older ones keep none."""
    build = binaries.find(target, settings.cache_dir)
    argv: list[str | Path] = [build.program("vacuumdb"), "--all", "--analyze-in-stages"]
    if target >= 18:
        argv.append("--missing-stats-only")
    run(argv, env=client_environ(settings, env, dbname="postgres"), timeout=24 * 3600)


def rollback(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> UpgradeState:
    """Put the old major back exactly as it was before the upgrade (before the point of no return only)."""
    from cuisine_db.ops import maintenance

    current = states.load(settings, env)
    if current is None:
        raise RefusedError(f"{env.name} has no upgrade to roll back")
    if current.point_of_no_return:
        raise RefusedError(f"{env.name}'s upgrade with method={current.method} is past its point of no return "
                           f"({point_of_no_return(current.method)}): PostgreSQL {current.source} cannot come back "
                           "from this disk", hint="restore a backup taken before the upgrade into a cluster of "
                           f"PostgreSQL {current.source} (its manifest names the major)")
    live = settings.env_dir(env) / "data"
    old_home = states.home(settings, env, current.source)
    new_home = states.home(settings, env, current.target)
    with startup_lock(settings, env):
        for major, datadir in ((current.target, live), (current.target, new_home / "data"),
                               (current.source, live), (current.source, old_home / "data")):
            if _pg_version(datadir) == major:
                _stop_any(major, datadir, settings)
        if _pg_version(live) == current.target:
            notify(f"stopping PostgreSQL {current.target}")
            _cluster(settings, env, current.target).stop()
            live.rename(new_home / "data")
        if not live.exists() and (old_home / "data").exists():
            (old_home / "data").rename(live)
        linked = states.kept(settings, env, current.source)
        if current.kept and current.reached("upgrading") and (linked / "data").exists():
            # swap: pg_upgrade may have moved some of the old directories away; the hard-linked copy is whole.
            # Each step is replayed by a rollback killed in the middle of this one.
            notify(f"putting back PostgreSQL {current.source}'s hard-linked copy (pg_upgrade --swap had begun)")
            if live.exists():
                live.rename(linked / "moved")
            (linked / "data").rename(live)
        control = live / "global" / "pg_control"
        if not control.exists() and control.with_name("pg_control.old").exists():
            control.with_name("pg_control.old").rename(control)  # pg_upgrade --link disabled it
        states.record_major(settings, env, current.major_file_before)
        _take_back_area(settings, env, new_home / "data", live)
        shutil.rmtree(new_home, ignore_errors=True)
        shutil.rmtree(old_home, ignore_errors=True)
        shutil.rmtree(linked, ignore_errors=True)
        notify(f"starting PostgreSQL {current.source}")
        _cluster(settings, env, current.source).start()
    _replicas_back(settings, at_major(env, current.source), current, notify)
    if not current.maintenance_was_on:
        # The old cluster stopped with the application roles blocked; the upgrade may have ended maintenance mode
        # on the new one since: its saved state gives the old cluster's roles their limits back.
        kept = states.folder(settings, env) / MAINTENANCE_COPY
        if maintenance_state.state(settings, env) is None and kept.exists():
            shutil.copy2(kept, maintenance_state.state_path(settings, env))
        maintenance.disable(settings, at_major(env, current.source))
    _resume_pooler(settings, env, current)
    states.forget(settings, env)
    shutil.rmtree(states.folder(settings, env), ignore_errors=True)
    return current


def _pooler_pid(settings: Settings, env: Environment) -> int | None:
    if env.pooler is None:
        return None
    from cuisine_db.pooler import process

    return process.status(settings, env).pid


def _pause_pooler(settings: Settings, env: Environment, notify: Notify) -> bool:
    """PgBouncer's PAUSE (SIGUSR1): queries in flight finish, its server connections close, clients stay connected
    and wait; False when the environment runs no pooler."""
    pid = _pooler_pid(settings, env)
    if pid is None:
        return False
    notify(f"pausing PgBouncer (pid {pid}): its clients wait through the switch")
    os.kill(pid, signal.SIGUSR1)
    return True


def _resume_pooler(settings: Settings, env: Environment, current: UpgradeState) -> None:
    """RESUME (SIGUSR2): the waiting clients' queries go to the server now on the environment's port."""
    if current.pooler_paused:
        _resume(settings, env)


def _resume(settings: Settings, env: Environment) -> None:
    pid = _pooler_pid(settings, env)
    if pid is not None:
        os.kill(pid, signal.SIGUSR2)


@contextmanager
def pooler_held(settings: Settings, env: Environment, notify: Notify) -> Iterator[None]:
    """PgBouncer paused for the block's length, resumed after it however it ends. Its clients wait instead of
    failing: one failed server login (a restarting server, a role maintenance mode blocks) makes it refuse every
    client for server_login_retry (15 s by default) after the server is back."""
    paused = _pause_pooler(settings, env, notify)
    try:
        yield
    finally:
        if paused:
            _resume(settings, env)


def _stop_replicas(settings: Settings, env: Environment, current: UpgradeState, notify: Notify) -> UpgradeState:
    """The recorded local replicas stop before the primary (kept on disk, their slots kept on the old cluster, so
    a rollback starts them again); their names and ports are kept to rebuild them on the new cluster."""
    nodes = preflight.replicas_to_rebuild(settings, env)
    if not nodes or current.replicas:
        return current
    for node in nodes:
        notify(f"stopping replica {node.name} (port {node.port}); it is rebuilt on the new cluster")
        node_cluster(settings, env, settings.env_dir(env) / node.home, node.port).stop()
    current = replace(current, replicas=tuple((node.name, node.port) for node in nodes))
    states.save(settings, env, current)
    return current


def _rebuild_replicas(settings: Settings, env: Environment, replicas: tuple[tuple[str, int], ...], backup: str,
                      notify: Notify) -> None:
    """Each replica again, of `env`'s current cluster, under its name and on its port: seeded from `backup` and the
    WAL archive (replicas/seed.py), so the primary serves no copy. A re-run after a kill drops a half-made one."""
    from cuisine_db.postgres import topology
    from cuisine_db.replicas import create, drop

    for name, port in replicas:
        if topology.load(settings, env).replica(name) is not None:
            drop.drop(settings, env, name, yes=True)  # the upgrade rebuilds its own replicas: confirmed with it
        shutil.rmtree(settings.env_dir(env) / topology.replica_home(name), ignore_errors=True)
        notify(f"rebuilding replica {name} on port {port} from {backup} and the archive")
        create.create(settings, env, name, port=port, backup=backup, notify=notify)


def _replicas_back(settings: Settings, env: Environment, current: UpgradeState, notify: Notify) -> None:
    """After a rollback: replicas stopped by the run start again on their slots; ones already rebuilt on the new
    cluster are rebuilt on the old one from its newest full backup."""
    from cuisine_db.postgres import topology

    rebuild = []
    for name, port in current.replicas:
        node = topology.load(settings, env).replica(name)
        datadir = settings.env_dir(env) / topology.replica_home(name) / "data"
        if node is not None and _pg_version(datadir) == current.source:
            _stop_any(current.source, datadir, settings)
            node_cluster(settings, env, settings.env_dir(env) / node.home, node.port).start()
        else:
            rebuild.append((name, port))
    if rebuild:
        _rebuild_replicas(settings, env, tuple(rebuild), "latest", notify)


def _take_back_area(settings: Settings, env: Environment, new_data: Path, old_data: Path) -> None:
    """The rolled-back cluster archives into its old area again; the new one's area stays unused."""
    from cuisine_db.backup.wal import areas

    try:
        new_system, old_system = _system_identifier(new_data), _system_identifier(old_data)
    except FailedError:
        return  # pg_upgrade never made the new cluster: the record was never written
    areas.take_back(settings.env_dir(env), old_system=old_system, new_system=new_system)


def finish(settings: Settings, env: Environment, *, notify: Notify = lambda _: None) -> UpgradeState:
    """Remove the old cluster once the new one is trusted: the end of the way back."""
    current = states.load(settings, env)
    if current is None:
        raise RefusedError(f"{env.name} has no upgrade to finish")
    if current.phase != "done":
        raise RefusedError(f"{env.name}'s upgrade stopped at {current.phase}; run the upgrade again to complete it, "
                           "or --rollback")
    notify(f"removing PostgreSQL {current.source}'s data directory")
    states.save(settings, env, replace(current, point_of_no_return=True))
    shutil.rmtree(states.home(settings, env, current.source), ignore_errors=True)
    states.forget(settings, env)
    shutil.rmtree(states.folder(settings, env), ignore_errors=True)
    return current
