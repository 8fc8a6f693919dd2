"""The day's double-dummy regimen for a patient and the full dose schedule, from the protocol.

Every patient receives one injection per route on the route's schedule (ImmunoSep: IV every 8 h, SC every
48 h); in each stratum x arm one route carries the active drug or both carry saline. When creatinine
clearance is below ``renal.threshold_ml_min`` the dose and the volume of the ``renal.route`` injection
are multiplied by ``renal.dose_factor`` — for the dummy too, so that the syringe never reveals the arm.

One carry-forward rule (:func:`clearance_in_force`) decides which clearance a treatment day uses, for the
pure schedule here and for the trial's pharmacist (``conduct.dosing``): the last known clearance stands
until a new one is measured. Before any measurement no clearance is known and the ``renal.route``
injection is *held* (every arm alike): it is never given at full strength by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    """One injection of the schedule: study day (1 = first treatment day) and hour from the day's start.

    ``crcl_ml_min`` and ``crcl_day`` are the clearance in force (:func:`clearance_in_force`) and the day
    it was measured; ``held`` is True for the ``renal.route`` injection while no clearance is known: it
    must not be given until one is (``dose`` and ``volume_ml`` are then the unadjusted amounts).
    """

    day: int
    hour: int
    route: str
    drug: str
    dose: float
    unit: str
    volume_ml: float
    dummy: bool
    renal_adjusted: bool
    crcl_ml_min: float | None = None
    crcl_day: int | None = None
    held: bool = False


@dataclass(frozen=True)
class ClearanceInForce:
    """The creatinine clearance a treatment day's dose uses (mL/min) and the study day it was measured."""

    crcl_ml_min: float
    study_day: int


def _measured(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def clearance_in_force(
    measured: Mapping[int, float | None], study_day: int, protocol: Protocol | None = None
) -> ClearanceInForce | None:
    """The last known creatinine clearance on ``study_day``: the value of the most recent study day
    <= ``study_day`` that has one (``measured`` maps study day -> clearance in mL/min; None or NaN = not
    measured that day). A value stands until a new one is measured; later days are ignored.

    None when no clearance is known on or before ``study_day``: the ``renal.route`` injection is then
    held (see :func:`renal_route_held`), never given at full strength by default.
    """
    days = [d for d, v in measured.items() if d <= study_day and _measured(v)]
    if not days:
        return None
    day = max(days)
    value = measured[day]
    assert value is not None
    renal_adjustment_applies(value, protocol)  # refuses a negative, infinite or non-numeric clearance
    return ClearanceInForce(float(value), day)


def renal_route_held(
    route: str, clearance: ClearanceInForce | None, protocol: Protocol | None = None
) -> bool:
    """True for the ``renal.route`` injection while no clearance is known: it is not given until one is.

    The same for every stratum and arm (the saline dummy too), so a held injection never reveals the arm.
    """
    p = protocol or default_protocol()
    return clearance is None and route == p.renal.route


def crcl_digits(crcl_ml_min: float, protocol: Protocol | None = None) -> str:
    """The clearance printed with as few decimals as keep it on its side of ``renal.threshold_ml_min``
    (at least one): 29.96 prints "29.96", never "30.0"; 53.125 prints "53.1"."""
    p = protocol or default_protocol()
    below = crcl_ml_min < p.renal.threshold_ml_min
    for decimals in range(1, 10):
        text = f"{crcl_ml_min:.{decimals}f}"
        if (float(text) < p.renal.threshold_ml_min) == below:
            return text
    return repr(float(crcl_ml_min))


def describe_clearance(crcl_ml_min: float, protocol: Protocol | None = None) -> str:
    """The clearance and the side of the renal rule it falls on, e.g. "29.96 mL/min (below 30 mL/min:
    IV dose and volume x 0.5)" or "53.1 mL/min (30 mL/min or more: no renal adjustment)"."""
    p = protocol or default_protocol()
    limit = f"{p.renal.threshold_ml_min:g} mL/min"
    if renal_adjustment_applies(crcl_ml_min, p):
        rule = f"below {limit}: {p.renal.route.upper()} dose and volume x {p.renal.dose_factor:g}"
    else:
        rule = f"{limit} or more: no renal adjustment"
    return f"{crcl_digits(crcl_ml_min, p)} mL/min ({rule})"


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

    ``crcl_ml_min=None`` gives the unadjusted amounts (the regimen as the protocol writes it). For a
    patient's dose day use :func:`clearance_in_force` first: with no clearance known the ``renal.route``
    injection is held (:func:`renal_route_held`), not given at these amounts.
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
    (``protocol.treatment.days``). Each day uses :func:`clearance_in_force`: a day without a value uses
    the last known clearance; before any measurement the ``renal.route`` injections are ``held`` (not to
    be given until a clearance is known). Each route starts at hour 0 of day 1 and repeats every
    ``interval_hours`` (ImmunoSep: IV at 0, 8, 16 h each day; SC at hour 0 of days 1, 3, ..., 15).
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
    measured = {day: value for day, value in enumerate(crcl_by_day, start=1)}
    in_force = [clearance_in_force(measured, day, p) for day in range(1, days + 1)]
    doses: list[tuple[int, int, ScheduledDose]] = []
    for order, item in enumerate(items):
        for t in range(0, days * HOURS_PER_DAY, item.interval_hours):
            day = t // HOURS_PER_DAY + 1
            known = in_force[day - 1]
            today = daily_regimen(stratum, arm, None if known is None else known.crcl_ml_min, p)[order]
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
                        crcl_ml_min=None if known is None else known.crcl_ml_min,
                        crcl_day=None if known is None else known.study_day,
                        held=renal_route_held(today.route, known, p),
                    ),
                )
            )
    doses.sort(key=lambda d: (d[0], d[1]))
    return [d[2] for d in doses]
