"""Adverse events coded with MedDRA; SUSAR = serious + related + unexpected, flagged at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunosep.conduct import adverse_events
from immunosep.conduct.meddra import demo_meddra, load_meddra
from immunosep.errors import ImmunoSepError
from immunosep.store.db import session_scope

# Table 3 of the ImmunoSep report (reference JSON `table3_serious_aes_patients`) names these PTs.
TABLE3_TERMS = [
    "Anaemia",
    "Thrombocytopenia",
    "Atrial fibrillation",
    "Bradycardia",
    "Cardiac arrest",
    "Multiple organ dysfunction syndrome",
    "Bacteraemia",
    "Device related infection",
    "Fungaemia",
    "Fungal infection",
    "Pneumonia",
    "Sepsis",
    "Septic shock",
    "Urinary tract infection",
    "Acute kidney injury",
    "Bronchial obstruction",
    "Hypoxia",
    "Pleural effusion",
    "Pneumothorax",
    "Respiratory failure",
    "Tracheal stenosis",
    "Haemorrhage",
]


def test_the_demo_term_set_codes_every_table3_term_to_a_soc():
    m = demo_meddra()
    for term in TABLE3_TERMS:
        coded = m.code(term)
        assert coded.pt_name == term and coded.soc_name
    assert m.code("anemia").pt_name == "Anaemia"  # LLT spelling -> PT
    assert m.code("10043554").soc_name == "Blood and lymphatic system disorders"
    with pytest.raises(ImmunoSepError, match="not a MedDRA PT"):
        m.code("feeling poorly")


def test_the_ascii_release_loader_uses_the_primary_soc(tmp_path: Path):
    (tmp_path / "soc.asc").write_text("100$Soc A$A$\n200$Soc B$B$\n")
    (tmp_path / "pt.asc").write_text("11$Term one$$200$\n")
    (tmp_path / "llt.asc").write_text(
        "11$Term one$11$$$$$$$Y$\n12$Old term$11$$$$$$$N$\n13$Synonym$11$$$$$$$Y$\n"
    )
    (tmp_path / "mdhier.asc").write_text(
        "11$1$2$100$Term one$h$g$Soc A$A$$200$Y$\n11$1$2$200$Term one$h$g$Soc B$B$$200$N$\n"
    )
    m = load_meddra(tmp_path)
    assert m.code("synonym").soc_name == "Soc A"  # primary SOC flag wins over pt_soc_code
    with pytest.raises(ImmunoSepError):
        m.code("old term")  # non-current LLT
    (tmp_path / "llt.asc").unlink()
    with pytest.raises(ImmunoSepError, match=r"missing llt\.asc"):
        load_meddra(tmp_path)


@pytest.mark.parametrize(
    ("serious", "relatedness", "expected", "susar"),
    [
        (True, "probably related", False, True),
        (True, "possibly related", False, True),
        (True, "probably not related", False, False),
        (True, "possibly related", True, False),
        (False, "probably related", False, False),
    ],
)
def test_susar_flag(serious, relatedness, expected, susar):
    assert adverse_events.is_susar(serious, relatedness, expected) is susar


def test_a_susar_is_flagged_and_reported_in_the_same_transaction(trial, enroll):
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        ae = adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=3,
            term="Cardiac arrest",
            serious=True,
            relatedness="possibly related",
            expected=False,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
        adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=4,
            term="Hypoxia",
            serious=False,
            relatedness="unrelated",
            expected=True,
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
    assert ae.susar and ae.susar_reported_at is not None and ae.soc_name == "Cardiac disorders"
    with session_scope(trial.engine) as s:
        report = adverse_events.susar_report(s, trial.actors["dm"])
        assert [(r.pseudonym, r.pt_name) for r in report] == [(p, "Cardiac arrest")]
        assert adverse_events.susar_report(s, trial.actors["inv2"]) == []
    with pytest.raises(ImmunoSepError, match="relatedness"), session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=3,
            term="Sepsis",
            serious=True,
            relatedness="related",
            expected=False,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )


def _counts(engine):
    from sqlalchemy import func, select

    from immunosep.store.models import AdverseEvent, AuditEntry

    with session_scope(engine) as s:
        return (
            s.execute(select(func.count()).select_from(AdverseEvent)).scalar_one(),
            s.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
        )


def test_criteria_action_outcome_and_end_day_are_stored_and_read_back(trial, enroll):
    from sqlalchemy import select

    from immunosep.store.models import AdverseEvent

    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        ae = adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=2,
            term="Atrial fibrillation",
            serious=True,
            criteria=["medically_important", "life_threatening"],
            relatedness="possibly related",
            expected=True,
            action="DRUG INTERRUPTED",
            outcome="RECOVERED/RESOLVED WITH SEQUELAE",
            end_day=6,
        )
    with session_scope(trial.engine) as s:
        (read,) = adverse_events.adverse_events(s, trial.actors["mon1"], p)
        row = s.execute(select(AdverseEvent)).scalar_one()
        stored = {c: getattr(row, f"crit_{c}") for c in adverse_events.SERIOUSNESS_CRITERIA}
    assert read == ae
    assert (read.criteria, read.action, read.outcome, read.end_day) == (
        ("life_threatening", "medically_important"),  # in the criteria's own order
        "DRUG INTERRUPTED",
        "RECOVERED/RESOLVED WITH SEQUELAE",
        6,
    )
    assert stored == {
        "death": False,
        "life_threatening": True,
        "hospitalization": False,
        "disability": False,
        "congenital_anomaly": False,
        "medically_important": True,
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"criteria": ()}, "criteria"),  # serious without a criterion
        ({"serious": False}, "serious"),  # a criterion on a non-serious event
        ({"action": "dose not changed"}, "action"),  # not the CDISC term
        ({"outcome": "RESOLVED"}, "outcome"),
        ({"outcome": "FATAL", "criteria": ("death",)}, "outcome"),  # no death recorded
        ({"end_day": 1}, "end_day"),  # before the onset day 2
        ({"end_day": 91}, "end_day"),  # after the last follow-up day
        ({"outcome": "NOT RECOVERED/NOT RESOLVED"}, "end_day"),  # an end day on an ongoing event
    ],
)
def test_inconsistent_events_are_refused_and_nothing_is_stored(trial, enroll, changes, field):
    p = enroll()
    inv = trial.actors["inv1"]
    before = _counts(trial.engine)
    event = {
        "onset_day": 2,
        "term": "Pneumothorax",
        "serious": True,
        "criteria": ("hospitalization",),
        "relatedness": "unrelated",
        "expected": True,
        "action": "DOSE NOT CHANGED",
        "outcome": "RECOVERED/RESOLVED",
        "end_day": 4,
    }
    with pytest.raises(ImmunoSepError) as caught, session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(s, inv, p, **{**event, **changes})
    assert caught.value.field == field, caught.value.message
    assert _counts(trial.engine) == before


def test_a_fatal_event_needs_the_recorded_death_and_the_death_must_then_stay_its_end(trial, enroll):
    from immunosep.conduct import outcomes

    p = enroll()
    inv = trial.actors["inv1"]
    fatal = {
        "onset_day": 3,
        "term": "Septic shock",
        "serious": True,
        "criteria": ("death",),
        "relatedness": "unrelated",
        "expected": True,
        "action": "NOT APPLICABLE",
        "outcome": "FATAL",
        "end_day": 5,
    }
    with (
        pytest.raises(ImmunoSepError, match="record the day of death first"),
        session_scope(trial.engine) as s,
    ):
        adverse_events.record_adverse_event(s, inv, p, **fatal)
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, p, death_day=5)
    with pytest.raises(ImmunoSepError, match="ends on the day of death"), session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(s, inv, p, **{**fatal, "end_day": 4})
    with session_scope(trial.engine) as s:
        ae = adverse_events.record_adverse_event(s, inv, p, **fatal)
    assert (ae.outcome, ae.end_day, ae.criteria) == ("FATAL", 5, ("death",))
    before = _counts(trial.engine)
    for death_day in (6, None):
        with (
            pytest.raises(ImmunoSepError, match="is fatal on day 5") as caught,
            session_scope(trial.engine) as s,
        ):
            outcomes.record_outcome(s, inv, p, death_day=death_day, reason="entered the wrong day")
        assert caught.value.field == "death_day"
    assert _counts(trial.engine) == before
    with session_scope(trial.engine) as s:
        assert outcomes.get_outcome(s, inv, p).death_day == 5
