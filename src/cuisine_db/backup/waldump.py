"""Reading `pg_waldump` output into destructive transactions: DROP, TRUNCATE, and large DELETE or UPDATE bursts.

What the WAL shows at wal_level = replica: a committed transaction's record lists the relation files it removes
(`rels: base/16384/16422`); a TRUNCATE also creates a new file for the table in the same transaction (`Storage
CREATE`), a DROP does not; each deleted or updated row is a `Heap DELETE` / `UPDATE` / `HOT_UPDATE` record naming
its relation file. Rewrites that keep the rows (VACUUM FULL, CLUSTER, ALTER TABLE ... TYPE) also swap files,
but write the rows into the new one in the same transaction: those are not reported. Pure parsing, no I/O.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

FIRST_USER_OID = 16384
_RECORD = re.compile(r"rmgr: (?P<rmgr>\w+)\s+len.*?tx:\s*(?P<xid>\d+), lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+),.*?"
                     r"desc: (?P<desc>.*)$")
_REL = re.compile(r"rel (\d+)/(\d+)/(\d+)")
_COMMIT = re.compile(r"^(?P<kind>COMMIT|ABORT) (?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (?P<zone>[^;\s]+)")
_FILE = re.compile(r"(?:base/(?P<db>\d+)/(?P<node>\d+))|(?:global/(?P<gnode>\d+))|"
                   r"(?:pg_tblspc/(?P<spc>\d+)/[^/\s;]+/(?P<tdb>\d+)/(?P<tnode>\d+))")
_DATABASE_DROP = re.compile(r"^DROP dir (?P<spc>\d+)/(?P<db>\d+)")
_CHANGES = {"DELETE": "delete", "UPDATE": "update", "HOT_UPDATE": "update"}
_WRITES = {"INSERT", "MULTI_INSERT", "FPI", "FPI_FOR_HINT", "NEWPAGE"}


def file_key(spc: str, db: str, node: str) -> str:
    return f"{spc}/{db}/{node}"


def rels_in(desc: str) -> list[str]:
    """The relation files a commit record removes, as tablespace/database/filenode keys."""
    found = re.search(r"rels: ([^;]*)", desc)
    if found is None:
        return []
    keys = []
    for match in _FILE.finditer(found.group(1)):
        if match["node"]:
            keys.append(file_key("1663", match["db"], match["node"]))
        elif match["gnode"]:
            keys.append(file_key("1664", "0", match["gnode"]))
        else:
            keys.append(file_key(match["spc"], match["tdb"], match["tnode"]))
    return keys


def subxacts_in(desc: str) -> list[str]:
    found = re.search(r"subxacts: ([\d ]+)", desc)
    return found.group(1).split() if found else []


@dataclass
class _Transaction:
    created: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    rows: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    dropped_databases: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Event:
    """One destructive committed transaction."""

    kind: str            # DROP, TRUNCATE, DELETE, UPDATE, DROP DATABASE
    xid: str
    lsn: str             # of its commit record: stop just before it with lsn=... inclusive=0
    committed_at: datetime
    files: tuple[str, ...]           # the relation files it removed (DROP, TRUNCATE) or changed (DELETE, UPDATE)
    rows: int = 0
    created: tuple[str, ...] = ()    # the files a TRUNCATE gave the tables instead (the live catalog names them)


class Reader:
    """Feed it pg_waldump's lines in order; `events(min_rows)` gives what it found."""

    def __init__(self) -> None:
        self.open: dict[str, _Transaction] = defaultdict(_Transaction)
        self.found: list[tuple[str, str, datetime, _Transaction, list[str]]] = []

    def feed(self, line: str) -> None:
        match = _RECORD.search(line)
        if match is None:
            return
        rmgr, xid, desc = match["rmgr"], match["xid"], match["desc"]
        if rmgr == "Transaction":
            self._end(xid, match["lsn"], desc)
            return
        if xid == "0":
            return
        work = self.open[xid]
        verb = desc.split(" ", 1)[0].rstrip(":").split("+")[0]
        if rmgr == "Storage" and verb == "CREATE":
            found = _FILE.search(desc)
            if found and found["node"]:
                work.created.add(file_key("1663", found["db"], found["node"]))
            elif found and found["tnode"]:
                work.created.add(file_key(found["spc"], found["tdb"], found["tnode"]))
        elif rmgr == "Database":
            dropped = _DATABASE_DROP.search(desc)
            if dropped:
                work.dropped_databases.append(dropped["db"])
        elif rmgr in ("Heap", "Heap2", "XLOG"):
            relation = _REL.search(desc)
            if relation is None:
                return
            key = file_key(*relation.groups())
            if rmgr == "Heap" and verb in _CHANGES:
                work.rows[(_CHANGES[verb], key)] += 1
            elif verb in _WRITES:
                work.written.add(key)

    def _end(self, xid: str, lsn: str, desc: str) -> None:
        ending = _COMMIT.match(desc)
        if ending is None:
            return
        merged = self.open.pop(xid, _Transaction())
        for sub in subxacts_in(desc):
            part = self.open.pop(sub, None)
            if part is not None:
                merged.created |= part.created
                merged.written |= part.written
                merged.dropped_databases += part.dropped_databases
                for key, count in part.rows.items():
                    merged.rows[key] += count
        if ending["kind"] == "ABORT":
            return
        moment = datetime.fromisoformat(f"{ending['time']}+00:00" if ending["zone"] == "UTC"
                                        else ending["time"])
        self.found.append((xid, lsn, moment, merged, rels_in(desc)))

    def events(self, min_rows: int = 1000) -> list[Event]:
        events = []
        for xid, lsn, moment, work, dropped in self.found:
            user = [key for key in dropped if int(key.rsplit("/", 1)[1]) >= FIRST_USER_OID]
            truncated = user and work.created - work.written and not (work.created & work.written)
            if work.dropped_databases:
                events.append(Event("DROP DATABASE", xid, lsn, moment, tuple(work.dropped_databases)))
            if user and truncated:
                events.append(Event("TRUNCATE", xid, lsn, moment, tuple(user), created=tuple(sorted(work.created))))
            elif user and not work.created:
                events.append(Event("DROP", xid, lsn, moment, tuple(user)))
            for (kind, key), count in sorted(work.rows.items()):
                if count >= min_rows and int(key.rsplit("/", 1)[1]) >= FIRST_USER_OID:
                    events.append(Event(kind.upper(), xid, lsn, moment, (key,), count))
        return events


def read(lines: Iterable[str], min_rows: int = 1000) -> list[Event]:
    reader = Reader()
    for line in lines:
        reader.feed(line)
    return reader.events(min_rows)
