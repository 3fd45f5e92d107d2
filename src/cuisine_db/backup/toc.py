"""A dump's table of contents, read with pg_restore itself, and its SQL understood with PostgreSQL's parser.

pg_restore reads toc.dat alone for `--list` and for schema SQL (`-f -`), so these run on a small folder
holding only the decrypted toc.dat. pglast then tells which table each statement belongs to, which roles
the dump names, and the column list of each table's COPY.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuisine_db.errors import FailedError
from cuisine_db.postgres.runner import ToolError, run

# pg_restore --list types that are more than one word; the rest are single words (TABLE, INDEX, ...).
_KINDS = ("MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "FK CONSTRAINT", "TABLE DATA", "SEQUENCE SET",
          "SEQUENCE OWNED BY", "DEFAULT ACL", "LARGE OBJECT", "BLOB METADATA", "TABLE ATTACH", "INDEX ATTACH",
          "EVENT TRIGGER", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "FOREIGN TABLE", "SERVER",
          "USER MAPPING", "FOREIGN DATA WRAPPER", "PROCEDURAL LANGUAGE", "STATISTICS DATA")
_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")


@dataclass(frozen=True, slots=True)
class TocEntry:
    dump_id: int
    kind: str
    schema: str | None
    name: str
    owner: str | None


def parse_list(text: str) -> list[TocEntry]:
    """Entries of `pg_restore --list` output (comment lines skipped)."""
    entries = []
    for line in text.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        rest = found[4]
        kind = next((k for k in _KINDS if rest.startswith(k + " ")), rest.split(" ", 1)[0])
        words = rest[len(kind) + 1:].split(" ")
        schema = words[0] if words and words[0] != "-" else None
        owner = words[-1] if len(words) > 2 and words[-1] else None
        name = " ".join(words[1:-1]) if len(words) > 2 else " ".join(words[1:])
        entries.append(TocEntry(int(found[1]), kind, schema, name, owner))
    return entries


def read_list(pg_restore: Path, folder: Path, section: str | None = None) -> list[TocEntry]:
    """The entries of `pg_restore --list`, or only those it restores in one `section` (pre-data, data: table data,
    sequence values and large objects; post-data)."""
    try:
        result = run([pg_restore, "--list", *([f"--section={section}"] if section else []), folder], timeout=300)
    except ToolError as exc:
        raise FailedError(f"pg_restore cannot read the backup's table of contents: {exc.message}") from None
    return parse_list(result.stdout)


def schema_sql(pg_restore: Path, folder: Path, *, section: str | None = None, entries: Iterable[int] = (),
               extra: Sequence[str] = ()) -> str:
    """The SQL pg_restore would run for the schema (or one section, or listed entries), without a server."""
    argv: list[str | Path] = [pg_restore, "--file=-", *extra]
    ids = list(entries)
    if ids:
        listing = folder.parent / f"{folder.name}.list"
        listing.write_text("".join(f"{dump_id};\n" for dump_id in ids))
        argv.append(f"--use-list={listing}")
    else:
        argv.append(f"--section={section}" if section else "--schema-only")
    argv.append(folder)
    try:
        return run(argv, timeout=600).stdout
    except ToolError as exc:
        raise FailedError(f"pg_restore cannot read the backup's schema: {exc.message}") from None


_HEADER = re.compile(r"^-- TOC entry (\d+) \(class \d+ OID \d+\)\n(?:-- Dependencies: ([\d ]+)\n)?"
                     r"-- Name: [^\n]*?; Type: ([^;\n]+);", re.MULTILINE)


def dependencies(verbose_sql: str) -> dict[int, tuple[str, frozenset[int]]]:
    """Each entry's type and the dump ids it depends on, from the headers `pg_restore --verbose --file=-` writes
    before each entry (`-- TOC entry N (...)`, `-- Dependencies: ...`, `-- Name: ...; Type: ...;`)."""
    return {int(found[1]): (found[3], frozenset(int(d) for d in (found[2] or "").split()))
            for found in _HEADER.finditer(verbose_sql)}


def closure(graph: dict[int, tuple[str, frozenset[int]]], dump_id: int) -> set[int]:
    """Every entry `dump_id` depends on, directly or through other entries of `graph`."""
    seen: set[int] = set()
    pending = [dump_id]
    while pending:
        for dependency in graph.get(pending.pop(), ("", frozenset()))[1]:
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    return seen


def data_files(entries: Iterable[TocEntry]) -> dict[int, TocEntry]:
    """The TABLE DATA entries, by dump id (their rows are in <dump id>.dat)."""
    return {entry.dump_id: entry for entry in entries if entry.kind == "TABLE DATA"}


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of dump SQL and what it touches."""

    sql: str
    kind: str
    relation: tuple[str, str] | None
    name: str | None = None
    owned_by: tuple[str, str] | None = None
    owner_roles: frozenset[str] = field(default_factory=frozenset)
    other_roles: frozenset[str] = field(default_factory=frozenset)
    columns: tuple[str, ...] = ()


def _strings(items: Any) -> list[str]:
    return [getattr(item, "sval", None) or "" for item in (items or ())]


def _range(node: Any) -> tuple[str, str] | None:
    if node is None or getattr(node, "relname", None) is None:
        return None
    return (node.schemaname or "public", node.relname)


def _roles(node: Any) -> Iterator[Any]:
    """Every RoleSpec under a parse tree node."""
    from pglast import ast

    if isinstance(node, ast.RoleSpec):
        yield node
        return
    if isinstance(node, tuple | list):
        for item in node:
            yield from _roles(item)
    elif isinstance(node, ast.Node):
        for attribute in node:
            yield from _roles(getattr(node, attribute))


def _relation(node: Any) -> tuple[tuple[str, str] | None, str | None]:
    from pglast import ast

    if isinstance(node, ast.CreateStmt | ast.AlterTableStmt | ast.CopyStmt):
        name = None
        if isinstance(node, ast.AlterTableStmt):
            for command in node.cmds or ():
                definition = getattr(command, "def_", None)
                if isinstance(definition, ast.Constraint) and definition.conname:
                    name = definition.conname
        return _range(node.relation), name
    if isinstance(node, ast.IndexStmt):
        return _range(node.relation), node.idxname
    if isinstance(node, ast.CreateTrigStmt):
        return _range(node.relation), node.trigname
    if isinstance(node, ast.RuleStmt):
        return _range(node.relation), node.rulename
    if isinstance(node, ast.CreatePolicyStmt):
        return _range(node.table), node.policy_name
    if isinstance(node, ast.CreateSeqStmt | ast.AlterSeqStmt):
        return _range(node.sequence), None
    if isinstance(node, ast.CommentStmt) and isinstance(node.object, tuple):
        parts = _strings(node.object)
        if len(parts) >= 2:
            return (parts[0], parts[1]), None
    if isinstance(node, ast.GrantStmt) and node.objects:
        first = node.objects[0]
        return _range(first), None
    return None, None


def statements(text: str) -> list[Statement]:
    """Split dump SQL into statements and classify each (PostgreSQL's own parser, through pglast)."""
    from pglast import ast, parser

    # Recent pg_dump/pg_restore fence their SQL with psql meta-commands (\\restrict KEY ... \\unrestrict KEY):
    # blank those lines (keeping offsets) so PostgreSQL's parser sees SQL only.
    # The end-of-data line of an (empty) COPY goes the same way.
    text = re.sub(r"(?m)^\\(\.|[a-z]+\b.*)$", lambda m: " " * len(m.group(0)), text)
    found = []
    for raw in parser.parse_sql(text):
        node = raw.stmt
        if isinstance(node, ast.VariableSetStmt):
            continue
        begin = raw.stmt_location or 0
        end = begin + raw.stmt_len if raw.stmt_len else len(text)
        sql_text = text[begin:end].strip()
        relation, name = _relation(node)
        owned_by = None
        if isinstance(node, ast.AlterSeqStmt):
            for option in node.options or ():
                if option.defname == "owned_by":
                    parts = _strings(option.arg)
                    if len(parts) == 3:
                        owned_by = (parts[0], parts[1])
        owners: set[str] = set()
        others: set[str] = set()
        if isinstance(node, ast.AlterTableStmt):
            for command in node.cmds or ():
                if command.newowner is not None and command.newowner.rolename:
                    owners.add(command.newowner.rolename)
        elif isinstance(node, ast.AlterOwnerStmt) and node.newowner is not None and node.newowner.rolename:
            owners.add(node.newowner.rolename)
        else:
            others = {role.rolename for role in _roles(node) if role.rolename}
        columns = tuple(_strings(node.attlist)) if isinstance(node, ast.CopyStmt) else ()
        found.append(Statement(sql_text, type(node).__name__, relation, name, owned_by, frozenset(owners),
                               frozenset(others - owners), columns))
    return found
