"""Durations and byte counts as people read them: one unit base (1024, labelled KiB, MiB, ...) everywhere."""

from __future__ import annotations

SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(count: float | None, *, none: str = "-") -> str:
    """Bytes in binary units, labelled as such: 512 B, 1.5 KiB, 20.0 MiB."""
    if count is None:
        return none
    value = float(count)
    for unit in SIZE_UNITS:
        if abs(value) < 1024 or unit == SIZE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None, *, sep: str = "", none: str = "-") -> str:
    """Seconds on a clock: 1h02m03s, 4m05s or 6.0s; 2d03h for days (`sep=" "`: 1h 02m 03s)."""
    if seconds is None:
        return none
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{sep}{hours:02d}h"
    if hours:
        return f"{hours}h{sep}{minutes:02d}m{sep}{secs:02d}s"
    return f"{minutes}m{sep}{secs:02d}s"


def brief(seconds: float | None, *, none: str = "-") -> str:
    """Seconds in the one unit that reads best: 0.42 ms, 250 ms, 90.0 s, 45 min, 2.0 h, 3.0 days."""
    if seconds is None:
        return none
    seconds = float(seconds)
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
