"""db-recommend-config's rules: the runbook, PGTune's formulas, and the server's evidence, as a diff."""

from __future__ import annotations

from typing import Any

import pytest

from cuisine_db.diagnose.config_advice import GB, MB, ServerFacts, memory_bytes, parse_size, recommend_from, size_text
from cuisine_db.errors import UsageError
from cuisine_db.postgres.server_settings import Setting

PG14_DEFAULTS = {
    # name: (setting, unit, vartype, min, max, context)
    "shared_buffers": ("16384", "8kB", "integer", "16", "1073741823", "postmaster"),
    "effective_cache_size": ("524288", "8kB", "integer", "1", "2147483647", "user"),
    "work_mem": ("4096", "kB", "integer", "64", "2147483647", "user"),
    "maintenance_work_mem": ("65536", "kB", "integer", "1024", "2147483647", "user"),
    "random_page_cost": ("4", None, "real", "0", "1.79769e+308", "user"),
    "effective_io_concurrency": ("1", None, "integer", "0", "1000", "user"),
    "max_wal_size": ("1024", "MB", "integer", "2", "2147483647", "sighup"),
    "min_wal_size": ("80", "MB", "integer", "2", "2147483647", "sighup"),
    "checkpoint_completion_target": ("0.9", None, "real", "0", "1", "sighup"),
    "default_statistics_target": ("100", None, "integer", "1", "10000", "user"),
    "max_connections": ("100", None, "integer", "1", "262143", "postmaster"),
    "max_worker_processes": ("8", None, "integer", "0", "262143", "postmaster"),
    "max_parallel_workers": ("8", None, "integer", "0", "1024", "user"),
    "max_parallel_workers_per_gather": ("2", None, "integer", "0", "1024", "user"),
    "max_parallel_maintenance_workers": ("2", None, "integer", "0", "1024", "user"),
    "autovacuum_vacuum_scale_factor": ("0.2", None, "real", "0", "100", "sighup"),
    "autovacuum_vacuum_cost_limit": ("-1", None, "integer", "-1", "10000", "sighup"),
}


def settings(**changed: str) -> dict[str, Setting]:
    found = {}
    for name, (value, unit, vartype, low, high, context) in PG14_DEFAULTS.items():
        found[name] = Setting(name, changed.get(name, value), unit, vartype, low, high, None, context, "default",
                              value, value, False, "")
    return found


def facts(**extra: Any) -> ServerFacts:
    values: dict[str, Any] = dict(ram_bytes=16 * GB, ram_source="given", cpus=8, disk="ssd", disk_source="given",
                                  settings=settings())
    values.update(extra)
    return ServerFacts(**values)


def advice(**extra: Any) -> dict[str, Any]:
    return {r.name: r for r in recommend_from(facts(**extra), "production")}


def test_runbook_rules_on_sixteen_gigabytes_of_ssd() -> None:
    found = advice()
    assert found["shared_buffers"].recommended == "4GB" and found["shared_buffers"].needs_restart
    assert found["shared_buffers"].command == \
        "make db-update-config env=production param=shared_buffers value=4GB restart=1"
    assert found["effective_cache_size"].recommended == "12GB"
    assert found["work_mem"].recommended == "32MB"
    assert found["maintenance_work_mem"].recommended == "1GB"  # PGTune's RAM/16 beats the runbook's 256 MB here
    assert (found["random_page_cost"].recommended, found["effective_io_concurrency"].recommended) == ("1.1", "200")
    assert found["max_wal_size"].recommended == "4GB" and found["min_wal_size"].recommended == "1GB"
    assert found["max_parallel_workers_per_gather"].recommended == "4"
    assert not found["checkpoint_completion_target"].differs and not found["default_statistics_target"].differs
    assert found["work_mem"].command == "make db-update-config env=production param=work_mem value=32MB"


def test_hdd_small_memory_and_many_connections() -> None:
    found = advice(ram_bytes=2 * GB, disk="hdd", cpus=2, settings=settings(max_connections="500"))
    assert (found["random_page_cost"].recommended, found["effective_io_concurrency"].recommended) == ("4.0", "2")
    assert found["maintenance_work_mem"].recommended == "256MB"
    # 500 connections on 2 GB: PGTune's ceiling wins over the runbook's 32 MB, and says why.
    assert size_text(parse_size(found["work_mem"].recommended)) == found["work_mem"].recommended
    assert parse_size(found["work_mem"].recommended) < 32 * MB
    assert any("stay within half the memory" in reason for reason in found["work_mem"].reasons)
    assert "max_parallel_workers" not in found  # PGTune leaves parallelism alone below 4 CPUs


def test_evidence_raises_work_mem_and_max_wal_size_and_tunes_autovacuum() -> None:
    quiet = advice()
    assert "autovacuum_vacuum_scale_factor" not in quiet
    busy = advice(ram_bytes=32 * GB, temp_files=1200, temp_bytes=3 * GB, checkpoints_timed=10, checkpoints_requested=30,
                  lagging_tables=["executions", "recipes"], settings=settings(max_wal_size="8192"))
    assert busy["work_mem"].recommended == "64MB"
    assert any("1,200 temporary files" in reason for reason in busy["work_mem"].reasons)
    assert busy["max_wal_size"].recommended == "16GB"
    assert any("30 of 40 checkpoints were requested" in reason for reason in busy["max_wal_size"].reasons)
    assert busy["autovacuum_vacuum_scale_factor"].recommended == "0.05"
    assert busy["autovacuum_vacuum_cost_limit"].recommended == "2000"


def test_current_values_already_as_recommended_are_kept() -> None:
    tuned = settings(shared_buffers="524288", work_mem="32768", random_page_cost="1.1")
    found = advice(settings=tuned)
    assert not found["shared_buffers"].differs and not found["work_mem"].differs
    assert not found["random_page_cost"].differs


def test_sizes() -> None:
    assert memory_bytes(settings()["shared_buffers"]) == 128 * MB
    assert size_text(6 * GB) == "6GB" and size_text(1536 * MB) == "1536MB"
    assert parse_size("16GB") == 16 * GB and parse_size("512 mb") == 512 * MB
    for bad in ("lots", "16", "-1GB", "GB"):
        with pytest.raises(UsageError):
            parse_size(bad)
