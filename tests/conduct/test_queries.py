"""The query workflow as in the EDCs users know: open, answered, closed, re-opened; who may close and
re-open; manual and automatic types; aging per site (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from immunosep.conduct import crf, lock, queries, reports
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store.db import session_scope
from immunosep.store.models import utcnow


@pytest.mark.requirement("QRY-01", "QRY-02", "QRY-10", "QRY-11")
def test_open_answered_closed_reopened_and_who_may_move_a_query(trial, enroll):
    p = enroll()
    mon, dm, inv = trial.actors["mon1"], trial.actors["dm"], trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        q = queries.raise_query(s, mon, p, table_name="daily_crf", field="gcs", text="GCS under sedation?")
        assert (q.status, q.type, q.check_id) == ("open", "manual", "")
    # an open query cannot be re-opened; the investigator may neither close nor re-open
    with (
        pytest.raises(ImmunoSepError, match="only an answered or closed query"),
        session_scope(trial.engine) as s,
    ):
        queries.reopen_query(s, mon, q.id, "the answer does not match the chart")
    with pytest.raises(AccessDenied, match="may not close queries"), session_scope(trial.engine) as s:
        queries.close_query(s, inv, q.id)
    with session_scope(trial.engine) as s:
        assert queries.answer_query(s, inv, q.id, "sedated").status == "answered"
    with pytest.raises(AccessDenied, match="may not re-open queries"), session_scope(trial.engine) as s:
        queries.reopen_query(s, inv, q.id, "I want to change my answer")
    # re-opening needs a real reason
    with pytest.raises(ImmunoSepError, match="reason for re-opening"), session_scope(trial.engine) as s:
        queries.reopen_query(s, mon, q.id, "..........")
    with session_scope(trial.engine) as s:
        r = queries.reopen_query(s, mon, q.id, "sedation is not in the nursing chart")
        assert (r.status, r.reopen_reason) == ("reopened", "sedation is not in the nursing chart")
        assert r.reopened_at is not None
    # a re-opened query waits for the site: the patient cannot be locked
    with pytest.raises(ImmunoSepError, match="not closed"), session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
    with session_scope(trial.engine) as s:
        assert (
            queries.answer_query(s, inv, q.id, "propofol infusion, see pharmacy chart").status == "answered"
        )
        c = queries.close_query(s, dm, q.id, "confirmed in the pharmacy chart")
        assert (c.status, c.close_reason) == ("closed", "confirmed in the pharmacy chart")
    with session_scope(trial.engine) as s:
        r = queries.reopen_query(s, dm, q.id, "closed too early, source disagrees")
        assert r.status == "reopened" and r.closed_at is None and r.close_reason == ""
        queries.answer_query(s, inv, q.id, "corrected")
        queries.close_query(s, mon, q.id)
    with pytest.raises(ImmunoSepError, match="already closed"), session_scope(trial.engine) as s:
        queries.close_query(s, mon, q.id)
    with pytest.raises(ImmunoSepError, match="is closed"), session_scope(trial.engine) as s:
        queries.answer_query(s, inv, q.id, "late")
    # every move is in the audit trail: status changes and the re-opening's reason
    with session_scope(trial.engine) as s:
        moves = [
            e.new_value
            for e in reports.audit_trail(s, dm, p)
            if e.table_name == "queries" and e.field == "status"
        ]
        assert moves == [
            '"answered"',
            '"reopened"',
            '"answered"',
            '"closed"',
            '"reopened"',
            '"answered"',
            '"closed"',
        ]
        reasons = [e.new_value for e in reports.audit_trail(s, dm, p) if e.field == "reopen_reason"]
        assert '"sedation is not in the nursing chart"' in reasons
        lock.lock_patient(s, dm, p)


@pytest.mark.requirement("QRY-02")
def test_a_monitor_moves_only_the_queries_of_the_sites_assigned(trial, enroll):
    p2 = enroll(investigator="inv2")
    dm, mon = trial.actors["dm"], trial.actors["mon1"]
    with session_scope(trial.engine) as s:
        q = queries.raise_query(s, dm, p2, table_name="daily_crf", text="check the day")
        queries.answer_query(s, trial.actors["inv2"], q.id, "checked")
    for move in (
        lambda s: queries.close_query(s, mon, q.id),
        lambda s: queries.reopen_query(s, mon, q.id, "the source says otherwise"),
    ):
        with pytest.raises(ImmunoSepError) as err, session_scope(trial.engine) as s:
            move(s)
        assert str(err.value) == f"no query {q.id} among the queries you may access"


@pytest.mark.requirement("QRY-09")
def test_aging_counts_queries_not_closed_per_site_in_day_buckets(trial, enroll):
    assert [queries.bucket_of(d) for d in (0, 7, 8, 14, 15, 30, 31, 400)] == [
        "0-7",
        "0-7",
        "8-14",
        "8-14",
        "15-30",
        "15-30",
        ">30",
        ">30",
    ]
    p1, p2 = enroll(), enroll(investigator="inv2")
    dm, inv = trial.actors["dm"], trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        a = queries.raise_query(s, dm, p1, table_name="daily_crf", text="first")
        queries.raise_query(s, dm, p1, table_name="outcomes", text="second")
        closed = queries.raise_query(s, dm, p2, table_name="daily_crf", text="third")
        queries.raise_query(s, dm, p2, table_name="daily_crf", text="fourth")
        queries.close_query(s, dm, closed.id)
        queries.answer_query(s, inv, a.id, "answered, still counts until closed")
        crf.record_day(s, inv, p1, 1, crf.DailyInputs(platelets_1e3_ul=1.0))  # an automatic one
    with session_scope(trial.engine) as s:
        raised = {q.id: q.raised_at for q in queries.list_queries(s, dm)}
        later = max(raised.values()) + timedelta(days=10)
        ages = queries.aging(s, dm, now=later)
        by_site = {x.site: x for x in ages}
        assert set(by_site) == {"S01", "S02"}
        s01, s02 = by_site["S01"], by_site["S02"]
        assert (s01.total, s01.automatic, s02.total, s02.automatic) == (3, 1, 1, 0)
        assert s01.buckets == {"0-7": 0, "8-14": 3, "15-30": 0, ">30": 0}
        assert s01.oldest_days == 10
        assert queries.aging(s, dm, now=utcnow())[0].buckets["0-7"] == 3
        assert [x.site for x in queries.aging(s, trial.actors["mon1"], now=later)] == ["S01"]
        assert [x.site for x in queries.aging(s, trial.actors["inv2"], now=later)] == ["S02"]
        with pytest.raises(AccessDenied):
            queries.aging(s, trial.actors["pharm1"])


@pytest.mark.requirement("QRY-03")
def test_queries_list_by_type(trial, enroll):
    p = enroll()
    dm, inv = trial.actors["dm"], trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        queries.raise_query(s, dm, p, table_name="daily_crf", text="manual question")
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=1.0))
    with session_scope(trial.engine) as s:
        assert [q.type for q in queries.list_queries(s, dm, type="manual")] == ["manual"]
        auto = queries.list_queries(s, dm, type="automatic")
        assert [(q.type, q.check_id) for q in auto] == [("automatic", "RNG-02")]
        assert next(q.text for q in queries.list_queries(s, inv, status="open")) == "manual question"
