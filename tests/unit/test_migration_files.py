"""Migration files read by dbmate's rules: names, markers, options, what comes before up, missing down."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuisine_db.errors import UsageError
from cuisine_db.migrations.files import discover, ignored, is_migration_name, parse, read, transaction_option

UP_DOWN = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n"


@pytest.mark.parametrize(("name", "taken"), [
    ("20250101090000_create_users.sql", True), ("001_init.sql", True), ("7.sql", True), ("10-Add Users.sql", True),
    ("init.sql", False), ("_001.sql", False), ("001_init.SQL", False), ("001_init.sql.bak", False),
    ("\u0661\u0662_arabic_digits.sql", False), ("001_a.sql\n", False),
])
def test_a_migration_is_named_with_leading_digits_and_sql(name: str, taken: bool) -> None:
    assert is_migration_name(name) is taken


def test_discover_takes_dbmate_names_in_byte_order_and_skips_the_rest(tmp_path: Path) -> None:
    for name in ("9_a.sql", "10_b.sql", "001_init.sql", "notes.sql", "README.md"):
        (tmp_path / name).write_text(UP_DOWN)
    (tmp_path / "2_folder.sql").mkdir()
    found = discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [("001", "init"), ("10", "b"), ("9", "a")]
    assert ignored(tmp_path) == ["notes.sql"]


@pytest.mark.parametrize(("marker", "transaction"), [
    ("", True), (" transaction:false", False), ("\ttransaction:false  ", False), (" transaction:FALSE", True),
    (" transaction:False", True), (" foo:bar transaction:false x", False), (" transaction:false:x", True),
    (" transaction:true transaction:false", False), (" transaction:false transaction:no", True),
])
def test_options_are_read_as_dbmate_reads_them(tmp_path: Path, marker: str, transaction: bool) -> None:
    path = tmp_path / "001_a.sql"
    path.write_text(UP_DOWN.replace("-- migrate:up\n", f"-- migrate:up{marker}\n"))
    assert parse(path).up.transaction is transaction
    assert transaction_option(marker) is transaction


@pytest.mark.parametrize(("text", "reason"), [
    ("CREATE TABLE early (id int);\n" + UP_DOWN, "SQL before '-- migrate:up'"),
    ("/* a block comment */\n" + UP_DOWN, "SQL before '-- migrate:up'"),
    ("-- migrate:up\nCREATE TABLE a (id int);\n", "no '-- migrate:down' section"),
    ("-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (id int);\n", "SQL before '-- migrate:up'"),
    ("-- migrate:upper\nCREATE TABLE a (id int);\n-- migrate:down\n", "no '-- migrate:up' section"),
    (UP_DOWN + "-- migrate:down\nSELECT 1;\n", "more than one '-- migrate:down'"),
    (UP_DOWN + UP_DOWN, "more than one '-- migrate:up'"),
    ("", "no '-- migrate:up' section"),
])
def test_files_dbmate_refuses_carry_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "001_a.sql"
    path.write_text(text)
    migration = read(path)
    assert migration.problem is not None and reason in migration.problem
    assert migration.problem.startswith("001_a.sql: ")
    with pytest.raises(UsageError, match=r"001_a\.sql: "):
        parse(path)


@pytest.mark.parametrize("text", [
    "-- a comment\n\n   \t\n  -- indented comment\n" + UP_DOWN,
    "--migrate:up\nCREATE TABLE a (id int);\n--migrate:down\nDROP TABLE a;\n",
    UP_DOWN.replace("\n", "\r\n"),
    "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n",
])
def test_files_dbmate_accepts_are_accepted(tmp_path: Path, text: str) -> None:
    path = tmp_path / "001_a.sql"
    path.write_text(text)
    migration = parse(path)
    assert migration.up.sql == "CREATE TABLE a (id int);"
    assert migration.down.sql in ("", "DROP TABLE a;")
