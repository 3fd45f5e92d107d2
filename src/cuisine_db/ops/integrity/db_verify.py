"""db-verify-integrity: every check in CHECKS, planned on one connection and run in parallel on a few more.

Adding a check is one entry in CHECKS: a planner that returns tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding
from cuisine_db.ops.integrity import catalog as catalog_module
from cuisine_db.ops.integrity import damage, extensions, planners, row_counts
from cuisine_db.ops.integrity.damage import Damage
from cuisine_db.ops.integrity.planners import Context, Planner
from cuisine_db.ops.integrity.tasks import Connection, Progress, Task, run_tasks

DEFAULT_JOBS = 2


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    plan: Planner
    amcheck: bool = False  # reads pages with amcheck (db-check-corruption does this with pg_amcheck instead)
    unit: str | None = None  # what its tasks count, for the summary ("tables", ...); None: not worth counting


CHECKS: tuple[Check, ...] = (
    Check("verify_heapam", planners.heap_tasks, amcheck=True, unit="tables (verify_heapam)"),
    Check("bt_index_check", planners.btree_tasks, amcheck=True, unit="B-tree indexes (bt_index_check, heapallindexed)"),
    Check("data checksums", planners.checksum_tasks),
    Check("collation versions", planners.collation_tasks),
    Check("NOT VALID constraints", planners.not_valid_tasks),
    Check("foreign keys", planners.foreign_key_tasks, unit="foreign keys (orphan rows)"),
    Check("sequences", planners.sequence_tasks, unit="sequences (behind their column)"),
    Check("invalid indexes", planners.invalid_index_tasks),
    Check("row counts", planners.row_count_tasks, unit="tables (row counts against the newest backup)"),
)

# What db-verify-tables adds to the corruption checks: only these can be limited to some tables.
TABLE_CHECKS = tuple(check for check in CHECKS if check.plan in (
    planners.not_valid_tasks, planners.foreign_key_tasks, planners.sequence_tasks, planners.invalid_index_tasks,
    planners.row_count_tasks))


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What the checks found, and how much they looked at."""

    env: str
    database: str
    server_version: str
    findings: list[Finding]
    damaged: list[Damage]
    repair: list[str]
    checked: dict[str, int]
    jobs: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        """The findings that fail the check (info ones, such as rows added since the backup, do not)."""
        return [finding for finding in self.findings if finding.severity != "info"]

    @property
    def ok(self) -> bool:
        return not self.problems


def context(conn: Connection, settings: Settings, env: Environment, tables: frozenset[int] | None,
            need_amcheck: bool, notes: list[str], selected: Sequence[Check] = (),
            baseline_env: Environment | None = None) -> Context:
    """What the planners look at; row counts are compared with `baseline_env`'s backups (default: env's own)."""
    schema = ""
    if need_amcheck:
        schema, installed = extensions.ensure(conn, "amcheck")
        if installed:
            notes.append("installed the amcheck extension (in pg_catalog, as pg_amcheck --install-missing does)")
    row = conn.execute(sql.load("integrity/in_recovery")).fetchone()
    database = conn.execute(sql.load("integrity/database")).fetchone()
    assert database is not None  # noqa: S101 - the statement always returns one row
    return Context(settings=settings, env=env, catalog=catalog_module.load(conn), tables=tables,
                   amcheck_schema=schema, server_version=conn.info.server_version,
                   in_recovery=bool(row and row[0]), database=database[0], database_quoted=database[1],
                   baselines=row_counts.baselines(settings, baseline_env or env, notes)
                   if any(check.plan is planners.row_count_tasks for check in selected) else {})


def plan(conn: Connection, ctx: Context, selected: Sequence[Check]) -> tuple[list[Task], dict[str, int]]:
    tasks: list[Task] = []
    counts: dict[str, int] = {}
    for check in selected:
        planned = check.plan(conn, ctx)
        if check.unit:
            counts[check.unit] = len(planned)
        tasks += planned
    return tasks, counts


def verify_integrity(
    settings: Settings,
    env: Environment,
    *,
    jobs: int = DEFAULT_JOBS,
    selected: Sequence[Check] = CHECKS,
    on_progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    baseline_env: Environment | None = None,
) -> IntegrityReport:
    """Run the checks over the whole database; damaged relations come with their repair."""
    started = time.monotonic()
    notes: list[str] = []
    with connect(settings, env, "db-verify-integrity") as conn:
        ctx = context(conn, settings, env, None, any(check.amcheck for check in selected), notes, selected,
                      baseline_env)
        tasks, counts = plan(conn, ctx, selected)
        version = conn.info.parameter_status("server_version") or str(conn.info.server_version)
    if on_plan is not None:
        on_plan(sum(task.cost for task in tasks))
    outcome = run_tasks(lambda: connect(settings, env, "db-verify-integrity"), tasks, jobs, on_progress)
    damaged, stray = damage.attribute(ctx.catalog, outcome.evidence, env.name)
    findings = damage.findings(damaged) + stray + sorted(outcome.findings, key=lambda f: (f.check, f.subject))
    return IntegrityReport(env=env.name, database=ctx.database, server_version=version, findings=findings,
                           damaged=damaged, repair=damage.repair_plan(damaged, env.name), checked=counts, jobs=jobs,
                           seconds=round(time.monotonic() - started, 2), notes=notes)
