"""Blinding and scoping as a security property: every service, called as every role, on a patient of
each arm, is scanned (results and exceptions, recursively) for arm codes, arm labels and drug names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from immunosep.conduct import (
    adverse_events,
    biospecimens,
    classification,
    crf,
    dosing,
    edit_checks,
    lock,
    outcomes,
    queries,
    randomization,
    reports,
    screening,
    sdv,
    sites,
    unblinding,
    users,
    withdrawal,
)
from immunosep.protocol import default_protocol
from immunosep.store.db import session_scope

P = default_protocol()
FORBIDDEN = sorted(
    {a.code for a in P.arms}
    | {a.label for a in P.arms}
    | {i.drug for i in P.regimen}
    | {"anakinra", "interferon", "saline"},
    key=str.lower,
)
ROLES = ("inv1", "inv2", "pharm1", "pharm2", "lab", "mon1", "dm", "dsmb", "admin")
BLINDED = ("inv1", "inv2", "lab", "mon1", "dm", "admin")


def _flatten(obj: Any) -> str:
    """Every string reachable from a result or exception (dataclasses, containers, exception chains)."""
    if isinstance(obj, BaseException):
        parts = [type(obj).__name__, str(obj), *(_flatten(a) for a in obj.args)]
        if obj.__cause__ is not None:
            parts.append(_flatten(obj.__cause__))
        if obj.__context__ is not None:
            parts.append(_flatten(obj.__context__))
        return " ".join(parts)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return " ".join(_flatten(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, dict):
        return " ".join(f"{_flatten(k)} {_flatten(v)}" for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return " ".join(_flatten(x) for x in obj)
    if hasattr(obj, "__table__"):  # an ORM row returned by a service
        return " ".join(_flatten(getattr(obj, c.key)) for c in obj.__table__.columns)
    return repr(obj)


def _services(pseudonym: str) -> dict[str, Callable[[Any, Any], Any]]:
    """Every conduct service except emergency unblinding (its disclosure is the documented exception)."""
    return {
        "screen": lambda s, a: screening.screen(
            s,
            a,
            screening.ScreeningInput(
                age_years=50,
                sex="female",
                infection_type="cap",
                sepsis_onset_at=_now(),
                sofa_now=5,
                neutrophils_per_mm3=5000.0,
            ),
        ),
        "consent": lambda s, a: screening.record_consent(s, a, pseudonym, "patient"),
        "screening_log": lambda s, a: screening.screening_log(s, a),
        "draw": lambda s, a: biospecimens.record_draw(
            s, a, pseudonym, 2, ferritin_ng_ml=800.0, hla_dr_per_monocyte=4000.0
        ),
        "classify": lambda s, a: classification.classify_patient(s, a, pseudonym),
        "allocate": lambda s, a: randomization.allocate(s, a, pseudonym),
        "arm_of": lambda s, a: randomization.arm_of(s, a, pseudonym),
        "list_status": lambda s, a: randomization.list_status(s, a, 1),
        "record_day": lambda s, a: crf.record_day(s, a, pseudonym, 3, crf.DailyInputs(gcs=14)),
        "daily_records": lambda s, a: crf.daily_records(s, a, pseudonym),
        "day_regimen": lambda s, a: dosing.day_regimen(s, a, pseudonym, 1),
        "record_dose": lambda s, a: dosing.record_dose(s, a, pseudonym, 2, "iv", 8, given=True),
        "administrations": lambda s, a: dosing.administrations(s, a, pseudonym),
        "record_outcome": lambda s, a: outcomes.record_outcome(s, a, pseudonym, icu_discharge_day=12),
        "get_outcome": lambda s, a: outcomes.get_outcome(s, a, pseudonym),
        "record_ae": lambda s, a: adverse_events.record_adverse_event(
            s,
            a,
            pseudonym,
            onset_day=3,
            term="Anaemia",
            serious=True,
            relatedness="possibly related",
            expected=False,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        ),
        "adverse_events": lambda s, a: adverse_events.adverse_events(s, a, pseudonym),
        "susar_report": lambda s, a: adverse_events.susar_report(s, a),
        "unblinding_report": lambda s, a: unblinding.unblinding_report(s, a),
        "raise_query": lambda s, a: queries.raise_query(
            s, a, pseudonym, table_name="daily_crf", text="check GCS"
        ),
        "answer_query": lambda s, a: queries.answer_query(s, a, 1, "checked"),
        "close_query": lambda s, a: queries.close_query(s, a, 1),
        "list_queries": lambda s, a: queries.list_queries(s, a),
        "reopen_query": lambda s, a: queries.reopen_query(s, a, 1, "the answer does not match the chart"),
        "query_aging": lambda s, a: queries.aging(s, a),
        "run_edit_checks": lambda s, a: edit_checks.run_checks(s, a),
        "sdv_plan": lambda s, a: sdv.patient_plan(s, a, pseudonym),
        "sdv_progress": lambda s, a: sdv.progress(s, a),
        "sdv_verify": lambda s, a: sdv.verify_record(s, a, pseudonym, "daily_crf/1"),
        "lock_patient": lambda s, a: lock.lock_patient(s, a, pseudonym),
        "lock_trial": lambda s, a: lock.lock_trial(s, a),
        "withdraw": lambda s, a: withdrawal.withdraw(s, a, pseudonym, erase_data=False),
        "dsmb_summary": lambda s, a: reports.dsmb_summary(s, a),
        "predictability_report": lambda s, a: reports.predictability_report(s, a),
        "audit_trail": lambda s, a: reports.audit_trail(s, a, pseudonym),
        "list_sites": lambda s, a: sites.list_sites(s, a),
        "create_user": lambda s, a: users.create_user(s, a, "newuser", "long enough pw", "lab"),
    }


def _now():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture
def two_arms(trial, enroll):
    """A randomized patient of each arm at S01, with CRF, doses, an AE and a query."""
    by_arm: dict[str, str] = {}
    while len(by_arm) < 2:
        p = enroll(ferritin=6000.0)
        with session_scope(trial.engine) as s:
            by_arm.setdefault(randomization.arm_of(s, trial.actors["pharm1"], p).arm, p)
    inv, pharm, mon = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["mon1"]
    for p in by_arm.values():
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(weight_kg=70.0, creatinine=3.5, gcs=13))
            dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
            dosing.record_dose(s, pharm, p, 1, "sc", 0, given=False, missed_reason="patient in CT")
            adverse_events.record_adverse_event(
                s,
                inv,
                p,
                onset_day=2,
                term="Thrombocytopenia",
                serious=True,
                relatedness="probably related",
                expected=False,
                criteria=("hospitalization",),
                action="DOSE NOT CHANGED",
                outcome="NOT RECOVERED/NOT RESOLVED",
            )
            queries.raise_query(s, mon, p, table_name="daily_crf", text="confirm creatinine")
    return by_arm


def _norm(text: str, patients: dict[str, str]) -> str:
    for p in patients.values():
        text = text.replace(p, "P")
    return text


def _call(trial, role: str, fn) -> tuple[str, str]:
    """Run one service as one role in a transaction that is rolled back; (kind, scanned text)."""
    session_cm = session_scope(trial.engine)
    s = session_cm.__enter__()
    try:
        out = ("ok", _flatten(fn(s, trial.actors[role])))
    except Exception as exc:
        out = ("error", _flatten(exc))
    finally:
        s.rollback()
        session_cm.__exit__(None, None, None)
    return out


@pytest.mark.requirement("BLIND-01")
def test_no_blinded_role_ever_receives_an_arm_or_a_drug_and_errors_do_not_depend_on_the_arm(trial, two_arms):
    (arm_a, patient_a), (arm_b, patient_b) = sorted(two_arms.items())
    assert {arm_a, arm_b} == {"precision", "placebo"}
    leaks = []
    succeeded: set[tuple[str, str]] = set()
    for role in ROLES:
        for name in _services(patient_a):
            kind_a, text_a = _call(trial, role, _services(patient_a)[name])
            kind_b, text_b = _call(trial, role, _services(patient_b)[name])
            if kind_a == kind_b == "ok":
                succeeded.add((role, name))
            if role in BLINDED:
                for word in FORBIDDEN:
                    for text in (text_a, text_b):
                        if word.lower() in text.lower():
                            leaks.append(f"{role}.{name} leaks {word!r}: {text[:200]}")
                    same = (kind_a, _norm(text_a, two_arms)) == (kind_b, _norm(text_b, two_arms))
                if not same and kind_a == "error":
                    leaks.append(f"{role}.{name}: the error differs between arms: {text_a!r} / {text_b!r}")
            if role in ("dsmb", "admin"):
                for text in (text_a, text_b):
                    if "S01-" in text or "S02-" in text:
                        leaks.append(f"{role}.{name} receives patient-level data: {text[:200]}")
    assert not leaks, "\n".join(leaks)
    # the scan is meaningful: the blinded roles really received their data
    for expected in [
        ("inv1", "record_day"),
        ("inv1", "daily_records"),
        ("inv1", "administrations"),
        ("inv1", "record_ae"),
        ("inv1", "adverse_events"),
        ("inv1", "susar_report"),
        ("inv1", "answer_query"),
        ("inv1", "withdraw"),
        ("mon1", "daily_records"),
        ("mon1", "raise_query"),
        ("mon1", "audit_trail"),
        ("dm", "audit_trail"),
        ("dm", "list_queries"),
        ("dm", "run_edit_checks"),
        ("dm", "sdv_progress"),
        ("mon1", "sdv_plan"),
        ("mon1", "sdv_verify"),
        ("mon1", "query_aging"),
        ("lab", "draw"),
        ("admin", "create_user"),
        ("pharm1", "day_regimen"),
        ("pharm1", "record_dose"),
        ("dsmb", "dsmb_summary"),
        ("dsmb", "predictability_report"),
    ]:
        assert expected in succeeded, expected


@pytest.mark.requirement("BLIND-04")
def test_the_pharmacist_gets_the_regimen_and_the_dsmb_gets_counts_by_arm(trial, two_arms):
    with session_scope(trial.engine) as s:
        precision = dosing.day_regimen(s, trial.actors["pharm1"], two_arms["precision"], 1)
        placebo = dosing.day_regimen(s, trial.actors["pharm1"], two_arms["placebo"], 1)
        summary = reports.dsmb_summary(s, trial.actors["dsmb"])
    assert [d.dummy for d in placebo.doses] == [True, True]
    assert sorted(d.dummy for d in precision.doses) == [False, True]
    assert {a.arm: a.randomized for a in summary}["precision"] >= 1
    assert all(a.patients_with_related_sae >= 1 and a.susars >= 1 for a in summary)


@pytest.mark.requirement("ACC-01")
def test_site_scope_is_enforced_with_one_uniform_error(trial, two_arms):
    p = two_arms["precision"]
    for role in ("inv2", "pharm2"):
        kind, text = _call(
            trial,
            role,
            lambda s, a: (
                crf.daily_records(s, a, p) if a.role != "pharmacist" else dosing.day_regimen(s, a, p, 1)
            ),
        )
        missing_kind, missing_text = _call(
            trial,
            role,
            lambda s, a: (
                crf.daily_records(s, a, "S01-9999")
                if a.role != "pharmacist"
                else dosing.day_regimen(s, a, "S01-9999", 1)
            ),
        )
        assert kind == missing_kind == "error"
        assert text.replace(p, "X") == missing_text.replace("S01-9999", "X")


@pytest.mark.requirement("BLIND-03")
def test_emergency_unblinding_needs_a_reason_discloses_to_the_site_investigator_and_is_reported(
    trial, two_arms
):
    p = two_arms["precision"]
    kind, text = _call(trial, "inv1", lambda s, a: unblinding.emergency_unblind(s, a, p, "short"))
    assert kind == "error" and "reason" in text
    with session_scope(trial.engine) as s:
        d = unblinding.emergency_unblind(s, trial.actors["inv1"], p, "anaphylaxis, treating physician asks")
    assert d.arm == "precision" and d.active_drugs
    with session_scope(trial.engine) as s:
        report = unblinding.unblinding_report(s, trial.actors["dm"])
    assert [(r.pseudonym, r.reason) for r in report] == [(p, "anaphylaxis, treating physician asks")]
    assert not any(w.lower() in _flatten(report).lower() for w in FORBIDDEN)


@pytest.mark.requirement("BLIND-02")
def test_the_blinding_rule_has_one_home_that_storage_reads_too():
    """What the audit trail seals is what ``conduct.blinding`` declares (on the models), and nothing else."""
    from immunosep.conduct import blinding
    from immunosep.store import audit
    from immunosep.store.models import ROLES as ROLE_NAMES
    from immunosep.store.models import RandomizationSlot

    assert (
        blinding.SEALED_COLUMNS
        == audit.SEALED_FIELDS
        == {
            ("randomization_slots", "arm"),
            ("randomization_slots", "kit_number"),
            # a response-adaptive draw (revision 0009): each says or helps guess the arm
            ("randomization_slots", "uniform"),
            ("randomization_slots", "probability"),
            ("randomization_slots", "data_cut"),
            ("randomization_slots", "data_cut_sha256"),
        }
    )
    assert RandomizationSlot.__table__.c.arm.info and not RandomizationSlot.__table__.c.sequence.info
    assert set(ROLE_NAMES) == blinding.UNBLINDED_ROLES | blinding.BLINDED_ROLES
    assert [r for r in ROLE_NAMES if not blinding.is_blinded(r)] == ["pharmacist", "dsmb"]
    assert blinding.is_blinded("somebody new")
    assert {t for t, _ in blinding.SEALED_COLUMNS} <= blinding.ALLOCATION_TABLES
    for table in blinding.ALLOCATION_TABLES:
        assert not blinding.audit_entry_visible("monitor", table)
        assert blinding.audit_entry_visible("dsmb", table)
    assert blinding.audit_entry_visible("monitor", "daily_crf")


@pytest.mark.requirement("EXP-02", "BLIND-02")
def test_a_blinded_export_drops_the_arm_and_dose_and_masks_the_drug():
    from immunosep.conduct import blinding
    from immunosep.conduct.export import VARIABLES

    for domain, variables in VARIABLES.items():
        full = blinding.export_variables(domain, variables, blinded=False)
        blinded = blinding.export_variables(domain, variables, blinded=True)
        assert full == list(variables)
        assert set(full) - set(blinded) == set(blinding.SEALED_EXPORT_VARIABLES.get(domain, ()))
        assert set(blinding.export_masks(domain, blinded=True)) <= set(blinded)
        assert blinding.export_masks(domain, blinded=False) == {}
    assert {"ARMCD", "ARM"} <= set(VARIABLES["DM"]) and {"EXDOSE", "EXDOSU", "EXTRT"} <= set(VARIABLES["EX"])
    assert blinding.export_masks("EX", blinded=True) == {"EXTRT": blinding.MASKED_TREATMENT}
