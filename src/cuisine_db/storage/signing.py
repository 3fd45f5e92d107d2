"""Ed25519 signatures over what the tool writes to a repository, and the pinned keys that may have made them.

The private signing key lives only where backups are taken (`backup.signing_key_file` / `signing_key_env`, or
`<state_dir>/keys/signing.key` made by `cuisine-db backup keygen`); its public key is pinned in cuisine-db.toml
(`backup.trusted_signers = ["ed25519:<base64>"]`, several allowed so that a rotated key keeps old backups
trusted). When an environment pins none, the public key under `<state_dir>/keys/` is trusted: the local default
works out of the box, and the anchor of trust is this machine's disk, never the repository.

What is signed is a canonical body: JSON with sorted keys, no spaces, UTF-8. Signatures are raw 64-byte Ed25519
(RFC 8032), so `openssl pkeyutl -verify -pubin -inkey signing.pem -rawin -in manifest.json -sigfile
manifest.sig` checks a manifest by hand (docs/break-glass.md). `cryptography` is imported only when a key is
used, so that the WAL archive command stays light.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from cuisine_db.errors import RefusedError, UsageError

SIGNING_KEY_FILE = "signing.key"
SIGNING_PUBLIC_FILE = "signing.pub"  # one line: the value to pin in trusted_signers
SIGNING_PEM_FILE = "signing.pem"  # the same public key as PEM, for openssl
PREFIX = "ed25519:"
SIGNATURE_SIZE = 64
# The DER header of an Ed25519 private key in PKCS#8 (RFC 8410): the 32-byte seed follows it.
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")


def _ed25519() -> Any:
    """cryptography's Ed25519 in its Rust core, without the Python layers above it: importing those costs ~25 ms
    of CPU, a fifth of a `wal push` (docs/benchmarks.md). None where this cryptography lays it out otherwise."""
    try:
        from cryptography.hazmat.bindings._rust import openssl

        return openssl.ed25519
    except (ImportError, AttributeError):
        return None


def _private_key(seed: bytes) -> Any:
    fast = _ed25519()
    if fast is not None:
        return fast.from_private_bytes(seed)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_raw(key: Any) -> bytes:
    raw: bytes = key.public_key().public_bytes_raw()
    return raw


def _verifies(public_raw: bytes, signature: bytes, body: bytes) -> bool:
    fast = _ed25519()
    if fast is None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        public: Any = Ed25519PublicKey.from_public_bytes(public_raw)
    else:
        public = fast.from_public_bytes(public_raw)
    try:
        public.verify(signature, body)
    except Exception:  # InvalidSignature (its module is among the slow imports): never trusted
        return False
    return True


class Untrusted(Exception):
    """A signature that does not verify against any pinned key, or none at all; `why` says which."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def canonical(body: Any) -> bytes:
    """The one byte string a body is signed as: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_raw: bytes) -> str:
    """A short stable name for a public key (recorded beside each signature: which key made it)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def encode_public(public_raw: bytes) -> str:
    return PREFIX + base64.b64encode(public_raw).decode()


def decode_public(value: str) -> bytes:
    """`ed25519:<base64 of 32 bytes>` -> the raw key, or UsageError."""
    text = value.strip()
    if text.startswith(PREFIX):
        try:
            raw = base64.b64decode(text[len(PREFIX):], validate=True)
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise UsageError(f"{text[:20]!r}... is not a signing public key", hint="trusted_signers take ed25519:<base64> "
                     "lines as `cuisine-db backup keygen` prints them")


class Signer(NamedTuple):
    """A private signing key, loaded (a NamedTuple: the WAL archive command imports this module)."""

    key: Any  # cryptography's Ed25519PrivateKey
    key_id: str

    def sign(self, body: bytes) -> bytes:
        signature: bytes = self.key.sign(body)
        return signature


class Trust(NamedTuple):
    """The pinned public keys, by key id."""

    keys: dict[str, bytes]

    def verify(self, body: bytes, signature: bytes | None, signer: str | None = None) -> str:
        """The id of the pinned key that made `signature` over `body`, or Untrusted saying why."""
        if signature is None:
            raise Untrusted("unsigned")
        if len(signature) != SIGNATURE_SIZE:
            raise Untrusted("the signature is not an Ed25519 signature")
        if not self.keys:
            raise Untrusted("no signing key is trusted here (backup.trusted_signers is empty)")
        for kid in sorted(self.keys, key=lambda kid: kid != signer):
            if _verifies(self.keys[kid], signature, body):
                return kid
        if signer is not None and signer not in self.keys:
            raise Untrusted(f"signed by key {signer[:16]}, which is not among the trusted signers")
        raise Untrusted("the signature does not verify against any trusted signer (changed, or an unknown key)")


def trust_of(values: list[str]) -> Trust:
    keys = {}
    for value in values:
        raw = decode_public(value)
        keys[key_id(raw)] = raw
    return Trust(keys)


def _check_private_file(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise UsageError(f"signing key file {path} does not exist",
                         hint="run `cuisine-db backup keygen` where backups are taken") from None
    if not stat.S_ISREG(info.st_mode):
        raise RefusedError(f"signing key file {path} is not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RefusedError(f"signing key file {path} is open to other users (mode {stat.S_IMODE(info.st_mode):o}): "
                           "a private key must be its owner's alone", hint=f"chmod 600 {path}")


def load_signer(text: str, source: str) -> Signer:
    """A PEM (PKCS#8) Ed25519 private key; the text is never echoed."""
    lines = text.strip().splitlines()
    if len(lines) >= 3 and lines[0] == "-----BEGIN PRIVATE KEY-----" and lines[-1] == "-----END PRIVATE KEY-----":
        try:
            der = base64.b64decode("".join(lines[1:-1]), validate=True)
        except ValueError:
            der = b""
        if len(der) == len(_PKCS8_ED25519) + 32 and der.startswith(_PKCS8_ED25519):
            key = _private_key(der[len(_PKCS8_ED25519):])
            return Signer(key, key_id(_public_raw(key)))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise UsageError(f"{source} does not hold a PEM signing key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{source} holds a private key that is not Ed25519")
    return Signer(key, key_id(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)))


def signer_from_file(path: Path) -> Signer:
    _check_private_file(path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, encoding="utf-8") as handle:
        return load_signer(handle.read(), str(path))


class SigningKeys(NamedTuple):
    key_file: Path
    public_file: Path
    pem_file: Path
    public: str  # the trusted_signers value
    created: bool


def public_of_signer(signer: Signer) -> bytes:
    return _public_raw(signer.key)


def generate(folder: Path) -> SigningKeys:
    """A new Ed25519 key pair in `folder` (private 0600, created with O_EXCL|O_NOFOLLOW), or the one already there:
    a signing key is never replaced here (rotation is its own command)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key_path, public_path, pem_path = folder / SIGNING_KEY_FILE, folder / SIGNING_PUBLIC_FILE, folder / SIGNING_PEM_FILE
    if key_path.exists():
        signer = signer_from_file(key_path)
        raw = public_of_signer(signer)
        created = False
    else:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        created = True
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public_pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    _write_public(public_path, (encode_public(raw) + "\n").encode())
    _write_public(pem_path, public_pem)
    return SigningKeys(key_path, public_path, pem_path, encode_public(raw), created)


def _write_public(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    from cuisine_db import records

    records.atomic_write(path, data, mode=0o644, follow_folder=False)


def public_pem(value: str) -> bytes:
    """A trusted_signers value as a PEM public key (what openssl's -pubin -inkey reads)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem: bytes = Ed25519PublicKey.from_public_bytes(decode_public(value)).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return pem


def read_public_file(path: Path) -> list[str]:
    """The trusted_signers values in a file such as <state_dir>/keys/signing.pub."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip().startswith(PREFIX)]
