"""A finding: what a check found, how bad it is, where, the evidence, and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Mildest first; `worst()` compares by this order.
SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found; renderers (table, JSON, Markdown) take these and never query."""

    check: str
    severity: str
    subject: str
    evidence: str
    fix: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")


def worst(findings: Iterable[Finding]) -> str | None:
    """The most severe level among the findings, or None when there are none."""
    levels = [SEVERITIES.index(finding.severity) for finding in findings]
    return SEVERITIES[max(levels)] if levels else None
