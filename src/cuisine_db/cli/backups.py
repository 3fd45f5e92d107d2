"""`cuisine-db backup ...`: the runbook's Backup and Recovery section (creating, listing, verifying, expiring)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cuisine_db.backup import backup_names, catalog, commands, physical, retention
from cuisine_db.backup.backup_verify import VerifyReport
from cuisine_db.backup.catalog import BackupEntry, Check
from cuisine_db.backup.manifest import TEST_RESTORE, VERIFICATION
from cuisine_db.cli.common import (
    EnvOption,
    JsonOption,
    ReplicaOption,
    YesOption,
    environment,
    out,
    print_json,
    required,
    say,
    settings,
    warn,
    word_asker,
)
from cuisine_db.cli.render import check_text, progress_bar, show_damage, size
from cuisine_db.config import Environment
from cuisine_db.errors import FailedError

app = typer.Typer(help="Backups: create (physical or logical), list, show, verify, expire, status; keys: keygen, "
                       "rotate-keys, reencrypt, rebuild-watermark.",
                  no_args_is_help=True)

TypeOption = Annotated[str, typer.Option("--type", "-t", help="full or incremental (physical, the whole cluster); "
                                                              "logical, schema, data or tables (pg_dump).")]
TablesOption = Annotated[str | None, typer.Option("--tables", help="With --type tables: users,recipes.")]


def backup_env(name: str, env: str | None) -> Environment:
    """The environment a command about one backup runs in: the one given, else the backup's own, else the default."""
    if env is None and name != "latest":
        own = backup_names.parse(name).env
        if own in settings().environments:
            return settings().env(own)
    return environment(env)


def _record_view(entry: BackupEntry, record: str) -> Check | str | None:
    """A record for --json: the check, "damaged" (the file and why are in "damaged"), or null (never)."""
    if entry.damage(record) is not None:
        return "damaged"
    return entry.verification if record == VERIFICATION else entry.test_restore


def entry_view(entry: BackupEntry) -> dict[str, Any]:
    manifest = entry.manifest
    return {
        "name": entry.name, "env": entry.env, "type": entry.type, "taken_at": entry.taken_at,
        "complete": entry.complete, "size": entry.size, "duration_s": entry.duration_s,
        "tables": {t.qualified: t.rows for t in manifest.tables} if manifest else {},
        "verification": _record_view(entry, VERIFICATION), "test_restore": _record_view(entry, TEST_RESTORE),
        "problem": entry.problem, "damaged": list(entry.damaged),
        "repository": entry.repository, "trusted": entry.complete and entry.signer is not None
        and not entry.signer.startswith("unsigned"), "signer": entry.signer,
        "source": manifest.dump.get("source", "primary") if manifest else None,  # the primary, or "replica NAME"
        "key": key_needed(entry),
    }


def key_needed(entry: BackupEntry) -> dict[str, Any]:
    """Which keys a backup needs: the age recipients it is encrypted to and the key that signed it (fingerprints)."""
    manifest = entry.manifest
    return {"recipients": list(manifest.encryption.get("recipients", [])) if manifest else [],
            "signer": manifest.signer if manifest else None}


FromOption = Annotated[str | None, typer.Option(
    "--from", help="primary (default) or replica: back up a replica within the lag bound (as --replica any); "
                   "type=full or a logical type.")]


@app.command("create")
def create(env: EnvOption = None, kind: TypeOption = "", tables: TablesOption = None, json: JsonOption = False,
           replica: ReplicaOption = None, origin: FromOption = None) -> None:
    """Back up an environment into its repository (make db-backup env=E type=T [tables=a,b] [from=replica])."""
    from cuisine_db.backup.take import take

    chosen = environment(env)
    with progress_bar("backup", not json) as bar:
        report = take(settings(), chosen, kind, tables=tables, replica=replica, origin=origin, notify=say, warn=warn,
                      progress=bar)
    if isinstance(report, physical.PhysicalReport):
        _physical_done(report, json)
        return
    if json:
        print_json(report)
        return
    out.print(f"{report.name}: {len(report.tables)} tables, {report.rows:,} rows, {size(report.plain_size)} of dump "
              f"stored as {size(report.size)} in {report.objects} objects (zstd, age, sha256) in {report.seconds:.1f}s")
    say(f"{chosen.name}: backup {report.name} is complete in {report.repository}")


def _physical_done(report: physical.PhysicalReport, json: bool) -> None:
    if json:
        print_json(report)
        return
    base = f", incremental on {report.depends_on}" if report.depends_on else ""
    plain = f"at most {size(report.plain_size)}" if report.plain_bounded else size(report.plain_size)
    out.print(f"{report.name}: the whole cluster from the {report.source}, {plain} stored as "
              f"{size(report.size)} in {report.objects} objects ({report.compression}, age, sha256) in "
              f"{report.seconds:.1f}s; WAL {report.start_lsn} .. {report.stop_lsn} on timeline {report.timeline}{base}")
    say(f"{report.env}: backup {report.name} is complete in {report.repository}; it is a base for "
        f"db-apply-logs (point-in-time recovery) once WAL archiving is on (cuisine-db wal enable)")


@app.command("list")
def list_backups(env: EnvOption = None, all_: Annotated[bool, typer.Option(
        "--all", help="Also show incomplete backups (being written, interrupted or damaged).")] = False,
        json: JsonOption = False) -> None:
    """An environment's backups, oldest first: name, type, size, duration, last verification (make db-backups)."""
    chosen = environment(env)
    entries = catalog.list_backups(settings(), chosen, include_incomplete=True)
    untrusted = [entry for entry in entries if (entry.problem or "").startswith(catalog.UNTRUSTED)]
    shown = entries if all_ else [entry for entry in entries if entry.complete or entry in untrusted]
    if json:
        print_json([entry_view(entry) for entry in shown])
        return
    table = Table("name", "type", "size", "took", "verified", "test restore", "key (age / signer)",
                  title=f"backups of {chosen.name}")
    for entry in shown:
        took = f"{entry.duration_s:.1f}s" if entry.duration_s is not None else ""
        name = entry.name if entry.complete else f"[yellow]{entry.name} (incomplete)[/]"
        if entry in untrusted:
            why = escape((entry.problem or "")[len(catalog.UNTRUSTED):])
            name = f"[red]{escape(entry.name)} untrusted ({why})[/]"
        needed = key_needed(entry)
        key = " ".join(value.removeprefix("sha256:") for value in needed["recipients"])
        key += f" / {needed['signer']}" if needed["signer"] else ""
        table.add_row(name, entry.type, size(entry.size), took,
                      check_text(entry.verification, entry.damage(VERIFICATION)),
                      check_text(entry.test_restore, entry.damage(TEST_RESTORE)), key)
    out.print(table)
    show_damage([damage for entry in shown for damage in entry.damaged])
    hidden = len(entries) - len(shown)
    if hidden:
        say(f"{hidden} incomplete backup(s) not shown (being written, interrupted or damaged): --all shows them")


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="A backup name, or latest.")], env: EnvOption = None,
         json: JsonOption = False) -> None:
    """One backup's manifest: origin, tables and row counts, objects, verification."""
    s = settings()
    chosen = backup_env(name, env)
    resolved = catalog.resolve(s, chosen, name)
    manifest = resolved.manifest
    if json:
        print_json({"manifest": manifest, "verification": _record_view(resolved.entry, VERIFICATION),
                    "test_restore": _record_view(resolved.entry, TEST_RESTORE), "damaged": list(resolved.entry.damaged),
                    "repository": resolved.repository.url})
        return
    out.print(f"[bold]{manifest.name}[/] ({manifest.type}) of database {manifest.database!r} on {manifest.env}, "
              f"PostgreSQL {manifest.server_version}, pg_dump {manifest.tool.get('pg_dump')}")
    out.print(f"taken from the {manifest.dump.get('source', 'primary')} "
              f"{manifest.started_at:%Y-%m-%d %H:%M:%S} UTC in {manifest.duration_s:.1f}s, "
              f"{size(manifest.size)} stored, WAL {manifest.start_lsn} .. {manifest.stop_lsn}")
    out.print(f"encrypted to {', '.join(manifest.encryption.get('recipients', []))}; "
              f"verified: {check_text(resolved.entry.verification, resolved.entry.damage(VERIFICATION))}; "
              f"test restore: {check_text(resolved.entry.test_restore, resolved.entry.damage(TEST_RESTORE))}")
    show_damage(list(resolved.entry.damaged))
    table = Table("table", "rows", title="tables")
    for item in manifest.tables:
        table.add_row(item.qualified, "" if item.rows is None else f"{item.rows:,}")
    out.print(table)


@app.command("verify")
def verify(name: Annotated[str | None, typer.Argument(help="A backup name, or latest.")] = None,
           env: EnvOption = None, json: JsonOption = False) -> None:
    """Check every object's checksum, decryption and pg_restore --list; record the result (make db-verify-backup)."""
    s = settings()
    reference = required(name, "the backup: backup=NAME (or backup=latest)")
    chosen = backup_env(reference, env)
    with ExitStack() as bar_shown:
        bar = bar_shown.enter_context(progress_bar("verify", not json))

        def show(report: VerifyReport) -> None:
            bar_shown.close()  # the bar goes before the report is shown
            if json:
                print_json(report)
            else:
                for problem in report.problems:
                    out.print(f"[red]problem[/] {problem}", markup=True)

        report = commands.verify_backup(s, chosen, reference, progress=bar, notify=say, show=show)
    if not json:
        structure = (f"pg_verifybackup ({report.toc_entries} files, and the WAL from start to stop)" if report.physical
                     else f"pg_restore --list ({report.toc_entries} entries)")
        say(f"{report.name}: {report.objects} objects, {size(report.bytes)}, checksums, decryption and "
            f"{structure} are all good ({report.seconds:.1f}s)")


@app.command("expire")
def expire(env: EnvOption = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
           yes: YesOption = False, json: JsonOption = False) -> None:
    """Apply grandfather-father-son retention (7 daily, 4 weekly, 12 monthly by default) to env's backups: the plan
    first (what goes, what stays and why, the WAL, the point-in-time window), then, on a protected environment, a
    confirmation (the environment's name typed, or --yes) (make db-expire-backups [dry-run=1] [yes=1])."""
    s = settings()
    chosen = environment(env)
    ask = None
    if sys.stdin.isatty() and not json:  # --json is for scripts: they confirm with --yes
        def ask(question: str) -> str:
            return str(typer.prompt(question, default="", show_default=False, err=True))
    report = commands.expire(s, chosen, dry_run=dry_run, yes=yes, ask=ask,
                             show=(lambda _: None) if json else _show_retention)
    if json:
        print_json(report)
        return
    if dry_run:
        say(f"{chosen.name}: dry run, nothing was deleted")
        return
    say(f"{chosen.name}: removed {len(report.expired)} backup(s) and {report.wal_expired} archived WAL file(s) "
        f"({size(report.wal_bytes)}); kept {len(report.kept)}")


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at is not None else "none (no physical backup)"


def _show_retention(report: retention.ExpireReport) -> None:
    """The plan, before anything goes: every backup with its type and why it stays, or that it goes."""
    table = Table("backup", "type", "plan", title=f"retention of {report.env} ({report.repository})")
    for name, kind in sorted(report.types.items(), key=lambda item: item[0].rsplit("-", 1)[-1]):
        if name in report.kept:
            table.add_row(name, kind, "[green]stays[/]: " + ", ".join(report.kept[name]))
        else:
            table.add_row(f"[red]{name}[/]", kind, "[red]goes[/]")
    for name in report.abandoned:
        table.add_row(f"[yellow]{name}[/]", "", "[yellow]goes[/] (abandoned: no manifest)")
    out.print(table)
    for name in report.damaged:
        say(f"[yellow]warning:[/] {name} has a damaged manifest; it is left for a person to look at")
    for name in report.in_progress:
        say(f"{name} has no manifest yet (being written?): left alone")
    if report.wal_expired:
        say(f"archived WAL that goes: {report.wal_expired} file(s), {size(report.wal_bytes)}, {report.wal_first} .. "
            f"{report.wal_last} (older than {report.wal_kept_from}, where the oldest kept physical backup starts)")
    elif report.wal_kept_from:
        say(f"archived WAL: none goes (kept from {report.wal_kept_from})")
    say(f"point-in-time window: from {_when(report.window_before)} to now; afterwards from "
        f"{_when(report.window_after)} to now (the policy promises from {_when(report.promised_from)})")
    say(f"{report.env}: {len(report.expired) + len(report.abandoned)} backup(s) and {report.wal_expired} WAL "
        f"file(s) to delete, {len(report.kept)} backup(s) stay")


@app.command("status")
def status(env: EnvOption = None, json: JsonOption = False) -> None:
    """Newest full backup within 26 h, WAL archived within 16 min, no hole in the archive; exit 1 if not."""
    from cuisine_db.backup import status as backup_status
    from cuisine_db.cli.render import show_findings

    chosen = environment(env)
    report = backup_status.status(settings(), chosen)
    if json:
        print_json(report)
    else:
        age = f", {report.full_age_hours:.1f} h old" if report.full_age_hours is not None else ""
        out.print(f"{chosen.name}: newest full backup {report.newest_full or 'none'}{age}; {report.wal.summary}")
        show_findings(report.findings, title=f"backups of {chosen.name}", clean="the runbook's promise holds")
    failing = [f for f in report.findings if f.severity in ("error", "critical")]
    if failing:
        raise FailedError(f"backups of {chosen.name}: {failing[0].evidence}"
                          + (f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""))


@app.command("keygen")
def keygen(if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing when a key exists.")] = False
           ) -> None:
    """Make the age key pair and the Ed25519 signing key under .cuisine/keys/ (backups use them when the
    configuration names no others); prints the trusted_signers line to pin in cuisine-db.toml."""
    made = commands.keygen(settings(), if_missing=if_missing)
    pair, signer = made.pair, made.signer
    if pair.created:
        say(f"wrote {pair.identity_file} (private, 0600: keep a copy somewhere safe, off this machine) and "
            f"{pair.public_file}")
    else:
        say(f"using the existing key pair in {pair.identity_file.parent}")
    if signer.created:
        say(f"wrote the signing key {signer.key_file} (private, 0600: only where backups are taken), its public "
            f"key {signer.public_file} and {signer.pem_file} (for openssl)")
    else:
        say(f"using the existing signing key {signer.key_file}")
    say("environments without trusted_signers trust this signing key; to pin it (other hosts, remote "
        "environments), add to their [environments.<env>.backup] section:")
    out.print(pair.recipient)
    out.print(f'trusted_signers = ["{signer.public}"]')


@app.command("rotate-keys")
def rotate_keys(env: EnvOption = None, json: JsonOption = False) -> None:
    """A new age key pair and signing key for env's backups, the old identity kept for the old backups; then
    `backup reencrypt` moves the existing backups and WAL onto them (make db-rotate-keys env=E)."""
    chosen = environment(env)
    rotated = commands.rotate_keys(settings(), chosen)
    if json:
        print_json(rotated)
        return
    say(f"{chosen.name}: new age recipient {rotated.recipient_fingerprint} and signing key {rotated.signer_id}, "
        f"written to {', '.join(rotated.written)} (private keys 0600)")
    if rotated.wal_signer is not None:
        say(f"{chosen.name}'s WAL records are signed with a new key {rotated.wal_signer_id} from the next push on (the "
            "old one stays trusted for the records it signed); where its backups may be restored on another host, "
            f'pin it too: trusted_signers = [..., "{rotated.wal_signer}"]')
    if rotated.retired:
        say(f"the old identity is kept in {', '.join(rotated.retired)}: old backups and WAL still need it until "
            "`backup reencrypt` has run; remove it after that (keep a copy off this machine until you are sure)")
    if rotated.shared_with:
        say(f"these default keys are also {', '.join(rotated.shared_with)}'s: new backups of those encrypt to the new "
            "key too; run backup reencrypt for each of them as well")
    if rotated.config_lines:
        say(f"{chosen.name} names keys of its own in cuisine-db.toml: change these lines, then run "
            f"cuisine-db backup reencrypt --env {chosen.name}:")
        for line in rotated.config_lines:
            out.print(line, markup=False, highlight=False)
    else:
        say("environments that pin trusted_signers elsewhere (other hosts) add the new key before the old one:")
        out.print(f'trusted_signers = ["{rotated.signer}", ...]', markup=False, highlight=False)
    say(f"next: cuisine-db backup reencrypt --env {chosen.name} --dry-run, then without --dry-run")


@app.command("rebuild-watermark")
def rebuild_watermark(env: EnvOption = None,
                      dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the mark it would set.")]
                      = False, yes: YesOption = False, json: JsonOption = False) -> None:
    """Replace env's damaged backup high-water mark by the newest signed backup in its repository, after you checked
    it (docs/security.md); the damaged file is kept beside it; asks on every environment."""
    chosen = environment(env)
    rebuilt = commands.rebuild_watermark(settings(), chosen, dry_run=dry_run, yes=yes, ask=word_asker(chosen))
    if json:
        print_json(rebuilt)
        return
    mark = f"sequence {rebuilt.sequence} ({rebuilt.name})" if rebuilt.name else "no mark (no signed backup)"
    if rebuilt.rolled_back:
        say(f"still untrusted as rolled back against each other: {', '.join(rebuilt.rolled_back)}")
    if dry_run:
        say(f"{rebuilt.file} ({rebuilt.damage}) would become {mark}; dry run, nothing was changed")
        return
    kept = f"; the damaged file is kept as {rebuilt.kept_as}" if rebuilt.kept_as else ""
    say(f"{rebuilt.file} is now {mark}{kept}")


@app.command("reencrypt")
def reencrypt(env: EnvOption = None,
              dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would change.")] = False,
              yes: YesOption = False, json: JsonOption = False) -> None:
    """Re-encrypt and re-sign env's trusted backups, archived WAL, archives and incident copies to the keys it uses
    now, creating before swapping (kill -9 safe); protected environments need confirmation (make db-reencrypt env=E
    [dry_run=1] [yes=1])."""
    chosen = environment(env)
    ask = None
    if sys.stdin.isatty() and not json:
        def ask(question: str) -> str:
            return str(typer.prompt(question, default="", show_default=False, err=True))
    report = commands.reencrypt_all(settings(), chosen, dry_run=dry_run, yes=yes, ask=ask,
                                    notify=(lambda _: None) if json else say)
    if json:
        print_json(report)
        return
    table = Table("what", "object", "change", title=f"reencrypt of {chosen.name} ({report.repository})")
    for change in report.changes:
        table.add_row(change.kind, escape(change.subject), escape(change.action))
    for change in report.skipped:
        table.add_row(change.kind, f"[yellow]{escape(change.subject)}[/]", f"[yellow]{escape(change.action)}[/]")
    out.print(table)
    verb = "would change" if dry_run else "changed"
    say(f"{chosen.name}: {verb} {report.backups} backup(s), {report.wal} WAL file(s), {report.archives} archive(s), "
        f"{report.incident_copies} incident file(s), {len(report.changes)} item(s) "
        f"in all, to recipients {', '.join(report.recipients)} and signing key {report.signer}"
        + ("; dry run, nothing was changed" if dry_run else f" in {report.seconds:.1f}s"))
