"""Source data verification: the plan (100 % part and a reproducible per-site sample), marks, progress, and
a verified value that changes returning to unverified with the change in the audit trail (both backends)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select, text

from immunosep.conduct import biospecimens, crf, dosing, outcomes, reports, sdv
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.protocol.loader import default_protocol
from immunosep.store.db import session_scope
from immunosep.store.models import DailyCrf, SdvMark

SOFA_INPUTS = {
    "pao2_fio2_mmhg",
    "ventilated",
    "platelets_1e3_ul",
    "bilirubin",
    "map_mmhg",
    "dopamine_ug_kg_min",
    "dobutamine_ug_kg_min",
    "epinephrine_ug_kg_min",
    "norepinephrine_ug_kg_min",
    "gcs",
    "creatinine",
    "urine_ml_day",
}


def _expected_sample(seed: str, rate: float, site: str, table: str, day: int | None, item: str) -> bool:
    """The sampling rule written out again from its documentation (independent of conduct.sdv)."""
    message = "|".join([seed, site, table, "" if day is None else str(day), item]).encode()
    return int(hashlib.sha256(message).hexdigest()[:16], 16) < rate * 2**64


def _patient_with_records(trial, enroll) -> str:  # type: ignore[no-untyped-def]
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        for day in (1, 3, 12):
            crf.record_day(s, inv, p, day, crf.DailyInputs(gcs=12, platelets_1e3_ul=90.0, weight_kg=80.0))
        biospecimens.record_draw(
            s, trial.actors["lab"], p, 4, ferritin_ng_ml=3000.0, hla_dr_per_monocyte=None
        )
        outcomes.record_outcome(s, inv, p, death_day=20, last_known_alive_day=19, infection_day15="failure")
    return p


@pytest.mark.requirement("SDV-02")
def test_the_plan_verifies_the_primary_endpoint_inputs_death_and_randomization_in_full_and_samples_the_rest(
    trial, enroll
):
    p = _patient_with_records(trial, enroll)
    with session_scope(trial.engine) as s:
        plan = sdv.patient_plan(s, trial.actors["mon1"], p)
        protocol = protocol_of(s)
    m, primary = protocol.monitoring, protocol.endpoints.primary
    critical = {(i.table_name, i.study_day, i.field) for i in plan.items if i.critical}
    # every SOFA input of the days the primary endpoint uses (1 and 3 here, not 12), in full
    for day in (1, 3):
        assert {(t, d, f) for t, d, f in critical if t == "daily_crf" and d == day} == {
            ("daily_crf", day, f) for f in SOFA_INPUTS
        }
    assert primary.baseline_day == 1 and primary.window_last_day == 9
    assert not any(t == "daily_crf" and d == 12 for t, d, _ in critical)
    assert ("outcomes", None, "death_day") in critical and (
        "outcomes",
        None,
        "last_known_alive_day",
    ) in critical
    assert {
        ("biomarker_draws", 1, "ferritin_ng_ml"),
        ("biomarker_draws", 1, "hla_dr_per_monocyte"),
    } <= critical
    assert not any(t == "biomarker_draws" and d == 4 for t, d, _ in critical)
    # the rest: exactly the items the documented rule samples at this site
    sampled = {(i.table_name, i.study_day, i.field) for i in plan.items if not i.critical}
    candidates = [("daily_crf", d, f) for d in (1, 3, 12) for f in sdv.ITEMS["daily_crf"]]
    candidates += [("biomarker_draws", d, f) for d in (1, 4) for f in sdv.ITEMS["biomarker_draws"]]
    candidates += [("outcomes", None, f) for f in sdv.ITEMS["outcomes"]]
    expected = {
        c
        for c in candidates
        if c not in critical and _expected_sample(m.sdv_seed, m.sdv_sample_rate, "S01", *c)
    }
    assert sampled == expected
    assert plan.planned == len(critical) + len(expected) and plan.verified == 0


@pytest.mark.requirement("SDV-02")
def test_the_sample_is_reproducible_per_site_follows_the_rate_and_a_new_seed_draws_anew() -> None:
    protocol = default_protocol()
    keys = [
        (f"S{site:02d}", "daily_crf", day, item)
        for site in range(1, 34)
        for day in range(1, 16)
        for item in sdv.ITEMS["daily_crf"]
    ]
    for rate in (0.1, 0.2, 0.5):
        p = protocol.model_copy(
            update={"monitoring": protocol.monitoring.model_copy(update={"sdv_sample_rate": rate})}
        )
        drawn = [sdv.sampled(p, *k) for k in keys]
        assert drawn == [sdv.sampled(p, *k) for k in keys]  # reproducible
        share = sum(drawn) / len(drawn)
        se = (rate * (1 - rate) / len(drawn)) ** 0.5
        assert abs(share - rate) < 4 * se, (rate, share)
        assert drawn == [_expected_sample(p.monitoring.sdv_seed, rate, *k) for k in keys]
    other = protocol.model_copy(
        update={"monitoring": protocol.monitoring.model_copy(update={"sdv_seed": "visit-2"})}
    )
    assert [sdv.sampled(protocol, *k) for k in keys] != [sdv.sampled(other, *k) for k in keys]
    none = protocol.model_copy(
        update={"monitoring": protocol.monitoring.model_copy(update={"sdv_sample_rate": 0.0})}
    )
    everything = protocol.model_copy(
        update={"monitoring": protocol.monitoring.model_copy(update={"sdv_sample_rate": 1.0})}
    )
    assert not any(sdv.sampled(none, *k) for k in keys) and all(sdv.sampled(everything, *k) for k in keys)


@pytest.mark.requirement("SDV-01", "SDV-04")
def test_a_monitor_verifies_fields_and_records_and_progress_counts_them_per_site_and_patient(trial, enroll):
    p = _patient_with_records(trial, enroll)
    other = enroll(investigator="inv2")
    mon, dm, inv = trial.actors["mon1"], trial.actors["dm"], trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        day1 = s.execute(select(DailyCrf).where(DailyCrf.study_day == 1)).scalars().first()
        assert day1 is not None
        sdv.verify(s, mon, p, table_name="daily_crf", row_id=day1.id, field="gcs")
        sdv.verify_record(s, mon, p, "outcomes")
    with session_scope(trial.engine) as s:
        plan = sdv.patient_plan(s, dm, p)
        verified = {(i.table_name, i.study_day, i.field) for i in plan.items if i.verified}
        outcome_items = {("outcomes", None, i.field) for i in plan.items if i.table_name == "outcomes"}
        assert verified == {("daily_crf", 1, "gcs")} | outcome_items
        sites, patients = sdv.progress(s, dm)
        mine = next(x for x in patients if x.name == p)
        assert (mine.planned, mine.verified) == (plan.planned, plan.verified)
        assert mine.critical_verified == sum(i.critical and i.verified for i in plan.items) == 3
        s01 = next(x for x in sites if x.name == "S01")
        assert s01.verified == plan.verified and s01.patients == 1
        assert {x.name for x in sites} == {"S01", "S02"}
        # the monitor of S01 sees S01 only
        assert [x.name for x in sdv.progress(s, mon)[0]] == ["S01"]
    # who may: the monitor verifies; data manager and investigator may not; another site looks missing
    for actor in (dm, inv):
        with (
            pytest.raises(AccessDenied, match="may not verify data against source"),
            session_scope(trial.engine) as s,
        ):
            sdv.verify_record(s, actor, p, "daily_crf/1")
    with pytest.raises(AccessDenied, match="may not read the source data"), session_scope(trial.engine) as s:
        sdv.patient_plan(s, inv, p)
    for who in (other, "S02-9999"):
        with pytest.raises(AccessDenied) as err, session_scope(trial.engine) as s:
            sdv.verify_record(s, mon, who, "daily_crf/1")
        assert str(err.value) == f"no patient {who!r} among the patients you may access"
    with pytest.raises(ImmunoSepError, match="no record 'daily_crf/2'"), session_scope(trial.engine) as s:
        sdv.verify_record(s, mon, p, "daily_crf/2")
    with pytest.raises(ImmunoSepError, match="has the items"), session_scope(trial.engine) as s:
        sdv.verify_record(s, mon, p, "daily_crf/1", "arm")
    with pytest.raises(ImmunoSepError, match="covers one of"), session_scope(trial.engine) as s:
        sdv.verify(s, mon, p, table_name="dose_log", row_id=1)


@pytest.mark.requirement("SDV-03")
def test_a_verified_value_that_changes_returns_to_unverified_and_the_trail_says_so(trial, enroll):
    p = _patient_with_records(trial, enroll)
    mon, inv, lab = trial.actors["mon1"], trial.actors["inv1"], trial.actors["lab"]
    with session_scope(trial.engine) as s:
        for item in ("gcs", "platelets_1e3_ul"):
            sdv.verify_record(s, mon, p, "daily_crf/1", item)
        sdv.verify_record(s, mon, p, "daily_crf/1")  # the whole record too
        sdv.verify_record(s, mon, p, "outcomes", "death_day")
        sdv.verify_record(s, mon, p, "biomarker_draws/4")
    with session_scope(trial.engine) as s:
        crf.record_day(
            s, inv, p, 1, crf.DailyInputs(gcs=9, platelets_1e3_ul=90.0, weight_kg=80.0), reason="GCS misread"
        )
    with session_scope(trial.engine) as s:
        plan = sdv.patient_plan(s, mon, p)
        state = {i.field: (i.verified, i.changed) for i in plan.items if i.record == "daily_crf/1"}
        assert state["gcs"] == (False, True)  # its value changed
        assert state["platelets_1e3_ul"] == (True, False)  # its own mark still holds
        assert state["creatinine"] == (False, True)  # the whole-record mark no longer covers it
        marks = {m.field: m for m in s.execute(select(SdvMark)).scalars() if m.table_name == "daily_crf"}
        assert marks["gcs"].invalidated_at is not None and "GCS misread" in marks["gcs"].invalidated_reason
        assert marks[""].invalidated_at is not None and marks["platelets_1e3_ul"].invalidated_at is None
        trail = [
            e
            for e in reports.audit_trail(s, mon, p)
            if e.table_name == "sdv_marks" and e.field == "invalidated_at" and e.action == "update"
        ]
        assert len(trail) == 2 and all("returns to unverified" in e.reason for e in trail)
    # an outcome and a draw corrected through their services: the same
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(
            s, inv, p, death_day=21, last_known_alive_day=20, reason="date from the chart"
        )
        biospecimens.record_draw(
            s, lab, p, 4, ferritin_ng_ml=3100.0, hla_dr_per_monocyte=None, reason="re-run"
        )
    with session_scope(trial.engine) as s:
        plan = sdv.patient_plan(s, mon, p)
        changed = {(i.record, i.field) for i in plan.items if i.changed}
        assert ("outcomes", "death_day") in changed
        assert {("biomarker_draws/4", f) for f in ("ferritin_ng_ml", "hla_dr_per_monocyte")} & {
            (i.record, i.field) for i in plan.items
        } <= changed
        assert s.execute(select(SdvMark).where(SdvMark.invalidated_at.is_(None))).scalars().all() != []
        _assert_progress_is_the_plans(s, trial.actors["dm"])
    # verified again: counts again
    with session_scope(trial.engine) as s:
        sdv.verify_record(s, mon, p, "daily_crf/1", "gcs")
    with session_scope(trial.engine) as s:
        plan = sdv.patient_plan(s, mon, p)
        assert next(i for i in plan.items if i.record == "daily_crf/1" and i.field == "gcs").verified
        _assert_progress_is_the_plans(s, trial.actors["dm"])


def _assert_progress_is_the_plans(s, actor) -> None:  # type: ignore[no-untyped-def]
    """``progress`` (counted from the plan per record kind and day) gives each patient's plan's counts."""
    _, lines = sdv.progress(s, actor)
    assert lines
    for line in lines:
        plan = sdv.patient_plan(s, actor, line.name)
        expected = (plan.planned, plan.verified, plan.critical, plan.critical_verified, plan.changed)
        assert (line.planned, line.verified, line.critical, line.critical_verified, line.changed) == expected


@pytest.mark.requirement("SDV-05")
def test_a_mark_counts_only_while_the_value_is_the_one_verified_even_when_changed_outside_the_services(
    trial, enroll
):
    p = _patient_with_records(trial, enroll)
    mon = trial.actors["mon1"]
    with session_scope(trial.engine) as s:
        sdv.verify_record(s, mon, p, "daily_crf/3", "gcs")
        row_id = s.execute(select(DailyCrf.id).where(DailyCrf.study_day == 3)).scalars().first()
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE daily_crf SET gcs = 4 WHERE id = :i"), {"i": row_id})
    with session_scope(trial.engine) as s:
        item = next(
            i for i in sdv.patient_plan(s, mon, p).items if i.record == "daily_crf/3" and i.field == "gcs"
        )
        assert not item.verified and item.changed


def test_the_digest_covers_the_value_and_its_unit() -> None:
    class Row:
        id = 7
        bilirubin = 2.0
        bilirubin_unit = "mg/dL"

    a = sdv.digest(Row(), "daily_crf", "bilirubin")
    Row.bilirubin_unit = "umol/L"
    b = sdv.digest(Row(), "daily_crf", "bilirubin")
    text_of = json.dumps(
        ["daily_crf", 7, "bilirubin", {"bilirubin": 2.0, "bilirubin_unit": "umol/L"}], sort_keys=True
    )
    assert a != b and b == hashlib.sha256(text_of.encode()).hexdigest()


def test_doses_are_never_in_the_plan(trial, enroll):
    """Source data verification stays blinded: the dose log (allocation) is no verifiable table."""
    p = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(creatinine=1.0))
        dosing.record_dose(s, trial.actors["pharm1"], p, 1, "iv", 0, given=True)
    with session_scope(trial.engine) as s:
        tables = {i.table_name for i in sdv.patient_plan(s, trial.actors["mon1"], p).items}
    assert "dose_log" not in tables and tables <= set(sdv.ITEMS)
