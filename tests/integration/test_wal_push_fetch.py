"""`wal push` and `wal fetch` as PostgreSQL runs them (archive_command, restore_command), against a folder and the S3
test server: idempotent pushes, a different segment under a stored name refused with the stored one intact, pushes
ahead of the asked file, exit 1 for "not archived" and above 125 for a storage failure, prefetching, usage errors,
and the settings cache that spares each call parsing the configuration."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backup_fixtures import BACKENDS, S3_SECRET, AgeKeys
from pitr_fixtures import WalArchive, make_wal_archive

from cuisine_db.backup.wal import enable, served, settings_cache, spool, wal_names
from cuisine_db.errors import UsageError
from cuisine_db.postgres.ports import free_port
from cuisine_db.storage import open_repository

SEGMENT = "000000010000000000000001"
SIZE = 1 << 20  # the name is what matters; small files keep the test quick


@pytest.fixture(params=BACKENDS)
def archive(request: pytest.FixtureRequest, tmp_path: Path, age_keys: AgeKeys) -> WalArchive:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return make_wal_archive(tmp_path / "wal", age_keys, backend=request.param, s3=s3)


def _segments(archive: WalArchive, count: int, *, pushed: bool = False) -> dict[str, bytes]:
    """`count` segments of timeline 1 from ...01 in pg_wal, random contents; `pushed`: archived by one `wal push`."""
    contents = {wal_names.segment_name(1, n): os.urandom(SIZE // 4) for n in range(1, count + 1)}
    for name, body in contents.items():
        archive.segment(name, body)
    if pushed:
        assert archive.run("push", f"pg_wal/{min(contents)}").returncode == 0
    return contents


def _stored(archive: WalArchive) -> list[wal_names.Stored]:
    settings = archive.settings
    repository = open_repository(settings, settings.env("production"))
    found = [wal_names.parse_key(info.key) for info in repository.list(wal_names.env_prefix("production"))]
    return sorted(item for item in found if item is not None)


def test_same_content_twice_succeeds_different_content_is_refused(archive: WalArchive) -> None:
    original = os.urandom(SIZE)
    archive.segment(SEGMENT, original, ready=False)
    first = archive.run("push", f"pg_wal/{SEGMENT}")
    assert first.returncode == 0, first.stderr
    again = archive.run("push", f"pg_wal/{SEGMENT}")
    assert again.returncode == 0, again.stderr
    assert len(_stored(archive)) == 1
    archive.segment(SEGMENT, os.urandom(SIZE), ready=False)  # another server's segment under the same name
    refused = archive.run("push", f"pg_wal/{SEGMENT}")
    assert refused.returncode != 0
    message = refused.stderr.decode()
    assert "REFUSED" in message and SEGMENT in message and len(message.strip().splitlines()) == 1, message
    assert len(_stored(archive)) == 1
    assert archive.fetch(SEGMENT) == (0, original)


def test_push_takes_the_other_ready_files_along(archive: WalArchive) -> None:
    contents = _segments(archive, 5)
    first = min(contents)
    pushed = archive.run("push", f"pg_wal/{first}")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed ahead 4" in pushed.stderr.decode()
    assert {item.name for item in _stored(archive)} == set(contents)
    for name in sorted(contents)[1:]:  # PostgreSQL asks for each in turn: already there
        (archive.pg_wal / "archive_status" / f"{first}.ready").unlink(missing_ok=True)
        assert archive.run("push", f"pg_wal/{name}").returncode == 0
    # A segment that changed after it was pushed ahead is not taken from the ledger: it is refused.
    archive.segment(sorted(contents)[-1], os.urandom(SIZE // 4), ready=False)
    assert archive.run("push", f"pg_wal/{sorted(contents)[-1]}").returncode != 0
    for name, data in contents.items():
        assert archive.fetch(name) == (0, data)


def test_fetch_missing_is_exit_1_and_prefetches_ahead(archive: WalArchive) -> None:
    code, data = archive.fetch(SEGMENT)
    assert (code, data) == (1, None)
    contents = _segments(archive, 4, pushed=True)
    spool_dir = archive.root / ".cuisine" / "production" / "wal-spool"
    try:
        assert archive.fetch(min(contents)) == (0, contents[min(contents)])  # a miss: it starts the prefetcher
        prefetched = spool.folder(spool_dir)
        deadline = time.monotonic() + 60
        while sorted(p.name for p in prefetched.glob("0*")) != sorted(contents)[1:]:
            assert time.monotonic() < deadline, (list(prefetched.iterdir()), (spool_dir / spool.LOG).read_text())
            time.sleep(0.05)
        assert spool.alive(spool_dir) is not None
        # As the restore_command's Python part runs it (served.py): served with site setup skipped, nothing but
        # os imported.
        first = sorted(contents)[1]
        destination = archive.pg_wal.parent / "restored" / first
        lean = subprocess.run([sys.executable, "-X", "importtime", "-S", served.__file__, "fetch", "--config",
                               str(archive.config), "--env", "production", "--spool", str(spool_dir), first,
                               str(destination)], capture_output=True, text=True, check=False, timeout=60,
                              env={**os.environ, **archive.environ})
        assert lean.returncode == 0 and destination.read_bytes() == contents[first], lean.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in lean.stderr.splitlines() if "|" in line}
        assert "os" in imported and not imported & {"site", "pathlib", "re", "cuisine_db"}, imported
        for name in sorted(contents)[2:]:
            assert archive.fetch(name) == (0, contents[name])
            assert not (prefetched / name).exists(), "served from the spool: moved, not copied"
        assert archive.fetch(wal_names.segment_name(1, 9)) == (1, None)  # past the end of the archive
        assert archive.fetch("00000002.history")[0] == 1
        bad = archive.run("fetch", "../../etc/passwd", "x")
        assert bad.returncode > 125, "a name that is not WAL must stop recovery, not end it"
    finally:
        spool.stop(spool_dir)
    assert spool.alive(spool_dir) is None and not prefetched.exists()


def test_archive_command_answers_a_pushed_ahead_segment_from_the_ledger_with_almost_no_imports(
        archive: WalArchive) -> None:
    """As PostgreSQL runs archive_command (enable.archive_command: served.py under python -S, in the data
    directory): the first call pushes the others ahead; the next is answered from the ledger, importing only os (and
    hashlib where it hashes: test_wal_ledger.py tells the two apart); a file changed since it was pushed ahead is not
    taken from the ledger but refused."""
    settings = archive.settings
    command = enable.archive_command(settings, settings.env("production"))
    assert " wal push " in f" {command} " and " -S " in command
    contents = _segments(archive, 3)
    first, second, third = sorted(contents)
    ledger = archive.root / ".cuisine" / "production" / "wal-spool" / "pushed"

    def run(name: str, *python: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(command.replace("%p", f"pg_wal/{name}"))
        return subprocess.run([argv[0], *python, *argv[1:]], cwd=archive.pg_wal.parent, capture_output=True,
                              text=True, check=False, timeout=120, env={**os.environ, **archive.environ})

    pushed = run(first)
    assert pushed.returncode == 0 and "pushed ahead 2" in pushed.stderr, pushed.stderr
    assert sorted(p.name for p in ledger.iterdir()) == [second, third]
    lean = run(second, "-X", "importtime")
    assert lean.returncode == 0, lean.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in lean.stderr.splitlines() if "|" in line}
    assert "os" in imported and not imported & {"site", "pathlib", "re", "cuisine_db"}, imported
    assert not (ledger / second).exists()
    archive.segment(third, os.urandom(SIZE // 4), ready=False)  # changed after it was pushed ahead
    refused = run(third)
    assert refused.returncode != 0 and "REFUSED" in refused.stderr, refused.stderr
    for name, body in contents.items():
        assert archive.fetch(name) == (0, body)


def test_fetch_exits_above_125_when_the_storage_fails(tmp_path: Path, age_keys: AgeKeys) -> None:
    """The S3 endpoint does not answer: after retries, 254 (recovery stops) rather than 1 (the end of the archive)."""
    dead = make_wal_archive(tmp_path / "dead", age_keys, backend="s3", endpoint=f"http://127.0.0.1:{free_port()}")
    result = dead.run("fetch", SEGMENT, str(tmp_path / "out"), timeout=300)
    assert result.returncode > 125, result.stderr
    assert "recovery stops here" in result.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_fetch_refuses_a_stored_copy_that_does_not_match_its_name(tmp_path: Path, age_keys: AgeKeys) -> None:
    archive = make_wal_archive(tmp_path / "wal", age_keys)
    archive.segment(SEGMENT, os.urandom(SIZE), ready=False)
    assert archive.run("push", f"pg_wal/{SEGMENT}").returncode == 0
    (stored,) = (archive.root / "repository").rglob(f"{SEGMENT}-*.zst.age")
    body = bytearray(stored.read_bytes())
    body[len(body) // 2] ^= 0xFF
    stored.write_bytes(bytes(body))
    code, data = archive.fetch(SEGMENT)
    assert code > 125 and data is None



def test_usage_errors_are_one_line_exit_2_and_254_for_fetch(archive: WalArchive) -> None:
    for args, code in ((("push",), 2), (("push", "a", "b"), 2), (("push", "--bogus", "a"), 2),
                       (("fetch", SEGMENT), 254), (("check", "extra"), 2)):
        result = archive.run(*args)
        message = result.stderr.decode()
        assert result.returncode == code, (args, message)
        assert len(message.strip().splitlines()) == 1 and "error" in message, message
    assert archive.run("push", "--help").returncode == 0


def _cache_files(archive: WalArchive) -> list[Path]:
    return sorted((Path(archive.environ["HOME"]) / ".cache" / "cuisine-db").glob("wal-settings-*.json"))


def test_settings_cache_is_private_holds_no_secret_and_follows_the_file(archive: WalArchive, tmp_path: Path) -> None:
    archive.segment(SEGMENT, os.urandom(SIZE), ready=False)
    assert archive.run("push", f"pg_wal/{SEGMENT}").returncode == 0
    (cache,) = _cache_files(archive)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600 and stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    text = cache.read_text()
    assert S3_SECRET not in text and "identity" in text
    cached = json.loads(text)["settings"]
    assert set(cached["backup"]) <= set(settings_cache.BACKUP_KEYS)
    assert archive.run("push", f"pg_wal/{SEGMENT}").returncode == 0  # from the cache: still idempotent
    if "s3://" in archive.config.read_text():
        return
    # The configuration changes: the next call reads it again, and archives where it now says.
    moved = tmp_path / "moved-repository"
    archive.config.write_text(archive.config.read_text().replace((archive.root / "repository").as_uri(),
                                                                 moved.as_uri()))
    other = wal_names.segment_name(1, 2)
    archive.segment(other, os.urandom(SIZE), ready=False)
    assert archive.run("push", f"pg_wal/{other}").returncode == 0
    assert list(moved.rglob(f"{other}-*")) and not list((archive.root / "repository").rglob(f"{other}-*"))
    # A cache that others could have written is not believed, even with the right stamp.
    (cache,) = _cache_files(archive)
    forged = json.loads(cache.read_text())
    forged["settings"]["backup"]["repository"] = (tmp_path / "forged").as_uri()
    cache.write_text(json.dumps(forged))
    cache.chmod(0o644)
    third = wal_names.segment_name(1, 3)
    archive.segment(third, os.urandom(SIZE), ready=False)
    assert archive.run("push", f"pg_wal/{third}").returncode == 0
    assert list(moved.rglob(f"{third}-*")) and not (tmp_path / "forged").exists()


def test_a_detached_prefetch_returns_once_the_prefetcher_has_read_its_keys(archive: WalArchive) -> None:
    """db-restore removes the identity and credential copies it made for the prefetcher as soon as `wal prefetch
    --detach` returns: by then the prefetcher holds its lock with its own pid (it writes it after reading them).
    Before, the launcher returned at once, and a quick lay-down removed the copies before the prefetcher read them
    (a CI run's db-restore fetched nothing ahead)."""
    _segments(archive, 2, pushed=True)
    spool_dir = archive.root / ".cuisine" / "production" / "wal-spool"
    try:
        started = archive.run("prefetch", "--spool", str(spool_dir), "--detach", wal_names.segment_name(1, 0))
        assert started.returncode == 0, started.stderr
        assert spool.alive(spool_dir) is not None, (spool_dir / spool.LOG).read_text()
    finally:
        spool.stop(spool_dir)
    assert spool.alive(spool_dir) is None


def test_the_last_segment_is_served_from_the_spool_when_recovery_asks_for_it_again(archive: WalArchive) -> None:
    """A recovery to the backup's own end asks for its last segment twice (replay, then the end of recovery
    re-reading the last record): the prefetcher keeps a second verified copy, so neither ask fetches it again."""
    contents = _segments(archive, 3, pushed=True)
    spool_dir = archive.root / ".cuisine" / "production" / "wal-spool"
    last = max(contents)
    folder = spool.folder(spool_dir)
    again = folder / f"{last}{spool.AGAIN}"
    try:
        started = archive.run("prefetch", "--spool", str(spool_dir), "--detach", "--until", last,
                              wal_names.segment_name(1, 0))
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while not (again.exists() and (folder / last).exists()):
            assert time.monotonic() < deadline, (sorted(p.name for p in folder.glob("*")),
                                                 (spool_dir / spool.LOG).read_text())
            time.sleep(0.05)
        assert again.read_bytes() == contents[last]
        # Both asks as restore_command runs them, answered by the shell alone (the Python part made unrunnable): the
        # segment itself, then the kept copy, used up.
        command = enable.restore_command(archive.settings, archive.settings.env("production"), spool=spool_dir,
                                         identity_file=None)
        shell_only = _without_python(command)
        destination = archive.pg_wal.parent / "RECOVERYXLOG"
        for _ in range(2):
            destination.unlink(missing_ok=True)
            served_ = archive.as_postgres(shell_only, last, "RECOVERYXLOG")
            assert served_.returncode == 0 and destination.read_bytes() == contents[last], served_.stderr
            assert not (folder / last).exists()
        assert not again.exists()
        # The kept copy through the full path (fetch.deliver) too.
        spool.keep_again(archive.pg_wal, last)
        os.replace(archive.pg_wal / f"{last}{spool.AGAIN}", again)
        assert archive.fetch(last) == (0, contents[last])
        assert not again.exists()
        # A third ask goes to the archive, as before.
        assert archive.fetch(last) == (0, contents[last])
    finally:
        spool.stop(spool_dir)
    assert spool.alive(spool_dir) is None and not folder.exists()


def _without_python(command: str) -> str:
    """A restore_command whose `wal fetch` part cannot start (exit 127): whatever it serves, the shell served."""
    broken = command.replace(f"exec {shlex.quote(sys.executable)} ", "exec /nonexistent/python ")
    assert broken != command, command
    return broken


def test_restore_command_serves_a_spooled_segment_in_the_shell_and_hands_anything_else_to_wal_fetch(
        tmp_path: Path, age_keys: AgeKeys) -> None:
    """As PostgreSQL runs restore_command (enable.restore_command, through /bin/sh with %f and %p replaced): a segment
    the prefetcher verified into the spool is moved into place and noted as asked without starting Python; anything
    else goes on to `wal fetch`: an archived segment the spool lacks is fetched, one past the archive's end and a
    history file never written exit 1. The spool's path holds a space, a quote and `%f`: quoted and kept, not
    replaced by PostgreSQL; a path with a control character is refused."""
    spool_dir = tmp_path / "spool it's 100%f"
    archive = make_wal_archive(tmp_path / "wal", age_keys, extra=f'spool_dir = "{spool_dir}"\n')
    contents = _segments(archive, 4, pushed=True)
    first, second, third, fourth = sorted(contents)
    env = archive.settings.env("production")
    command = enable.restore_command(archive.settings, env, spool=spool_dir, identity_file=None)
    shell_only = _without_python(command)
    destination = archive.pg_wal.parent / "RECOVERYXLOG"
    folder = spool.folder(spool_dir)

    def fetched(name: str, command: str = command) -> tuple[int, bytes | None]:
        destination.unlink(missing_ok=True)
        result = archive.as_postgres(command, name, "RECOVERYXLOG")
        return result.returncode, destination.read_bytes() if destination.exists() else None

    try:
        assert fetched(first) == (0, contents[first])  # a miss: wal fetch, which starts the prefetcher
        deadline = time.monotonic() + 60
        while sorted(p.name for p in folder.glob("0*")) != [second, third, fourth]:
            assert time.monotonic() < deadline, (spool_dir / spool.LOG).read_text()
            time.sleep(0.05)
        assert fetched(second, shell_only) == (0, contents[second])
        assert not (folder / second).exists() and spool.last_asked(folder)[0] == second
        assert fetched(third, shell_only) == (0, contents[third])
        assert spool.last_asked(folder)[0] == third
        # The markers are empty files (replacing one that holds data frees a block: a device discard per segment).
        assert all((folder / f"{spool.ASKED}{name}").stat().st_size == 0 for _, name in spool.markers(folder))
        (folder / fourth).unlink()  # not prefetched (yet): the shell hands it over, wal fetch fetches it
        assert fetched(fourth, shell_only) == (127, None)
        assert fetched(fourth) == (0, contents[fourth])
        assert fetched(wal_names.segment_name(1, 9)) == (1, None)  # past the end of the archive
        assert fetched("00000002.history") == (1, None)
    finally:
        spool.stop(spool_dir)
    with pytest.raises(UsageError, match="control character"):
        enable.restore_command(archive.settings, env, spool=tmp_path / "a\nb", identity_file=None)


def test_history_files_are_served_from_the_spool_and_a_miss_still_asks_the_archive(archive: WalArchive) -> None:
    """Recovery asks for the starting timeline's history file, then each later one up to the first missing (a
    promotion's scan for a free timeline), some twice: the prefetcher spools them, verified, and they are copied
    out. One the spool lacks is asked of the archive: a timeline archived after the prefetcher looked is found."""
    histories = {f"{tli:08X}.history": f"{tli - 1}\t0/{tli}000000\tno recovery target specified\n".encode()
                 for tli in (2, 3)}
    for name, body in histories.items():
        archive.segment(name, body)
        assert archive.run("push", f"pg_wal/{name}").returncode == 0
    spool_dir = archive.root / ".cuisine" / "production" / "wal-spool"
    folder = spool.folder(spool_dir)
    folder.mkdir(parents=True)
    # Tagged for a restore, as fast_replay.start() does: only a restore's spool takes history files.
    (folder / spool.TAG).write_text(f"production\nNone\nsome-backup\n{wal_names.segment_name(2, 0)}\n")
    try:
        started = archive.run("prefetch", "--spool", str(spool_dir), "--detach", wal_names.segment_name(2, 0))
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while not all((folder / name).exists() for name in histories):
            assert time.monotonic() < deadline, (sorted(p.name for p in folder.glob("*")),
                                                 (spool_dir / spool.LOG).read_text())
            time.sleep(0.05)
        destination = archive.pg_wal.parent / "restored" / "RECOVERYHISTORY"
        destination.parent.mkdir(exist_ok=True)
        for _ in range(2):  # as the restore_command hands it to served.py: copied, so a second ask is served too
            destination.unlink(missing_ok=True)
            lean = subprocess.run([sys.executable, "-X", "importtime", "-S", served.__file__, "fetch", "--config",
                                   str(archive.config), "--env", "production", "--spool", str(spool_dir),
                                   "00000002.history", str(destination)], capture_output=True, text=True,
                                  check=False, timeout=60, env={**os.environ, **archive.environ})
            assert lean.returncode == 0 and destination.read_bytes() == histories["00000002.history"], lean.stderr
            imported = {line.rsplit("|", 1)[-1].strip() for line in lean.stderr.splitlines() if "|" in line}
            assert not imported & {"site", "cuisine_db"}, imported
        assert (folder / "00000003.history").exists()
        assert archive.fetch("00000003.history") == (0, histories["00000003.history"])  # the full path too
        assert (folder / "00000003.history").exists()
        assert archive.fetch("00000004.history") == (1, None)  # the archive lacks it
        later = b"3\t0/4000000\tno recovery target specified\n"
        archive.segment("00000004.history", later)
        assert archive.run("push", "pg_wal/00000004.history").returncode == 0
        assert archive.fetch("00000004.history") == (0, later)  # archived after the prefetcher looked: found
    finally:
        spool.stop(spool_dir)
    assert spool.alive(spool_dir) is None and not folder.exists()
    # A spool no restore tagged (a standby's) takes the segments, never a history file.
    segment = wal_names.segment_name(2, 1)
    archive.segment(segment, os.urandom(SIZE // 4))
    assert archive.run("push", f"pg_wal/{segment}").returncode == 0
    try:
        started = archive.run("prefetch", "--spool", str(spool_dir), "--detach", wal_names.segment_name(2, 0))
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while not (folder / segment).exists():
            assert time.monotonic() < deadline, (spool_dir / spool.LOG).read_text()
            time.sleep(0.05)
        assert not list(folder.glob("*.history"))
    finally:
        spool.stop(spool_dir)
