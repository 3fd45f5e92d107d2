"""Waiting with a deadline: polling until something holds, retrying what may fail for a while, free names."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from cuisine_db.errors import CuisineDbError, UnavailableError

T = TypeVar("T")


def _nothing() -> None:
    return None


def wait_for(condition: Callable[[], T | None], *, seconds: float, interval: float,
             waiting: Callable[[], None] = _nothing) -> T | None:
    """Call `condition` every `interval` seconds until it returns something other than None; None once `seconds`
    have passed (a yes/no condition says no with None: `lambda: ready() or None`). `waiting` runs once, before
    the first pause (to tell the operator)."""
    deadline = time.monotonic() + seconds
    told = False
    while True:
        found = condition()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            return None
        if not told:
            waiting()
            told = True
        time.sleep(interval)


def poll_until(condition: Callable[[], T | None], *, seconds: float, interval: float,
               what: str | Callable[[], CuisineDbError], hint: str | None = None,
               waiting: Callable[[], None] = _nothing) -> T:
    """`wait_for`, but running out of time is an error: `what` (UnavailableError, exit 3) or the one it builds."""
    found = wait_for(condition, seconds=seconds, interval=interval, waiting=waiting)
    if found is None:
        raise UnavailableError(what, hint=hint) if isinstance(what, str) else what()
    return found


def retry(action: Callable[[], T], *, on: tuple[type[BaseException], ...], pause: float,
          attempts: int | None = None, seconds: float | None = None, growth: float = 2.0,
          longest: float | None = None, giving_up: tuple[type[BaseException], ...] = (),
          before: Callable[[int, float, BaseException], None] = lambda _n, _p, _e: None) -> T:
    """Run `action`; an exception in `on` (not in `giving_up`) runs it again after a pause that grows by `growth`
    (at most `longest`), up to `attempts` runs in all or until `seconds` have passed; then the last failure is
    raised as it is. `before` hears each retry (its number from 1, the pause, the failure) before the pause."""
    deadline = None if seconds is None else time.monotonic() + seconds
    attempt = 0
    while True:
        try:
            return action()
        except giving_up:
            raise
        except on as exc:
            if (attempts is not None and attempt >= attempts - 1) or (
                    deadline is not None and time.monotonic() > deadline):
                raise
            delay = pause * growth ** attempt
            if longest is not None:
                delay = min(delay, longest)
            attempt += 1
            before(attempt, delay, exc)
            time.sleep(delay)


def free_name(make: Callable[[datetime], T], taken: Callable[[T], bool]) -> T:
    """A name stamped with the current UTC second that is not `taken`: two in one second wait for the next."""
    while True:
        name = make(datetime.now(UTC))
        if not taken(name):
            return name
        time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
