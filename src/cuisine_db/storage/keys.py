"""age keys: recipients (public keys) that backups are encrypted to, identities (private keys) that read them.

Public keys may sit in the configuration; a private identity only by reference: a 0600 file or a variable.
When nothing is configured, the key pair under <state_dir>/keys/ (made by `cuisine-db backup keygen`) is used.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cuisine_db.errors import RefusedError, UsageError

if TYPE_CHECKING:  # kept off the WAL archiving path, which reads keys without the full configuration
    from cuisine_db.config import Environment, Settings

KEY_FILE = "backup.key"
PUBLIC_FILE = "backup.pub"
# Identities replaced by `backup rotate-keys`, one file each (`backup-<fingerprint>.key`, 0600): still read for the
# backups encrypted to them until `backup reencrypt` has moved those onto the new key and the operator removes them.
RETIRED = "retired"


def retired_identity_files(folder: Path) -> list[Path]:
    """The retired identity files under a keys folder (none when it cannot be read)."""
    try:
        return sorted((folder / RETIRED).glob("backup-*.key"))
    except OSError:
        return []


def fingerprint(recipient: str) -> str:
    """A short stable name for a public key, recorded in manifests (the key itself is public anyway)."""
    return "sha256:" + hashlib.sha256(recipient.strip().encode()).hexdigest()[:16]


def keys_dir(settings: Settings) -> Path:
    return settings.state_dir / "keys"


class KeyPair(NamedTuple):  # not a dataclass: `wal push` imports this module (see storage.base.ObjectInfo)
    identity_file: Path
    public_file: Path
    recipient: str
    created: bool


def generate(settings: Settings, *, if_missing: bool = False) -> KeyPair:
    """Write a new X25519 key pair under <state_dir>/keys/; never replace one (older backups need it)."""
    from datetime import UTC, datetime

    import pyrage

    folder = keys_dir(settings)
    key_path, public_path = folder / KEY_FILE, folder / PUBLIC_FILE
    if key_path.exists():
        if not if_missing:
            raise RefusedError(f"an age identity already exists at {key_path}",
                               hint="backups encrypted to it can only be read with it: keep it, never replace it")
        recipient = public_path.read_text().strip() if public_path.exists() else _public_of(key_path)
        return KeyPair(key_path, public_path, recipient, created=False)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    public_path.write_text(recipient + "\n")
    return KeyPair(key_path, public_path, recipient, created=True)


def _public_of(path: Path) -> str:
    return str(_parse_identities(_read_identity_file(path), str(path))[0].to_public())


def recipients(settings: Settings, env: Environment) -> list[str]:
    """The public keys new backups of `env` are encrypted to."""
    configured = list(env.backup.recipients)
    if configured:
        return configured
    public = keys_dir(settings) / PUBLIC_FILE
    if public.exists():
        return [line.strip() for line in public.read_text().splitlines() if line.strip().startswith("age1")]
    raise UsageError(
        f"environment {env.name!r} has no encryption recipients",
        hint="run `cuisine-db backup keygen` (make demo does) or set backup.recipients in cuisine-db.toml",
    )


def parse_recipients(values: Sequence[str]) -> list[Any]:
    import pyrage

    parsed = []
    for value in values:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(value))
        except Exception:
            raise UsageError(f"{value[:12]!r}... is not a valid age public key") from None
    return parsed


def _read_identity_file(path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"age identity file {path} does not exist") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        who = "other users" if info.st_mode & stat.S_IRWXO else "its group"
        raise RefusedError(f"age identity file {path} is open to {who} (mode {stat.S_IMODE(info.st_mode):o}): "
                           "a private key must be its owner's alone", hint=f"chmod 600 {path}")
    return path.read_text()


def _parse_identities(text: str, source: str) -> list[Any]:
    import pyrage

    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except Exception:
            # Never echo the line: it may be a secret key with a typo.
            raise UsageError(f"{source} holds a line that is not an age identity") from None
    if not found:
        raise UsageError(f"{source} holds no age identity")
    return found


def identities(settings: Settings, environments: Iterable[Environment]) -> list[Any]:
    """Every private identity the given environments point at (a restore may read another environment's backup).

    References that lead nowhere on this machine are skipped; only when none leads anywhere is it an error.
    """
    found: list[Any] = []
    tried: list[str] = []
    files: list[Path] = []
    for env in environments:
        variable = env.backup.identity_env
        if variable:
            tried.append(f"${variable}")
            value = settings.secret(variable)
            if value is not None:
                found += _parse_identities(value, f"${variable}")
        if env.backup.identity_file is not None:
            path = env.backup.identity_file
            files.append(path if path.is_absolute() else settings.root / path)
    files.append(keys_dir(settings) / KEY_FILE)
    files += retired_identity_files(keys_dir(settings))
    for path in dict.fromkeys(files):
        tried.append(str(path))
        if path.exists():
            found += _parse_identities(_read_identity_file(path), str(path))
    if not found:
        raise UsageError(f"no age identity to decrypt backups with (looked at {', '.join(tried)})",
                         hint="set backup.identity_file or backup.identity_env in cuisine-db.toml")
    return found


def identities_from_file(path: Path) -> list[Any]:
    """The identities in one file (it must not be readable by others), for callers without the configuration."""
    return _parse_identities(_read_identity_file(path), str(path))


def identities_from_text(text: str, source: str) -> list[Any]:
    return _parse_identities(text, source)


def recipients_from_file(path: Path) -> list[str]:
    """The age public keys in a file such as <state_dir>/keys/backup.pub."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip().startswith("age1")]


# --- Signing (storage/signing.py): which key signs this environment's backups, and which keys are trusted ---

def signing_folder(settings: Settings) -> Path:
    return keys_dir(settings)


def signer(settings: Settings, env: Environment, *, create_default: bool = True) -> Any:
    """The key that signs `env`'s backups: `signing_key_env`, `signing_key_file`, else <state_dir>/keys/signing.key.
    The default one is made on first use when the environment pins no signer of its own (the local default works
    out of the box; `backup keygen` makes it too)."""
    from cuisine_db.storage import signing

    if env.backup.signing_key_env:
        value = settings.secret(env.backup.signing_key_env)
        if value is None:
            raise UsageError(f"${env.backup.signing_key_env} (backup.signing_key_env of {env.name}) is not set",
                             hint="backups are signed where they are taken: export it there")
        return signing.load_signer(value, f"${env.backup.signing_key_env}")
    if env.backup.signing_key_file is not None:
        path = env.backup.signing_key_file
        return signing.signer_from_file(path if path.is_absolute() else settings.root / path)
    path = keys_dir(settings) / signing.SIGNING_KEY_FILE
    if not path.exists() and create_default and not env.backup.trusted_signers:
        signing.generate(keys_dir(settings))
    return signing.signer_from_file(path)


def trusted_signers(settings: Settings, environments: Iterable[Environment]) -> list[str]:
    """The pinned public keys of the given environments; where one pins none, the local <state_dir>/keys/ one."""
    from cuisine_db.storage import signing

    found: list[str] = []
    for env in environments:
        pinned = list(env.backup.trusted_signers) or signing.read_public_file(
            keys_dir(settings) / signing.SIGNING_PUBLIC_FILE)
        found += [value for value in pinned if value not in found]
    return found


def trust(settings: Settings, environments: Iterable[Environment]) -> Any:
    """A signing.Trust of the keys `trusted_signers` names."""
    from cuisine_db.storage import signing

    return signing.trust_of(trusted_signers(settings, environments))
