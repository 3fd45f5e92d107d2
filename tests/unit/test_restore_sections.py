"""How a logical restore spreads table data over its parallel pg_restore runs."""

from __future__ import annotations

from cuisine_db.backup.sections import balance, data_sizes, post_data_may_start
from cuisine_db.backup.toc import TocEntry


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
