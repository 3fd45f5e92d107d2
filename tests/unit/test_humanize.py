"""Sizes and durations for people: one unit base, labelled as what it is."""

from __future__ import annotations

from cuisine_db.humanize import brief, duration, size


def test_sizes_are_binary_units_labelled_as_binary() -> None:
    assert size(512) == "512 B"
    assert size(1536) == "1.5 KiB"
    assert size(20 * 1024**2) == "20.0 MiB"
    assert size(3 * 1024**3) == "3.0 GiB"
    assert size(-2048) == "-2.0 KiB"
    assert size(None) == "-" and size(None, none="") == ""


def test_durations_on_a_clock() -> None:
    assert duration(6.04) == "6.0s"
    assert duration(245) == "4m05s"
    assert duration(3723) == "1h02m03s"
    assert duration(3723, sep=" ") == "1h 02m 03s"
    assert duration(183_600) == "2d03h"
    assert duration(None) == "-"


def test_brief_durations_pick_one_unit() -> None:
    assert brief(0.00042) == "0.42 ms"
    assert brief(0.25) == "250 ms"
    assert brief(90) == "90.0 s"
    assert brief(2700) == "45 min"
    assert brief(7200) == "2.0 h"
    assert brief(3 * 86400) == "3.0 days"
