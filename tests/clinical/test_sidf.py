"""SIDF reversal: MALS ferritin fall >= 15 % sustained; immunoparalysis mHLA-DR > 8000 sustained; at least
2 serial draws after baseline to be assessable and 2 serial draws to the last one to confirm reversal
(JAMA 2025 Methods: "Patients not having at least 2 serial blood draws to confirm the permanence of the
changes were considered not to have attained reversal"; Table 2: 46/59 vs 32/66)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from immunosep.clinical.sidf import SidfReversal, sidf_reversal, sidf_reversal_arrays
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol, SidfRule

DAYS = [1, 2, 4, 7, 15, 21, 28]  # protocol biospecimen days
PROTOCOL = default_protocol()


def with_rule(**changes: object) -> Protocol:
    return PROTOCOL.model_copy(update={"sidf": PROTOCOL.sidf.model_copy(update=changes)})


def test_the_bundled_protocol_says_two_serial_draws_and_the_level_reading() -> None:
    rule = PROTOCOL.sidf
    assert (rule.min_later_draws, rule.min_confirming_draws) == (2, 2)
    assert (rule.mals_ferritin_min_fall_fraction, rule.immunoparalysis_hla_dr_above) == (0.15, 8000.0)
    assert rule.immunoparalysis_hla_dr_criterion == "level"


def test_mals_reversal_sustained() -> None:
    # baseline 10000; day 4 fall to 8500 = exactly 15 %, then lower
    r = sidf_reversal("mals", DAYS, [10000, 9000, 8500, 7000, 5000, 4000, 3000])
    assert r == SidfReversal(reversed=True, day=4, assessable=True, later_draws=6)


def test_mals_just_short_of_15_percent_does_not_count() -> None:
    r = sidf_reversal("mals", DAYS, [10000, 9000, 8501, 8501, 8600, 8700, 8501])
    assert r == SidfReversal(False, None, True, 6)


def test_mals_rebound_moves_the_day_to_the_last_sustained_run() -> None:
    # fell on day 2, rebounded above 85 % on day 7, fell again from day 15 on
    r = sidf_reversal("mals", DAYS, [10000, 8000, 7000, 9000, 6000, 5000, 4000])
    assert r == SidfReversal(True, 15, True, 6)


def test_mals_rebound_at_the_last_draw_is_not_reversal() -> None:
    r = sidf_reversal("mals", DAYS, [10000, 8000, 7000, 6000, 5000, 4000, 9000])
    assert r == SidfReversal(False, None, True, 6)


def test_a_change_seen_only_at_the_last_draw_is_not_confirmed() -> None:
    # one draw across the criterion is a change, not its permanence: a second serial draw must confirm it
    assert sidf_reversal("mals", DAYS, [10000, 9000, 9000, 9000, 9000, 9000, 5000]) == SidfReversal(
        False, None, True, 6
    )
    assert sidf_reversal("mals", DAYS, [10000, 9000, 9000, 9000, 9000, 5000, 5000]) == SidfReversal(
        True, 21, True, 6
    )
    # a missing draw between the two does not break the confirmation
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 4000, 4000, 4000, 9000, None, 9100])
    assert r == SidfReversal(True, 15, True, 5)


def test_immunoparalysis_strictly_above_8000() -> None:
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 6000, 8001, 9000, 12000, 15000, 20000])
    assert r == SidfReversal(True, 4, True, 6)
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 6000, 8000, 9000, 12000, 15000, 20000])
    assert r.day == 7  # 8000 itself is not above 8000


def test_the_rise_reading_of_the_footnote_needs_an_increase_of_more_than_8000() -> None:
    rise = with_rule(immunoparalysis_hla_dr_criterion="rise")
    values = [3000, 9000, 10000, 11001, 12000, 12000, 12000]
    assert sidf_reversal("immunoparalysis", DAYS, values).day == 2  # level: above 8000 from day 2
    assert sidf_reversal("immunoparalysis", DAYS, values, rise).day == 7  # rise: 11001 - 3000 > 8000
    assert not sidf_reversal(
        "immunoparalysis", DAYS, [3000, 9000, 11000, 11000, 11000, 11000, 11000], rise
    ).reversed
    # the reading of mHLA-DR does not touch MALS
    assert sidf_reversal("mals", DAYS, [10000, 9000, 8500, 7000, 5000, 4000, 3000], rise).day == 4


def test_too_few_serial_draws_is_outside_the_sidf_population() -> None:
    assert sidf_reversal("mals", [1, 2], [10000, 2000]) == SidfReversal(False, None, False, 1)
    assert sidf_reversal("mals", [1, 2, 4], [10000, 2000, 2000]) == SidfReversal(True, 2, True, 2)
    assert sidf_reversal("mals", [1, 2, 4], [10000, 9000, 2000]) == SidfReversal(False, None, True, 2)


def test_missing_draws_are_skipped_and_not_counted() -> None:
    # only one non-missing later draw: not assessable
    r = sidf_reversal("mals", DAYS, [10000, None, 5000, None, None, None, None])
    assert r == SidfReversal(False, None, False, 1)
    # a missing draw inside the run neither breaks nor confirms it
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 9000, float("nan"), 9500, None, None, None])
    assert r == SidfReversal(True, 2, True, 2)


def test_missing_baseline_is_not_assessable() -> None:
    assert sidf_reversal("mals", DAYS, [None, 1, 1, 1, 1, 1, 1]) == SidfReversal(False, None, False, 6)


def test_only_baseline() -> None:
    assert sidf_reversal("immunoparalysis", [1], [2000]) == SidfReversal(False, None, False, 0)


def test_zero_baseline_ferritin_cannot_fall() -> None:
    assert sidf_reversal("mals", [1, 2, 4], [0, 0, 0]) == SidfReversal(False, None, True, 2)


def test_more_confirming_draws_asked_by_another_protocol() -> None:
    three = with_rule(min_later_draws=3, min_confirming_draws=3)
    values = [10000, 9000, 9000, 9000, 8000, 8000, 8000]
    assert sidf_reversal("mals", DAYS, values, three).day == 15
    assert not sidf_reversal("mals", DAYS, [10000, 9000, 9000, 9000, 9000, 8000, 8000], three).reversed
    assert not sidf_reversal("mals", [1, 2, 4], [10000, 8000, 8000], three).assessable


def test_a_protocol_asking_more_confirming_than_serial_draws_is_refused() -> None:
    fields = PROTOCOL.sidf.model_dump() | {"min_confirming_draws": 3}
    with pytest.raises(ValidationError, match="cannot exceed"):
        SidfRule(**fields)
    with pytest.raises(ValidationError):
        SidfRule(**(PROTOCOL.sidf.model_dump() | {"immunoparalysis_hla_dr_criterion": "increase"}))


def test_bad_series_are_refused() -> None:
    with pytest.raises(ImmunoSepError, match="strictly increasing"):
        sidf_reversal("mals", [1, 4, 2], [1, 1, 1])
    with pytest.raises(ImmunoSepError, match="one value"):
        sidf_reversal("mals", [1, 2], [1])
    with pytest.raises(ImmunoSepError, match="non-negative"):
        sidf_reversal("mals", [1, 2, 4], [100, -1, 50])
    with pytest.raises(ImmunoSepError, match="non-negative"):
        sidf_reversal("mals", [1, 2, 4], [100, float("inf"), 50])
    with pytest.raises(ImmunoSepError, match="not 'unclassified'"):
        sidf_reversal("unclassified", [1, 2, 4], [1, 1, 1])
    with pytest.raises(ImmunoSepError, match="at least the baseline"):
        sidf_reversal("mals", [], [])
    with pytest.raises(ImmunoSepError, match="row 1"):
        sidf_reversal_arrays(["mals", "mals"], [1, 2], [[1, 1], [1, -1]])
    with pytest.raises(ImmunoSepError, match="one stratum per row"):
        sidf_reversal_arrays(["mals"], [1, 2], [[1, 1], [1, 1]])


# -- an independent reading of the rule, against the vectorized kernel ----------------------------------
def reference(stratum: str, days: list[int], values: list[float | None], rule: SidfRule) -> SidfReversal:
    """The rule as the paper words it, one draw at a time, in exact arithmetic (fractions)."""
    baseline = values[0]
    serial = [(d, v) for d, v in zip(days[1:], values[1:], strict=True) if v is not None]
    if baseline is None or len(serial) < rule.min_later_draws:
        return SidfReversal(False, None, False, len(serial))

    def changed(v: float) -> bool:
        if stratum == "mals":
            b = Fraction(baseline)
            return b > 0 and (b - Fraction(v)) / b >= Fraction(str(rule.mals_ferritin_min_fall_fraction))
        gain = v - baseline if rule.immunoparalysis_hla_dr_criterion == "rise" else v
        return gain > rule.immunoparalysis_hla_dr_above

    confirming: list[int] = []  # the serial draws, back from the last, that show the change
    for d, v in reversed(serial):
        if not changed(v):
            break
        confirming.append(d)
    if len(confirming) < rule.min_confirming_draws:
        return SidfReversal(False, None, True, len(serial))
    return SidfReversal(True, confirming[-1], True, len(serial))


def random_series(rng: np.random.Generator, n: int, k: int) -> tuple[list[str], list[list[float | None]]]:
    """Integer lab values close to both criteria (and exactly on them), with random missing draws."""
    strata = rng.choice(["mals", "immunoparalysis"], n).tolist()
    rows: list[list[float | None]] = []
    for s in strata:
        if s == "mals":
            base = float(rng.choice([0, 20, 1000, 4421, 5000, 10000, int(rng.integers(4421, 60000))]))
            pool = [base, base * 0.85, base * 0.85 + 1, base * 0.85 - 1, base * 0.5, base * 1.2]
            vals = [float(max(0, round(rng.choice(pool)))) for _ in range(k)]
            vals[0] = base
        else:
            base = float(rng.choice([500, 3000, 4999, int(rng.integers(100, 5000))]))
            pool = [8000, 8001, 7999, 16000 + base, base + 8000, base + 8001, 3000, 20000]
            vals = [float(rng.choice(pool)) for _ in range(k)]
            vals[0] = base
        missing = rng.random(k) < rng.choice([0.0, 0.3, 0.7])
        rows.append([None if m else v for v, m in zip(vals, missing, strict=True)])
    return strata, rows


@pytest.mark.parametrize("criterion", ["level", "rise"])
@pytest.mark.parametrize(("later", "confirming"), [(2, 2), (1, 1), (3, 2), (3, 3)])
def test_kernel_equals_the_reference_reading_on_random_series(
    criterion: str, later: int, confirming: int
) -> None:
    protocol = with_rule(
        immunoparalysis_hla_dr_criterion=criterion, min_later_draws=later, min_confirming_draws=confirming
    )
    rng = np.random.default_rng(20251208 + later * 10 + confirming)
    strata, rows = random_series(rng, 2000, len(DAYS))
    values = np.array([[np.nan if v is None else v for v in row] for row in rows])
    got = sidf_reversal_arrays(strata, DAYS, values, protocol)
    for i, (s, row) in enumerate(zip(strata, rows, strict=True)):
        want = reference(s, DAYS, row, protocol.sidf)
        day = None if np.isnan(got.day[i]) else int(got.day[i])
        assert (bool(got.reversed[i]), day, bool(got.assessable[i]), int(got.later_draws[i])) == (
            want.reversed,
            want.day,
            want.assessable,
            want.later_draws,
        ), (s, row)
        if i % 10 == 0:
            assert sidf_reversal(s, DAYS, row, protocol) == want
    # the sweep reaches every outcome: reversed, confirmed too late, not assessable
    assert min(got.reversed.sum(), (got.assessable & ~got.reversed).sum(), (~got.assessable).sum()) >= 50


@settings(max_examples=300, deadline=None)
@given(
    stratum=st.sampled_from(["mals", "immunoparalysis"]),
    values=st.lists(st.one_of(st.none(), st.integers(0, 30000).map(float)), min_size=1, max_size=7),
)
def test_scalar_rule_equals_the_reference_reading(stratum: str, values: list[float | None]) -> None:
    days = DAYS[: len(values)]
    assert sidf_reversal(stratum, days, values) == reference(stratum, days, values, PROTOCOL.sidf)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(1, 30000).map(float), min_size=3, max_size=7))
def test_a_worse_last_draw_never_creates_a_reversal(values: list[float]) -> None:
    # Monotone in the last draw: if the last mHLA-DR is lowered, a non-reverser stays a non-reverser.
    days = DAYS[: len(values)]
    before = sidf_reversal("immunoparalysis", days, values)
    lowered = [*values[:-1], values[-1] / 2]
    if not before.reversed:
        assert not sidf_reversal("immunoparalysis", days, lowered).reversed
