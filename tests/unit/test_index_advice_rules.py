"""The rule-based index advice (used where hypopg is not installed), on pg_stats-like figures."""

from __future__ import annotations

from test_index_checks import index

from cuisine_db.diagnose.index_advice import TableStats, covered, hypothetical_candidates, rule_candidate
from cuisine_db.diagnose.query_shape import TableUse

# recipes at seed scale 1: 5,000 rows, 650 owners, the busiest owning 18% of them.
RECIPES = TableStats(10, "public", "recipes", 5000.0, average={"user_id": 1 / 650, "id": 1 / 5000, "created_at": 1e-4,
                                                                 "visibility": 0.33},
                     top={"user_id": 0.18, "id": 1 / 5000, "created_at": 1e-4, "visibility": 0.6},
                     columns={"id", "user_id", "created_at", "visibility", "title"})
EXISTING = [index("recipes_pkey", [1], 100, is_unique=True, is_primary=True, constraint_type="p"),
            index("recipes_user_id_idx", [2], 101)]


def use(equality: tuple[str, ...] = (), order: tuple[str, ...] = (), limited: bool = False,
        ranges: tuple[str, ...] = ()) -> TableUse:
    return TableUse(None, "recipes", equality, ranges, (), order, True, limited)


def test_a_heavy_users_latest_recipes_want_user_id_then_created_at() -> None:
    found = rule_candidate(use(("user_id",), ("created_at",), limited=True), RECIPES, EXISTING)
    assert found is not None
    columns, reason = found
    assert columns == ("user_id", "created_at")
    assert "sorts up to 900 rows" in reason and "recipes_user_id_idx" in reason


def test_an_index_on_another_table_with_the_same_columns_does_not_count() -> None:
    elsewhere = [*EXISTING, index("executions_user_id_created_at_idx", [2, 4], 120, table_oid=99)]
    found = rule_candidate(use(("user_id",), ("created_at",), limited=True), RECIPES, elsewhere)
    assert found is not None and found[0] == ("user_id", "created_at")
    assert ("user_id", "created_at") in hypothetical_candidates(
        use(("user_id",), ("created_at",), limited=True), RECIPES, elsewhere)


def test_nothing_when_an_index_already_serves_or_nothing_would_help() -> None:
    with_both = [*EXISTING, index("recipes_user_id_created_at_idx", [2, 4], 102)]
    assert rule_candidate(use(("user_id",), ("created_at",), limited=True), RECIPES, with_both) is None
    assert rule_candidate(use(("id",)), RECIPES, EXISTING) is None  # the primary key
    assert rule_candidate(use(("visibility",)), RECIPES, EXISTING) is None  # a third of the table per value
    assert rule_candidate(use(("user_id",), ("created_at",)), RECIPES, EXISTING) is None  # no LIMIT: all rows anyway
    small = TableStats(11, "public", "kitchens", 300.0, average={"name": 0.01}, top={"name": 0.01}, columns={"name"})
    assert rule_candidate(TableUse(None, "kitchens", ("name",), (), (), (), False, False), small, []) is None


def test_an_unindexed_selective_filter_is_recommended() -> None:
    found = rule_candidate(use(("created_at",)), RECIPES, EXISTING)
    assert found is not None and found[0] == ("created_at",)
    assert "a sequential scan leaves 5,000 to read" in found[1]


def test_covered_accepts_equality_columns_in_any_order() -> None:
    two = [index("recipes_created_user_idx", [4, 2], 103)]
    assert covered(("user_id", "created_at"), ("user_id", "created_at"), two) is not None
    assert covered(("user_id", "created_at"), ("user_id",), two) is None


def test_hypothetical_candidates_are_few_and_new() -> None:
    candidates = hypothetical_candidates(use(("user_id",), ("created_at",), limited=True), RECIPES, EXISTING)
    assert candidates[0] == ("user_id", "created_at") or ("user_id", "created_at") in candidates
    assert ("user_id",) not in candidates  # recipes_user_id_idx exists
    assert len(candidates) <= 8
