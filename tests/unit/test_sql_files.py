"""The SQL files: each starts with a comment saying what it returns, and every variant named exists."""

from __future__ import annotations

from importlib import resources

from cuisine_db import sql


def test_every_statement_file_opens_with_a_comment_and_holds_a_statement() -> None:
    root = resources.files("cuisine_db.sql")
    assert sql.names(), "no SQL files were found in the package"
    for name in sql.names():
        raw = root.joinpath(f"{name}.sql").read_text(encoding="utf-8")
        assert raw.startswith("-- "), f"{name}.sql must open with a comment saying what it does"
        assert sql.text(name), f"{name}.sql holds no statement"


def test_every_version_variant_names_an_existing_file_newest_first() -> None:
    known = set(sql.names())
    for name, variants in sql.VARIANTS.items():
        assert name in known, f"the default {name} is missing"
        assert [minimum for minimum, _ in variants] == sorted((m for m, _ in variants), reverse=True), name
        for _, file_name in variants:
            assert file_name in known, f"{name} names a missing variant {file_name}"


def test_variant_picks_by_server_version() -> None:
    sql.VARIANTS["test/x"] = [(170000, "test/x_pg17"), (150000, "test/x_pg15")]
    try:
        assert sql.variant("test/x", 180001) == "test/x_pg17"
        assert sql.variant("test/x", 160004) == "test/x_pg15"
        assert sql.variant("test/x", 140011) == "test/x"
    finally:
        del sql.VARIANTS["test/x"]


def test_every_version_dependent_piece_is_named_by_its_statement_and_covers_every_version() -> None:
    known = set(sql.names())
    for name, pieces in sql.PARTS.items():
        assert name in known, f"{name} has pieces but no file"
        for piece, versions in pieces.items():
            assert "{" + piece + "}" in sql.text(name), f"{name}.sql does not name the piece {{{piece}}}"
            minimums = [minimum for minimum, _ in versions]
            assert minimums == sorted(minimums, reverse=True) and minimums[-1] == 0, f"{name}: {piece}"


def test_for_server_fills_in_the_piece_of_the_version() -> None:
    newer = sql.for_server("performance/index_inventory", 160000).as_string()
    older = sql.for_server("performance/index_inventory", 150007).as_string()
    assert "pg_stat_get_lastscan(i.indexrelid) AS last_scan" in newer
    assert "NULL::timestamptz AS last_scan" in older
    assert "{" not in newer + older
