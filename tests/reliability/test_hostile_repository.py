"""Issue 15, restores that cannot escape: an attacker who can write to the backup repository (not the private
key) forges backups the way the issue describes, and each attack now fails safe. A canary file and a canary
folder outside every data directory are checked untouched after each one.

PostgreSQL 14 and 18 with a local folder repository; the forged-tar attack also against S3 (moto on loopback).
"""

from __future__ import annotations

import hashlib
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from backup_fixtures import BACKENDS, S3_SECRET, S3_SECRET_VAR, AgeKeys, S3Server
from cli_support import run_cli
from conftest import CLI, available, cache_dir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pitr_fixtures import PitrProject, WalArchive, make_pitr_project, make_wal_archive

from cuisine_db.backup.manifest import MANIFEST, SIGNATURE, Manifest, ObjectEntry, prefix
from cuisine_db.backup.objects import BackupSource
from cuisine_db.backup.tar_files import TarFiles
from cuisine_db.backup.tar_guard import TarGuard, UnsafeMemberError
from cuisine_db.backup.wal import records, wal_names
from cuisine_db.postgres import binaries, osuser, pgpass, safe_files
from cuisine_db.postgres.local import os_user_of
from cuisine_db.storage import keys, open_repository, pipeline, signing
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
          file_names: dict[str, str] | None = None, base: Manifest | None = None, sign: str = "ours",
          stamp: str | None = None) -> str:
    """A backup folder written straight into the repository with the public key; `name` and `file_names`
    (object file -> the path the manifest says it restores to) are what the attacker puts in the manifest.
    `sign`: "ours" signs it with the project's own key, as if that key had leaked (the restore's own guards are
    still tested behind the signature), "unknown" with a key nobody trusts, "none" leaves it unsigned."""
    settings = project.settings
    repository = open_repository(settings, settings.env(env))
    folder = f"{env}-{kind}-{stamp or f'20260101T0000{next(_STAMPS):02d}Z'}"
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
    body = manifest.to_json()
    if sign == "ours":
        repository.put_bytes(prefix(folder) + SIGNATURE, keys.signer(settings, settings.env(env)).sign(body))
    elif sign == "unknown":
        stranger = Ed25519PrivateKey.generate()
        repository.put_bytes(prefix(folder) + SIGNATURE, stranger.sign(body))
    repository.put_bytes(prefix(folder) + MANIFEST, body)
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
    shown = {item["name"]: item for item in json.loads(listed.stdout)}
    assert name not in shown or not shown[name]["complete"], "a refused backup is never complete"
    assert name not in shown or shown[name]["problem"].startswith("untrusted: "), "it is listed as untrusted"


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


def _write_members(archive: bytes, folder: Path, links: frozenset[str] = frozenset()) -> None:
    files = TarFiles(folder, None)
    try:
        guard = TarGuard(None, "base.tar", links, files)
        for start in range(0, len(archive), 700):  # headers and data split across writes
            guard.write(archive[start:start + 700])
    finally:
        files.close()


def test_members_are_written_into_their_folder_and_never_through_a_planted_link(tmp_path: Path) -> None:
    """TarFiles (the lay-down's writer, in place of `tar -x`): files and folders as the tar says, modes capped, no
    link made; a link planted in the folder is never followed, for a folder or a file name."""
    archive = tar_of(("dir", "base", b""), ("dir", "base/1", b""), ("file", "base/1/1259", b"x" * 1000),
                     ("file", "global/pg_control", b"c" * 8192), ("file", "PG_VERSION", b"18\n"),
                     ("file", "empty", b""), ("dir", "pg_tblspc", b""),
                     ("symlink", "pg_tblspc/16400", "/srv/tablespace"))
    laid = tmp_path / "laid"
    laid.mkdir()
    _write_members(archive, laid, frozenset({"16400"}))
    assert (laid / "base/1/1259").read_bytes() == b"x" * 1000 and (laid / "global/pg_control").stat().st_size == 8192
    assert (laid / "PG_VERSION").read_bytes() == b"18\n" and (laid / "empty").read_bytes() == b""
    assert stat.S_IMODE((laid / "PG_VERSION").stat().st_mode) == 0o640  # the member's 0644, capped
    assert stat.S_IMODE((laid / "base").stat().st_mode) == 0o700
    assert int((laid / "base/1/1259").stat().st_mtime) == int(AT.timestamp())
    assert not (laid / "pg_tblspc/16400").exists() and not (laid / "pg_tblspc/16400").is_symlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "PG_VERSION").write_bytes(b"canary")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "PG_VERSION").symlink_to(outside / "PG_VERSION")
    _write_members(tar_of(("file", "PG_VERSION", b"18\n")), planted)
    assert (outside / "PG_VERSION").read_bytes() == b"canary" and not (planted / "PG_VERSION").is_symlink()
    (planted / "base").symlink_to(outside)
    with pytest.raises(OSError, match=r"Too many levels of symbolic links|Not a directory"):
        _write_members(tar_of(("file", "base/1259", b"x")), planted)
    assert sorted(p.name for p in outside.iterdir()) == ["PG_VERSION"]


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


# --- Signed manifests (issue 15 items 1-3): trust before use, no rollback, no future -------------------------

def _logical(project: PitrProject) -> str:
    created = project.ok("backup", "create", "--env", "development", "--type", "logical", "--json")
    return str(json.loads(created.stdout)["name"])


def _listed(project: PitrProject) -> dict[str, dict[str, Any]]:
    shown = project.ok("backup", "list", "--env", "development", "--all", "--json")
    return {item["name"]: item for item in json.loads(shown.stdout)}


def test_a_forged_future_latest_is_never_picked_and_status_turns_red(hostile: PitrProject) -> None:
    real = _logical(hostile)
    forged = forge(hostile, "development", "logical", {"toc.dat": b"forged"}, sign="none", stamp="29991231T235959Z")
    future = forge(hostile, "development", "logical", {"toc.dat": b"forged"}, sign="ours", stamp="29991231T235958Z")
    listed = _listed(hostile)
    assert "untrusted: unsigned" in listed[forged]["problem"]
    assert "dated in the future" in listed[future]["problem"]
    assert listed[real]["trusted"] is True and listed[forged]["trusted"] is False
    shown = hostile.cli("backup", "show", "latest", "--env", "development", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["manifest"]["name"] == real
    status = hostile.cli("backup", "status", "--env", "development", "--json")
    assert status.returncode == 1, status.stdout
    assert future in status.stdout and "dated in the future" in status.stdout
    refused = _restore(hostile, forged)
    assert refused.returncode == 4, refused.stderr
    assert f"backups/{forged}/manifest.json" in refused.stderr
    _delete(hostile, forged, future)


def test_signatures_hold_with_an_s3_repository(tmp_path: Path, age_keys: AgeKeys, s3_server: S3Server) -> None:
    """The same trust rules on S3 (moto): forged future `latest`, an unknown key, a rolled-back copy, retention."""
    major = 18 if available(18) is not None else 14
    project = _project(tmp_path / "s3", major, age_keys, "s3", s3_server)
    try:
        real = _logical(project)
        forged = forge(project, "development", "logical", {"toc.dat": b"x"}, sign="none", stamp="29991231T235959Z")
        stranger = forge(project, "development", "logical", {"toc.dat": b"x"}, sign="unknown")
        repository = open_repository(project.settings, project.settings.env("development"))
        rolled = f"development-logical-{datetime.now(UTC) + timedelta(minutes=1):%Y%m%dT%H%M%S}Z"
        for info in repository.list(prefix(real)):
            repository.put_bytes(prefix(rolled) + info.key.rsplit("/", 1)[1], repository.get_bytes(info.key))
        listed = _listed(project)
        assert listed[real]["trusted"] is True
        for name in (forged, stranger, rolled):
            assert listed[name]["problem"].startswith("untrusted: "), listed[name]
            refused = _restore(project, name)
            assert refused.returncode == 4 and f"backups/{name}/manifest.json" in refused.stderr, refused.stderr
        latest = json.loads(project.ok("backup", "show", "latest", "--env", "development", "--json").stdout)
        assert latest["manifest"]["name"] == real
        expired = project.cli("backup", "expire", "--env", "development", "--yes", "--json")
        assert expired.returncode == 0, expired.stderr
        assert {real, forged, stranger, rolled} <= {info.key.split("/")[1] for info in repository.list("backups/")}
    finally:
        project.destroy()


def _delete(project: PitrProject, *folders: str) -> None:
    repository = open_repository(project.settings, project.settings.env("development"))
    for folder in folders:
        repository.delete([info.key for info in repository.list(prefix(folder))])


def test_an_old_manifest_under_a_newer_name_is_untrusted(hostile: PitrProject) -> None:
    old = _logical(hostile)
    newer = _logical(hostile)
    repository = open_repository(hostile.settings, hostile.settings.env("development"))
    rolled = f"development-logical-{datetime.now(UTC):%Y%m%dT%H%M%S}Z"
    if rolled <= newer:
        time.sleep(1.1)
        rolled = f"development-logical-{datetime.now(UTC):%Y%m%dT%H%M%S}Z"
    for info in repository.list(prefix(old)):
        repository.put_bytes(prefix(rolled) + info.key.rsplit("/", 1)[1], repository.get_bytes(info.key))
    listed = _listed(hostile)
    assert listed[rolled]["problem"].startswith("untrusted"), listed[rolled]
    assert not listed[rolled]["complete"]
    latest = json.loads(hostile.ok("backup", "show", "latest", "--env", "development", "--json").stdout)
    assert latest["manifest"]["name"] == newer
    refused = _restore(hostile, rolled)
    assert refused.returncode == 4 and f"backups/{rolled}/manifest.json" in refused.stderr, refused.stderr
    _delete(hostile, rolled)


def test_a_backup_signed_by_an_unknown_key_is_untrusted(hostile: PitrProject) -> None:
    # The project's own signing key exists (its first backup makes it): the stranger's signature is judged against
    # a pinned key, whichever of this module's tests ran before on this worker.
    keys.signer(hostile.settings, hostile.settings.env("development"))
    stranger = forge(hostile, "development", "logical", {"toc.dat": b"forged"}, sign="unknown")
    listed = _listed(hostile)
    assert "does not verify" in listed[stranger]["problem"], listed[stranger]
    refused = _restore(hostile, stranger)
    assert refused.returncode == 4 and f"backups/{stranger}/manifest.json" in refused.stderr, refused.stderr
    refused = hostile.cli("restore", "database", "--env", "development", "--backup", stranger, "--yes",
                          "--trust-unsigned")
    assert refused.returncode == 4, "trust_unsigned never covers a wrong signature"
    _delete(hostile, stranger)


def test_unsigned_old_backups_need_trust_unsigned_by_name(hostile: PitrProject) -> None:
    name = _logical(hostile)
    repository = open_repository(hostile.settings, hostile.settings.env("development"))
    repository.delete([prefix(name) + SIGNATURE])  # as a backup made before signatures existed
    listed = _listed(hostile)
    assert listed[name]["problem"] == "untrusted: unsigned"
    refused = _restore(hostile, name)
    assert refused.returncode == 4 and "trust_unsigned=1" in refused.stderr, refused.stderr
    latest = hostile.cli("restore", "database", "--env", "development", "--backup", "latest", "--yes",
                         "--trust-unsigned")
    assert latest.returncode == 2, latest.stderr
    restored = hostile.cli("restore", "database", "--env", "development", "--backup", name, "--yes",
                           "--trust-unsigned")
    assert restored.returncode == 0, restored.stderr
    assert "unsigned" in restored.stderr
    journaled = [e for e in hostile.journal("development") if e.get("command") == "restore"]
    assert journaled[-1]["arguments"]["trust_unsigned"] is True, journaled[-1]
    _delete(hostile, name)


def test_a_manifest_signature_checks_by_hand_with_openssl(hostile: PitrProject, tmp_path: Path) -> None:
    name = _logical(hostile)
    repository = open_repository(hostile.settings, hostile.settings.env("development"))
    body, signature = tmp_path / "manifest.json", tmp_path / "manifest.sig"
    body.write_bytes(repository.get_bytes(prefix(name) + MANIFEST))
    signature.write_bytes(repository.get_bytes(prefix(name) + SIGNATURE))
    pem = hostile.root / ".cuisine" / "keys" / "signing.pem"

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin", "-in",
                               str(body), "-sigfile", str(signature)], capture_output=True, text=True, check=False)

    good = check()
    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout, good.stdout + good.stderr
    body.write_bytes(body.read_bytes().replace(b'"type":"logical"', b'"type":"logicaL"'))
    assert check().returncode != 0


def test_retention_wipe_by_future_folders_deletes_nothing_trusted(hostile: PitrProject) -> None:
    full = json.loads(hostile.ok("backup", "create", "--env", "development", "--type", "full", "--json").stdout)["name"]
    logical = _logical(hostile)
    repository = open_repository(hostile.settings, hostile.settings.env("development"))
    settled = hostile.cli("backup", "expire", "--env", "development", "--yes", "--json")  # what goes anyway
    assert settled.returncode == 0, settled.stderr
    wal_before = sorted(info.key for info in repository.list("wal/development/"))
    planted = []
    for month in range(1, 13):
        planted.append(forge(hostile, "development", "full", {}, sign="none", stamp=f"2999{month:02d}01T000000Z",
                             base=replace(_physical_template(hostile), dump={"start_wal": "00000001FFFFFFFF000000FF"})))
    expired = hostile.cli("backup", "expire", "--env", "development", "--yes", "--json")
    assert expired.returncode == 0, expired.stderr
    left = {info.key.split("/")[1] for info in repository.list("backups/")}
    assert {full, logical} <= left
    assert set(planted) <= left, "untrusted folders are left for a person to look at, never counted"
    assert sorted(info.key for info in repository.list("wal/development/")) == wal_before
    _delete(hostile, *planted)


def _physical_template(project: PitrProject) -> Manifest:
    major = project.major
    return Manifest(
        name="x", env="development", type="full", database="cuisine", server_version=f"{major}.1",
        server_version_num=major * 10000 + 1, system_identifier="7", timeline=1, start_lsn="FFFF/2000028",
        stop_lsn="FFFF/2000100", started_at=AT, finished_at=AT, tool={"pg_basebackup": f"{major}.1"}, dump={},
        encryption={"recipients": []}, compression={"level": 3}, tables=(), objects=())


# --- The WAL archive (issue 15 item 4): planted objects, create-only claims, signed records -------------------

SEGMENT = "000000010000000000000001"


@pytest.fixture(params=BACKENDS)
def wal_archive(request: pytest.FixtureRequest, tmp_path: Path, age_keys: AgeKeys) -> WalArchive:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return make_wal_archive(tmp_path / "wal", age_keys, backend=request.param, s3=s3)


def _plant(archive: WalArchive, name: str, data: bytes) -> str:
    """What an attacker with write access and the public key can put under a WAL file's name."""
    settings = archive.settings
    repository = open_repository(settings, settings.env("production"))
    digest = hashlib.sha256(data).hexdigest()
    pipeline.store_bytes(repository, wal_names.key("production", name, digest), data,
                         keys.parse_recipients([archive_recipient(archive)]), level=1, overwrite=False)
    return digest


def archive_recipient(archive: WalArchive) -> str:
    return str(archive.settings.env("production").backup.recipients[0])


def test_wal_push_keeps_archiving_past_a_planted_object(wal_archive: WalArchive) -> None:
    planted = os.urandom(4096)
    _plant(wal_archive, SEGMENT, planted)
    ours = os.urandom(1 << 20)
    wal_archive.segment(SEGMENT, ours, ready=False)
    pushed = wal_archive.run("push", f"pg_wal/{SEGMENT}")
    assert pushed.returncode == 0, pushed.stderr
    assert wal_archive.run("push", f"pg_wal/{SEGMENT}").returncode == 0, "a second push of the same bytes is fine"
    assert wal_archive.fetch(SEGMENT) == (0, ours), "wal fetch takes our signed copy, not the planted one"
    status = run_cli(wal_archive.config, "wal", "status", "--env", "production", "--json", extra=wal_archive.environ,
                     cwd=wal_archive.root)
    assert "foreign objects" in status.stdout and SEGMENT in status.stdout, status.stdout + status.stderr


def test_two_pushes_of_different_content_for_one_name_cannot_both_win(wal_archive: WalArchive) -> None:
    first, second = os.urandom(1 << 20), os.urandom(1 << 20)
    other = wal_archive.root / "data2" / "pg_wal"
    (other / "archive_status").mkdir(parents=True)
    (other / SEGMENT).write_bytes(second)
    wal_archive.segment(SEGMENT, first, ready=False)
    environ = {**os.environ, **wal_archive.environ}
    argv = [*CLI, "wal", "push", "--config", str(wal_archive.config), "--env", "production"]
    racing = [subprocess.Popen([*argv, f"pg_wal/{SEGMENT}"], cwd=folder, env=environ, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE) for folder in (wal_archive.pg_wal.parent, other.parent)]
    codes = [process.wait(timeout=120) for process in racing]
    assert sorted(codes) == [0, 1], codes
    winner = first if codes[0] == 0 else second
    assert wal_archive.fetch(SEGMENT) == (0, winner)
    loser = racing[codes.index(1)].stderr
    assert loser is not None and "already archived with different content" in loser.read().decode()


def test_a_forged_wal_segment_is_refused_by_fetch(wal_archive: WalArchive) -> None:
    first, hole, third, beyond = (f"0000000100000000000000{n:02X}" for n in (1, 2, 3, 4))
    for name in (first, third):
        wal_archive.segment(name, os.urandom(1 << 16), ready=False)
        assert wal_archive.run("push", f"pg_wal/{name}").returncode == 0
    _plant(wal_archive, hole, os.urandom(4096))
    code, data = wal_archive.fetch(hole)
    assert code > 125 and data is None, "a forged segment where ours follow stops recovery: never replayed"
    # A record signed by a key nobody trusts, under any claim name, changes nothing.
    settings = wal_archive.settings
    repository = open_repository(settings, settings.env("production"))
    stranger = signing.Signer(Ed25519PrivateKey.generate(), "0" * 16)
    digest = hashlib.sha256(b"x").hexdigest()
    repository.put_bytes(records.claim_key(stranger, "production", hole),
                         records.make(stranger, "production", hole, digest, 1, None))
    code, data = wal_archive.fetch(hole)
    assert code > 125 and data is None
    _plant(wal_archive, beyond, os.urandom(4096))
    assert wal_archive.fetch(beyond) == (1, None), "planted beyond our last file: the archive ends, nothing replayed"
    assert wal_archive.fetch(third)[0] == 0


def test_recovery_stops_at_a_forged_segment_rather_than_replaying_it(hostile: PitrProject) -> None:
    hostile.ok("wal", "enable", "--env", "development", "--restart", "--yes")
    full = json.loads(hostile.ok("backup", "create", "--env", "development", "--type", "full", "--json").stdout)["name"]
    hole = hostile.switch("development", "postgres", kept=7)
    last = hostile.switch("development", "postgres", kept=8)
    hostile.wait_archived(last, env="development", dbname="postgres")
    settings = hostile.settings
    repository = open_repository(settings, settings.env("development"))
    # Our copy and our record moved aside on disk (kept as the server's user wrote them, to be put back), before
    # the restore: db-restore starts fetching the segments after the backup while it lays it down.
    folder = Path(urlparse(hostile.repository).path)
    mine = [folder / info.key for info in repository.list(wal_names.prefix("development", hole))]
    assert len(mine) == 2, mine
    for path in mine:
        path.rename(path.with_name(path.name + ".aside"))
    recipients = keys.parse_recipients([hostile.keys.recipient])
    pipeline.store_bytes(repository, wal_names.key("development", hole, "0" * 64), os.urandom(1 << 20), recipients,
                         level=1, overwrite=False)
    laid = hostile.cli("restore", "database", "--env", "development", "--backup", full, "--yes", "--no-open")
    assert laid.returncode == 0, laid.stderr
    stopped = hostile.cli("restore", "apply-logs", "--env", "development")
    assert stopped.returncode != 0, stopped.stdout
    assert "254" in stopped.stderr and hole in stopped.stderr, stopped.stderr
    # Ours back; a forged segment planted just past the archive's end is never replayed: recovery ends at the real
    # end and every real transaction is there.
    repository.delete([wal_names.key("development", hole, "0" * 64)])
    for path in mine:
        path.with_name(path.name + ".aside").rename(path)
    archived = sorted(info.key.rsplit("/", 1)[1][:24] for info in repository.list("wal/development/")
                      if wal_names.parse_key(info.key) is not None and wal_names.is_segment(
                          info.key.rsplit("/", 1)[1][:24]))
    beyond = wal_names.segment_name(1, wal_names.segment_number(archived[-1]) + 1)
    pipeline.store_bytes(repository, wal_names.key("development", beyond, "0" * 64), os.urandom(1 << 20),
                         recipients, level=1, overwrite=False)
    laid = hostile.cli("restore", "database", "--env", "development", "--backup", full, "--yes", "--no-open")
    assert laid.returncode == 0, laid.stderr
    replayed = hostile.cli("restore", "apply-logs", "--env", "development")
    assert replayed.returncode == 0, replayed.stderr
    assert {(7,), (8,), (42,)} <= set(_kept(hostile))
    repository.delete([wal_names.key("development", beyond, "0" * 64)])
