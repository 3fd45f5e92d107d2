"""The suite's order: slowest modules first, every module's own order kept (tests/module_order.py)."""

from __future__ import annotations

from module_order import slowest_first


def test_modules_go_slowest_first_and_keep_their_own_test_order() -> None:
    ids = ["a.py::t1", "b.py::t1", "a.py::t2", "c.py::t1", "b.py::t2", "d.py::t1"]
    order = [ids[i] for i in slowest_first(ids, {"b.py": 300.0, "a.py": 10.0, "c.py": 0.0})]
    assert order == ["b.py::t1", "b.py::t2", "a.py::t1", "a.py::t2", "c.py::t1", "d.py::t1"]


def test_modules_without_a_figure_keep_the_collection_order_after_the_known_ones() -> None:
    ids = ["z.py::t", "y.py::t", "x.py::t"]
    assert [ids[i] for i in slowest_first(ids, {"x.py": 1.0})] == ["x.py::t", "z.py::t", "y.py::t"]
