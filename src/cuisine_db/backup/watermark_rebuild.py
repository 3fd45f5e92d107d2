"""`backup rebuild-watermark`: a damaged high-water mark (backup/watermark.py) replaced by one taken from the
repository's signed manifests, after the operator checked them; the damaged file is kept beside it as evidence.

The rebuilt mark trusts the repository's newest signed backup as it is now, which is what the mark exists to doubt:
so it is never done on its own (every backup stays untrusted until someone runs this), it asks on every environment
(the word `rebuild`, or the environment's name on a protected one), shows first what it would set (`dry_run`), and
is journaled by its caller with the old file's reason and the new mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cuisine_db import records
from cuisine_db.backup import catalog, watermark
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import AskWord
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository


@dataclass(frozen=True, slots=True)
class Rebuilt:
    env: str
    file: str
    damage: str  # why the old mark was not usable ("missing" when there was none)
    sequence: int | None  # the new mark (None: no signed backup to take it from)
    name: str | None
    kept_as: str | None  # where the damaged file went
    rolled_back: list[str]  # signed backups the rebuilt mark still does not trust (sequence against names)
    dry_run: bool


def rebuild(settings: Settings, env: Environment, *, dry_run: bool = False, yes: bool = False,
            ask: AskWord | None = None) -> Rebuilt:
    """A new mark from the newest signed, trusted backup of env in its repository, in place of a damaged one."""
    current = watermark.read(settings, env)
    target = watermark.path(settings, env)
    if isinstance(current, watermark.Mark):
        raise UsageError(f"{target} is sound (sequence {current.sequence}, {current.name}): nothing to rebuild",
                         hint="a sound high-water mark is never lowered or replaced")
    damage = current.why if isinstance(current, watermark.Unreadable) else "missing"
    repository = open_repository(settings, env)
    entries = catalog.scan(repository, trust=age_keys.trust(settings, [env]), env=env.name)
    signed = [(entry.manifest.sequence, entry.name, entry.manifest.started_at) for entry in entries
              if entry.manifest is not None and entry.manifest.sequence is not None]
    rolled_back = [entry.name for entry in entries if (entry.problem or "").startswith(catalog.UNTRUSTED + "rolled")]
    mark = watermark.Mark(*max(signed)) if signed else None
    plan = Rebuilt(env.name, str(target), damage, mark.sequence if mark else None, mark.name if mark else None,
                   None, rolled_back, dry_run)
    if dry_run:
        return plan
    at = mark.name if mark else "no mark (no signed backup)"
    confirmation.require_always(env, f"Trusting the repository's newest signed backup ({at}) as the rollback "
                                f"high-water mark of {env.name}", "rebuild", yes=yes, ask=ask)
    kept_as = None
    if isinstance(current, watermark.Unreadable):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        moved = target.with_name(f"{target.name}.damaged-{stamp}")
        target.rename(moved)
        kept_as = str(moved)
    if mark is not None:
        records.atomic_write(target, records.encode(mark))
    return Rebuilt(env.name, str(target), damage, plan.sequence, plan.name, kept_as, rolled_back, False)
