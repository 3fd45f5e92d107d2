"""What operators type for the security commands: names, privileges, tables, passwords, audit classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuisine_db.errors import UsageError
from cuisine_db.postgres import pgpass
from cuisine_db.postgres.server_settings import list_elements
from cuisine_db.security import typed_input
from cuisine_db.security.audit_setup import normalise_classes
from cuisine_db.security.passwords import Secret, check_strength

VALID_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x; DROP ROLE postgres", "not a plain role name"),
        ("x'; --", "not a plain role name"),
        ('x"y', "not a plain role name"),
        ("rôle", "not a plain role name"),
        ("Reports", "not a plain role name"),
        ("a" * 64, "longer than 63 bytes"),
        ("pg_monitor", "reserved"),
        ("public", "reserved"),
        ("", "empty"),
        ("x\ny", "not a plain role name"),
    ],
)
def test_bad_role_names_are_refused_with_the_rule_they_break(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        typed_input.role_name(value)


def test_a_long_name_is_cut_in_the_message_and_control_characters_escaped() -> None:
    with pytest.raises(UsageError) as caught:
        typed_input.role_name("x\x1b[31m" + "y" * 200)
    assert "\x1b" not in caught.value.message and "..." in caught.value.message


@given(st.text(min_size=1, max_size=120))
@settings(max_examples=300)
def test_any_text_is_either_a_plain_role_name_or_refused(value: str) -> None:
    plain = VALID_ROLE.match(value.strip()) and not value.strip().startswith("pg_") and value.strip() not in (
        "public", "none", "current_user", "current_role", "session_user", "all")
    if plain:
        assert typed_input.role_name(value) == value.strip()
    else:
        with pytest.raises(UsageError):
            typed_input.role_name(value)


def test_privileges_are_normalised_and_checked_against_the_server_version() -> None:
    assert typed_input.privileges("insert, select,SELECT", 140000) == ["SELECT", "INSERT"]
    assert typed_input.privileges("all privileges", 140000) == ["ALL"]
    assert typed_input.privileges("MAINTAIN", 170000) == ["MAINTAIN"]
    for bad, message in (("MAINTAIN", "unknown table privilege"), ("SELECT;DROP", "unknown"), ("", "names no"),
                         ("SELECT,", "names no"), ("ALL,SELECT", "give ALL alone"), ("USAGE", "unknown")):
        with pytest.raises(UsageError, match=message):
            typed_input.privileges(bad, 140000)


def test_tables_are_all_or_plain_names_with_an_optional_schema() -> None:
    assert typed_input.table_list("ALL") is None
    assert typed_input.table_list("users, recipes,users") == [(None, "users"), (None, "recipes")]
    assert typed_input.table_list("audit.events") == [("audit", "events")]
    for bad in ("users;drop table x", "a.b.c", "", "users,,recipes", "ta ble", "x" * 64, "tàble"):
        with pytest.raises(UsageError):
            typed_input.table_list(bad)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-1A!", "too short"),
        ("secure_password", "too easy to guess"),
        ("password1234567", "too easy to guess"),
        ("my-reports-Pa55word-2026", "contains the username"),
        ("aaaaaaaaaaaaaaaaaaaa", "too easy to guess"),
        ("line\nbreak-kitchen-orbit", "control characters"),
    ],
)
def test_weak_passwords_are_refused(password: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        check_strength(Secret(password), "reports")
    assert password not in caught.value.message + (caught.value.hint or "")


def test_a_generated_or_long_passphrase_is_accepted() -> None:
    check_strength(Secret("kitchen-lemon-orbit-7"), "reports")
    check_strength(Secret("Vx9#kQ2$mL8pWz4!"), "reports")


def test_a_secret_never_prints_its_value() -> None:
    secret = Secret("kitchen-lemon-orbit-7")
    assert "kitchen" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "kitchen-lemon-orbit-7"


def test_audit_classes() -> None:
    assert normalise_classes("DDL,role , write") == "ddl, role, write"
    assert normalise_classes("all, -misc") == "all, -misc"
    for bad in ("ddl; drop", "", "ddl,,role", "everything"):
        with pytest.raises(UsageError):
            normalise_classes(bad)


def test_list_settings_split_like_the_server_prints_them() -> None:
    assert list_elements("pg_stat_statements, pgaudit") == ["pg_stat_statements", "pgaudit"]
    assert list_elements('"$user", public') == ["$user", "public"]
    assert list_elements("") == []


def test_pgpass_lines_are_escaped_replaced_and_private(tmp_path: Path) -> None:
    path = tmp_path / "pgpass"
    path.write_text("*:*:*:cuisine:first\n")
    pgpass.put(path, "cuisine_monitor", "a:b\\c")
    pgpass.put(path, "cuisine_monitor", "second:one")
    entries = pgpass.read(path)
    assert [(e.user, e.password) for e in entries] == [("cuisine", "first"), ("cuisine_monitor", "second:one")]
    assert path.stat().st_mode & 0o777 == 0o600
    assert pgpass.lookup(path, "db", "5432", "cuisine", "cuisine_monitor") == "second:one"
    assert pgpass.lookup(path, "db", "5432", "cuisine", "nobody") is None
