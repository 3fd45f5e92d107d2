"""What `wal catch-up` (Patroni's on_role_change callback) would push after a promotion: the earlier timelines'
complete segments on the new timeline's ancestry (one ended by a WAL switch, zeros after its first page, too), and
nothing else — not the partial switch segment, not a file recycled under a name on or past the switch point, not
one of the wrong size, not the new timeline's."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cuisine_db.backup.wal import catch_up, main
from cuisine_db.backup.wal.wal_names import segment_name

SEGMENT = 1 << 20  # PostgreSQL's smallest segment size keeps the files small
BLOCK = 8192
MAGIC = 0xD118


def segment(path: Path, number: int, *, address: int | None = None, last_page: bool = True, tli: int = 1) -> None:
    """A segment file as PostgreSQL writes one: the long header on the first page, a short one on each later page
    (only the last is written here; the pages between are not read)."""
    first = struct.pack("<HHIQI4xQII", MAGIC, 0x0002, tli, number * SEGMENT if address is None else address, 0,
                        7_000_000_000_000_000_001, SEGMENT, BLOCK)
    body = bytearray(SEGMENT)
    body[: len(first)] = first
    if last_page:
        last = struct.pack("<HHIQ", MAGIC, 0, tli, number * SEGMENT + SEGMENT - BLOCK)
        body[SEGMENT - BLOCK: SEGMENT - BLOCK + len(last)] = last
    path.write_bytes(bytes(body))


@pytest.fixture
def pg_wal(tmp_path: Path) -> Path:
    """Timeline 1 switched to 2 at the start of segment 3; timeline 2 switched to 3 in the middle of segment 6."""
    folder = tmp_path / "pg_wal"
    folder.mkdir()
    (folder / "00000003.history").write_text(f"1\t0/{3 * SEGMENT:X}\tno recovery target specified\n\n"
                                             f"2\t0/{6 * SEGMENT + 4096:X}\tno recovery target specified\n")
    (folder / "00000002.history").write_text(f"1\t0/{3 * SEGMENT:X}\tno recovery target specified\n")
    for number in (1, 2):
        segment(folder / segment_name(1, number, SEGMENT), number)
    segment(folder / segment_name(1, 3, SEGMENT), 3)  # timeline 1 past its switch: an abandoned branch
    for number in (3, 4):
        segment(folder / segment_name(2, number, SEGMENT), number, tli=2)
    segment(folder / segment_name(2, 5, SEGMENT), 5, last_page=False, tli=2)  # ended by a switch: zeros after
    (folder / segment_name(1, 0, SEGMENT)).write_bytes(b"\0" * 8192)  # not a whole segment
    segment(folder / (segment_name(2, 6, SEGMENT) + ".partial"), 6, tli=2)
    segment(folder / segment_name(2, 7, SEGMENT), 7, address=2 * SEGMENT, tli=2)  # recycled ahead of the switch
    segment(folder / segment_name(3, 6, SEGMENT), 6, tli=3)
    return folder


def test_only_complete_segments_on_the_new_timelines_ancestry_are_candidates(pg_wal: Path) -> None:
    assert catch_up.segment_size_of(pg_wal) == SEGMENT
    newest, chosen, skipped = catch_up.candidates(pg_wal)
    assert newest == 3
    assert [c.path.name for c in chosen] == [segment_name(1, 1, SEGMENT), segment_name(1, 2, SEGMENT),
                                             segment_name(2, 3, SEGMENT), segment_name(2, 4, SEGMENT),
                                             segment_name(2, 5, SEGMENT)]
    assert skipped == [(segment_name(1, 0, SEGMENT), "not the size of a segment")]


def test_a_recycled_file_on_the_path_is_skipped_not_pushed(pg_wal: Path) -> None:
    recycled = pg_wal / segment_name(2, 4, SEGMENT)
    segment(recycled, 4, address=1 * SEGMENT, tli=2)
    _newest, chosen, skipped = catch_up.candidates(pg_wal)
    assert recycled.name not in [c.path.name for c in chosen]
    assert (recycled.name, "its first page is not this segment's (a recycled file)") in skipped


def test_a_cluster_that_never_switched_timelines_has_nothing_to_catch_up(tmp_path: Path) -> None:
    segment(tmp_path / segment_name(1, 1, SEGMENT), 1)
    assert catch_up.candidates(tmp_path) == (None, [], [])


@pytest.mark.parametrize(("conf", "auto", "archives"), [
    ("archive_mode = 'on'\narchive_command = '/v/python -S served.py wal push --config /c.toml --env ha %p'\n", "",
     True),
    ("archive_mode = 'off'\narchive_command = '/v/python wal push %p'\n", "", False),
    ("archive_mode = 'on'\narchive_command = 'cp %p /elsewhere/%f'\n", "", False),
    ("archive_mode = 'on'\n", "archive_command = '/v/cuisine-db wal push --env ha %p'\n", True),
])
def test_a_server_that_does_not_archive_with_cuisine_db_is_left_alone(tmp_path: Path, conf: str, auto: str,
                                                                      archives: bool) -> None:
    (tmp_path / "postgresql.conf").write_text(conf)
    (tmp_path / "postgresql.auto.conf").write_text(auto)
    assert catch_up.archiving(tmp_path) is archives


def test_patronis_callback_arguments_are_accepted_and_only_a_leader_acts(tmp_path: Path) -> None:
    args = main.parse(["catch-up", "--config", "/c.toml", "--env", "ha", "--pgdata", str(tmp_path),
                       "on_role_change", "replica", "ha"])
    assert args.role == "replica" and args.pgdata == tmp_path
    # A replica returns at once: no configuration is read (the file named does not exist).
    assert main.main(["catch-up", "--config", str(tmp_path / "absent.toml"), "--env", "ha", "--pgdata",
                      str(tmp_path), "on_role_change", "replica", "ha"]) == 0
    assert main.parse(["catch-up", "--config", "/c.toml", "--env", "ha", "--pgdata", "/d"]).role is None
    with pytest.raises(main.UsageProblem, match="takes 0 argument"):
        main.parse(["catch-up", "--config", "/c.toml", "--env", "ha", "--pgdata", "/d", "primary"])


def test_a_catch_up_waits_for_the_end_of_recovery_by_the_control_file(tmp_path: Path) -> None:
    (tmp_path / "global").mkdir()
    control = tmp_path / "global" / "pg_control"
    for state, done in ((5, False), (6, True)):  # DB_IN_ARCHIVE_RECOVERY, DB_IN_PRODUCTION
        control.write_bytes(struct.pack("<QIIi", 7_000_000_000_000_000_001, 1300, 202_507_291, state) + bytes(100))
        assert catch_up.in_production(tmp_path) is done
        assert catch_up.wait_promoted(tmp_path, seconds=0.3) is done
