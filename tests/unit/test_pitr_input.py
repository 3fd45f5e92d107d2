"""Point-in-time recovery's pure logic: WAL file names and keys, LSNs, recovery targets as operators type them, and
which archived segments a replay needs across timelines. No server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cuisine_db.backup import targets
from cuisine_db.backup.wal import archive, wal_names
from cuisine_db.errors import UsageError

SHA = "ab" * 32


@pytest.mark.parametrize("name", ["000000010000000A000000FF", "00000002.history", "000000010000000000000003.partial",
                                  "000000010000000000000002.00000028.backup"])
def test_wal_names_postgresql_archives(name: str) -> None:
    assert wal_names.check(name) == name
    key = wal_names.key("production", name, SHA)
    assert key.startswith(wal_names.prefix("production", name))
    assert wal_names.parse_key(key) == wal_names.Stored(name, SHA)


@pytest.mark.parametrize("name", ["", "../../etc/passwd", "000000010000000A000000fF", "000000010000000A000000F",
                                  "000000010000000A000000FF0", "00000002.History", "x.history",
                                  "000000010000000000000003.partial/../x", "000000010000000A000000FF\n"])
def test_anything_else_never_becomes_a_key(name: str) -> None:
    with pytest.raises(wal_names.BadWalName):
        wal_names.check(name)
    with pytest.raises(wal_names.BadWalName):
        wal_names.key("production", name, SHA)


def test_keys_fold_by_timeline_and_log() -> None:
    assert wal_names.key("p", "000000010000000A000000FF", SHA) == \
        f"wal/p/000000010000000A/000000010000000A000000FF-{SHA}.zst.age"
    assert wal_names.folder("00000002.history") == "00000002"
    assert wal_names.parse_key("wal/p/probe-host-1") is None
    assert wal_names.parse_key(f"wal/p/x/000000010000000A000000FF-{SHA[:-1]}.zst.age") is None


@pytest.mark.parametrize("size", [1 << 20, 16 << 20, 1 << 30])
def test_segment_numbers_and_names_round_trip(size: int) -> None:
    per_log = wal_names.segments_per_log(size)
    for number in (0, 1, per_log - 1, per_log, 5 * per_log + 3):
        name = wal_names.segment_name(3, number, size)
        assert wal_names.timeline(name) == 3
        assert wal_names.segment_number(name, size) == number
        assert wal_names.segment_of(wal_names.segment_start(number, size), size) == number


def test_lsns() -> None:
    assert wal_names.parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert wal_names.format_lsn(wal_names.parse_lsn("0/3000060")) == "0/3000060"
    assert wal_names.segment_of(wal_names.parse_lsn("0/3000060")) == 3
    for bad in ("", "3000060", "x/y"):
        with pytest.raises(ValueError):
            wal_names.parse_lsn(bad)


NOW = datetime(2026, 3, 16, tzinfo=UTC)


@pytest.mark.parametrize(("typed", "value"), [
    ("2026-03-15 12:00:00+00", "2026-03-15 12:00:00+00:00"),
    ("2026-03-15T12:00:00Z", "2026-03-15 12:00:00+00:00"),
    ("2026-03-15 12:00:00 UTC", "2026-03-15 12:00:00+00:00"),
    ("2026-03-15 13:00:00.123456+01:00", "2026-03-15 13:00:00.123456+01:00"),
])
def test_target_times(typed: str, value: str) -> None:
    target = targets.parse(typed, now=NOW)
    assert (target.kind, target.value, target.inclusive) == ("time", value, True)
    assert target.settings() == {"recovery_target_timeline": "latest", "recovery_target_time": value,
                                 "recovery_target_inclusive": "on"}
    again = target.make_args()
    assert again == f'target="{value}"'


def test_lsn_xid_and_exclusive_targets() -> None:
    lsn = targets.parse(lsn="00000001/0000abcd", inclusive=False)
    assert (lsn.kind, lsn.value) == ("lsn", "1/ABCD")
    assert lsn.settings()["recovery_target_inclusive"] == "off"
    assert lsn.make_args() == "lsn=1/ABCD inclusive=0"
    assert targets.parse(xid="761").settings()["recovery_target_xid"] == "761"
    assert targets.parse() is targets.END
    assert targets.END.settings() == {"recovery_target_timeline": "latest"}
    assert targets.IMMEDIATE.settings()["recovery_target"] == "immediate"
    # The backup's own end lies on its own timeline: no later timeline's history is read to get there.
    assert targets.IMMEDIATE.settings()["recovery_target_timeline"] == "current"


@pytest.mark.parametrize("kwargs", [
    {"target": "2026-03-15 12:00:00"},                      # no time zone: never guessed
    {"target": "yesterday"},
    {"target": "2026-03-17 00:00:00+00"},                   # in the future
    {"target": "2026-03-15 12:00:00+00", "lsn": "0/1"},     # two targets
    {"lsn": "0/1", "xid": "5"},
    {"lsn": "banana"},
    {"lsn": "1/2/3"},
    {"xid": "2"},                                            # not a normal transaction ID
    {"xid": "-4"},
    {"xid": "1e3"},
    {"inclusive": False},                                    # inclusive=0 without a target
])
def test_bad_targets_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        targets.parse(now=NOW, **kwargs)  # type: ignore[arg-type]


def _archived(*segment_names: str) -> list[archive.Archived]:
    return [archive.Archived(name, SHA, name, 1, NOW) for name in segment_names]


def test_coverage_follows_the_newest_timeline_and_finds_holes() -> None:
    size = 16 << 20
    # Timeline 2 branched off 1 in segment 4: 1..4 on timeline 1, then 4.. on timeline 2.
    switches = [archive.Switch(2, 1, wal_names.segment_start(4, size) + 0x60)]
    tl1 = [wal_names.segment_name(1, n) for n in range(1, 6)]  # 5 on timeline 1 is an abandoned branch
    tl2 = [wal_names.segment_name(2, n) for n in (4, 5, 7)]      # 6 is missing
    covered = archive.coverage(_archived(*tl1, *tl2), wal_names.segment_name(1, 2), switches, size)
    assert covered.end == wal_names.segment_name(2, 7)
    assert covered.missing == [wal_names.segment_name(2, 6)]
    assert covered.on_path
    complete = archive.coverage(_archived(*tl1, *tl2, wal_names.segment_name(2, 6)), wal_names.segment_name(1, 2),
                                switches, size)
    assert complete.missing == [] and complete.segments == 6
    # A backup taken on timeline 1 after the branch point leads elsewhere.
    assert not archive.coverage(_archived(*tl1), wal_names.segment_name(1, 5), switches, size).on_path
    assert archive.duplicates(_archived(tl1[0], tl1[0], tl1[1])) == [tl1[0]]
