"""Investigator pages: the dashboard and the patient page (the record every other page links back to).

The forms about a patient mirror ``web.api``: screening, consent, classification and randomization in
:mod:`.screening`, the daily CRF and outcomes in :mod:`.clinical_data`, adverse events, emergency
unblinding and withdrawal in :mod:`.safety`.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Template
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct import sdv
from immunosep.conduct.access import Actor, get_patient, scope_site_ids
from immunosep.conduct.adverse_events import adverse_events
from immunosep.conduct.crf import daily_records
from immunosep.conduct.dosing import administrations
from immunosep.conduct.outcomes import get_outcome
from immunosep.conduct.permissions import can, require
from immunosep.conduct.queries import aging
from immunosep.conduct.screening import CONSENT_GIVERS
from immunosep.conduct.sdv import Progress
from immunosep.conduct.signatures import (
    Credentials,
    casebook_signatures,
    first_signing,
    meanings_for,
    require_casebook_signer,
    sign_casebook,
)
from immunosep.conduct.sites import list_sites
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.worklist import PatientLine, due_tasks, step_tasks, worklist
from immunosep.errors import ImmunoSepError
from immunosep.report.casebook_pdf import casebook_pdf
from immunosep.store.models import User
from immunosep.web.deps import TransactionRoute, current_actor, get_db, inline
from immunosep.web.forms import FormErrors, form_data, text
from immunosep.web.pages._render import flash, render
from immunosep.web.security import session_token
from immunosep.web.signing import signing

router = APIRouter(route_class=TransactionRoute)


# -- dashboard ------------------------------------------------------------------------------------------
@router.get("/dashboard")
@inline
def dashboard(
    request: Request,
    site: str | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> Response:
    """Patients in scope, today's tasks, overdue CRFs and draws (investigators, monitors, data managers);
    ``?site=S03`` narrows the list to one site for those who see several."""
    if scope_site_ids(actor) is None:
        sites = [info.code for info in list_sites(db, actor)]
    else:
        sites = list(actor.site_codes) if len(actor.site_codes) > 1 else []
    work = worklist(db, actor, site=site or None)
    oversight: dict[str, Any] = {}
    if can(actor, "read_sdv"):  # the monitor's and data manager's view: SDV progress and query aging
        sdv_sites, sdv_patients = sdv.progress(db, actor)
        oversight = {
            "sdv_sites": sdv_sites,
            "sdv_patients": {x.name: x for x in sdv_patients},
            "aging": {a.site: a for a in aging(db, actor)},
        }
    templates: Jinja2Templates = request.app.state.templates
    # every patient's parts joined here: one value each in the template, not a loop over the patients
    tasks, overdue, rows = _joined(_patient_parts(templates, work.patients, oversight.get("sdv_patients")))
    return render(
        request,
        "dashboard.html",
        actor,
        db,
        title="Dashboard",
        work=work,
        tasks_html=tasks,
        overdue_html=overdue,
        rows_html=rows,
        sites=sites,
        site=site or "",
        **oversight,
    )


class _Parts(NamedTuple):
    """One patient's parts of the dashboard (``_dashboard_patient.html``): its items of today's tasks (due
    today, then the next step), of the Overdue list, and its row of the Patients table."""

    due: Markup
    step: Markup
    overdue: Markup
    row: Markup


def _joined(parts: list[_Parts]) -> tuple[Markup, Markup, Markup]:
    """The page's lists from the patients' parts: today's tasks (every due item first), overdue, rows."""
    return (
        _concat([p.due for p in parts] + [p.step for p in parts]),
        _concat([p.overdue for p in parts]),
        _concat([p.row for p in parts]),
    )


def _concat(items: list[Markup]) -> Markup:
    """Markup already escaped (the template's macros made it), joined as text: ``Markup.join`` escapes each
    item again, a no-op for Markup that cost 30 µs of a site's dashboard (60 items), 2 % of its CPU."""
    if not all(type(x) is Markup for x in items):
        raise TypeError("only Markup from the template's macros is joined unescaped")
    return Markup("".join(items))  # noqa: S704 (every item is Markup, checked above)


#: Each patient's :class:`_Parts`, per template, by the line's id, its SDV progress (None without) and
#: whether the SDV column is shown; each entry holds its line, so that id names no other line while it is
#: kept. The parts are a function of those alone, and the worklist gives the same line object while its
#: patient's row and the day are the same (:func:`~immunosep.conduct.worklist.worklist`), so a site's
#: dashboard renders none most of the time: rendering them cost 0.25 ms of the 2.1 ms of CPU of a site of
#: 15 patients with 40 CRF days each, and keying them by value (hashing and comparing each line) 0.03 ms.
_PARTS: WeakKeyDictionary[Template, dict[tuple[int, Progress | None, bool], tuple[PatientLine, _Parts]]] = (
    WeakKeyDictionary()
)
_PARTS_MAX = 8192  # parts per template (a data manager's dashboard of 667 patients fits many times)


def _patient_parts(
    templates: Jinja2Templates, lines: list[PatientLine], sdv_of: dict[str, Progress] | None
) -> list[_Parts]:
    """Each line's parts, in order; ``sdv_of`` (SDV progress by pseudonym) adds the SDV column."""
    template = templates.get_template("_dashboard_patient.html")
    made = _PARTS.get(template)
    if made is None:
        made = _PARTS[template] = {}
    with_sdv = sdv_of is not None
    parts = []
    for line in lines:
        x = sdv_of.get(line.pseudonym) if sdv_of is not None else None
        key = (id(line), x, with_sdv)
        entry = made.get(key)
        if entry is None or entry[0] is not line:
            m: Any = template.module  # the template's macros
            entry = (
                line,
                _Parts(
                    m.tasks(due_tasks(line)),
                    m.tasks(step_tasks(line)),
                    m.overdue(line),
                    m.row(line, x, with_sdv),
                ),
            )
            if len(made) >= _PARTS_MAX:
                made.clear()
            made[key] = entry
        parts.append(entry[1])
    return parts


# -- patient page ---------------------------------------------------------------------------------------
@router.get("/patients/{pseudonym}")
def patient_page(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "open_patient_record")
    patient = get_patient(db, actor, pseudonym)
    randomized = patient.status == "randomized"
    p = protocol_of(db)
    return render(
        request,
        "patient.html",
        actor,
        db,
        title=pseudonym,
        patient=patient,
        stratum_label={s.code: s.label for s in p.strata}.get(patient.stratum or "", ""),
        days=daily_records(db, actor, pseudonym) if randomized else [],
        doses=administrations(db, actor, pseudonym) if randomized else [],
        aes=adverse_events(db, actor, pseudonym) if randomized else [],
        outcome=get_outcome(db, actor, pseudonym) if randomized else None,
        givers=CONSENT_GIVERS,
        treatment_days=p.treatment.days,
        signatures=casebook_signatures(db, actor, pseudonym)[1] if can(actor, "read_signatures") else [],
    )


# -- electronic signature of the casebook, and the casebook as a PDF ----------------------------------
def _sign_form(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    errors: FormErrors,
    meaning: str = "",
    status_code: int = 200,
) -> Response:
    book, signatures = casebook_signatures(db, actor, pseudonym)
    return render(
        request,
        "sign.html",
        actor,
        db,
        status_code=status_code,
        title=f"Sign {pseudonym}",
        pseudonym=pseudonym,
        digest=book.digest,
        records=len(book.records),
        signatures=signatures,
        meanings=meanings_for(actor, "casebook"),
        meaning=meaning,
        ask_username=first_signing(db, actor, session_token(request.session)),
        printed_name=db.execute(select(User.full_name).where(User.id == actor.user_id)).scalar() or "",
        errors=errors,
    )


@router.get("/patients/{pseudonym}/sign")
def sign_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """The signature form: the meaning, the password (and the username at the session's first signing)."""
    require_casebook_signer(actor)
    return _sign_form(request, actor, db, pseudonym, FormErrors())


@router.post("/patients/{pseudonym}/sign")
def sign_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Sign the casebook as it stands; a refused signing is audited and counted like a failed login."""
    require_casebook_signer(actor)
    errors = FormErrors()
    meaning, password = text(form, "meaning"), str(form.get("password") or "")
    if not password:
        errors.add("password", "required: re-enter your password to sign")
    if not meaning:
        errors.add("meaning", "required: choose what your signature means")
    if not errors:
        creds = Credentials(password, text(form, "username"))
        token = session_token(request.session)
        try:
            view = signing(
                request,
                db,
                actor,
                lambda: sign_casebook(db, actor, pseudonym, meaning, creds, session_token=token),
            )
        except ImmunoSepError as exc:
            db.rollback()
            if exc.field not in ("password", "meaning"):
                errors.add("_form", exc.message)
            else:
                errors.add(exc.field, exc.message)
        else:
            flash(request, "ok", f"Casebook {pseudonym} signed: {view.manifestation}.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _sign_form(request, actor, db, pseudonym, errors, meaning, status_code=422)


@router.get("/patients/{pseudonym}/casebook.pdf")
def casebook_pdf_page(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """The patient's casebook as a PDF, with every signature's printed name, meaning, time and status."""
    require(actor, "print_casebook")
    book, signatures = casebook_signatures(db, actor, pseudonym)
    usernames = {int(uid): str(name) for uid, name in db.execute(select(User.id, User.username))}
    pdf = casebook_pdf(book, signatures, trial_code=protocol_of(db).trial.code, usernames=usernames)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="casebook-{pseudonym}.pdf"'},
    )
