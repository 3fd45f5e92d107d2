"""A server-compressed physical backup (PostgreSQL 15+, `--compress=server-zstd`) is never decompressed while it is
taken: its tars' plain sizes are bounds from PostgreSQL's backup_manifest (backup/tar_bound.py). The bounds hold and
are close, including a cluster with a tablespace; the backup restores (tablespace included) and verifies; an object
that decompresses past its bound is refused while streaming; a manifest with exact sizes and no flag (written
before bounds) still restores."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import zstandard
from backup_fixtures import AgeKeys
from conftest import available, cache_dir
from pitr_fixtures import PitrProject, make_pitr_project
from psycopg import sql

from cuisine_db.backup import catalog
from cuisine_db.backup.logical import _unique_name
from cuisine_db.backup.manifest import Manifest, ObjectEntry, prefix
from cuisine_db.backup.objects import BackupSource
from cuisine_db.postgres import binaries, osuser
from cuisine_db.postgres.local import os_user_of
from cuisine_db.storage import keys, open_repository, pipeline

MIB = 1 << 20


class Counting:
    """A destination that only counts what a restore would write."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)


@pytest.fixture(scope="module", params=[15, 18], ids=["pg15", "pg18"])
def spaced(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           age_keys: AgeKeys) -> Iterator[PitrProject]:
    """A project whose development cluster has a tablespace `far` holding table far_rows, and archives WAL."""
    major = request.param
    if available(major) is None:
        binaries.install(major, cache_dir())
    project = make_pitr_project(tmp_path_factory.mktemp(f"plainbound{major}"), major, age_keys)
    try:
        project.ok("cluster", "up", "--env", "development")
        project.ok("wal", "enable", "--env", "development", "--restart", "--yes")
        settings = project.settings
        location = project.root / "far-tablespace"
        osuser.give_to(location, os_user_of(settings, settings.env("development")), 0o700)
        with project.connect("development", "postgres") as conn:
            conn.execute(sql.SQL("CREATE TABLESPACE far LOCATION {}").format(sql.Literal(str(location))))
            conn.execute("CREATE TABLE far_rows (id int PRIMARY KEY, note text) TABLESPACE far")
            conn.execute("INSERT INTO far_rows SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g")
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        yield project
    finally:
        project.destroy()


def _backup(project: PitrProject) -> dict[str, Any]:
    result = project.ok("backup", "create", "--env", "development", "--type", "full", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _source(project: PitrProject, name: str) -> BackupSource:
    settings = project.settings
    env = settings.env("development")
    found = catalog.find(settings, env, name)
    return BackupSource(found.repository, found.manifest, keys.identities(settings, [env]))


def _true_size(source: BackupSource, entry: ObjectEntry) -> int:
    counting = Counting()
    source.stream(entry, counting)
    return counting.written


def _rows(project: PitrProject) -> tuple[Any, ...]:
    with project.connect("development", "postgres") as conn:
        far = conn.execute("SELECT count(*), max(note) FILTER (WHERE id = 777) FROM far_rows").fetchone()
        kept = conn.execute("SELECT array_agg(id ORDER BY id) FROM kept").fetchone()
        where = conn.execute("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'far'").fetchone()
    assert far is not None and kept is not None and where is not None
    return far[0], far[1], kept[0], where[0]


def test_bounds_hold_close_and_the_backup_restores_and_verifies_with_its_tablespace(spaced: PitrProject) -> None:
    before = _rows(spaced)
    report = _backup(spaced)
    assert report["compression"] == "server-zstd" and report["plain_bounded"] is True
    source = _source(spaced, report["name"])
    bounded = {entry.file: entry for entry in source.manifest.objects if entry.plain_bound}
    tablespace_tars = [file for file in bounded if file != "base.tar"]
    assert "base.tar" in bounded and len(tablespace_tars) == 1, source.manifest.objects
    for entry in source.manifest.objects:
        true = _true_size(source, entry)
        if entry.plain_bound:
            assert true <= entry.plain_size < true * 1.01 + MIB, (entry.file, true, entry.plain_size)
        else:
            assert entry.file in ("pg_wal.tar", "backup_manifest") and true == entry.plain_size
    assert report["plain_size"] == source.manifest.plain_size
    text = spaced.ok("backup", "create", "--env", "development", "--type", "full").stdout
    assert "the whole cluster from the primary, at most " in text

    verified = spaced.cli("backup", "verify", report["name"], "--env", "development")
    assert verified.returncode == 0, verified.stderr + verified.stdout

    with spaced.connect("development", "postgres") as conn:
        conn.execute("DELETE FROM far_rows WHERE id > 100")
        conn.execute("UPDATE far_rows SET note = 'changed' WHERE id = 777")
        conn.execute("DELETE FROM kept")
    restored = spaced.cli("restore", "database", "--env", "development", "--backup", report["name"], "--yes")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    after = _rows(spaced)
    assert after[:3] == before[:3] == (20000, before[1], [42]) and before[1] != "changed"
    assert after[3] != before[3], "the tablespace is laid down in the cluster's own folder, not the source's"


def test_an_object_decompressing_past_its_bound_is_refused_while_streaming(spaced: PitrProject) -> None:
    source = _source(spaced, _backup(spaced)["name"])
    entry = source.entry("base.tar")
    plain = io.BytesIO()
    source.stream(entry, plain)
    # The forger's base.tar: the real one with zeros after it, past the bound, compressed as the server does.
    forged = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(
        plain.getvalue() + bytes(entry.plain_size - len(plain.getvalue()) + 4 * MIB))
    settings = spaced.settings
    repository = open_repository(settings, settings.env("development"))
    recipients = keys.parse_recipients([spaced.keys.recipient])
    key = prefix(source.manifest.name) + "base.k9.zst.age"
    stored = pipeline.store(repository, key, io.BytesIO(forged), recipients, compress=False)
    try:
        forged_entry = replace(entry, name="base.k9.zst.age", size=stored.size, sha256=stored.sha256)
        forged_source = BackupSource(source.repository, replace(source.manifest, objects=(forged_entry,)),
                                     source.identities)
        sink = Counting()
        with pytest.raises(pipeline.IntegrityError, match=f"more than the manifest's {entry.plain_size} bytes: "
                                                          "refused while reading"):
            forged_source.stream(forged_entry, sink)
        assert sink.written <= entry.plain_size
    finally:
        repository.delete([key])


def test_a_manifest_with_exact_sizes_and_no_flag_still_restores(spaced: PitrProject) -> None:
    """What a backup taken before bounds looks like: the same objects, exact plain sizes, no plain_bound."""
    before = _rows(spaced)
    source = _source(spaced, _backup(spaced)["name"])
    settings = spaced.settings
    env = settings.env("development")
    repository = open_repository(settings, env)
    name = str(_unique_name(repository, env, "full"))
    exact = []
    for entry in source.manifest.objects:
        repository.put_bytes(prefix(name) + entry.name, repository.get_bytes(prefix(source.manifest.name) + entry.name))
        exact.append(replace(entry, plain_size=_true_size(source, entry), plain_bound=False))
    old_style: Manifest = catalog.publish(settings, env, repository,
                                          replace(source.manifest, name=name, objects=tuple(exact)))
    assert not old_style.plain_bounded
    body = repository.get_bytes(prefix(name) + "manifest.json")
    assert b"plain_bound" not in body
    with spaced.connect("development", "postgres") as conn:
        conn.execute("DELETE FROM far_rows")
    restored = spaced.cli("restore", "database", "--env", "development", "--backup", name, "--yes")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert _rows(spaced)[:3] == before[:3]
