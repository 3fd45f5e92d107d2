"""Which relation damage is blamed on, and the repair printed for it: pg_amcheck's report, file paths in error
messages, and the folding rules, on a made-up catalog."""

from __future__ import annotations

import pytest

from cuisine_db import sql
from cuisine_db.errors import UsageError
from cuisine_db.ops.integrity import planners  # noqa: F401 - registers the integrity SQL variants
from cuisine_db.ops.integrity.catalog import Catalog, Relation, parse_table_names
from cuisine_db.ops.integrity.corruption import parse_pg_amcheck
from cuisine_db.ops.integrity.damage import assess, attribute, findings, repair_plan
from cuisine_db.ops.integrity.tasks import Evidence


def rel(oid: int, schema: str, name: str, kind: str, table_oid: int, table: str, am: str = "heap",
        path: str | None = None) -> Relation:
    table_schema, _, table_name = table.rpartition(".")
    return Relation(oid=oid, schema=schema, name=name, display=f"{schema}.{name}", kind=kind, access_method=am,
                    persistence="p", populated=True, valid=True, ready=True, filepath=path or f"base/5/{oid}",
                    pages=10, table_oid=table_oid, table_schema=table_schema, table_name=table_name,
                    table_arg=table_name if table_schema == "public" else table)


CATALOG = Catalog([
    rel(100, "public", "recipes", "r", 100, "public.recipes"),
    rel(101, "public", "recipes_pkey", "i", 100, "public.recipes", "btree"),
    rel(102, "pg_toast", "pg_toast_100", "t", 100, "public.recipes"),
    rel(103, "pg_toast", "pg_toast_100_index", "i", 100, "public.recipes", "btree"),
    rel(104, "public", "recipes_tags_idx", "i", 100, "public.recipes", "gin"),
    rel(200, "sales", "orders", "r", 200, "sales.orders"),
    rel(201, "sales", "orders_pkey", "i", 200, "sales.orders", "btree"),
    rel(300, "pg_catalog", "pg_class", "r", 300, "pg_catalog.pg_class"),
    rel(301, "pg_catalog", "pg_class_oid_index", "i", 300, "pg_catalog.pg_class", "btree", "global/301"),
])


def ev(oid: int, message: str, source: str = "verify_heapam") -> Evidence:
    return Evidence(CATALOG.by_oid[oid], message, source)


def test_a_file_path_in_the_message_names_the_relation_and_fork() -> None:
    assert CATALOG.named_in("invalid page in block 5 of relation base/5/100") == (CATALOG.by_oid[100], "main")
    assert CATALOG.named_in("invalid page in block 0 of relation base/5/100_fsm") == (CATALOG.by_oid[100], "fsm")
    assert CATALOG.named_in('could not read block 9 in file "base/5/201.2": read only 0 of 8192 bytes') == \
        (CATALOG.by_oid[201], "main")
    assert CATALOG.named_in("invalid page in block 1 of relation global/301") == (CATALOG.by_oid[301], "main")
    assert CATALOG.named_in("invalid page in block 1 of relation base/5/1000") is None  # not ours: no guess
    assert CATALOG.named_in("heap tuple (1,2) lacks matching index tuple") is None


def test_a_heap_error_seen_by_an_index_check_blames_the_table_and_restores_it() -> None:
    damaged = assess(CATALOG, [ev(101, "invalid page in block 5 of relation base/5/100", "bt_index_check"),
                               ev(100, "invalid page in block 5 of relation base/5/100")], "production")
    assert [(d.relation, d.kind) for d in damaged] == [("public.recipes", "table")]
    assert damaged[0].repair == "make db-restore-tables env=production backup=latest tables=recipes"
    # The table's own check speaks first.
    assert damaged[0].evidence[0].startswith("verify_heapam:")


def test_only_a_relations_own_check_convicts_it() -> None:
    # A damaged index sent a foreign-key query to a heap block that does not exist: the table's own check found
    # nothing, so the table is not damaged; the error is reported on its own.
    fk_error = 'could not open file "base/5/100.1" (target block 299286105): previous segment is only 59 blocks'
    damaged, stray = attribute(CATALOG, [ev(201, "item order invariant violated", "bt_index_check"),
                                         ev(200, fk_error, "foreign key check")], "prod")
    assert [d.relation for d in damaged] == ["sales.orders_pkey"]
    assert [(f.check, f.subject) for f in stray] == [("read error", "public.recipes")]
    assert "foreign key check on sales.orders" in stray[0].evidence
    # A query that only passes through the table (its own foreign key check) does not convict it either.
    damaged, stray = attribute(CATALOG, [ev(100, fk_error, "foreign key check")], "prod")
    assert damaged == [] and [f.subject for f in stray] == ["public.recipes"]
    # Once the table's own check saw damage too, what the other query saw joins its evidence.
    damaged, stray = attribute(CATALOG, [ev(100, "block 3: lp_off out of range"), ev(200, fk_error, "fk")], "prod")
    assert [(d.relation, len(d.evidence)) for d in damaged] == [("public.recipes", 2)] and stray == []


def test_toast_damage_is_repaired_through_its_table_and_index_errors_fold_into_it() -> None:
    damaged = assess(CATALOG, [ev(102, "block 3, offset 2: chunk sequence 7 expected 6"),
                               ev(103, "heap tuple (3,2) lacks matching index tuple", "bt_index_check")], "staging")
    assert [(d.relation, d.kind, d.table) for d in damaged] == [("public.recipes", "table", "recipes")]
    assert len(damaged[0].evidence) == 2


def test_an_index_alone_is_rebuilt_concurrently() -> None:
    damaged = assess(CATALOG, [ev(201, "item order invariant violated", "bt_index_check"),
                               ev(104, "invalid page in block 2 of relation base/5/104", "page read (main)")], "prod")
    assert {d.relation: d.repair for d in damaged} == {
        "public.recipes_tags_idx": "cuisine-db psql --env prod -c 'REINDEX INDEX CONCURRENTLY public.recipes_tags_idx'",
        "sales.orders_pkey": "cuisine-db psql --env prod -c 'REINDEX INDEX CONCURRENTLY sales.orders_pkey'",
    }


def test_map_damage_is_vacuumed_and_catalog_damage_needs_a_full_restore() -> None:
    maps = assess(CATALOG, [ev(100, "invalid page in block 0 of relation base/5/100_vm", "page read (vm)")], "e")
    assert maps[0].kind == "free space or visibility map"
    assert maps[0].repair == "cuisine-db psql --env e -c 'VACUUM FULL public.recipes'"
    catalog = assess(CATALOG, [ev(300, "invalid page in block 1 of relation base/5/300"),
                               ev(200, "invalid page in block 0 of relation base/5/200")], "e")
    assert [d.kind for d in catalog] == ["system catalog", "table"]
    assert repair_plan(catalog, "e") == ["make db-restore env=e backup=latest"]
    index = assess(CATALOG, [ev(301, "index corrupted", "bt_index_check")], "e")
    assert index[0].repair == "cuisine-db psql --env e -c 'REINDEX INDEX pg_catalog.pg_class_oid_index'"


def test_the_repair_plan_restores_every_table_at_once_then_rebuilds_indexes() -> None:
    damaged = assess(CATALOG, [ev(100, "block 1: bad"), ev(102, "block 2: bad"), ev(201, "bad", "bt_index_check"),
                               ev(104, "invalid page in block 2 of relation base/5/104", "page read (main)")], "prod")
    # The GIN index belongs to a damaged table: restoring the table rebuilds it, so it is not listed apart.
    assert repair_plan(damaged, "prod") == [
        "make db-restore-tables env=prod backup=latest tables=recipes",
        "cuisine-db psql --env prod -c 'REINDEX INDEX CONCURRENTLY sales.orders_pkey'",
        "make db-verify-tables env=prod tables=recipes,sales.orders",
    ]
    assert all(f.severity == "critical" and f.check.startswith("damaged ") for f in findings(damaged))


def test_pg_amcheck_reports_become_evidence() -> None:
    output = (
        'heap table "cuisine.public.recipes", block 5, offset 3:\n'
        "    xmin 4294967295 equals or exceeds next valid transaction ID 0:741\n"
        'heap table "cuisine.pg_toast.pg_toast_100":\n'
        "    ERROR:  invalid page in block 0 of relation base/5/102\n"
        'btree index "cuisine.sales.orders_pkey":\n'
        "    ERROR:  item order invariant violated for index \"orders_pkey\"\n"
        "    DETAIL:  Lower index tid=(1,2) (points to heap tid=(0,3)) higher index tid=(1,3)\n"
        'btree index "cuisine.public.gone_idx":\n'
        "    ERROR:  could not open relation with OID 999\n"
    )
    evidence, unknown = parse_pg_amcheck(output, "cuisine", CATALOG)
    assert [(item.checked.display, item.message) for item in evidence] == [
        ("public.recipes", "block 5, offset 3: xmin 4294967295 equals or exceeds next valid transaction ID 0:741"),
        ("pg_toast.pg_toast_100", "invalid page in block 0 of relation base/5/102"),
        ("sales.orders_pkey", 'item order invariant violated for index "orders_pkey" DETAIL:  Lower index tid=(1,2) '
                              "(points to heap tid=(0,3)) higher index tid=(1,3)"),
    ]
    assert unknown == ["btree index cuisine.public.gone_idx: could not open relation with OID 999"]
    assert [d.relation for d in assess(CATALOG, evidence, "x")] == ["public.recipes", "sales.orders_pkey"]


@pytest.mark.parametrize("text", ["", " , ", "users;drop", "users drop", "a.b.c", "../x", "'users'", '"Users"',
                                  "1users"])
def test_table_names_are_plain_identifiers(text: str) -> None:
    with pytest.raises(UsageError):
        parse_table_names(text)


def test_table_names_keep_their_order_without_repeats() -> None:
    assert parse_table_names(" users, sales.orders,users ,recipes") == ["users", "sales.orders", "recipes"]


def test_collation_drift_is_read_from_the_database_too_from_postgresql_15() -> None:
    before = sql.for_server("integrity/collation_drift", 140011).as_string()
    assert "datcollversion" not in before and "pg_database_collation_actual_version" not in before
    for version in (150004, 180001):
        text = sql.for_server("integrity/collation_drift", version).as_string()
        assert "d.datcollversion IS DISTINCT FROM pg_database_collation_actual_version(d.oid)" in text
