"""An EXPLAIN (FORMAT JSON) plan as the indented text operators know from psql, built from the JSON tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cuisine_db.diagnose.plan_diagnosis import label

_DETAILS = ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter", "Sort Key",
            "Group Key", "One-Time Filter")


def _buffers(node: Mapping[str, Any]) -> str:
    parts = []
    for scope in ("Shared", "Local", "Temp"):
        counts = [f"{kind.lower()}={node[f'{scope} {kind} Blocks']}" for kind in ("Hit", "Read", "Dirtied", "Written")
                  if node.get(f"{scope} {kind} Blocks")]
        if counts:
            parts.append(f"{scope.lower()} {' '.join(counts)}")
    return ", ".join(parts)


def _ms(value: float) -> str:
    return f"{value:.3f}"


def plan_lines(node: Mapping[str, Any], depth: int = 0) -> list[str]:
    """The node and its children, one line per node plus its conditions, timings and buffers."""
    pad = "  " * depth + ("->  " if depth else "")
    line = (f"{pad}{label(node)}  (cost={node.get('Startup Cost', 0):.2f}..{node.get('Total Cost', 0):.2f} "
            f"rows={node.get('Plan Rows', 0):,.0f} width={node.get('Plan Width', 0)})")
    if "Actual Loops" in node:
        if node["Actual Loops"]:
            line += (f" (actual time={_ms(node.get('Actual Startup Time', 0))}..{_ms(node.get('Actual Total Time', 0))}"
                     f" rows={node.get('Actual Rows', 0):,.0f} loops={node['Actual Loops']})")
        else:
            line += " (never executed)"
    lines = [line]
    inner = "  " * depth + ("    " if depth else "  ")
    for key in _DETAILS:
        if key in node:
            value = node[key]
            lines.append(f"{inner}{key}: {', '.join(value) if isinstance(value, list) else value}")
    if node.get("Rows Removed by Filter"):
        lines.append(f"{inner}Rows Removed by Filter: {node['Rows Removed by Filter']:,.0f}")
    if node.get("Sort Method"):
        lines.append(f"{inner}Sort Method: {node['Sort Method']}  {node.get('Sort Space Type', '')}: "
                     f"{node.get('Sort Space Used', '?')}kB")
    if node.get("Hash Batches"):
        lines.append(f"{inner}Buckets: {node.get('Hash Buckets')}  Batches: {node['Hash Batches']}  "
                     f"Memory Usage: {node.get('Peak Memory Usage', '?')}kB")
    buffers = _buffers(node)
    if buffers:
        lines.append(f"{inner}Buffers: {buffers}")
    for child in node.get("Plans", ()):
        lines += plan_lines(child, depth + 1)
    return lines
