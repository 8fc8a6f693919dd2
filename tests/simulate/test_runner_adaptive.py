"""A small virtual trial under the response-adaptive example protocol, through the real services.

Enrolment and follow-up interleave on the virtual calendar (the patients whose primary endpoint window
has ended are followed up before the next screening), so later allocations draw with outcomes known; the
trial locks and at the end the data cut equals the primary endpoint the analysis derives, and every stored arm replays from the run's seed and the cut its
slot recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from immunosep.analysis.datasets import derive_datasets
from immunosep.analysis.extract import extract_raw_trial
from immunosep.conduct.randomization import adaptive_draw, data_cut, parse_data_cut
from immunosep.conduct.trial import protocol_of
from immunosep.protocol.loader import bundled_protocol_path
from immunosep.simulate.runner import run_virtual_trial
from immunosep.store.audit import verify
from immunosep.store.db import make_engine, session_scope
from immunosep.store.models import RandomizationSlot, Site


@pytest.mark.requirement("RND-ADP-08")
def test_a_small_adaptive_virtual_trial_runs_end_to_end_and_replays(tmp_path: Path) -> None:
    text = (bundled_protocol_path().parent / "examples" / "immunosep_adaptive.toml").read_text(
        encoding="utf-8"
    )
    assert 'extends = "immunosep"' in text and "\n[trial]\n" not in text
    protocol_path = tmp_path / "adaptive_three_sites.toml"
    protocol_path.write_text(
        text + "\n[trial]\nsites = 3\n", encoding="utf-8"
    )  # merged into the bundled [trial]
    url = f"sqlite:///{tmp_path / 'trial.db'}"
    run = run_virtual_trial(url, seed=5, n_screened=30, protocol_path=protocol_path)
    assert run.locked and run.randomized >= 8
    assert (run.crf_values_corrected, run.crf_values_left_missing, run.entries_refused) == (0, 0, 0)
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            protocol = protocol_of(s)
            used = s.execute(
                select(Site.code, RandomizationSlot)
                .join(Site, Site.id == RandomizationSlot.site_id)
                .where(RandomizationSlot.used.is_(True))
                .order_by(RandomizationSlot.allocated_at, RandomizationSlot.id)
            ).all()
            assert verify(s).ok
    finally:
        engine.dispose()
    assert len(used) == run.randomized
    earlier: dict[tuple[str, str], int] = {}
    known = []
    for code, slot in sorted(used, key=lambda x: (x[0], x[1].sequence)):
        cut = parse_data_cut(slot.data_cut or "")
        k = earlier.get((code, slot.stratum or ""), 0)
        draw = adaptive_draw(
            protocol, f"virtual-trial-{run.seed}", code, slot.sequence, slot.stratum or "", cut, k
        )
        assert (draw.arm, draw.probability, draw.data_cut_sha256) == (
            slot.arm,
            slot.probability,
            slot.data_cut_sha256,
        )
        earlier[(code, slot.stratum or "")] = k + 1
    for _, slot in used:  # in allocation order: the outcomes known only grow
        cut = parse_data_cut(slot.data_cut or "")
        known.append(sum(n for arms in cut.values() for _, n in arms.values()))
    assert known == sorted(known) and known[-1] > 0
    assert any(slot.probability != 0.5 for _, slot in used)
    # at the end every outcome is known, and the data cut is what the analysis derives (same kernel)
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            final = data_cut(s, protocol)
    finally:
        engine.dispose()
    raw, protocol = extract_raw_trial(url)
    adsl = derive_datasets(raw, protocol).adsl
    analysed = adsl[adsl["analysed"].astype(bool)]
    derived = {
        s: {
            a: (
                int(analysed[(analysed.stratum == s) & (analysed.arm == a)]["primary_endpoint"].sum()),
                int(((analysed.stratum == s) & (analysed.arm == a)).sum()),
            )
            for a in protocol.arm_codes
        }
        for s in protocol.enrolled_strata
    }
    assert final == derived
