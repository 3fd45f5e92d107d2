"""Issue 15, secrets and privileges on the host: each local environment's servers run as an OS user of their own, so
one environment's superuser (COPY ... TO PROGRAM runs as the server's user) can neither read another's data
directory nor delete its WAL; and no secret the operator's environment holds reaches the server or any child but
the libpq tool that needs the password, while backups, WAL archiving, test restores and WAL fetches run.

Real clusters on PostgreSQL 18 (14 where 18 is missing), a shared local repository and S3 (moto on loopback).
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backup_fixtures import S3_KEY_VAR, S3_SECRET, AgeKeys, S3Server
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.postgres import binaries, osuser, pgpass

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: without it every server runs as the tool's "
                                                         "own user and there is nothing to separate")


def _major() -> int:
    major = 18 if available(18) is not None else 14
    if available(major) is None:
        binaries.install(major, cache_dir())
    return major


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, age_keys: AgeKeys) -> Iterator[PitrProject]:
    """production and development, one shared local repository, both archiving WAL."""
    project = make_pitr_project(tmp_path_factory.mktemp("separation"), _major(), age_keys)
    try:
        project.ok("cluster", "up", "--env", "development")
        for env in ("production", "development"):
            project.ok("wal", "enable", "--env", env, "--restart", "--yes")
            with project.connect(env) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
            _archive_one(project, env)
        yield project
    finally:
        project.destroy()


def _archive_one(project: PitrProject, env: str) -> None:
    with project.connect(env) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            archived = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
            if archived and archived[0] and archived[0][:24] >= row[0]:
                return
            time.sleep(0.2)
    raise AssertionError(f"{env} archived nothing")


def _archived(project: PitrProject) -> None:
    """Write a little, close the segment, wait until production archived it (saying why not, if it does not)."""
    with project.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ticks (at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO ticks DEFAULT VALUES")
    try:
        project.wait_archived(project.switch(), deadline=180)
    except AssertionError as exc:
        with project.connect() as conn:
            stats = conn.execute("SELECT * FROM pg_stat_archiver").fetchone()
        logs = sorted((project.cluster().datadir / "log").glob("*"))
        said = [line for log in logs for line in log.read_text(errors="replace").splitlines() if "archiv" in line]
        raise AssertionError(f"{exc}; archiver: {stats}; log: {said[-4:]}") from None


def _wal_objects(project: PitrProject, env: str) -> list[Path]:
    area = project.root / "repository" / "wal" / env
    return sorted(path for path in area.rglob("*") if path.is_file())


def _as_server(project: PitrProject, env: str, shell: str) -> str:
    """What `shell` prints (stdout and stderr) when env's superuser runs it through COPY ... FROM PROGRAM."""
    with project.connect(env) as conn:
        conn.execute("CREATE TEMP TABLE said (line text)")
        conn.execute(psycopg.sql.SQL("COPY said FROM PROGRAM {}").format(
            psycopg.sql.Literal(f"({shell}) 2>&1; true")))
        return "\n".join(row[0] for row in conn.execute("SELECT line FROM said").fetchall())


def _copy_to_program(project: PitrProject, env: str, shell: str) -> None:
    with project.connect(env) as conn:
        conn.execute(psycopg.sql.SQL("COPY (SELECT 1) TO PROGRAM {}").format(psycopg.sql.Literal(shell)))


def test_each_environment_runs_as_its_own_os_user(two: PitrProject) -> None:
    users = {env: two.cluster(env).os_user for env in ("production", "development")}
    assert users == {"production": "cuisine-production", "development": "cuisine-development"}
    for env, user in users.items():
        cluster = two.cluster(env)
        uid = pwd.getpwnam(user).pw_uid
        data = cluster.datadir.stat()
        assert data.st_uid == uid and stat.S_IMODE(data.st_mode) == 0o700
        home = cluster.home.stat()
        # root's, nothing for others; the group bits show the ACL mask of the server user's search entry
        assert (home.st_uid, home.st_gid) == (0, 0) and stat.S_IMODE(home.st_mode) & 0o007 == 0
        area = (two.root / "repository" / "wal" / env).stat()
        assert area.st_uid == uid and stat.S_IMODE(area.st_mode) == 0o700
        assert _wal_objects(two, env), f"{env} archived nothing"
    repository = two.root / "repository"
    for folder in (repository, repository / "wal", repository / "backups"):
        if folder.exists():
            info = folder.stat()
            assert (info.st_uid, info.st_gid) == (0, 0) and stat.S_IMODE(info.st_mode) & 0o007 == 0, f"{folder} is open"


@pytest.mark.parametrize(("attacker", "victim"), [("development", "production"), ("production", "development")])
def test_a_superuser_cannot_read_or_delete_another_environments_files(two: PitrProject, attacker: str,
                                                                      victim: str) -> None:
    own = two.cluster(attacker).datadir / "PG_VERSION"
    assert _as_server(two, attacker, f"cat {own}").strip() == str(two.major), "the probe itself works"
    target = two.cluster(victim).datadir / "PG_VERSION"
    wal = _wal_objects(two, victim)[0]
    before = wal.read_bytes()
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        _copy_to_program(two, attacker, f"cat {target}")
    with pytest.raises(psycopg.errors.ExternalRoutineException):
        _copy_to_program(two, attacker, f"rm -f {wal}")
    assert wal.read_bytes() == before, f"{attacker}'s superuser deleted {victim}'s WAL"
    assert "Permission denied" in _as_server(two, attacker, f"cat {target}")
    assert "Permission denied" in _as_server(two, attacker, f"rm -f {wal}")
    victim_home = two.cluster(victim).home
    for private in (victim_home / "pgpass", victim_home / "wal-spool", two.root / "repository" / "wal" / victim,
                    two.root / "repository" / "backups", two.root / ".cuisine" / "keys" / "age.key"):
        said = _as_server(two, attacker, f"ls {private}")
        assert "Permission denied" in said or "No such file" in said, f"{attacker} reached {private}: {said}"


def test_reachable_folders_grant_each_environment_user_alone(tmp_path: Path) -> None:
    users = [osuser.ensure_user(osuser.env_user_name(env)) for env in ("sep-a", "sep-b")]
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    for user in users:
        folder = private / user
        folder.mkdir()
        (folder / "file").write_text(f"{user}\n")
        osuser.give_to(folder, user)
        os.chown(folder / "file", pwd.getpwnam(user).pw_uid, -1)
        assert private in osuser.make_reachable(folder / "file", user)
    assert stat.S_IMODE(private.stat().st_mode) & 0o007 == 0, "nothing for others: ACL entries only"
    for user in users:
        for other in users:
            shown = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "cat",
                                    str(private / other / "file")], capture_output=True, text=True, check=False)
            assert (shown.returncode == 0) == (user == other), shown.stderr
        listed = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "ls", private],
                                capture_output=True, text=True, check=False)
        assert listed.returncode != 0, "passing is not listing"
    # A read grant (a cross-environment restore) lasts until it is taken back, and leaves the modes as they were.
    reader, owner = users
    tree = private / owner
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in (tree, tree / "file")}
    granted = osuser.grant_read(tree, reader)
    assert set(granted) == set(modes)
    shown = subprocess.run(["setpriv", f"--reuid={reader}", f"--regid={reader}", "--clear-groups", "cat",
                            str(tree / "file")], capture_output=True, text=True, check=False)
    assert shown.stdout == f"{owner}\n", shown.stderr
    osuser.revoke(granted, reader)
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in modes} == modes
    shown = subprocess.run(["setpriv", f"--reuid={reader}", f"--regid={reader}", "--clear-groups", "cat",
                            str(tree / "file")], capture_output=True, text=True, check=False)
    assert shown.returncode != 0


def test_a_kept_read_grant_covers_what_the_source_archives_after_it_began(tmp_path: Path) -> None:
    """A cross-environment restore of a live environment: segments and folders its archive command adds (0600, as
    its own user) after the replay began are readable by the restoring server's user too, until the block ends."""
    reader, owner = (osuser.ensure_user(osuser.env_user_name(env)) for env in ("sep-a", "sep-b"))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    tree = private / "wal"
    tree.mkdir()
    osuser.give_to(tree, owner)
    osuser.make_reachable(tree, reader)

    def archive(path: Path) -> None:  # as the archive command writes: the owner's, 0600, never more
        path.parent.mkdir(exist_ok=True, mode=0o700)
        path.write_text(f"{path.name}\n")
        path.chmod(0o600)
        for made in (path.parent, path):
            os.chown(made, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)

    def readable(path: Path) -> bool:
        shown = subprocess.run(["setpriv", f"--reuid={reader}", f"--regid={reader}", "--clear-groups", "cat",
                                str(path)], capture_output=True, text=True, check=False)
        return shown.returncode == 0 and shown.stdout == f"{path.name}\n"

    before, later = tree / "0000000100000001" / "first", tree / "0000000100000002" / "later"
    archive(before)
    assert not readable(before)
    with osuser.KeptReadGrant([tree], reader, interval=0.1):
        assert readable(before)
        archive(later)  # a new folder and a new file, after the grant began
        deadline = time.monotonic() + 10
        while not readable(later):
            assert time.monotonic() < deadline, "what the source archived meanwhile never became readable"
            time.sleep(0.1)
    assert not readable(before) and not readable(later), "the grant outlived the restore"
    assert stat.S_IMODE(later.stat().st_mode) == 0o600


# --- secrets ---------------------------------------------------------------------------------------------------
LIBPQ_TOOLS = (b"pg_dump", b"pg_basebackup", b"pg_restore", b"psql", b"pg_dumpall")


class Sampler:
    """Every process on the machine, looked at every few milliseconds while commands run: which ones hold a secret
    in their environment, and the environments of the WAL commands the servers run."""

    def __init__(self, secrets: dict[str, bytes], exempt: set[int], root: Path) -> None:
        self.secrets = secrets
        self.exempt = exempt
        self.root = str(root).encode()
        self.parents: dict[int, int] = {}
        self.mine: set[int] = set()  # naming the project in argv or environment (other tests hold the S3 secret too)
        self.holders: dict[int, tuple[bytes, set[str]]] = {}
        self.seen: dict[int, bytes] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) in self.exempt:
                    continue
                pid = int(entry.name)
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    self.parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if self.root in cmdline or self.root in environ:
                    self.mine.add(pid)
                held = {what for what, value in self.secrets.items() if value in environ}
                if held:
                    self.holders[pid] = (cmdline, held)
                if pid not in self.seen and (b"wal\0push" in cmdline or b"wal\0fetch" in cmdline
                                             or any(tool in cmdline.split(b"\0")[0] for tool in LIBPQ_TOOLS)):
                    self.seen[pid] = cmdline
            time.sleep(0.002)

    def ours(self, pid: int) -> bool:
        """The process, or one of its ancestors, belongs to this test's project (a server's workers name nothing)."""
        for _ in range(64):
            if pid in self.mine:
                return True
            if pid not in self.parents or pid <= 1:
                return False
            pid = self.parents[pid]
        return False

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_secrets_reach_no_server_and_no_child_but_the_one_that_needs_it(tmp_path: Path, age_keys: AgeKeys,
                                                                        s3_server: S3Server,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_pitr_project(tmp_path / "secrets", _major(), age_keys, backend="s3", s3=s3_server)
    try:
        password = pgpass.lookup(project.root / ".cuisine" / "production" / "pgpass", "h", "1", "d", "cuisine")
        assert password
        access_key = "AKIAcuisineSeparationKey0123"
        project.config.write_text(project.config.read_text().replace(
            f'identity_file = "{age_keys.identity_file}"\n', 'identity_env = "CUISINE_TEST_IDENTITY"\n').replace(
            "[environments.production]\n", '[environments.production]\npassword_env = "CUISINE_TEST_PASSWORD"\n'))
        project.environ.update({"CUISINE_TEST_IDENTITY": age_keys.secret, "CUISINE_TEST_PASSWORD": password,
                                S3_KEY_VAR: access_key})
        secrets = {"s3 access key": access_key.encode(), "s3 secret": S3_SECRET.encode(),
                   "identity": age_keys.secret.encode(), "password": password.encode()}
        project.ok("cluster", "down", "--env", "production")
        project.ok("cluster", "up", "--env", "production")  # started by a command holding every secret
        with Sampler(secrets, {os.getpid()}, project.root) as sampler:
            original = subprocess.Popen
            started: list[int] = []
            commands: set[bytes] = set()

            def tracked(*args: Any, **kwargs: Any) -> Any:
                process = original(*args, **kwargs)
                started.append(process.pid)  # the operator's own commands: they hold what they were given
                commands.add(b"".join(os.fsencode(str(part)) + b"\0" for part in args[0]))
                return process

            monkeypatch.setattr(subprocess, "Popen", tracked)
            try:
                project.ok("wal", "enable", "--env", "production", "--restart", "--yes")
                with project.connect() as conn:
                    conn.execute("CREATE TABLE bulk AS SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
                project.ok("backup", "create", "--env", "production", "--type", "logical")
                project.ok("backup", "create", "--env", "production", "--type", "full")
                _archived(project)
                for _ in range(2):
                    with project.connect() as conn:
                        conn.execute("INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
                    _archived(project)
                project.ok("restore", "test", "--env", "production", "--backup", "latest")  # the full one
            finally:
                monkeypatch.undo()
        assert started
        assert any(pid in started for pid in sampler.holders), "the sampler saw no secret, not even the operator's"
        kinds = {kind for pid, cmdline in sampler.seen.items() if sampler.ours(pid)
                 for kind, mark in (("push", b"wal\0push"), ("fetch", b"wal\0fetch"), ("pg_dump", b"pg_dump"),
                                    ("pg_basebackup", b"pg_basebackup")) if mark in cmdline}
        assert {"push", "fetch", "pg_dump", "pg_basebackup"} <= kinds, f"not every command was seen running: {kinds}"
        postmaster = int((project.cluster().datadir / "postmaster.pid").read_text().split()[0])
        assert not {what for what, value in secrets.items()
                    if value in Path(f"/proc/{postmaster}/environ").read_bytes()}, "the server holds a secret"
        for pid, (cmdline, held) in sampler.holders.items():
            if pid in started or cmdline in commands or not sampler.ours(pid):
                continue  # the operator's commands (and their copies between fork and exec) hold what they were given
            program = Path(cmdline.split(b"\0")[0].decode(errors="replace")).name.encode()
            shown = cmdline.replace(b"\0", b" ")[:200]
            assert program in LIBPQ_TOOLS and held == {"password"}, f"{shown!r} held {sorted(held)}"
    finally:
        project.destroy()


def _acl_users(path: Path) -> set[int]:
    """The uids named in a file's access ACL."""
    try:
        raw = os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
    except OSError:
        return set()
    entries = [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw) - 7, 8)]
    return {ident for tag, _, ident in entries if tag == 0x02}


def test_a_restore_into_another_environment_reads_the_source_archive_only_while_it_runs(two: PitrProject) -> None:
    with two.connect("production") as conn:
        conn.execute("INSERT INTO kept VALUES (1)")
    name = json.loads(two.ok("backup", "create", "--env", "production", "--type", "full", "--json").stdout)["name"]
    with two.connect("production") as conn:
        conn.execute("INSERT INTO kept VALUES (2)")  # only in production's WAL archive, after the backup
    _archived(two)
    two.ok("restore", "database", "--env", "development", "--backup", name, "--yes", "--no-open")
    two.ok("restore", "apply-logs", "--env", "development")
    with two.connect("development") as conn:
        assert sorted(row[0] for row in conn.execute("SELECT id FROM kept")) == [1, 2], "production's WAL replayed"
    assert osuser.owner_of(two.cluster("development").datadir) == "cuisine-development"
    reader = pwd.getpwnam("cuisine-development").pw_uid
    area = two.root / "repository" / "wal" / "production"
    leftovers = [path for path in [area, *area.rglob("*")] if reader in _acl_users(path)]
    assert not leftovers, f"development kept read access to production's archive: {leftovers[:3]}"
    assert "Permission denied" in _as_server(two, "development", f"ls {area}")
    assert not (two.cluster("development").home / "run" / "wal-credentials").exists()
    owner = pwd.getpwnam("cuisine-production").pw_uid
    assert area.stat().st_uid == owner and (two.root / ".cuisine" / "production" / "wal-spool").stat().st_uid == owner
    _archived(two)  # production archives on, its folders still its own


def test_a_data_directory_from_before_keeps_its_owner_and_a_conflicting_os_user_is_one_line(tmp_path: Path) -> None:
    from cuisine_db.config import load_settings
    from cuisine_db.errors import UsageError
    from cuisine_db.postgres.local import os_user_of

    legacy = osuser.ensure_user(osuser.env_user_name("sep-legacy"))  # stands for the single user of old
    config = tmp_path / "cuisine-db.toml"
    config.write_text("[environments.old]\nport = 54998\n[environments.fresh]\nport = 54999\n")
    data = tmp_path / ".cuisine" / "old" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("18\n")
    entry = pwd.getpwnam(legacy)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    assert os_user_of(settings, settings.env("old")) == legacy, "an upgrade moves nothing"
    assert os_user_of(settings, settings.env("fresh")) == "cuisine-fresh"
    config.write_text('[environments.old]\nport = 54998\nos_user = "cuisine-fresh"\n')
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    with pytest.raises(UsageError, match=f"belongs to OS user {legacy}, but os_user says cuisine-fresh") as raised:
        os_user_of(settings, settings.env("old"))
    assert "chown -R cuisine-fresh:" in (raised.value.hint or "")
    assert osuser.owner_of(data) == legacy, "nothing was changed"
