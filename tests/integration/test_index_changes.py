"""db-create-index builds concurrently with progress and leaves no INVALID index when it fails; bad input changes
nothing; db-vacuum-analyze shows the last runs before and after."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from cli_support import error_lines
from conftest import Project
from perf_helpers import make, migrated

from cuisine_db.diagnose.index_changes import create_index
from cuisine_db.diagnose.vacuum import vacuum_analyze
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops.journal import journal_path, read


@pytest.fixture
def recipes(project: Project) -> Project:
    migrated(project)
    with project.connect() as conn:
        conn.execute("""
            INSERT INTO users (email, display_name) SELECT 'u' || g || '@example.com', 'User ' || g
              FROM generate_series(1, 100) g;
            INSERT INTO recipes (user_id, title) SELECT 1 + g % 100, 'Recipe ' || g FROM generate_series(1, 3000) g;
        """)
    return project


def indexes(project: Project) -> dict[str, bool]:
    with project.connect() as conn:
        rows = conn.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "WHERE i.indrelid = 'recipes'::regclass").fetchall()
    return {name: valid for name, valid in rows}


def test_a_build_that_times_out_waiting_leaves_nothing_behind(recipes: Project) -> None:
    before = indexes(recipes)
    writer = recipes.connect()
    # An open transaction that wrote to the table: CREATE INDEX CONCURRENTLY waits for it after it has already
    # put the (not yet valid) index in the catalog; it ends a few seconds after the build gave up.
    writer.autocommit = False
    writer.execute("UPDATE recipes SET title = title WHERE id = 1")
    ending = threading.Timer(4.0, writer.rollback)
    ending.start()
    lines: list[str] = []
    try:
        with pytest.raises(FailedError, match="lock_timeout=1s") as failure:
            create_index(recipes.settings, recipes.env(), "recipes", "title", lock_timeout="1s", notify=lines.append)
    finally:
        ending.join()
        writer.close()
    assert "nothing was left behind" in failure.value.message
    assert indexes(recipes) == before
    assert lines[0].startswith("building recipes_title_idx on recipes (title) concurrently")
    assert any("to drop the INVALID recipes_title_idx" in line for line in lines)
    # While the blocker stays, the build fails and says how to drop what it could not.
    stuck = recipes.connect()
    stuck.autocommit = False
    stuck.execute("UPDATE recipes SET title = title WHERE id = 1")
    try:
        with pytest.raises(FailedError, match=r'run DROP INDEX CONCURRENTLY "public"\."recipes_title_idx"'):
            create_index(recipes.settings, recipes.env(), "recipes", "title", lock_timeout="1s", cleanup_seconds=1)
    finally:
        stuck.rollback()
        stuck.close()
    assert indexes(recipes) == {**before, "recipes_title_idx": False}
    refused = make(recipes, "db-create-index", "table=recipes", "columns=title")
    assert "Error 4" in refused.stderr and "INVALID index 'recipes_title_idx' already exists" in refused.stderr


def test_create_index_through_make_with_progress_and_the_journal(recipes: Project) -> None:
    built = make(recipes, "db-create-index", "table=recipes", "columns=user_id, created_at", "timeout=10min")
    assert built.returncode == 0, built.stderr
    assert "created recipes_user_id_created_at_idx on recipes (user_id, created_at)" in built.stderr
    assert "CREATE INDEX recipes_user_id_created_at_idx ON public.recipes USING btree (user_id, created_at)" \
        in built.stdout
    assert indexes(recipes)["recipes_user_id_created_at_idx"] is True
    [entry] = [e for e in read(journal_path(recipes.settings, recipes.env())) if e["command"] == "create-index"]
    assert entry["outcome"] == "ok" and entry["details"]["index"] == "recipes_user_id_created_at_idx"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"table": "recipes", "columns": "nope"}, "recipes has no column nope"),
    ({"table": "missing", "columns": "id"}, "no table 'missing'"),
    ({"table": "recipes; DROP TABLE users", "columns": "id"}, "is not a name"),
    ({"table": "recipes", "columns": "title,title"}, "names a column twice"),
    ({"table": "recipes", "columns": "title", "lock_timeout": "soon"}, "lock timeout 'soon'"),
    ({"table": "recipes", "columns": ""}, "no columns given"),
    ({"table": "recipes", "columns": "title", "name": "x" * 64}, "longer than 63 bytes"),
]


def test_bad_input_is_refused_and_builds_nothing(recipes: Project) -> None:
    before = indexes(recipes)
    for arguments, expected in BAD:
        with pytest.raises(UsageError, match=re.escape(expected)) as caught:
            create_index(recipes.settings, recipes.env(), **arguments)
        assert caught.value.exit_code == 2
    for words, expected in [(["table=recipes; DROP TABLE users", "columns=id"], "is not a name"),
                            (["table=recipes", "columns=title", "timeout=forever"], "is not a duration")]:
        result = make(recipes, "db-create-index", *words)
        lines = error_lines(result.stderr)
        assert "Error 2" in result.stderr and len(lines) == 1 and expected in lines[0], result.stderr
    assert indexes(recipes) == before


def test_vacuum_analyze_reports_before_and_after(recipes: Project) -> None:
    with recipes.connect() as conn:
        conn.execute("DELETE FROM recipes WHERE id <= 500")
    [upkeep] = vacuum_analyze(recipes.settings, recipes.env(), "recipes")
    assert upkeep.after.vacuums > upkeep.before.vacuums and upkeep.after.analyzes > upkeep.before.analyzes
    assert upkeep.after.latest("vacuum")[1] == "manual" and upkeep.after.dead_rows == 0
    assert upkeep.after.live_rows == 2500
    shown = make(recipes, "db-vacuum-analyze", "table=recipes,users")
    assert shown.returncode == 0, shown.stderr
    assert "s ago (manual)" in shown.stdout and "before" in shown.stdout and "after" in shown.stdout
    missing = make(recipes, "db-vacuum-analyze", "table=recipes,nope")
    assert "Error 2" in missing.stderr and "no table 'nope'" in error_lines(missing.stderr)[0]


def test_the_services_journal_an_index_build_and_a_vacuum_whoever_calls_them(recipes: Project) -> None:
    """diagnose/index_changes.create_index and diagnose/vacuum.vacuum_analyze write their commands' journal lines
    (the timeout as typed, what was built, each table's seconds), not only when the CLI calls them."""
    build = create_index(recipes.settings, recipes.env(), "recipes", "title", timeout="10min")
    [upkeep] = vacuum_analyze(recipes.settings, recipes.env(), "recipes")
    lines = read(journal_path(recipes.settings, recipes.env()))
    assert [(line["command"], line["outcome"]) for line in lines] == [("create-index", "ok"), ("vacuum-analyze", "ok")]
    created, vacuumed = lines
    assert created["arguments"] == {"table": "recipes", "columns": "title", "name": None, "lock_timeout": None,
                                    "timeout": "10min"}
    assert created["details"]["index"] == build.index and created["details"]["definition"] == build.definition
    assert vacuumed["arguments"] == {"table": "recipes"}
    assert vacuumed["details"]["seconds"] == {"recipes": upkeep.seconds}
    with pytest.raises(UsageError, match="is not a duration"):
        create_index(recipes.settings, recipes.env(), "recipes", "title", timeout="forever")
    assert len(read(journal_path(recipes.settings, recipes.env()))) == 2  # bad input is refused before the journal
