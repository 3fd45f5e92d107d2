"""A finding: what a check found, how bad it is, where, the evidence, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found; renderers (table, JSON, Markdown) take these and never query."""

    check: str
    severity: str
    subject: str
    evidence: str
    fix: str
