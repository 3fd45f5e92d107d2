"""What commands share for output: findings for people (a rich table), machines (JSON) and the record (Markdown),
byte sizes, check records, progress bars. Renderers never query."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db import humanize
from cuisine_db.cli.common import err, out, print_json, say
from cuisine_db.errors import UsageError
from cuisine_db.findings import Finding

if TYPE_CHECKING:
    from cuisine_db.backup.catalog import Check
    from cuisine_db.records import Damaged

# One name everywhere a command writes a file a person named (markdown=, --output): make's overwrite=1.
OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite", help="Replace the output file if it exists (make: overwrite=1); without it an existing file is "
                        "refused.")]
# Where a command that reports findings also writes them as Markdown (make's markdown=).
MarkdownOption = Annotated[Path | None, typer.Option("--markdown", help="Also write the findings as Markdown here.")]

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


def check_output(path: Path | None, overwrite: bool) -> None:
    """Checked before the command does its work: the folder exists, and an existing file is replaced only when
    asked (exit 2 otherwise, one line)."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {path.parent} does not exist",
                         hint="create the folder first, or give a path in an existing one")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder", hint="give a file name")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise UsageError(f"{path} already exists; it was not overwritten",
                         hint="add overwrite=1 (or --overwrite) to replace it, or give another path")


def write_output(path: Path, text: str, *, overwrite: bool) -> None:
    """Write a file a person named: created exclusively unless overwrite is given, errors as one line."""
    check_output(path, overwrite)
    try:
        with path.open("w" if overwrite else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UsageError(f"{path} appeared while the command ran; it was not overwritten",
                         hint="add overwrite=1 (or --overwrite) to replace it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    say(f"wrote {path}")


def show_findings(findings: Sequence[Finding], *, title: str, json: bool = False,
                  markdown: Path | None = None, clean: str = "nothing found", overwrite: bool = False) -> None:
    """Print findings as a table (or JSON), optionally also writing a Markdown file."""
    if markdown is not None:
        write_output(markdown, findings_markdown(findings, title), overwrite=overwrite)
    if json:
        print_json(list(findings))
    elif findings:
        out.print(findings_table(findings, title))
    else:
        say(f"{title}: {clean}")


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int], Callable[[int], None] | None]]:
    """A byte progress bar on stderr when it is a terminal; the services get a callback factory either way. The bar
    is drawn from the first object on, so a service may still ask for a confirmation before any data flows."""
    if not enabled or not err.is_terminal:
        yield lambda _total: None
        return
    # Imported here: rich.progress costs every backup and restore command ~8 ms of start-up, and it is only
    # needed on a terminal.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with ExitStack() as stack:
        shown: list[Progress] = []

        def start(total: int) -> Callable[[int], None]:
            if not shown:
                shown.append(stack.enter_context(Progress(*columns, console=err, transient=True)))
            bar = shown[0]
            task = bar.add_task(label, total=total or None)
            return lambda count: bar.advance(task, count)

        yield start


def size(value: int | None) -> str:
    """Bytes as backup, restore and archive listings show them: `humanize.size` (one base, 1024), blank when
    unknown."""
    return humanize.size(value, none="")


def check_text(check: Check | None, damage: Damaged | None = None) -> str:
    """A verification or test-restore record as one cell: damaged, ok or FAILED with its time, or never."""
    if damage is not None:
        return "[red]damaged[/] (below)"
    if check is None:
        return "never"
    verdict = "[green]ok[/]" if check.ok else "[red]FAILED[/]"
    return f"{verdict} {check.at.strftime('%Y-%m-%d %H:%M')}"


def show_damage(damaged: list[Damaged]) -> None:
    """Each damaged record on a line of its own, the file in full (never wrapped into a table cell)."""
    for damage in damaged:
        out.print(escape(str(damage)), soft_wrap=True)
