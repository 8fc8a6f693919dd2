"""The DSMB's randomization predictability report, from the sealed lists of the allocated patients."""

from __future__ import annotations

import math
import statistics

import pytest
from sqlalchemy import select

from immunosep.conduct import reports
from immunosep.conduct.randomization import generate_site_list
from immunosep.errors import AccessDenied
from immunosep.protocol import default_protocol
from immunosep.stats.predictability import expected_guess_share_blocks, guess_share
from immunosep.store.db import session_scope
from immunosep.store.models import RandomizationSlot, Site


@pytest.mark.requirement("RND-ADP-02")
def test_design_expectation_matches_the_sealed_lists_the_platform_makes():
    """Monte Carlo over 400 seeds of the real list generator against the exact expectation (DP)."""
    p = default_protocol()
    n = 30
    shares = [
        guess_share([s.arm for s in generate_site_list(p, f"seed-{i}", "S01", n)[:n]], p.arm_codes).share
        for i in range(400)
    ]
    expected = expected_guess_share_blocks(p.randomization.block_sizes, n, p.randomization.ratio).share
    se = statistics.stdev(shares) / math.sqrt(len(shares))
    assert abs(statistics.mean(shares) - expected) < 4 * se
    assert 0.69 < expected < 0.72  # blocks of 2, 4 and 6: between 0.6833 (6) and 0.75 (2)


@pytest.mark.requirement("RND-ADP-02")
def test_dsmb_report_recomputes_each_site_from_its_used_slots_and_pools_them(trial, enroll):
    for inv in ("inv1", "inv1", "inv1", "inv2", "inv2"):
        enroll(investigator=inv)
    p = default_protocol()
    with session_scope(trial.engine) as s:
        report = reports.predictability_report(s, trial.actors["dsmb"])
        rows = s.execute(
            select(Site.code, RandomizationSlot.arm)
            .join(Site, Site.id == RandomizationSlot.site_id)
            .where(RandomizationSlot.used.is_(True))
            .order_by(RandomizationSlot.sequence)
        ).all()
    by_site: dict[str, list[str]] = {}
    for code, arm in rows:
        by_site.setdefault(code, []).append(arm)
    assert [r.site for r in report.sites] == sorted(by_site)
    assert [r.allocations for r in report.sites] == [len(by_site[c]) for c in sorted(by_site)]
    for row in report.sites:
        assert row.correct == guess_share(by_site[row.site], p.arm_codes).correct
        assert row.expected_share == pytest.approx(
            expected_guess_share_blocks(p.randomization.block_sizes, row.allocations).share
        )
    assert report.pooled.allocations == 5
    assert report.pooled.share == pytest.approx(sum(r.correct for r in report.sites) / 5)
    assert report.pooled.excess == pytest.approx(report.pooled.share - 0.5)
    assert report.design == "block" and report.block_sizes == p.randomization.block_sizes


def test_only_the_dsmb_reads_the_predictability_report(trial):
    for role in ("inv1", "pharm1", "mon1", "dm", "lab", "admin"):
        with session_scope(trial.engine) as s, pytest.raises(AccessDenied):
            reports.predictability_report(s, trial.actors[role])
    with session_scope(trial.engine) as s:
        empty = reports.predictability_report(s, trial.actors["dsmb"])
    assert empty.sites == [] and empty.pooled.allocations == 0 and empty.pooled.share is None
