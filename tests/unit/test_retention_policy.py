"""The retention rule as a pure function: the calendar per type, and the backups no calendar may take (the newest
verified, the newest test-restored, the newest physical and the base of the promised point-in-time window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cuisine_db.backup.retention import (
    NEWEST_PHYSICAL,
    NEWEST_TESTED,
    NEWEST_VERIFIED,
    Candidate,
    decide,
    oldest_point,
    window_start,
)
from cuisine_db.config import Retention

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ONE_A_DAY = Retention(daily=1, weekly=0, monthly=0)


def backup(kind: str, hours_ago: float, **extra: object) -> Candidate:
    at = NOW - timedelta(hours=hours_ago)
    name = f"production-{kind}-{at:%Y%m%dT%H%M%SZ}"
    consistent = at + timedelta(minutes=2) if kind in ("full", "incremental") else None
    return Candidate(name, at, type=kind, consistent_at=consistent, **extra)  # type: ignore[arg-type]


def test_the_newest_verified_and_test_restored_backups_stay_whatever_the_calendar_says() -> None:
    tested = backup("logical", 5, verified=True, test_restored=True)
    newer = [backup("logical", hours) for hours in (4, 3, 2)]
    history = [tested, *newer]
    # The calendar alone keeps one a day: only the newest.
    assert set(decide([*newer], ONE_A_DAY, NOW)) == {newer[-1].name}
    kept = decide(history, ONE_A_DAY, NOW)
    assert set(kept) == {tested.name, newer[-1].name}
    assert NEWEST_VERIFIED in kept[tested.name] and NEWEST_TESTED in kept[tested.name]
    # A failed verification protects nothing; a newer good one takes the protection over.
    verified_later = backup("logical", 3.5, verified=True)
    kept = decide([tested, verified_later, *newer], ONE_A_DAY, NOW)
    assert kept[verified_later.name] == [NEWEST_VERIFIED]
    assert kept[tested.name] == [NEWEST_TESTED]
    untested = Candidate(tested.name, tested.taken_at, type="logical")
    assert tested.name not in decide([untested, *newer], ONE_A_DAY, NOW)


def test_the_point_in_time_base_of_the_promised_window_and_the_newest_physical_backup_stay() -> None:
    policy = Retention(daily=2, weekly=0, monthly=0)
    # Physical backups every 12 hours for four days, several on the same day: the calendar keeps one a day.
    fulls = [backup("full", hours) for hours in (96, 84, 72, 60, 50, 40, 30, 20, 10)]
    start = window_start(policy, NOW)
    kept = decide(fulls, policy, NOW)
    base = max((b for b in fulls if b.base_from <= start), key=lambda b: b.base_from)
    assert base.name in kept and any("point-in-time base" in reason for reason in kept[base.name])
    # Every point from the window's start on is reachable from a kept physical backup (the WAL follows it).
    kept_physical = [b for b in fulls if b.name in kept]
    after = oldest_point(kept_physical)
    assert after is not None and after <= start
    assert oldest_point(fulls) == fulls[0].base_from
    # Nothing older than the base is needed for the window: those go.
    assert all(b.name not in kept for b in fulls if b.base_from < base.base_from)
    assert NEWEST_PHYSICAL in kept[fulls[-1].name]


def test_a_short_history_keeps_its_oldest_physical_backup_and_chains_stay_whole() -> None:
    policy = Retention(daily=7, weekly=0, monthly=0)
    full = backup("full", 30)
    second = backup("full", 20)
    incremental = Candidate(backup("incremental", 10).name, NOW - timedelta(hours=10), depends_on=second.name,
                            type="incremental", consistent_at=NOW - timedelta(hours=9))
    logical = backup("logical", 1)
    kept = decide([full, second, incremental, logical], policy, NOW)
    # No physical backup reaches back to the window's start: the oldest one is the base.
    assert set(kept) == {full.name, second.name, incremental.name, logical.name}
    assert [r for r in kept[full.name] if "point-in-time base" in r]
    assert f"needed by {incremental.name}" in kept[second.name]
    assert NEWEST_PHYSICAL in kept[incremental.name]
    assert decide([], policy, NOW) == {}
    assert oldest_point([logical]) is None


def test_the_last_full_backup_before_an_upgrade_is_kept_for_the_window() -> None:
    policy = Retention(daily=7, weekly=0, monthly=0)
    old = [Candidate(f"production-full-2026120{day}T010000Z", NOW - timedelta(days=9 - day), type="full",
                     system="1") for day in (1, 2, 3)]
    new = [Candidate(f"production-full-2026120{day}T010000Z", NOW - timedelta(days=9 - day), type="full",
                     system="2") for day in (4, 5, 6, 7, 8, 9)]
    upgraded_at = NOW - timedelta(days=5, hours=12)
    kept = decide([*old, *new], policy, NOW, [("1", upgraded_at)])
    reasons = [reason for reason in kept[old[-1].name] if "before the upgrade" in reason]
    assert reasons, kept
    assert not any("before the upgrade" in r for name, rs in kept.items() if name != old[-1].name for r in rs)
    # Once the upgrade is older than the window, the rule no longer holds it.
    later = decide([*old, *new], policy, NOW + timedelta(days=3), [("1", upgraded_at)])
    assert not any("before the upgrade" in r for rs in later.values() for r in rs)
