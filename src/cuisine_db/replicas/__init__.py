"""Read replicas: streaming replicas of an environment, their lag, promotion and removal (issue 9).

`create` (pg_basebackup -R with a slot), `lag` (db-replicas and read routing), `promote`, `drop`, and `plans`
(what a person applies to a remote environment). Where reads go is replicas/routing.py.
"""

from cuisine_db.replicas.members import Member, check_name, members

__all__ = ["Member", "check_name", "members"]
