"""Command-line input for the tuning commands: durations, table and column names, memory shown to people."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuisine_db.diagnose.index_changes import index_name
from cuisine_db.diagnose.server_config import pretty
from cuisine_db.diagnose.table_names import column_names, table_name
from cuisine_db.durations import duration_ms, shown
from cuisine_db.errors import UsageError


def test_durations() -> None:
    assert duration_ms("30s") == 30_000 and duration_ms("1.5min") == 90_000 and duration_ms("45") == 45_000
    assert duration_ms("250ms") == 250 and shown(7_200_000) == "2h" and shown(1500) == "1500ms"
    for bad in ("", "soon", "-1s", "5 weeks", "0s", "30 s;"):
        with pytest.raises(UsageError):
            duration_ms(bad)


def test_table_and_column_names() -> None:
    assert table_name("recipes") == (None, "recipes")
    assert table_name("App.Recipes") == ("app", "recipes")
    assert table_name('"Odd Name".recipes') == ("Odd Name", "recipes")
    assert column_names("user_id, created_at") == ["user_id", "created_at"]
    for bad in ("x; DROP TABLE users", "a.b.c", "recipes.", "", "re cipes"):
        with pytest.raises(UsageError):
            table_name(bad)
    for bad in ("user_id,user_id", "user_id,", "user_id created_at", "lower(title)"):
        with pytest.raises(UsageError):
            column_names(bad)


@given(st.text(max_size=40))
def test_any_text_is_a_name_or_a_usage_error(text: str) -> None:
    try:
        schema, name = table_name(text)
    except UsageError:
        return
    assert name and (schema is None or schema)


def test_index_names_follow_the_convention_and_fit() -> None:
    assert index_name("recipes", ["user_id", "created_at"]) == "recipes_user_id_created_at_idx"
    long = index_name("a" * 40, ["b" * 30, "c" * 30])
    assert len(long.encode()) <= 63 and long.endswith("_idx")
    assert long != index_name("a" * 40, ["b" * 30, "c" * 31])


def test_memory_is_shown_in_its_largest_exact_unit() -> None:
    assert pretty("65536kB") == "64MB" and pretty("131072kB") == "128MB" and pretty("49152kB") == "48MB"
    assert pretty("1000kB") == "1000kB" and pretty("on") == "on" and pretty("0kB") == "0kB"
