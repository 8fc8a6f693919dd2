"""The day's double-dummy regimen for a patient and the full dose schedule, from the protocol.

Every patient receives one injection per route on the route's schedule (ImmunoSep: IV every 8 h, SC every
48 h); in each stratum x arm one route carries the active drug or both carry saline. When creatinine
clearance is below ``renal.threshold_ml_min`` the dose and the volume of the ``renal.route`` injection
are multiplied by ``renal.dose_factor`` — for the dummy too, so that the syringe never reveals the arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol, RegimenItem

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class DailyDose:
    """One route's injection for a day: what, how much, and how often."""

    route: str
    drug: str
    dose: float
    unit: str
    volume_ml: float
    interval_hours: int
    administrations_per_day: float
    dummy: bool
    renal_adjusted: bool


@dataclass(frozen=True)
class ScheduledDose:
    """One injection of the schedule: study day (1 = first treatment day) and hour from the day's start."""

    day: int
    hour: int
    route: str
    drug: str
    dose: float
    unit: str
    volume_ml: float
    dummy: bool
    renal_adjusted: bool


def _check_enrolled(stratum: str, arm: str, p: Protocol) -> list[RegimenItem]:
    if stratum not in p.enrolled_strata:
        known = [s.code for s in p.strata]
        if stratum in known:
            raise ImmunoSepError(
                f"stratum {stratum!r} is not enrolled and has no regimen; enrolled strata: {p.enrolled_strata}",
                field="stratum",
            )
        raise ImmunoSepError(f"unknown stratum {stratum!r}; strata: {known}", field="stratum")
    if arm not in p.arm_codes:
        raise ImmunoSepError(f"unknown arm {arm!r}; arms: {p.arm_codes}", field="arm")
    return p.regimen_for(stratum, arm)


def renal_adjustment_applies(crcl_ml_min: float | None, protocol: Protocol | None = None) -> bool:
    """True when the clearance is known and below the protocol threshold (strictly: 30.0 is not adjusted)."""
    p = protocol or default_protocol()
    if crcl_ml_min is None:
        return False
    if math.isnan(crcl_ml_min) or crcl_ml_min < 0 or math.isinf(crcl_ml_min):
        raise ImmunoSepError(
            f"creatinine clearance {crcl_ml_min} is not a valid value in mL/min (give a number >= 0, or none "
            "when it was not measured)",
            field="crcl_ml_min",
        )
    return crcl_ml_min < p.renal.threshold_ml_min


def daily_regimen(
    stratum: str, arm: str, crcl_ml_min: float | None, protocol: Protocol | None = None
) -> list[DailyDose]:
    """The injections of one treatment day (IV then SC) for a stratum, arm and creatinine clearance.

    ``crcl_ml_min=None`` means not measured: no renal adjustment.
    """
    p = protocol or default_protocol()
    items = _check_enrolled(stratum, arm, p)
    reduce = renal_adjustment_applies(crcl_ml_min, p)
    out = []
    for item in items:
        adjusted = reduce and item.route == p.renal.route
        factor = p.renal.dose_factor if adjusted else 1.0
        out.append(
            DailyDose(
                route=item.route,
                drug=item.drug,
                dose=item.dose * factor,
                unit=item.unit,
                volume_ml=item.volume_ml * factor,
                interval_hours=item.interval_hours,
                administrations_per_day=HOURS_PER_DAY / item.interval_hours,
                dummy=item.dummy,
                renal_adjusted=adjusted,
            )
        )
    return out


def dose_schedule(
    stratum: str,
    arm: str,
    crcl_by_day: Sequence[float | None],
    protocol: Protocol | None = None,
) -> list[ScheduledDose]:
    """Every injection of the treatment course, in time order (IV before SC at the same hour).

    ``crcl_by_day[i]`` is the clearance of treatment day ``i + 1``; one value per treatment day
    (``protocol.treatment.days``). A day without a value uses the last known clearance (the dose is
    decided on the most recent measurement); before any measurement the dose is not adjusted. Each route
    starts at hour 0 of day 1 and repeats every ``interval_hours`` (ImmunoSep: IV at 0, 8, 16 h each day;
    SC at hour 0 of days 1, 3, ..., 15).
    """
    p = protocol or default_protocol()
    items = _check_enrolled(stratum, arm, p)
    days = p.treatment.days
    if len(crcl_by_day) != days:
        raise ImmunoSepError(
            f"give one creatinine clearance per treatment day ({days} values, None where not measured), "
            f"got {len(crcl_by_day)}",
            field="crcl_by_day",
        )
    effective: list[float | None] = []
    last: float | None = None
    for value in crcl_by_day:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            renal_adjustment_applies(value, p)
            last = float(value)
        effective.append(last)
    doses: list[tuple[int, int, ScheduledDose]] = []
    for order, item in enumerate(items):
        for t in range(0, days * HOURS_PER_DAY, item.interval_hours):
            day = t // HOURS_PER_DAY + 1
            today = daily_regimen(stratum, arm, effective[day - 1], p)[order]
            doses.append(
                (
                    t,
                    order,
                    ScheduledDose(
                        day=day,
                        hour=t % HOURS_PER_DAY,
                        route=today.route,
                        drug=today.drug,
                        dose=today.dose,
                        unit=today.unit,
                        volume_ml=today.volume_ml,
                        dummy=today.dummy,
                        renal_adjusted=today.renal_adjusted,
                    ),
                )
            )
    doses.sort(key=lambda d: (d[0], d[1]))
    return [d[2] for d in doses]
