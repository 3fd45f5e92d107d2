"""Backup names, tables=, manifests and the retention policy: no server needed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from backup_fixtures import gfs_by_calendar

from cuisine_db.backup import backup_names
from cuisine_db.backup.manifest import Manifest, ObjectEntry, TableEntry
from cuisine_db.backup.retention import Candidate, plan
from cuisine_db.backup.toc import parse_list, statements
from cuisine_db.config import Retention
from cuisine_db.errors import UsageError
from cuisine_db.storage.pipeline import IntegrityError, RowCounter


def test_backup_names_parse_and_refuse_anything_else() -> None:
    parsed = backup_names.parse("production-logical-20250315T010000Z")
    assert (parsed.env, parsed.type, parsed.taken_at) == ("production", "logical", datetime(2025, 3, 15, 1, tzinfo=UTC))
    assert str(parsed) == "production-logical-20250315T010000Z"
    assert backup_names.parse("my-env-tables-20250315T010000Z").env == "my-env"
    for bad in ("../production-logical-20250315T010000Z", "production-logical-20250315T010000Z/../x",
                "production-bogus-20250315T010000Z", "production-logical-2025", "", "latest", "a/b"):
        with pytest.raises(UsageError):
            backup_names.parse(bad)


def test_tables_take_plain_identifiers_only() -> None:
    parsed = backup_names.parse_tables("users, public.Recipes,users")
    assert [str(t) for t in parsed] == ["users", "public.recipes"]
    for bad in ("users;drop table x", "'users'", '"users"', "users recipes", "a.b.c", "../x", "", ",", "us-ers"):
        with pytest.raises(UsageError):
            backup_names.parse_tables(bad)


def test_row_counter_takes_off_pg_dumps_end_marker_only() -> None:
    counter = RowCounter()
    for chunk in (b"1\ta\n2\tb", b"\n3\tc\n\\.\n\n", b"\n"):
        counter.feed(chunk)
    assert counter.rows == 3 and counter.has_trailer
    empty = RowCounter()
    empty.feed(b"\\.\n\n\n")
    assert empty.rows == 0
    plain = RowCounter()
    plain.feed(b"1\n2\n")
    assert plain.rows == 2 and not plain.has_trailer


KEY = "backups/production-logical-20250315T010000Z/manifest.json"


def sample_manifest() -> Manifest:
    at = datetime(2025, 3, 15, 1, tzinfo=UTC)
    return Manifest(
        name="production-logical-20250315T010000Z", env="production", type="logical", database="cuisine",
        server_version="14.23", server_version_num=140023, system_identifier="7", timeline=1, start_lsn="0/1",
        stop_lsn="0/2", started_at=at, finished_at=at + timedelta(seconds=3), tool={"pg_dump": "14.23"},
        dump={"encoding": "UTF8"}, encryption={"recipients": ["sha256:00"]}, compression={"level": 3},
        tables=(TableEntry("public", "users", 10),),
        objects=(ObjectEntry("1.dat.zst.age", "1.dat", 100, "ab" * 32, 400, "public.users", 10),),
    )


def test_a_manifest_detects_any_change_to_itself() -> None:
    manifest = sample_manifest()
    data = manifest.to_json()
    again = Manifest.from_json(data, KEY)
    assert again == manifest and again.size == 100 and again.dump_major == 14
    for position in range(0, len(data), 7):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(IntegrityError):
            Manifest.from_json(bytes(damaged), KEY)
    with pytest.raises(IntegrityError, match="damaged"):
        Manifest.from_json(data[: len(data) // 2], KEY)


def daily(days: int, today: date) -> list[Candidate]:
    first = today - timedelta(days=days - 1)
    return [Candidate(f"production-logical-{(first + timedelta(n)).strftime('%Y%m%d')}T010000Z",
                      datetime.combine(first + timedelta(n), time(1), UTC)) for n in range(days)]


@pytest.mark.parametrize("today", [date(2026, 11, 25), date(2025, 3, 2), date(2024, 12, 31)])
def test_retention_over_400_days_keeps_exactly_the_gfs_set(today: date) -> None:
    history = daily(400, today)
    kept = plan(history, Retention())
    assert {c.taken_at.date() for c in history if c.name in kept} == gfs_by_calendar(today, 7, 4, 12)
    assert kept[history[-1].name][0] == f"daily {today:%Y-%m-%d}"
    assert kept[history[-1].name][1] == "weekly {}-W{:02d}".format(*today.isocalendar()[:2])
    custom = plan(history, Retention(daily=3, weekly=2, monthly=6))
    assert {c.taken_at.date() for c in history if c.name in custom} == gfs_by_calendar(today, 3, 2, 6)


def test_retention_never_drops_the_only_or_newest_backup_and_keeps_what_kept_ones_need() -> None:
    only = daily(1, date(2025, 1, 1))
    assert set(plan(only, Retention(daily=0, weekly=0, monthly=0))) == {only[0].name}
    history = daily(30, date(2025, 1, 30))
    base = history[0]
    chained = [*history[:-1], Candidate(history[-1].name, history[-1].taken_at, depends_on=base.name)]
    kept = plan(chained, Retention(daily=1, weekly=0, monthly=0))
    assert set(kept) == {history[-1].name, base.name}
    assert kept[base.name] == [f"needed by {history[-1].name}"]


def test_toc_lines_and_dump_sql_are_understood() -> None:
    listing = ("; comment\n2676; 0 16554 TABLE DATA public executions cuisine\n"
               "2508; 2606 16567 CONSTRAINT public executions executions_pkey cuisine\n"
               "5; 2615 2200 SCHEMA - public cuisine\n2684; 0 0 COMMENT - EXTENSION pg_stat_statements \n")
    entries = parse_list(listing)
    assert [(e.dump_id, e.kind, e.schema, e.name, e.owner) for e in entries] == [
        (2676, "TABLE DATA", "public", "executions", "cuisine"),
        (2508, "CONSTRAINT", "public", "executions executions_pkey", "cuisine"),
        (5, "SCHEMA", None, "public", "cuisine"),
        (2684, "COMMENT", None, "EXTENSION pg_stat_statements", None),
    ]
    found = statements("\\restrict abc\nSET x = 1;\nCREATE TABLE public.t (id int);\n"
                       "ALTER TABLE public.t OWNER TO bob;\nGRANT SELECT ON TABLE public.t TO app;\n"
                       "CREATE SEQUENCE public.s;\nALTER SEQUENCE public.s OWNED BY public.t.id;\n"
                       "CREATE INDEX t_i ON public.t USING btree (id);\nCOPY public.t (id, \"Name\") FROM stdin;\n"
                       "\\.\n\\unrestrict abc\n")
    kinds = [(s.kind, s.relation, s.name) for s in found]
    assert kinds == [("CreateStmt", ("public", "t"), None), ("AlterTableStmt", ("public", "t"), None),
                     ("GrantStmt", ("public", "t"), None), ("CreateSeqStmt", ("public", "s"), None),
                     ("AlterSeqStmt", ("public", "s"), None), ("IndexStmt", ("public", "t"), "t_i"),
                     ("CopyStmt", ("public", "t"), None)]
    assert found[1].owner_roles == {"bob"} and found[2].other_roles == {"app"}
    assert found[4].owned_by == ("public", "t") and found[6].columns == ("id", "Name")


def test_restore_session_settings_come_from_the_config_and_refuse_anything_but_a_size() -> None:
    from pydantic import ValidationError

    from cuisine_db.backup.restore import load_options
    from cuisine_db.config import BackupConfig, Environment

    env = Environment(name="staging", port=5999, backup=BackupConfig(restore_maintenance_work_mem="1GB"))
    assert load_options(env) == {"PGOPTIONS": "-c maintenance_work_mem=1GB -c synchronous_commit=off"}
    assert "maintenance_work_mem=256MB" in load_options(Environment(name="staging", port=5999))["PGOPTIONS"]
    for bad in ("1 GB", "512MB -c fsync=off", "0MB", "lots", "1TB", ""):
        with pytest.raises(ValidationError):
            BackupConfig(restore_maintenance_work_mem=bad)
