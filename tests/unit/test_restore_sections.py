"""How a logical restore spreads table data over its parallel pg_restore runs."""

from __future__ import annotations

from cuisine_db.backup.restore_load import post_data_split
from cuisine_db.backup.sections import balance, data_sizes, post_data_may_start
from cuisine_db.backup.toc import TocEntry, closure, dependencies


def test_the_largest_item_starts_at_once_and_the_rest_fill_the_least_loaded_run() -> None:
    sizes = [(10, 2702), (700, 2717), (300, 2712), (200, 2713), (150, 2710), (0, 2733)]
    lists = balance(sizes, 2)
    assert lists == [[2717], [2712, 2713, 2710, 2702, 2733]]
    assert sorted(dump_id for items in lists for dump_id in items) == sorted(dump_id for _, dump_id in sizes)
    # Equal sizes go in dump id order; one run takes everything; fewer items than runs leaves no empty list.
    assert balance([(5, 9), (5, 3), (5, 7)], 1) == [[3, 7, 9]]
    assert balance([(5, 9)], 4) == [[9]]
    assert balance([], 2) == []


def test_each_data_item_is_sized_by_its_file_and_large_objects_share_theirs() -> None:
    entries = [TocEntry(2717, "TABLE DATA", "public", "executions", "cuisine"),
               TocEntry(2733, "SEQUENCE SET", "public", "executions_id_seq", "cuisine"),
               TocEntry(2740, "BLOBS", None, "BLOBS", "cuisine"),
               TocEntry(2741, "BLOBS", None, "BLOBS", "cuisine")]
    files = {"2717.dat": 1_000, "toc.dat": 50, "blobs_2740.toc": 10, "blob_16500.dat": 300, "blob_16501.dat": 90}
    assert data_sizes(entries, files) == [(1_000, 2717), (0, 2733), (200, 2740), (200, 2741)]


def test_post_data_starts_early_only_beside_a_table_whose_copy_has_begun() -> None:
    lists = {"data-0": [2717], "data-1": [2712, 2710, 2733]}
    loading = {2717}.__contains__
    assert post_data_may_start(lists, {"data-0": 0, "data-1": 0}, loading)
    assert post_data_may_start(lists, {"data-0": None, "data-1": 0}, loading)
    # Not while two runs still load, beside a table not begun, beside a run of several tables, nor after a failure.
    assert not post_data_may_start(lists, {"data-0": None, "data-1": None}, loading)
    assert not post_data_may_start(lists, {"data-0": None, "data-1": 0}, lambda _: False)
    assert not post_data_may_start(lists, {"data-0": 0, "data-1": None}, lambda _: True)
    assert not post_data_may_start(lists, {"data-0": None, "data-1": 1}, loading)
    assert post_data_may_start({}, {}, loading)  # a schema-only backup has no data runs


HEADERS = """--
-- TOC entry 20 (class 2606 OID 16640)
-- Dependencies: 1
-- Name: a a_pkey; Type: CONSTRAINT; Schema: public; Owner: cuisine
--

ALTER TABLE ONLY public.a ADD CONSTRAINT a_pkey PRIMARY KEY (id);

--
-- TOC entry 5 (class 1259 OID 16400)
-- Name: b; Type: TABLE; Schema: public; Owner: cuisine
--
"""


def test_pg_restore_verbose_headers_give_each_entrys_type_and_dependencies() -> None:
    assert dependencies(HEADERS) == {20: ("CONSTRAINT", frozenset({1})), 5: ("TABLE", frozenset())}
    graph = {30: ("MATERIALIZED VIEW DATA", frozenset({3})), 3: ("MATERIALIZED VIEW", frozenset({1, 2})),
             1: ("TABLE", frozenset()), 2: ("TABLE", frozenset())}
    assert closure(graph, 30) == {1, 2, 3} and closure(graph, 1) == set()


def test_while_a_table_loads_only_post_data_that_does_not_depend_on_it_runs_and_what_the_rest_needs_goes_first(
) -> None:
    def entry(dump_id: int, kind: str, name: str) -> TocEntry:
        return TocEntry(dump_id, kind, "public", name, "cuisine")

    # Tables a (1, loading, data 10) and b (2, data 11); a materialized view (3) reading a.
    entries = [entry(1, "TABLE", "a"), entry(2, "TABLE", "b"), entry(3, "MATERIALIZED VIEW", "m"),
               entry(10, "TABLE DATA", "a"), entry(11, "TABLE DATA", "b")]
    post_data = [entry(20, "CONSTRAINT", "a a_pkey"), entry(21, "CONSTRAINT", "b b_pkey"),
                 entry(22, "FK CONSTRAINT", "a a_b_fkey"), entry(23, "INDEX", "b_idx"),
                 entry(24, "FK CONSTRAINT", "b b_a_fkey"), entry(25, "COMMENT", "INDEX a_idx"),
                 entry(26, "INDEX", "a_idx"), entry(30, "MATERIALIZED VIEW DATA", "m"),
                 entry(31, "TRIGGER", "b b_audit")]
    schema = {1: ("TABLE", frozenset()), 2: ("TABLE", frozenset()), 3: ("MATERIALIZED VIEW", frozenset({1})),
              20: ("CONSTRAINT", frozenset({1})), 21: ("CONSTRAINT", frozenset({2})),
              22: ("FK CONSTRAINT", frozenset({1, 2, 21})),  # a references b: needs b's primary key
              23: ("INDEX", frozenset({2})), 24: ("FK CONSTRAINT", frozenset({2, 1, 20})),  # b references a
              25: ("COMMENT", frozenset({26})), 26: ("INDEX", frozenset({1})), 30: ("MATERIALIZED VIEW DATA",
                                                                                     frozenset({3}))}
    plan = post_data_split(schema, entries, post_data)(10)
    # b's own entries run beside a's COPY; a's, the key referencing a, the comment on a's index, the view's
    # data and an entry the headers did not describe wait; b's primary key, which a's foreign key needs, first.
    assert plan.first == [21, 23] and plan.needed == {21}
    assert plan.later == [20, 22, 24, 25, 26, 30, 31]
    other = post_data_split(schema, entries, post_data)(11)
    assert other.first == [20, 25, 26] and other.needed == {20} and other.later == [21, 22, 23, 24, 30, 31]
