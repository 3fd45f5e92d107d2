"""Runs the slowest test modules first, so that `make test` (`-n 3 --dist loadfile --no-loadscope-reorder`) does
not end with one long module alone on one worker while the others are idle.

xdist's loadfile hands out whole modules in the order of the collection; this plugin sorts the collection by
module, slowest first, keeping every module's own test order (`serial` modules build on it). How slow a module
is comes from the last run on this machine (pytest's cache, `cuisine/module_seconds`), else from
`tests/module_seconds.json` (a CI run's figures, committed); a module in neither goes after the known ones, in
file order. Every run records its modules' seconds (setup + call + teardown) into the cache for the next one.
The order changes only when the tests run, never what they check.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

COMMITTED = Path(__file__).with_name("module_seconds.json")
CACHE_KEY = "cuisine/module_seconds"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_seconds(config: pytest.Config) -> dict[str, float]:
    """Seconds per module: the last local run's where there was one, the committed figures otherwise."""
    known: dict[str, float] = {}
    if COMMITTED.is_file():
        known.update(json.loads(COMMITTED.read_text(encoding="utf-8")))
    cache = getattr(config, "cache", None)
    if cache is not None:
        known.update(cache.get(CACHE_KEY, {}))
    return known


def slowest_first(nodeids: list[str], seconds: dict[str, float]) -> list[int]:
    """The positions of `nodeids` in run order: modules by known seconds, descending; within a module, as given.
    Modules without a figure keep their relative order after the known ones."""
    first_seen: dict[str, int] = {}
    for index, nodeid in enumerate(nodeids):
        first_seen.setdefault(module_of(nodeid), index)
    return sorted(range(len(nodeids)),
                  key=lambda i: (-seconds.get(module_of(nodeids[i]), -1.0), first_seen[module_of(nodeids[i])], i))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = slowest_first([item.nodeid for item in items], known_seconds(config))
    items[:] = [items[i] for i in order]


class Recorder:
    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(session.config, "cache", None)
        if cache is None or not self.seconds or hasattr(session.config, "workerinput"):
            return  # only the controller (or a run without xdist) records, and only what ran
        merged = {**cache.get(CACHE_KEY, {}), **{name: round(value, 1) for name, value in self.seconds.items()}}
        cache.set(CACHE_KEY, merged)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Recorder(), "cuisine-module-seconds")
