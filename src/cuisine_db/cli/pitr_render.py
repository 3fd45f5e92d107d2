"""How physical restores, replays and their progress read on a terminal (and as JSON)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from cuisine_db.backup.find_target import FindReport
from cuisine_db.backup.physical_restore import LaidReport, OpenReport
from cuisine_db.backup.recovery import Progress
from cuisine_db.cli.common import out, print_json, say

EVERY = 5.0


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC" if value is not None else "none (no transaction replayed)"


def opened(report: OpenReport, json: bool) -> None:
    if json:
        print_json({**_plain(report), "recovery_seconds": report.recovery_seconds})
        return
    for note in report.notes:
        say(note)
    out.print(f"{report.env}: {report.backup} replayed to {report.target} and opened on timeline {report.timeline}")
    out.print(f"  last replayed transaction: {_when(report.reached_time)}")
    out.print(f"  last replayed WAL position: {report.reached_lsn}"
              + (f" (archive ends in segment {report.archive_end})" if report.archive_end else ""))
    out.print(f"  recovery time: {report.recovery_seconds:.1f}s (laying down {report.restore_seconds:.1f}s, replay "
              f"and opening {report.replay_seconds:.1f}s)")


def laid(report: LaidReport, json: bool) -> None:
    if json:
        print_json(report)
        return
    for note in report.notes:
        say(note)
    chain = f" (chain: {', '.join(report.chain)})" if len(report.chain) > 1 else ""
    out.print(f"{report.env}: laid down {report.backup}{chain} in {report.seconds:.1f}s")
    if report.opened is not None:
        opened(report.opened, False)
        return
    if report.kept:
        say(f"the previous data directory is kept in {report.kept} until the restored server opens")
    say("the server stays down until you choose:")
    for step in report.next_steps:
        say(f"  {escape(step)}")


def targets(report: FindReport) -> None:
    """Each destructive transaction, oldest first, with the commands that stop just before it."""
    from rich.table import Table

    for note in report.notes:
        say(f"[yellow]note:[/] {escape(note)}")
    if not report.targets:
        say(f"{report.env}: no DROP, TRUNCATE or large DELETE/UPDATE in {report.segments} archived segment(s) "
            f"({report.read_from} .. {report.read_to})")
        return
    table = Table("committed (UTC)", "xid", "lsn", "what", "tables", "rows", title=f"destructive transactions on "
                  f"{report.env} ({report.read_from} .. {report.read_to})")
    for target in report.targets:
        table.add_row(f"{target.committed_at:%Y-%m-%d %H:%M:%S.%f}"[:-3], target.xid, target.lsn, target.kind,
                      escape(", ".join(target.tables)), f"{target.rows:,}" if target.rows else "")
    out.print(table)
    for target in report.targets:
        out.print(f"before {target.kind} of {escape(', '.join(target.tables))} (xid {target.xid}):")
        out.print(f"  {escape(target.apply_logs)}", soft_wrap=True)
        if target.restore_tables:
            out.print(f"  or only the tables: {escape(target.restore_tables)}", soft_wrap=True)


def replay_progress(enabled: bool) -> Callable[[Progress], None]:
    """Every few seconds on stderr: how far replay has come."""
    last = [0.0]

    def show(progress: Progress) -> None:
        if not enabled or time.monotonic() - last[0] < EVERY or progress.replay_lsn is None:
            return
        last[0] = time.monotonic()
        say(f"replaying: WAL {progress.replay_lsn}, last transaction {_when(progress.replay_time)}")

    return show


def _plain(report: OpenReport) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(report)
