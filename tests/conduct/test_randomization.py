"""Sealed per-site permuted-block lists and atomic allocation."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from immunosep.conduct import biospecimens, classification, randomization, screening
from immunosep.conduct.randomization import HmacStream, generate_site_list, kit_numbers
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.protocol import bundled_protocol_path, default_protocol
from immunosep.store.db import session_scope
from immunosep.store.models import RandomizationSlot


@pytest.mark.requirement("RAND-01")
def test_lists_are_balanced_permuted_blocks_of_protocol_sizes_and_reproducible_from_the_seed():
    p = default_protocol()
    slots = generate_site_list(p, "seed-1", "S01", 500)
    assert slots == generate_site_list(p, "seed-1", "S01", 500)
    assert [s.arm for s in slots] != [s.arm for s in generate_site_list(p, "seed-2", "S01", 500)]
    assert [s.arm for s in slots] != [s.arm for s in generate_site_list(p, "seed-1", "S02", 500)]
    blocks: dict[int, list[str]] = {}
    for s in slots:
        blocks.setdefault(s.block_number, []).append(s.arm)
        assert s.block_size in p.randomization.block_sizes
    sizes = Counter(len(b) for b in blocks.values())
    assert set(sizes) == set(p.randomization.block_sizes)  # every block size is used over 500 slots
    for arms in blocks.values():
        counts = Counter(arms)
        assert counts["precision"] == counts["placebo"]  # ratio 1:1 inside every block
    assert [s.sequence for s in slots] == list(range(1, len(slots) + 1))


@pytest.mark.requirement("RAND-01")
def test_stream_is_uniform_enough_and_kits_are_distinct_six_digit_numbers():
    stream = HmacStream("k", "x")
    draws = Counter(stream.randbelow(6) for _ in range(6000))
    assert all(850 < draws[i] < 1150 for i in range(6))
    kits = kit_numbers("k", 2000)
    assert len(set(kits)) == 2000 and all(len(k) == 6 and k.isdigit() for k in kits)


def _classified_patients(trial, n, answers):
    inv, lab = trial.actors["inv1"], trial.actors["lab"]
    with session_scope(trial.engine) as s:
        names = [screening.screen(s, inv, answers()).pseudonym for _ in range(n)]
        for name in names:
            biospecimens.record_draw(s, lab, name, 1, ferritin_ng_ml=900.0, hla_dr_per_monocyte=3000.0)
        for name in names:
            classification.classify_patient(s, inv, name)
            screening.record_consent(s, inv, name, "patient")
    return names


@pytest.mark.requirement("RAND-02")
def test_200_concurrent_allocations_at_one_site_take_200_distinct_consecutive_slots(trial, screening_answers):
    names = _classified_patients(trial, 200, screening_answers)
    inv = trial.actors["inv1"]
    results: list[randomization.Allocation] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(names))

    def worker(name: str) -> None:
        try:
            start.wait()
            with session_scope(trial.engine) as s:
                results.append(randomization.allocate(s, inv, name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.sequence for r in results) == list(range(1, 201))
    assert len({r.kit_number for r in results}) == 200
    with session_scope(trial.engine) as s:
        used = s.execute(
            select(RandomizationSlot.sequence, RandomizationSlot.patient_id).where(
                RandomizationSlot.used.is_(True)
            )
        ).all()
    assert sorted(u[0] for u in used) == list(range(1, 201)) and len({u[1] for u in used}) == 200


@pytest.mark.requirement("RAND-02")
def test_allocation_needs_consent_and_an_enrolled_stratum(trial, screening_answers):
    inv, lab = trial.actors["inv1"], trial.actors["lab"]
    with session_scope(trial.engine) as s:
        a = screening.screen(s, inv, screening_answers()).pseudonym
        b = screening.screen(s, inv, screening_answers()).pseudonym
        biospecimens.record_draw(s, lab, a, 1, ferritin_ng_ml=900.0, hla_dr_per_monocyte=3000.0)
        biospecimens.record_draw(s, lab, b, 1, ferritin_ng_ml=900.0, hla_dr_per_monocyte=9000.0)
        assert classification.classify_patient(s, inv, a).stratum == "immunoparalysis"
        result = classification.classify_patient(s, inv, b)
    assert (result.stratum, result.enrolled) == ("unclassified", False)
    with pytest.raises(ImmunoSepError, match="no recorded consent"), session_scope(trial.engine) as s:
        randomization.allocate(s, inv, a)
    with session_scope(trial.engine) as s:
        screening.record_consent(s, inv, b, "patient")
    with pytest.raises(ImmunoSepError, match="not_enrolled"), session_scope(trial.engine) as s:
        randomization.allocate(s, inv, b)


@pytest.mark.requirement("RAND-03", "BLIND-04")
def test_the_arm_is_revealed_only_to_the_pharmacist_of_the_site(trial, enroll):
    p = enroll()
    with session_scope(trial.engine) as s:
        disclosure = randomization.arm_of(s, trial.actors["pharm1"], p)
        assert disclosure.arm in ("precision", "placebo")
        for who in ("inv1", "mon1", "dm", "lab", "admin", "dsmb"):
            with pytest.raises(AccessDenied):
                randomization.arm_of(s, trial.actors[who], p)
        with pytest.raises(AccessDenied, match="no patient"):
            randomization.arm_of(s, trial.actors["pharm2"], p)


@pytest.mark.requirement("RAND-02")
def test_a_patient_is_randomized_once_and_an_exhausted_list_is_a_clear_error(trial, enroll):
    p = enroll()
    with pytest.raises(ImmunoSepError, match="already randomized"), session_scope(trial.engine) as s:
        randomization.allocate(s, trial.actors["inv1"], p)
    with session_scope(trial.engine) as s:
        for slot in s.execute(select(RandomizationSlot).where(RandomizationSlot.used.is_(False))).scalars():
            slot.used = True
    with pytest.raises(ImmunoSepError, match="exhausted"):
        enroll()


def _adaptive_protocol():

    from immunosep.protocol import parse_protocol

    example = bundled_protocol_path().parent / "examples" / "immunosep_adaptive.toml"
    return parse_protocol(example.read_text(encoding="utf-8"))


@pytest.mark.requirement("RND-ADP-03")
def test_adaptive_draw_follows_the_posterior_allocation_and_replays_from_seed_and_cut():
    import numpy as np

    from immunosep.conduct.randomization import adaptive_draw, data_cut_digest

    p = _adaptive_protocol()
    cut = {"mals": {"precision": (6, 10), "placebo": (3, 10)}, "immunoparalysis": {"placebo": (2, 4)}}
    first = adaptive_draw(p, "seed-1", "S01", 7, "mals", cut)
    assert first == adaptive_draw(p, "seed-1", "S01", 7, "mals", dict(reversed(cut.items())))  # replay
    assert first.data_cut_sha256 == data_cut_digest(cut)
    assert data_cut_digest(cut) != data_cut_digest(
        {**cut, "mals": {"precision": (6, 10), "placebo": (4, 10)}}
    )
    # independent check: P(benefit) by Monte Carlo beta draws, then Thall-Wathen P^c / (P^c + (1-P)^c)
    rng = np.random.default_rng(1)
    draws = 400_000
    benefit = float(np.mean(rng.beta(7, 5, draws) > rng.beta(4, 8, draws)))
    c = p.randomization.adaptive.power
    expected = benefit**c / (benefit**c + (1 - benefit) ** c)
    assert first.probability == pytest.approx(expected, abs=4 * np.sqrt(0.25 / draws) + 1e-3)
    # the patients follow the probability: the share given treatment over many sequences
    arms = [adaptive_draw(p, "seed-1", "S01", k, "mals", cut).arm for k in range(1, 4001)]
    share = arms.count("precision") / len(arms)
    assert abs(share - first.probability) < 4 * np.sqrt(first.probability * (1 - first.probability) / 4000)
    # without data: 1:1; with overwhelming data: held at the minimum shares
    assert adaptive_draw(p, "s", "S01", 1, "immunoparalysis", {}).probability == pytest.approx(0.5)
    good = adaptive_draw(p, "s", "S01", 1, "mals", {"mals": {"precision": (50, 50), "placebo": (0, 50)}})
    bad = adaptive_draw(p, "s", "S01", 1, "mals", {"mals": {"precision": (0, 50), "placebo": (50, 50)}})
    assert good.probability == pytest.approx(1 - p.randomization.adaptive.min_control_share)
    assert bad.probability == pytest.approx(p.randomization.adaptive.min_treatment_share)


def test_adaptive_draw_refuses_a_block_protocol_and_impossible_counts():
    from immunosep.conduct.randomization import adaptive_draw

    with pytest.raises(ImmunoSepError, match='not "adaptive"'):
        adaptive_draw(default_protocol(), "s", "S01", 1, "mals", {})
    with pytest.raises(ImmunoSepError, match="between 0 and the patients"):
        adaptive_draw(_adaptive_protocol(), "s", "S01", 1, "mals", {"mals": {"placebo": (5, 4)}})


@pytest.mark.requirement("RND-ADP-05")
def test_the_seed_replays_a_block_trials_lists(trial, enroll):
    """``db replay``'s service on the block design: every slot's arm is the generator's for the seed."""
    from immunosep.conduct.randomization import replay_allocations
    from immunosep.store.db import session_scope

    enroll(), enroll(investigator="inv2")
    with session_scope(trial.engine) as s:
        replay = replay_allocations(s, "immunosep-test-seed")  # tests/conftest.py: TEST_SEED
    assert replay.ok and replay.design == "block" and replay.allocations == 2 and replay.slots >= 3 * 210
