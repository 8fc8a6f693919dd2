"""Pure, vectorized clinical rules: SOFA, Sepsis-3, immune state, renal function, regimen, SIDF reversal.

No I/O, no database, no global state: arrays in, arrays out, with scalar wrappers for the bedside. Trial
numbers come from a :class:`~immunosep.protocol.schema.Protocol` (the bundled one by default).

The bedside SOFA function is ``immunosep.clinical.sofa.sofa``; it is not re-exported here so that the
name ``immunosep.clinical.sofa`` always means the module.
"""

from typing import TYPE_CHECKING

from immunosep._lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers; at run time each is imported on first use
    from immunosep.clinical.immune import (
        IMMUNOPARALYSIS,
        MALS,
        UNCLASSIFIED,
        classify,
        classify_arrays,
    )
    from immunosep.clinical.regimen import (
        DailyDose,
        ScheduledDose,
        daily_regimen,
        dose_schedule,
    )
    from immunosep.clinical.renal import (
        creatinine_clearance_ml_min,
        ideal_body_weight_kg,
    )
    from immunosep.clinical.sepsis3 import (
        meets_sepsis3,
        sepsis3_arrays,
    )
    from immunosep.clinical.sidf import (
        SidfReversal,
        SidfReversals,
        sidf_reversal,
        sidf_reversal_arrays,
    )
    from immunosep.clinical.sofa import (
        COMPONENTS,
        SOFA_INPUT_COLUMNS,
        SofaScore,
        missing_names,
        pao2_fio2_ratio,
        score_sofa_arrays,
        score_sofa_frame,
    )
    from immunosep.clinical.units import (
        bilirubin_mg_dl,
        creatinine_mg_dl,
        ferritin_ng_ml,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "immune": (
            "IMMUNOPARALYSIS",
            "MALS",
            "UNCLASSIFIED",
            "classify",
            "classify_arrays",
        ),
        "regimen": (
            "DailyDose",
            "ScheduledDose",
            "daily_regimen",
            "dose_schedule",
        ),
        "renal": (
            "creatinine_clearance_ml_min",
            "ideal_body_weight_kg",
        ),
        "sepsis3": (
            "meets_sepsis3",
            "sepsis3_arrays",
        ),
        "sidf": (
            "SidfReversal",
            "SidfReversals",
            "sidf_reversal",
            "sidf_reversal_arrays",
        ),
        "sofa": (
            "COMPONENTS",
            "SOFA_INPUT_COLUMNS",
            "SofaScore",
            "missing_names",
            "pao2_fio2_ratio",
            "score_sofa_arrays",
            "score_sofa_frame",
        ),
        "units": (
            "bilirubin_mg_dl",
            "creatinine_mg_dl",
            "ferritin_ng_ml",
        ),
    },
)
