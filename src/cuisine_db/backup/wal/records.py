"""Signed WAL records: the claim that names which stored copy of a WAL file is ours.

Each archived file gets one record beside its content-addressed copy, at
`wal/<env>/<folder>/<name>-claim-<token>`: the canonical body (env, name, timeline, system identifier, sha256
and size of the plain file, signing key id) on one line, its base64 Ed25519 signature on the next. `token` is
derived from a signature over the env and name, so every push with our key claims the same key — created only if
absent (local O_EXCL link, S3 `IfNoneMatch='*'`): two pushes of different content for one name cannot both be
accepted — while nobody without the key can plant an object there ahead of us. A foreign object under a file's
name is then only reported; `wal fetch` takes the copy our signed record names, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, NamedTuple

from cuisine_db.backup.wal import wal_names
from cuisine_db.storage import signing

CLAIM = "claim-"
MAX_RECORD = 4096


class Record(NamedTuple):
    name: str
    sha256: str
    size: int
    signer: str


def claim_key(signer: signing.Signer, env: str, name: str) -> str:
    """Where our record of `name` lives: the same for every push signed with this key, unguessable without it."""
    token = hashlib.sha256(signer.sign(f"cuisine-db wal claim\n{env}\n{name}".encode())).hexdigest()[:32]
    return f"{wal_names.prefix(env, name)}{CLAIM}{token}"


def is_claim(key: str) -> str | None:
    """The WAL file name a claim key is for, or None."""
    last = key.rsplit("/", 1)[-1]
    name, sep, token = last.rpartition(f"-{CLAIM}")
    if not sep or len(token) != 32:
        return None
    try:
        return wal_names.check(name)
    except wal_names.BadWalName:
        return None


def system_identifier(name: str, data: Any) -> str | None:
    """A segment's system identifier, from its first page's long header (bytes 24-31, little-endian)."""
    if not wal_names.is_segment(name[:24]) or name.endswith(".backup") or len(data) < 32:
        return None
    return str(int.from_bytes(bytes(data[24:32]), "little"))


def make(signer: signing.Signer, env: str, name: str, sha256: str, size: int, system: str | None) -> bytes:
    body = signing.canonical({"env": env, "name": name, "timeline": wal_names.timeline(name), "sha256": sha256,
                              "size": size, "system_identifier": system, "signer": signer.key_id})
    return body + b"\n" + base64.b64encode(signer.sign(body)) + b"\n"


def read(data: bytes, trust: signing.Trust, env: str, name: str) -> Record:
    """A record's content if its signature verifies against a pinned key and it is about this env and name;
    signing.Untrusted otherwise."""
    if len(data) > MAX_RECORD:
        raise signing.Untrusted("the record is larger than any this tool writes")
    body, _, rest = data.partition(b"\n")
    try:
        signature = base64.b64decode(rest.strip(), validate=True)
    except ValueError:
        raise signing.Untrusted("the record's signature is not base64") from None
    import json

    try:
        found = json.loads(body)
    except ValueError:
        raise signing.Untrusted("the record is not JSON") from None
    signer = found.get("signer") if isinstance(found, dict) else None
    trust.verify(body, signature, signer if isinstance(signer, str) else None)
    if found.get("env") != env or found.get("name") != name:
        raise signing.Untrusted(f"the record is about {found.get('env')}/{found.get('name')}, not {env}/{name}")
    sha, size = found.get("sha256"), found.get("size")
    if not isinstance(sha, str) or len(sha) != 64 or not isinstance(size, int):
        raise signing.Untrusted("the record lacks a sha256 and size")
    return Record(name, sha, size, str(signer))
