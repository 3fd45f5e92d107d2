"""db-archive-data's input: ages, batch sizes, pauses and archive names, checked before anything runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cuisine_db.archive import catalog, request
from cuisine_db.errors import UsageError


@pytest.mark.parametrize(("text", "age"), [
    ("365d", timedelta(days=365)), ("52w", timedelta(weeks=52)), ("36h", timedelta(hours=36)),
    (" 7 d ", timedelta(days=7)), ("1h", timedelta(hours=1)), ("36500d", timedelta(days=36500)),
])
def test_ages_in_hours_days_and_weeks(text: str, age: timedelta) -> None:
    assert request.older_than(text) == age


@pytest.mark.parametrize("text", ["", "365", "365y", "1.5d", "-1d", "0d", "0h", "abc", "365d;", "365 days",
                                  "99999w", "5m", None])
def test_bad_ages_are_refused(text: str | None) -> None:
    with pytest.raises(UsageError):
        request.older_than(text)


def test_batch_sizes_and_pauses() -> None:
    assert request.batch_size(None) == request.DEFAULT_BATCH
    assert request.batch_size(1) == 1
    for bad in (0, -5, request.LARGEST_BATCH + 1):
        with pytest.raises(UsageError):
            request.batch_size(bad)
    assert request.pause_seconds(None) == 0 and request.pause_seconds("0") == 0
    assert request.pause_seconds("200ms") == 0.2 and request.pause_seconds("2s") == 2
    for bad_pause in ("2m", "1h", "soon", "-1s"):
        with pytest.raises(UsageError):
            request.pause_seconds(bad_pause)


def test_a_request_checks_the_table_first_then_the_age() -> None:
    with pytest.raises(UsageError, match="table"):
        request.make_request(None, "bad")
    with pytest.raises(UsageError, match="older-than"):
        request.make_request("executions", "365")
    with pytest.raises(UsageError, match="column"):
        request.make_request("executions", "365d", column=" ")
    made = request.make_request(" executions ", "365d", batch=50, pause="10ms")
    assert (made.table, made.age, made.batch_size, made.pause) == ("executions", timedelta(days=365), 50, 0.01)


def test_archive_names_round_trip_and_refuse_anything_else() -> None:
    at = datetime(2025, 3, 15, 1, 0, 0, tzinfo=UTC)
    name = catalog.make_name("prod-eu", at)
    assert name == "prod-eu-archive-20250315T010000Z"
    assert catalog.parse_name(name) == ("prod-eu", at)
    for bad in ("production-logical-20250315T010000Z", "../production-archive-20250315T010000Z",
                "production-archive-20250315T010000Z/x", "production-archive-latest", ""):
        with pytest.raises(UsageError):
            catalog.parse_name(bad)
