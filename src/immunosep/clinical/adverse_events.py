"""Adverse-event terms and the rules that tie them together (CDISC controlled terminology, ICH E2A).

The one home of the terms the AE form offers and the SDTM export writes:

* ``SERIOUSNESS_CRITERIA``: ICH E2A's criteria, each with its SDTM AE variable (``AESDTH``...);
* ``ACTIONS``: action taken with the study treatment, CDISC codelist ACN (C66767). This trial's study
  treatment is a fixed-dose injection every 8 h and 48 h, so "DOSE INCREASED" and "DOSE RATE REDUCED"
  (infusion rates) do not apply and are not offered; the protocol's own renal halving is not an action
  taken for an event, but an investigator's reduction for one is "DOSE REDUCED";
* ``OUTCOMES``: outcome of the event, CDISC codelist OUT (C66768).

:func:`check_adverse_event` is the consistency rule, pure: serious exactly when a criterion is ticked,
a fatal outcome exactly when the event resulted in death and only on the patient's day of death, an end
day only for an event that ended (resolved, with sequelae, or fatal), never before the onset.
"""

from __future__ import annotations

from collections.abc import Collection

from immunosep.errors import ImmunoSepError

#: criterion (the form's and the service's name) -> (SDTM AE variable, what it means, ICH E2A)
SERIOUSNESS_CRITERIA: dict[str, tuple[str, str]] = {
    "death": ("AESDTH", "results in death"),
    "life_threatening": ("AESLIFE", "is life-threatening"),
    "hospitalization": ("AESHOSP", "requires or prolongs hospitalization"),
    "disability": ("AESDISAB", "results in persistent or significant disability or incapacity"),
    "congenital_anomaly": ("AESCONG", "is a congenital anomaly or birth defect"),
    "medically_important": ("AESMIE", "is another medically important serious event"),
}

#: CDISC CT ACN (C66767), the terms that apply to this trial's study treatment (module docstring).
ACTIONS = (
    "DOSE NOT CHANGED",
    "DOSE REDUCED",
    "DRUG INTERRUPTED",
    "DRUG WITHDRAWN",
    "NOT APPLICABLE",
    "UNKNOWN",
)

FATAL = "FATAL"
#: CDISC CT OUT (C66768).
OUTCOMES = (
    "RECOVERED/RESOLVED",
    "RECOVERING/RESOLVING",
    "NOT RECOVERED/NOT RESOLVED",
    "RECOVERED/RESOLVED WITH SEQUELAE",
    FATAL,
    "UNKNOWN",
)
#: Outcomes of an event that has ended: these, and only these, have an end day.
ENDED = frozenset({"RECOVERED/RESOLVED", "RECOVERED/RESOLVED WITH SEQUELAE", FATAL})


def check_adverse_event(
    *,
    serious: bool,
    criteria: Collection[str],
    action: str,
    outcome: str,
    onset_day: int,
    end_day: int | None,
    death_day: int | None,
) -> None:
    """Refuse an inconsistent event with an ImmunoSepError naming the field to fix.

    ``criteria`` are keys of :data:`SERIOUSNESS_CRITERIA`; ``death_day`` is the patient's recorded day of
    death (None while none is recorded). Study days count from day 1.
    """
    unknown = sorted(set(criteria) - set(SERIOUSNESS_CRITERIA))
    if unknown:
        raise ImmunoSepError(
            f"unknown seriousness criteria {unknown}; they are {list(SERIOUSNESS_CRITERIA)}", field="criteria"
        )
    if serious and not criteria:
        raise ImmunoSepError(
            "a serious event needs at least one seriousness criterion (death, life-threatening, "
            "hospitalization, disability, congenital anomaly or medically important)",
            field="criteria",
        )
    if criteria and not serious:
        raise ImmunoSepError(
            "a seriousness criterion is ticked but the event is marked not serious: mark it serious or "
            "untick the criterion",
            field="serious",
        )
    if action not in ACTIONS:
        raise ImmunoSepError(f"the action taken is one of: {', '.join(ACTIONS)}", field="action")
    if outcome not in OUTCOMES:
        raise ImmunoSepError(f"the outcome is one of: {', '.join(OUTCOMES)}", field="outcome")
    if (outcome == FATAL) != ("death" in criteria):
        raise ImmunoSepError(
            "a fatal outcome and the criterion 'results in death' go together: tick both or neither",
            field="outcome",
        )
    if outcome == FATAL and death_day is None:
        raise ImmunoSepError(
            "the outcome is fatal but the patient's death is not recorded: record the day of death first",
            field="outcome",
        )
    if death_day is not None and onset_day > death_day:
        raise ImmunoSepError(
            f"the onset (day {onset_day}) is after the patient's death (day {death_day})", field="onset_day"
        )
    if outcome in ENDED:
        if end_day is None:
            raise ImmunoSepError(f"an event with outcome {outcome} needs its end day", field="end_day")
    elif end_day is not None:
        raise ImmunoSepError(
            f"an event with outcome {outcome} has not ended: leave the end day empty", field="end_day"
        )
    if end_day is not None:
        if end_day < onset_day:
            raise ImmunoSepError(
                f"the end day ({end_day}) is before the onset day ({onset_day})", field="end_day"
            )
        if outcome == FATAL and end_day != death_day:
            raise ImmunoSepError(
                f"a fatal event ends on the day of death (day {death_day}), not day {end_day}",
                field="end_day",
            )
        if death_day is not None and end_day > death_day:
            raise ImmunoSepError(
                f"the end day ({end_day}) is after the patient's death (day {death_day})", field="end_day"
            )
