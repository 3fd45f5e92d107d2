"""`cuisine-db wal enable`: archive_mode, archive_command and archive_timeout through the one configuration path,
after proving the command works for the server's OS user.

The command names this very program and the configuration file by absolute path; it runs as the server's user
with the server's environment, so that user must be able to run the virtualenv's python, read the
configuration and the recipients, write the local repository's WAL area and the spool folder, and (for S3)
find the credentials — in its environment or in a 0600 file of its own written here from the operator's. A
`wal check` run as that user, without the operator's secret variables, is the proof before anything changes.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cuisine_db import records
from cuisine_db import sql as queries
from cuisine_db.backup.wal import access as wal_access
from cuisine_db.backup.wal import wal_names
from cuisine_db.cluster import connect
from cuisine_db.config import Environment, Settings
from cuisine_db.errors import FailedError, UsageError
from cuisine_db.ops import confirmation
from cuisine_db.ops.confirmation import Ask
from cuisine_db.ops.journal import journaled
from cuisine_db.postgres import osuser, safe_files
from cuisine_db.postgres.local import cluster_for
from cuisine_db.postgres.runner import ToolError, run
from cuisine_db.postgres.server_settings import SettingChange, alter_system
from cuisine_db.storage import keys as age_keys
from cuisine_db.storage import repository_url
from cuisine_db.storage.local import private_folders


@dataclass(frozen=True, slots=True)
class EnableReport:
    env: str
    archive_command: str
    changes: list[SettingChange]
    restart_needed: bool
    restarted: bool
    checked_as: str | None
    credentials_file: str | None
    notes: list[str] = field(default_factory=list)


def program() -> list[str]:
    """This installation's `cuisine-db`, by absolute path (the console script next to this python if there is one)."""
    script = Path(sys.executable).with_name("cuisine-db")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cuisine_db"]


def _base(settings: Settings, env: Environment, verb: str) -> list[str]:
    return [*program(), "wal", verb, "--config", str(settings.config_path), "--env", env.name]


def _lean(argv: list[str]) -> list[str]:
    """`argv` (a `cuisine-db wal ...` command) through served.py under `python -S`: a segment already in the spool
    (fetch) or already stored (push, the ledger) costs no more than that (" wal push " stays in the command, as
    `wal status` and replica seeding look for it)."""
    from cuisine_db.backup.wal import served

    return [sys.executable, "-S", served.__file__, *argv[argv.index("wal"):]]


def _quoted(words: list[str]) -> str:
    """`words` for a command PostgreSQL runs through /bin/sh after replacing its %-placeholders: quoted for the shell,
    `%` doubled (PostgreSQL makes `%%` a `%` again) so that only the placeholders we append are PostgreSQL's. A control
    character (a newline in a configured path) is refused: no server setting or configuration line carries it."""
    for word in words:
        if any(ord(char) < 32 or ord(char) == 127 for char in word):
            raise UsageError(f"{word!r} cannot be part of the server's archive or restore command: it holds a control "
                             "character", hint="choose paths (configuration, spool, keys) without one")
    return " ".join(shlex.quote(word) for word in words).replace("%", "%%")


def archive_command(settings: Settings, env: Environment) -> str:
    return _quoted(_lean([*_base(settings, env, "push"), "--spool", str(spool_dir(settings, env))])) + " %p"


def _spooled_first(spool: Path) -> str:
    """The restore_command's first step, in the shell PostgreSQL runs it with: a segment the prefetcher verified into
    the spool (or the second copy kept of the backup's last one, spool.AGAIN) is renamed into place and where recovery
    stands is noted (the empty marker spool.ASKED + %f, opened by the shell itself: `true`, not `:`, whose failed
    redirection would end the shell), without starting Python: one fork of `mv` against an interpreter's ~10 ms
    (docs/benchmarks.md, issue 22 stop 19). Only a name of 24
    hexadecimal digits is looked for; anything else (a timeline history file, a `.partial` or `.backup` file, a
    segment not in the spool, a rename that fails) goes on to the Python command, which decides 0, 1 (the archive
    certainly lacks it) or 254 as before: this step exits 0 or hands over, never 1. Empty where no `mv` is found."""
    from cuisine_db.backup.wal import spool as wal_spool

    mv = shutil.which("mv", path=os.defpath)
    if mv is None:
        return ""
    mv = _quoted([mv])
    folder = _quoted([str(wal_spool.folder(spool))])
    asked = f"{folder}/{wal_spool.ASKED}%f"
    return (f"case %f in *[!0-9A-F]*) ;; {'?' * 24}) "
            f"if {mv} -f {folder}/%f %p 2>/dev/null || {mv} -f {folder}/%f{wal_spool.AGAIN} %p 2>/dev/null; then "
            f"{{ true >{asked}; }} 2>/dev/null; exit 0; fi;; esac; exec ")


def _fetch_options(settings: Settings, source: Environment, verb: str, *, spool: Path, identity_file: Path | None,
                   credentials_file: Path | None, system_identifier: str | None = None) -> list[str]:
    argv = [*_base(settings, source, verb), "--spool", str(spool)]
    if system_identifier is not None:
        argv += ["--system-id", str(system_identifier)]
    if identity_file is not None:
        argv += ["--identity-file", str(identity_file)]
    if credentials_file is not None:
        argv += ["--credentials-file", str(credentials_file)]
    return argv


def restore_command(settings: Settings, source: Environment, *, spool: Path, identity_file: Path | None,
                    credentials_file: Path | None = None, trust_unsigned: bool = False,
                    system_identifier: str | None = None) -> str:
    """The restore_command reading `source`'s archive; prefetched segments go to `spool` (the restored
    environment's, cleared before each recovery); `credentials_file`: the reading server's own copy of the S3 keys
    when it is not `source`'s own user (archive_access()); `system_identifier`: the backup's, whose archive area
    is read (backup/wal/areas.py; an upgrade gives the new cluster its own); `trust_unsigned`: files archived before
    signatures are taken too (db-apply-logs trust_unsigned=1; the prefetcher never takes them). A segment in the
    spool is served by the shell alone (_spooled_first); anything else by `wal fetch` through served.py."""
    argv = _fetch_options(settings, source, "fetch", spool=spool, identity_file=identity_file,
                          credentials_file=credentials_file, system_identifier=system_identifier)
    if trust_unsigned:
        argv.append("--trust-unsigned")
    return _spooled_first(spool) + _quoted(_lean(argv)) + " %f %p"


def prefetch_command(settings: Settings, source: Environment, after: str, *, spool: Path, identity_file: Path | None,
                     credentials_file: Path | None = None, until: str | None = None,
                     system_identifier: str | None = None) -> list[str]:
    """`wal prefetch --detach`: starts the spool's prefetcher ahead of `after` with what restore_command() gets, and
    returns at once (run it as the server's user: the spool and what lands in pg_wal are its own)."""
    argv = _fetch_options(settings, source, "prefetch", spool=spool, identity_file=identity_file,
                          credentials_file=credentials_file, system_identifier=system_identifier)
    return [*argv, "--detach", *(["--until", until] if until else []), after]


def spool_dir(settings: Settings, env: Environment) -> Path:
    configured = env.wal.spool_dir
    if configured is None:
        return settings.env_dir(env) / wal_access.SPOOL_FOLDER
    return configured if configured.is_absolute() else settings.root / configured


def credentials_path(settings: Settings, env: Environment) -> Path:
    configured = env.wal.credentials_file
    if configured is None:
        return settings.env_dir(env) / wal_access.CREDENTIALS_FILE
    return configured if configured.is_absolute() else settings.root / configured


def write_credentials(settings: Settings, env: Environment, os_user: str | None, *,
                      target: Path | None = None) -> Path | None:
    """The S3 credentials the environment names, from the operator's environment into a 0600 file of the server's
    user (the environment's own file unless `target` names another); None when the repository needs none or the
    variables are not set here (then the file is left as is)."""
    variables = [v for v in (env.backup.s3_access_key_env, env.backup.s3_secret_key_env) if v]
    if not variables or not repository_url(settings, env).startswith("s3://"):
        return None
    values = {variable: settings.secret(variable) for variable in variables}
    if any(value is None for value in values.values()):
        return None
    target = target or credentials_path(settings, env)
    target.parent.mkdir(parents=True, exist_ok=True)
    osuser.make_reachable(target, os_user)
    # The folder may be the server user's: created through no link, 0600 and its owner from the start.
    records.atomic_write(target, "# S3 credentials for cuisine-db wal push/fetch, written by cuisine-db; keep it 0600\n"
                         + "".join(f"{variable}={value}\n" for variable, value in values.items()), owner=os_user,
                         follow_folder=False)
    return target


def write_wal_signing_key(settings: Settings, env: Environment, os_user: str | None) -> Path:
    """The environment's own WAL signing key, private to the server's OS user (which runs `wal push`): made once,
    never replaced; its public half beside it (trusted for this environment's WAL records only)."""
    from cuisine_db.storage import signing

    folder = settings.env_dir(env)
    key_path, public_path = folder / wal_access.WAL_SIGNING_KEY, folder / wal_access.WAL_SIGNING_PUBLIC
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not key_path.exists():
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

        key = Ed25519PrivateKey.generate()
        records.atomic_write(key_path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
                             owner=os_user, follow_folder=False)
        public = signing.encode_public(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        records.atomic_write(public_path, public + "\n", mode=0o644, follow_folder=False)
    osuser.make_reachable(key_path, os_user)
    osuser.make_reachable(public_path, os_user)
    return key_path


def precompile() -> None:
    """Write the package's byte-code now, as the operator: the server's user runs `wal push`/`fetch` once per segment
    and cannot write __pycache__ beside the code (nor can anyone under PYTHONDONTWRITEBYTECODE), so each call would
    compile every module it imports from source again (about 9 ms of a push's 100 ms of CPU). Best effort."""
    import compileall

    import cuisine_db

    with contextlib.suppress(OSError):
        compileall.compile_dir(Path(cuisine_db.__file__).parent, quiet=2)


def _reach_program(settings: Settings, env: Environment, os_user: str) -> list[Path]:
    """Let `os_user` run this program with this configuration (and the default public key): search permission on
    the folders on the way, for that user alone."""
    # The virtualenv's python is often a link to an interpreter under root's home (pyenv): its folders too.
    changed = osuser.make_reachable(Path(sys.executable), os_user)
    changed += osuser.make_reachable(Path(sys.executable).resolve(), os_user)
    import cuisine_db

    changed += osuser.make_reachable(Path(cuisine_db.__file__).parent, os_user)
    changed += osuser.make_reachable(settings.config_path, os_user)
    if not env.backup.recipients:
        public = age_keys.keys_dir(settings) / age_keys.PUBLIC_FILE
        if public.exists():
            changed += osuser.make_reachable(public, os_user)
            public.chmod(0o644)  # a public key; the private one beside it stays 0600
    # The public keys `wal fetch` checks records against (the private ones stay 0600, the operator's).
    from cuisine_db.storage import signing

    for public in (age_keys.keys_dir(settings) / signing.SIGNING_PUBLIC_FILE,
                   settings.env_dir(env) / wal_access.WAL_SIGNING_PUBLIC):
        if public.exists():
            changed += osuser.make_reachable(public, os_user)
    return changed


def wal_area(settings: Settings, env: Environment, area: str | None = None) -> Path | None:
    """The environment's WAL archive folder in a local repository (None for S3): its first area, or `area`."""
    url = repository_url(settings, env)
    if not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(url).path)) / wal_names.env_prefix(area or env.name)


def wal_areas(settings: Settings, env: Environment) -> list[Path]:
    """Every archive area of the environment in a local repository (one per system identifier), oldest first."""
    from cuisine_db.backup.wal import areas

    found = [wal_area(settings, env, area) for area in areas.all_areas(env.name, settings.env_dir(env))]
    return [path for path in found if path is not None]


def grant_server_access(settings: Settings, env: Environment, os_user: str | None) -> list[str]:
    """Let the environment's own server user run this program and reach what `wal push`/`fetch` need: its spool and
    its WAL area in a local repository become that user's, 0700 (the repository's other folders stay root's,
    0700: one environment's user never reaches another's archive); say what changed."""
    precompile()
    notes: list[str] = []
    if os_user is None:
        return notes
    changed = _reach_program(settings, env, os_user)
    spool = spool_dir(settings, env)
    spool.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    osuser.give_to(spool, os_user)
    changed += osuser.make_reachable(spool, os_user)
    for area in wal_areas(settings, env):
        private_folders(area.parent)
        osuser.give_to(area, os_user)
        changed += osuser.make_reachable(area, os_user)
    if changed:
        notes.append(f"gave {os_user} search permission (an ACL entry for that user alone; nothing became listable) "
                     "on the folders leading to "
                     f"python, the program, the configuration and the archive: {', '.join(map(str, changed))}")
    return notes


@contextlib.contextmanager
def archive_access(settings: Settings, source: Environment, os_user: str | None, folder: Path) -> Iterator[Path | None]:
    """A server of `os_user` reads `source`'s WAL archive while the block runs. Source's own user (or a shared one
    from before environments had their own): as `wal enable` grants it, nothing to yield. Another environment's
    user (a cross-environment restore): read-only ACL entries for that user on the archive's folders and files, as
    they are now and as they appear while it runs, and a copy of the S3 keys in `folder` (its own), both taken
    back on the way out; yields that copy for `restore_command(credentials_file=)`."""
    from cuisine_db.postgres.local import os_user_of

    owner = os_user_of(settings, source) if source.is_local else None
    if os_user is None or owner == os_user:
        grant_server_access(settings, source, os_user)
        write_credentials(settings, source, os_user)
        yield None
        return
    precompile()
    _reach_program(settings, source, os_user)
    copy = folder / wal_access.CREDENTIALS_FILE
    areas = [area for area in wal_areas(settings, source) if area.is_dir()]
    for area in areas:
        osuser.make_reachable(area, os_user)
    try:
        # Kept current: the source may still be archiving, and the replay reads what it adds meanwhile too.
        with osuser.KeptReadGrant(areas, os_user):
            yield write_credentials(settings, source, os_user, target=copy)
    finally:
        safe_files.remove(copy)


def check_as_server_user(settings: Settings, env: Environment, os_user: str | None, *, fetch: bool = False) -> None:
    """`wal check` as the server's OS user, without the operator's secret variables: as the archiver will run."""
    argv = [*_base(settings, env, "check"), "--spool", str(spool_dir(settings, env))]
    if fetch:
        argv.append("--fetch")
    try:
        run(argv, user=os_user, timeout=120, drop=env.secret_variables())
    except ToolError as exc:
        who = f"OS user {os_user}" if os_user else "this user"
        raise FailedError(f"the archive command does not work for {who}: {exc.stderr.strip().splitlines()[-1]}",
                          hint="nothing was changed on the server") from None


def enable(settings: Settings, env: Environment, *, archive_timeout: str | None = None,
           restart: bool = False, yes: bool = False, ask: Ask | None = None) -> EnableReport:
    """Turn WAL archiving on (wal enable, journaled with the settings changed); restart a local cluster when
    archive_mode changed and `restart` allows it (a protected environment confirms that first, before anything is
    changed)."""
    with journaled(settings, env, "wal enable", {"archive_timeout": archive_timeout, "restart": restart}) as entry:
        report = _enable(settings, env, archive_timeout=archive_timeout, restart=restart, yes=yes, ask=ask)
        entry.details.update(changes=[c.name for c in report.changes], restarted=report.restarted)
    return report


def _enable(settings: Settings, env: Environment, *, archive_timeout: str | None, restart: bool, yes: bool,
            ask: Ask | None) -> EnableReport:
    if restart:
        confirmation.require(env, "Restarting the server to turn on WAL archiving", yes=yes, ask=ask)
    timeout = archive_timeout or env.wal.archive_timeout
    command = archive_command(settings, env)
    notes: list[str] = []
    os_user: str | None = None
    credentials = None
    if env.patroni is not None:
        return _enable_patroni(settings, env, command, timeout, restart=restart)
    if env.is_local:
        cluster = cluster_for(settings, env)
        os_user = cluster.os_user
        credentials = _prepare_server_user(settings, env, os_user, notes)
    else:
        notes.append("the database server runs this command itself: install cuisine-db on it with this "
                     f"configuration at {settings.config_path}, give its OS user a signing key for the WAL records "
                     f"(<state_dir>/{env.name}/{wal_access.WAL_SIGNING_KEY}, or backup.signing_key_env) whose public "
                     "key is pinned in backup.trusted_signers, and run cuisine-db wal check there as its OS user")
    changes_wanted: dict[str, str | None] = {"archive_mode": "on", "archive_command": command,
                                             "archive_timeout": timeout}
    with connect(settings, env, "wal enable") as conn:
        if conn.execute(queries.load("pitr/wal_level")).fetchone() == ("minimal",):
            raise UsageError(f"wal_level is minimal on {env.name}: archiving needs replica",
                             hint=f"make db-update-config env={env.name} param=wal_level value=replica restart=1")
        if conn.info.server_version >= 170000:
            changes_wanted["summarize_wal"] = "on"  # incremental backups (PostgreSQL 17+)
        changes = alter_system(conn, changes_wanted)
        pending = conn.execute(queries.load("pitr/pending_restart")).fetchone()
    # pg_settings.pending_restart only shows once the reload has been processed, which pg_reload_conf() does not
    # wait for: a postmaster setting whose running value differs needs the restart whatever it says yet.
    restart_needed = bool(pending and pending[0]) or any(
        change.needs_restart and change.old != change.new for change in changes)
    restarted = False
    if restart_needed and restart and env.is_local:
        cluster_for(settings, env).restart()
        restarted, restart_needed = True, False
    return EnableReport(env.name, command, changes, restart_needed, restarted, os_user,
                        str(credentials) if credentials else None, notes)


def _prepare_server_user(settings: Settings, env: Environment, os_user: str | None, notes: list[str]) -> Path | None:
    """What `wal push` needs as the server's user: reach, credentials, its own WAL signing key, a proof run."""
    notes += grant_server_access(settings, env, os_user)
    credentials = write_credentials(settings, env, os_user)
    key = write_wal_signing_key(settings, env, os_user)
    public = key.with_name(wal_access.WAL_SIGNING_PUBLIC).read_text().strip()
    notes.append(f"{env.name}'s WAL records are signed with {key} (the server user's own key); wherever its "
                 f"backups may be restored on another machine, pin it: trusted_signers = [..., \"{public}\"]")
    check_as_server_user(settings, env, os_user)
    return credentials


def _enable_patroni(settings: Settings, env: Environment, command: str, timeout: str, *,
                    restart: bool) -> EnableReport:
    """A Patroni environment: the same archive_command on every member through Patroni's dynamic configuration
    (archive_mode = on: only the leader archives; after a failover the new leader archives its timeline's history
    file and segments into the same archive)."""
    from cuisine_db.postgres import patroni
    from cuisine_db.postgres.local import os_user_of

    notes: list[str] = []
    os_user: str | None = None
    credentials = None
    if env.embedded_patroni:
        os_user = os_user_of(settings, env)
        credentials = _prepare_server_user(settings, env, os_user, notes)
    else:
        notes.append("every member's server runs this command itself: install cuisine-db on each Patroni host with "
                     f"this configuration at {settings.config_path} and a WAL signing key for its OS user, and run "
                     "cuisine-db wal check there as that user")
    wanted: dict[str, str] = {"archive_mode": "on", "archive_command": command, "archive_timeout": timeout}
    with connect(settings, env, "wal enable") as conn:
        if conn.execute(queries.load("pitr/wal_level")).fetchone() == ("minimal",):
            raise UsageError(f"wal_level is minimal on {env.name}: archiving needs replica")
        if conn.info.server_version >= 170000:
            wanted["summarize_wal"] = "on"
        current = {name: conn.execute(queries.load("pitr/current_setting"), {"name": name}).fetchone()
                   for name in wanted}
    before = {name: str(row[0]) if row else "" for name, row in current.items()}
    changes = [SettingChange(name=name, old=before[name], new=value, needs_restart=name == "archive_mode")
               for name, value in wanted.items() if before[name] != value]
    patroni.set_parameters(settings, env, dict(wanted))
    restart_needed = any(change.needs_restart for change in changes)
    restarted = False
    if restart_needed and restart:
        names_ = patroni.restart_pending(settings, env)
        notes.append(f"Patroni restarted {', '.join(names_) or 'no member'} for archive_mode")
        restarted, restart_needed = True, False
    return EnableReport(env.name, command, changes, restart_needed, restarted, os_user,
                        str(credentials) if credentials else None, notes)
