"""db-archive-data: old rows go to the repository and out of the table, every row accounted for; rows changed
during a run are never lost; tables it cannot archive safely are refused; restore=1 brings rows back once."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from archive_support import archive_list, archived_lines, first_fields, ids
from backup_fixtures import AgeKeys, BackupProject, make_backup_project
from conftest import REPO, Server
from psycopg import sql

from cuisine_db.archive import catalog, service
from cuisine_db.archive.export import export
from cuisine_db.archive.request import make_request
from cuisine_db.archive.restore import restore as restore_archive
from cuisine_db.cluster import connect
from cuisine_db.errors import EXIT_REFUSED, RefusedError
from cuisine_db.ops.journal import journal_path
from cuisine_db.ops.journal import read as read_journal
from cuisine_db.postgres import binaries
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import open_repository
from cuisine_db.waiting import wait_for

EVENTS = """
CREATE TABLE events (
    tenant int NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    happened_at timestamp NOT NULL,
    kind text,
    payload jsonb,
    price numeric,
    total numeric GENERATED ALWAYS AS (price * 2) STORED,
    PRIMARY KEY (tenant, id)
);
INSERT INTO events (tenant, happened_at, kind, payload, price)
SELECT n % 3, localtimestamp - make_interval(days => n * 3),
       CASE WHEN n % 7 = 0 THEN NULL ELSE E'tab\\there, new\\nline, back\\\\slash, ü ' || n END,
       jsonb_build_object('n', n, 'quote', 'say "hi"'), n / 7.0
FROM generate_series(1, 300) AS n
"""


def count(project: BackupProject, env: str, table: str, where: str = "true") -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), sql.SQL(where))
    with project.connect(env) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def no_execution_turns_old_meanwhile(project: BackupProject, env: str = "production") -> None:
    """The seed spreads executions over two years, so one of them turns 365 days old every hour or two. A test that
    counts the rows older than `now() - interval '365 days'` and compares the count with what a run archived (the
    run's cutoff is its own now() less 365 days, taken seconds apart from the test's) is off by one whenever a row
    crosses that line in between: test_rows_changed_after_the_export_... failed so once (`assert 1 == 0`). The rows
    that would cross it within the next hour are made an hour younger first, so every such count here is exact."""
    with project.connect(env) as conn, conn.transaction():  # one transaction: one now() for both statements
        conn.execute("""UPDATE executions SET started_at = started_at + interval '1 hour',
                                              finished_at = finished_at + interval '1 hour'
                        WHERE started_at >= now() - interval '365 days'
                          AND started_at < now() - interval '365 days' + interval '1 hour'""")
        row = conn.execute("""SELECT count(*) FROM executions WHERE started_at >= now() - interval '365 days'
                              AND started_at < now() - interval '365 days' + interval '1 hour'""").fetchone()
    assert row == (0,)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def small(server: Server, tmp_path: Path, age_keys: AgeKeys) -> BackupProject:
    """Unseeded environments; development gets the events table (composite key, identity, generated column)."""
    project = make_backup_project(server, tmp_path / "project", age_keys)
    with project.connect("development") as conn:
        conn.execute(EVENTS)
    return project


def test_archive_and_restore_a_table_with_a_composite_key_an_identity_and_a_generated_column(
        small: BackupProject) -> None:
    original = small.fingerprints("development", ("events",))
    old = count(small, "development", "events", "happened_at < localtimestamp - interval '364 days'")
    assert old == 179
    # events has no created_at: the column must be named, and the hint says which ones would do.
    unnamed = small.cli("archive", "create", "--env", "development", "--table", "events", "--older-than", "52w")
    assert unnamed.returncode == 2 and "happened_at" in one_error_line(unnamed)

    done = small.cli("archive", "create", "--env", "development", "--table", "events", "--older-than", "52w",
                     "--column", "happened_at", "--batch-size", "40", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (archived,) = report["archives"]
    assert (archived["rows"], archived["deleted"], archived["kept"], archived["batches"]) == (old, old, 0, 5)
    remaining = count(small, "development", "events")
    assert archived["rows"] + remaining == 300
    assert count(small, "development", "events", "happened_at < localtimestamp - interval '364 days'") == 0
    (listed,) = archive_list(small, "development")
    assert (listed["name"], listed["table"], listed["state"], listed["rows"]) == (
        archived["name"], "public.events", "deleted", old)
    assert small.cli("archive", "verify", archived["name"]).returncode == 0

    back = small.cli("archive", "restore", "--env", "development", "--archive", "latest", "--table", "events",
                     "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["inserted"] == old
    assert small.fingerprints("development", ("events",)) == original
    again = small.cli("archive", "restore", "--env", "development", "--archive", archived["name"], "--json")
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["inserted"], json.loads(again.stdout)["present"]) == (0, old)
    assert small.fingerprints("development", ("events",)) == original
    assert [a["state"] for a in archive_list(small, "development")] == ["restored"]


def test_the_archive_services_ask_for_confirmation_whoever_calls_them(bproject: BackupProject) -> None:
    """archive/service.run and archive/restore.restore own the protected-environment rule, not the CLI: called
    directly on production without confirmation they refuse (exit 4) before anything is written or deleted."""
    settings, env = bproject.settings, bproject.settings.env("production")
    before = bproject.fingerprints("production", ("executions",))
    request = make_request("executions", "365d")
    assert service.plan(settings, env, request).rows > 0
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        service.run(settings, env, request)
    assert refused.value.exit_code == EXIT_REFUSED
    with pytest.raises(RefusedError, match="did not match"):
        service.run(settings, env, request, ask=lambda _: "staging")
    with pytest.raises(RefusedError, match="needs confirmation") as refused:
        restore_archive(settings, env, "latest", "executions")
    assert refused.value.exit_code == EXIT_REFUSED
    assert bproject.fingerprints("production", ("executions",)) == before
    assert not [key for key in bproject.repository_keys() if key.startswith("archives/")]


@pytest.mark.parametrize("server", [14], indirect=True)
def test_db_archive_data_on_seeded_executions_accounts_for_every_row(bproject: BackupProject) -> None:
    no_execution_turns_old_meanwhile(bproject)
    before = bproject.fingerprints("production", ("executions",))
    original = ids(bproject, "production")
    old = count(bproject, "production", "executions", "started_at < now() - interval '365 days'")
    assert old > 100
    asked = ("db-archive-data", "env=production", "table=executions", "older-than=365d")

    refused = bproject.cli("archive", "create", "--env", "production", "--table", "executions", "--older-than", "365d")
    # What would go is shown first; then the refusal, as one error line.
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 4 and len(errors) == 1 and "needs confirmation" in errors[0]
    assert f"{old:,}" in refused.stderr
    dry = bproject.make(*asked, "dry-run=1")
    assert dry.returncode == 0, dry.stderr
    assert f"{old:,}" in dry.stdout and "nothing was written or deleted" in dry.stderr
    assert bproject.fingerprints("production", ("executions",)) == before
    assert not [key for key in bproject.repository_keys() if key.startswith("archives/")]

    done = bproject.make(*asked, "yes=1")
    assert done.returncode == 0, done.stderr
    (archive,) = archive_list(bproject)
    lines = archived_lines(bproject)[archive["name"]]
    remaining = ids(bproject, "production")
    assert archive["rows"] == len(lines) == old and archive["state"] == "deleted"
    assert len(lines) + len(remaining) == len(original)
    assert sorted(first_fields(lines) + remaining) == original  # nothing lost, nothing in both places
    assert count(bproject, "production", "executions", "started_at < now() - interval '365 days'") == 0
    journal = [e for e in read_journal(journal_path(bproject.settings, bproject.settings.env("production")))
               if e["command"] == "archive-data"]
    assert [(e["outcome"], e.get("details", {}).get("exported")) for e in journal] == [
        ("refused", None), ("ok", None), ("ok", old)]

    listing = bproject.make("db-archives", "env=production")
    assert listing.returncode == 0 and archive["name"] in listing.stdout
    assert bproject.make("db-verify-archive", f"archive={archive['name']}").returncode == 0
    back = bproject.make("db-archive-data", "env=production", "restore=1", "archive=latest", "table=executions",
                         "yes=1")
    assert back.returncode == 0, back.stderr
    assert f"{old:,} of its {old:,} rows are back" in back.stdout
    assert bproject.fingerprints("production", ("executions",)) == before


@pytest.mark.parametrize("server", [14], indirect=True)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(bproject: BackupProject) -> None:
    with bproject.connect("production") as conn:
        conn.execute("CREATE TABLE keyless (created_at timestamptz DEFAULT now() - interval '2 years')")
        conn.execute("INSERT INTO keyless DEFAULT VALUES")
    before = bproject.fingerprints("production", ("executions", "recipes", "keyless"))
    create = ("archive", "create", "--env", "production", "--yes")
    cases = [
        ((*create, "--table", "executions", "--older-than", "abc"), "older-than"),
        ((*create, "--table", "executions", "--older-than", "365"), "older-than"),
        ((*create, "--table", "executions", "--older-than", "0d"), "older-than"),
        ((*create, "--table", "executions"), "older-than=365d"),
        ((*create, "--older-than", "365d"), "table=executions"),
        ((*create, "--table", "no_such_table", "--older-than", "365d"), "no table"),
        ((*create, "--table", "executions;drop table users", "--older-than", "365d"), "not a name"),
        ((*create, "--table", "executions", "--older-than", "365d", "--column", "status"), "not a timestamp"),
        ((*create, "--table", "executions", "--older-than", "365d", "--column", "nope"), "no column"),
        ((*create, "--table", "schema_migrations", "--older-than", "365d"), "applied_at"),
        ((*create, "--table", "keyless", "--older-than", "365d"), "no primary key"),
        ((*create, "--table", "executions", "--older-than", "365d", "--batch-size", "0"), "batch"),
        ((*create, "--table", "executions", "--older-than", "365d", "--pause", "1h"), "pause"),
        (("archive", "restore", "--env", "production", "--yes", "--archive", "../../etc"), "bad archive name"),
        (("archive", "restore", "--env", "production", "--yes"), "archive=NAME"),
        (("archive", "verify", "production-archive-20200101T000000Z"), "no archive named"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:  # independent commands: start-up time overlaps
        results = list(pool.map(lambda case: bproject.cli(*case[0]), cases))
    for (argv, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (argv, result.stderr)
        assert expected in one_error_line(result), (argv, result.stderr)
    # recipes is referenced ON DELETE CASCADE: deleting its rows would reach rows no archive holds.
    cascading = bproject.cli(*create, "--table", "recipes", "--older-than", "365d")
    assert cascading.returncode == 4 and "ON DELETE CASCADE" in one_error_line(cascading)
    assert bproject.fingerprints("production", ("executions", "recipes", "keyless")) == before
    assert not [key for key in bproject.repository_keys() if key.startswith("archives/")]


@pytest.mark.parametrize("server", [14], indirect=True)
def test_rows_still_referenced_are_refused_until_their_dependents_are_archived(bproject: BackupProject) -> None:
    with bproject.connect("development") as conn:
        conn.execute("""
            CREATE TABLE parent (id int PRIMARY KEY, created_at timestamptz NOT NULL);
            CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, created_at timestamptz NOT NULL);
            INSERT INTO parent SELECT n, now() - make_interval(days => n * 10 + 5) FROM generate_series(1, 20) AS n;
            INSERT INTO child SELECT n, n * 2, now() - make_interval(days => 200) FROM generate_series(1, 5) AS n""")
    parent = ("archive", "create", "--env", "development", "--table", "parent", "--older-than", "30d")
    refused = bproject.cli(*parent)
    assert refused.returncode == 4 and "4 rows of public.parent" in one_error_line(refused)
    assert "still referenced by public.child" in refused.stderr
    assert count(bproject, "development", "parent") == 20
    assert bproject.cli("archive", "create", "--env", "development", "--table", "child", "--older-than",
                        "30d").returncode == 0
    done = bproject.cli(*parent, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["archives"][0]["deleted"] == 18
    assert ids(bproject, "development", "parent") == [1, 2] and count(bproject, "development", "child") == 0


@pytest.mark.parametrize("server", [14], indirect=True)
def test_rows_changed_after_the_export_are_kept_and_archived_again_never_lost(bproject: BackupProject) -> None:
    settings = bproject.settings
    env = settings.env("production")
    request = make_request("executions", "365d")
    repository = open_repository(settings, env)
    no_execution_turns_old_meanwhile(bproject)
    original = len(ids(bproject, "production"))
    with connect(settings, env, "test export") as conn:
        exported = export(settings, env, conn, repository, request, age_keys.identities(settings, [env]))
    assert exported is not None
    first = exported.manifest.name
    archived = first_fields(archived_lines(bproject)[first])
    edited, vanished, model = archived[0], archived[1], archived[2]
    with bproject.connect("production") as conn:
        # Between the export and the deletion: one archived row edited, one deleted by someone else, one old row
        # arrives (a late import).
        conn.execute("UPDATE executions SET notes = 'edited after the export' WHERE id = %s", [edited])
        conn.execute("DELETE FROM executions WHERE id = %s", [vanished])
        conn.execute("""INSERT INTO executions (recipe_id, kitchen_id, user_id, status, started_at, finished_at)
                        SELECT recipe_id, kitchen_id, user_id, 'succeeded', now() - interval '500 days',
                               now() - interval '500 days' FROM executions WHERE id = %s""", [model])
    report = service.run(settings, env, request, yes=True)
    resumed, fresh = report.archives
    assert (resumed.name, resumed.resumed) == (first, True)
    assert (resumed.deleted, resumed.gone, resumed.kept) == (len(archived) - 2, 1, 1)
    # The edited row (its new version) and the late one are old too: the same run archived them afresh.
    assert (fresh.resumed, fresh.rows, fresh.deleted) == (False, 2, 2)
    assert edited in first_fields(archived_lines(bproject)[fresh.name])
    assert count(bproject, "production", "executions", "started_at < now() - interval '365 days'") == 0
    # Back, newest archive first: the edit wins over the version exported before it.
    for name in (fresh.name, first):
        assert bproject.cli("archive", "restore", "--env", "production", "--archive", name, "--yes").returncode == 0
    # Every row is back, the late one too, and so is the one someone else deleted: its archive held it.
    assert len(ids(bproject, "production")) == original + 1
    with bproject.connect("production") as conn:
        assert conn.execute("SELECT notes FROM executions WHERE id = %s", [edited]).fetchone() == (
            "edited after the export",)
        assert conn.execute("SELECT count(*) FROM executions WHERE id = %s", [vanished]).fetchone() == (1,)


def cutoff_of(project: BackupProject, env: str, name: str) -> datetime:
    """The cutoff an archive's run used, as its manifest records it."""
    settings = project.settings
    (entry,) = [e for e in catalog.trusted_scan(settings, settings.env(env)) if e.name == name]
    assert entry.manifest is not None
    return datetime.fromisoformat(entry.manifest.dump["cutoff"])


def test_a_run_archives_exactly_what_is_older_than_its_own_cutoff_and_the_next_run_what_turned_old_since(
        small: BackupProject) -> None:
    """A run's cutoff is the server's now() at its export snapshot, less the age, and its manifest records it: the
    rows before it go, every other row stays, even one that turns old a moment later; the next run archives that
    one. So right after a successful run a count against a later now() can find an old row (what made
    test_rows_changed_after_the_export_... fail once with `assert 1 == 0`), never one older than the run's cutoff."""
    with small.connect("development") as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, created_at timestamptz NOT NULL)")
        # Three rows long old, and 120 turning one hour old one every half second over the next minute: whenever the
        # run takes its snapshot (within that minute), some are just before its cutoff and the next ones just after.
        conn.execute("""INSERT INTO readings SELECT n, now() - interval '2 hours' FROM generate_series(1001, 1003) AS n;
                        INSERT INTO readings
                        SELECT n, clock_timestamp() - interval '1 hour' + make_interval(secs => n / 2.0)
                        FROM generate_series(1, 120) AS n""")
        dated: dict[int, datetime] = {i: at for i, at in conn.execute("SELECT id, created_at FROM readings")}
    settings = small.settings
    env = settings.env("development")
    request = make_request("readings", "1h")

    (first,) = service.run(settings, env, request).archives
    cutoff = cutoff_of(small, "development", first.name)
    archived = first_fields(archived_lines(small, "development")[first.name])
    remaining = ids(small, "development", "readings")
    assert sorted(archived) == sorted(i for i, at in dated.items() if at < cutoff)
    assert remaining == sorted(i for i, at in dated.items() if at >= cutoff)
    assert {1001, 1002, 1003} <= set(archived) and remaining, (cutoff, dated)
    assert (first.rows, first.deleted, first.kept, first.gone) == (len(archived), len(archived), 0, 0)

    # The row after the cutoff turns old half a second later at most: then the table holds an old row, which the
    # run was right to leave (it was not old at its snapshot), and none older than the run's cutoff.
    old = "created_at < now() - interval '1 hour'"
    assert wait_for(lambda: count(small, "development", "readings", old) or None, seconds=5, interval=0.1)
    assert ids(small, "development", "readings") == remaining

    (second,) = service.run(settings, env, request).archives
    later = cutoff_of(small, "development", second.name)
    again = first_fields(archived_lines(small, "development")[second.name])
    assert later > cutoff
    assert again and sorted(again) == sorted(i for i, at in dated.items() if cutoff <= at < later)
    left = ids(small, "development", "readings")
    assert sorted(archived + again + left) == sorted(dated)  # each row in exactly one place


def test_a_run_deletes_what_its_confirmation_named_however_long_the_confirmation_took(small: BackupProject) -> None:
    """The confirmation names the rows of the plan; the run archives and deletes exactly those (the plan's cutoff),
    not also the rows that turned old while the operator read the question."""
    with small.connect("development") as conn:
        conn.execute("CREATE TABLE meter (id int PRIMARY KEY, created_at timestamptz NOT NULL)")
        conn.execute("""INSERT INTO meter SELECT n, now() - interval '2 hours' FROM generate_series(1001, 1003) AS n;
                        INSERT INTO meter
                        SELECT n, clock_timestamp() - interval '1 hour' + make_interval(secs => n / 4.0)
                        FROM generate_series(1, 40) AS n""")
    settings = small.settings
    env = settings.env("development")
    request = make_request("meter", "1h")
    planned = service.plan(settings, env, request)
    assert planned.rows >= 3
    time.sleep(3)  # the operator reads the question: about twelve more rows turn old meanwhile
    old = "created_at < now() - interval '1 hour'"
    assert count(small, "development", "meter", old) > planned.rows
    (done,) = service.run(settings, env, request, planned=planned, yes=True).archives
    assert (done.rows, done.deleted) == (planned.rows, planned.rows)
    assert cutoff_of(small, "development", done.name) == planned.cutoff
    with small.connect("development") as conn:
        left = conn.execute("SELECT count(*) FROM meter WHERE created_at < %s", [planned.cutoff]).fetchone()
    assert left == (0,)


def doc_commands(section: str) -> str:
    text = (REPO / "docs" / "break-glass.md").read_text()
    part = text.split(f"\n{section}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", part, re.DOTALL)
    assert len(blocks) == 1, f"{section!r} of break-glass.md should hold exactly one bash block"
    return str(blocks[0])


@pytest.mark.skipif(not (shutil.which("age") and shutil.which("zstd")), reason="age and zstd (Debian packages) "
                    "are not installed; .ci/run installs them")
@pytest.mark.parametrize("server", [14], indirect=True)
def test_an_archive_comes_back_by_hand_with_the_break_glass_commands(bproject: BackupProject) -> None:
    before = bproject.fingerprints("production", ("executions",))
    done = bproject.cli("archive", "create", "--env", "production", "--table", "executions", "--older-than", "365d",
                        "--yes", "--json")
    assert done.returncode == 0, done.stderr
    (archive,) = json.loads(done.stdout)["archives"]
    assert bproject.fingerprints("production", ("executions",)) != before
    build = binaries.find(14, bproject.settings.cache_dir)
    environ = {**os.environ, "ARCHIVE": str(bproject.root / "repository" / "archives" / archive["name"]),
               "IDENTITY": str(bproject.keys.identity_file), "PG_BIN": str(build.bindir),
               "PGHOST": "127.0.0.1", "PGPORT": str(bproject.server.port), "PGUSER": "cuisine",
               "PGPASSFILE": str(bproject.server.passfile), "PGDATABASE": bproject.databases["production"]}
    result = subprocess.run(["bash", "-c", doc_commands("## Archives (db-archive-data) by hand")], env=environ,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"INSERT 0 {archive['rows']}" in result.stdout
    assert bproject.fingerprints("production", ("executions",)) == before
