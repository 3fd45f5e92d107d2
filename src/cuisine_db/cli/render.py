"""Findings for people (a rich table), machines (JSON) and the record (Markdown). Renderers never query."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from cuisine_db.cli.common import out, print_json, say
from cuisine_db.findings import Finding

_COLOURS = {"info": "cyan", "warning": "yellow", "error": "red", "critical": "bold red"}


def findings_table(findings: Sequence[Finding], title: str) -> Table:
    table = Table("severity", "check", "subject", "evidence", "fix", title=title)
    for finding in findings:
        colour = _COLOURS[finding.severity]
        # Findings carry data (query texts, names) that may hold brackets rich would read as markup.
        table.add_row(f"[{colour}]{finding.severity}[/]", escape(finding.check), escape(finding.subject),
                      escape(finding.evidence), escape(finding.fix))
    return table


def findings_markdown(findings: Sequence[Finding], title: str) -> str:
    """A Markdown table, with pipes escaped, for reports kept as records."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# {title}", "", "| severity | check | subject | evidence | fix |", "|---|---|---|---|---|"]
    lines += [f"| {f.severity} | {cell(f.check)} | {cell(f.subject)} | {cell(f.evidence)} | `{cell(f.fix)}` |"
              for f in findings]
    if not findings:
        lines.append("| - | - | - | nothing found | - |")
    return "\n".join(lines) + "\n"


def show_findings(findings: Sequence[Finding], *, title: str, json: bool = False,
                  markdown: Path | None = None, clean: str = "nothing found") -> None:
    """Print findings as a table (or JSON), optionally also writing a Markdown file."""
    if markdown is not None:
        markdown.write_text(findings_markdown(findings, title), encoding="utf-8")
        say(f"wrote {markdown}")
    if json:
        print_json(list(findings))
    elif findings:
        out.print(findings_table(findings, title))
    else:
        say(f"{title}: {clean}")
