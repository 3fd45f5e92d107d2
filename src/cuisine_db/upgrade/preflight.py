"""The pre-flight of db-upgrade: one table of checks, go or no-go, before anything is changed.

`pg_upgrade --check` needs the old cluster stopped or reachable on a Unix socket, and the tool's clusters listen on
TCP only; so it runs on a snapshot: pg_basebackup of the live cluster into `.cuisine/<env>/upgrade/check/`, shut
down cleanly once with the old build, checked against a new cluster initialised by the project's own cluster code
with the target build; both are removed afterwards. The new cluster also answers what only the target build knows:
its extensions, its settings and its collation versions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import humanize
from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import CuisineDbError
from cuisine_db.postgres import binaries, osuser, pgpass, safe_files
from cuisine_db.postgres.binaries import PgBuild
from cuisine_db.postgres.cluster import SUPERUSER, LocalCluster
from cuisine_db.postgres.local import cluster_for, os_user_of
from cuisine_db.postgres.ports import free_port
from cuisine_db.postgres.runner import run
from cuisine_db.upgrade import state as upgrade_state
from cuisine_db.upgrade.request import UpgradeRequest

GO, NO_GO, NOTE = "go", "no-go", "note"
# What the project's clusters are initialised with (postgres/cluster.py): the new one must match the old.
EXPECTED_INIT = {"encoding": "UTF8", "collate": "C", "ctype": "C", "checksums": "on"}
# Room beyond the data a method writes: new catalogs, WAL of the first checkpoints, logs.
HEADROOM = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the pre-flight table."""

    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class PreflightReport:
    env: str
    source: int
    target: int
    method: str
    old_version: str
    new_version: str
    rows: tuple[Row, ...]
    data_bytes: int
    take_backup: bool
    extensions: dict[str, list[str]] = field(default_factory=dict)  # database -> extensions installed
    indexes_to_rebuild: tuple[str, ...] = ()

    @property
    def go(self) -> bool:
        return all(row.status != NO_GO for row in self.rows)


def builds(settings: Settings, request: UpgradeRequest) -> tuple[PgBuild, PgBuild]:
    """The old and the new build (the new one missing: UnavailableError with the install command)."""
    return (binaries.find(request.source, settings.cache_dir), binaries.find(request.target, settings.cache_dir))


def data_size(datadir: Path) -> int:
    """Bytes the data directory occupies on disk."""
    total = 0
    for root, _dirs, files in os.walk(datadir):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def needed_bytes(method: str, size: int) -> int:
    """Free space a method needs beside the old cluster: copy a full second copy, the others new catalogs only."""
    return size + HEADROOM if method == "copy" else size // 20 + HEADROOM


@dataclass(frozen=True, slots=True)
class _OldFacts:
    init: dict[str, str]
    extensions: dict[str, list[tuple[str, str]]]
    slots: list[tuple[str, str, str, bool]]
    collation_indexes: list[tuple[str, str, str, str]]
    altered: list[str]
    archive_mode: str
    system_identifier: str
    archive_command: str = ""


def _old_facts(settings: Settings, env: Environment) -> _OldFacts:
    with connect(settings, env, "upgrade pre-flight") as conn:
        row = conn.execute(queries.load("upgrade/cluster_settings")).fetchone()
        init = dict(zip(("encoding", "collate", "ctype", "checksums"), row or ("",) * 4, strict=True))
        names = [name for (name,) in conn.execute(queries.load("upgrade/databases")).fetchall()]
        slots = [tuple(found) for found in conn.execute(queries.load("upgrade/replication_slots")).fetchall()]
        altered = [name for (name,) in conn.execute(queries.load("upgrade/altered_settings")).fetchall()]
        archiving = conn.execute(queries.load("upgrade/archiving")).fetchone()
        system = conn.execute(queries.load("upgrade/system_identifier")).fetchone()
    extensions: dict[str, list[tuple[str, str]]] = {}
    indexes: list[tuple[str, str, str, str]] = []
    for name in names:
        with connect(settings, env, "upgrade pre-flight", dbname=name) as conn:
            extensions[name] = [(ext, version) for ext, version in
                                conn.execute(queries.load("upgrade/extensions")).fetchall()]
            indexes += [(f"{name}: {index}", coll, provider, version) for index, coll, provider, version in
                        conn.execute(queries.load("upgrade/collation_indexes")).fetchall()]
    return _OldFacts(init, extensions, slots, indexes, altered,
                     str(archiving[0]) if archiving else "off", str(system[0]) if system else "",
                     str(archiving[1]) if archiving else "")


def _connect_local(cluster: LocalCluster) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=cluster.port, user=SUPERUSER, dbname="postgres",
                           passfile=str(cluster.passfile), autocommit=True, connect_timeout=10,
                           application_name="cuisine-db upgrade pre-flight")


@dataclass(frozen=True, slots=True)
class _NewFacts:
    available: dict[str, str]
    settings: set[str]
    collations: dict[str, str]


def new_cluster(settings: Settings, env: Environment, home: Path, build: PgBuild, port: int) -> LocalCluster:
    """A cluster of the target build made by the project's own cluster code (same initdb options, same settings)."""
    return LocalCluster(home=home, port=port, build=build, os_user=os_user_of(settings, env),
                        extra_settings=env.server_settings)


def _new_facts(cluster: LocalCluster, collations: list[str]) -> _NewFacts:
    cluster.start()
    try:
        with _connect_local(cluster) as conn:
            available = dict(conn.execute(queries.load("upgrade/available_extensions")).fetchall())
            names = {name for (name,) in conn.execute(queries.load("upgrade/setting_names")).fetchall()}
            versions = {coll: version for coll, _provider, version in
                        conn.execute(queries.load("upgrade/collation_versions"), {"names": collations}).fetchall()}
    finally:
        cluster.stop()
    return _NewFacts(available, names, versions)


def upgrade_passfile(path: Path, owner: str | None, entries: dict[int, str]) -> None:
    """A 0600 passfile for pg_upgrade, owned by the server's user: one superuser password per port."""
    body = "".join(f"*:{port}:*:{SUPERUSER}:{pgpass._escape(password)}\n" for port, password in entries.items())
    path.unlink(missing_ok=True)
    safe_files.write(path, body, owner=owner)


def trust_own_socket(cluster: LocalCluster, owner: str | None) -> None:
    """The new cluster's pg_hba.conf while pg_upgrade runs: its superuser over pg_upgrade's private socket (in a
    0700 folder of the server's user) without a password, since restoring the old roles changes that password
    midway; and the tool over loopback with its password. The old cluster's pg_hba.conf replaces it after."""
    hba = cluster.datadir / "pg_hba.conf"
    hba.unlink()
    safe_files.write(hba, f"local all {SUPERUSER} trust\nhost all {SUPERUSER} 127.0.0.1/32 scram-sha-256\n",
                     owner=owner)


def superuser_password(passfile: Path) -> str:
    for entry in pgpass.read(passfile):
        if entry.user == SUPERUSER:
            return entry.password
    raise CuisineDbError(f"{passfile} holds no password for {SUPERUSER}")


@contextlib.contextmanager
def socket_dir(owner: str | None) -> Iterator[Path]:
    """A short private folder for pg_upgrade's sockets: its default, the working folder, can exceed the 107 bytes a
    socket path may have under a deep project folder."""
    folder = Path(tempfile.mkdtemp(prefix="cuisine-db-", dir="/tmp"))
    try:
        osuser.give_to(folder, owner)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pg_upgrade_argv(old: PgBuild, new: PgBuild, old_data: Path, new_data: Path, old_port: int, new_port: int,
                    method: str, *, check: bool, sockets: Path, jobs: int = 2) -> list[str | Path]:
    """pg_upgrade's command line; archiving is off on both servers while it runs (nothing reaches the archive)."""
    argv: list[str | Path] = [
        new.program("pg_upgrade"), "--old-bindir", old.bindir, "--new-bindir", new.bindir, "--socketdir", sockets,
        "--old-datadir", old_data, "--new-datadir", new_data, "--username", SUPERUSER,
        "--old-port", str(old_port), "--new-port", str(new_port), "--jobs", str(jobs),
        "--old-options", "-c archive_mode=off", "--new-options", "-c archive_mode=off", f"--{method}",
    ]
    if check:
        argv.append("--check")
    return argv


def _snapshot(settings: Settings, env: Environment, cluster: LocalCluster, old: PgBuild, target: Path,
              passfile: Path, owner: str | None) -> None:
    """A consistent copy of the live cluster, shut down cleanly (pg_upgrade accepts nothing else)."""
    from cuisine_db.backup.recovery import private_server

    osuser.give_to(target.parent, owner)
    run([old.program("pg_basebackup"), "--pgdata", target, "--host", "127.0.0.1", "--port", str(cluster.port),
         "--username", SUPERUSER, "--wal-method", "stream", "--checkpoint", "fast", "--no-sync"],
        user=owner, env={"PGPASSFILE": str(passfile)}, timeout=3600)
    log = target.parent / "snapshot.log"
    with private_server(old.bindir, target, free_port(), owner, log, {"archive_mode": "off"}) as server:
        server.wait(pause=False, deadline=600)


def _pg_upgrade_check(settings: Settings, env: Environment, request: UpgradeRequest, cluster: LocalCluster,
                      old: PgBuild, new: PgBuild, work: Path, notify: Callable[[str], None]
                      ) -> tuple[Row, LocalCluster]:
    owner = os_user_of(settings, env)
    old_password = superuser_password(cluster.passfile)
    osuser.give_to(work, owner, 0o711)
    passfile = work / "pgpass.upgrade"
    snapshot = work / "old" / "data"
    notify(f"pre-flight: snapshot of {env.name}'s cluster for pg_upgrade --check")
    upgrade_passfile(passfile, owner, {cluster.port: old_password})
    _snapshot(settings, env, cluster, old, snapshot, passfile, owner)
    notify(f"pre-flight: a PostgreSQL {request.target} cluster initialised like {env.name}'s")
    fresh = new_cluster(settings, env, work / "new", new, free_port())
    fresh.init()
    trust_own_socket(fresh, owner)
    old_port, new_port = free_port(), free_port()
    upgrade_passfile(passfile, owner, {old_port: old_password,
                                       new_port: superuser_password(fresh.passfile)})
    runs = work / "new" / "run"
    try:
        with socket_dir(owner) as sockets:
            argv = pg_upgrade_argv(old, new, snapshot, fresh.datadir, old_port, new_port, request.method, check=True,
                                   sockets=sockets)
            result = run(argv, user=owner, cwd=runs, env={"PGPASSFILE": str(passfile)}, timeout=3600, check=False)
    finally:
        passfile.unlink(missing_ok=True)
    if result.returncode == 0:
        row = Row("pg_upgrade --check", GO, f"PostgreSQL {old.version} → {new.version} with --{request.method}: "
                  "every check passed")
    else:
        lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()
                 if line.strip() and not line.strip().endswith(" ok") and not set(line.strip()) <= set("-")]
        row = Row("pg_upgrade --check", NO_GO, " / ".join(lines[-4:]) or f"exit {result.returncode}",
                  "fix what pg_upgrade names, or choose another method=")
    return row, fresh


def backup_row(settings: Settings, env: Environment, max_age: timedelta, system: str) -> tuple[Row, bool]:
    """The newest full backup *of this cluster* (its system identifier: not one of a cluster rolled back from)."""
    from cuisine_db.backup.catalog import list_backups

    fulls = [entry for entry in list_backups(settings, env) if entry.type == "full" and entry.complete
             and entry.env == env.name and entry.manifest is not None
             and entry.manifest.system_identifier == system]
    if not fulls:
        return Row("newest full backup", NOTE, "none yet: one is taken and verified before the run"), True
    newest = max(fulls, key=lambda entry: entry.taken_at)
    age = datetime.now(UTC) - newest.taken_at
    if newest.verification is None or not newest.verification.ok:
        return Row("newest full backup", NOTE, f"{newest.name} is not verified: a new one is taken and verified "
                   "before the run"), True
    if age > max_age:
        return Row("newest full backup", NOTE, f"{newest.name} is {age.total_seconds() / 3600:.1f} h old (more than "
                   f"{max_age.total_seconds() / 3600:.0f} h): a new one is taken and verified before the run"), True
    return Row("newest full backup", GO, f"{newest.name}, verified, {age.total_seconds() / 3600:.1f} h old"), False


def our_archive_command(settings: Settings, env: Environment, command: str) -> bool:
    from cuisine_db.backup.wal import enable

    return command == enable.archive_command(settings, env)


def replicas_to_rebuild(settings: Settings, env: Environment) -> list[Any]:
    """The environment's recorded local replicas, when its own cluster is the primary (after a promotion the
    upgrade is refused: the slots then belong to a primary that is not the environment's cluster)."""
    from cuisine_db.postgres import topology

    recorded = topology.load(settings, env)
    return [] if recorded.primary is not None else [node for node in recorded.replicas if node.slot]


def run_preflight(settings: Settings, env: Environment, request: UpgradeRequest, *,
                  notify: Callable[[str], None] = lambda _: None,
                  max_backup_age: timedelta | None = None) -> PreflightReport:
    """Every check, nothing changed (the snapshot and the check cluster are removed whatever happens)."""
    old, new = builds(settings, request)
    cluster = cluster_for(settings, env)
    facts = _old_facts(settings, env)
    rows: list[Row] = []
    differs = {key: facts.init.get(key) for key, value in EXPECTED_INIT.items() if facts.init.get(key) != value}
    if differs:
        rows.append(Row("initdb settings", NO_GO, "the cluster was not initialised as the tool does: "
                        + ", ".join(f"{key}={value}" for key, value in differs.items()),
                        "upgrade it by hand with pg_upgrade, after initdb with the same settings"))
    else:
        rows.append(Row("initdb settings", GO, "UTF8, C locale, data checksums on: the new cluster gets the same"))
    size = data_size(cluster.datadir)
    free = shutil.disk_usage(settings.env_dir(env)).free
    need = needed_bytes(request.method, size)
    rows.append(Row("free disk", GO if free >= need + size else NO_GO,
                    f"{humanize.size(free)} free; method={request.method} needs {humanize.size(need)}, the check's "
                    f"snapshot {humanize.size(size)} (removed after)",
                    "" if free >= need + size else "free space, or method=link"))
    physical = [slot for slot in facts.slots if slot[1] == "physical"]
    logical = [slot for slot in facts.slots if slot[1] == "logical"]
    rebuilt = replicas_to_rebuild(settings, env)
    ours = {node.slot for node in rebuilt}
    archived_by_us = facts.archive_mode != "off" and our_archive_command(settings, env, facts.archive_command)
    if physical and not logical and {slot[0] for slot in physical} <= ours and archived_by_us:
        rows.append(Row("replication slots", GO, f"replicas {', '.join(node.name for node in rebuilt)}: stopped "
                        "before the primary, rebuilt after the upgrade from the new cluster's first full backup and "
                        "the archive (on their ports, under their names; nothing is copied from the primary)"))
    elif physical or logical:
        names = ", ".join(f"{name} ({kind})" for name, kind, _db, _active in facts.slots)
        rows.append(Row("replication slots", NO_GO, f"{names}: pg_upgrade carries no physical slot, and replicas "
                        "must be rebuilt from the new cluster", "drop the replicas (make db-drop-replica) before "
                        "upgrading, and create them again after"))
    else:
        rows.append(Row("replication slots", GO, "none"))
    if facts.archive_mode != "off":
        if not our_archive_command(settings, env, facts.archive_command):
            rows.append(Row("WAL archive", NO_GO, f"archive_mode={facts.archive_mode} with an archive_command that "
                            "is not this installation's cuisine-db wal push: the new cluster (a new system identifier, "
                            "timeline 1 again) would archive WAL names the archive already holds",
                            f"cuisine-db wal enable --env {env.name}, or archive_mode=off while upgrading"))
        else:
            rows.append(Row("WAL archive", GO, f"archive_mode={facts.archive_mode}: the old cluster's last segment is "
                            "archived before the stop; the new cluster archives into an area of its own, "
                            f"wal/{env.name}+<new system identifier>/ (the old area stays for the backups before)"))
    else:
        rows.append(Row("WAL archive", GO, "archiving is off"))
    work = upgrade_state.folder(settings, env) / "check"
    _clear(work, old, new, os_user_of(settings, env))
    new_facts: _NewFacts | None = None
    try:
        fresh: LocalCluster | None = None
        try:
            check_row, fresh = _pg_upgrade_check(settings, env, request, cluster, old, new, work, notify)
        except CuisineDbError as exc:
            check_row = Row("pg_upgrade --check", NO_GO, exc.message, "see the message")
        rows.append(check_row)
        if fresh is not None and fresh.initialized():
            new_facts = _new_facts(fresh, sorted({coll for _i, coll, _p, _v in facts.collation_indexes}))
    finally:
        _clear(work, old, new, os_user_of(settings, env))
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # the upgrade/ folder, unless a run keeps its state there
    extensions = {database: [name for name, _version in found] for database, found in facts.extensions.items()}
    indexes: list[str] = []
    if new_facts is not None:
        rows.append(_extensions_row(facts.extensions, new_facts.available))
        rows.append(_settings_row(env, facts.altered, new_facts.settings))
        row, indexes = _collations_row(facts.collation_indexes, new_facts.collations)
        rows.append(row)
    # The policy's age: db-backup-status's limit for the newest full backup ([environments.E.wal]).
    max_age = max_backup_age or timedelta(hours=env.wal.max_full_backup_age_hours)
    backup, take = backup_row(settings, env, max_age, facts.system_identifier)
    rows.append(backup)
    return PreflightReport(env.name, request.source, request.target, request.method, old.version, new.version,
                           tuple(rows), size, take, extensions, tuple(indexes))


def stop_leftover(build: PgBuild, datadir: Path, owner: str | None) -> None:
    """Stop a server still running on `datadir` (left by a killed run), immediately."""
    if (datadir / "postmaster.pid").exists():
        run([build.program("pg_ctl"), "--pgdata", datadir, "stop", "--mode", "immediate", "--wait"], user=owner,
            timeout=120, check=False)


def _clear(work: Path, old: PgBuild, new: PgBuild, owner: str | None) -> None:
    """Remove the check's folder, stopping first whatever a killed pre-flight left running there."""
    stop_leftover(old, work / "old" / "data", owner)
    stop_leftover(new, work / "new" / "data", owner)
    shutil.rmtree(work, ignore_errors=True)


def _extensions_row(installed: dict[str, list[tuple[str, str]]], available: dict[str, str]) -> Row:
    missing = sorted({f"{name} ({database})" for database, found in installed.items() for name, _v in found
                      if name not in available})
    if missing:
        return Row("extensions", NO_GO, f"not available in the target build: {', '.join(missing)}",
                   "install the extension for the new major, or drop it before upgrading")
    updates = sorted({f"{name} {version}→{available[name]}" for found in installed.values() for name, version in found
                      if available[name] != version})
    detail = "all available" + (f"; ALTER EXTENSION ... UPDATE after: {', '.join(updates)}" if updates else "")
    return Row("extensions", GO, detail)


def _settings_row(env: Environment, altered: list[str], known: set[str]) -> Row:
    unknown = sorted({name for name in [*altered, *env.server_settings] if name not in known and "." not in name})
    if unknown:
        return Row("server settings", NO_GO, f"the target does not know: {', '.join(unknown)} (ALTER SYSTEM or "
                   "server_settings); it would not start", "remove them (ALTER SYSTEM RESET, or server_settings in "
                   "cuisine-db.toml) before upgrading")
    return Row("server settings", GO, "every setting is known to the target")


def _collations_row(indexes: list[tuple[str, str, str, str]], versions: dict[str, str]) -> tuple[Row, list[str]]:
    changed = sorted({index for index, coll, _provider, version in indexes if versions.get(coll, "") != version})
    if changed:
        return (Row("collations", NOTE, f"collation versions differ between the builds: {len(changed)} index(es) "
                    f"to rebuild after: {', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}",
                    "db-upgrade runs REINDEX INDEX on each once the new server is up, before maintenance mode "
                    "ends"), changed)
    return Row("collations", GO, f"{len(indexes)} index(es) on non-C collations, versions identical"
               if indexes else "no index depends on a collation other than C"), []


def quote_update(name: str) -> sql.Composed:
    """ALTER EXTENSION name UPDATE, the name through Identifier."""
    return queries.load("upgrade/alter_extension_update").format(name=sql.Identifier(name))
