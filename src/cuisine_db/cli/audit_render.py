"""The audit report for people (rich tables) and for the compliance record (Markdown). Renderers never query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table

from cuisine_db.cli.common import out
from cuisine_db.cli.render import findings_table

if TYPE_CHECKING:
    from cuisine_db.security.audit_events import AuditEvent
    from cuisine_db.security.audit_reporting import AuditReport

_LIMIT = 50


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def _sections(report: AuditReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each section as a title, column names and rows of text: one source for both renderings."""

    def events(items: Sequence[AuditEvent]) -> list[list[str]]:
        return [[_when(e.time), e.user or "?", e.client or "?", e.command, e.objects, e.statement] for e in items]

    return [
        ("Connections per user and client", ["user", "client", "connections", "databases", "first", "last"],
         [[c.user, c.client, str(c.connections), c.databases, _when(c.first), _when(c.last)]
          for c in report.connections]),
        ("Failed logins", ["time", "user", "client", "reason"],
         [[_when(f.time), f.user or "?", f.client or "?", f.reason] for f in report.failed_logins]),
        ("Role and permission changes", ["time", "user", "client", "command", "objects", "statement"],
         events(report.role_changes)),
        ("DDL", ["time", "user", "client", "command", "objects", "statement"], events(report.ddl)),
        ("Writes per table", ["table", "command", "statements", "users"],
         [[w.table, w.command, str(w.statements), w.users] for w in report.writes]),
        ("Superuser activity", ["user", "connections", "statements", "clients", "first", "last"],
         [[s.user, str(s.connections), str(s.statements), s.clients, _when(s.first), _when(s.last)]
          for s in report.superusers]),
    ]


def _headline(report: AuditReport) -> str:
    return (f"audit report for {report.env}, {report.start} to {report.end} (UTC days): {report.records} log records "
            f"from {report.files} file(s) in {report.log_dir}; audit source: {report.audit_source}")


def show(report: AuditReport) -> None:
    out.print(_headline(report), markup=False)
    for title, columns, rows in _sections(report):
        if not rows:
            out.print(f"{title}: none", markup=False)
            continue
        table = Table(*columns, title=title)
        for row in rows[:_LIMIT]:
            table.add_row(*row)
        out.print(table)
        if len(rows) > _LIMIT:
            out.print(f"... and {len(rows) - _LIMIT} more (see --json or the Markdown file)")
    if report.unusual:
        out.print(findings_table(report.unusual, "Unusual activity"))
    else:
        out.print("Unusual activity: none found")
    for note in report.notes:
        out.print(f"note: {note}", markup=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: AuditReport) -> str:
    """The whole report (no row limit) as Markdown, for the compliance record."""
    lines = [f"# Audit report: {report.env}, {report.start} to {report.end}", "", _headline(report), ""]
    unusual = ("Unusual activity", ["severity", "check", "subject", "evidence", "what to do"],
               [[f.severity, f.check, f.subject, f.evidence, f.fix] for f in report.unusual])
    for title, columns, rows in [*_sections(report), unusual]:
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
        lines.append("")
    if report.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(lines)
