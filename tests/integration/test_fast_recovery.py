"""Recovery at line rate, on every PostgreSQL version available: the private recovery server replays with its own
settings for speed (the 15+ ones only where they exist), the restored cluster opens with the environment's own;
db-restore starts fetching the archive's first segments into the spool while it lays the backup down, and
db-apply-logs takes them from there; the prefetcher never outlives the recovery."""

from __future__ import annotations

import time

from pitr_fixtures import PitrProject

from cuisine_db.backup import catalog, fast_replay, physical_restore, targets
from cuisine_db.backup.wal import spool, wal_names

WATCHED = ("maintenance_io_concurrency", "max_wal_size", "checkpoint_timeout", "recovery_init_sync_method",
           "recovery_prefetch", "wal_decode_buffer_size")


def _settings(conn: object, wanted: tuple[str, ...]) -> dict[str, str]:
    rows = conn.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",  # type: ignore[attr-defined]
                        (list(wanted),)).fetchall()
    return dict(rows)


def _archive_some(pitr: PitrProject, rows: int) -> list[str]:
    closed = []
    with pitr.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fast (id int PRIMARY KEY)")
        for row in range(rows):
            conn.execute("INSERT INTO fast VALUES (%s)", (row,))
            closed.append(str(conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]))  # type: ignore[index]
    pitr.wait_archived(closed[-1])
    return closed


def test_private_replay_is_tuned_and_the_opened_cluster_has_its_own_settings(pitr: PitrProject) -> None:
    pitr.ok("wal", "enable", "--env", "production", "--restart", "--yes")
    with pitr.connect() as conn:
        conn.execute("CREATE TABLE fast (id int PRIMARY KEY)")
    assert pitr.make("db-backup", "env=production", "type=full").returncode == 0
    _archive_some(pitr, 3)
    settings = pitr.settings
    env = settings.env("production")
    name = catalog.list_backups(settings, env)[-1].name
    tuned = fast_replay.replay_settings(pitr.major)
    assert ("recovery_prefetch" in tuned) == (pitr.major >= 15)
    resolved = catalog.find(settings, env, name)
    with physical_restore.temporary_instance(settings, env, resolved, targets.END) as (server, _), \
            server.connect("cuisine") as conn:
        private = _settings(conn, tuple(tuned))
        assert conn.execute("SELECT count(*) FROM fast").fetchone() == (3,)
    expected = {"maintenance_io_concurrency": "128", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
                "recovery_init_sync_method": "syncfs", "recovery_prefetch": "on", "wal_decode_buffer_size": "4MB"}
    assert private == {key: value for key, value in expected.items() if key in tuned}
    # The full restore flow into development (opened at once): the replay's settings are gone once it is open.
    pitr.ok("cluster", "up", "--env", "development")
    restored = pitr.make("db-restore", "env=development", f"backup={name}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with pitr.connect("development") as conn:
        opened = _settings(conn, WATCHED)
    with pitr.connect("production") as conn:
        own = _settings(conn, WATCHED)
    assert opened == own
    assert all(opened[key] != value for key, value in private.items() if key != "recovery_prefetch"), opened
    assert spool.alive(pitr.root / ".cuisine" / "development" / "wal-spool") is None


def test_restore_fetches_the_first_segments_while_laying_down_and_apply_logs_uses_them(pitr: PitrProject) -> None:
    pitr.ok("wal", "enable", "--env", "production", "--restart", "--yes")
    assert pitr.make("db-backup", "env=production", "type=full").returncode == 0
    closed = _archive_some(pitr, 4)
    settings = pitr.settings
    name = catalog.list_backups(settings, settings.env("production"))[-1].name
    spool_dir = pitr.root / ".cuisine" / "development" / "wal-spool"
    pitr.ok("cluster", "up", "--env", "development")
    for step in (("maintenance-mode", "enable", "env=development", "reason=fast recovery test"),
                 ("db-restore", "env=development", f"backup={name}")):
        result = pitr.make(*step)
        assert result.returncode == 0, result.stdout + result.stderr
    folder = spool.folder(spool_dir)
    try:
        tag, after = fast_replay.tagged(spool_dir)
        assert tag.startswith("production\n") and name in tag and after is not None and wal_names.is_segment(after)
        deadline = time.monotonic() + 60
        # The backup's own last segment may come first: wait for one of those archived after it.
        while not {p.name for p in folder.iterdir() if wal_names.is_segment(p.name)} & set(closed):
            fetched_early = sorted(p.name for p in folder.iterdir())
            assert time.monotonic() < deadline, f"db-restore fetched none of {closed} ahead: {fetched_early}"
            time.sleep(0.05)
    except BaseException:
        spool.stop(spool_dir)
        raise
    applied = pitr.make("db-apply-logs", "env=development")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert spool.alive(spool_dir) is None and not folder.exists()
    assert pitr.make("maintenance-mode", "disable", "env=development").returncode == 0
    with pitr.connect("development") as conn:
        assert conn.execute("SELECT count(*) FROM fast").fetchone() == (4,)
