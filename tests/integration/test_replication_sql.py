"""The replication statements on every server version (the replica tests themselves run on 14 only)."""

from __future__ import annotations

import time

from conftest import Server

from cuisine_db import sql
from cuisine_db.replicas import lag, replica_checks


def test_every_replication_statement_runs_on_this_version(server: Server) -> None:
    slot = f"cuisine_sqltest_{server.major}"
    with server.admin() as conn:
        before = conn.execute(sql.load("replication/position")).fetchone()
        beat = conn.execute(sql.load("replication/heartbeat")).fetchone()
        assert before is not None and beat is not None and int(beat[0]) > 0
        # Its commit record is written out by the WAL writer (it wrote nothing else, so the session did not).
        deadline = time.monotonic() + 30
        while True:
            position = conn.execute(sql.load("replication/position")).fetchone()
            assert position is not None
            if (lag.lsn(position[1]) or 0) > (lag.lsn(before[1]) or 0):
                break
            assert time.monotonic() < deadline, "the heartbeat's commit never reached the written WAL"
            time.sleep(0.05)
        assert position is not None and position[0] is False and lag.lsn(position[1])
        status = conn.execute(sql.load("replication/standby_status")).fetchone()
        assert status is not None and status[0] is False and status[4] is False  # a primary: never paused
        assert conn.execute(sql.load("replication/replay_lsn")).fetchone() == (None,)
        facts = conn.execute(sql.load("replication/seed_facts")).fetchone()
        assert facts is not None and facts[0] is False and facts[1].isdigit() and facts[2] // 10000 == server.major
        assert facts[3] in ("off", "on", "always") and isinstance(facts[4], str)
        capacity = conn.execute(sql.load("replication/capacity")).fetchone()
        assert capacity is not None and capacity[1] == "replica" and capacity[2] >= 1
        assert conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone() is None
        made = conn.execute(sql.load("replication/create_slot"), {"slot": slot}).fetchone()
        try:
            assert made is not None and made[0] == slot and lag.lsn(made[1])
            assert conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone() == (False, None)
            slots = {row[0]: row for row in conn.execute(sql.load("replication/slots"))}
            assert slots[slot][1] is False and slots[slot][4] == "reserved"
            assert conn.execute(sql.load("replication/standbys")).fetchall() == []
        finally:
            conn.execute(sql.load("replication/drop_slot"), {"slot": slot})
        assert conn.execute(sql.load("replication/slot"), {"slot": slot}).fetchone() is None
    # db-replicas on an environment without replicas: nothing to judge.
    report = lag.measure(server.settings, server.env)
    assert report.replicas == [] and lag.lsn(report.primary_lsn)
    assert replica_checks.judge(report, server.env) == []
