"""db-analyze and db-remove-unused-indexes on the Cuisine Code schema with deliberate mistakes: a duplicate index,
an unused one, an INVALID one, a foreign key without an index; the indexes behind primary keys, unique and
exclusion constraints, foreign-key lookups and the replica identity are never proposed for removal."""

from __future__ import annotations

import json

import pytest
from conftest import Project
from perf_helpers import error_lines, make, migrated

from cuisine_db.diagnose.index_changes import RemovalPlan, remove_unused
from cuisine_db.errors import EXIT_REFUSED, RefusedError
from cuisine_db.ops.journal import journal_path, read

KEPT = {
    # primary keys
    "users_pkey", "recipes_pkey", "executions_pkey", "kitchens_pkey", "recipe_step_ingredients_pkey",
    # unique constraints and a unique index
    "ingredients_name_key", "transformations_name_key", "users_email_key", "kitchens_user_name_key",
    # foreign keys' lookups
    "recipes_user_id_idx", "executions_recipe_id_idx", "executions_kitchen_id_idx", "executions_user_id_idx",
    "recipe_steps_transformation_id_idx", "recipe_step_ingredients_ingredient_id_idx",
    # exclusion constraint and replica identity (added below)
    "bookings_kitchen_id_during_excl", "bookings_reference_key",
}


@pytest.fixture
def mistakes(project: Project) -> Project:
    migrated(project)
    with project.connect() as conn:
        conn.execute("""
            CREATE EXTENSION IF NOT EXISTS btree_gist;
            INSERT INTO users (id, email, display_name) SELECT g, 'u' || g || '@example.com', 'User ' || g
              FROM generate_series(1, 200) g;
            INSERT INTO recipes (user_id, title) SELECT 1 + g % 200, 'Recipe ' || g FROM generate_series(1, 2000) g;
            CREATE INDEX recipes_user_id_dup ON recipes (user_id);
            CREATE INDEX recipes_title_idx ON recipes (title);
            CREATE TABLE bookings (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kitchen_id bigint NOT NULL REFERENCES kitchens (id),
                reference text NOT NULL UNIQUE,
                during tstzrange NOT NULL,
                EXCLUDE USING gist (kitchen_id WITH =, during WITH &&));
            ALTER TABLE bookings REPLICA IDENTITY USING INDEX bookings_reference_key;
            CREATE TABLE tags (recipe_id bigint REFERENCES recipes (id), tag text);
        """)
        # A unique index whose build fails on duplicates is left INVALID, as in production.
        conn.execute("INSERT INTO tags SELECT 1, 'x' FROM generate_series(1, 2)")
        with pytest.raises(Exception, match="could not create unique index"):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY tags_tag_key ON tags (tag)")
        conn.execute("SELECT * FROM recipes WHERE id = 5")
    return project


def findings(project: Project, *args: str) -> dict[str, dict[str, str]]:
    result = project.cli("analyze", "--json", *args)
    assert result.returncode == 1, result.stderr  # warnings were found
    report = json.loads(result.stdout)
    return {f"{f['check']}:{f['subject']}": f for f in report["findings"]}


def test_duplicate_unused_invalid_and_unindexed_foreign_key_are_found(mistakes: Project) -> None:
    found = findings(mistakes, "--min-days", "0", "--method", "rules")
    assert "same definition as recipes_user_id_idx" in found["duplicate-index:recipes_user_id_dup"]["evidence"]
    assert found["unused-index:recipes_title_idx"]["severity"] == "warning"
    assert found["invalid-index:tags_tag_key"]["severity"] == "error"
    assert found["foreign-key-without-index:tags (recipe_id)"]["fix"] == \
        "make db-create-index env=development table=tags columns=recipe_id"
    unused = {key.split(":")[1] for key in found if key.startswith("unused-index:")}
    assert unused == {"recipes_title_idx"}, unused
    assert not unused & KEPT
    # Fresh statistics are not enough to call an index unused: it is reported, not proposed.
    early = findings(mistakes, "--method", "rules")
    assert early["unused-index:recipes_title_idx"]["severity"] == "info"
    assert "too short" in early["unused-index:recipes_title_idx"]["evidence"]
    one = findings(mistakes, "--table", "tags", "--min-days", "0", "--method", "rules")
    assert {key.split(":")[1] for key in one} <= {"tags_tag_key", "tags (recipe_id)"}


def index_names(project: Project) -> set[str]:
    with project.connect() as conn:
        rows = conn.execute("SELECT indexrelname FROM pg_stat_user_indexes").fetchall()
    return {row[0] for row in rows}


def test_remove_unused_indexes_drops_only_what_is_unused_and_journals_definitions(mistakes: Project) -> None:
    before = index_names(mistakes)
    dry = make(mistakes, "db-remove-unused-indexes", "dry-run=1", "min_days=0")
    assert dry.returncode == 0, dry.stderr
    assert "recipes_title_idx" in dry.stdout and "CREATE INDEX recipes_title_idx ON public.recipes" in dry.stdout
    assert index_names(mistakes) == before
    too_soon = make(mistakes, "db-remove-unused-indexes")
    assert "Error 4" in too_soon.stderr and "too short" in error_lines(too_soon.stderr)[-1]
    assert index_names(mistakes) == before
    refused = make(mistakes, "db-remove-unused-indexes", "env=production", "min_days=0")
    assert "Error 4" in refused.stderr and "yes=1" in error_lines(refused.stderr)[-1]
    assert index_names(mistakes) == before
    done = make(mistakes, "db-remove-unused-indexes", "env=production", "min_days=0", "yes=1")
    assert done.returncode == 0, done.stderr
    assert index_names(mistakes) == before - {"recipes_title_idx"}
    assert index_names(mistakes) >= KEPT
    journal = read(journal_path(mistakes.settings, mistakes.env("production")))
    plan, final = journal[-2], journal[-1]
    assert plan["command"] == "remove-unused-indexes (plan)" and final["outcome"] == "ok"
    assert final["details"]["indexes"] == [{
        "index": "recipes_title_idx", "table": "recipes", "outcome": "dropped",
        "definition": "CREATE INDEX recipes_title_idx ON public.recipes USING btree (title)"}]
    assert plan["details"]["indexes"][0]["definition"] == final["details"]["indexes"][0]["definition"]
    again = make(mistakes, "db-remove-unused-indexes", "min_days=0")
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_the_removal_rules_hold_when_the_service_is_called_directly(mistakes: Project) -> None:
    """diagnose/index_changes.remove_unused owns the rules, not the CLI: too recent statistics and a missing
    confirmation are refused with nothing dropped, and the definitions are journaled before the first DROP."""
    settings, production = mistakes.settings, mistakes.env("production")
    before = index_names(mistakes)
    shown: list[RemovalPlan] = []
    with pytest.raises(RefusedError, match="too short") as refused:
        remove_unused(settings, production, yes=True, show=shown.append)  # the default min_days: 7
    assert shown[0].indexes and not shown[0].long_enough
    assert refused.value.exit_code == EXIT_REFUSED
    assert index_names(mistakes) == before
    with pytest.raises(RefusedError, match="needs confirmation"):
        remove_unused(settings, production, min_days=0)  # protected, no yes, no one to ask
    dry = remove_unused(settings, production, min_days=0, dry_run=True)
    assert dry.done is None and [item.index for item in dry.plan.indexes] == ["recipes_title_idx"]
    assert index_names(mistakes) == before

    seen: list[tuple[dict[str, object], set[str]]] = []

    def notify(line: str) -> None:
        if line.startswith("dropping"):  # the service's last word before its first DROP
            seen.append((read(journal_path(settings, production))[-1], index_names(mistakes)))

    run = remove_unused(settings, production, min_days=0, yes=True, notify=notify)
    done = run.done or []
    [(planned, indexes_then)] = seen
    assert planned["command"] == "remove-unused-indexes (plan)"
    assert planned["details"] == {"indexes": [{
        "index": "recipes_title_idx", "table": "recipes", "reason": run.plan.indexes[0].reason,
        "definition": "CREATE INDEX recipes_title_idx ON public.recipes USING btree (title)"}]}
    assert "recipes_title_idx" in indexes_then
    assert [(item.index, item.outcome) for item in done] == [("recipes_title_idx", "dropped")]
    assert index_names(mistakes) == before - {"recipes_title_idx"}
    outcomes = [line["outcome"] for line in read(journal_path(settings, production))
                if line["command"] == "remove-unused-indexes"]
    assert outcomes == ["refused", "refused", "ok"]


def test_bad_dry_run_value_and_missing_table_are_refused(mistakes: Project) -> None:
    before = index_names(mistakes)
    maybe = make(mistakes, "db-remove-unused-indexes", "dry-run=maybe", "min_days=0")
    assert maybe.returncode == 2 and "give dry-run=1 or dry-run=0" in maybe.stderr
    missing = make(mistakes, "db-analyze-table", "table=nope")
    assert "Error 2" in missing.stderr and error_lines(missing.stderr) == [
        f"error: no table 'nope' in database '{mistakes.database}' (hint: see the tables with: make db-table-sizes)"]
    hostile = make(mistakes, "db-analyze-table", "table=recipes; DROP TABLE users")
    assert "Error 2" in hostile.stderr and "is not a name" in error_lines(hostile.stderr)[0]
    assert index_names(mistakes) == before
