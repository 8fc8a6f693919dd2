"""Double-dummy daily regimen, renal adjustment and the 15-day schedule (protocol-driven)."""

from __future__ import annotations

import pytest

from immunosep.clinical.regimen import (
    ClearanceInForce,
    clearance_in_force,
    crcl_digits,
    daily_regimen,
    describe_clearance,
    dose_schedule,
    renal_route_held,
)
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol


@pytest.mark.requirement("PROT-DOSE-01")
def test_mals_precision_normal_renal_function() -> None:
    iv, sc = daily_regimen("mals", "precision", 80.0)
    assert (iv.route, iv.drug, iv.dose, iv.unit, iv.interval_hours, iv.dummy) == (
        "iv",
        "anakinra",
        200.0,
        "mg",
        8,
        False,
    )
    assert iv.administrations_per_day == 3.0
    assert (sc.route, sc.dummy, sc.interval_hours, sc.administrations_per_day) == ("sc", True, 48, 0.5)
    assert not iv.renal_adjusted


@pytest.mark.requirement("PROT-DOSE-02")
def test_crcl_29_9_halves_iv_but_30_does_not() -> None:
    low = daily_regimen("mals", "precision", 29.9)
    at = daily_regimen("mals", "precision", 30.0)
    assert (low[0].dose, low[0].volume_ml, low[0].renal_adjusted) == (100.0, 10.0, True)
    assert (at[0].dose, at[0].volume_ml, at[0].renal_adjusted) == (200.0, 20.0, False)
    assert low[1] == at[1]  # SC is not the renal route


@pytest.mark.requirement("PROT-DOSE-01", "BLIND-01")
def test_dummy_is_halved_too_so_volume_never_reveals_arm() -> None:
    for stratum in ("mals", "immunoparalysis"):
        volumes = {
            arm: [(d.route, d.volume_ml) for d in daily_regimen(stratum, arm, 20.0)]
            for arm in ("precision", "placebo")
        }
        assert volumes["precision"] == volumes["placebo"]
    placebo_iv = daily_regimen("mals", "placebo", 20.0)[0]
    assert placebo_iv.dummy and placebo_iv.renal_adjusted and placebo_iv.volume_ml == 10.0


@pytest.mark.requirement("PROT-DOSE-01")
def test_immunoparalysis_precision_gets_interferon_sc() -> None:
    iv, sc = daily_regimen("immunoparalysis", "precision", None)
    assert iv.dummy and not sc.dummy
    assert (sc.drug, sc.dose, sc.unit) == ("interferon gamma-1b", 100.0, "ug")


def test_unclassified_and_unknown_are_refused() -> None:
    with pytest.raises(ImmunoSepError, match="not enrolled"):
        daily_regimen("unclassified", "precision", 50.0)
    with pytest.raises(ImmunoSepError, match="unknown arm"):
        daily_regimen("mals", "active", 50.0)
    with pytest.raises(ImmunoSepError, match="unknown stratum"):
        daily_regimen("hlh", "placebo", 50.0)
    with pytest.raises(ImmunoSepError, match="creatinine clearance"):
        daily_regimen("mals", "placebo", -3.0)


@pytest.mark.requirement("PROT-DOSE-01")
def test_full_schedule_counts_and_times() -> None:
    days = default_protocol().treatment.days
    sched = dose_schedule("mals", "precision", [80.0] * days)
    iv = [d for d in sched if d.route == "iv"]
    sc = [d for d in sched if d.route == "sc"]
    assert len(iv) == 3 * days  # every 8 h for 15 days = 45
    assert len(sc) == 8  # every 48 h from hour 0: days 1, 3, ..., 15
    assert [d.day for d in sc] == [1, 3, 5, 7, 9, 11, 13, 15]
    assert {d.hour for d in iv} == {0, 8, 16}
    assert sched[0].route == "iv" and sched[1].route == "sc" and sched[1].day == 1  # IV first at hour 0


def test_schedule_follows_daily_crcl_and_carries_the_last_value() -> None:
    crcl: list[float | None] = [None, 25.0, None, 40.0] + [None] * 11
    sched = dose_schedule("mals", "precision", crcl)
    iv = {d.day: d for d in sched if d.route == "iv"}
    sc = {d.day: d for d in sched if d.route == "sc"}
    assert iv[1].held and iv[1].crcl_ml_min is None  # nothing measured yet: the IV dose is held
    assert not sc[1].held  # SC is not the renal route
    assert (iv[2].dose, iv[2].held, iv[2].crcl_day) == (100.0, False, 2)
    assert (iv[3].dose, iv[3].crcl_ml_min, iv[3].crcl_day) == (100.0, 25.0, 2)  # day 2's 25 carried
    assert (iv[4].dose, iv[4].crcl_day) == (200.0, 4)
    assert (iv[15].dose, iv[15].crcl_ml_min, iv[15].crcl_day) == (200.0, 40.0, 4)


def test_a_clearance_of_20_on_day_1_and_nothing_after_halves_every_later_iv_dose() -> None:
    """The issue's example: CrCl 20 on day 1, nothing after -> 100 mg on day 2 (and to day 15)."""
    days = default_protocol().treatment.days
    for arm in ("precision", "placebo"):
        sched = dose_schedule("mals", arm, [20.0] + [None] * (days - 1))
        iv = [d for d in sched if d.route == "iv"]
        assert {(d.renal_adjusted, d.volume_ml, d.crcl_day, d.held) for d in iv} == {(True, 10.0, 1, False)}
    active = dose_schedule("mals", "precision", [20.0] + [None] * (days - 1))
    assert {d.dose for d in active if d.route == "iv" and d.day == 2} == {100.0}


@pytest.mark.requirement("PROT-DOSE-02")
def test_no_clearance_holds_the_iv_dose_in_every_arm_alike() -> None:
    """Double dummy: the held injection is the renal route's in both arms and both strata."""
    days = default_protocol().treatment.days
    held = {
        (stratum, arm): [
            (d.day, d.hour, d.route) for d in dose_schedule(stratum, arm, [None] * days) if d.held
        ]
        for stratum in ("mals", "immunoparalysis")
        for arm in ("precision", "placebo")
    }
    first = next(iter(held.values()))
    assert len(first) == 3 * days and {r for _, _, r in first} == {"iv"}
    assert all(v == first for v in held.values())
    assert renal_route_held("iv", None) and not renal_route_held("sc", None)
    assert not renal_route_held("iv", ClearanceInForce(80.0, 1))


def test_clearance_in_force_is_the_most_recent_measurement_on_or_before_the_day() -> None:
    measured = {1: 45.0, 2: None, 3: float("nan"), 4: 22.5, 6: 31.0}
    assert clearance_in_force(measured, 1) == ClearanceInForce(45.0, 1)
    assert clearance_in_force(measured, 3) == ClearanceInForce(45.0, 1)  # None and NaN: not measured
    assert clearance_in_force(measured, 5) == ClearanceInForce(22.5, 4)
    assert clearance_in_force(measured, 6) == ClearanceInForce(31.0, 6)
    assert clearance_in_force({3: 40.0}, 2) is None  # a later measurement never reaches back
    assert clearance_in_force({}, 1) is None
    with pytest.raises(ImmunoSepError, match="creatinine clearance"):
        clearance_in_force({1: -4.0}, 2)


def test_the_clearance_is_printed_on_its_side_of_the_threshold() -> None:
    assert crcl_digits(29.96) == "29.96"  # never "30.0", which would read as not adjusted
    assert crcl_digits(29.9996) == "29.9996"
    assert crcl_digits(30.0) == "30.0" and crcl_digits(30.04) == "30.0"
    assert crcl_digits(53.125) == "53.1" and crcl_digits(17.0) == "17.0"
    assert describe_clearance(29.96) == "29.96 mL/min (below 30 mL/min: IV dose and volume x 0.5)"
    assert describe_clearance(30.0) == "30.0 mL/min (30 mL/min or more: no renal adjustment)"


@pytest.mark.parametrize(
    ("crcl", "text"),
    [
        (29.96, "29.96 mL/min (below 30 mL/min: IV dose and volume x 0.5)"),
        (29.9999, "29.9999 mL/min (below 30"),
        (30.0, "30.0 mL/min (30 mL/min or more"),
        (30.04, "30.0 mL/min (30 mL/min or more"),
        (12.345, "12.3 mL/min (below 30"),
        (45.8, "45.8 mL/min (30 mL/min or more"),
    ],
)
def test_described_clearance_shows_the_side_of_the_threshold(crcl: float, text: str) -> None:
    """The one clearance text of the pharmacist's page and ``immunosep regimen``."""
    out = describe_clearance(crcl, default_protocol())
    assert out.startswith(text)
    shown = float(out.split()[0])
    assert (shown < 30) == (crcl < 30)


def test_schedule_needs_one_value_per_day() -> None:
    with pytest.raises(ImmunoSepError, match="one creatinine clearance per treatment day"):
        dose_schedule("mals", "placebo", [50.0] * 3)
