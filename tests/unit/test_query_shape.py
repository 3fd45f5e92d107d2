"""Statements read with PostgreSQL's parser: one explainable statement, its parameters, the columns it uses."""

from __future__ import annotations

import pytest

from cuisine_db.diagnose.query_shape import Relation, parse_one, table_uses
from cuisine_db.errors import UsageError

COLUMNS = {"recipes": {"id", "user_id", "title", "created_at"}, "users": {"id", "email"}}


def columns_of(relation: Relation) -> set[str]:
    return COLUMNS.get(relation.name, set())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1; SELECT 2", "give one statement, not 2"),
        ("DELETE FROM recipes; DROP TABLE users", "give one statement, not 2"),
        ("   ", "no query given"),
        (";", "no query given"),
        ("EXPLAIN SELECT 1", "without EXPLAIN"),
        ("VACUUM recipes", "EXPLAIN cannot take a Vacuum statement"),
        ("DROP TABLE users", "EXPLAIN cannot take a Drop statement"),
        ("SELEC 1", "not valid SQL"),
    ],
)
def test_only_one_explainable_statement_is_accepted(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_one(text)


def test_kind_parameters_and_writes_are_read_from_the_tree() -> None:
    select = parse_one("SELECT * FROM recipes WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2;")
    assert (select.kind, select.parameters, select.writes) == ("select", 2, False)
    assert select.text == "SELECT * FROM recipes WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2"
    cte = parse_one("WITH gone AS (DELETE FROM recipes WHERE id = 1 RETURNING id) SELECT count(*) FROM gone")
    assert (cte.kind, cte.writes) == ("select", True)
    assert parse_one("INSERT INTO users (email) VALUES ('a@b')").writes
    # Text after the statement is not part of it; a literal semicolon inside a string is.
    assert parse_one("SELECT ';' -- trailing comment").text.startswith("SELECT ';'")


def test_table_uses_resolve_aliases_and_unqualified_columns() -> None:
    parsed = parse_one("SELECT r.title FROM recipes r JOIN users u ON u.id = r.user_id "
                       "WHERE u.email = $1 AND created_at > now() - interval '1 day' ORDER BY r.created_at LIMIT 5")
    uses = {use.table: use for use in table_uses(parsed, columns_of)}
    assert uses["recipes"].ranges == ("created_at",) and uses["recipes"].joins == ("user_id",)
    assert uses["recipes"].order == ("created_at",) and uses["recipes"].limited
    assert uses["users"].equality == ("email",) and uses["users"].joins == ("id",)


def test_heavy_user_query_shape() -> None:
    parsed = parse_one("SELECT * FROM recipes WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2")
    [use] = table_uses(parsed, columns_of)
    assert (use.equality, use.order, use.order_descending, use.limited) == (("user_id",), ("created_at",), True, True)


def test_or_and_mixed_directions_give_no_index_columns() -> None:
    parsed = parse_one("SELECT * FROM recipes WHERE user_id = $1 OR title = $2 ORDER BY user_id, created_at DESC")
    assert table_uses(parsed, columns_of) == []
    in_list = parse_one("DELETE FROM recipes WHERE user_id IN ($1, $2) AND id = ANY($3)")
    [use] = table_uses(in_list, columns_of)
    assert use.equality == ("user_id", "id")
