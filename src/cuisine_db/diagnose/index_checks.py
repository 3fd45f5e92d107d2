"""Index and table checks for db-analyze, one small function per thing found (in PgHero's manner).

The checks take rows read once from the catalogs and statistics (see `analysis.py`) and never query;
thresholds are keyword arguments whose defaults the environment's configuration can override.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cuisine_db.findings import Finding
from cuisine_db.humanize import size

_CONSTRAINTS = {"p": "the primary key", "u": "a unique constraint", "x": "an exclusion constraint"}


def qualified(schema: str, name: str) -> str:
    """`name` on the public schema, `schema.name` elsewhere: how operators write it in make commands."""
    return name if schema == "public" else f"{schema}.{name}"


class OnTable:
    """A row about one table, named by `schema` and `table_name`: `table` is how operators write it."""

    __slots__ = ()
    schema: str
    table_name: str

    @property
    def table(self) -> str:
        return qualified(self.schema, self.table_name)


@dataclass(frozen=True, slots=True)
class IndexRow(OnTable):
    """One index as the catalogs and statistics describe it."""

    index_oid: int
    table_oid: int
    schema: str
    table_name: str
    index_name: str
    method: str
    keys: list[int]  # key columns then INCLUDE columns; 0 for an expression
    key_count: int
    opclasses: list[int]
    collations: list[int]
    options: list[int]
    expressions: str | None
    predicate: str | None
    is_unique: bool
    is_primary: bool
    constraint_type: str
    is_valid: bool
    is_replica_identity: bool
    is_partition: bool
    scans: int
    last_scan: datetime | None
    bytes: int  # from relpages: as of the index's last build, VACUUM or ANALYZE
    table_rows: float
    columns: list[str | None]  # the names of `keys` (None for an expression)

    @property
    def name(self) -> str:
        return qualified(self.schema, self.index_name)

    @property
    def key_columns(self) -> list[str]:
        return [column or "(expression)" for column in self.columns[: self.key_count]]

    @property
    def described(self) -> str:
        where = f" WHERE {self.predicate}" if self.predicate else ""
        return f"{self.index_name} ({', '.join(self.key_columns)}){where}"


@dataclass(frozen=True, slots=True)
class ForeignKey(OnTable):
    table_oid: int
    schema: str
    table_name: str
    name: str
    keys: list[int]
    columns: list[str]
    referenced: str
    table_rows: float


@dataclass(frozen=True, slots=True)
class TableActivity(OnTable):
    table_oid: int
    schema: str
    table_name: str
    table_rows: float
    never_counted: bool
    bytes: int
    seq_scans: int
    seq_rows_read: int
    live_rows: int
    dead_rows: int
    changed_since_analyze: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    index_scans: int  # summed over the table's indexes


@dataclass(frozen=True, slots=True)
class BloatRow:
    schema: str
    table_name: str
    index_name: str
    pages: int
    tuples: float
    fillfactor: int
    block_size: int
    key_width: float
    widths_known: bool


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """How far back the usage statistics reach: since their reset, or since the database was created."""

    since: datetime | None
    source: str  # "reset", "created" or "unknown"
    now: datetime

    @property
    def days(self) -> float | None:
        return None if self.since is None else (self.now - self.since).total_seconds() / 86_400

    def describe(self) -> str:
        if self.since is None:
            return "statistics were never reset and the database's age is unknown"
        origin = "last reset" if self.source == "reset" else "database created"
        return f"statistics cover {self.days:.1f} days ({origin} {self.since:%Y-%m-%d %H:%M} UTC)"


def quote(name: str) -> str:
    """An identifier as SQL text for people to copy (never executed by us: that goes through sql.Identifier)."""
    return '"' + name.replace('"', '""') + '"'


def _drop(index: IndexRow) -> str:
    return f"DROP INDEX CONCURRENTLY {quote(index.schema)}.{quote(index.index_name)};"


# --- what an index is for ---------------------------------------------------------------------------------
def backs_constraint(index: IndexRow) -> str | None:
    """What the index enforces or serves that dropping it would break, if anything."""
    if index.constraint_type in _CONSTRAINTS:
        return _CONSTRAINTS[index.constraint_type]
    if index.is_unique:
        return "uniqueness (a unique index)"
    if index.is_replica_identity:
        return "the table's replica identity"
    return None


def serves_foreign_key(index: IndexRow, keys: Sequence[int]) -> bool:
    """Lookups on the foreign key's columns (ON DELETE/UPDATE of the referenced row) can use this index."""
    leading = index.keys[: len(keys)]
    return (index.is_valid and index.predicate is None and index.method in ("btree", "hash")
            and len(keys) <= index.key_count and sorted(leading) == sorted(keys))


def foreign_key_served(index: IndexRow, foreign_keys: Iterable[ForeignKey]) -> ForeignKey | None:
    return next((fk for fk in foreign_keys if fk.table_oid == index.table_oid and serves_foreign_key(index, fk.keys)),
                None)


def by_table(rows: Iterable[IndexRow]) -> dict[int, list[IndexRow]]:
    """Indexes grouped by their table: the checks compare indexes of one table only (15,000 indexes stay fast)."""
    groups: dict[int, list[IndexRow]] = defaultdict(list)
    for row in rows:
        groups[row.table_oid].append(row)
    return groups


# --- checks -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UnusedIndex:
    """An index never scanned while the statistics were collected, and safe to drop as far as the catalogs know."""

    index: IndexRow
    reason: str


def unused_indexes(indexes: Iterable[IndexRow], foreign_keys: Sequence[ForeignKey], window: StatsWindow
                   ) -> list[UnusedIndex]:
    """Valid indexes with no scans that back no constraint, no foreign key's lookups, no replica identity."""
    keys_by_table: dict[int, list[ForeignKey]] = defaultdict(list)
    for fk in foreign_keys:
        keys_by_table[fk.table_oid].append(fk)
    found = []
    covering = window.describe()
    for index in indexes:
        if not index.is_valid or index.scans > 0 or index.is_partition or backs_constraint(index):
            continue
        if foreign_key_served(index, keys_by_table.get(index.table_oid, ())):
            continue
        reason = (f"0 scans; {covering}; {size(index.bytes)}, updated on every write to {index.table}; "
                  "scans on read replicas are not counted here")
        found.append(UnusedIndex(index, reason))
    return found


def unused_index_findings(unused: Iterable[UnusedIndex], window: StatsWindow, env: str, *, min_days: float = 7,
                          many: int = 20) -> list[Finding]:
    """Unused indexes, proposed for removal only once the statistics cover `min_days`."""
    long_enough = min_days <= 0 or (window.days is not None and window.days >= min_days)
    items = list(unused)
    if long_enough:
        return [Finding("unused-index", "warning", item.index.name, item.reason,
                        f"make db-remove-unused-indexes env={env} dry-run=1, then without dry-run") for item in items]
    later = f"look again once statistics cover {min_days:g} days"
    if len(items) > many:  # one line, not thousands, for what cannot be acted on yet
        names = ", ".join(item.index.name for item in items[:5])
        return [Finding("unused-index", "info", f"{len(items):,} indexes",
                        f"0 scans so far ({names}, ...); {window.describe()}: too short to be sure "
                        f"(under {min_days:g} days)", later)]
    return [Finding("unused-index", "info", item.index.name,
                    f"{item.reason}: too short to be sure (under {min_days:g} days)", later) for item in items]


def _shape(index: IndexRow) -> tuple[object, ...]:
    return (index.table_oid, index.method, tuple(index.keys), index.key_count, tuple(index.opclasses),
            tuple(index.collations), tuple(index.options), index.expressions, index.predicate)


def duplicate_indexes(indexes: Iterable[IndexRow]) -> list[Finding]:
    """Indexes identical to another on the same table: one of each group is enough."""
    groups: dict[tuple[object, ...], list[IndexRow]] = defaultdict(list)
    for index in indexes:
        if index.is_valid:
            groups[_shape(index)].append(index)
    findings = []
    for group in groups.values():
        if len(group) < 2:
            continue
        # Keep the one a constraint relies on, else the most used, else the oldest (lowest oid).
        keep = sorted(group, key=lambda i: (backs_constraint(i) is None, -i.scans, i.index_oid))[0]
        for index in group:
            if index is keep or backs_constraint(index):
                continue
            findings.append(Finding("duplicate-index", "warning", index.name,
                                    f"same definition as {keep.index_name} on {index.table} "
                                    f"({', '.join(index.key_columns)}); {size(index.bytes)}, {index.scans} scans",
                                    _drop(index)))
    return findings


def overlapping_indexes(indexes: Sequence[IndexRow]) -> list[Finding]:
    """B-tree indexes whose columns lead a longer index on the same table, which can serve their queries too."""
    findings = []
    tables = by_table(indexes)
    for short in indexes:
        if not (short.is_valid and short.method == "btree" and short.predicate is None and short.expressions is None
                and backs_constraint(short) is None):
            continue
        length = short.key_count
        for long in tables[short.table_oid]:
            if (long is short or not long.is_valid or long.method != "btree"
                    or long.predicate is not None or long.key_count <= length):
                continue
            same_lead = (long.keys[:length] == short.keys[:length] and long.opclasses[:length] == short.opclasses
                         [:length] and long.collations[:length] == short.collations[:length]
                         and long.options[:length] == short.options[:length])
            included = set(short.keys[length:]) <= set(long.keys)
            if same_lead and included:
                findings.append(Finding(
                    "overlapping-index", "info", short.name,
                    f"({', '.join(short.key_columns)}) leads {long.index_name} ({', '.join(long.key_columns)}), "
                    f"which serves the same lookups; {size(short.bytes)}, {short.scans} scans",
                    f"once {long.index_name} has proven itself: {_drop(short)}"))
                break
    return findings


def invalid_indexes(indexes: Iterable[IndexRow], being_built: set[int]) -> list[Finding]:
    """INVALID indexes: a failed CREATE INDEX CONCURRENTLY left them; they cost writes and serve no reads."""
    findings = []
    for index in indexes:
        if index.is_valid:
            continue
        if index.index_oid in being_built:
            findings.append(Finding("invalid-index", "info", index.name, "being built right now (not valid yet)",
                                    "wait for the build to finish"))
            continue
        columns = ",".join(c for c in index.key_columns if c != "(expression)")
        findings.append(Finding("invalid-index", "error", index.name,
                                f"INVALID on {index.table} ({', '.join(index.key_columns)}): left by a failed "
                                "concurrent build; it slows every write and serves no query",
                                f"{_drop(index)} then make db-create-index table={index.table} columns={columns}"))
    return findings


def unindexed_foreign_keys(foreign_keys: Iterable[ForeignKey], indexes: Sequence[IndexRow], env: str
                           ) -> list[Finding]:
    """Foreign keys with no index on their columns: every delete or key update of the referenced row scans."""
    findings = []
    tables = by_table(indexes)
    for fk in foreign_keys:
        if any(serves_foreign_key(index, fk.keys) for index in tables.get(fk.table_oid, ())):
            continue
        findings.append(Finding("foreign-key-without-index", "warning", f"{fk.table} ({', '.join(fk.columns)})",
                                f"{fk.name} references {fk.referenced}; deleting or re-keying a {fk.referenced} row "
                                f"scans all {fk.table_rows:,.0f} rows of {fk.table}",
                                f"make db-create-index env={env} table={fk.table} columns={','.join(fk.columns)}"))
    return findings


def seq_scan_heavy_tables(tables: Iterable[TableActivity], env: str, *, large_rows: int = 10_000,
                          min_scans: int = 50, seq_share: float = 0.5) -> list[Finding]:
    """Large tables read mostly by sequential scans: queries on them find rows without an index."""
    findings = []
    for table in tables:
        scans = table.seq_scans + table.index_scans
        if table.table_rows < large_rows or table.seq_scans < min_scans or table.seq_scans < seq_share * scans:
            continue
        average = table.seq_rows_read / max(table.seq_scans, 1)
        findings.append(Finding("seq-scan-heavy", "warning", table.table,
                                f"{table.seq_scans:,} of {scans:,} scans were sequential, reading "
                                f"{average:,.0f} rows each on average ({table.table_rows:,.0f} rows, "
                                f"{size(table.bytes)})",
                                f"make db-analyze-table env={env} table={table.table} for index advice; "
                                f"make db-slow-queries env={env} for the queries"))
    return findings


def estimated_bloat(row: BloatRow) -> tuple[float, float]:
    """(expected pages when freshly built, bloat pages) for a B-tree, from tuple count and key width.

    Each leaf tuple is an 8-byte header plus the key aligned to 8 bytes, with a 4-byte line pointer;
    a page keeps 24 bytes of header and 16 of B-tree special space, filled to the fill factor; inner
    pages add about one per tuples-per-page leaves, and there is one metapage.
    """
    tuple_bytes = 8 + math.ceil(row.key_width / 8) * 8 + 4
    usable = (row.block_size - 24 - 16) * row.fillfactor / 100
    per_page = max(usable / tuple_bytes, 1)
    leaves = math.ceil(row.tuples / per_page)
    expected = leaves + math.ceil(leaves / per_page) + 1
    return float(expected), float(max(row.pages - expected, 0))


def bloated_indexes(rows: Iterable[BloatRow], *, min_bytes: int = 10 * 1024**2, min_share: float = 0.3
                    ) -> list[Finding]:
    """B-tree indexes estimated to be at least `min_share` empty space and `min_bytes` larger than needed."""
    findings = []
    for row in rows:
        if not row.widths_known or row.pages == 0:
            continue
        expected, bloat = estimated_bloat(row)
        if bloat * row.block_size < min_bytes or bloat / row.pages < min_share:
            continue
        name = qualified(row.schema, row.index_name)
        findings.append(Finding("index-bloat", "warning", name,
                                f"{size(row.pages * row.block_size)} on disk, about "
                                f"{size(expected * row.block_size)} if rebuilt "
                                f"({bloat / row.pages:.0%} estimated bloat, from pg_stats widths)",
                                f"REINDEX INDEX CONCURRENTLY {quote(row.schema)}.{quote(row.index_name)};"))
    return findings


def stale_statistics(tables: Iterable[TableActivity], env: str, *, min_changes: int = 1_000,
                     changed_share: float = 0.2) -> list[Finding]:
    """Tables never analyzed, or changed by more than `changed_share` of their rows since the last ANALYZE."""
    findings = []
    for table in tables:
        analyzed = [t for t in (table.last_analyze, table.last_autoanalyze) if t is not None]
        fix = f"make db-vacuum-analyze env={env} table={table.table}"
        if not analyzed and table.live_rows >= min_changes:
            findings.append(Finding("stale-statistics", "warning", table.table,
                                    f"never analyzed; {table.live_rows:,} live rows: the planner is guessing", fix))
        elif (analyzed and table.changed_since_analyze >= min_changes
              and table.changed_since_analyze >= changed_share * max(table.live_rows, 1)):
            findings.append(Finding("stale-statistics", "warning", table.table,
                                    f"{table.changed_since_analyze:,} rows changed since the last ANALYZE "
                                    f"({max(analyzed):%Y-%m-%d %H:%M} UTC) of {table.live_rows:,} live rows", fix))
    return findings
