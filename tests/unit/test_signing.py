"""storage/signing.py: the canonical body, the fast key path agreeing with cryptography's public API, pinned keys,
and the WAL records built on them (no server)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from cuisine_db.backup.wal import records
from cuisine_db.errors import RefusedError, UsageError
from cuisine_db.storage import signing


def test_canonical_bodies_are_sorted_compact_utf8() -> None:
    assert signing.canonical({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


def test_a_loaded_key_signs_as_cryptography_does_and_only_pinned_keys_verify(tmp_path: Path) -> None:
    made = signing.generate(tmp_path)
    assert made.created and stat.S_IMODE(os.stat(made.key_file).st_mode) == 0o600
    again = signing.generate(tmp_path)
    assert not again.created and again.public == made.public, "an existing key is never replaced"
    signer = signing.signer_from_file(made.key_file)
    reference = Ed25519PrivateKey.from_private_bytes(signer.key.private_bytes_raw())
    assert signer.sign(b"body") == reference.sign(b"body")  # Ed25519 is deterministic
    trust = signing.trust_of([made.public])
    assert trust.verify(b"body", signer.sign(b"body")) == signer.key_id
    with pytest.raises(signing.Untrusted, match="does not verify"):
        trust.verify(b"bodY", signer.sign(b"body"))
    with pytest.raises(signing.Untrusted, match="unsigned"):
        trust.verify(b"body", None)
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(signing.Untrusted):
        trust.verify(b"body", stranger.sign(b"body"))
    pem = stranger.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    assert signing.load_signer(pem, "$X").sign(b"x") == stranger.sign(b"x")


def test_bad_keys_are_refused_without_echoing_them(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as bad:
        signing.decode_public("ed25519:not-base64-at-all")
    assert "not a signing public key" in bad.value.message
    with pytest.raises(UsageError) as secret:
        signing.load_signer("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n", "$KEY")
    assert "c2VjcmV0" not in secret.value.message
    made = signing.generate(tmp_path)
    made.key_file.chmod(0o640)
    with pytest.raises(RefusedError, match="open to other users"):
        signing.signer_from_file(made.key_file)


def test_wal_records_name_their_file_and_claims_are_ours_alone(tmp_path: Path) -> None:
    signer = signing.signer_from_file(signing.generate(tmp_path).key_file)
    trust = signing.trust_of([signing.encode_public(signing.public_of_signer(signer))])
    segment = "000000010000000000000003"
    record = records.make(signer, "production", segment, "a" * 64, 16 << 20, "7")
    assert records.read(record, trust, "production", segment).sha256 == "a" * 64
    with pytest.raises(signing.Untrusted, match="not production/000000010000000000000004"):
        records.read(record, trust, "production", "000000010000000000000004")
    with pytest.raises(signing.Untrusted):
        records.read(record.replace(b'"size":16777216', b'"size":1'), trust, "production", segment)
    claim = records.claim_key(signer, "production", segment)
    assert claim == records.claim_key(signer, "production", segment), "every push of ours claims the same key"
    other = signing.Signer(Ed25519PrivateKey.generate(), "x")
    assert records.claim_key(other, "production", segment) != claim, "nobody without the key can derive it"
    assert records.is_claim(claim) == segment and records.is_claim(claim.replace("claim", "clam")) is None
    header = bytes(24) + (7).to_bytes(8, "little")
    assert records.system_identifier(segment, header) == "7"
    assert records.system_identifier("00000002.history", header) is None
