"""db-upgrade rehearse=1: the real run's steps on a restore of the newest full backup, measured; env is not touched.

The newest full backup is restored into a scratch local environment `rehearse-<env>` of the backup's major (the
restore db-restore does), upgraded by the same code as the real run, then checked: amcheck on every table and
index, row counts and applied migrations against the restore before the upgrade, and the plans of the top
pg_stat_statements statements before and after. The downtime it measured is the prediction for the real run. The
result is recorded next to the backup in the catalog, as a test restore is; the scratch environment is removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres import osuser
from cuisine_db.postgres.scratch import environment_copy
from cuisine_db.upgrade.request import UpgradeRequest

Notify = Callable[[str], None]
TOP = 20
COST_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class PlanChange:
    query: str
    cost_before: float
    cost_after: float


@dataclass(frozen=True, slots=True)
class RehearsalReport:
    env: str
    backup: str
    source: int
    target: int
    method: str
    predicted_downtime_seconds: float
    statistics_seconds: float
    total_seconds: float
    amcheck_problems: tuple[str, ...]
    row_count_differences: tuple[str, ...]
    migrations_missing: tuple[str, ...]
    plans_compared: int
    plans_skipped: int
    plan_changes: tuple[PlanChange, ...]
    go: bool


def scratch_name(env: Environment) -> str:
    return f"rehearse-{env.name}"[:31]


def _scratch(settings: Settings, env: Environment, major: int) -> tuple[Settings, Environment]:
    return environment_copy(settings, env, scratch_name(env), major=major, what="the rehearsal",
                            server_settings={**env.server_settings}, pg_bin=None, replicas={})


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counted = {}
    for schema, name in conn.execute(queries.load("test_restore/user_tables")).fetchall():
        row = conn.execute(queries.load("restore/count_rows").format(table=sql.Identifier(schema, name))).fetchone()
        counted[f"{schema}.{name}"] = row[0] if row else 0
    return counted


def _migrations(conn: psycopg.Connection[Any]) -> list[str]:
    try:
        return [str(version) for (version,) in conn.execute(queries.load("upgrade/applied_migrations")).fetchall()]
    except psycopg.errors.UndefinedTable:
        return []


def top_statements(settings: Settings, env: Environment) -> list[str]:
    """The live environment's most expensive statements by total time (pg_stat_statements), if it is installed."""
    with connect(settings, env, "upgrade rehearsal", purpose="monitoring") as conn:
        try:
            return [text for (text,) in conn.execute(queries.load("upgrade/top_statements"), {"limit": TOP})]
        except psycopg.errors.UndefinedTable:
            return []


def _explainable(text: str) -> bool:
    """Only statements without parameters: PostgreSQL 14 cannot plan `$1` without values (no GENERIC_PLAN)."""
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    return head in ("SELECT", "WITH") and "$" not in text and ";" not in text.rstrip().rstrip(";")


def _costs(conn: psycopg.Connection[Any], statements: list[str]) -> dict[str, float]:
    costs = {}
    for text in statements:
        try:
            # The text pg_stat_statements recorded for a statement that already ran; EXPLAIN plans, never runs it.
            row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(text)).fetchone()
        except psycopg.Error:
            continue
        plan = row[0] if row else None
        if isinstance(plan, str):
            plan = json.loads(plan)
        if plan:
            costs[text] = float(plan[0]["Plan"]["Total Cost"])
    return costs


def rehearse(settings: Settings, env: Environment, request: UpgradeRequest, *, identity_full: bool = False,
             notify: Notify = lambda _: None) -> RehearsalReport:
    """Restore, upgrade and check a copy of env's newest full backup; env is not touched. method=logical runs the
    logical path on the copy (its own pre-flight, a new cluster beside it, catch-up, cutover): the prediction is the
    cutover's write downtime."""
    from cuisine_db.backup import catalog, restore_service
    from cuisine_db.backup.catalog import Check
    from cuisine_db.backup.manifest import TEST_RESTORE
    from cuisine_db.ops.integrity import CHECKS, verify_integrity
    from cuisine_db.postgres.local import ensure_up
    from cuisine_db.upgrade import inplace, preflight
    from cuisine_db.whoami import who

    fulls = [entry for entry in catalog.list_backups(settings, env) if entry.type == "full" and entry.complete
             and entry.env == env.name and entry.manifest is not None
             and entry.manifest.server_major == request.source]
    if not fulls:
        raise UsageError(f"{env.name} has no full backup to rehearse on",
                         hint=f"make db-backup env={env.name} type=full")
    newest = max(fulls, key=lambda entry: entry.taken_at)
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    statements = [text for text in top_statements(settings, env) if _explainable(text)]
    skipped = min(TOP, len(top_statements(settings, env))) - len(statements)
    rs, scratch = _scratch(settings, env, request.source)
    notify(f"rehearsal: {newest.name} restored into {scratch.name} (PostgreSQL {request.source}, port {scratch.port})")
    try:
        ensure_up(rs, scratch)
        resolved = catalog.find(rs, scratch, newest.name)  # where the rehearsal's record is written
        restore_service.restore_database(rs, scratch, newest.name, open_now=True, notify=notify)
        with connect(rs, scratch, "upgrade rehearsal") as conn:
            counts_before, applied_before = _counts(conn), _migrations(conn)
            costs_before = _costs(conn, statements)
        scratch_request = dataclasses.replace(request, env=scratch.name)
        if request.method == "logical":
            downtime, statistics = _logical_run(rs, scratch, request.target, identity_full, notify)
        else:
            checks = preflight.run_preflight(rs, scratch, scratch_request, notify=notify)
            if not checks.go:
                failed = next(row for row in checks.rows if row.status == preflight.NO_GO)
                raise UsageError(f"the rehearsal's pre-flight is a no-go: {failed.check}: {failed.detail}")
            ran = inplace.run_on(rs, scratch, scratch_request, checks, notify=notify, backup_after=False)
            downtime, statistics = ran.downtime_seconds or 0.0, ran.statistics_seconds or 0.0
        upgraded = inplace.at_major(scratch, request.target)
        after_settings = dataclasses.replace(rs, environments={**rs.environments, scratch.name: upgraded})
        verified = verify_integrity(after_settings, upgraded, selected=[c for c in CHECKS if c.amcheck])
        with connect(after_settings, upgraded, "upgrade rehearsal") as conn:
            counts_after, applied_after = _counts(conn), _migrations(conn)
            costs_after = _costs(conn, statements)
    finally:
        _remove(rs, scratch)
    differences = tuple(f"{table}: {counts_before.get(table)} before, {counts_after.get(table)} after"
                        for table in sorted(set(counts_before) | set(counts_after))
                        if counts_before.get(table) != counts_after.get(table))
    missing = tuple(version for version in applied_before if version not in applied_after)
    changes = tuple(PlanChange(text, costs_before[text], costs_after[text]) for text in costs_before
                    if text in costs_after and _factor(costs_before[text], costs_after[text]) >= COST_FACTOR)
    problems = tuple(f"{p.subject}: {p.evidence}" for p in verified.problems)
    report = RehearsalReport(env.name, newest.name, request.source, request.target, request.method,
                             downtime, statistics,
                             round(time.monotonic() - clock, 2), problems, differences, missing,
                             len(set(costs_before) & set(costs_after)), skipped, changes,
                             not (problems or differences or missing))
    catalog.record(settings, resolved.source_env or env, resolved.repository, newest.name, TEST_RESTORE, Check(
        at=started_at, ok=report.go, by=who(), seconds=report.total_seconds,
        problems=[*problems, *differences, *(f"migration {v} missing" for v in missing)],
        details={"env": env.name, "type": "full", "upgrade_rehearsal": True, "source": request.source,
                 "target": request.target, "method": request.method,
                 "predicted_downtime_seconds": report.predicted_downtime_seconds,
                 "plan_changes": len(changes)}))
    return report


def _logical_run(settings: Settings, scratch: Environment, target: int, identity_full: bool,
                 notify: Notify) -> tuple[float, float]:
    """The logical method on the scratch copy, end to end; (the cutover's write downtime, 0: the new cluster's
    statistics come from ANALYZE during the copy). The old cluster it leaves on another port goes with the copy."""
    from cuisine_db.upgrade import logical_cutover

    ran = logical_cutover.upgrade(settings, scratch, target, identity_full=identity_full, confirm=lambda _: None,
                                  notify=notify)
    return ran.downtime_seconds, 0.0


def _factor(before: float, after: float) -> float:
    low, high = sorted((max(before, 0.01), max(after, 0.01)))
    return high / low


def _remove(settings: Settings, scratch: Environment) -> None:
    """Stop whatever server runs in the scratch copy's folder (either major, any phase) and remove it all."""
    from cuisine_db.postgres import binaries
    from cuisine_db.upgrade.preflight import stop_leftover

    home = settings.env_dir(scratch)
    for pid_file in home.rglob("postmaster.pid") if home.is_dir() else []:
        datadir = pid_file.parent
        version = (datadir / "PG_VERSION").read_text().strip()
        stop_leftover(binaries.find(int(version), settings.cache_dir), datadir,
                      osuser.owner_of(datadir) if os.geteuid() == 0 else None)
    shutil.rmtree(home, ignore_errors=True)


def require_passing(settings: Settings, env: Environment, request: UpgradeRequest, name: str) -> str:
    """`rehearsed=NAME`: NAME's recorded test restore is a passing rehearsal of the same upgrade (same majors), else
    refused; the rehearsal is then not run again."""
    from cuisine_db.backup import catalog
    from cuisine_db.errors import RefusedError

    found = catalog.find(settings, env, name)
    record = found.entry.test_restore
    details = record.details if record is not None else {}
    logical = request.method == "logical"
    if (record is None or not record.ok or not details.get("upgrade_rehearsal")
            or details.get("source") != request.source or details.get("target") != request.target
            or (details.get("method") == "logical") != logical):
        kind = "logical " if logical else ""
        raise RefusedError(f"rehearsed={name}: {name} has no passing {kind}rehearsal of PostgreSQL {request.source} → "
                           f"{request.target} recorded", hint=f"make db-upgrade env={env.name} to={request.target} "
                           f"{'method=logical ' if logical else ''}rehearse=1 records one (or leave rehearsed= out: "
                           "the run rehearses first)")
    return name
