"""The runbook's index changes: db-create-index (CREATE INDEX CONCURRENTLY with timeouts, progress, and no
INVALID index left behind) and db-remove-unused-indexes (DROP INDEX CONCURRENTLY of what analysis proves unused,
with its rules: refused while the statistics are too recent, confirmed on a protected environment, every definition
journaled before the first DROP)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.diagnose import index_checks as checks
from cuisine_db.diagnose.analysis import read_catalog
from cuisine_db.diagnose.table_names import column_names, find_table
from cuisine_db.durations import duration_ms, shown
from cuisine_db.errors import FailedError, RefusedError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.waiting import wait_for

Notify = Callable[[str], None]
NAME_BYTES = 63


@dataclass(frozen=True, slots=True)
class IndexBuild:
    """What db-create-index did: built an index, or found an equivalent one already there."""

    env: str
    index: str
    table: str
    columns: list[str]
    created: bool
    definition: str
    bytes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Relation:
    relation_oid: int
    kind: str
    table_oid: int | None
    is_valid: bool | None
    bytes: int
    definition: str | None


def index_name(table: str, columns: list[str]) -> str:
    """PostgreSQL's own convention, `<table>_<col>_<col>_idx`, shortened with a hash to fit 63 bytes."""
    name = f"{table}_{'_'.join(columns)}_idx"
    if len(name.encode()) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = name.encode()[: NAME_BYTES - len(digest) - 5].decode(errors="ignore")
    return f"{head}_{digest}_idx"


def _relation(conn: psycopg.Connection[Any], schema: str, name: str) -> _Relation | None:
    return queries.one_or_none(conn, _Relation, queries.load("performance/relation_in_schema"),
                               {"schema": schema, "name": name})


def _session_timeouts(conn: psycopg.Connection[Any], lock_timeout: str, statement_timeout_ms: int) -> None:
    setting = queries.load("performance/set_session")
    try:
        conn.execute(setting, {"name": "lock_timeout", "value": lock_timeout})
    except psycopg.errors.InvalidParameterValue as exc:
        raise UsageError(f"lock timeout {lock_timeout!r}: {exc.diag.message_primary}", hint="e.g. 5s or 1min"
                         ) from None
    conn.execute(setting, {"name": "statement_timeout", "value": str(statement_timeout_ms)})


def _progress_line(row: tuple[Any, ...]) -> str:
    phase, blocks_total, blocks_done, tuples_total, tuples_done, lockers_total, lockers_done = row
    if blocks_total:
        return f"{phase}: {blocks_done / blocks_total:.0%} of {blocks_total:,} blocks"
    if tuples_total:
        return f"{phase}: {tuples_done / tuples_total:.0%} of {tuples_total:,} rows"
    if lockers_total:
        return f"{phase}: {lockers_done} of {lockers_total} transactions finished"
    return str(phase)


def _failure(exc: BaseException, lock_timeout: str, timeout_ms: int) -> str:
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return (f"waited longer than lock_timeout={lock_timeout} for a lock (a long-running transaction, or a "
                "session writing to the table)")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return f"ran longer than the {shown(timeout_ms)} statement timeout"
    if isinstance(exc, psycopg.Error):
        return exc.diag.message_primary or str(exc)
    return "interrupted"


def _drop_leftover(settings: Settings, env: Environment, schema: str, name: str, lock_timeout: str,
                   budget_seconds: float, notify: Notify) -> str | None:
    """Drop the INVALID index a failed build left; the statement to run by hand when that is not possible in time.

    What stopped the build (a long transaction) usually stops the drop too, so the drop is retried until that
    has gone, within the budget.
    """
    statement = f"DROP INDEX CONCURRENTLY {checks.quote(schema)}.{checks.quote(name)};"
    with connect(settings, env, "create-index cleanup") as conn:
        _session_timeouts(conn, lock_timeout, 0)

        def gone() -> bool | None:
            found = _relation(conn, schema, name)
            if found is None or found.is_valid:
                return True
            try:
                conn.execute(queries.load("performance/drop_index").format(index=sql.Identifier(schema, name)))
                return True
            except psycopg.errors.LockNotAvailable:
                return None

        waited = wait_for(gone, seconds=budget_seconds, interval=1, waiting=lambda: notify(
            f"  waiting for the session that blocked the build to finish, to drop the INVALID {name} "
            f"(up to {budget_seconds:.0f}s)"))
        return None if waited else statement


def create_index(settings: Settings, env: Environment, table: str, columns: str, *, name: str | None = None,
                 lock_timeout: str | None = None, timeout: str = "6h", cleanup_seconds: float = 600,
                 notify: Notify = lambda _: None) -> IndexBuild:
    """db-create-index, journaled as `create-index` with the index built (or found) and its definition: CREATE INDEX
    CONCURRENTLY on the table's columns, with progress; on failure the half-built index is dropped. `timeout` is the
    build's statement timeout as typed (e.g. 2h)."""
    timeout_ms = duration_ms(timeout, "timeout")
    arguments = {"table": table, "columns": columns, "name": name, "lock_timeout": lock_timeout, "timeout": timeout}
    with journaled(settings, env, "create-index", arguments) as entry:
        build = _create_index(settings, env, table, columns, name=name, lock_timeout=lock_timeout,
                              timeout_ms=timeout_ms, cleanup_seconds=cleanup_seconds, notify=notify)
        entry.details.update(index=build.index, created=build.created, definition=build.definition,
                             seconds=build.seconds)
    return build


def _create_index(settings: Settings, env: Environment, table: str, columns: str, *, name: str | None,
                  lock_timeout: str | None, timeout_ms: int, cleanup_seconds: float, notify: Notify) -> IndexBuild:
    wanted = column_names(columns)
    lock_timeout = lock_timeout or env.lock_timeout
    with connect(settings, env, "create-index") as admin:
        target = find_table(admin, table)
        missing = [c for c in wanted if c not in target.columns]
        if missing:
            raise UsageError(f"{target.shown} has no column {', '.join(missing)}",
                             hint=f"its columns: {', '.join(target.columns)}")
        if target.kind == "p":
            raise UsageError(f"{target.shown} is partitioned: PostgreSQL cannot build its index concurrently",
                             hint="create the index on each partition, then on the parent with ON ONLY")
        chosen = name or index_name(target.table_name, wanted)
        if len(chosen.encode()) > NAME_BYTES:
            raise UsageError(f"index name {chosen!r} is longer than {NAME_BYTES} bytes")
        catalog = read_catalog(admin, target.table_oid)
        for index in catalog.indexes:
            if index.is_valid and index.predicate is None and index.method == "btree" \
                    and index.key_columns == wanted:
                notify(f"{index.name} already indexes {target.shown} ({', '.join(wanted)}): nothing to do")
                definition = _relation(admin, index.schema, index.index_name)
                return IndexBuild(env.name, index.name, target.shown, wanted, False,
                                  definition.definition or "" if definition else "", index.bytes, 0.0)
        existing = _relation(admin, target.schema, chosen)
        if existing is not None and existing.kind == "i" and not existing.is_valid:
            drop = f"DROP INDEX CONCURRENTLY {checks.quote(target.schema)}.{checks.quote(chosen)};"
            raise RefusedError(f"an INVALID index {chosen!r} already exists (a failed build, or one in progress)",
                               hint=f"make db-analyze-table env={env.name} table={target.shown} says which; "
                                    f"drop it with {drop}")
        if existing is not None:
            raise UsageError(f"{target.schema}.{chosen} already exists", hint="choose another name with name=...")
        statement = queries.load("performance/create_index").format(
            name=sql.Identifier(chosen), table=sql.Identifier(target.schema, target.table_name),
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in wanted))
        builder = connect(settings, env, "create-index")
        try:
            _session_timeouts(builder, lock_timeout, timeout_ms)
        except BaseException:
            builder.close()
            raise
        pid = builder.info.backend_pid
        errors: list[BaseException] = []

        def build() -> None:
            try:
                builder.execute(statement)
            except BaseException as exc:  # handed to the main thread, which reports it
                errors.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=build, name="create-index", daemon=True)
        notify(f"building {chosen} on {target.shown} ({', '.join(wanted)}) concurrently; "
               f"lock_timeout {lock_timeout}, statement timeout {shown(timeout_ms)}")
        worker.start()
        last = ""
        try:
            while worker.is_alive():
                worker.join(1.0)
                row = admin.execute(queries.load("performance/create_index_progress"), {"pid": pid}).fetchone()
                line = _progress_line(row) if row else ""
                if line and line != last:
                    notify(f"  {line}")
                    last = line
        except BaseException as exc:
            builder.cancel_safe()
            worker.join(30)
            errors.append(exc)
        finally:
            builder.close()
        seconds = time.monotonic() - started
        if errors:
            reason = _failure(errors[0], lock_timeout, timeout_ms)
            manual = _drop_leftover(settings, env, target.schema, chosen, lock_timeout, cleanup_seconds, notify)
            if isinstance(errors[0], KeyboardInterrupt):
                raise errors[0]
            left = (f"and the INVALID index it left could not be dropped: run {manual}" if manual
                    else "nothing was left behind")
            raise FailedError(f"building {chosen} on {target.shown} failed after {seconds:.1f}s: {reason}; {left}",
                              hint="lock_timeout=1min to wait longer for other sessions; see them with "
                                   "make db-show-locks" if isinstance(errors[0], psycopg.errors.LockNotAvailable)
                              else None)
        made = _relation(admin, target.schema, chosen)
        assert made is not None  # noqa: S101 - the build just succeeded
        return IndexBuild(env.name, checks.qualified(target.schema, chosen), target.shown, wanted, True,
                          made.definition or "", made.bytes, round(seconds, 3))


# --- removal --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IndexRemoval:
    """One unused index: why it is proposed, its definition (kept in the journal), and what happened."""

    index: str
    table: str
    definition: str
    bytes: int
    reason: str
    outcome: str


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    env: str
    stats_window: str
    long_enough: bool
    indexes: list[IndexRemoval]
    targets: list[tuple[int, str, str]]  # (oid, schema, name) of each index, in the same order


def plan_removal(settings: Settings, env: Environment, *, min_days: float | None = None) -> RemovalPlan:
    """The unused indexes with their CREATE INDEX statements; `long_enough`: do the statistics cover min_days?"""
    min_days = env.unused_index_min_days if min_days is None else min_days
    with connect(settings, env, "remove-unused-indexes") as conn:
        catalog = read_catalog(conn, None)
        unused = checks.unused_indexes(catalog.indexes, catalog.foreign_keys, catalog.window)
        items, targets = [], []
        for item in unused:
            row = conn.execute(queries.load("performance/index_usage"), {"oid": item.index.index_oid}).fetchone()
            if row is None:
                continue
            _, size, definition = row
            items.append(IndexRemoval(item.index.name, item.index.table, str(definition), int(size), item.reason,
                                      "would drop"))
            targets.append((item.index.index_oid, item.index.schema, item.index.index_name))
    days = catalog.window.days
    long_enough = min_days <= 0 or (days is not None and days >= min_days)
    return RemovalPlan(env.name, catalog.window.describe(), long_enough, items, targets)


def drop_planned(settings: Settings, env: Environment, plan: RemovalPlan, *, notify: Notify = lambda _: None
                 ) -> list[IndexRemoval]:
    """DROP INDEX CONCURRENTLY each planned index still unused; one failure does not stop the others."""
    done = []
    with connect(settings, env, "remove-unused-indexes") as conn:
        _session_timeouts(conn, env.lock_timeout, 0)
        for item, (oid, schema, name) in zip(plan.indexes, plan.targets, strict=True):
            row = conn.execute(queries.load("performance/index_usage"), {"oid": oid}).fetchone()
            if row is None:
                outcome = "skipped: no longer exists"
            elif row[0] > 0:
                outcome = f"skipped: scanned {row[0]} time(s) since the analysis"
            else:
                try:
                    conn.execute(queries.load("performance/drop_index").format(index=sql.Identifier(schema, name)))
                    outcome = "dropped"
                except psycopg.errors.LockNotAvailable:
                    outcome = f"failed: waited longer than lock_timeout={env.lock_timeout}; nothing was dropped"
                except psycopg.Error as exc:
                    outcome = f"failed: {exc.diag.message_primary or exc}"
            notify(f"  {item.index}: {outcome}")
            done.append(IndexRemoval(item.index, item.table, item.definition, item.bytes, item.reason, outcome))
    return done


@dataclass(frozen=True, slots=True)
class RemovalRun:
    """What db-remove-unused-indexes did: the plan, and what became of each index (None: a dry run or nothing to
    drop)."""

    plan: RemovalPlan
    done: list[IndexRemoval] | None


def remove_unused(settings: Settings, env: Environment, *, min_days: float | None = None, dry_run: bool = False,
                  yes: bool = False, ask: Ask | None = None, show: Callable[[RemovalPlan], None] = lambda _: None,
                  notify: Notify = lambda _: None) -> RemovalRun:
    """db-remove-unused-indexes: the plan is shown first (`show`); a dry run, or nothing to drop, stops there. Then,
    journaled as `remove-unused-indexes`: refused (exit 4) while the statistics cover less than min_days, confirmed
    on a protected environment (`yes`, or env's name typed in answer to `ask`), and every definition in the journal
    before the first DROP, so a killed run still leaves them there. Raises when a drop failed."""
    plan = plan_removal(settings, env, min_days=min_days)
    show(plan)
    if not plan.indexes or dry_run:
        return RemovalRun(plan, None)
    arguments = {"dry_run": dry_run, "min_days": min_days, "yes": yes}
    with journaled(settings, env, "remove-unused-indexes", arguments) as entry:
        entry.details["indexes"] = [{"index": i.index, "table": i.table, "definition": i.definition,
                                     "reason": i.reason} for i in plan.indexes]
        if not plan.long_enough:
            raise RefusedError(f"{plan.stats_window}: too short to call an index unused (an index used by a monthly "
                               "report shows 0 scans for weeks)",
                               hint="wait until the statistics cover more time, or give min-days=0 if you are sure")
        confirmation.require(env, f"Dropping {len(plan.indexes)} unused index(es)", yes=yes, ask=ask)
        # The definitions reach the journal before the first DROP, even if this process is killed midway.
        with journaled(settings, env, "remove-unused-indexes (plan)", arguments) as planned:
            planned.details["indexes"] = entry.details["indexes"]
        notify(f"dropping {len(plan.indexes)} index(es) concurrently")
        done = drop_planned(settings, env, plan, notify=notify)
        entry.details["indexes"] = [{"index": i.index, "table": i.table, "definition": i.definition,
                                     "outcome": i.outcome} for i in done]
        failed = [i for i in done if i.outcome.startswith("failed")]
        if failed:
            raise FailedError(f"{len(failed)} of {len(done)} index(es) could not be dropped: "
                              + "; ".join(f"{i.index}: {i.outcome}" for i in failed))
    return RemovalRun(plan, done)
