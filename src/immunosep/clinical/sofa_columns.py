"""The names of a SOFA table: the six components, the score columns and the input columns.

Kept apart from the kernel (:mod:`immunosep.clinical.sofa`, which re-exports them) so that the command
line's help can list them without importing numpy (issue 21: ``immunosep --help`` in under 0.3 s).
"""

from __future__ import annotations

__all__ = ["COMPONENTS", "SCORE_COLUMNS", "SOFA_INPUT_COLUMNS"]

COMPONENTS = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
SCORE_COLUMNS = (*(f"sofa_{c}" for c in COMPONENTS), "sofa_total")

SOFA_INPUT_COLUMNS = (
    "pao2_fio2_mmhg",
    "ventilated",
    "platelets_1e3_ul",
    "bilirubin_mg_dl",
    "map_mmhg",
    "dopamine_ug_kg_min",
    "dobutamine_ug_kg_min",
    "epinephrine_ug_kg_min",
    "norepinephrine_ug_kg_min",
    "gcs",
    "creatinine_mg_dl",
    "urine_ml_day",
)
"""Columns of a patient-day table (NaN = not measured). Alternatives accepted by :func:`score_sofa_frame`:
``pao2_fio2_kpa`` or ``pao2_mmhg``/``pao2_kpa`` + ``fio2`` instead of ``pao2_fio2_mmhg``,
``bilirubin_umol_l``, ``creatinine_umol_l`` (the unit is in the name, so it is always stated)."""
