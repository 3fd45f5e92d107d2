"""Durations and byte counts as operators read them, for findings' evidence and tables."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """Seconds as 1h02m03s, 4m05s or 6.0s; 2d03h for days."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{seconds:.1f}s"


def size(count: float) -> str:
    """Bytes in the units pg_size_pretty uses."""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
