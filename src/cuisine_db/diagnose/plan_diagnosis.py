"""A short diagnosis of an EXPLAIN plan: scans that read far more than they keep, estimates off by 10x or
more, sorts and hashes spilling to disk. Each finding says what to do."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cuisine_db.findings import Finding

Node = Mapping[str, Any]
_AGGREGATES = {"Plain": "Aggregate", "Sorted": "GroupAggregate", "Hashed": "HashAggregate", "Mixed": "MixedAggregate"}


def nodes(plan: Node, depth: int = 0) -> Iterator[tuple[int, Node]]:
    """Every node of the plan tree with its depth, parents first."""
    yield depth, plan
    for child in plan.get("Plans", ()):
        yield from nodes(child, depth + 1)


def label(node: Node) -> str:
    """'Seq Scan on recipes', 'Index Scan using recipes_pkey on recipes', 'Sort'."""
    text = str(node.get("Node Type", "?"))
    # The names psql's text format uses.
    if text == "ModifyTable" and node.get("Operation"):
        text = str(node["Operation"])
    elif text == "Aggregate" and node.get("Strategy") in _AGGREGATES:
        text = _AGGREGATES[node["Strategy"]]
    join = node.get("Join Type")
    if join and join != "Inner":
        text = text.replace(" Join", f" {join} Join") if text.endswith(" Join") else f"{text} {join} Join"
    if node.get("Scan Direction") == "Backward":
        text += " Backward"
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        alias = node.get("Alias")
        text += f" on {node['Relation Name']}" + (f" {alias}" if alias and alias != node["Relation Name"] else "")
    return text


def _count(value: float) -> str:
    return f"{value:,.0f}"


def seq_scans(plan: Node, env: str, table_rows: Mapping[str, float], *, min_rows: int = 1_000,
              large_rows: int = 10_000, keep_share: float = 0.1) -> Iterator[Finding]:
    """Sequential scans that throw most rows away (an index would find them), or read a large table whole."""
    for _, node in nodes(plan):
        if node.get("Node Type") != "Seq Scan" or not node.get("Relation Name"):
            continue
        table = str(node["Relation Name"])
        fix = f"make db-analyze-table env={env} table={table} (recommends an index for the filtered columns)"
        loops = node.get("Actual Loops")
        if loops:
            kept = node["Actual Rows"] * loops
            read = kept + node.get("Rows Removed by Filter", 0) * loops
            verb = "read"
        else:
            kept = node.get("Plan Rows", 0)
            read = table_rows.get(table, 0)
            verb = "will read"
        if node.get("Filter") and read >= min_rows and kept <= keep_share * read:
            yield Finding("seq-scan-filter", "warning", label(node),
                          f"{verb} {_count(read)} rows to keep {_count(kept)} (Filter: {node['Filter']})", fix)
        elif not node.get("Filter") and read >= large_rows:
            yield Finding("seq-scan-large", "info", label(node), f"{verb} all {_count(read)} rows of {table}",
                          "expected when the query needs most rows; otherwise add a WHERE clause or a LIMIT")


def _with_limits(plan: Node, limited: bool = False) -> Iterator[tuple[Node, bool]]:
    """Each node, and whether a Limit above it may stop it early."""
    yield plan, limited
    below = limited or plan.get("Node Type") == "Limit"
    for child in plan.get("Plans", ()):
        yield from _with_limits(child, below)


def estimate_errors(plan: Node, env: str, *, factor: float = 10.0, min_rows: int = 100) -> Iterator[Finding]:
    """Nodes whose actual row count is `factor` times off the planner's estimate: the plan was chosen blind."""
    for node, limited in _with_limits(plan):
        if not node.get("Actual Loops"):
            continue
        estimated, actual = float(node.get("Plan Rows", 0)), float(node.get("Actual Rows", 0))
        high, low = max(estimated, actual), max(min(estimated, actual), 1.0)
        # Under a LIMIT a node is stopped early by design: fewer rows than estimated is no error there.
        if high < min_rows or high / low < factor or (limited and actual < estimated):
            continue
        direction = "more" if actual > estimated else "fewer"
        table = node.get("Relation Name")
        fix = (f"make db-vacuum-analyze env={env} table={table}; if it persists, CREATE STATISTICS on the columns "
               "filtered together" if table else
               "ANALYZE the tables below this node; for correlated columns, CREATE STATISTICS")
        yield Finding("row-estimate", "warning", label(node),
                      f"estimated {_count(estimated)} rows, got {_count(actual)} ({high / low:,.0f}x {direction})",
                      fix)


def spills(plan: Node) -> Iterator[Finding]:
    """Sorts, hashes and hash aggregates that ran out of work_mem and wrote to temporary files."""
    for _, node in nodes(plan):
        kind = node.get("Node Type")
        if node.get("Sort Space Type") == "Disk":
            used_kb = int(node.get("Sort Space Used", 0))
            yield Finding("sort-spill", "warning", label(node),
                          f"{node.get('Sort Method', 'sort')} wrote {used_kb:,} kB to disk",
                          f"SET work_mem = '{_suggest_mb(used_kb)}MB' for this query, or an index that returns rows "
                          "in this order")
        elif kind == "Hash" and int(node.get("Hash Batches", 1)) > 1:
            yield Finding("hash-spill", "warning", label(node),
                          f"{node['Hash Batches']} batches (planned {node.get('Original Hash Batches', '?')}), "
                          f"peak memory {node.get('Peak Memory Usage', '?')} kB",
                          "raise work_mem (or hash_mem_multiplier) for this query so the hash fits in one batch")
        elif int(node.get("HashAgg Batches", 1)) > 1 or int(node.get("Disk Usage", 0)) > 0:
            yield Finding("hashagg-spill", "warning", label(node),
                          f"{node.get('HashAgg Batches', '?')} batches, {node.get('Disk Usage', 0):,} kB on disk",
                          "raise work_mem (or hash_mem_multiplier) for this query")


def _suggest_mb(used_kb: int) -> int:
    """In memory a sort needs about twice what it wrote to disk; round up to a power of two."""
    needed = max(used_kb * 2 // 1024, 4)
    size = 4
    while size < needed:
        size *= 2
    return size


def diagnose(plan: Node, env: str, table_rows: Mapping[str, float], *, min_rows: int = 1_000,
             large_rows: int = 10_000) -> list[Finding]:
    """Every finding on the plan, worst first."""
    found = [*seq_scans(plan, env, table_rows, min_rows=min_rows, large_rows=large_rows),
             *estimate_errors(plan, env), *spills(plan)]
    return sorted(found, key=lambda f: f.severity != "warning")
