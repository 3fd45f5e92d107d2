"""Issue 15, restores that cannot escape: an attacker who can write to the backup repository (not the private
key) forges backups the way the issue describes, and each attack now fails safe. A canary file and a canary
folder outside every data directory are checked untouched after each one.

PostgreSQL 14 and 18 with a local folder repository; the forged-tar attack also against S3 (moto on loopback).
"""

from __future__ import annotations

import io
import json
import os
import pwd
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from backup_fixtures import S3_SECRET, S3_SECRET_VAR, AgeKeys, S3Server
from conftest import CLI, available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project

from cuisine_db.backup.manifest import MANIFEST, Manifest, ObjectEntry, prefix
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.tar_guard import TarGuard, UnsafeMemberError
from cuisine_db.postgres import binaries, osuser, pgpass, safe_files
from cuisine_db.postgres.local import os_user_of
from cuisine_db.storage import keys, open_repository, pipeline
from cuisine_db.storage.local import LocalRepository

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Canary:
    """A file and a folder outside every data directory: an attack that escapes changes one of them."""

    file: Path
    folder: Path

    def state(self) -> Any:
        def of(path: Path) -> tuple[int, int, int, int]:
            info = path.lstat()
            return info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns

        return (self.file.read_bytes(), of(self.file), of(self.folder), sorted(p.name for p in self.folder.iterdir()))


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    folder = tmp_path / "outside"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    file = folder / "canary"
    file.write_bytes(b"untouched\n")
    file.chmod(0o644)
    found = Canary(file, folder)
    before = found.state()
    yield found
    assert found.state() == before, "an attack reached the canary outside the data directory"


def _project(root: Path, major: int, keys_: AgeKeys, backend: str, s3: S3Server | None) -> PitrProject:
    if available(major) is None:
        binaries.install(major, cache_dir())
    project = make_pitr_project(root, major, keys_, backend=backend, s3=s3)
    project.ok("cluster", "up", "--env", "development")
    with project.connect("development", "postgres") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    return project


@pytest.fixture(scope="module", params=[14, 18], ids=["pg14", "pg18"])
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            age_keys: AgeKeys) -> Iterator[PitrProject]:
    project = _project(tmp_path_factory.mktemp(f"hostile{request.param}"), request.param, age_keys, "file", None)
    try:
        yield project
    finally:
        project.destroy()


def _kept(project: PitrProject) -> list[tuple[int]]:
    with project.connect("development", "postgres") as conn:
        return conn.execute("SELECT id FROM kept").fetchall()


def tar_of(*members: tuple[str, str, bytes | str]) -> bytes:
    """A tar archive of (kind, name, content or link target) members, as an attacker would write it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = int(AT.timestamp())
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o700
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(payload)
                tar.addfile(info)
    return buffer.getvalue()


_STAMPS = iter(range(10, 60))


def forge(project: PitrProject, env: str, kind: str, files: dict[str, bytes], *, name: str | None = None,
          file_names: dict[str, str] | None = None, base: Manifest | None = None) -> str:
    """A backup folder written straight into the repository with the public key only; `name` and `file_names`
    (object file -> the path the manifest says it restores to) are what the attacker puts in the manifest."""
    settings = project.settings
    repository = open_repository(settings, settings.env(env))
    folder = f"{env}-{kind}-20990101T0000{next(_STAMPS):02d}Z"
    recipients = keys.parse_recipients([project.keys.recipient])
    entries = []
    for file, data in files.items():
        stored = pipeline.store(repository, prefix(folder) + f"{file}.zst.age", io.BytesIO(data), recipients)
        entries.append(ObjectEntry(f"{file}.zst.age", (file_names or {}).get(file, file), stored.size, stored.sha256,
                                   stored.plain_size))
    major = project.major
    manifest = base or Manifest(
        name=folder, env=env, type=kind, database="cuisine", server_version=f"{major}.1",
        server_version_num=major * 10000 + 1, system_identifier="7", timeline=1, start_lsn="0/2000028",
        stop_lsn="0/2000100", started_at=AT, finished_at=AT, tool={"pg_dump": f"{major}.1"}, dump={},
        encryption={"recipients": []}, compression={"level": 3}, tables=(), objects=())
    manifest = replace(manifest, name=name or folder, objects=tuple(entries))
    repository.put_bytes(prefix(folder) + MANIFEST, manifest.to_json())
    return folder


def _symlink_backup(project: PitrProject, canary: Canary) -> str:
    base = tar_of(("file", "PG_VERSION", f"{project.major}\n".encode()),
                  ("symlink", "backup_manifest", str(canary.file)),
                  ("symlink", "tablespace_map", str(canary.folder / "cron-job")))
    return forge(project, "development", "full", {"base.tar": base, "pg_wal.tar": tar_of(),
                                                  "backup_manifest": b"* * * * * root touch /tmp/owned\n"})


def _restore(project: PitrProject, name: str) -> subprocess.CompletedProcess[str]:
    return project.cli("restore", "database", "--env", "development", "--backup", name, "--yes")


def test_symlinks_in_a_forged_base_tar_are_refused_by_restore_and_verify(hostile: PitrProject, canary: Canary) -> None:
    name = _symlink_backup(hostile, canary)
    restored = _restore(hostile, name)
    assert restored.returncode == 4, restored.stderr
    assert "backup_manifest" in restored.stderr and "symbolic link" in restored.stderr
    verified = hostile.cli("backup", "verify", name, "--env", "development")
    assert verified.returncode != 0 and "backup_manifest" in verified.stdout + verified.stderr
    hostile.ok("cluster", "up", "--env", "development")
    assert _kept(hostile) == [(42,)], "the refused restore must leave the cluster as it was"


def test_forged_tar_refused_with_s3_repository(tmp_path: Path, age_keys: AgeKeys, s3_server: S3Server,
                                               canary: Canary) -> None:
    major = 18 if available(18) is not None else 14
    project = _project(tmp_path / "s3", major, age_keys, "s3", s3_server)
    try:
        restored = _restore(project, _symlink_backup(project, canary))
        assert restored.returncode == 4 and "backup_manifest" in restored.stderr, restored.stderr
    finally:
        project.destroy()


@pytest.mark.parametrize("attack", ["absolute", "climbing", "name", "env"])
def test_manifest_paths_are_checked_before_anything_is_written(hostile: PitrProject, canary: Canary,
                                                              attack: str) -> None:
    data = b"written by the attacker\n"
    if attack == "name":  # the manifest's name is the folder a chain is combined in: /etc in the issue
        name = forge(hostile, "development", "full", {"base.tar": tar_of()}, name=str(canary.folder))
        expected = str(canary.folder)
    elif attack == "env":  # a folder of development whose manifest says production
        base = Manifest(name="", env="production", type="logical", database="cuisine", server_version="18.1",
                        server_version_num=180001, system_identifier=None, timeline=None, start_lsn=None,
                        stop_lsn=None, started_at=AT, finished_at=AT, tool={"pg_dump": "18.1"}, dump={},
                        encryption={}, compression={}, tables=(), objects=())
        name = forge(hostile, "development", "logical", {"toc.dat": data}, base=base)
        expected = "production"
    else:
        target = str(canary.file) if attack == "absolute" else "../../../outside/canary"
        name = forge(hostile, "development", "logical", {"toc.dat": data, "3.dat": data},
                     file_names={"3.dat": target})
        expected = target
    result = _restore(hostile, name)
    assert result.returncode == 4, result.stderr
    assert expected in result.stderr and "refused" in result.stderr
    listed = hostile.ok("backup", "list", "--env", "development", "--json")
    assert name not in [item["name"] for item in json.loads(listed.stdout)], "a refused backup is never complete"


@pytest.mark.parametrize(("members", "words"), [
    ((("file", "ok", b"x"), ("hardlink", "passwd", "/etc/passwd")), "hard link"),
    ((("symlink", "pg_tblspc/16400", "/etc"),), "symbolic link"),
    ((("file", "../escape", b"x"),), "leaves the folder"),
    ((("file", "a" * 150, b"x"),), "GNU long name"),
])
def test_tar_guard_refuses_what_pg_basebackup_never_writes(members: tuple[tuple[str, str, bytes | str], ...],
                                                          words: str) -> None:
    out = io.BytesIO()
    guard = TarGuard(out, "backups/x/base.tar.zst.age")
    archive = tar_of(*members)
    with pytest.raises(UnsafeMemberError, match=words):
        for start in range(0, len(archive), 700):  # headers split across writes too
            guard.write(archive[start:start + 700])
    assert b"/etc" not in out.getvalue(), "a refused header must never reach tar"


def test_tar_guard_passes_a_listed_tablespace_link_and_damaged_headers_are_refused() -> None:
    archive = tar_of(("dir", "pg_tblspc", b""), ("symlink", "pg_tblspc/16400", "/srv/tablespace"),
                     ("file", "PG_VERSION", b"18\n"))
    out = io.BytesIO()
    guard = TarGuard(out, "base.tar", frozenset({"16400"}))
    guard.write(archive)
    assert out.getvalue() == archive and guard.tablespace_links == {"16400"}
    damaged = bytearray(archive)
    damaged[600] ^= 0x20  # inside the second header
    with pytest.raises(UnsafeMemberError, match="checksum"):
        TarGuard(io.BytesIO(), "base.tar", frozenset({"16400"})).write(bytes(damaged))


def test_declared_sizes_are_enforced_while_streaming(tmp_path: Path, age_keys: AgeKeys) -> None:
    repository = LocalRepository(tmp_path / "repository")
    recipients = keys.parse_recipients([age_keys.recipient])
    plain = bytes(64 << 20)  # 64 MiB of zeros: a few KB stored, a decompression bomb for a restore
    stored = pipeline.store(repository, "bomb", io.BytesIO(plain), recipients)
    identities = keys.identities_from_file(age_keys.identity_file)

    class Counting:
        written = 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            return len(data)

    sink = Counting()
    with pytest.raises(pipeline.IntegrityError, match="more than the manifest's 1000 bytes"):
        pipeline.fetch(repository, "bomb", sink, identities, expect_size=stored.size, expect_sha256=stored.sha256,
                       expect_plain_size=1000)
    assert sink.written <= 1000
    with pytest.raises(pipeline.IntegrityError, match="holds more than the manifest's 100 bytes"):
        pipeline.fetch(repository, "bomb", Counting(), identities, expect_size=100)


def _config_attack_backup(project: PitrProject, canary: Canary) -> str:
    """A real full backup of development, with the attacker's configuration put into its base.tar."""
    project.ok("wal", "enable", "--env", "development", "--restart", "--yes")
    real = json.loads(project.ok("backup", "create", "--env", "development", "--type", "full", "--json").stdout)["name"]
    settings = project.settings
    env = settings.env("development")
    from cuisine_db.backup import catalog

    resolved = catalog.find(settings, env, real)
    source = BackupSource(resolved.repository, resolved.manifest, keys.identities(settings, [env]))
    files: dict[str, bytes] = {}
    for entry in resolved.manifest.objects:
        buffer = io.BytesIO()
        source.stream(entry, buffer)
        files[entry.file] = buffer.getvalue()
    evil = {
        "postgresql.auto.conf": (f"archive_command = 'touch {canary.folder}/archived; false'\n"
                                 "shared_preload_libraries = 'auto_explain'\nlisten_addresses = '*'\n"
                                 "work_mem = '7MB'\n").encode(),
        "pg_hba.conf": b"host all all 0.0.0.0/0 trust\nlocal all all trust\n",
    }
    rebuilt = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(files["base.tar"]), mode="r:") as original, \
            tarfile.open(fileobj=rebuilt, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in original.getmembers():
            if member.name in evil:
                member.size = len(evil[member.name])
                tar.addfile(member, io.BytesIO(evil[member.name]))
            else:
                tar.addfile(member, original.extractfile(member) if member.isfile() else None)
    files["base.tar"] = rebuilt.getvalue()
    return forge(project, "development", "full", files, base=resolved.manifest)


def test_a_backups_own_configuration_is_reported_not_applied(hostile: PitrProject, canary: Canary) -> None:
    name = _config_attack_backup(hostile, canary)
    result = hostile.cli("restore", "database", "--env", "development", "--backup", name, "--yes", "--json")
    assert result.returncode == 0, result.stderr
    notes = "\n".join(json.loads(result.stdout)["notes"])
    for setting in ("archive_command", "shared_preload_libraries", "listen_addresses", "trust"):
        assert setting in notes, notes
    with hostile.connect("development", "postgres") as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",), "the operator's harmless tuning stays"
        assert "touch" not in str(conn.execute("SHOW archive_command").fetchone())
        rules = conn.execute("SELECT auth_method FROM pg_hba_file_rules").fetchall()
        assert rules and all(method == "scram-sha-256" for (method,) in rules)
        conn.execute("SELECT pg_switch_wal()")
    time.sleep(2)
    assert not (canary.folder / "archived").exists()


def test_root_writes_into_server_folders_never_follow_a_planted_link(hostile: PitrProject, canary: Canary) -> None:
    settings = hostile.settings
    env = settings.env("development")
    os_user = os_user_of(settings, env)
    folder = hostile.root / "server-owned"
    osuser.give_to(folder, os_user, 0o711)
    from cuisine_db.backup.physical_restore import IDENTITY_COPY, identity_copy

    (folder / IDENTITY_COPY).symlink_to(canary.file)
    copy = identity_copy(settings, [env], folder, os_user)
    info = copy.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    if os_user:
        assert info.st_uid == pwd.getpwnam(os_user).pw_uid
    passfile = folder / "pgpass"
    passfile.symlink_to(canary.file)
    with pytest.raises(safe_files.UnsafeFileError):
        pgpass.put(passfile, "someone", "secret")
    passfile.unlink()
    old_umask = os.umask(0)
    try:
        pgpass.put(passfile, "someone", "secret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(passfile.lstat().st_mode) == 0o600
    (folder / "config").symlink_to(canary.folder)
    with pytest.raises(safe_files.UnsafeFileError):
        safe_files.write(folder / "config" / "cron-job", b"x")


def test_identity_files_open_to_their_group_are_refused(tmp_path: Path, age_keys: AgeKeys) -> None:
    shared = tmp_path / "shared.key"
    shared.write_bytes(age_keys.identity_file.read_bytes())
    shared.chmod(0o640)
    from cuisine_db.errors import RefusedError

    with pytest.raises(RefusedError, match="open to its group"):
        keys.identities_from_file(shared)


def test_reachable_folders_grant_only_the_server_user(tmp_path: Path) -> None:
    os_user = osuser.ensure_user(osuser.env_user_name("development")) if os.geteuid() == 0 else None
    if os_user is None:
        pytest.skip("needs root: the server runs as the tool's own user otherwise")
    private = tmp_path / "private"
    inner = private / "inner"
    inner.mkdir(parents=True)
    private.chmod(0o700)
    (inner / "file").write_text("readable\n")
    inner.chmod(0o755)
    (inner / "file").chmod(0o644)
    changed = osuser.make_reachable(inner / "file", os_user)
    assert private in changed and not private.stat().st_mode & stat.S_IXOTH
    assert stat.S_IMODE(private.stat().st_mode) & 0o007 == 0, "others gain nothing"
    reached = subprocess.run(["setpriv", f"--reuid={os_user}", f"--regid={os_user}", "--clear-groups", "cat",
                              str(inner / "file")], capture_output=True, text=True, check=False)
    assert reached.stdout == "readable\n", reached.stderr
    nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat",
                             str(inner / "file")], capture_output=True, text=True, check=False)
    assert nobody.returncode != 0


def _environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def test_secrets_reach_no_server_and_no_child_but_the_one_that_needs_it(tmp_path: Path, age_keys: AgeKeys,
                                                                        s3_server: S3Server) -> None:
    major = 18 if available(18) is not None else 14
    project = _project(tmp_path / "secrets", major, age_keys, "s3", s3_server)
    try:
        password = pgpass.lookup(project.root / ".cuisine" / "development" / "pgpass", "h", "1", "d", "cuisine")
        assert password
        config = project.config.read_text().replace(
            f'identity_file = "{age_keys.identity_file}"\n',
            'identity_env = "CUISINE_TEST_IDENTITY"\n').replace(
            "[environments.development]\n", '[environments.development]\npassword_env = "CUISINE_TEST_PASSWORD"\n')
        project.config.write_text(config)
        project.environ.update(CUISINE_TEST_IDENTITY=age_keys.secret, CUISINE_TEST_PASSWORD=password)
        secrets = {"s3": S3_SECRET.encode(), "identity": age_keys.secret.encode()}
        with project.connect("development", "postgres") as conn:
            conn.execute("CREATE TABLE bulk AS SELECT g, md5(g::text) FROM generate_series(1, 400000) g")
        project.ok("cluster", "down", "--env", "development")
        project.ok("cluster", "up", "--env", "development")  # the server started by a command holding the secrets
        postmaster = int((project.cluster("development").datadir / "postmaster.pid").read_text().split()[0])
        server_environ = _environ_of(postmaster)
        assert server_environ
        for what, value in {**secrets, "password": password.encode()}.items():
            assert value not in server_environ, f"the server inherited the {what} secret"
        process = subprocess.Popen([*CLI, "backup", "create", "--env", "development", "--type", "logical"],
                                   cwd=project.root, env=project._environ(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        seen: dict[int, bytes] = {}
        while process.poll() is None:
            for child in _children(process.pid):
                if child not in seen and b"pg_dump" in _cmdline(child):
                    seen[child] = _environ_of(child)
            time.sleep(0.005)
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr
        dumps = [environ for environ in seen.values() if environ]
        assert dumps, "pg_dump was not seen while the backup ran"
        for environ in dumps:
            for what, value in secrets.items():
                assert value not in environ, f"pg_dump inherited the {what} secret"
            assert S3_SECRET_VAR.encode() not in environ
    finally:
        project.destroy()
