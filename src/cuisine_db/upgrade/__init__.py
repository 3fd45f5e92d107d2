"""db-upgrade: major-version upgrades of a local environment's cluster with pg_upgrade, pre-flighted and reversible.

`request.py` checks what the operator typed, `preflight.py` the go/no-go table, `state.py` the crash-safe state
file under `.cuisine/<env>/upgrade/`, `inplace.py` the run itself (clone, copy, link, swap), its rollback and finish,
`rehearsal.py` the
same run on a restore of the newest full backup; `logical.py` and `logical_cutover.py` the logical method (a new
cluster filled by logical replication, a cutover under maintenance mode, reverse replication for the way back),
`logical_preflight.py` its go/no-go table and `logical_run.py` the run as the operator starts it (a rehearsal first
on a protected environment).
"""

from cuisine_db.upgrade.request import METHODS, UpgradeRequest, validate

__all__ = ["METHODS", "UpgradeRequest", "validate"]
