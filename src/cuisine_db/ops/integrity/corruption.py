"""db-check-corruption and db-verify-tables: PostgreSQL's pg_amcheck, then a read of every page it does not read.

pg_amcheck (from a build at least as new as the server) runs verify_heapam on every table and TOAST table and
bt_index_check with heapallindexed on every B-tree index, in parallel. Between them they read every page of
those relations' main forks. What they do not read is read here through shared buffers with pg_prewarm, so
that a checksum failure there surfaces too: the free space maps and visibility maps, indexes that are not
B-trees (GIN, GiST, BRIN, hash, SP-GiST) and sequences. Pages that are already in shared buffers are not read
from disk again by any of these; the server's checksum failure counter (see db-verify-integrity) covers them
once they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cuisine_db import sql
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.findings import Finding
from cuisine_db.ops.integrity import catalog as catalog_module
from cuisine_db.ops.integrity import damage, extensions, planners
from cuisine_db.ops.integrity.catalog import Catalog, Relation
from cuisine_db.ops.integrity.db_verify import DEFAULT_JOBS, TABLE_CHECKS, IntegrityReport, context, plan
from cuisine_db.ops.integrity.tasks import (
    CRASH_SETTLE_S,
    CRASHED,
    Connection,
    Evidence,
    Progress,
    is_corruption,
    message_of,
    open_when_ready,
    run_tasks,
)
from cuisine_db.postgres import binaries, client_environ
from cuisine_db.postgres.runner import ToolError, run

_HEADER = re.compile(r'^(?P<what>heap table|btree index) "(?P<name>.*)"(?P<where>(?:, [a-z]+ \d+)*):$')
_SEVERITY = re.compile(r"^(ERROR|FATAL|PANIC|WARNING):\s+")
_CONNECTION_LOST = "server closed the connection unexpectedly"
MAX_CRASHES = 3


@dataclass(frozen=True, slots=True)
class AmcheckResult:
    evidence: list[Evidence]
    unattributed: list[str]  # reports about relations the catalog does not know (dropped meanwhile)
    incomplete: str | None  # pg_amcheck's own error when it stopped early


def _pattern(rel: Relation) -> str:
    """An exact pg_amcheck pattern: inside double quotes, pattern characters match themselves."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (rel.schema, rel.name))


def parse_pg_amcheck(output: str, database: str, catalog: Catalog) -> tuple[list[Evidence], list[str]]:
    """pg_amcheck's report (a header line per problem, the message indented under it) as evidence."""
    evidence: list[Evidence] = []
    unknown: list[str] = []
    current: tuple[str, str, str] | None = None
    lines: list[str] = []

    def flush() -> None:
        if current is None:
            return
        what, name, where = current
        message = " ".join(_SEVERITY.sub("", line.strip()) for line in lines if line.strip())
        if where:
            message = f"{where.strip(', ')}: {message}"
        rel = catalog.by_plain.get(name.removeprefix(f"{database}."))
        source = "pg_amcheck " + ("verify_heapam" if what == "heap table" else "bt_index_check")
        if rel is None:
            unknown.append(f"{what} {name}: {message}")
        else:
            evidence.append(Evidence(rel, message, source))

    for line in output.splitlines():
        header = _HEADER.match(line)
        if header:
            flush()
            current, lines = (header.group("what"), header.group("name"), header.group("where")), []
        elif line.startswith("query was:"):
            continue
        elif current is not None:
            lines.append(line)
    flush()
    return evidence, unknown


def _pg_amcheck(settings: Settings, env: Environment, build: binaries.PgBuild, *, jobs: int,
                include: Sequence[Relation] | None, only: Relation | None = None,
                exclude: Sequence[Relation] = ()) -> tuple[int, str, str]:
    argv: list[str | Path] = [build.program("pg_amcheck"), "--heapallindexed", "--install-missing",
                              f"--jobs={max(1, jobs)}"]
    if only is not None:
        argv += ["--relation", _pattern(only), "--no-dependent-indexes", "--no-dependent-toast"]
    for rel in include or []:
        argv += ["--table", _pattern(rel)]
    for rel in exclude:
        # --exclude-relation does not drop an index a table brings along; these do (a table takes its indexes).
        argv += ["--exclude-index" if rel.is_index else "--exclude-table", _pattern(rel)]
    result = run(argv, env=client_environ(settings, env), check=False)
    return result.returncode, result.stdout, result.stderr


def _wait_for_server(settings: Settings, env: Environment) -> None:
    """After a crash: give the postmaster a moment to begin its restart, then wait until it accepts connections."""
    time.sleep(CRASH_SETTLE_S)
    open_when_ready(lambda: connect(settings, env, "db-check-corruption")).close()


def run_pg_amcheck(settings: Settings, env: Environment, server_major: int, database: str, catalog: Catalog,
                   tables: Sequence[Relation] | None, jobs: int) -> AmcheckResult:
    """pg_amcheck over the database (or the given tables and their indexes and TOAST).

    When a check crashes the server, pg_amcheck stops, and every session it had open reports the same lost
    connection. Each of those relations is then checked again alone: the one that crashes again is the damaged
    one, and pg_amcheck runs once more without it, so one crash does not hide the rest of the database.
    """
    build = binaries.client_for(server_major, settings.cache_dir)
    crashed: list[Relation] = []
    found: list[Evidence] = []
    unknown: list[str] = []
    for _ in range(MAX_CRASHES + 1):
        code, stdout, stderr = _pg_amcheck(settings, env, build, jobs=jobs, include=tables, exclude=crashed)
        evidence, unattributed = parse_pg_amcheck(stdout, database, catalog)
        unknown += unattributed
        found += [item for item in evidence if not _lost(item)]
        suspects = list(dict.fromkeys(item.checked for item in evidence if _lost(item)))
        if not suspects:
            if code in (0, 2):
                return AmcheckResult(found, unknown, None)
            if not found:
                raise ToolError("pg_amcheck", code, stderr or stdout)
            return AmcheckResult(found, unknown, " ".join(stderr.strip().splitlines()[-3:]) or f"exit {code}")
        for suspect in suspects:
            _wait_for_server(settings, env)
            _, alone, _ = _pg_amcheck(settings, env, build, jobs=1, include=None, only=suspect)
            again, _ = parse_pg_amcheck(alone, database, catalog)
            if any(_lost(item) for item in again):
                crashed.append(suspect)
                found.append(Evidence(suspect, CRASHED, "pg_amcheck " + ("verify_heapam" if suspect.is_heap
                                                                         else "bt_index_check")))
            found += [item for item in again if not _lost(item)]
        _wait_for_server(settings, env)
    return AmcheckResult(found, unknown, f"the server crashed more than {MAX_CRASHES} times; the check stopped")


def _lost(item: Evidence) -> bool:
    return _CONNECTION_LOST in item.message


def _unread_forks(rel: Relation) -> tuple[str, ...]:
    """The forks of a relation that pg_amcheck does not read."""
    if rel.is_heap:
        return ("fsm", "vm")
    if rel.is_btree:
        return ("fsm",)
    if rel.is_index:
        return ("main", "fsm")
    if rel.kind == "S":
        return ("main",)
    return ()


def read_unread_pages(conn: Connection, catalog: Catalog, relations: Sequence[Relation],
                      on_progress: Progress | None = None) -> tuple[list[Evidence], int]:
    """Read, through shared buffers, every page pg_amcheck leaves unread; return evidence and pages read."""
    schema, _ = extensions.ensure(conn, "pg_prewarm")
    wanted = [(rel, fork) for rel in relations if rel.checkable for fork in _unread_forks(rel)]
    if not wanted:
        return [], 0
    rows = conn.execute(sql.load("integrity/fork_pages"),
                        {"oids": [rel.oid for rel, _ in wanted], "forks": [fork for _, fork in wanted]}).fetchall()
    query = sql.load("integrity/prewarm_fork").format(schema=psycopg.sql.Identifier(schema))
    total = sum(int(pages) for _, _, pages in rows) or 1
    done = 0
    evidence = []
    for oid, fork, pages in rows:
        rel = catalog.by_oid[int(oid)]
        try:
            conn.execute(query, {"oid": rel.oid, "fork": fork})
        except psycopg.errors.UndefinedTable:
            continue  # dropped since the catalog was read
        except psycopg.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            evidence.append(Evidence(rel, message_of(exc), f"page read ({fork})"))
        done += int(pages)
        if on_progress is not None:
            on_progress(done, total, f"{rel.display} {fork}")
    return evidence, done


def _scope_relations(catalog: Catalog, tables: frozenset[int] | None) -> tuple[list[Relation], list[Relation] | None]:
    """Every relation in scope, and the tables to give pg_amcheck (None: the whole database)."""
    relations = catalog.in_scope(tables)
    if tables is None:
        return relations, None
    return relations, [catalog.by_oid[oid] for oid in sorted(tables) if oid in catalog.by_oid]


def check_corruption(
    settings: Settings,
    env: Environment,
    *,
    tables: Sequence[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    on_progress: Progress | None = None,
) -> IntegrityReport:
    """pg_amcheck and the page reads over the database, or over some tables (db-verify-tables, which adds the
    constraint checks that can be limited to those tables)."""
    started = time.monotonic()
    notes: list[str] = []
    command = "db-verify-tables" if tables is not None else "db-check-corruption"
    with connect(settings, env, command) as conn:
        scope = None
        if tables is not None:
            scope = frozenset(catalog_module.resolve_tables(conn, catalog_module.parse_table_names(tables)).values())
        ctx = context(conn, settings, env, scope, False, notes, TABLE_CHECKS if tables is not None else ())
        version = conn.info.parameter_status("server_version") or str(conn.info.server_version)
    relations, amcheck_tables = _scope_relations(ctx.catalog, scope)
    # No session of ours stays open meanwhile: a check that crashes the server would end it too.
    amcheck = run_pg_amcheck(settings, env, ctx.server_version // 10000, ctx.database, ctx.catalog, amcheck_tables,
                             jobs)
    with open_when_ready(lambda: connect(settings, env, command)) as conn:
        page_evidence, pages_read = read_unread_pages(conn, ctx.catalog, relations, on_progress)
        tasks, counts = plan(conn, ctx, TABLE_CHECKS if tables is not None else ())
    checked = {"tables and TOAST tables (pg_amcheck)": sum(1 for rel in relations if rel.is_heap),
               "B-tree indexes (pg_amcheck, heapallindexed)": sum(1 for rel in relations if rel.is_btree),
               "other pages read (free space and visibility maps, other indexes, sequences)": pages_read, **counts}
    outcome = run_tasks(lambda: connect(settings, env, command), tasks, jobs)
    damaged, stray = damage.attribute(ctx.catalog, amcheck.evidence + page_evidence + outcome.evidence, env.name)
    findings = damage.findings(damaged) + stray
    findings += [Finding("damaged relation", "critical", "(dropped since the check began)", text,
                         "run the check again") for text in amcheck.unattributed]
    if amcheck.incomplete:
        findings.append(Finding("incomplete check", "critical", ctx.database,
                                f"pg_amcheck stopped early: {amcheck.incomplete}",
                                f"make db-check-corruption env={env.name} again once the server is up"))
    findings += sorted(outcome.findings, key=lambda f: (f.check, f.subject))
    if tables is None and not [finding for finding in findings if finding.severity != "info"]:
        _acknowledge(settings, env, notes)
    return IntegrityReport(env=env.name, database=ctx.database, server_version=version, findings=findings,
                           damaged=damaged, repair=damage.repair_plan(damaged, env.name), checked=checked, jobs=jobs,
                           seconds=round(time.monotonic() - started, 2), notes=notes)


def _acknowledge(settings: Settings, env: Environment, notes: list[str]) -> None:
    """After a clean full check, earlier checksum failures have nothing left behind them: stop reporting them."""
    with connect(settings, env, "db-check-corruption") as conn:
        _, failures, last = planners.checksum_state(conn)
    if failures:
        planners.acknowledge_checksum_failures(settings, env, failures, last)
        notes.append(f"the {failures} checksum failure(s) the server counted earlier left no damaged page behind; "
                     "db-verify-integrity stops reporting them")
