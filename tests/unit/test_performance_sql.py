"""The statements read into dataclasses by position name their columns in the dataclasses' field order."""

from __future__ import annotations

import dataclasses
import re

import pytest
from psycopg import sql as psql

from cuisine_db import sql
from cuisine_db.diagnose import index_checks


def aliases(name: str) -> list[str]:
    select = sql.text(name).split("\nFROM ")[0]
    return re.findall(r"\bAS (\w+)", select)


@pytest.mark.parametrize(("statement", "row", "added"), [
    ("performance/index_inventory", index_checks.IndexRow, ["columns"]),
    ("performance/table_activity", index_checks.TableActivity, ["index_scans"]),
])
def test_positional_rows_match_their_dataclass(statement: str, row: type, added: list[str]) -> None:
    assert [*aliases(statement), *added] == [field.name for field in dataclasses.fields(row)]


def test_version_variants_of_this_area_are_registered() -> None:
    assert sql.variant("performance/slow_queries", 11200) == "performance/slow_queries"
    assert sql.variant("performance/slow_queries", 10900) == "performance/slow_queries_pgss_1_9"
    assert sql.variant("performance/slow_queries", 10800) == "performance/slow_queries_pgss_1_7"
    assert sql.variant("performance/slow_queries", 10700) == "performance/slow_queries_pgss_1_7"
    assert sql.variant("performance/checkpoints", 170000) == "performance/checkpoints_pg17"
    assert sql.variant("performance/index_inventory", 150000) == "performance/index_inventory"


@pytest.mark.parametrize(("pgss_version", "column"), [(10800, "total_exec_time"), (10700, "total_time")])
def test_pg_stat_statements_before_1_9_is_read_by_its_own_column_names(pgss_version: int, column: str) -> None:
    text = sql.for_server("performance/slow_queries", pgss_version, pgss=psql.Identifier("public", "pgss")).as_string()
    assert f"ORDER BY {column} DESC" in text
    assert f"{column} AS total_ms" in text
    assert '"public"."pgss"' in text
