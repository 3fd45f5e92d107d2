"""The monitoring checks, the blocking tree, pid parsing, query redaction and the thresholds' config: no server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cuisine_db.config import Monitoring, load_settings
from cuisine_db.diagnose.connections import ConnectionUsage
from cuisine_db.diagnose.locks import LockSession, LockWait, PreparedTransaction, build_tree
from cuisine_db.diagnose.query_text import redact, shown
from cuisine_db.diagnose.sizes import Filesystem
from cuisine_db.diagnose.terminate import parse_mode, parse_pid
from cuisine_db.errors import ConfigError, UsageError
from cuisine_db.monitor import health_checks, nagios
from cuisine_db.monitor.figures import (
    Archiver,
    Counters,
    Figures,
    HorizonHolder,
    Rates,
    Replica,
    Slot,
    StandbyLag,
    WraparoundAge,
    rates_between,
)
from cuisine_db.monitor.growth import Forecast
from cuisine_db.monitor.service import MonitorReport

STARTED = datetime(2025, 3, 1, tzinfo=UTC)
NO_FORECAST = Forecast(None, None, None, 0, 0.0, "no snapshots yet")


def figures(**changes: object) -> Figures:
    usage = ConnectionUsage("production", 100, 3, 97, 10, 0.1031, {}, {}, {}, {}, {}, [], None, [])
    counters = Counters("cuisine", 1000, 10, 0, 990_000, 10_000, 0, STARTED, STARTED, 0.0)
    base = Figures(env="production", server_version=140011, connections=usage, counters=counters, rates=None,
                   database_bytes=10**9, filesystem=None, wraparound=[WraparoundAge("cuisine", 1000, 10)],
                   horizon=[], prepared=[], standby=StandbyLag(False, 0.0), replicas=[], slots=[],
                   archiver=Archiver("off", 0, 0, None, None, None, False), long_queries=[], slow_statements=[],
                   statements_note=None, dead_tables=[])
    return replace(base, **changes)  # type: ignore[arg-type]


def evaluate(f: Figures, forecast: Forecast = NO_FORECAST, **thresholds: float) -> dict[str, str]:
    statuses, _ = health_checks.evaluate(f, forecast, Monitoring(**thresholds))  # type: ignore[arg-type]
    return {s.name: s.status for s in statuses}


def test_a_quiet_server_is_ok_everywhere() -> None:
    assert set(evaluate(figures()).values()) == {"ok"}


def test_wraparound_age_warns_then_goes_critical_and_names_what_holds_it_back() -> None:
    holders = [HorizonHolder("prepared transaction", "gid 'x' (app@cuisine)", 1_200_000_000, 86400.0)]
    warned = figures(wraparound=[WraparoundAge("cuisine", 1_200_000_000, 5)], horizon=holders)
    (finding,) = health_checks.wraparound(warned)
    assert finding.severity == "warning" and "56% of the limit" in finding.evidence
    assert "prepared transaction gid 'x'" in finding.evidence
    critical = figures(wraparound=[WraparoundAge("cuisine", 5, 1_700_000_000)])
    (mxid,) = health_checks.wraparound(critical)
    assert mxid.severity == "critical" and mxid.evidence.startswith("MultiXact ID age 1,700,000,000")
    assert evaluate(critical)["wraparound"] == "critical"


def test_replication_lag_slots_and_a_lagging_standby() -> None:
    f = figures(replicas=[Replica("replica1", "10.0.0.2", "streaming", 10**9, 90.0)],
                slots=[Slot("old", "physical", False, 5 * 1024**3, "extended"), Slot("lost", "logical", False, 0,
                                                                                    "lost")])
    found = {x.subject: x for x in health_checks.replication(f)}
    assert found["standby replica1 (10.0.0.2)"].severity == "warning"
    assert found["replication slot old"].severity == "warning" and "inactive" in found["replication slot old"].evidence
    assert found["replication slot lost"].severity == "critical"
    behind = figures(standby=StandbyLag(True, 600.0))
    (lag,) = health_checks.replication(behind)
    assert lag.subject == "this standby's replay" and lag.severity == "critical"


def test_cache_hit_ratio_is_judged_only_with_enough_reads() -> None:
    cold = figures(counters=Counters("cuisine", 1, 0, 0, 80_000, 20_000, 0, STARTED, STARTED, 0.0))
    (finding,) = health_checks.cache_hit(cold)
    assert finding.severity == "critical" and "80.0%" in finding.evidence
    few = figures(counters=Counters("cuisine", 1, 0, 0, 10, 90, 0, STARTED, STARTED, 0.0))
    assert health_checks.cache_hit(few) == []


def test_storage_free_space_and_days_until_full() -> None:
    fs = Filesystem("/var/lib/postgresql/data", 100 * 1024**3, 8 * 1024**3)
    soon = Forecast(2 * 1024**3, 8 * 1024**3, 4.0, 100, 7.0, "")
    found = health_checks.storage(figures(filesystem=fs), soon)
    assert [(f.subject, f.severity) for f in found] == [("filesystem of /var/lib/postgresql/data", "critical"),
                                                        ("days until the disk is full", "critical")]
    assert evaluate(figures(filesystem=fs), soon, disk_free_warning=0.05, disk_free_critical=0.01,
                    days_until_full_warning=3, days_until_full_critical=1)["storage utilization"] == "ok"


def test_a_failing_archiver_is_critical() -> None:
    f = figures(archiver=Archiver("on", 10, 3, "000000010000000000000003", 5.0, 600.0, True))
    (finding,) = health_checks.archiving(f)
    assert finding.severity == "critical" and "000000010000000000000003" in finding.subject


def test_rates_refuse_counters_across_a_reset_or_restart() -> None:
    before = Counters("cuisine", 1000, 10, 0, 0, 0, 0, STARTED, STARTED, 100.0)
    after = replace(before, xact_commit=1600, xact_rollback=410, deadlocks=2, taken_at=160.0)
    rates = rates_between(before, after, "sampled")
    assert rates == Rates(60.0, 10.0, 400 / 60, 1000, 0.4, 2, "sampled")
    assert rates_between(before, replace(after, server_started=datetime(2025, 3, 2, tzinfo=UTC)), "x") is None
    assert rates_between(before, replace(after, xact_commit=5), "x") is None
    assert rates_between(before, replace(after, stats_reset=datetime(2025, 3, 2, tzinfo=UTC)), "x") is None
    never = replace(before, stats_reset=None)  # a new database: counted for the first time meanwhile
    assert rates_between(never, after, "sampled") == rates
    assert {f.subject for f in health_checks.transaction_volume(rates)} == {"rollback ratio", "deadlocks"}
    assert health_checks.transaction_volume(rates, rollback_min_transactions=5000) == [
        health_checks.transaction_volume(rates)[1]]


def test_the_nagios_line_carries_status_counts_and_perfdata() -> None:
    f = figures(archiver=Archiver("on", 10, 3, "0001", 5.0, 600.0, True),
                rates=Rates(60.0, 10.0, 0.5, 630, 0.05, 0, "since the previous run"))
    statuses, found = health_checks.evaluate(f, NO_FORECAST, Monitoring())
    report = MonitorReport("production", "critical", statuses, found, NO_FORECAST, False, f)
    line = nagios.status_line(report)
    assert line.startswith("CUISINE-DB CRITICAL - production: 1 critical, 1 warning: archiving (WAL archiving "
                           "(0001)); transaction volume (rollback ratio) | ")
    assert "connections=10;;;0;97" in line and "commits_per_s=10.00" in line and "xid_age=1000" in line
    assert nagios.CODES[report.status] == 2


def session(pid: int, blocked_by: list[int], xact: float = 10.0) -> LockSession:
    return LockSession(pid, blocked_by, "client backend", "cuisine", "app", "app", "local", "active", xact, 1.0,
                       "SELECT 1")


def test_the_tree_puts_the_widest_root_first_and_survives_cycles_and_prepared_transactions() -> None:
    sessions = [session(1, [], 50.0), session(2, [1]), session(3, [2]), session(4, [], 500.0), session(5, [4]),
                session(6, [0]), session(7, [8]), session(8, [7], 20.0)]
    waits = [LockWait(2, 1, "relation", "AccessShareLock", "relation t1", 3.0, "AccessExclusiveLock"),
             LockWait(6, 0, "relation", "AccessShareLock", "relation p", 1.0, "AccessExclusiveLock")]
    prepared = [PreparedTransaction("gid-1", "app", "cuisine", 60.0, 100)]
    roots = build_tree(sessions, waits, prepared)
    assert [r.pid for r in roots] == [1, 4, 8, 0]
    assert roots[0].blocked_total == 2 and roots[0].holds == ["AccessExclusiveLock on relation t1"]
    assert roots[0].blocked[0].waits_for == "AccessShareLock on relation t1 for 3.0s"
    assert roots[2].blocked[0].pid == 7 and roots[2].blocked[0].blocked == []  # the cycle stops
    assert roots[3].prepared == prepared and roots[3].blocked[0].pid == 6


@pytest.mark.parametrize("text", ["0", "abc", "1;select 1", "-1", "", " ", "1.5", "0x10", "99999999999",
                                  "\uff11\uff12"])
def test_only_positive_whole_pids_pass(text: str) -> None:
    with pytest.raises(UsageError):
        parse_pid(text)


@pytest.mark.parametrize("text", ["99999999999999999999", "2147483648", "9" * 5000])
def test_pids_out_of_range_are_called_so_not_negative(text: str) -> None:
    with pytest.raises(UsageError, match=r"is not a valid process id \(out of range") as caught:
        parse_pid(text)
    assert "positive" not in caught.value.message and caught.value.exit_code == 2


def test_pids_and_modes_that_pass() -> None:
    assert parse_pid("12345") == 12345 and parse_pid(" 7 ") == 7
    assert parse_mode("terminate") == "terminate"
    with pytest.raises(UsageError, match="mode must be one of"):
        parse_mode("kill")


def test_passwords_never_survive_in_query_texts() -> None:
    assert redact("ALTER ROLE app PASSWORD 'it''s secret' VALID UNTIL 'x'") == \
        "ALTER ROLE app PASSWORD '[redacted]' VALID UNTIL 'x'"
    assert "s3cr3t" not in redact("CREATE USER MAPPING FOR x SERVER y OPTIONS (user 'u', password 's3cr3t')")
    assert "s3cr3t" not in redact("SELECT dblink_connect('host=db password=s3cr3t dbname=x')")
    assert shown("SELECT\n  1\n" + "x" * 400, 50).endswith("…") and "\n" not in shown("a\nb")


def test_monitoring_thresholds_are_validated_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "cuisine-db.toml"
    config.write_text("[environments.production]\nport = 55999\n[environments.production.monitoring]\n"
                      "connections_warning = 0.9\nidle_in_transaction_seconds = 30\n")
    env = load_settings({"CUISINE_DB_CONFIG": str(config)}).env("production")
    assert env.monitoring.connections_warning == 0.9 and env.monitoring.idle_in_transaction_seconds == 30
    assert env.monitoring.connections_critical == 0.95  # the rest keep their defaults
    for body, message in [("connections_warning = 0.99\n", "must not be above connections_critical"),
                          ("idle_in_transaction_seconds = -1\n", "idle_in_transaction_seconds"),
                          ("connection_warning = 0.5\n", "unknown key")]:
        config.write_text(f"[environments.production]\nport = 55999\n[environments.production.monitoring]\n{body}")
        with pytest.raises(ConfigError, match=message):
            load_settings({"CUISINE_DB_CONFIG": str(config)})
