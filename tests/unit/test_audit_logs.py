"""Server logs (CSV and JSON) into audit reports: classification, day ranges, unusual activity, rendering."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cuisine_db.cli.audit_render import markdown
from cuisine_db.config import Environment
from cuisine_db.security.audit_events import classify_statement, label, redact
from cuisine_db.security.audit_reporting import AuditReport, Thresholds, build
from cuisine_db.security.logs import ReadStats, parse_time, records

ENV = Environment(name="production", port=55999)
DAY = date(2025, 3, 10)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def csv_line(moment: datetime, message: str, *, user: str = "", db: str = "", client: str = "",
             session: str = "s1", severity: str = "LOG", state: str = "00000", app: str = "") -> str:
    row = [f"{moment:%Y-%m-%d %H:%M:%S}.123 UTC", user, db, "4242", client, session, "1", "", "", "", "0",
           severity, state, message, "", "", "", "", "", "", "", "", app, "client backend", "", "0"]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue()


def json_line(moment: datetime, message: str, *, user: str | None = None, client: str | None = None,
              session: str = "j1", severity: str = "LOG", state: str | None = None) -> str:
    data = {"timestamp": f"{moment:%Y-%m-%d %H:%M:%S}.456 UTC", "pid": 7, "session_id": session,
            "error_severity": severity, "message": message, "backend_type": "client backend"}
    if user:
        data.update(user=user, dbname="cuisine")
    if client:
        data.update(remote_host=client, remote_port=5555)
    if state:
        data["state_code"] = state
    return json.dumps(data) + "\n"


def login(moment: datetime, user: str, client: str, session: str = "s1") -> str:
    return csv_line(moment, f"connection authorized: user={user} database=cuisine application_name=psql",
                    user=user, db="cuisine", client=f"{client}:40000", session=session)


def report(folder: Path, start: date = DAY, end: date = DAY, superusers: set[str] | None = None) -> AuditReport:
    stats = ReadStats(files=[])
    return build(ENV, folder, records(folder, None, stats), stats, start=start, end=end,
                 superusers=superusers or {"cuisine"}, thresholds=Thresholds())


def test_timestamps_in_every_zone_form() -> None:
    assert parse_time("2025-03-10 12:00:00.123 UTC") == datetime(2025, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
    assert parse_time("2025-03-10 13:00:00 +01") == datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert parse_time("2025-03-10 13:00:00 Europe/Paris") == datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert parse_time("garbage") is None


def test_statements_are_classified_with_the_real_parser() -> None:
    assert classify_statement("GRANT SELECT ON users TO reports") == [("role", "GRANT", [])]
    assert classify_statement("CREATE ROLE x LOGIN PASSWORD 'p'") == [("role", "CREATE ROLE", [])]
    assert classify_statement("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)") == [("ddl", "CREATE INDEX", [])]
    assert classify_statement("insert into public.recipes values (1); update users set x = 1") == [
        ("write", "INSERT", ["public.recipes"]), ("write", "UPDATE", ["users"])]
    assert classify_statement("TRUNCATE a, b") == [("write", "TRUNCATE", ["a", "b"])]
    assert classify_statement("SELECT 1; BEGIN; COMMIT") == []
    assert classify_statement("COPY t TO STDOUT") == []
    assert classify_statement("GRANT SELEC ON x TO y") == [("role", "GRANT", [])]  # unparsable: by keyword
    assert label("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO r") == "ALTER DEFAULT PRIVILEGES"
    assert label("create or replace materialized view v as select 1") == "CREATE MATERIALIZED VIEW"


def test_passwords_typed_by_hand_are_redacted() -> None:
    assert redact("ALTER ROLE x PASSWORD 'it''s secret' VALID UNTIL 'infinity'") == \
        "ALTER ROLE x PASSWORD [redacted] VALID UNTIL 'infinity'"
    assert "hunter2" not in redact("create user y with encrypted password 'hunter2'")


def test_a_csv_log_with_log_statement_becomes_a_report_for_the_right_days(tmp_path: Path) -> None:
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    (tmp_path / "postgresql-1.csv").write_text(
        login(at(before, 10), "cuisine", "127.0.0.1", "s0")
        + csv_line(at(before, 10, 1), "statement: DROP TABLE old_stuff", user="cuisine", client="127.0.0.1:1",
                   session="s0")
        + login(at(DAY, 9), "cuisine", "127.0.0.1")
        + csv_line(at(DAY, 9, 1), "statement: GRANT SELECT ON users TO reports", user="cuisine",
                   client="127.0.0.1:40000")
        + csv_line(at(DAY, 9, 2), "statement: CREATE ROLE bob LOGIN PASSWORD 'plain-text-secret'", user="cuisine",
                   client="127.0.0.1:40000")
        + csv_line(at(DAY, 9, 3), "execute <unnamed>: CREATE TABLE t (id int)", user="cuisine",
                   client="127.0.0.1:40000")
        + csv_line(at(DAY, 9, 4), "password authentication failed for user \"bob\"", user="bob",
                   client="10.1.2.3:5000", severity="FATAL", state="28P01", session="s2")
        + csv_line(at(after, 9), "statement: DROP TABLE t", user="cuisine", client="127.0.0.1:1", session="s3"))
    result = report(tmp_path)
    assert result.audit_source == "log_statement"
    assert [(e.command, e.user) for e in result.role_changes] == [("GRANT", "cuisine"), ("CREATE ROLE", "cuisine")]
    assert "plain-text-secret" not in json.dumps([e.statement for e in result.role_changes])
    assert [e.command for e in result.ddl] == ["CREATE TABLE"]
    assert [(f.user, f.client) for f in result.failed_logins] == [("bob", "10.1.2.3")]
    assert [(c.user, c.client, c.connections) for c in result.connections] == [("cuisine", "127.0.0.1", 1)]
    assert [(s.user, s.connections, s.statements) for s in result.superusers] == [("cuisine", 1, 3)]
    assert any("writes are not logged" in note for note in result.notes)
    text = markdown(result)
    assert "## Role and permission changes" in text and "GRANT SELECT ON users TO reports" in text
    assert "plain-text-secret" not in text


def test_pgaudit_json_lines_count_writes_per_table_once_and_win_over_log_statement(tmp_path: Path) -> None:
    audit = 'AUDIT: SESSION,{n},1,{cls},{cmd},TABLE,{obj},"{stmt}",<not logged>'
    lines = [
        json_line(at(DAY, 10), audit.format(n=1, cls="DDL", cmd="CREATE TABLE", obj="public.t",
                                            stmt="CREATE TABLE t (id serial)"), user="cuisine", client="127.0.0.1"),
        json_line(at(DAY, 10), audit.format(n=1, cls="DDL", cmd="CREATE SEQUENCE", obj="public.t_id_seq",
                                            stmt="CREATE TABLE t (id serial)"), user="cuisine", client="127.0.0.1"),
        json_line(at(DAY, 10), "statement: CREATE TABLE t (id serial)", user="cuisine", client="127.0.0.1"),
        json_line(at(DAY, 10, 5), audit.format(n=2, cls="WRITE", cmd="INSERT", obj="public.t",
                                               stmt="INSERT INTO t DEFAULT VALUES"), user="app", client="10.0.0.5"),
        json_line(at(DAY, 10, 6), audit.format(n=3, cls="WRITE", cmd="INSERT", obj="public.t",
                                               stmt="INSERT INTO t DEFAULT VALUES"), user="app", client="10.0.0.5"),
        json_line(at(DAY, 10, 7), audit.format(n=4, cls="READ", cmd="SELECT", obj="public.t",
                                               stmt="SELECT * FROM t"), user="app", client="10.0.0.5"),
        '{"timestamp": "2025-03-10 10:',  # the server was still writing this line
    ]
    (tmp_path / "postgresql-1.json").write_text("".join(lines))
    result = report(tmp_path)
    assert result.audit_source == "pgaudit"
    assert [(e.command, e.objects) for e in result.ddl] == [
        ("CREATE TABLE, CREATE SEQUENCE", "public.t, public.t_id_seq")]
    assert [(w.table, w.command, w.statements, w.users) for w in result.writes] == [("public.t", "INSERT", 2, "app")]
    assert result.skipped == 1 and any("could not be read" in note for note in result.notes)


def test_unusual_activity_bursts_new_addresses_and_odd_hours(tmp_path: Path) -> None:
    earlier = DAY - timedelta(days=10)
    baseline = login(at(earlier, 9), "app", "10.0.0.5", "b1") + login(at(earlier, 2), "batch", "10.0.0.6", "b2")
    period = (login(at(DAY, 3), "app", "10.0.0.5", "p1")          # 03:00: app never logged in at 3 before
              + login(at(DAY, 2, 30), "batch", "10.0.0.6", "p2")  # 02:30: batch always does
              + login(at(DAY, 11), "app", "203.0.113.9", "p3"))   # a client never seen before
    failures = "".join(csv_line(at(DAY, 4, 0, second), "password authentication failed for user \"admin\"",
                                user="admin", client="198.51.100.7:999", severity="FATAL", state="28P01",
                                session=f"f{second}") for second in range(0, 12, 2))
    (tmp_path / "postgresql-1.csv").write_text(baseline + period + failures)
    result = report(tmp_path)
    found = {(f.check, f.subject) for f in result.unusual}
    assert found == {("failed-login-burst", "198.51.100.7"), ("first-seen-client", "203.0.113.9"),
                     ("login-at-unusual-hour", "app")}
    burst = next(f for f in result.unusual if f.check == "failed-login-burst")
    assert burst.severity == "error" and "6 failed logins in 10 s" in burst.evidence


def test_without_a_baseline_no_address_is_called_new(tmp_path: Path) -> None:
    (tmp_path / "postgresql-1.csv").write_text(login(at(DAY, 11), "app", "203.0.113.9"))
    result = report(tmp_path)
    assert not [f for f in result.unusual if f.check == "first-seen-client"]
    assert any("first-seen client addresses cannot be told apart" in note for note in result.notes)
