"""An embedded Patroni cluster for trying the toolkit on one machine: one etcd and N Patroni members, all on
loopback, all running as the environment's OS user (postgres/osuser.py), under `.cuisine/<env>/`:

    patroni/layout.json        ports picked once (free ones) and kept: etcd client/peer, each member's PG/REST
    patroni/credentials.json   the replication role's password (root's, 0600)
    patroni/*.pid, logs/       the processes this module started and their output
    pgpass                     the superuser's password, as for a local cluster (postgres/connect.py reads it)
    etcd/                      etcd's data folder (the OS user's, 0700)
    members/<name>/            patroni.yml (0600, the OS user's: it holds passwords), data/, Patroni's pgpass

Patroni is the engine (the one from PyPI, with etcd3 support; etcd is Debian's `etcd-server`): this module only
writes its configuration, starts and stops the processes and waits for Patroni to report a leader.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.postgres import binaries, osuser, safe_files
from cuisine_db.postgres.cluster import SUPERUSER, base_settings
from cuisine_db.postgres.patroni_layout import Layout, MemberPorts, home, load_layout, member_dir, state_dir
from cuisine_db.postgres.ports import free_port_outside
from cuisine_db.postgres.runner import daemon
from cuisine_db.waiting import poll_until

REPLICATION_USER = "cuisine_replication"
# Patroni's timing: a dead leader's key expires after TTL; loop_wait + 2 * retry_timeout must stay within it.
# synchronous_mode: a commit is acknowledged once a synchronous standby has it, and Patroni promotes only that
# standby, so a failover loses no acknowledged transaction (not strict: with no standby left, the leader goes on).
DCS = {"ttl": 10, "loop_wait": 2, "retry_timeout": 4, "maximum_lag_on_failover": 16 * 1024**2,
       "synchronous_mode": True}
START_TIMEOUT = 180.0
STOP_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """A re-bootstrap of the cluster from a laid-down backup (backup/patroni_restore.py): the command Patroni runs
    (given --scope and --datadir), the recovery settings it starts PostgreSQL with, the dynamic configuration."""

    command: str
    recovery_conf: dict[str, str]
    dcs: dict[str, Any]


RESTORE_METHOD = "cuisine_restore"


@dataclass(frozen=True, slots=True)
class Process:
    name: str  # "etcd" or a member's name
    pid: int | None
    running: bool


def _new_layout(env: Environment, count: int) -> Layout:
    taken: set[int] = set()

    def pick() -> int:
        return free_port_outside(taken, "a Patroni member or etcd")

    return Layout(scope=env.name, etcd_client=pick(), etcd_peer=pick(),
                  members=tuple(MemberPorts(f"{env.name}{n}".replace("-", "_"), pick(), pick())
                                for n in range(1, count + 1)))


def _embedded(env: Environment) -> int:
    if env.patroni is None or env.patroni.members is None:
        raise UsageError(f"environment {env.name!r} is not an embedded Patroni cluster",
                         hint=f"[environments.{env.name}.patroni] members = 3 makes it one")
    return env.patroni.members


def _pid_file(settings: Settings, env: Environment, name: str) -> Path:
    return state_dir(settings, env) / f"{name}.pid"


def _alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs and is the process we started (its command line names `marker`)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if marker.encode() not in cmdline:
        return False
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text()
        if status.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _marker(settings: Settings, env: Environment, name: str) -> str:
    return str(home(settings, env) / "etcd") if name == "etcd" else str(member_dir(settings, env, name) / "patroni.yml")


def process(settings: Settings, env: Environment, name: str) -> Process:
    raw = safe_files.read(_pid_file(settings, env, name))
    pid = int(raw.decode().strip()) if raw and raw.decode().strip().isdigit() else None
    return Process(name, pid, pid is not None and _alive(pid, _marker(settings, env, name)))


def processes(settings: Settings, env: Environment) -> list[Process]:
    layout = load_layout(settings, env)
    names = ["etcd", *(member.name for member in layout.members)] if layout else []
    return [process(settings, env, name) for name in names]


def _credentials(settings: Settings, env: Environment) -> dict[str, str]:
    path = state_dir(settings, env) / "credentials.json"
    raw = safe_files.read(path)
    if raw is not None:
        data: dict[str, str] = json.loads(raw)
        return data
    data = {"superuser": secrets.token_urlsafe(24), "replication": secrets.token_urlsafe(24)}
    safe_files.write(path, json.dumps(data))
    safe_files.write(home(settings, env) / "pgpass", f"*:*:*:{SUPERUSER}:{data['superuser']}\n")
    return data


def server_parameters(major: int) -> dict[str, Any]:
    """The PostgreSQL settings every member shares (Patroni keeps them in etcd; it sets port and listen itself)."""
    settings = {key: value for key, value in base_settings(major, 0).items()
                if key not in ("listen_addresses", "port")}
    # log_replication_commands: the leader's log says who copied the cluster (BASE_BACKUP) and who streams.
    settings.update({"hot_standby": True, "max_replication_slots": 10, "wal_keep_size": "256MB",
                     "wal_log_hints": True, "log_replication_commands": True})
    return settings


def default_dcs(major: int, extra_parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dynamic configuration a new cluster starts with (Patroni writes it into the DCS when it bootstraps)."""
    return {**DCS, "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                  "parameters": {**server_parameters(major), **(extra_parameters or {})}}}


def seed_dir(settings: Settings, env: Environment, name: str) -> Path:
    """Where db-create-replica lays a backup down for member `name` (the member's user's) before Patroni starts it."""
    return member_dir(settings, env, name) / "seed"


def _replica_methods(settings: Settings, env: Environment, folder: Path, staged: bool) -> dict[str, Any]:
    """Patroni's create_replica_methods: the toolkit's `cuisine_db` first (it installs the backup db-create-replica
    laid down for this member, postgres/patroni_method.py); Patroni's `basebackup` after it only when nothing is
    staged, so a member gets a copy of the leader only when the repository had no backup for it."""
    command = shlex.join([sys.executable, "-m", "cuisine_db", "replica", "seed-member", "--seed",
                          str(folder / "seed")])
    return {"create_replica_methods": ["cuisine_db"] + ([] if staged else ["basebackup"]),
            "cuisine_db": {"command": command}}


def _patroni_config(settings: Settings, env: Environment, layout: Layout, member: MemberPorts,
                    credentials: dict[str, str], bindir: Path, major: int,
                    extra_parameters: dict[str, Any], restore: Bootstrap | None = None, *, staged: bool = False,
                    restore_command: str | None = None) -> dict[str, Any]:
    """One member's patroni.yml. `restore`: the custom bootstrap from a laid-down backup instead of initdb;
    `staged`: a backup waits in its seed folder (no basebackup fallback); `restore_command`: how it catches up from
    the archive until it streams (db-create-replica takes it out then)."""
    folder = member_dir(settings, env, member.name)
    superuser = {"username": SUPERUSER, "password": credentials["superuser"]}
    bootstrap: dict[str, Any] = {
        "dcs": default_dcs(major, extra_parameters),
        "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums", {"auth": "scram-sha-256"}],
    }
    if restore is not None:
        # Patroni's custom bootstrap: the command puts the laid-down backup in place, Patroni starts it with the
        # recovery settings, waits for the promotion, and initialises the DCS from `dcs` (the cluster's own
        # dynamic configuration, saved before its state was removed).
        bootstrap.update({"dcs": restore.dcs, "method": RESTORE_METHOD,
                          RESTORE_METHOD: {"command": restore.command, "no_params": False,
                                           "keep_existing_recovery_conf": False,
                                           "recovery_conf": restore.recovery_conf}})
    return {
        "scope": layout.scope,
        "namespace": "/service/",
        "name": member.name,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"127.0.0.1:{member.rest}", "connect_address": f"127.0.0.1:{member.rest}"},
        "etcd3": {"hosts": [f"127.0.0.1:{layout.etcd_client}"]},
        "bootstrap": bootstrap,
        "postgresql": {
            "listen": f"127.0.0.1:{member.port}",
            "connect_address": f"127.0.0.1:{member.port}",
            "data_dir": str(folder / "data"),
            "bin_dir": str(bindir),
            "pgpass": str(folder / "pgpass"),
            "authentication": {
                "superuser": superuser,
                "replication": {"username": REPLICATION_USER, "password": credentials["replication"]},
                "rewind": superuser,
            },
            "parameters": {"unix_socket_directories": ""},
            "callbacks": {"on_role_change": callback_command(settings, env, folder / "data")},
            **_replica_methods(settings, env, folder, staged),
            **({"recovery_conf": {"restore_command": restore_command}} if restore_command else {}),
            "pg_hba": [
                "host all all 127.0.0.1/32 scram-sha-256",
                "host replication all 127.0.0.1/32 scram-sha-256",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def callback_command(settings: Settings, env: Environment, datadir: Path) -> str:
    """Patroni's `on_role_change` callback: a member that becomes the leader archives the earlier timelines'
    complete segments the dying leader had not pushed (backup/wal/catch_up.py); on any other role it does nothing.
    The program by this interpreter and the configuration by absolute path, as the archive command names them."""
    return shlex.join([sys.executable, "-m", "cuisine_db", "wal", "catch-up", "--config",
                       str(settings.config_path.resolve()), "--env", env.name, "--pgdata", str(datadir)])


def _patroni_program() -> list[str]:
    script = Path(sys.executable).with_name("patroni")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "patroni"]


def _reach(settings: Settings, user: str | None, bindir: Path) -> None:
    """Let the OS user run this Python with Patroni and psycopg, and the PostgreSQL build."""
    if user is None:
        return
    import importlib.util

    osuser.make_reachable(Path(sys.executable), user)
    osuser.make_reachable(Path(sys.executable).resolve(), user)
    for module in ("patroni", "psycopg"):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise UnavailableError(f"Python package {module} is not installed",
                                   hint="make install (or pip install -e '.[ha]') installs Patroni")
        osuser.make_reachable(Path(spec.origin).parent, user)
    import cuisine_db

    osuser.make_reachable(Path(cuisine_db.__file__).parent, user)
    osuser.make_reachable(settings.config_path, user)
    osuser.make_reachable(bindir, user)


def _start(settings: Settings, env: Environment, name: str, argv: list[str], user: str | None, cwd: Path,
           libdir: Path | None = None) -> int:
    logs = state_dir(settings, env) / "logs"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (logs / f"{name}.log").open("ab") as log:
        environ = {"HOME": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"}
        if libdir is not None and (libdir / "libpq.so.5").exists():
            # Patroni writes primary_conninfo with the options of the server's major (sslnegotiation on 17+): the
            # walreceiver must load the build's own libpq, not an older one of the system's.
            environ["LD_LIBRARY_PATH"] = str(libdir)
        pid = daemon(argv, user=user, cwd=cwd, stdout=log, env=environ)
    safe_files.write(_pid_file(settings, env, name), f"{pid}\n")
    return pid


def _http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL built here)
            return int(response.status) == 200
    except (OSError, ValueError):
        return False


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Path) -> None:
    def failed() -> UnavailableError:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        return UnavailableError(f"{what} within {timeout:.0f}s: {' '.join(tail) or 'no output'}", hint=f"see {log}")

    poll_until(lambda: check() or None, seconds=timeout, interval=0.5, what=failed)


def up(settings: Settings, env: Environment, *, extra_parameters: dict[str, Any] | None = None,
       notify: Callable[[str], None] = lambda _line: None) -> Layout:
    """Start etcd and every member that is not running (creating the folders and configuration on first use), and
    wait until Patroni reports a leader and every member running."""
    from cuisine_db.postgres.local import os_user_of

    count = _embedded(env)
    user = os_user_of(settings, env)
    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    base = home(settings, env)
    osuser.own_home(base, user)
    state = state_dir(settings, env)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout = load_layout(settings, env)
    if layout is None:
        layout = _new_layout(env, count)
        safe_files.write(state / "layout.json", json.dumps(asdict(layout), indent=2))
    elif len(layout.members) < count:  # more is fine: db-create-replica added members
        raise UsageError(f"{env.name}'s embedded cluster was made with {len(layout.members)} members, the "
                         f"configuration now says {count}", hint=f"make db-create-replica env={env.name} name=NAME "
                         f"adds one; or make cluster-down env={env.name}, then cuisine-db cluster destroy --env "
                         f"{env.name} to start afresh")
    _credentials(settings, env)  # made on first use (and the pgpass with it)
    _reach(settings, user, build.bindir)
    ensure_etcd(settings, env, notify=notify)
    for member in layout.members:
        if process(settings, env, member.name).running:
            continue
        configure(settings, env, member.name, extra_parameters=extra_parameters)
        start_member(settings, env, member.name)
        notify(f"Patroni member {member.name} started (PostgreSQL on 127.0.0.1:{member.port}, REST on "
               f"127.0.0.1:{member.rest})")
    wait_ready(settings, env, layout)
    return layout


def ensure_etcd(settings: Settings, env: Environment, *, notify: Callable[[str], None] = lambda _line: None) -> None:
    """Start the cluster's etcd unless it runs, and wait until it is healthy."""
    from cuisine_db.postgres.local import os_user_of

    layout = _layout(settings, env)
    user = os_user_of(settings, env)
    state = state_dir(settings, env)
    base = home(settings, env)
    etcd_dir = base / "etcd"
    if not process(settings, env, "etcd").running:
        osuser.give_to(etcd_dir, user)
        peer = f"http://127.0.0.1:{layout.etcd_peer}"
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        if not Path(etcd).exists():
            raise UnavailableError("etcd is not installed (Debian's etcd-server)", hint="make deps installs it")
        _start(settings, env, "etcd", [
            etcd, "--name", f"{layout.scope}-etcd", "--data-dir", str(etcd_dir),
            "--listen-client-urls", layout.etcd_url, "--advertise-client-urls", layout.etcd_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{layout.scope}-etcd={peer}", "--initial-cluster-state", "new",
            "--enable-v2=false", "--log-level", "warn",
        ], user, etcd_dir)
        notify(f"etcd started on {layout.etcd_url}")
    _wait("etcd did not become healthy", lambda: _http_ok(f"{layout.etcd_url}/health"),
          60, state / "logs" / "etcd.log")


def configure(settings: Settings, env: Environment, name: str, *, extra_parameters: dict[str, Any] | None = None,
              restore: Bootstrap | None = None, staged: bool = False, restore_command: str | None = None) -> Path:
    """Write member `name`'s patroni.yml (0600, the OS user's: it holds passwords); with `restore`, the custom
    bootstrap from a laid-down backup instead of initdb. Patroni reads it when it starts."""
    from cuisine_db.postgres.local import os_user_of

    layout = _layout(settings, env)
    member = next((m for m in layout.members if m.name == name), None)
    if member is None:
        raise UsageError(f"{env.name}'s embedded cluster has no member {name!r}")
    user = os_user_of(settings, env)
    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    folder = member_dir(settings, env, name)
    osuser.give_to(folder, user)
    config = _patroni_config(settings, env, layout, member, _credentials(settings, env), build.bindir, build.major,
                             extra_parameters or {}, restore, staged=staged, restore_command=restore_command)
    # JSON is YAML: Patroni reads it as it is.
    safe_files.write(folder / "patroni.yml", json.dumps(config, indent=2), owner=user)
    return folder / "patroni.yml"


def start_member(settings: Settings, env: Environment, name: str) -> int:
    """Start member `name`'s Patroni with the patroni.yml configure() wrote; its pid."""
    from cuisine_db.postgres.local import os_user_of

    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    folder = member_dir(settings, env, name)
    return _start(settings, env, name, [*_patroni_program(), str(folder / "patroni.yml")], os_user_of(settings, env),
                  folder, build.bindir.parent / "lib")


def add_member(settings: Settings, env: Environment, name: str, *, staged: bool, restore_command: str | None,
               notify: Callable[[str], None] = lambda _line: None) -> MemberPorts:
    """A new member in the layout (free ports), its configuration written and its Patroni started: Patroni builds
    its data directory with the create_replica_methods (a staged backup, or the leader's basebackup)."""
    layout = _layout(settings, env)
    taken = {layout.etcd_client, layout.etcd_peer, *(p for m in layout.members for p in (m.port, m.rest))}

    def pick() -> int:
        return free_port_outside(taken, "a Patroni member or etcd")

    member = MemberPorts(name, pick(), pick())
    grown = Layout(layout.scope, layout.etcd_client, layout.etcd_peer, (*layout.members, member))
    safe_files.write(state_dir(settings, env) / "layout.json", json.dumps(asdict(grown), indent=2))
    configure(settings, env, name, staged=staged, restore_command=restore_command)
    start_member(settings, env, name)
    notify(f"Patroni member {name} started (PostgreSQL on 127.0.0.1:{member.port}, REST on 127.0.0.1:{member.rest})")
    return member


def remove_member(settings: Settings, env: Environment, name: str) -> None:
    """Stop a member's Patroni, take it out of the layout and delete its folder (a creation that failed)."""
    layout = load_layout(settings, env)
    if layout is None:
        return
    _signal_and_wait(settings, env, name, STOP_TIMEOUT)
    kept = tuple(m for m in layout.members if m.name != name)
    safe_files.write(state_dir(settings, env) / "layout.json",
                     json.dumps(asdict(Layout(layout.scope, layout.etcd_client, layout.etcd_peer, kept)), indent=2))
    shutil.rmtree(member_dir(settings, env, name), ignore_errors=True)
    _pid_file(settings, env, name).unlink(missing_ok=True)


def _layout(settings: Settings, env: Environment) -> Layout:
    layout = load_layout(settings, env)
    if layout is None:
        raise UnavailableError(f"{env.name}'s Patroni cluster has not been created",
                               hint=f"make cluster-up env={env.name} creates and starts it")
    return layout


def stop_member(settings: Settings, env: Environment, name: str) -> bool:
    """SIGTERM member `name`'s Patroni and wait for it to exit (paused, Patroni leaves PostgreSQL running)."""
    return _signal_and_wait(settings, env, name, STOP_TIMEOUT)


def stop_postgres(settings: Settings, env: Environment, name: str) -> bool:
    """Stop member `name`'s PostgreSQL itself (fast shutdown), when its Patroni left it running; whether it ran."""
    from cuisine_db.postgres.local import os_user_of
    from cuisine_db.postgres.runner import run

    pid = postmaster_pid(settings, env, name)
    if pid is None or not Path(f"/proc/{pid}").exists():
        return False
    build = binaries.find(env.postgres_version, settings.cache_dir, env.pg_bin)
    run([build.program("pg_ctl"), "stop", "-D", member_dir(settings, env, name) / "data", "-m", "fast", "-w",
         "-t", str(int(STOP_TIMEOUT))], user=os_user_of(settings, env), timeout=STOP_TIMEOUT + 30)
    return True


def remove_cluster_state(settings: Settings, env: Environment) -> int:
    """Delete every key Patroni keeps for the scope in etcd (`patronictl remove`): leader, members, config,
    initialize, history. The next member to start bootstraps the cluster again. How many keys went."""
    layout = _layout(settings, env)
    prefix = f"/service/{layout.scope}/".encode()
    range_end = prefix[:-1] + bytes([prefix[-1] + 1])
    body = json.dumps({"key": base64.b64encode(prefix).decode(),
                       "range_end": base64.b64encode(range_end).decode()}).encode()
    request = urllib.request.Request(f"{layout.etcd_url}/v3/kv/deleterange", data=body, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback URL built here)
            answer = json.loads(response.read(1 << 20) or b"{}")
    except (OSError, ValueError) as exc:
        raise UnavailableError(f"etcd of {env.name} did not remove the cluster's state: {exc}",
                               hint=f"make cluster-up env={env.name} starts etcd") from None
    return int(answer.get("deleted", 0))


def wait_ready(settings: Settings, env: Environment, layout: Layout, timeout: float = START_TIMEOUT) -> None:
    """Until Patroni names a leader and every member runs (the leader) or streams (the others)."""
    from cuisine_db.postgres import patroni

    def ready() -> bool:
        try:
            view = patroni.cluster(settings, env)
        except UnavailableError:
            return False
        names = {member.name for member in layout.members}
        ok = {m.name for m in view.members if (m.is_leader and m.state == "running") or m.streaming}
        return view.leader is not None and ok >= names

    _wait(f"Patroni did not report a leader and {len(layout.members)} running members", ready, timeout,
          state_dir(settings, env) / "logs" / f"{layout.members[0].name}.log")


def _signal_and_wait(settings: Settings, env: Environment, name: str, timeout: float) -> bool:
    current = process(settings, env, name)
    if not current.running or current.pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGTERM)
    pid, marker = current.pid, _marker(settings, env, name)
    return poll_until(lambda: not _alive(pid, marker) or None, seconds=timeout, interval=0.2,
                      what=lambda: UnavailableError(
                          f"{name} (pid {pid}) did not stop within {timeout:.0f}s",
                          hint=f"see {state_dir(settings, env) / 'logs' / (name + '.log')}"))


def down(settings: Settings, env: Environment) -> list[str]:
    """Stop the replicas, then the leader (so no failover starts), then etcd; what was stopped, in order."""
    _embedded(env)
    layout = load_layout(settings, env)
    if layout is None:
        return []
    from cuisine_db.postgres import patroni

    leader_name = None
    with contextlib.suppress(UnavailableError):
        found = patroni.cluster(settings, env).leader
        leader_name = found.name if found else None
    order = sorted((m.name for m in layout.members), key=lambda name: name == leader_name)
    stopped = [name for name in order if _signal_and_wait(settings, env, name, STOP_TIMEOUT)]
    if _signal_and_wait(settings, env, "etcd", 30):
        stopped.append("etcd")
    return stopped


def kill_member(settings: Settings, env: Environment, name: str) -> int | None:
    """SIGKILL a member's Patroni (tests and drills: a host that died); its pid, or None when it was not running."""
    current = process(settings, env, name)
    if current.running and current.pid is not None:
        os.kill(current.pid, signal.SIGKILL)
        return current.pid
    return None


def postmaster_pid(settings: Settings, env: Environment, name: str) -> int | None:
    raw = safe_files.read(member_dir(settings, env, name) / "data" / "postmaster.pid")
    first = raw.decode().splitlines()[0].strip() if raw else ""
    return int(first) if first.isdigit() else None


def destroy(settings: Settings, env: Environment) -> None:
    """Stop everything and remove the members' data, etcd's data and the layout (the journal stays)."""
    down(settings, env)
    base = home(settings, env)
    for folder in (base / "members", base / "etcd", state_dir(settings, env)):
        shutil.rmtree(folder, ignore_errors=True)
    (base / "pgpass").unlink(missing_ok=True)
