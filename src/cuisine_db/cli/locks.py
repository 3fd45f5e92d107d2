"""`cuisine-db locks` and `terminate-query` (db-show-locks, db-terminate-query): the runbook's Database Locks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from cuisine_db.cli.common import EnvOption, JsonOption, YesOption, asker, environment, out, print_json, say, settings
from cuisine_db.diagnose import terminate
from cuisine_db.diagnose.locks import BlockNode, show_locks
from cuisine_db.humanize import duration


def _label(node: BlockNode, root: bool) -> str:
    s = node.session
    if node.pid == 0:
        gids = escape(", ".join(repr(p.gid) for p in node.prepared) or "unknown")
        head = f"[bold red]prepared transaction[/] (pid 0; gid {gids})"
    elif s is None:
        head = f"[bold]pid {node.pid}[/] (ended meanwhile)"
    else:
        who = escape(f"{s.username}@{s.database}, application {s.application or '(none)'!r}, {s.client}")
        colour = "bold red" if root else "bold"
        head = (f"[{colour}]pid {node.pid}[/] {who} — {s.state}, transaction open {duration(s.xact_seconds)}")
    lines = [head]
    if node.waits_for:
        lines.append(escape(f"  waits for {node.waits_for}"))
    for held in node.holds:
        lines.append(escape(f"  holds {held}"))
    if node.blocked_total:
        lines.append(f"  blocks {node.blocked_total} session(s)")
    if s is not None and s.query:
        lines.append(f"  [dim]query:[/] {escape(s.query)}")
    return "\n".join(lines)


def _grow(tree: Tree, node: BlockNode) -> None:
    for child in node.blocked:
        _grow(tree.add(_label(child, root=False)), child)


def locks(env: EnvOption = None, json: JsonOption = False) -> None:
    """The blocking tree: root blockers first, the sessions waiting on each beneath it."""
    chosen = environment(env)
    report = show_locks(settings(), chosen)
    if json:
        print_json(report)
        return
    if not report.roots:
        out.print(f"{chosen.name}: no session is waiting for a lock")
        return
    out.print(f"{chosen.name}: {report.waiting} session(s) waiting for a lock, {len(report.roots)} root blocker(s)")
    for root in report.roots:
        tree = Tree(_label(root, root=True))
        _grow(tree, root)
        out.print(tree)
    first = report.roots[0]
    if first.pid:
        say(f"to end the first root blocker: make db-terminate-query env={chosen.name} pid={first.pid}")


def terminate_query(
    env: EnvOption = None,
    pid: Annotated[str, typer.Option("--pid", help="The server process to stop (from db-show-locks).")] = "",
    mode: Annotated[str, typer.Option("--mode", help="auto: cancel, then terminate if that does not free it; "
                                                     "cancel: cancel only; terminate: end the session at once.")]
    = "auto",
    wait: Annotated[float, typer.Option("--wait", min=0.5, max=300, help="Seconds to wait for each step.")] = 5.0,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Cancel a query, or end its session: shows what it does and whom it blocks first (db-terminate-query)."""
    chosen = environment(env)

    def show(target: terminate.Target) -> None:
        if json:
            return
        b = target.backend
        out.print(f"[bold]pid {b.pid}[/] " + escape(f"{b.username}@{b.database}, application "
                                                    f"{b.application or '(none)'!r}, {b.client} — {b.state}, "
                                                    f"transaction open {duration(b.xact_seconds)}"))
        for held in target.holds:
            out.print(escape(f"  holds {held}"))
        out.print(f"  blocks {len(target.blocks_total)} session(s)"
                  + (f": {', '.join(map(str, target.blocks_total))}" if target.blocks_total else ""))
        out.print(escape(f"  query: {b.query}"))

    done = terminate.terminate_query(settings(), chosen, pid, mode, wait=wait, yes=yes, ask=asker(chosen), show=show)
    if json:
        print_json(done)
        return
    result = done.result
    for step in result.steps:
        out.print(escape(f"- {step}"))
    if result.freed:
        out.print(f"[green]freed:[/] {', '.join(map(str, result.freed))}")
    if result.still_waiting:
        say(f"[yellow]still waiting for a lock (now on another session?):[/] "
            f"{', '.join(map(str, result.still_waiting))}; look again with make db-show-locks env={chosen.name}")
