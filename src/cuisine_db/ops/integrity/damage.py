"""From evidence to damage: which relation is really broken, and the exact command that repairs it.

Attribution rules, in order:
- An error that names a file ("invalid page in block 5 of relation base/16384/16601") points at that file's
  relation, whichever check was reading it: a B-tree check with heapallindexed reads the table too. Only a
  relation's own check (amcheck's, or the page read) convicts it; a foreign key or sequence query reading it
  does not; what other checks saw there is added to its evidence, or, when its own
  check found nothing, reported as a read error of its own (a damaged index can send a query to heap blocks
  that do not exist).
- TOAST tables, their indexes' tables and owned sequences are repaired through the table that owns them.
- When a table is damaged, the errors its indexes raised are folded into the table's evidence: their
  heapallindexed pass read the damaged table, and restoring the table rebuilds its indexes anyway.
- Damage confined to a table's free space map or visibility map needs no restore: the server zeroes such a
  page when it reads it, and VACUUM FULL rewrites the table with new maps (a plain VACUUM would leave the
  damaged page on disk wherever the free space it records does not change).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cuisine_db.findings import Finding
from cuisine_db.ops.integrity.catalog import FORK_NAMES, Catalog, Relation
from cuisine_db.ops.integrity.tasks import Evidence

MAX_EVIDENCE = 3
# The checks that read a relation to judge it; other queries (foreign keys, sequences) only pass through it.
_OWN_CHECKS = ("verify_heapam", "bt_index_check", "pg_amcheck", "page read")


@dataclass(frozen=True, slots=True)
class Damage:
    """One relation to repair, why we think so, and how."""

    relation: str  # schema.name
    kind: str  # "table", "index", "materialized view", "sequence", "system catalog"
    table: str  # the table it belongs to, as tables= takes it
    evidence: tuple[str, ...]
    repair: str


def _psql(env_name: str, statement: str) -> str:
    return f"cuisine-db psql --env {env_name} -c {shlex.quote(statement)}"


def restore_tables_command(env_name: str, tables: Sequence[str]) -> str:
    return f"make db-restore-tables env={env_name} backup=latest {shlex.quote('tables=' + ','.join(tables))}"


def _describe(item: Evidence, culprit: Relation, fork: str | None) -> str:
    where = f"{item.source} on {item.checked.display}" if item.checked.oid != culprit.oid else item.source
    part = f" ({FORK_NAMES.get(fork, fork)} fork)" if fork and fork != "main" else ""
    return f"{where}{part}: {item.message}"


MAP_KIND = "free space or visibility map"


def _kind(rel: Relation, forks: set[str]) -> str:
    if rel.is_catalog and not rel.is_index:
        return "system catalog"
    if rel.is_heap and forks and forks <= {"fsm", "vm"}:
        return MAP_KIND
    return {"i": "index", "m": "materialized view", "S": "sequence"}.get(rel.kind, "table")


def _repair(rel: Relation, kind: str, env_name: str) -> str:
    if kind == MAP_KIND:
        return _psql(env_name, f"VACUUM FULL {rel.display}")
    if kind == "system catalog":
        return f"make db-restore env={env_name} backup=latest"
    if kind == "index":
        concurrently = "" if rel.is_catalog else "CONCURRENTLY "
        return _psql(env_name, f"REINDEX INDEX {concurrently}{rel.display}")
    if kind == "materialized view":
        return _psql(env_name, f"REFRESH MATERIALIZED VIEW {rel.display}")
    if kind == "sequence":
        return _psql(env_name, f"ALTER SEQUENCE {rel.display} RESTART WITH <the next value it should hand out>")
    return restore_tables_command(env_name, [rel.table_arg])


def attribute(catalog: Catalog, evidence: Iterable[Evidence], env_name: str) -> tuple[list[Damage], list[Finding]]:
    """Group the evidence by the relation to repair, applying the attribution rules above; and what other queries
    tripped over in relations no check of their own found damaged, as findings of their own."""
    groups: dict[int, list[tuple[int, str]]] = {}
    forks: dict[int, set[str]] = {}
    secondary: list[tuple[Relation, Relation, str, str | None]] = []
    for item in evidence:
        named = catalog.named_in(item.message)
        culprit, fork = named if named is not None else (item.checked, None)
        target = culprit if culprit.is_index else catalog.owner(culprit)
        if item.checked.oid != culprit.oid or not item.source.startswith(_OWN_CHECKS):
            # Another relation's check, or a constraint query, read it: supporting evidence only. (A damaged index
            # read by a query can point it at heap blocks that do not exist: the heap is not to blame.)
            secondary.append((target, culprit, _describe(item, culprit, fork), fork))
            continue
        groups.setdefault(target.oid, []).append((0, _describe(item, culprit, fork)))
        forks.setdefault(target.oid, set()).add(fork or "main")
    for oid in [oid for oid in groups if catalog.by_oid[oid].is_index]:
        table = catalog.owner(catalog.by_oid[oid])
        if table.oid in groups and table.oid != oid:
            groups[table.oid] += groups.pop(oid)
            forks[table.oid] |= forks.pop(oid)
    stray: list[Finding] = []
    for target, culprit, text, fork in secondary:
        home = target.oid if target.oid in groups else catalog.owner(target).oid
        if home in groups:
            groups[home].append((1, text))
            forks[home].add(fork or "main")
        else:
            stray.append(Finding("read error", "error", culprit.display, text,
                                 f"make db-check-corruption env={env_name} once the damage reported with it is "
                                 "repaired; it reads every page and names what is still damaged"))
    damages = []
    for oid, ranked in groups.items():
        rel = catalog.by_oid[oid]
        unique = list(dict.fromkeys(text for _, text in sorted(ranked, key=lambda pair: pair[0])))
        kind = _kind(rel, forks[oid])
        damages.append(Damage(relation=rel.display, kind=kind, table=rel.table_arg, evidence=tuple(unique),
                              repair=_repair(rel, kind, env_name)))
    damages.sort(key=lambda damage: (damage.kind != "system catalog", damage.kind != "table", damage.relation))
    return damages, list({(f.subject, f.evidence): f for f in stray}.values())


def assess(catalog: Catalog, evidence: Iterable[Evidence], env_name: str) -> list[Damage]:
    """The damaged relations only (see `attribute`)."""
    return attribute(catalog, evidence, env_name)[0]


def findings(damages: Iterable[Damage]) -> list[Finding]:
    result = []
    for damage in damages:
        shown = list(damage.evidence[:MAX_EVIDENCE])
        if len(damage.evidence) > MAX_EVIDENCE:
            shown.append(f"and {len(damage.evidence) - MAX_EVIDENCE} more")
        result.append(Finding(f"damaged {damage.kind}", "critical", damage.relation, "; ".join(shown), damage.repair))
    return result


def repair_plan(damages: Sequence[Damage], env_name: str) -> list[str]:
    """The commands to run, in order: whole-database restore if a catalog is hit, else one table restore for
    every damaged table (as the runbook writes it), then each index rebuild."""
    if any(damage.kind == "system catalog" for damage in damages):
        return [f"make db-restore env={env_name} backup=latest"]
    tables = [damage.table for damage in damages if damage.kind == "table"]
    plan = [restore_tables_command(env_name, tables)] if tables else []
    plan += [damage.repair for damage in damages if damage.kind != "table"]
    verify_tables = sorted({damage.table for damage in damages})
    if verify_tables:
        plan.append(f"make db-verify-tables env={env_name} {shlex.quote('tables=' + ','.join(verify_tables))}")
    return plan
