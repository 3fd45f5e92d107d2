"""make test's scheduling: the modules marked `serial` (their tests build on each other in file order: a cluster
is upgraded, failed over, restored) each run whole, in file order, in one xdist worker, beside the other tests.

xdist's own `--dist loadgroup` would do this from `xdist_group` marks, but xdist 3.8 sets the group by rewriting
`item._nodeid`, which pytest 9.2 no longer reads; the controller never sees marks either. So the serial modules
are named here, checked against their marks at collection (`check`), and a scheduler keeps each one a single
work unit while every other test is a unit of its own."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

SERIAL = frozenset({
    "tests/integration/test_patroni.py",
    "tests/integration/test_patroni_archive.py",
    "tests/integration/test_patroni_restore.py",
    "tests/integration/test_upgrade.py",
    "tests/integration/test_upgrade_archive.py",
    "tests/integration/test_upgrade_logical.py",
    "tests/integration/test_upgrade_logical_archive.py",
    "tests/integration/test_upgrade_logical_window.py",
})


class SerialModules(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """LoadScopeScheduling with a serial module as one scope and every other test as its own; scopes go out
    largest first, so the long serial modules start at once instead of ending the run."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return path if path in SERIAL else nodeid


def check(items: list[pytest.Item], rootpath: str) -> None:
    """A module marked serial and not named in SERIAL would be spread over workers: refuse the run."""
    for item in items:
        if item.get_closest_marker("serial") is None:
            continue
        path = item.nodeid.split("::", 1)[0]
        if path not in SERIAL:
            raise pytest.UsageError(f"{item.nodeid}: marked serial but not in tests/serial_modules.py SERIAL "
                                    f"(run from {rootpath})")
