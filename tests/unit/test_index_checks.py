"""Index checks on rows shaped like the catalogs': what may be dropped, what duplicates or overlaps what."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from cuisine_db.diagnose import index_checks as checks

NOW = datetime(2025, 3, 31, tzinfo=UTC)
OLD_WINDOW = checks.StatsWindow(NOW - timedelta(days=30), "reset", NOW)
NEW_WINDOW = checks.StatsWindow(NOW - timedelta(hours=2), "created", NOW)
COLUMNS = {1: "id", 2: "user_id", 3: "title", 4: "created_at"}


def index(name: str, keys: list[int], oid: int, **extra: Any) -> checks.IndexRow:
    values: dict[str, Any] = dict(
        index_oid=oid, table_oid=10, schema="public", table_name="recipes", index_name=name, method="btree",
        keys=keys, key_count=len(keys), columns=[COLUMNS.get(k) for k in keys], opclasses=[1] * len(keys),
        collations=[0] * len(keys), options=[0] * len(keys), expressions=None, predicate=None, is_unique=False,
        is_primary=False, constraint_type="", is_valid=True, is_replica_identity=False, is_partition=False, scans=0,
        last_scan=None, bytes=8192 * 100, table_rows=5000.0)
    values.update(extra)
    return checks.IndexRow(**values)


FK = checks.ForeignKey(10, "public", "recipes", "recipes_user_id_fkey", [2], ["user_id"], "users", 5000.0)
INDEXES = [
    index("recipes_pkey", [1], 100, is_unique=True, is_primary=True, constraint_type="p"),
    index("recipes_title_key", [3], 101, is_unique=True, constraint_type="u"),
    index("recipes_lower_title_idx", [0], 102, is_unique=True, columns=[None], expressions="lower(title)"),
    index("recipes_user_id_idx", [2], 103),
    index("recipes_user_id_dup", [2], 104),
    index("recipes_created_at_idx", [4], 105),
    index("recipes_title_ident", [3, 1], 106, is_replica_identity=True),
    index("recipes_part_idx", [4, 1], 107, is_partition=True, table_oid=11),
    index("recipes_user_created_idx", [2, 4], 108, scans=12),
    index("recipes_broken_idx", [3, 4], 109, is_valid=False),
]


def test_unused_never_includes_constraints_unique_fk_replica_identity_or_partitions() -> None:
    unused = {u.index.index_name for u in checks.unused_indexes(INDEXES, [FK], OLD_WINDOW)}
    assert unused == {"recipes_created_at_idx"}
    without_fk = {u.index.index_name for u in checks.unused_indexes(INDEXES, [], OLD_WINDOW)}
    assert without_fk == {"recipes_created_at_idx", "recipes_user_id_idx", "recipes_user_id_dup"}


def test_unused_findings_wait_for_the_statistics_to_cover_min_days() -> None:
    unused = checks.unused_indexes(INDEXES, [FK], NEW_WINDOW)
    [early] = checks.unused_index_findings(unused, NEW_WINDOW, "production", min_days=7)
    assert early.severity == "info" and "too short" in early.evidence and "0.1 days" in early.evidence
    [ready] = checks.unused_index_findings(unused, NEW_WINDOW, "production", min_days=0)
    assert ready.severity == "warning" and ready.fix.startswith("make db-remove-unused-indexes env=production")
    assert "read replicas" in ready.evidence


def test_duplicates_keep_the_constraint_or_the_oldest() -> None:
    [finding] = checks.duplicate_indexes(INDEXES)
    assert finding.subject == "recipes_user_id_dup" and "same definition as recipes_user_id_idx" in finding.evidence
    assert finding.fix == 'DROP INDEX CONCURRENTLY "public"."recipes_user_id_dup";'
    twin = index("recipes_id_twin", [1], 99)  # older than the primary key, yet the key is kept
    [kept] = checks.duplicate_indexes([*INDEXES[:1], twin])
    assert kept.subject == "recipes_id_twin"


def test_overlapping_prefix_indexes_but_never_a_unique_one() -> None:
    subjects = {f.subject for f in checks.overlapping_indexes(INDEXES)}
    assert subjects == {"recipes_user_id_idx", "recipes_user_id_dup"}


def test_invalid_indexes_and_builds_in_progress() -> None:
    [finding] = checks.invalid_indexes(INDEXES, set())
    assert finding.severity == "error" and "make db-create-index table=recipes columns=title,created_at" in finding.fix
    [building] = checks.invalid_indexes(INDEXES, {109})
    assert building.severity == "info"


def test_foreign_keys_served_by_a_leading_column_in_any_order() -> None:
    two = checks.ForeignKey(10, "public", "recipes", "fk2", [4, 2], ["created_at", "user_id"], "x", 10.0)
    assert checks.unindexed_foreign_keys([FK, two], INDEXES, "staging") == []
    lonely = checks.ForeignKey(10, "app", "recipes", "fk3", [3, 4, 1], ["title", "created_at", "id"], "y", 10.0)
    [finding] = checks.unindexed_foreign_keys([lonely], INDEXES, "staging")
    assert finding.fix == "make db-create-index env=staging table=app.recipes columns=title,created_at,id"


def activity(**extra: Any) -> checks.TableActivity:
    values: dict[str, Any] = dict(
        table_oid=10, schema="public", table_name="executions", table_rows=60_000.0, never_counted=False,
        bytes=30 * 1024**2, seq_scans=0, seq_rows_read=0, index_scans=0, live_rows=60_000, dead_rows=0,
        changed_since_analyze=0, last_vacuum=None, last_autovacuum=None, last_analyze=NOW, last_autoanalyze=None)
    values.update(extra)
    return checks.TableActivity(**values)


def test_sequential_scan_heavy_tables_and_stale_statistics() -> None:
    heavy = activity(seq_scans=400, seq_rows_read=400 * 60_000, index_scans=100)
    [finding] = checks.seq_scan_heavy_tables([heavy, activity(seq_scans=10)], "production")
    assert "400 of 500 scans were sequential" in finding.evidence
    stale = activity(changed_since_analyze=30_000)
    never = activity(table_name="kitchens", last_analyze=None, live_rows=5_000)
    tiny = activity(table_name="schema_migrations", last_analyze=None, live_rows=5)
    found = {f.subject: f for f in checks.stale_statistics([stale, never, tiny, activity()], "production")}
    assert set(found) == {"executions", "kitchens"}
    assert found["kitchens"].fix == "make db-vacuum-analyze env=production table=kitchens"


def test_bloat_estimate_from_width_and_tuples() -> None:
    row = checks.BloatRow("public", "executions", "executions_user_id_idx", pages=10_000, tuples=1_000_000.0,
                          fillfactor=90, block_size=8192, key_width=8.0, widths_known=True)
    expected, bloat = checks.estimated_bloat(row)
    # 20-byte entries (8 header, 8 key, 4 line pointer), ~366 per page at 90% fill: ~2,735 pages, as a fresh
    # bigint index of a million rows has; 10,000 pages are then ~73% bloat.
    assert 2_700 < expected < 2_800 and bloat == 10_000 - expected
    [finding] = checks.bloated_indexes([row])
    assert finding.fix == 'REINDEX INDEX CONCURRENTLY "public"."executions_user_id_idx";'
    assert checks.bloated_indexes([dataclasses.replace(row, pages=4_000)]) == []
    assert checks.bloated_indexes([dataclasses.replace(row, widths_known=False)]) == []
