"""`migrate verify`: up, down, up again on a scratch cluster; every down must undo its up exactly."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError
from cuisine_db.migrations import runner, schema_dump
from cuisine_db.migrations.files import discover
from cuisine_db.postgres.scratch import scratch_environment


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Whether the round trip reproduced the schema, with the differences when it did not."""

    migrations: int
    postgres_version: int
    up_matches_reapply: bool
    down_matches_empty: bool
    differences: list[str]
    reapply_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.up_matches_reapply and self.down_matches_empty and self.reapply_error is None


def _diff(label_a: str, a: str, label_b: str, b: str) -> list[str]:
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), label_a, label_b, lineterm="", n=1))


def verify(settings: Settings, env: Environment, notify: runner.Notify = runner._quiet) -> VerifyResult:
    """Apply all migrations, roll them all back, apply them again; compare schema dumps at each stage."""
    count = len(discover(settings.migrations_dir))
    with scratch_environment(settings, env.postgres_version, "verify") as (scratch, scratch_env):
        notify(f"scratch PostgreSQL {env.postgres_version} cluster ready")
        # A dry run creates only the bookkeeping table: the baseline every down must return to.
        runner.migrate(scratch, scratch_env, dry_run=True)
        baseline = schema_dump.dump(scratch, scratch_env)
        runner.migrate(scratch, scratch_env, notify=notify)
        first_up = schema_dump.dump(scratch, scratch_env)
        if count:
            runner.rollback(scratch, scratch_env, steps=count, notify=notify)
        emptied = schema_dump.dump(scratch, scratch_env)
        reapply_error = None
        try:
            runner.migrate(scratch, scratch_env, notify=notify)
        except FailedError as exc:
            # Typically a down section that left an object behind, so the up trips over it.
            reapply_error = exc.message
        second_up = schema_dump.dump(scratch, scratch_env)
    differences = _diff("baseline", baseline, "after all downs", emptied)
    differences += _diff("first up", first_up, "second up", second_up)
    return VerifyResult(count, env.postgres_version, first_up == second_up, emptied == baseline, differences,
                        reapply_error)
