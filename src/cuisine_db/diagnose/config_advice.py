"""db-recommend-config: the runbook's tuning rules, PGTune's formulas, and evidence from the live server
(temporary files, requested checkpoints, autovacuum lag), as a diff against the current values.

The rules are a pure function of `ServerFacts`, so they are tested without a server; `gather()` reads
the facts. PGTune (le0pard/pgtune) is the reference for the formulas, for a "web application" workload.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from cuisine_db import sql as queries
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import UsageError
from cuisine_db.postgres import cluster_for
from cuisine_db.postgres.server_settings import MEMORY_UNITS, Setting, validate

KB, MB, GB = MEMORY_UNITS["kB"], MEMORY_UNITS["MB"], MEMORY_UNITS["GB"]
TUNED = ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem", "random_page_cost",
         "effective_io_concurrency", "max_wal_size", "min_wal_size", "checkpoint_completion_target",
         "default_statistics_target", "max_connections", "max_worker_processes", "max_parallel_workers",
         "max_parallel_workers_per_gather", "max_parallel_maintenance_workers", "autovacuum_vacuum_cost_limit",
         "autovacuum_vacuum_scale_factor", "autovacuum_max_workers", "vacuum_cost_limit")


def memory_bytes(setting: Setting) -> int | None:
    """A memory parameter's value in bytes ('16384' with unit '8kB' -> 134217728); None if not memory or -1."""
    if setting.setting is None or setting.unit is None or setting.setting == "-1":
        return None
    count = "".join(ch for ch in setting.unit if ch.isdigit()) or "1"
    unit = setting.unit.lstrip("0123456789")
    if unit not in MEMORY_UNITS:
        return None
    return int(float(setting.setting) * int(count) * MEMORY_UNITS[unit])


def size_text(value: int) -> str:
    """Bytes as a value PostgreSQL accepts, rounded down to whole MB (or GB when exact): '6GB', '1536MB'."""
    mb = max(value // MB, 1)
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def parse_size(text: str) -> int:
    """'16GB', '512MB', '1.5TB' -> bytes (for ram=)."""
    cleaned = text.strip().upper().replace(" ", "")
    for suffix, factor in (("TB", MEMORY_UNITS["TB"]), ("GB", GB), ("MB", MB), ("KB", KB)):
        if cleaned.endswith(suffix):
            try:
                number = float(cleaned[: -len(suffix)])
            except ValueError:
                break
            if number > 0:
                return int(number * factor)
    raise UsageError(f"ram={text!r} is not a memory size", hint="e.g. ram=16GB or ram=512MB")


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What the recommendation rules look at."""

    ram_bytes: int
    ram_source: str
    cpus: int | None
    disk: str
    disk_source: str
    settings: dict[str, Setting]
    temp_files: int = 0
    temp_bytes: int = 0
    stats_since: datetime | None = None
    checkpoints_timed: int = 0
    checkpoints_requested: int = 0
    lagging_tables: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConfigRecommendation:
    name: str
    current: str
    recommended: str
    reasons: list[str]
    needs_restart: bool
    differs: bool
    command: str


@dataclass(frozen=True, slots=True)
class ConfigAdvice:
    env: str
    ram: str
    cpus: int | None
    disk: str
    assumptions: list[str]
    recommendations: list[ConfigRecommendation]

    @property
    def changes(self) -> list[ConfigRecommendation]:
        return [r for r in self.recommendations if r.differs]


# --- the rules --------------------------------------------------------------------------------------------
def _close(a: float, b: float, tolerance: float = 0.05) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-9)


def _rules(facts: ServerFacts) -> list[tuple[str, str, list[str]]]:
    """(parameter, recommended value, reasons) in the order an operator would apply them."""
    ram, ssd = facts.ram_bytes, facts.disk == "ssd"
    settings = facts.settings
    shared = ram // 4
    out: list[tuple[str, str, list[str]]] = [
        ("shared_buffers", size_text(shared), ["runbook and PGTune: 25% of RAM"]),
        ("effective_cache_size", size_text(ram * 3 // 4), ["runbook and PGTune: 75% of RAM"]),
    ]
    # work_mem: the runbook asks for 32-64 MB; temporary files are the evidence that more is needed. A guard keeps
    # one work_mem per connection within half the memory left after shared_buffers (PGTune's own formula, three
    # sorts per connection and parallel worker, is stricter still, and is shown for reference).
    connections = int(settings["max_connections"].setting or 100)
    gather = int(settings["max_parallel_workers_per_gather"].setting or 2) \
        if "max_parallel_workers_per_gather" in settings else 2
    left = ram - shared
    guard = left // (2 * connections)
    pgtune = left // (connections * 3) // max(gather, 1)
    current_work = memory_bytes(settings["work_mem"]) or 4 * MB
    spilled = facts.temp_files > 0
    target = 64 * MB if spilled else (current_work if 32 * MB <= current_work <= 64 * MB else 32 * MB)
    reasons = [f"runbook: 32-64 MB per connection (PGTune would say {size_text(pgtune)})"]
    if spilled:
        reasons.append(f"evidence: {facts.temp_files:,} temporary files ({size_text(facts.temp_bytes)}) written "
                       "by queries that ran out of work_mem")
    if target > guard:
        target = max(guard, 64 * KB)
        reasons.append(f"held at {size_text(target)} so that {connections} connections x work_mem stay within half "
                       "the memory left after shared_buffers (fewer connections, e.g. through a pooler, allow more)")
    out.append(("work_mem", size_text(target) if target >= MB else f"{target // KB}kB", reasons))
    maintenance = max(256 * MB, min(ram // 16, 2 * GB))
    out.append(("maintenance_work_mem", size_text(maintenance),
                ["runbook: 256 MB" + ("" if maintenance == 256 * MB else "; PGTune: RAM/16 (at most 2 GB) is more")]))
    out.append(("random_page_cost", "1.1" if ssd else "4.0",
                [f"runbook and PGTune: {'1.1 for SSD' if ssd else '4.0 for HDD'}"]))
    out.append(("effective_io_concurrency", "200" if ssd else "2",
                [f"runbook and PGTune: {'200 for SSD' if ssd else '2 for HDD'}"]))
    # Checkpoints: PGTune's sizes for a web application; requested checkpoints say WAL fills max_wal_size.
    wal_now = memory_bytes(settings["max_wal_size"]) or GB
    wal = max(4 * GB, wal_now)
    wal_reasons = ["PGTune (web application): 4 GB"]
    total = facts.checkpoints_timed + facts.checkpoints_requested
    if total >= 5 and facts.checkpoints_requested > 0.1 * total:
        wal = max(wal, wal_now * 2)
        wal_reasons.append(f"evidence: {facts.checkpoints_requested:,} of {total:,} checkpoints were requested "
                           "rather than timed (WAL reached max_wal_size first; manual CHECKPOINTs count too)")
    out.append(("max_wal_size", size_text(wal), wal_reasons))
    out.append(("min_wal_size", size_text(max(GB, memory_bytes(settings["min_wal_size"]) or 0)),
                ["PGTune (web application): 1 GB"]))
    out.append(("checkpoint_completion_target", "0.9", ["PGTune: spread checkpoint writes over 90% of the interval"]))
    out.append(("default_statistics_target", "100", ["PGTune (web application): 100"]))
    if facts.cpus is not None and facts.cpus >= 4:
        half = min(math.ceil(facts.cpus / 2), 4)
        cpu_reason = [f"PGTune: {facts.cpus} CPUs"]
        out += [("max_worker_processes", str(max(facts.cpus, 8)), cpu_reason),
                ("max_parallel_workers", str(facts.cpus), cpu_reason),
                ("max_parallel_workers_per_gather", str(half), cpu_reason),
                ("max_parallel_maintenance_workers", str(half), cpu_reason)]
    if facts.lagging_tables:
        shown = ", ".join(facts.lagging_tables[:3]) + (" ..." if len(facts.lagging_tables) > 3 else "")
        evidence = [f"evidence: {len(facts.lagging_tables)} table(s) hold more than twice autovacuum's dead-row "
                    f"threshold ({shown})"]
        out.append(("autovacuum_vacuum_scale_factor", "0.05", [*evidence, "vacuum large tables sooner"]))
        out.append(("autovacuum_vacuum_cost_limit", "2000" if ssd else "800",
                    [*evidence, "let each autovacuum worker do more work per round" + (" on SSD" if ssd else "")]))
    return out


def recommend_from(facts: ServerFacts, env_name: str) -> list[ConfigRecommendation]:
    """The recommendations for these facts, each validated against pg_settings and compared with the current value."""
    result = []
    for name, value, reasons in _rules(facts):
        setting = facts.settings.get(name)
        if setting is None:
            continue
        try:
            value = validate(setting, value)
        except UsageError as exc:
            reasons = [*reasons, f"not applicable here: {exc.message}"]
            result.append(ConfigRecommendation(name, setting.shown(), value, reasons, setting.needs_restart, False, ""))
            continue
        current_bytes = memory_bytes(setting)
        if current_bytes is not None:
            differs = not _close(current_bytes, parse_size(value))
        elif setting.vartype in ("integer", "real"):
            differs = not _close(float(setting.setting or 0), float(value))
        else:
            differs = (setting.setting or "") != value
        command = f"make db-update-config env={env_name} param={name} value={value}"
        if setting.needs_restart:
            command += " restart=1"
        result.append(ConfigRecommendation(name, setting.shown(), value, reasons, setting.needs_restart, differs,
                                           command))
    return result


# --- reading the facts --------------------------------------------------------------------------------------
def _machine_ram() -> int:
    """This machine's memory, or its cgroup's limit when lower (containers)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = Path("/sys/fs/cgroup/memory.max")
    if limit.exists():
        text = limit.read_text().strip()
        if text.isdigit():
            total = min(total, int(text))
    return total


def _disk_kind(path: Path) -> tuple[str, str]:
    """'ssd' or 'hdd' for the block device holding `path`, from /sys; ('ssd', 'assumed') when it cannot tell."""
    try:
        device = path.stat().st_dev
        block = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
        for folder in (block, block.parent):
            rotational = folder / "queue" / "rotational"
            if rotational.exists():
                kind = "hdd" if rotational.read_text().strip() == "1" else "ssd"
                return kind, f"detected ({rotational})"
    except OSError:
        pass
    return "ssd", "assumed (the disk type could not be read; say disk=hdd if it spins)"


@dataclass(frozen=True, slots=True)
class _Checkpoints:
    timed: int
    requested: int
    since: datetime | None


def gather(settings: Settings, env: Environment, *, ram: str | None = None, cpus: int | None = None,
           disk: str | None = None, conn: psycopg.Connection[Any] | None = None) -> tuple[ServerFacts, list[str]]:
    """The facts for the rules: memory, CPUs and disk (this machine for a local cluster, else as given) and the
    server's settings and evidence (read on `conn` when given: the dashboard's monitoring session)."""
    if disk is not None and disk not in ("ssd", "hdd"):
        raise UsageError(f"disk={disk!r}: choose ssd or hdd")
    assumptions: list[str] = []
    if ram is not None:
        ram_bytes, ram_source = parse_size(ram), "given"
    elif env.is_local:
        ram_bytes, ram_source = _machine_ram(), "this machine (the local cluster runs here)"
    else:
        raise UsageError(f"{env.name!r} is a remote server: say how much memory it has",
                         hint=f"make db-recommend-config env={env.name} ram=16GB [cpus=4] [disk=ssd|hdd]")
    if cpus is None and env.is_local:
        cpus = os.cpu_count()
    if disk is None:
        if env.is_local:
            disk, disk_source = _disk_kind(cluster_for(settings, env).home)
        else:
            disk, disk_source = "ssd", "assumed (say disk=hdd if it spins)"
    else:
        disk_source = "given"
    assumptions.append(f"RAM {size_text(ram_bytes)}: {ram_source}; disk {disk}: {disk_source}; "
                       f"CPUs: {cpus if cpus is not None else 'unknown (give cpus=N for parallel settings)'}")
    if conn is not None:
        return _read(conn, ram_bytes, ram_source, cpus, disk, disk_source), assumptions
    with connect(settings, env, "recommend-config") as own:
        facts = _read(own, ram_bytes, ram_source, cpus, disk, disk_source)
    return facts, assumptions


def _read(conn: psycopg.Connection[Any], ram_bytes: int, ram_source: str, cpus: int | None, disk: str,
          disk_source: str) -> ServerFacts:
    rows = queries.rows(conn, Setting, queries.load("performance/settings_named"), {"names": list(TUNED)})
    temp = conn.execute(queries.load("performance/temp_files")).fetchone()
    checkpoints = queries.one_or_none(conn, _Checkpoints,
                                      queries.for_server("performance/checkpoints", conn.info.server_version))
    lagging = [f"{schema}.{table}" if schema != "public" else str(table)
               for schema, table, *_ in conn.execute(queries.load("performance/autovacuum_lag"))]
    return ServerFacts(
        ram_bytes=ram_bytes, ram_source=ram_source, cpus=cpus, disk=disk, disk_source=disk_source,
        settings={row.name: row for row in rows},
        temp_files=int(temp[0]) if temp else 0, temp_bytes=int(temp[1]) if temp else 0,
        stats_since=temp[2] if temp else None,
        checkpoints_timed=checkpoints.timed if checkpoints else 0,
        checkpoints_requested=checkpoints.requested if checkpoints else 0,
        lagging_tables=lagging)


def recommend_config(settings: Settings, env: Environment, *, ram: str | None = None, cpus: int | None = None,
                     disk: str | None = None) -> ConfigAdvice:
    """Recommended values and the db-update-config lines that apply them."""
    facts, assumptions = gather(settings, env, ram=ram, cpus=cpus, disk=disk)
    return ConfigAdvice(env.name, size_text(facts.ram_bytes), facts.cpus, facts.disk, assumptions,
                        recommend_from(facts, env.name))
