"""Response-adaptive allocation in the randomization service (a trial under the adaptive example protocol).

Every test here runs on the adaptive template (tests/conftest.py: ``adaptive_db_url``, SQLite and
PostgreSQL): slots made at ``db init`` with a sealed uniform and no arm, the arm drawn at allocation with the
stratum's probability at the data cut of the moment, and the record of each draw sealed.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from fixtures.by_path import load_module
from immunosep.conduct import crf, outcomes, randomization, reports, withdrawal
from immunosep.conduct.randomization import (
    adaptive_draw,
    adaptive_uniform,
    allocation_probability,
    data_cut_digest,
    parse_data_cut,
)
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry, RandomizationSlot, Site

#: The seed of the test templates (tests/conftest.py: TEST_SEED), which an auditor would hold.
TEST_SEED = "immunosep-test-seed"


@pytest.fixture
def db_url(adaptive_db_url: str) -> str:
    return adaptive_db_url


def _slots(s) -> list[tuple[str, RandomizationSlot]]:  # type: ignore[no-untyped-def]
    return [
        (code, slot)
        for code, slot in s.execute(
            select(Site.code, RandomizationSlot)
            .join(Site, Site.id == RandomizationSlot.site_id)
            .order_by(Site.code, RandomizationSlot.sequence)
        ).all()
    ]


def _known_success(trial, pseudonym: str) -> None:  # type: ignore[no-untyped-def]
    """Baseline SOFA 8, then 0 on days 2-9: the primary endpoint is known, and achieved."""
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 1, crf.DailyInputs(gcs=5, platelets_1e3_ul=15.0))
        for day in range(2, 10):
            crf.record_day(s, inv, pseudonym, day, crf.DailyInputs(gcs=15))


def _known_failure(trial, pseudonym: str) -> None:  # type: ignore[no-untyped-def]
    """Died on day 3: known, not achieved (death scores 24)."""
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 1, crf.DailyInputs(gcs=5, platelets_1e3_ul=15.0))
        outcomes.record_outcome(s, inv, pseudonym, death_day=3)


@pytest.mark.requirement("RND-ADP-04")
def test_db_init_makes_adaptive_slots_with_a_sealed_uniform_from_the_seed_and_no_arm(trial):
    with session_scope(trial.engine) as s:
        slots = _slots(s)
    assert len(slots) >= 3 * 210
    for code, slot in slots:
        assert slot.arm == "" and slot.probability is None and slot.stratum is None
        assert (slot.block_number, slot.block_size) == (0, 0)
        assert slot.uniform == adaptive_uniform(TEST_SEED, code, slot.sequence)
    assert len({slot.kit_number for _, slot in slots}) == len(slots)
    assert {c for t, c in audit.SEALED_FIELDS if t == "randomization_slots"} == {
        "arm",
        "kit_number",
        "uniform",
        "probability",
        "data_cut",
        "data_cut_sha256",
    }


@pytest.mark.requirement("RND-ADP-03", "RND-ADP-05")
def test_every_stored_arm_replays_from_the_seed_and_the_recorded_data_cut(trial, enroll):
    """MALS and immunoparalysis patients at two sites, outcomes made known between allocations; then an
    auditor holding the seed re-derives every stored arm, probability, uniform and digest from the cut the
    slot recorded and the allocations made before it at the site in the stratum (the burn-in)."""
    first = [enroll(), enroll(), enroll(investigator="inv2")]
    _known_success(trial, first[0])
    _known_failure(trial, first[1])
    with session_scope(trial.engine) as s:
        p = protocol_of(s)
        cut = randomization.data_cut(s, p)
        arms = {x: randomization.arm_of(s, trial.actors["pharm1"], x).arm for x in first[:2]}
    expected = {s: {a: [0, 0] for a in p.arm_codes} for s in p.enrolled_strata}
    expected["mals"][arms[first[0]]][0] += 1
    expected["mals"][arms[first[0]]][1] += 1
    expected["mals"][arms[first[1]]][1] += 1
    assert {s: {a: list(v) for a, v in c.items()} for s, c in cut.items()} == expected
    later = [enroll() for _ in range(4)] + [enroll(ferritin=800.0, hla_dr=3000.0) for _ in range(3)]
    with session_scope(trial.engine) as s:
        used = [(code, slot) for code, slot in _slots(s) if slot.used]
        assert audit.verify(s).ok
    assert len(used) == len(first) + len(later)
    earlier: dict[tuple[str, str], int] = {}
    adapted: list[tuple[str, RandomizationSlot]] = []
    for code, slot in used:
        assert slot.stratum is not None and slot.data_cut is not None
        k = earlier.get((code, slot.stratum), 0)
        recorded = parse_data_cut(slot.data_cut)
        draw = adaptive_draw(p, TEST_SEED, code, slot.sequence, slot.stratum, recorded, k)
        assert (draw.arm, draw.probability, draw.uniform, draw.data_cut_sha256) == (
            slot.arm,
            slot.probability,
            slot.uniform,
            slot.data_cut_sha256,
        )
        assert slot.data_cut_sha256 == data_cut_digest(recorded)
        earlier[(code, slot.stratum)] = k + 1
        if k >= p.randomization.adaptive.burn_in:
            adapted.append((code, slot))
        else:
            assert slot.probability == 0.5  # the burn-in: 1:1
    # the MALS patients after the burn-in at S01 drew with the cut that holds the two known outcomes
    mals_after = [(c, x) for c, x in adapted if x.stratum == "mals"]
    assert mals_after and all(
        parse_data_cut(x.data_cut or "")["mals"] == {a: tuple(v) for a, v in expected["mals"].items()}
        for _, x in mals_after
    )
    assert all(
        x.probability == allocation_probability(p, "mals", parse_data_cut(x.data_cut or ""))
        for _, x in mals_after
    )
    # the same replay as the trial statistician's tool, service and command line; a changed record shows
    from typer.testing import CliRunner

    from immunosep.cli import app

    with session_scope(trial.engine) as s:
        replay = randomization.replay_allocations(s, TEST_SEED)
    assert replay.ok and (replay.design, replay.allocations) == ("adaptive", len(used))
    out = CliRunner().invoke(app, ["db", "replay", "--db", trial.url, "--seed", TEST_SEED])
    assert out.exit_code == 0 and f"{len(used)} allocations" in out.output
    code, slot = mals_after[0]
    with trial.engine.begin() as conn:
        conn.execute(
            RandomizationSlot.__table__.update()
            .where(RandomizationSlot.__table__.c.id == slot.id)
            .values(probability=(slot.probability or 0.5) + 0.01)
        )
    with session_scope(trial.engine) as s:
        assert randomization.replay_allocations(s, TEST_SEED).differ == ((code, slot.sequence),)
        with pytest.raises(ImmunoSepError, match="not this trial's randomization seed"):
            randomization.replay_allocations(s, "another seed")


@pytest.mark.requirement("RND-ADP-05")
def test_the_data_cut_counts_only_outcomes_the_stored_data_fix(trial, enroll):
    """Known: a SOFA on the window's last day or later, or death or ICU discharge on or before it.
    Not known: follow-up still under way, or a withdrawn patient whose data were erased."""
    a, b, c, d, e = (enroll() for _ in range(5))
    inv = trial.actors["inv1"]
    _known_success(trial, a)
    with session_scope(trial.engine) as s:
        for day in range(1, 6):  # follow-up under way (day 5 of 9)
            crf.record_day(s, inv, b, day, crf.DailyInputs(gcs=15))
        crf.record_day(s, inv, c, 1, crf.DailyInputs(gcs=5))
        outcomes.record_outcome(s, inv, c, icu_discharge_day=4)  # discharged: LOCF, no decrease
        crf.record_day(s, inv, e, 1, crf.DailyInputs(gcs=5))
    _known_success(trial, d)
    with session_scope(trial.engine) as s:
        withdrawal.withdraw(s, inv, d, erase_data=True)
    with session_scope(trial.engine) as s:
        cut = randomization.data_cut(s, protocol_of(s))
        arm = {x: randomization.arm_of(s, trial.actors["pharm1"], x).arm for x in (a, c)}
    mals = cut["mals"]
    assert sum(n for _, n in mals.values()) == 2  # a and c
    assert sum(x for x, _ in mals.values()) == 1  # a achieved, c did not
    assert mals[arm[a]][0] == 1
    assert cut["immunoparalysis"] == {"precision": (0, 0), "placebo": (0, 0)}


@pytest.mark.requirement("RND-ADP-06")
def test_minimum_shares_burn_in_and_stratum_wise_models_hold():
    from immunosep.protocol.loader import bundled_protocol_path, parse_protocol

    path = bundled_protocol_path().parent / "examples" / "immunosep_adaptive.toml"
    p = parse_protocol(path.read_text(encoding="utf-8"))
    adaptive = p.randomization.adaptive
    assert adaptive is not None and adaptive.burn_in == 2
    strong = {"mals": {"precision": (40, 40), "placebo": (0, 40)}}
    weak = {"mals": {"precision": (0, 40), "placebo": (40, 40)}}
    assert allocation_probability(p, "mals", strong, 0) == allocation_probability(p, "mals", strong, 1) == 0.5
    assert allocation_probability(p, "mals", strong, 2) == pytest.approx(1 - adaptive.min_control_share)
    assert allocation_probability(p, "mals", weak, 2) == pytest.approx(adaptive.min_treatment_share)
    # one stratum's outcomes never move the other stratum's probability
    assert allocation_probability(p, "immunoparalysis", strong, 5) == 0.5
    both = {**strong, "immunoparalysis": {"precision": (1, 10), "placebo": (5, 10)}}
    assert allocation_probability(p, "mals", both, 5) == allocation_probability(p, "mals", strong, 5)
    assert allocation_probability(p, "immunoparalysis", both, 5) < 0.5
    grid = [
        {"mals": {"precision": (x, 20), "placebo": (y, 20)}} for x in range(0, 21, 4) for y in range(0, 21, 4)
    ]
    shares = [allocation_probability(p, "mals", g, 9) for g in grid]
    assert min(shares) >= adaptive.min_treatment_share - 1e-12
    assert max(shares) <= 1 - adaptive.min_control_share + 1e-12


def _blinding_tests():  # type: ignore[no-untyped-def]
    """tests/conduct/test_blinding.py as a module (its services table and its scan), loaded by path."""
    from pathlib import Path

    return load_module("_blinding_tests", Path(__file__).with_name("test_blinding.py"))


def _sealed_strings(trial) -> list[str]:  # type: ignore[no-untyped-def]
    """What would reveal a draw: every used slot's uniform, probability (unless 1:1), cut and digest."""
    with session_scope(trial.engine) as s:
        used = [slot for _, slot in _slots(s) if slot.used]
    out: list[str] = []
    for slot in used:
        out += [repr(slot.uniform), str(slot.uniform)[:8], slot.data_cut or "", slot.data_cut_sha256 or ""]
        if slot.probability != 0.5:
            out += [repr(slot.probability), f"{slot.probability:.3f}"[1:]]
    return [x for x in out if x]


@pytest.mark.requirement("RND-ADP-07", "BLIND-01", "ACC-01")
def test_no_blinded_role_and_no_other_site_learns_the_arm_the_probability_or_the_uniform(trial, enroll):
    """Every conduct service (tests/conduct/test_blinding.py), called as every blinded role and as the
    other site's investigator and pharmacist, on an adaptive patient of each arm: no arm, drug, probability,
    uniform, data cut or digest in any result or error, and the answer does not depend on the arm."""
    tb = _blinding_tests()
    by_arm: dict[str, str] = {}
    while len(by_arm) < 2:
        x = enroll()
        with session_scope(trial.engine) as s:
            by_arm.setdefault(randomization.arm_of(s, trial.actors["pharm1"], x).arm, x)
    # outcomes known, and allocations after the burn-in, so that probabilities other than 1:1 exist
    for x in by_arm.values():
        _known_success(trial, x)
    enroll(), enroll()
    sealed = _sealed_strings(trial)
    assert any(len(x) > 6 and x.startswith("0.") for x in sealed)
    (_, patient_a), (_, patient_b) = sorted(by_arm.items())
    leaks = []
    watched = (*tb.BLINDED, "inv2", "pharm2")
    for role in watched:
        for name in tb._services(patient_a):
            kind_a, text_a = tb._call(trial, role, tb._services(patient_a)[name])
            kind_b, text_b = tb._call(trial, role, tb._services(patient_b)[name])
            for text in (text_a, text_b):
                low = text.lower()
                leaks += [
                    f"{role}.{name} leaks {w!r}"
                    for w in tb.FORBIDDEN
                    if role != "pharm2" and w.lower() in low
                ]
                leaks += [f"{role}.{name} leaks sealed {v!r}" for v in sealed if v in text]
            if (kind_a, tb._norm(text_a, by_arm)) != (kind_b, tb._norm(text_b, by_arm)) and kind_a == "error":
                leaks.append(f"{role}.{name}: the error differs between arms")
    assert not leaks, "\n".join(leaks)
    # the other site's pharmacist gets for the patient the answer of a patient that does not exist
    ghost = tb._call(trial, "pharm2", lambda s, a: randomization.arm_of(s, a, "S01-9999"))
    real = tb._call(trial, "pharm2", lambda s, a: randomization.arm_of(s, a, patient_a))
    assert real[0] == ghost[0] == "error" and real[1].replace(patient_a, "X") == ghost[1].replace(
        "S01-9999", "X"
    )
    # the ODM export: a blinded one (the data manager's) carries none of it, nor the kit the unblinded has
    from immunosep.conduct import odm

    with session_scope(trial.engine) as s:
        blinded_doc = odm.odm_document(s, trial.actors["dm"])[0].decode()
        full_doc = odm.odm_document(s, None, unblinded=True)[0].decode()
        kit = randomization.arm_of(s, trial.actors["pharm1"], patient_a).kit_number
    assert not [v for v in sealed if v in blinded_doc]
    assert kit in full_doc and kit not in blinded_doc
    # the audit view of a monitor and a data manager leaves out the slot's entries, which hold the
    # probability, the cut and the uniform only as keyed digests anyway
    with session_scope(trial.engine) as s:
        for role in ("mon1", "dm"):
            view = reports.audit_trail(s, trial.actors[role], patient_a)
            assert view and all(e.table_name != "randomization_slots" for e in view)
        entries = s.execute(
            select(AuditEntry).where(
                AuditEntry.table_name == "randomization_slots", AuditEntry.action == "update"
            )
        ).scalars()
        fields = {}
        for e in entries:
            fields.setdefault(e.row_id, {})[e.field] = e.new_value
    recorded = [f for f in fields.values() if "probability" in f]
    assert recorded and all(
        f[c].startswith("<sealed:")
        for f in recorded
        for c in ("probability", "data_cut_sha256", "data_cut", "arm")
    )


@pytest.mark.requirement("RND-ADP-02")
def test_predictability_report_of_the_adaptive_design_expects_from_the_stored_probabilities(trial, enroll):
    from immunosep.stats.predictability import expected_guess_share_adaptive, guess_share

    for inv in ("inv1",) * 5 + ("inv2",) * 2:
        enroll(investigator=inv)
    with session_scope(trial.engine) as s:
        report = reports.predictability_report(s, trial.actors["dsmb"])
        p = protocol_of(s)
        used = [(c, slot) for c, slot in _slots(s) if slot.used]
    assert report.design == "adaptive" and report.block_sizes == []
    for row in report.sites:
        seq = [slot.arm for c, slot in used if c == row.site]
        probs = [slot.probability for c, slot in used if c == row.site]
        assert row.correct == guess_share(seq, p.arm_codes).correct
        assert row.expected_share == pytest.approx(
            expected_guess_share_adaptive(seq, probs, p.arm_codes, "precision").share
        )
        assert row.block_expected_share is not None
    assert report.pooled.allocations == 7
    assert json.dumps(dataclasses.asdict(report))  # the API's answer
