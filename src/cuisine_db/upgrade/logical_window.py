"""The logical cutover's write window kept short: its steps timed, the work that needs no stopped writes done
before them (lag brought close, both clusters checkpointed, sequences set once), and the reverse replication made
in two halves, its slot on the new cluster inside the window, the old cluster's subscription after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from cuisine_db import sql as queries
from cuisine_db.config import Environment, Settings
from cuisine_db.postgres.local import startup_lock
from cuisine_db.upgrade import logical
from cuisine_db.upgrade import state as states
from cuisine_db.upgrade.logical import BACKWARD, FORWARD, CutoverPhase, LogicalState, Notify
from cuisine_db.waiting import wait_for

CLOSE_IN_SECONDS = 30.0  # how long the lag may take to come within CLOSE_LAG_BYTES before the cutover goes on anyway


class Phases:
    """The cutover's steps, timed in order and each told as it ends."""

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._done: list[CutoverPhase] = []

    @contextmanager
    def step(self, name: str, *, writes_blocked: bool = True) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            self._done.append(CutoverPhase(name, round(seconds, 3), writes_blocked))
            self._notify(f"cutover step: {name} {seconds:.2f}s" + ("" if writes_blocked else " (writes on)"))

    def done(self) -> tuple[CutoverPhase, ...]:
        return tuple(self._done)


def close_in(settings: Settings, env: Environment, current: LogicalState, notify: Notify, *,
             deadline: float = CLOSE_IN_SECONDS) -> int:
    """Writes still on: both clusters checkpointed (the switch's shutdowns then write little), every sequence set
    once (the cutover only moves them further), and the new cluster brought within CLOSE_LAG_BYTES (what is left
    to apply once writes stop). Returns the lag in bytes; a lag that stays above the bound only costs time."""
    with logical.open_at(settings, env, env.port or 0) as old, \
            logical.open_at(settings, env, current.new_port) as new:
        new.execute(queries.load("upgrade/checkpoint"))
        old.execute(queries.load("upgrade/checkpoint"))
        logical.copy_sequences(old, new)
        lags: list[int] = []

        def close() -> int | None:
            lags.append(logical.lag(old, FORWARD)[0])
            return lags[-1] if lags[-1] <= logical.CLOSE_LAG_BYTES else None

        behind = wait_for(close, seconds=deadline, interval=logical.POLL_SECONDS)
        behind = lags[-1] if behind is None else behind
        notify(f"writes still on: lag {behind} bytes, both clusters checkpointed, sequences set once")
        return behind


def reverse_slot(settings: Settings, env: Environment) -> None:
    """Writes blocked, the new cluster on the environment's port: the slot that keeps every change made from here
    on for the old cluster's subscription, so that the subscription itself can wait until writes are back."""
    with logical.open_at(settings, env, env.port or 0) as new:
        new.execute(queries.load("upgrade/logical_create_slot"), {"slot": BACKWARD})


def reverse_subscription(settings: Settings, env: Environment, current: LogicalState, *, enable: bool) -> None:
    """The old cluster, started in its waiting place, subscribed to the new one through the slot made in the
    window; idempotent (a run killed half-way, then --rollback or --finish). Left disabled (`enable` False) the old
    cluster stays exactly as it was at the cutover, for the comparison."""
    port = env.port or 0
    waiting = logical.old_cluster(settings, env, current.source, states.home(settings, env, current.source),
                                  current.back_port)
    with startup_lock(settings, env):
        waiting.start()
    pgpass = logical.write_passfile(settings, env, current.target, [port])
    with logical.open_at(settings, env, current.back_port) as old:
        exists = old.execute(queries.load("upgrade/logical_subscription_exists"), {"name": BACKWARD}).fetchone()
        if not (exists and exists[0]):
            old.execute(queries.load("upgrade/logical_subscribe_to_slot").format(
                name=sql.Identifier(BACKWARD), conninfo=sql.Literal(logical.conninfo(env, port, pgpass)),
                publication=sql.Identifier(BACKWARD), slot=sql.Literal(BACKWARD)))
        if enable:
            old.execute(queries.load("upgrade/logical_enable_subscription").format(name=sql.Identifier(BACKWARD)))
