"""The dashboard's pieces that need no server: SVG charts escape what they draw, the address rules, the filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cuisine_db.config import load_settings
from cuisine_db.dashboard import server, svg
from cuisine_db.dashboard.app import duration, size
from cuisine_db.errors import RefusedError, UsageError

HOSTILE = '<script>alert("x")</script>'


def test_charts_escape_every_label() -> None:
    now = datetime.now(UTC)
    drawn = [
        svg.sparkline([1, 2, 3], label=HOSTILE),
        svg.line_chart([(now - timedelta(days=1), 1.0), (now, 2.0)], label=HOSTILE),
        svg.bars({HOSTILE: 3, "idle": 1}, label=HOSTILE),
        svg.timeline(now - timedelta(hours=2), now, [(now - timedelta(hours=1), HOSTILE)],
                     archive_end=now - timedelta(minutes=5), label=HOSTILE),
    ]
    for markup in drawn:
        assert "<script>" not in markup and "&lt;script&gt;" in markup


def test_the_timeline_draws_the_unarchived_end_dashed() -> None:
    now = datetime.now(UTC)
    behind = svg.timeline(now - timedelta(hours=1), now, [], archive_end=now - timedelta(minutes=30), label="w")
    current = svg.timeline(now - timedelta(hours=1), now, [], archive_end=now, label="w")
    assert "stroke-dasharray" in behind and "stroke-dasharray" not in current
    assert svg.timeline(None, now, [], archive_end=None, label="w") == ""


def _settings(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "cuisine-db.toml"
    config.write_text(f'[environments.production]\nport = 55990\n{extra}')
    return config


def test_loopback_needs_no_token_and_other_addresses_do(tmp_path: Path) -> None:
    config = _settings(tmp_path)
    settings = load_settings({"CUISINE_DB_CONFIG": str(config)})
    env = settings.env("production")
    for address in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert server.plan(settings, env, address, 8080).loopback
    with pytest.raises(RefusedError, match="dashboard_token_env"):
        server.plan(settings, env, "0.0.0.0", 8080)  # noqa: S104 - the refusal is what is tested
    with pytest.raises(UsageError, match="not an IP address"):
        server.plan(settings, env, "example.com", 8080)
    with pytest.raises(UsageError, match="port"):
        server.plan(settings, env, "127.0.0.1", 70000)


def test_another_address_takes_the_token_from_its_reference(tmp_path: Path) -> None:
    config = _settings(tmp_path, 'dashboard_token_env = "DASH_TOKEN"\n')
    short = load_settings({"CUISINE_DB_CONFIG": str(config), "DASH_TOKEN": "short"})
    with pytest.raises(RefusedError, match="shorter than 16"):
        server.plan(short, short.env("production"), "192.0.2.1", 8080)
    token = "x" * 32
    settings = load_settings({"CUISINE_DB_CONFIG": str(config), "DASH_TOKEN": token})
    chosen = server.plan(settings, settings.env("production"), "192.0.2.1", 8080)
    assert chosen.token == token and not chosen.loopback
    assert token not in repr(settings)


def test_filters_read_as_people_write() -> None:
    assert size(None) == "\u2013" and size(1536) == "1.5 KiB" and size(3 * 1024**3) == "3.0 GiB"
    assert duration(0.25) == "250 ms" and duration(90) == "90.0 s" and duration(7200) == "2.0 h"


def test_on_loopback_only_loopback_host_names_are_answered() -> None:
    from cuisine_db.dashboard.app import _loopback_host

    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2", "localhost"):
        assert _loopback_host(host), host
    for host in ("evil.example:8080", "192.0.2.1:8080", "", "[2001:db8::1]:8080", "127.0.0.1.evil.example"):
        assert not _loopback_host(host), host


def test_a_timed_chart_places_points_by_their_time() -> None:
    now = datetime.now(UTC)
    points = [(now - timedelta(minutes=60), 1.0), (now - timedelta(minutes=45), 2.0), (now, 3.0)]
    timed = svg.line_chart(points, label="lag", width=600, timed=True)
    even = svg.line_chart(points, label="lag", width=600)
    # 15 of 60 minutes: a quarter of the way across, where even spacing puts it half way.
    assert 'points="0.0,' in timed and " 150.0," in timed, timed
    assert " 300.0," in even and " 150.0," not in even, even


def test_a_slow_part_is_shared_refreshed_in_the_background_and_never_keeps_a_failure() -> None:
    import threading
    import time

    from cuisine_db.dashboard.reads import Slow

    calls: list[int] = []
    gate = threading.Event()
    gate.set()

    def read() -> int:
        gate.wait(5)
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the third read fails")
        return len(calls)

    slow = Slow(seconds=0.2)
    assert slow.get("part", read)[0] == 1
    assert slow.get("part", read)[0] == 1 and len(calls) == 1  # shared: not read again
    time.sleep(0.3)
    gate.clear()  # the background read waits: the viewer is answered with the older value meanwhile
    value, age = slow.get("part", read)
    assert value == 1 and age >= 0.2
    gate.set()
    deadline = time.monotonic() + 5
    while slow.get("part", read)[0] != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.get("part", read)[0] == 2
    time.sleep(0.3)
    slow.get("part", read)  # starts the third read, which fails in the background
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    # The failure was not kept: the next viewer reads in the foreground (the fourth read) and gets its value.
    assert slow.get("part", read)[0] == 4


def test_the_archive_lag_is_kept_once_a_minute_for_a_week(tmp_path: Path) -> None:
    from cuisine_db.monitor.store import Store

    store = Store(tmp_path / "monitor.sqlite")
    now = 1_800_000_000.0
    assert store.add_archive_lag(now - 8 * 86_400, 30.0, 0)
    assert store.add_archive_lag(now - 60, 45.0, 1)
    assert not store.add_archive_lag(now - 30, 50.0, 1)  # within the minute: not recorded
    assert store.add_archive_lag(now, 12.5, None)
    # The row from eight days ago went when the newer ones came.
    assert store.archive_lag(0) == [(now - 60, 45.0, 1), (now, 12.5, None)]


def test_one_reading_draws_a_flat_line_across_the_box_in_both_charts() -> None:
    spark = svg.sparkline([5.0], width=160, label="one")
    chart = svg.line_chart([(datetime.now(UTC), 5.0)], label="one", width=640)
    for markup, width in ((spark, 160), (chart, 640)):
        (points,) = re.findall(r'points="([^"]+)"', str(markup))
        first, second = points.split(" ")
        assert first.split(",")[0] == "0.0" and second.split(",")[0] == f"{width}.0"
        assert first.split(",")[1] == second.split(",")[1]
