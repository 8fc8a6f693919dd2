"""Electronic signatures on both backends: components per session, refusals audited, the digest of the
casebook, invalidation in the transaction of a change, and no arm in what is signed."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select, update

from immunosep.conduct import adverse_events, crf, lock, signatures, users
from immunosep.conduct.casebook import casebook_of
from immunosep.conduct.signatures import Credentials, SignatureRefused, sign_casebook
from immunosep.errors import AccessDenied, Conflict, ImmunoSepError
from immunosep.store.audit import verify
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry, Patient, RandomizationSlot, Signature

PASSWORD = "correct horse battery"
APPROVED = "approved as investigator"


def _login(trial, username: str) -> str:  # type: ignore[no-untyped-def]
    """A live login session of ``username`` (its token), as the web starts one."""
    with session_scope(trial.engine) as s:
        return users.start_session(s, trial.actors[username].user_id, "test")


def _sign(
    trial,
    pseudonym: str,
    creds: Credentials,
    token: str | None = None,
    who: str = "inv1",
    meaning: str = APPROVED,
):  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        return sign_casebook(s, trial.actors[who], pseudonym, meaning, creds, session_token=token)


def _correct_gcs(trial, pseudonym: str, gcs: int) -> None:  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], pseudonym, 1, crf.DailyInputs(gcs=gcs), reason="typo")


def _patient_id(trial, pseudonym: str) -> int:  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        return int(s.execute(select(Patient.id).where(Patient.pseudonym == pseudonym)).scalar_one())


@pytest.mark.requirement("SIG-01", "SIG-02", "SIG-04")
def test_a_signature_shows_printed_name_time_meaning_and_the_digest_of_the_casebook(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(gcs=14, creatinine=1.0))
    view = _sign(trial, p, Credentials(PASSWORD, "inv1"))
    assert (view.printed_name, view.username, view.meaning, view.valid) == (
        "Inv1 Tester",
        "inv1",
        APPROVED,
        True,
    )
    assert view.signed_at.endswith("Z") and len(view.signed_at) == 20  # 2026-12-06T23:10:00Z
    assert view.components == "username+password"
    pid = _patient_id(trial, p)
    with session_scope(trial.engine) as s:
        book = casebook_of(s, pid)
        assert view.digest == hashlib.sha256(book.text().encode()).hexdigest() == book.digest
        _, shown = signatures.casebook_signatures(s, trial.actors["mon1"], p)
        assert [v.status for v in shown] == ["valid"]
        assert verify(s).ok


@pytest.mark.requirement("SIG-03")
def test_first_signing_of_a_session_takes_both_components_later_ones_the_password(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    a, b = enroll(), enroll()
    token = _login(trial, "inv1")
    with pytest.raises(SignatureRefused, match="first signing"):
        _sign(trial, a, Credentials(PASSWORD), token)
    first = _sign(trial, a, Credentials(PASSWORD, "INV1 "), token)  # the username as typed is normalised
    second = _sign(trial, b, Credentials(PASSWORD), token)
    assert (first.components, second.components) == ("username+password", "password")
    # a new login session starts over; without a session (the command line) both are always needed
    with pytest.raises(SignatureRefused, match="first signing"):
        _sign(
            trial, b, Credentials(PASSWORD), _login(trial, "dm"), who="dm", meaning="reviewed as data manager"
        )
    with pytest.raises(SignatureRefused):
        _sign(trial, b, Credentials(PASSWORD), None, who="dm", meaning="reviewed as data manager")
    # an ended session signs nothing
    with session_scope(trial.engine) as s:
        users.end_session(s, token)
    with pytest.raises(AccessDenied, match="session has ended"):
        _sign(trial, b, Credentials(PASSWORD, "inv1"), token)


@pytest.mark.requirement("SIG-05")
def test_a_wrong_password_or_another_users_name_signs_nothing_and_the_refusal_is_audited(
    trial, enroll
) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    for creds in (Credentials("wrong password!", "inv1"), Credentials(PASSWORD, "inv2")):
        with pytest.raises(SignatureRefused) as refused:
            _sign(trial, p, creds)
        assert "correct horse" not in str(refused.value)
        with session_scope(trial.engine) as s:
            signatures.record_refusal(s, trial.actors["inv1"], refused.value.refused)
    pid = _patient_id(trial, p)
    with session_scope(trial.engine) as s:
        assert s.execute(select(Signature)).first() is None
        entries = s.execute(select(AuditEntry).where(AuditEntry.action == "refused")).scalars().all()
        assert [(e.table_name, e.user_id, e.subject_id) for e in entries] == [
            ("signatures", trial.actors["inv1"].user_id, pid)
        ] * 2
        assert json.loads(entries[0].new_value)["patient"] == p and PASSWORD not in entries[0].new_value
        assert "electronic signature refused" in entries[0].reason
        assert verify(s).ok


@pytest.mark.requirement("SIG-06", "SIG-07")
def test_a_change_invalidates_the_signature_in_its_transaction_and_says_what_changed(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(gcs=14))
    signed = _sign(trial, p, Credentials(PASSWORD, "inv1"))
    with pytest.raises(Conflict, match="already signed"):
        _sign(trial, p, Credentials(PASSWORD, "inv1"))
    _correct_gcs(trial, p, 12)
    with session_scope(trial.engine) as s:
        sig = s.get(Signature, signed.id)
        assert sig is not None and sig.invalidated_at is not None
        assert sig.invalidated_reason == "record changed after signing: Daily CRF, day 1 changed"
        _, (view,) = signatures.casebook_signatures(s, trial.actors["inv1"], p)
        assert view.status == "invalidated: record changed after signing"
        assert view.changes == ("Daily CRF, day 1 changed",)
        entry = s.execute(
            select(AuditEntry).where(
                AuditEntry.table_name == "signatures", AuditEntry.field == "invalidated_at"
            )
        ).scalar_one()
        assert entry.user_id == trial.actors["inv1"].user_id and entry.reason == "typo"
        assert verify(s).ok
    # re-signing the changed casebook gives a new, valid signature; the old one stays invalidated
    again = _sign(trial, p, Credentials(PASSWORD, "inv1"))
    assert again.valid and again.digest != signed.digest
    with session_scope(trial.engine) as s:
        _, views = signatures.casebook_signatures(s, trial.actors["dm"], p)
        assert [v.valid for v in views] == [False, True]
    # a new adverse event invalidates too, and is named
    with session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(
            s, trial.actors["inv1"], p, onset_day=2, term="Septic shock", serious=True,
            relatedness="unrelated", expected=True, criteria=("hospitalization",),
            action="DOSE NOT CHANGED", outcome="RECOVERING/RESOLVING",
        )  # fmt: skip
    with session_scope(trial.engine) as s:
        _, views = signatures.casebook_signatures(s, trial.actors["dm"], p)
        assert views[1].changes == ("Adverse event 1 (onset day 2) added",)


@pytest.mark.requirement("SIG-06", "SIG-07")
def test_a_change_in_the_transaction_that_signed_invalidates_the_signature_too(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    """The hook remembers for the transaction which patients it found unsigned (``casebook._UNSIGNED``),
    so it does not look again at each write; a signature written in the transaction makes it look."""
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=14))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=14))
        signed = sign_casebook(s, inv, p, APPROVED, Credentials(PASSWORD, "inv1"))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=12), reason="typo")
    with session_scope(trial.engine) as s:
        sig = s.get(Signature, signed.id)
        assert sig is not None and sig.invalidated_at is not None
        assert sig.invalidated_reason == "record changed after signing: Daily CRF, day 2 changed"
        assert verify(s).ok


@pytest.mark.requirement("SIG-07")
def test_a_change_made_around_the_application_shows_at_read_time(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(gcs=14))
    _sign(trial, p, Credentials(PASSWORD, "inv1"))
    with trial.engine.begin() as conn:  # SQL past the services: no hook runs
        conn.execute(update(crf.DailyCrf).values(gcs=3))
    with session_scope(trial.engine) as s:
        _, (view,) = signatures.casebook_signatures(s, trial.actors["inv1"], p)
        assert not view.valid and view.changes == ("Daily CRF, day 1 changed",)


@pytest.mark.requirement("SIG-06")
def test_signatures_cannot_be_edited_or_deleted(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    signed = _sign(trial, p, Credentials(PASSWORD, "inv1"))
    with session_scope(trial.engine) as s:
        sig = s.get(Signature, signed.id)
        assert sig is not None
        sig.printed_name = "Somebody Else"
        with pytest.raises(ImmunoSepError, match="cannot be changed"):
            s.flush()
        s.rollback()
    with session_scope(trial.engine) as s:
        s.delete(s.get(Signature, signed.id))
        with pytest.raises(ImmunoSepError, match="cannot be deleted"):
            s.flush()
        s.rollback()
    # copying the signature onto another casebook: its digest does not match that casebook
    q = _patient_id(trial, enroll())
    with session_scope(trial.engine) as s:
        sig = s.get(Signature, signed.id)
        assert sig is not None
        assert sig.digest != casebook_of(s, q).digest


@pytest.mark.requirement("SIG-04")
def test_the_digest_is_canonical_and_stable(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 2, crf.DailyInputs(gcs=13, weight_kg=80))
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(gcs=14))
    pid = _patient_id(trial, p)
    with session_scope(trial.engine) as s:
        book = casebook_of(s, pid)
    with session_scope(trial.engine, read_only=True) as s:
        again = casebook_of(s, pid)
    text = book.text()
    assert again.text() == text and again.digest == book.digest
    # the canonical form: the JSON that Python's own encoder gives with sorted keys and no spaces
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    keys = [r["key"] for r in data["records"]]
    assert keys == sorted(keys) and {"patient", "consent", "daily_crf/day-1", "daily_crf/day-2"} <= set(keys)
    day2 = next(r for r in data["records"] if r["key"] == "daily_crf/day-2")["values"]
    assert day2["weight_kg"] == 80.0 and isinstance(day2["weight_kg"], float) and "pao2_fio2_mmhg" not in day2
    assert book.digest == hashlib.sha256(text.encode("ascii")).hexdigest()
    # a change that is undone leaves the digest as it was
    _correct_gcs(trial, p, 11)
    _correct_gcs(trial, p, 14)
    with session_scope(trial.engine) as s:
        assert casebook_of(s, pid).digest == book.digest


@pytest.mark.requirement("SIG-08")
def test_the_casebook_holds_no_arm_and_is_alike_for_both_arms(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    arms: dict[str, str] = {}
    while len(arms) < 2:
        p = enroll()
        with session_scope(trial.engine) as s:
            arm = s.execute(
                select(RandomizationSlot.arm).join(Patient, Patient.id == RandomizationSlot.patient_id)
                .where(Patient.pseudonym == p)
            ).scalar_one()  # fmt: skip
        arms.setdefault(arm, p)
    texts = []
    for arm, p in arms.items():
        pid = _patient_id(trial, p)
        with session_scope(trial.engine) as s:
            text = casebook_of(s, pid).text()
            kit = s.execute(
                select(RandomizationSlot.kit_number).join(Patient, Patient.id == RandomizationSlot.patient_id)
                .where(Patient.pseudonym == p)
            ).scalar_one()  # fmt: skip
        assert arm not in text and kit not in text and "anakinra" not in text.lower()
        texts.append(json.loads(text))
    shapes = [sorted((r["key"], sorted(r["values"])) for r in t["records"]) for t in texts]
    assert shapes[0] == shapes[1]


@pytest.mark.requirement("SIG-09")
def test_only_the_meanings_of_ones_role_and_scope(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with pytest.raises(AccessDenied, match="may not sign a casebook as investigator"):
        _sign(trial, p, Credentials(PASSWORD, "mon1"), who="mon1")
    with pytest.raises(AccessDenied, match="no patient"):
        _sign(trial, p, Credentials(PASSWORD, "inv2"), who="inv2")
    with pytest.raises(ImmunoSepError, match="unknown meaning"):
        _sign(trial, p, Credentials(PASSWORD, "inv1"), meaning="database lock approved")
    review = _sign(trial, p, Credentials(PASSWORD, "dm"), who="dm", meaning="reviewed as data manager")
    assert review.role == "data_manager" and review.printed_name == "Dm Tester"
    assert signatures.meanings_for(trial.actors["inv1"], "casebook") == [APPROVED]


@pytest.mark.requirement("SIG-10")
def test_an_account_without_a_full_name_cannot_sign(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    with session_scope(trial.engine) as s:
        s.execute(update(users.User).where(users.User.username == "inv1").values(full_name=""))
    with pytest.raises(ImmunoSepError, match="no full name"):
        _sign(trial, p, Credentials(PASSWORD, "inv1"))
    with session_scope(trial.engine) as s:
        users.set_full_name(s, trial.actors["admin"], "inv1", "  Irene   Ivanova ")
    assert _sign(trial, p, Credentials(PASSWORD, "inv1")).printed_name == "Irene Ivanova"


@pytest.mark.requirement("SIG-11")
def test_the_data_manager_signs_the_lock_and_a_refusal_locks_nothing(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    dm = trial.actors["dm"]
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
    with pytest.raises(SignatureRefused), session_scope(trial.engine) as s:
        lock.lock_trial(s, None, credentials=Credentials("not the password", "dm"))
    with (
        pytest.raises(AccessDenied, match="may not sign the database lock"),
        session_scope(trial.engine) as s,
    ):
        lock.lock_trial(s, None, credentials=Credentials(PASSWORD, "inv1"))
    with session_scope(trial.engine) as s:
        assert lock.trial(s).locked_at is None
        result = lock.lock_trial(s, None, credentials=Credentials(PASSWORD, "dm"))
    assert result.signature is not None and result.signature.meaning == "database lock approved"
    with session_scope(trial.engine) as s:
        (view,) = signatures.lock_signatures(s, trial.actors["mon1"])
        assert view.valid and view.printed_name == "Dm Tester"
        assert lock.trial(s).locked_by == dm.user_id
        assert verify(s).ok


@pytest.mark.requirement("SIG-06", "SIG-07")
def test_a_new_day_or_a_correction_that_opens_a_query_invalidates_under_the_saves_reason(
    trial, enroll
) -> None:  # type: ignore[no-untyped-def]
    """A new CRF day (a Core insert, ``crf._insert_day``) and a correction (the flush hook) of a signed
    casebook invalidate the signature; its audited update carries the save's reason and comes before the
    edit check's query, whether or not the patient's queries are read."""
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=14))

    def write(day: int, reason: str, expected: str) -> list[tuple[str, str, str]]:
        signed = _sign(trial, p, Credentials(PASSWORD, "inv1"))
        with session_scope(trial.engine) as s:
            last = s.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
            # ventilated for SOFA but not under organ support: XF-02 opens a query in the same transaction
            crf.record_day(s, inv, p, day, crf.DailyInputs(gcs=12, ventilated=True), reason=reason)
        with session_scope(trial.engine) as s:
            sig = s.get(Signature, signed.id)
            assert sig is not None and sig.invalidated_reason == f"record changed after signing: {expected}"
            assert verify(s).ok
            entries = s.execute(
                select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id)
            ).scalars()
            return [(e.table_name, e.action, e.reason) for e in entries if e.table_name != "daily_crf"]

    assert write(2, "", "Daily CRF, day 2 added") == [
        ("signatures", "update", "daily CRF"),
        ("signatures", "update", "daily CRF"),
        ("queries", "insert", "edit check"),
    ]
    assert write(1, "typo", "Daily CRF, day 1 changed") == [
        ("signatures", "update", "typo"),
        ("signatures", "update", "typo"),
        ("queries", "insert", "edit check"),
    ]
