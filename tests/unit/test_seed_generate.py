"""The seed generator: deterministic bytes, rows that satisfy the schema's relationships, skew and spread."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime

from cuisine_db.seed.generate import CuisineData

UNTIL = date(2026, 6, 30)


def rows_of(data: CuisineData) -> dict[str, list[list[str]]]:
    tables = {}
    for table in data.tables():
        text = b"".join(table.chunks).decode()
        tables[table.name] = [line.split("\t") for line in text.splitlines()]
        assert all(len(row) == len(table.columns) for row in tables[table.name]), table.name
    return tables


def digest(data: CuisineData) -> str:
    hasher = hashlib.sha256()
    for table in data.tables():
        for chunk in table.chunks:
            hasher.update(chunk)
    return hasher.hexdigest()


def test_same_scale_seed_and_day_give_the_same_bytes_and_another_seed_does_not() -> None:
    assert digest(CuisineData(1, 7, UNTIL)) == digest(CuisineData(1, 7, UNTIL))
    assert digest(CuisineData(1, 7, UNTIL)) != digest(CuisineData(1, 8, UNTIL))


def test_every_reference_points_at_a_generated_row() -> None:
    tables = rows_of(CuisineData(1, 3, UNTIL))
    ids = {name: {row[0] for row in rows} for name, rows in tables.items() if name != "recipe_step_ingredients"}
    kitchen_owner = {row[0]: row[1] for row in tables["kitchens"]}
    assert {row[1] for row in tables["recipes"]} <= ids["users"]
    assert {row[1] for row in tables["recipe_steps"]} <= ids["recipes"]
    assert {row[3] for row in tables["recipe_steps"]} <= ids["transformations"]
    assert {row[0] for row in tables["recipe_step_ingredients"]} == ids["recipe_steps"]
    assert {row[1] for row in tables["recipe_step_ingredients"]} <= ids["ingredients"]
    for execution in tables["executions"]:
        assert execution[1] in ids["recipes"]
        # A recipe is cooked in a kitchen of the person cooking it.
        assert kitchen_owner[execution[2]] == execution[3]
    positions = Counter((row[1], row[2]) for row in tables["recipe_steps"])
    assert max(positions.values()) == 1


def test_recipes_are_skewed_towards_a_few_users_and_executions_span_two_years() -> None:
    tables = rows_of(CuisineData(2, 42, UNTIL))
    per_user = sorted(Counter(row[1] for row in tables["recipes"]).values(), reverse=True)
    assert per_user[0] >= 20 * per_user[len(per_user) // 2]
    started = [datetime.fromisoformat(row[5]) for row in tables["executions"]]
    span = max(started) - min(started)
    assert 690 <= span.days <= 731
    assert max(started).date() <= UNTIL
    # Activity grows: the last year holds more executions than the first.
    middle = min(started) + span / 2
    assert sum(s > middle for s in started) > 1.5 * sum(s <= middle for s in started)
    finished = {row[4]: row[6] for row in tables["executions"]}
    assert finished["running"] == "\\N" and finished["succeeded"] != "\\N"
