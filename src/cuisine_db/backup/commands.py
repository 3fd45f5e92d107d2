"""db-verify-backup, db-expire-backups and the key commands (keygen, rotate-keys, rebuild-watermark, reencrypt),
each journaled whoever calls it; verification's verdict is kept here rather than in the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cuisine_db.backup import backup_verify, retention
from cuisine_db.backup.backup_verify import VerifyReport
from cuisine_db.backup.retention import ExpireReport
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError
from cuisine_db.ops.confirmation import Ask, AskWord
from cuisine_db.ops.journal import journaled
from cuisine_db.storage import keys, signing

if TYPE_CHECKING:  # the key commands' modules are imported when run: they cost the other commands' start-up
    from cuisine_db.backup.key_rotation import RotatedKeys
    from cuisine_db.backup.reencrypt import ReencryptReport
    from cuisine_db.backup.watermark_rebuild import Rebuilt

Notify = Callable[[str], None]


def verify_backup(settings: Settings, env: Environment, reference: str, *,
                  progress: Callable[[int], backup_verify.Progress | None] = lambda _: None,
                  notify: Notify = lambda _: None, show: Callable[[VerifyReport], None] = lambda _: None
                  ) -> VerifyReport:
    """make db-verify-backup, journaled as `verify-backup`: `show` gets the report before the journal line is
    written; a problem then fails the command (exit 1)."""
    with journaled(settings, env, "verify-backup", {"backup": reference}) as entry:
        report = backup_verify.verify(settings, env, reference, progress=progress, notify=notify)
        entry.details.update(name=report.name, ok=report.ok, problems=[str(p) for p in report.problems])
        show(report)
        if not report.ok:
            first = report.problems[0]
            raise FailedError(f"backup {report.name} failed verification: {first}"
                              + (f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""),
                              hint="restore refuses it; take a new backup, and check the repository's storage")
    return report


def expire(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False, ask: Ask | None = None,
           show: Callable[[ExpireReport], None] = lambda _: None) -> ExpireReport:
    """make db-expire-backups, journaled as `backup expire` with what went: `retention.expire`."""
    with journaled(settings, env, "backup expire", {"dry_run": dry_run, "yes": yes}) as entry:
        report = retention.expire(settings, env, dry_run=dry_run, yes=yes, ask=ask, show=show)
        entry.details.update(expired=report.expired, abandoned=report.abandoned, wal_expired=report.wal_expired)
    return report


@dataclass(frozen=True, slots=True)
class KeysMade:
    """backup keygen: the age key pair and the signing key, each made now or found."""

    pair: keys.KeyPair
    signer: signing.SigningKeys


def keygen(settings: Settings, *, if_missing: bool = False) -> KeysMade:
    """backup keygen, journaled on the default environment: the signing key, then the age key pair (never replacing
    one)."""
    with journaled(settings, settings.env(None), "backup keygen", {"if_missing": if_missing}):
        signer = signing.generate(keys.signing_folder(settings))
        # A signing key added beside an existing age key (made before signatures existed) is not a refusal.
        pair = keys.generate(settings, if_missing=if_missing or signer.created)
    return KeysMade(pair, signer)


def rotate_keys(settings: Settings, env: Environment) -> RotatedKeys:
    """make db-rotate-keys, journaled as `backup rotate-keys` with the new keys' ids: `key_rotation.rotate_keys`."""
    from cuisine_db.backup import key_rotation

    with journaled(settings, env, "backup rotate-keys", {}) as entry:
        rotated = key_rotation.rotate_keys(settings, env)
        entry.details.update(recipient=rotated.recipient_fingerprint, signer=rotated.signer_id,
                             folder=rotated.folder, shared_with=rotated.shared_with, wal_signer=rotated.wal_signer_id)
    return rotated


def rebuild_watermark(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False,
                      ask: AskWord | None = None) -> Rebuilt:
    """backup rebuild-watermark, journaled with the damage and the new mark: `watermark_rebuild.rebuild`."""
    from cuisine_db.backup import watermark_rebuild

    with journaled(settings, env, "backup rebuild-watermark", {"dry_run": dry_run, "yes": yes}) as entry:
        rebuilt = watermark_rebuild.rebuild(settings, env, dry_run=dry_run, yes=yes, ask=ask)
        entry.details.update(damage=rebuilt.damage, sequence=rebuilt.sequence, name=rebuilt.name,
                             kept_as=rebuilt.kept_as)
    return rebuilt


def reencrypt_all(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False,
                  ask: Ask | None = None, notify: Notify = lambda _: None) -> ReencryptReport:
    """make db-reencrypt, journaled as `backup reencrypt` with what changed: `reencrypt.reencrypt`."""
    from cuisine_db.backup import reencrypt

    with journaled(settings, env, "backup reencrypt", {"dry_run": dry_run, "yes": yes}) as entry:
        report = reencrypt.reencrypt(settings, env, dry_run=dry_run, yes=yes, ask=ask, notify=notify)
        entry.details.update(backups=report.backups, wal=report.wal, archives=report.archives,
                             incident_copies=report.incident_copies, changes=len(report.changes),
                             skipped=len(report.skipped), recipients=report.recipients, signer=report.signer)
    return report
