"""Trial database commands: ``db init|upgrade|replay``, ``audit verify|report``, ``user add|passwd|reset|set-name``,
``queries run-checks``, ``lock``, ``export`` (SDTM, CDISC ODM).

These act with database access (the operator's credentials), not as a logged-in user: the CLI is the
tool of the trial's data management team.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from immunosep.commands._output import console, print_json, print_table
from immunosep.errors import ImmunoSepError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

# db init refuses more at once: beyond these the sealed lists take hours to write (a sites x slots loop)
MAX_SITES = 999
MAX_SLOTS_PER_SITE = 10_000
DB_HELP = "Database URL: sqlite:///trial.db or postgresql+psycopg://user@host/db."

db_app = typer.Typer(help="Create and migrate the trial database.", no_args_is_help=True)
audit_app = typer.Typer(help="Check and report the audit trail.", no_args_is_help=True)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
queries_app = typer.Typer(help="Data queries and the automatic edit checks.", no_args_is_help=True)


@db_app.command("init")
def db_init(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    protocol_file: Path | None = typer.Option(None, "--protocol", help="Protocol TOML (default: ImmunoSep)."),
    sites: int | None = typer.Option(
        None, "--sites", help="Number of sites (default: protocol trial.sites)."
    ),
    seed: str | None = typer.Option(
        None, "--seed", help="Secret seed of the randomization lists (default: a fresh random secret)."
    ),
    slots: int | None = typer.Option(None, "--slots-per-site", help="Minimum list length per site."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Create the schema (alembic upgrade head) and seed the trial, its sites and sealed lists."""
    from immunosep.conduct.trial import init_trial

    for name, value, high in (("--sites", sites, MAX_SITES), ("--slots-per-site", slots, MAX_SLOTS_PER_SITE)):
        if value is not None and value > high:
            raise ImmunoSepError(f"{name} must be at most {high:,}, got {value}")
    result = init_trial(db, protocol_file, sites, seed=seed, slots_per_site=slots)
    if as_json:
        print_json(result)
        return
    console.print(
        f"[green]ok[/green]: trial {result.trial_code} with {len(result.site_codes)} sites "
        f"({result.site_codes[0]}..{result.site_codes[-1]}), {result.slots_per_site}+ sealed slots per site"
    )
    if seed is None:
        console.print(
            "randomization seed (store it offline; it regenerates the lists and replays adaptive draws): "
            f"[bold]{result.seed}[/bold]"
        )


@db_app.command("upgrade")
def db_upgrade(db: str = typer.Option(..., "--db", help=DB_HELP)) -> None:
    """Migrate the schema to the newest revision."""
    from immunosep.store.db import upgrade_db

    upgrade_db(db)
    console.print("[green]ok[/green]: schema at the newest revision")


@db_app.command("replay")
def db_replay(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    seed: str = typer.Option(
        ..., "--seed", prompt="randomization seed", hide_input=True, help="The seed `db init` printed."
    ),
) -> None:
    """Re-derive every randomization slot from the seed (block lists; adaptive draws from their data cuts).

    Prints counts and, for slots that differ, the site and sequence only (never an arm); exit 1 if any.
    """
    from immunosep.conduct.randomization import replay_allocations
    from immunosep.store.db import make_engine

    engine = make_engine(db)
    try:
        with _snapshot(engine) as session:
            result = replay_allocations(session, seed)
    finally:
        engine.dispose()
    if result.ok:
        console.print(
            f"[green]ok[/green]: {result.slots} slots ({result.design} design), {result.allocations} "
            "allocations: every one re-derived from the seed"
        )
        return
    print_table(
        f"Randomization replay: {len(result.differ)} slot(s) differ",
        [(site, str(sequence)) for site, sequence in result.differ],
        ("site", "sequence"),
    )
    raise typer.Exit(1)


@db_app.command("rebuild-crf-days")
def db_rebuild_crf_days(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Write afresh, from the daily CRF rows, each patient's list of CRF days that disagrees with them.

    The dashboard shows these lists (table crf_days_entered, kept by a trigger, not audited); `audit verify`
    names one that disagrees. The CRF rows themselves, and the audit trail, are left as they are.
    """
    from immunosep.store import crf_days
    from immunosep.store.db import make_engine, session_scope

    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            rebuilt = crf_days.rebuild(session)
    finally:
        engine.dispose()
    if as_json:
        print_json({"rebuilt": rebuilt})
    elif rebuilt:
        console.print(f"[green]ok[/green]: {len(rebuilt)} list(s) of CRF days rebuilt: {', '.join(rebuilt)}")
    else:
        console.print("[green]ok[/green]: every patient's list of CRF days agrees with the daily CRF rows")


KEY_FILE_HELP = (
    "File holding the data manager's checkpoint key (default: $IMMUNOSEP_AUDIT_KEY_FILE, "
    "else $IMMUNOSEP_AUDIT_KEY)."
)


@audit_app.command("verify")
def audit_verify(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A head.json from `audit checkpoint` or `lock`: detects truncation."
    ),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_FILE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Walk the hash chain and replay it against the live tables; exit 1 naming every finding.

    Prints tables, rows and kinds of findings, never a value (a sealed column is only "changed").
    """
    from immunosep.store.audit import checkpoint_key, read_checkpoint, verify
    from immunosep.store.db import make_engine

    anchor = None
    if checkpoint is not None:
        anchor = read_checkpoint(_read_json(checkpoint), checkpoint_key(key_file))
    engine = make_engine(db)
    try:
        with _snapshot(engine) as session:
            result = verify(session, anchor)
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "erased_entries": result.erased_entries,
                "rows_checked": result.rows_checked,
                "checkpoint": anchor,
                "problems": list(result.problems),
                "findings": list(result.findings),
            }
        )
    elif result.ok:
        against = (
            f"; the checkpoint of {anchor.at} ({anchor.head.entries} entries) is in the chain"
            if anchor
            else "; no --checkpoint given, so entries removed from the end would not show"
        )
        console.print(
            f"[green]ok[/green]: {result.entries} audit entries verified ({result.erased_entries} erased), "
            f"{result.rows_checked} live rows match the trail{against}"
        )
    else:
        print_table(
            f"Audit trail: {len(result.findings)} finding(s)",
            [(f.table, f.row, f.kind) for f in result.findings],
            ("table", "row / entry", "finding"),
        )
    if not result.ok:
        raise typer.Exit(1)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session that sees one snapshot for all its statements, beside running writers.

    SQLite: the read-only pool's deferred transaction; PostgreSQL: a REPEATABLE READ, READ ONLY
    transaction (the read-only pool runs each statement on its own, which could mix two states).
    """
    from immunosep.store.db import session_scope

    if engine.dialect.name == "sqlite":
        with session_scope(engine, read_only=True) as session:
            yield session
        return
    with session_scope(engine) as session:
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        yield session


def _read_json(path: Path) -> object:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImmunoSepError(f"cannot read the checkpoint {path}: {exc.strerror}") from None
    except ValueError:
        raise ImmunoSepError(f"{path} is not JSON: give a head.json made by `audit checkpoint`") from None


@audit_app.command("checkpoint")
def audit_checkpoint(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the signed head (head.json); keep it off the server."
    ),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_FILE_HELP),
) -> None:
    """Sign the chain's head (entry count, last id and hash) with the data manager's key (HMAC-SHA256)."""
    from immunosep.store.audit import checkpoint, checkpoint_key
    from immunosep.store.db import make_engine

    key = checkpoint_key(key_file)
    engine = make_engine(db)
    try:
        with _snapshot(engine) as session:
            head = checkpoint(session, key)
    finally:
        engine.dispose()
    _write_checkpoint(out, head)
    console.print(
        f"[green]ok[/green]: checkpoint of {head['entries']} audit entries (last {head['last_id']}, "
        f"hash {head['last_hash']}) written to {out}",
        soft_wrap=True,
    )


def _write_checkpoint(out: Path, head: dict[str, object]) -> None:
    import json

    try:
        out.write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ImmunoSepError(f"cannot write the checkpoint to {out}: {exc.strerror}") from None


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ImmunoSepError(f"{option} {value!r} is not a date: give it as YYYY-MM-DD (UTC)") from None


@audit_app.command("report")
def audit_report_command(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    out: Path = typer.Option(..., "--out", help="The file to write (CSV or PDF)."),
    fmt: str = typer.Option("csv", "--format", help="csv or pdf."),
    site: str = typer.Option("", "--site", help="Only the entries of this site's patients (code, e.g. S01)."),
    patient: str = typer.Option("", "--patient", help="Only this patient's entries (pseudonym)."),
    user: str = typer.Option("", "--user", help="Only the entries this user made (username)."),
    date_from: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD (UTC)."),
    date_to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (UTC), inclusive."),
) -> None:
    """Export the study's audit trail (blinded: no allocation records) as CSV or PDF; the export is logged."""
    from immunosep.conduct.audit_report import EXPORT_FORMATS, AuditFilters, audit_report, to_csv
    from immunosep.store.db import make_engine, session_scope

    fmt = fmt.strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise ImmunoSepError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    filters = AuditFilters(site, patient, user, _day(date_from, "--from"), _day(date_to, "--to"))
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            report = audit_report(session, None, filters, export_format=fmt)
    finally:
        engine.dispose()
    if fmt == "pdf":
        from immunosep.report.audit_pdf import audit_report_pdf

        out.write_bytes(audit_report_pdf(report))
    else:
        out.write_text(to_csv(report), encoding="utf-8")
    console.print(f"[green]ok[/green]: {len(report.rows)} audit entries written to {out}", soft_wrap=True)


@user_app.command("add")
def user_add(
    name: str | None = typer.Argument(None, help="Login name (or --username).", show_default=False),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    username_option: str | None = typer.Option(None, "--username", help="Login name."),
    role: str = typer.Option(
        ..., "--role", help="investigator, pharmacist, lab, monitor, data_manager, dsmb, admin."
    ),
    site: list[str] = typer.Option([], "--site", help="Home site (S01), or each assigned site of a monitor."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    full_name: str = typer.Option(
        "", "--full-name", help="The printed name of the user's electronic signatures (21 CFR 11.50)."
    ),
) -> None:
    """Create a user account (the password never appears on the command line)."""
    from immunosep.conduct.users import create_user
    from immunosep.store.db import make_engine, session_scope

    if (name is None) == (username_option is None) or (name or username_option or "") == "":
        raise ImmunoSepError("give the login name once: --username NAME (or as the first argument)")
    username = str(name or username_option)

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            user = create_user(session, None, username, password, role, site, full_name=full_name)
            stored = user.username
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green]: user {stored} ({role})")


@user_app.command("set-name")
def user_set_name(
    name: str = typer.Argument(..., help="Login name."),
    full_name: str = typer.Argument(..., help='The full name, e.g. "Irene Ivanova".'),
    db: str = typer.Option(..., "--db", help=DB_HELP),
) -> None:
    """Set the full name a user's electronic signatures print (an account without one cannot sign)."""
    from immunosep.conduct.users import set_full_name
    from immunosep.store.db import make_engine, session_scope

    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            user = set_full_name(session, None, name, full_name)
            stored, printed = user.username, user.full_name
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green]: {stored} signs as {printed}")


def _read_password(password_stdin: bool, prompt: str) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


@user_app.command("passwd")
def user_passwd(
    name: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the current password, then the new one, one a line, from stdin."
    ),
) -> None:
    """Change your own password: the current one proves it; your web sessions end."""
    from immunosep.conduct.access import actor_for
    from immunosep.conduct.users import authenticate, change_password
    from immunosep.store.db import make_engine, session_scope

    if password_stdin:
        old = sys.stdin.readline().rstrip("\r\n")
    else:
        old = str(typer.prompt("Current password", hide_input=True))
    new = _read_password(password_stdin, "New password")
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            user = authenticate(session, name, old, rehash=False)
            if user is None:
                raise ImmunoSepError("wrong username or current password")
            change_password(session, actor_for(session, user), old, new)
            stored = user.username
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green]: password of {stored} changed; its sessions ended")


@user_app.command("reset")
def user_reset(
    name: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    reason: str = typer.Option(..., "--reason", help="Why (audited): how the user's identity was checked."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Set a forgotten password (the system owner, with database access); the reason is audited."""
    from immunosep.conduct.users import reset_password
    from immunosep.store.db import make_engine, session_scope

    password = _read_password(password_stdin, "New password")
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            result = reset_password(session, None, name, password, reason)
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green]: password of {result.username} reset; its sessions ended")


def lock(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    patient: list[str] = typer.Option([], "--patient", help="Lock only these patients (pseudonyms)."),
    checkpoint_out: Path | None = typer.Option(
        None, "--checkpoint-out", help="Also write the signed audit head at the trial lock to this file."
    ),
    key_file: Path | None = typer.Option(None, "--key-file", help=KEY_FILE_HELP),
    sign: str | None = typer.Option(
        None,
        "--sign",
        help='Sign the trial lock as this data manager ("database lock approved"); asks for the password.',
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="With --sign: read the data manager's password from stdin."
    ),
) -> None:
    """Lock patients, or (without --patient) every randomized patient and then the trial.

    The trial lock prints the audit chain's head (entries, last entry, hash) and, when the data manager's
    checkpoint key is set, its HMAC: the same head.json `audit verify --checkpoint` checks. With --sign the
    data manager signs the lock with username and password (21 CFR 11.200); a wrong one locks nothing and
    is audited.
    """
    from sqlalchemy import select

    from immunosep.conduct.lock import LockResult, lock_trial
    from immunosep.conduct.signatures import Credentials, SignatureRefused, record_refusal
    from immunosep.store import audit
    from immunosep.store.db import make_engine, session_scope
    from immunosep.store.models import Patient, Query, utcnow

    credentials = None
    if sign is not None:
        if patient:
            raise ImmunoSepError("--sign signs the trial lock: leave out --patient")
        if password_stdin:
            secret = sys.stdin.readline().rstrip("\r\n")
        else:
            secret = str(typer.prompt(f"Password of {sign} (signs the lock)", hide_input=True))
        credentials = Credentials(secret, sign)
    key: bytes | None = None
    if checkpoint_out is not None or key_file is not None:
        key = audit.checkpoint_key(key_file)  # refuse before locking anything
    else:
        try:
            key = audit.checkpoint_key()
        except ImmunoSepError:
            key = None
    result: LockResult | None = None
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            wanted = select(Patient).where(Patient.locked_at.is_(None), Patient.status == "randomized")
            if patient:
                wanted = select(Patient).where(Patient.pseudonym.in_(patient))
            rows = session.execute(wanted).scalars().all()
            missing = sorted(set(patient) - {p.pseudonym for p in rows})
            if missing:
                raise ImmunoSepError(f"no patients {', '.join(missing)}")
            open_q = (
                session.execute(
                    select(Patient.pseudonym)
                    .join(Query, Query.patient_id == Patient.id)
                    .where(Query.status != "closed", Patient.id.in_([p.id for p in rows]))
                )
                .scalars()
                .all()
            )
            if open_q:
                raise ImmunoSepError(f"patients with queries not closed: {', '.join(sorted(set(open_q)))}")
            audit.set_context(session, None, "data lock (command line)")
            now = utcnow()
            for p in rows:
                p.locked_at = now
            session.flush()
            if not patient:
                result = lock_trial(session, None, credentials=credentials)
    except SignatureRefused as exc:
        with session_scope(engine) as session:
            record_refusal(session, None, exc.refused)
        raise
    finally:
        engine.dispose()
    console.print(f"[green]ok[/green]: locked {len(rows)} patient(s)" + ("" if patient else " and the trial"))
    if result is not None and result.signature is not None:
        console.print(f"signed: {result.signature.manifestation}", soft_wrap=True)
    if result is None or result.audit_head is None:
        return
    head = result.audit_head
    console.print(
        f"audit trail at the lock: {head.entries} entries, last entry {head.last_id}, SHA-256 {head.last_hash}",
        soft_wrap=True,
    )
    if key is None:
        console.print(
            f"no checkpoint key set ({audit.KEY_FILE_ENV}): sign this head with `immunosep audit checkpoint` "
            "and keep head.json off the server",
            soft_wrap=True,
        )
        return
    signed = audit.sign_head(head, result.what, key)
    console.print(f"checkpoint HMAC-SHA256 (data manager's key): {signed['hmac']}", soft_wrap=True)
    if checkpoint_out is not None:
        _write_checkpoint(checkpoint_out, signed)
        console.print(f"checkpoint written to {checkpoint_out}", soft_wrap=True)


def export(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    out: Path | None = typer.Option(None, "--out", help="Output directory of the SDTM datasets."),
    odm_file: Path | None = typer.Option(
        None, "--odm", help="Write the clinical data as a CDISC ODM 1.3.2 file (before or after lock)."
    ),
    unblinded: bool = typer.Option(False, "--unblinded", help="Include arms, drugs and doses (after lock)."),
) -> None:
    """Write the locked trial as SDTM (SDTMIG 3.4): XPT v5, CSV and Parquet per dataset, and a dictionary;
    with ``--odm FILE`` the clinical data with their audit records as CDISC ODM 1.3.2."""
    from immunosep.conduct.export import export_sdtm
    from immunosep.conduct.odm import export_odm
    from immunosep.store.db import make_engine, session_scope

    if out is None and odm_file is None:
        raise ImmunoSepError("say what to write: --out DIR (SDTM datasets), --odm FILE (CDISC ODM), or both")
    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            result = export_sdtm(session, None, out, unblinded=unblinded) if out is not None else None
            odm = export_odm(session, None, odm_file, unblinded=unblinded) if odm_file is not None else None
    finally:
        engine.dispose()
    if odm is not None:
        console.print(
            f"ODM 1.3.2 ({'blinded' if odm.blinded else 'UNBLINDED'}) written to {odm.path}: {odm.subjects} "
            f"subjects, {odm.item_data} values, {odm.audit_records} audit records, {odm.size_bytes:,} bytes",
            soft_wrap=True,
        )
    if result is not None:
        print_table(
            f"Exported to {result.out_dir} ({'blinded' if result.blinded else 'UNBLINDED'})",
            sorted(result.rows.items()),
            ("domain", "rows"),
        )


@queries_app.command("run-checks")
def queries_run_checks(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    as_user: str = typer.Option(
        ..., "--as", help="The data manager's login name: the queries opened and closed are attributed to it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Run every automatic edit check (range, cross-field, missed visit) on every unlocked patient.

    Idempotent: a finding that already has a query keeps it; a query whose data were corrected is closed.
    """
    from dataclasses import asdict

    from sqlalchemy import select

    from immunosep.conduct.access import actor_for
    from immunosep.conduct.edit_checks import run_checks
    from immunosep.conduct.users import normalize_username
    from immunosep.store.db import make_engine, session_scope
    from immunosep.store.models import User

    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            user = session.execute(
                select(User).where(User.username == normalize_username(as_user))
            ).scalar_one_or_none()
            if user is None:
                raise ImmunoSepError(f"no user {as_user!r}; give a data manager's login name with --as")
            run = run_checks(session, actor_for(session, user))
    finally:
        engine.dispose()
    if as_json:
        print_json(asdict(run))
        return
    print_table(
        "Edit checks",
        [
            ("patients checked", run.patients),
            ("queries opened", run.opened),
            ("queries closed (data corrected)", run.closed),
            ("queries still open (found again)", run.kept),
        ],
        ("", ""),
    )


def register(app: typer.Typer) -> None:
    """Register this group's commands on the main app."""
    app.add_typer(db_app, name="db")
    app.add_typer(audit_app, name="audit")
    app.add_typer(user_app, name="user")
    app.add_typer(queries_app, name="queries")
    app.command("lock")(lock)
    app.command("export")(export)
