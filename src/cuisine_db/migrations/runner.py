"""Applying and rolling back migrations: one runner at a time, each migration atomic where it can be."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, RefusedError, UnavailableError, UsageError
from cuisine_db.findings import Finding
from cuisine_db.migrations.files import (
    MigrationFile,
    Section,
    check_version,
    discover,
    refuse_empty,
    refuse_problems,
)
from cuisine_db.migrations.lint_gate import check_pending
from cuisine_db.migrations.split import statements
from cuisine_db.migrations.state import AppliedRow, MigrationState, compare, read_applied
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.postgres.advisory import try_lock
from cuisine_db.waiting import poll_until
from cuisine_db.whoami import who

# Any constant shared by every runner; it names no row, only "migrations are being run".
ADVISORY_LOCK_KEY = 7_236_218_935_412_305_977
POLL_SECONDS = 0.25

Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    """One migration applied or rolled back."""

    version: str
    name: str
    direction: str
    duration_ms: int
    statements: int
    lock_retries: int


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a migrate or rollback run did."""

    env: str
    steps: list[StepResult]
    invalid_indexes: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _quiet(_: str) -> None:
    return None


@contextmanager
def runner_lock(conn: psycopg.Connection[Any], wait_seconds: float, notify: Notify) -> Iterator[None]:
    """Hold the runners' advisory lock, polling a try-lock so that a waiting runner holds no snapshot.

    A runner blocked inside pg_advisory_lock() sits in a transaction, and CREATE INDEX CONCURRENTLY in
    the runner that holds the lock would wait for it forever; polling leaves the waiter idle instead.
    """
    conn.execute(sql.load("migrations/check_client"))
    poll_until(lambda: try_lock(conn, "migrations/try_lock", {"key": ADVISORY_LOCK_KEY}), seconds=wait_seconds,
               interval=POLL_SECONDS,
               what=f"another migration runner has held the lock for more than {wait_seconds:.0f}s",
               hint="see who: SELECT * FROM pg_locks WHERE locktype = 'advisory'",
               waiting=lambda: notify("waiting for another migration runner to finish"))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute(sql.load("migrations/unlock"), {"key": ADVISORY_LOCK_KEY})


def _server_failure(
    migration: MigrationFile, direction: str, index: int, total: int, exc: psycopg.Error, in_transaction: bool,
    invalid: list[tuple[str, str]] | None = None,
) -> FailedError:
    diag = exc.diag
    primary = diag.message_primary or str(exc).strip()
    message = f"{migration.path.name} ({direction}) failed at statement {index} of {total}: {primary}"
    if diag.sqlstate:
        message += f" [SQLSTATE {diag.sqlstate}]"
    if in_transaction:
        hint = "nothing from this migration was kept; fix the file and run again"
    else:
        done = f"statements 1-{index - 1} took effect" if index > 1 else "no earlier statement took effect"
        hint = f"this migration runs without a transaction: {done}; make it idempotent (IF NOT EXISTS) and run again"
    if invalid:
        names = ", ".join(name for name, _ in invalid)
        message += f"; INVALID index left behind: {names}"
        hint = f"drop it first (DROP INDEX CONCURRENTLY {invalid[0][0]}); {hint}"
    if diag.message_hint:
        hint = f"{diag.message_hint}; {hint}"
    return FailedError(message, hint=hint)


def _execute_section(
    conn: psycopg.Connection[Any], env: Environment, migration: MigrationFile, direction: str,
    section: Section, bookkeeping: Callable[[int], None], notify: Notify,
) -> StepResult:
    """Run one section (and its bookkeeping) with a lock_timeout, retrying lock waits with back-off."""
    parts = statements(section.sql)
    retries = 0
    started = time.monotonic()
    if section.transaction:
        while True:
            index = 0
            try:
                with conn.transaction():
                    conn.execute(sql.load("migrations/set_lock_timeout"),
                                 {"value": env.lock_timeout, "local": True})
                    for index, statement in enumerate(parts, start=1):  # noqa: B007 - index names the failure
                        conn.execute(statement)
                    bookkeeping(int((time.monotonic() - started) * 1000))
                break
            except pgerrors.LockNotAvailable as exc:
                retries = _retry_or_fail(env, migration, direction, index, len(parts), exc, retries, notify)
            except psycopg.Error as exc:
                raise _server_failure(migration, direction, index, len(parts), exc, in_transaction=True) from None
    else:
        conn.execute(sql.load("migrations/set_lock_timeout"), {"value": env.lock_timeout, "local": False})
        try:
            for index, statement in enumerate(parts, start=1):
                while True:
                    try:
                        conn.execute(statement)
                        break
                    except pgerrors.LockNotAvailable as exc:
                        retries = _retry_or_fail(env, migration, direction, index, len(parts), exc, retries,
                                                 notify, in_transaction=False)
                    except psycopg.Error as exc:
                        raise _server_failure(migration, direction, index, len(parts), exc, in_transaction=False,
                                              invalid=_invalid_indexes(conn)) from None
            with conn.transaction():
                bookkeeping(int((time.monotonic() - started) * 1000))
        finally:
            conn.execute(sql.load("migrations/set_lock_timeout"), {"value": "0", "local": False})
    return StepResult(migration.version, migration.name, direction,
                      int((time.monotonic() - started) * 1000), len(parts), retries)


def _retry_or_fail(env: Environment, migration: MigrationFile, direction: str, index: int, total: int,
                   exc: psycopg.Error, retries: int, notify: Notify, in_transaction: bool = True) -> int:
    if retries >= env.lock_retries:
        failure = _server_failure(migration, direction, index, total, exc, in_transaction)
        failure.hint = (f"gave up after {retries + 1} attempts with lock_timeout={env.lock_timeout}: "
                        "find the blocker with `make db-show-locks`; " + (failure.hint or ""))
        raise failure from None
    delay = min(0.5 * 2**retries, 10.0)
    notify(f"{migration.path.name}: waited {env.lock_timeout} for a lock; retrying in {delay:.1f}s")
    time.sleep(delay)
    return retries + 1


def _invalid_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in conn.execute(sql.load("migrations/invalid_indexes")).fetchall()]


def _prepare(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(sql.load("migrations/create_table"))
        conn.execute(sql.load("migrations/add_columns"))


def _refuse_drift(states: list[MigrationState], files: dict[str, MigrationFile]) -> None:
    for state in states:
        if state.state == "drifted":
            raise RefusedError(
                f"applied migration {files[state.version].path.name} was edited after it was applied",
                hint=f"revert the edit, or record it deliberately: cuisine-db migrate accept-edit {state.version}",
            )
        if state.state == "missing":
            raise RefusedError(
                f"applied migration {state.version}_{state.name}.sql is missing from the migrations folder",
                hint="restore the file from version control before migrating",
            )


def status(settings: Settings, env: Environment) -> list[MigrationState]:
    """Applied, pending, drifted and missing migrations of an environment."""
    files = discover(settings.migrations_dir)
    with connect(settings, env, "migrate status", purpose="monitoring") as conn:
        try:
            return compare(files, read_applied(conn))
        except pgerrors.InsufficientPrivilege:
            raise UnavailableError(
                f"{conn.info.user} may not read schema_migrations on {env.name!r}",
                hint=f"grant it to the monitoring role: cuisine-db security setup-roles --env {env.name}",
            ) from None


def migrate(settings: Settings, env: Environment, *, dry_run: bool = False, lock_wait: float = 600,
            notify: Notify = _quiet, force: bool = False) -> RunResult:
    """Apply every pending migration in version order, each in its own transaction unless it opts out."""
    files = discover(settings.migrations_dir)
    by_version = {migration.version: migration for migration in files}
    with connect(settings, env, "migrate") as conn, runner_lock(conn, lock_wait, notify):
        _prepare(conn)
        states = compare(files, read_applied(conn))
        _refuse_drift(states, by_version)
        pending = [by_version[state.version] for state in states if state.state == "pending"]
        refuse_problems(pending)
        refuse_empty(pending)
        # Risky statements are reported before anything runs; unwaived errors stop a protected environment.
        findings = check_pending(files, pending, conn.info.server_version, env, force=force, notify=notify)
        def record(migration: MigrationFile, duration_ms: int) -> None:
            conn.execute(sql.load("migrations/record"), {
                "version": migration.version, "name": migration.name, "checksum": migration.checksum,
                "applied_by": who(), "duration_ms": duration_ms,
            })

        steps = _run_sections(conn, env, "up", pending, record, dry_run, notify)
        return RunResult(env.name, steps, _invalid_indexes(conn), findings)


def _run_sections(
    conn: psycopg.Connection[Any], env: Environment, direction: str, chosen: list[MigrationFile],
    bookkeeping: Callable[[MigrationFile, int], None], dry_run: bool, notify: Notify,
) -> list[StepResult]:
    """Run each migration's up or down section in turn (or only count its statements on a dry run)."""
    results: list[StepResult] = []
    for migration in chosen:
        section = migration.up if direction == "up" else migration.down
        if dry_run:
            results.append(StepResult(migration.version, migration.name, direction, 0,
                                      len(statements(section.sql)), 0))
            continue
        notify(f"{'applying' if direction == 'up' else 'rolling back'} {migration.path.name}")
        results.append(_execute_section(conn, env, migration, direction, section,
                                        functools.partial(bookkeeping, migration), notify))
    return results


def _rollback_targets(files: list[MigrationFile], applied: list[AppliedRow], steps: int | None,
                      version: str | None) -> list[MigrationFile]:
    """What rollback undoes, in the order it undoes them: dbmate's choice, repeated.

    dbmate rolls back the applied migration whose file sorts last by name (for timestamped names, the highest
    version), whenever it was applied; both tools therefore agree on the same data. Rows whose file is gone are
    not candidates.
    """
    versions = {row.version for row in applied}
    newest_first = [migration for migration in reversed(files) if migration.version in versions]
    if version is not None:
        if version not in versions:
            raise UsageError(f"migration {version} is not applied; nothing to roll back to",
                             hint="see applied versions with: cuisine-db migrate status")
        kept = next((index for index, migration in enumerate(newest_first) if migration.version == version), None)
        if kept is None:  # V is applied but its file is gone: undo the ones whose version sorts after it
            return [migration for migration in newest_first if migration.version.encode() > version.encode()]
        return newest_first[:kept]
    if steps is None or steps < 1:
        raise UsageError("steps must be a positive number", hint="e.g. steps=1")
    if steps > len(newest_first):
        raise UsageError(f"cannot roll back {steps} migrations: only {len(newest_first)} applied")
    return newest_first[:steps]


def rollback(settings: Settings, env: Environment, *, steps: int | None = None, version: str | None = None,
             dry_run: bool = False, lock_wait: float = 600, yes: bool = False, ask: Ask | None = None,
             notify: Notify = _quiet) -> RunResult:
    """Undo applied migrations as dbmate would, the one sorting last first: the last `steps`, or every one
    after `version`. A protected environment needs the confirmation, naming them, before the first is undone."""
    if (steps is None) == (version is None):
        raise UsageError("give either steps=N or version=VERSION")
    if version is not None:
        check_version(version)
    files = discover(settings.migrations_dir)
    by_version = {migration.version: migration for migration in files}
    with connect(settings, env, "rollback") as conn, runner_lock(conn, lock_wait, notify):
        _prepare(conn)
        applied = read_applied(conn)
        # A row whose file is gone is not a candidate, as in dbmate; an edited file is refused as in migrate.
        _refuse_drift(compare(files, [row for row in applied if row.version in by_version]), by_version)
        chosen = _rollback_targets(files, applied, steps, version)
        refuse_problems(chosen)
        for migration in chosen:
            if not migration.down.sql.strip():
                raise RefusedError(f"cannot roll back {migration.path.name}: its down section is empty",
                                   hint="write a '-- migrate:down' section first")
        if chosen and not dry_run:
            names = ", ".join(f"{migration.version}_{migration.name}" for migration in chosen)
            confirmation.require(env, f"Rolling back {len(chosen)} migration(s): {names}", yes=yes, ask=ask)

        def forget(migration: MigrationFile, _: int) -> None:
            conn.execute(sql.load("migrations/forget"), {"version": migration.version})

        results = _run_sections(conn, env, "down", chosen, forget, dry_run, notify)
        return RunResult(env.name, results, _invalid_indexes(conn))


def accept_edit(settings: Settings, env: Environment, version: str, *, yes: bool = False,
                ask: Ask | None = None) -> MigrationState:
    """Record that an applied migration's file was edited on purpose: its current checksum becomes expected (a
    protected environment asks first)."""
    check_version(version)
    confirmation.require(env, f"Accepting the edited file of applied migration {version}", yes=yes, ask=ask)
    files = {migration.version: migration for migration in discover(settings.migrations_dir)}
    if version not in files:
        raise UsageError(f"no migration file with version {version}")
    with connect(settings, env, "migrate accept-edit") as conn:
        _prepare(conn)
        states = {state.version: state for state in compare(list(files.values()), read_applied(conn))}
        if states[version].state != "drifted":
            raise UsageError(f"migration {version} is {states[version].state}, not drifted; nothing to accept")
        conn.execute(sql.load("migrations/accept_checksum"),
                     {"version": version, "checksum": files[version].checksum})
        return states[version]
