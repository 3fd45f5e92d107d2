"""Where recovery stands, as the spool's prefetcher reads it: the newest empty delivery marker."""

from __future__ import annotations

import os
from pathlib import Path

from cuisine_db.backup.wal import served, spool, wal_names


def test_the_newest_marker_is_where_recovery_stands(tmp_path: Path) -> None:
    where = spool.folder(tmp_path)
    where.mkdir()
    assert spool.last_asked(where) == (None, 0.0)
    first, second = wal_names.segment_name(1, 7), wal_names.segment_name(1, 8)
    spool.note_asked(tmp_path, second)
    os.utime(where / f"{spool.ASKED}{second}", ns=(10**18, 10**18))
    (where / first).write_bytes(b"x")
    assert served.serve(str(tmp_path), first, str(tmp_path / "RECOVERYXLOG"))
    assert spool.last_asked(where)[0] == first  # by the clock, not the name: the other was marked in 2001
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == b"x" and not (where / first).exists()
    spool.note_asked(tmp_path, second)  # asked again: O_TRUNC sets its time anew
    assert spool.last_asked(where)[0] == second
    assert [name for _, name in spool.markers(where)] == [first, second]
    assert all((where / f"{spool.ASKED}{name}").stat().st_size == 0 for name in (first, second))
    (where / f"{spool.ASKED}not-a-segment").touch()
    (where / f"{spool.ASKED}{wal_names.segment_name(1, 9)}.part").touch()
    assert [name for _, name in spool.markers(where)] == [first, second]


def test_the_note_an_earlier_version_writes_still_counts_but_never_through_a_link(tmp_path: Path) -> None:
    where = spool.folder(tmp_path)
    where.mkdir()
    first, second = wal_names.segment_name(1, 7), wal_names.segment_name(1, 8)
    (where / spool.ASKED_BEFORE).write_text(second + "\n")  # a seeded standby's restore_command from before
    assert spool.last_asked(where)[0] == second
    spool.note_asked(tmp_path, first)
    os.utime(where / f"{spool.ASKED}{first}", ns=(10**18, 10**18))
    assert spool.last_asked(where)[0] == second  # newer by the clock
    (where / spool.ASKED_BEFORE).unlink()
    planted = tmp_path / "elsewhere"
    planted.write_text(wal_names.segment_name(1, 99))
    (where / spool.ASKED_BEFORE).symlink_to(planted)
    assert spool.last_asked(where)[0] == first
    (where / spool.ASKED_BEFORE).unlink()
    (where / spool.ASKED_BEFORE).write_text("../../etc/passwd")
    assert spool.last_asked(where)[0] == first
