"""Plain sizes known as a bound (backup/tar_bound.py, ObjectEntry.plain_bound): the bound's arithmetic from a
backup_manifest, and manifests without the flag keeping their exact bytes (no server)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cuisine_db.backup.manifest import Manifest, ObjectEntry, UnsafeManifestError
from cuisine_db.backup.tar_bound import TRAILER, UNLISTED_ENTRIES, plain_bounds, tar_of
from cuisine_db.errors import FailedError

AT = datetime(2026, 11, 1, 1, tzinfo=UTC)
KEY = "backups/production-full-20261101T010000Z/manifest.json"
# What manifest.py wrote for this manifest before plain_bound existed (sha256 d7501b32...): the bytes a signature
# covers, which entries without the flag must keep.
OLD_BYTES = (
    b'{"checksum":"sha256:2a36a949c5f10dbc512456c53c83fb1399362219b9402ae839b9b2cae29809b1","compression":{},'
    b'"database":"cuisine","depends_on":null,"dump":{},"encryption":{},"env":"production",'
    b'"finished_at":"2026-11-01T01:00:00+00:00","format":1,"name":"production-full-20261101T010000Z","objects":['
    b'{"file":"base.tar","name":"base.tar.zst.age","plain_size":4096,"rows":null,"sha256":"ab","size":10,'
    b'"table":null},{"file":"backup_manifest","name":"backup_manifest.zst.age","plain_size":300,"rows":null,'
    b'"sha256":"cd","size":5,"table":null}],"sequence":3,"server_version":"18.1","server_version_num":180001,'
    b'"signer":"k","start_lsn":"0/2000028","started_at":"2026-11-01T01:00:00+00:00","stop_lsn":"0/2000100",'
    b'"system_identifier":"7","tables":[],"timeline":1,"tool":{},"type":"full"}')


def manifest(*objects: ObjectEntry) -> Manifest:
    return Manifest(name="production-full-20261101T010000Z", env="production", type="full", database="cuisine",
                    server_version="18.1", server_version_num=180001, system_identifier="7", timeline=1,
                    start_lsn="0/2000028", stop_lsn="0/2000100", started_at=AT, finished_at=AT, tool={}, dump={},
                    encryption={}, compression={}, tables=(), objects=objects, sequence=3, signer="k")


OLD_OBJECTS = (ObjectEntry("base.tar.zst.age", "base.tar", 10, "ab", 4096),
               ObjectEntry("backup_manifest.zst.age", "backup_manifest", 5, "cd", 300))


def test_entries_without_the_flag_keep_the_bytes_they_always_had() -> None:
    assert manifest(*OLD_OBJECTS).to_json() == OLD_BYTES
    parsed = Manifest.from_json(OLD_BYTES, KEY)
    assert parsed.to_json() == OLD_BYTES
    assert not parsed.plain_bounded and not any(item.plain_bound for item in parsed.objects)
    # An old entry is held to its exact size.
    assert parsed.objects[0].fits(4096) and not parsed.objects[0].fits(4095) and not parsed.objects[0].fits(4097)


def test_a_bounded_entry_is_written_read_back_and_held_to_at_most_its_bound() -> None:
    bounded = manifest(replace(OLD_OBJECTS[0], plain_bound=True), OLD_OBJECTS[1])
    data = bounded.to_json()
    assert data.count(b'"plain_bound":true') == 1 and b'"plain_bound":false' not in data
    parsed = Manifest.from_json(data, KEY)
    assert parsed.plain_bounded and parsed.objects[0].plain_bound and not parsed.objects[1].plain_bound
    entry = parsed.objects[0]
    assert entry.fits(0) and entry.fits(4096) and not entry.fits(4097)
    assert entry.plain_mismatch(5000) == "decrypts to 5000 bytes, the manifest says at most 4096"
    assert OLD_OBJECTS[1].plain_mismatch(1) == "decrypts to 1 bytes, the manifest says 300"


@pytest.mark.parametrize("value", [1, 0, "true", None, [True]])
def test_the_flag_is_accepted_only_as_true_or_false(value: object) -> None:
    body = json.loads(manifest(replace(OLD_OBJECTS[0], plain_bound=True), OLD_OBJECTS[1]).to_json())
    body["objects"][0]["plain_bound"] = value
    body.pop("checksum")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    body["checksum"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    with pytest.raises(UnsafeManifestError, match="plain_bound that is not true or false"):
        Manifest.from_json(json.dumps(body).encode(), KEY)


def _backup_manifest(files: list[dict[str, object]]) -> bytes:
    return json.dumps({"PostgreSQL-Backup-Manifest-Version": 1, "Files": files, "WAL-Ranges": []}).encode()


def test_the_bound_counts_headers_padded_contents_directories_and_the_trailer() -> None:
    files = [{"Path": "backup_label", "Size": 227}, {"Path": "global/pg_control", "Size": 8192},
             {"Path": "base/5/1259", "Size": 0}, {"Path": "base/5/2608", "Size": 513},
             {"Path": "pg_tblspc/16390/PG_18_202506291/5/16391", "Size": 8192},
             {"Encoded-Path": "pg_tblspc/16390/PG_18_202506291/5/\u00e9".encode().hex(), "Size": 1}]
    bounds = plain_bounds(_backup_manifest(files))
    allowance = UNLISTED_ENTRIES * 512 + TRAILER
    # base.tar: 4 headers, contents 512 + 8192 + 0 + 1024; directories global, base, base/5; one tablespace link.
    assert bounds.of("base.tar") == 4 * 512 + 512 + 8192 + 1024 + 3 * 512 + 512 + allowance
    # 16390.tar: names without pg_tblspc/16390/, 2 headers, 8192 + 512; directories PG_18_..., PG_18_.../5.
    assert bounds.of("16390.tar") == 2 * 512 + 8192 + 512 + 2 * 512 + allowance
    assert bounds.of("16391.tar") == allowance  # a tablespace with no file
    assert tar_of("pg_tblspc/16390/PG_18_202506291/5/16391") == ("16390.tar", "PG_18_202506291/5/16391")
    assert tar_of("pg_tblspc") == ("base.tar", "pg_tblspc")


@pytest.mark.parametrize("data", [b"", b"{}", b'{"Files": [{"Path": "x"}]}', b'{"Files": [{"Size": 3}]}',
                                  b'{"Files": [{"Encoded-Path": "zz", "Size": 3}]}'])
def test_an_unreadable_backup_manifest_fails_the_backup(data: bytes) -> None:
    with pytest.raises(FailedError, match="backup_manifest cannot be read"):
        plain_bounds(data)
