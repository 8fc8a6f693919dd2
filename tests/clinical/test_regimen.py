"""Double-dummy daily regimen, renal adjustment and the 15-day schedule (protocol-driven)."""

from __future__ import annotations

import pytest

from immunosep.clinical.regimen import daily_regimen, dose_schedule
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol


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


def test_crcl_29_9_halves_iv_but_30_does_not() -> None:
    low = daily_regimen("mals", "precision", 29.9)
    at = daily_regimen("mals", "precision", 30.0)
    assert (low[0].dose, low[0].volume_ml, low[0].renal_adjusted) == (100.0, 10.0, True)
    assert (at[0].dose, at[0].volume_ml, at[0].renal_adjusted) == (200.0, 20.0, False)
    assert low[1] == at[1]  # SC is not the renal route


def test_dummy_is_halved_too_so_volume_never_reveals_arm() -> None:
    for stratum in ("mals", "immunoparalysis"):
        volumes = {
            arm: [(d.route, d.volume_ml) for d in daily_regimen(stratum, arm, 20.0)]
            for arm in ("precision", "placebo")
        }
        assert volumes["precision"] == volumes["placebo"]
    placebo_iv = daily_regimen("mals", "placebo", 20.0)[0]
    assert placebo_iv.dummy and placebo_iv.renal_adjusted and placebo_iv.volume_ml == 10.0


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
    by_day = {d.day: d.dose for d in sched if d.route == "iv"}
    assert by_day[1] == 200.0  # not yet measured: unadjusted
    assert by_day[2] == 100.0
    assert by_day[3] == 100.0  # last known value (25) carried
    assert by_day[4] == 200.0
    assert by_day[15] == 200.0


def test_schedule_needs_one_value_per_day() -> None:
    with pytest.raises(ImmunoSepError, match="one creatinine clearance per treatment day"):
        dose_schedule("mals", "placebo", [50.0] * 3)
