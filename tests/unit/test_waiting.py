"""The one polling and retrying helper: deadlines kept, the last failure raised, names never reused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from cuisine_db.errors import FailedError, UnavailableError
from cuisine_db.waiting import free_name, poll_until, retry, wait_for


def test_wait_for_returns_the_first_answer_and_tells_once() -> None:
    answers = iter([None, None, "ready"])
    told: list[str] = []
    assert wait_for(lambda: next(answers), seconds=5, interval=0.001, waiting=lambda: told.append("x")) == "ready"
    assert told == ["x"]


def test_wait_for_gives_up_at_the_deadline_with_none() -> None:
    calls: list[float] = []
    started = time.monotonic()
    assert wait_for(lambda: calls.append(time.monotonic()), seconds=0.05, interval=0.01) is None
    assert 0.05 <= time.monotonic() - started < 1 and len(calls) >= 2, "called again after the deadline passed"


def test_poll_until_raises_what_it_was_told() -> None:
    with pytest.raises(UnavailableError, match="never came") as caught:
        poll_until(lambda: None, seconds=0.01, interval=0.005, what="never came", hint="look")
    assert caught.value.hint == "look" and caught.value.exit_code == 3
    with pytest.raises(FailedError, match="built late"):
        poll_until(lambda: None, seconds=0.01, interval=0.005, what=lambda: FailedError("built late"))
    assert poll_until(lambda: False, seconds=0.01, interval=0.005, what="x") is False, "False is an answer"


def test_retry_grows_its_pause_and_raises_the_last_failure() -> None:
    pauses: list[float] = []
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        raise OSError(f"attempt {len(attempts)}")

    with pytest.raises(OSError, match="attempt 4"):
        retry(flaky, on=(OSError,), attempts=4, pause=0.001, longest=0.003,
              before=lambda _n, pause, _e: pauses.append(pause))
    assert pauses == [0.001, 0.002, 0.003]


def test_retry_stops_at_once_on_what_gives_up_and_on_other_errors() -> None:
    calls: list[int] = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        retry(missing, on=(OSError,), giving_up=(FileNotFoundError,), attempts=5, pause=0.001)
    with pytest.raises(ValueError):
        retry(lambda: int("x"), on=(OSError,), attempts=5, pause=0.001)
    assert calls == [1]


def test_retry_keeps_a_deadline_and_returns_a_late_success() -> None:
    results: Iterator[OSError | str] = iter([OSError("a"), OSError("b"), "done"])

    def action() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    assert retry(action, on=(OSError,), seconds=5, pause=0.001, growth=1) == "done"
    with pytest.raises(OSError):
        retry(lambda: (_ for _ in ()).throw(OSError("x")), on=(OSError,), seconds=0.02, pause=0.005, growth=1)


def test_free_name_waits_for_the_next_second_when_taken() -> None:
    taken: set[str] = set()

    def make(at: datetime) -> str:
        return at.strftime("x-%Y%m%dT%H%M%S")

    first = free_name(make, taken.__contains__)
    taken.add(first)
    second = free_name(make, taken.__contains__)
    assert second != first and second > first
