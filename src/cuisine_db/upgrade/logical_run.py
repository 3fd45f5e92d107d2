"""db-upgrade method=logical as the operator runs it: the pre-flight gate, a rehearsal first on a protected
environment (or the passing one `rehearsed=` names), then the logical path of logical_cutover.py.

Kept apart from logical_cutover.py because the rehearsal itself runs that path on its scratch copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError
from cuisine_db.upgrade import logical, logical_cutover, logical_remote, logical_remote_cutover, rehearsal
from cuisine_db.upgrade.logical import LogicalReport, LogicalState, Notify
from cuisine_db.upgrade.logical_remote import RemoteState
from cuisine_db.upgrade.preflight import PreflightReport
from cuisine_db.upgrade.request import UpgradeRequest


def upgrade(settings: Settings, env: Environment, to: int | None, *, identity_full: bool,
            confirm: Callable[[str], None], notify: Notify = lambda _: None, rehearsed: str | None = None,
            show_preflight: Callable[[PreflightReport], None] = lambda _: None) -> LogicalReport:
    """Pre-flight, rehearsal where due, confirmation, new cluster, catch-up, cutover."""
    source, target = logical.validate(settings, env, to)
    checks = logical_cutover.preflight_gate(settings, env, source, target, identity_full=identity_full,
                                            notify=notify, show=show_preflight)
    rehearsal_of = (_rehearsal(settings, env, UpgradeRequest(env.name, source, target, logical.METHOD),
                               identity_full, rehearsed, notify)
                    if env.protected or rehearsed is not None else None)
    report = logical_cutover.upgrade(settings, env, to, identity_full=identity_full, confirm=confirm, notify=notify,
                                     checks=checks)
    return dataclasses.replace(report, rehearsal=rehearsal_of)


def in_progress(settings: Settings, env: Environment) -> bool:
    """Whether env has a logical upgrade waiting for --finish or --rollback: onto a remote server (dsn= env) or a
    local cluster."""
    if logical_remote.is_remote(env):
        return logical_remote.STATE.load(settings, env) is not None
    return env.is_local and logical.STATE.load(settings, env) is not None


def conclude(settings: Settings, env: Environment, *, rollback: bool,
             notify: Notify = lambda _: None) -> LogicalState | RemoteState:
    """--rollback or --finish of the logical upgrade in progress, the local or the remote kind as env is."""
    if logical_remote.is_remote(env):
        step = logical_remote_cutover.rollback if rollback else logical_remote_cutover.finish
        return step(settings, env, notify=notify)
    return (logical_cutover.rollback if rollback else logical_cutover.finish)(settings, env, notify=notify)


def _rehearsal(settings: Settings, env: Environment, request: UpgradeRequest, identity_full: bool,
               rehearsed: str | None, notify: Notify) -> str:
    """A protected environment's real run comes after a passing logical rehearsal: the one named, or one run now."""
    if rehearsed is not None:
        return rehearsal.require_passing(settings, env, request, rehearsed)
    notify(f"{env.name} is protected: rehearsing the logical upgrade on a restore of its newest full backup first")
    result = rehearsal.rehearse(settings, env, request, identity_full=identity_full, notify=notify)
    if not result.go:
        raise FailedError(f"the rehearsal on {result.backup} found problems; {env.name} was not touched",
                          hint=f"make db-upgrade env={env.name} to={request.target} method=logical rehearse=1 "
                               "shows them")
    notify(f"rehearsal passed on {result.backup}: predicted cutover downtime {result.predicted_downtime_seconds:.1f}s")
    return result.backup
