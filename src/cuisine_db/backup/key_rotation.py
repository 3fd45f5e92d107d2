"""`backup rotate-keys`: a new age key pair and signing key for an environment, the old identity kept for the old
backups (keys/retired/) and the old signing key still trusted, until `backup reencrypt` (backup/reencrypt.py) has
moved what is stored onto the new keys. The environment's WAL signing key (the server user's own, `wal enable` made
it) is replaced too: `<env>/wal-signing.pub` trusts the new key first and keeps the old ones after it, so that records
signed before stay trusted while `wal push` signs with the new one.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cuisine_db import records
from cuisine_db.backup.wal import access as wal_access
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import signing


@dataclass(frozen=True, slots=True)
class RotatedKeys:
    """What `backup rotate-keys` wrote, and what the operator must still do."""

    env: str
    folder: str
    recipient: str  # the new age public key
    recipient_fingerprint: str
    signer: str  # the new trusted_signers value
    signer_id: str
    retired: list[str]  # files now holding the old identities
    written: list[str]
    shared_with: list[str]  # other environments that use the same default keys
    config_lines: list[str]  # cuisine-db.toml lines to set (environments with keys of their own)
    wal_signer: str | None = None  # the new WAL signing key's trusted_signers value (None: WAL was never enabled)
    wal_signer_id: str | None = None


def _own_keys(env: Environment) -> bool:
    backup = env.backup
    return bool(backup.recipients or backup.identity_file or backup.identity_env or backup.signing_key_file
                or backup.signing_key_env or backup.trusted_signers)


def _write_private(path: Path, data: bytes) -> None:
    """A private file written whole or not at all (records.atomic_write: 0600 from creation, never through a link,
    file and folder fsynced)."""
    records.atomic_write(path, data, mode=0o600, follow_folder=False)


def _write_public(path: Path, data: bytes) -> None:
    records.atomic_write(path, data, mode=0o644, follow_folder=False)


def _new_age() -> tuple[bytes, str]:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# created: {created} (backup rotate-keys)\n# public key: {recipient}\n{identity}\n".encode(), recipient


def _new_signing() -> tuple[bytes, bytes, str, str]:
    """A new Ed25519 key: its private PEM, public PEM, trusted_signers value and key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
            signing.encode_public(raw), signing.key_id(raw))


def _retire(folder: Path, identities: list[Any]) -> list[str]:
    """Each old identity into retired/backup-<fingerprint>.key (0600), before anything replaces it."""
    retired = folder / age_keys.RETIRED
    retired.mkdir(mode=0o700, exist_ok=True)
    written = []
    for identity in identities:
        public = str(identity.to_public())
        path = retired / f"backup-{age_keys.fingerprint(public).removeprefix('sha256:')}.key"
        if not path.exists():
            _write_private(path, f"# retired by backup rotate-keys\n# public key: {public}\n{identity}\n".encode())
        written.append(str(path))
    return written


def rotate_keys(settings: Settings, env: Environment) -> RotatedKeys:
    """A new age key pair and signing key for `env`. With the default keys (<state_dir>/keys/, shared by every
    environment that configures none) they are replaced in place: the old identities move to keys/retired/
    (still read for old backups), signing.pub keeps the old public key after the new one (old signatures stay
    trusted), signing.key and signing.pem become the new key's. An environment with keys of its own gets new ones
    in a folder of their own and the cuisine-db.toml lines to change; nothing in the file is edited."""
    folder = age_keys.keys_dir(settings)
    if _own_keys(env):
        return _rotate_configured(settings, env, folder)
    key_file = folder / age_keys.KEY_FILE
    if not key_file.exists():
        raise UsageError(f"there are no keys to rotate in {folder}", hint="run `cuisine-db backup keygen` first")
    old = age_keys.identities_from_file(key_file)
    old_signers = signing.read_public_file(folder / signing.SIGNING_PUBLIC_FILE)
    old_signing = folder / signing.SIGNING_KEY_FILE
    if old_signing.exists():
        current = signing.encode_public(signing.public_of_signer(signing.signer_from_file(old_signing)))
        old_signers = [current] + [value for value in old_signers if value != current]
    retired = _retire(folder, old)
    age_text, recipient = _new_age()
    private_pem, public_pem, signer_value, signer_id = _new_signing()
    # Order: every old key is kept (retired/, signing.pub) before a new one replaces it; signing.pub trusts the new
    # key before signing.key holds it, so that no moment signs with a key this machine does not trust.
    _write_private(key_file, age_text)
    _write_public(folder / age_keys.PUBLIC_FILE, (recipient + "\n").encode())
    trusted = [signer_value] + [value for value in old_signers if value != signer_value]
    _write_public(folder / signing.SIGNING_PUBLIC_FILE, "".join(f"{value}\n" for value in trusted).encode())
    for value in old_signers:
        retired_pem = folder / age_keys.RETIRED / f"signing-{signing.key_id(signing.decode_public(value))}.pem"
        if not retired_pem.exists():
            _write_public(retired_pem, signing.public_pem(value))
    _write_private(old_signing, private_pem)
    _write_public(folder / signing.SIGNING_PEM_FILE, public_pem)
    shared = sorted(name for name, other in settings.environments.items()
                    if name != env.name and not _own_keys(other))
    written = [str(key_file), str(folder / age_keys.PUBLIC_FILE), str(old_signing),
               str(folder / signing.SIGNING_PUBLIC_FILE), str(folder / signing.SIGNING_PEM_FILE)]
    wal = rotate_wal_key(settings, env)
    if wal is not None:
        written += [str(settings.env_dir(env) / wal_access.WAL_SIGNING_KEY),
                    str(settings.env_dir(env) / wal_access.WAL_SIGNING_PUBLIC)]
    return RotatedKeys(env.name, str(folder), recipient, age_keys.fingerprint(recipient), signer_value, signer_id,
                       retired, written, shared, [], wal_signer=wal[0] if wal else None,
                       wal_signer_id=wal[1] if wal else None)


def _rotate_configured(settings: Settings, env: Environment, keys_folder: Path) -> RotatedKeys:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = keys_folder / f"{env.name}-{stamp}"
    folder.mkdir(parents=True, mode=0o700)
    retired: list[str] = []
    if env.backup.identity_file is not None:
        path = env.backup.identity_file
        path = path if path.is_absolute() else settings.root / path
        if path.exists():
            retired = _retire(keys_folder, age_keys.identities_from_file(path))
    age_text, recipient = _new_age()
    private_pem, public_pem, signer_value, signer_id = _new_signing()
    _write_private(folder / age_keys.KEY_FILE, age_text)
    _write_public(folder / age_keys.PUBLIC_FILE, (recipient + "\n").encode())
    _write_private(folder / signing.SIGNING_KEY_FILE, private_pem)
    _write_public(folder / signing.SIGNING_PUBLIC_FILE, (signer_value + "\n").encode())
    _write_public(folder / signing.SIGNING_PEM_FILE, public_pem)
    old_trusted = age_keys.trusted_signers(settings, [env])
    old_wal = signing.read_public_file(settings.env_dir(env) / wal_access.WAL_SIGNING_PUBLIC)
    wal = rotate_wal_key(settings, env)
    # A WAL key pinned in trusted_signers (for restores on other hosts) is followed by the new one.
    new_wal = [wal[0]] if wal is not None and any(value in old_trusted for value in old_wal) else []
    trusted = ", ".join(f'"{value}"' for value in [signer_value, *new_wal, *old_trusted])
    lines = [f"[environments.{env.name}.backup]", f'recipients = ["{recipient}"]',
             f'identity_file = "{folder / age_keys.KEY_FILE}"',
             f'signing_key_file = "{folder / signing.SIGNING_KEY_FILE}"', f"trusted_signers = [{trusted}]"]
    if env.backup.identity_env:
        lines.insert(3, f"# ${env.backup.identity_env}: keep the old identity there until reencrypt is done")
    written = [str(folder / name) for name in (age_keys.KEY_FILE, age_keys.PUBLIC_FILE, signing.SIGNING_KEY_FILE,
                                               signing.SIGNING_PUBLIC_FILE, signing.SIGNING_PEM_FILE)]
    if wal is not None:
        written += [str(settings.env_dir(env) / wal_access.WAL_SIGNING_KEY),
                    str(settings.env_dir(env) / wal_access.WAL_SIGNING_PUBLIC)]
    return RotatedKeys(env.name, str(folder), recipient, age_keys.fingerprint(recipient), signer_value, signer_id,
                       retired, written, [], lines, wal_signer=wal[0] if wal else None,
                       wal_signer_id=wal[1] if wal else None)


def rotate_wal_key(settings: Settings, env: Environment) -> tuple[str, str] | None:
    """A new WAL signing key for `env` in place of the one `wal enable` made (None when there is none): its public
    key goes first into wal-signing.pub, the old ones stay after it (records signed before are still trusted, until
    `backup reencrypt` has signed them again); then wal-signing.key becomes the new key, owned as the old one was
    (the server's OS user, which runs `wal push`), 0600. The trusted_signers value and key id of the new key."""
    folder = settings.env_dir(env)
    key_path, public_path = folder / wal_access.WAL_SIGNING_KEY, folder / wal_access.WAL_SIGNING_PUBLIC
    try:
        info = key_path.lstat()
    except FileNotFoundError:
        return None
    old = signing.encode_public(signing.public_of_signer(signing.signer_from_file(key_path)))
    listed = signing.read_public_file(public_path)
    private_pem, _, value, kid = _new_signing()
    trusted = [value, old] + [item for item in listed if item not in (value, old)]
    # The new key is trusted before it signs anything: a push between the two writes signs with the old one.
    _write_public(public_path, "".join(f"{item}\n" for item in trusted).encode())
    owner = pwd.getpwuid(info.st_uid).pw_name if info.st_uid != os.geteuid() else None
    records.atomic_write(key_path, private_pem, mode=0o600, owner=owner, follow_folder=False)
    return value, kid
