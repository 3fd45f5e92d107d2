"""The one start policy (postgres/local.py): who may start a local cluster on demand, decided by purpose and
protection, never by the command's own copy of the rule."""

from __future__ import annotations

import pytest

from cuisine_db.cluster import start_refusal
from cuisine_db.config import Environment
from cuisine_db.postgres import purposes


def env(protected: bool) -> Environment:
    return Environment(name="production" if protected else "development", port=55999, protected=protected)


@pytest.mark.parametrize("purpose", [purposes.ADMIN, "backup", "operator", purposes.MONITORING])
def test_a_protected_environment_is_never_started_on_demand(purpose: str) -> None:
    refusal = start_refusal(env(True), purpose)
    assert refusal is not None and "protected" in refusal


def test_commands_that_only_look_never_start_even_an_unprotected_cluster() -> None:
    refusal = start_refusal(env(False), purposes.MONITORING)
    assert refusal is not None and "looks" in refusal


@pytest.mark.parametrize("purpose", [purposes.ADMIN, "backup", "operator"])
def test_other_purposes_may_start_an_unprotected_cluster_unless_the_command_says_never(purpose: str) -> None:
    assert start_refusal(env(False), purpose) is None
    never = start_refusal(env(False), purpose, allowed=False)
    assert never is not None and "never starts" in never
