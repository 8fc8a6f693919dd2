"""An independent, row-by-row SOFA written straight from the table of Vincent 1996 (the test oracle).

Deliberately naive (if/elif per organ, transcribed from the ``scorecalc`` CASE expressions of MIT-LCP
mimic-code ``mimic-iv/concepts/score/sofa.sql``, commit 00ff2df2) so that it shares no code or trick with
the vectorized kernel it checks. One deliberate difference from that SQL, as docs/requirements.md "SOFA"
requires: a recorded vasopressor rate of 0 is "not given" (MIMIC leaves such rates NULL, so ``rate <= 0.1``
never sees a 0).
"""

from __future__ import annotations

import math


def _m(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def reference_sofa(row: dict[str, float | None]) -> tuple[int, int, int, int, int, int]:
    """Respiration, coagulation, liver, cardiovascular, CNS, renal points for one patient-day."""
    pf, vent = row.get("pao2_fio2_mmhg"), bool(row.get("ventilated") or False)
    if _m(pf):
        resp = 0
    elif vent and pf < 100:
        resp = 4
    elif vent and pf < 200:
        resp = 3
    elif pf < 300:
        resp = 2
    elif pf < 400:
        resp = 1
    else:
        resp = 0

    plt = row.get("platelets_1e3_ul")
    coag = 0 if _m(plt) else 4 if plt < 20 else 3 if plt < 50 else 2 if plt < 100 else 1 if plt < 150 else 0

    bili = row.get("bilirubin_mg_dl")
    liver = (
        0
        if _m(bili)
        else 4
        if bili >= 12
        else 3
        if bili >= 6
        else 2
        if bili >= 2
        else 1
        if bili >= 1.2
        else 0
    )

    def dose(name: str) -> float:
        v = row.get(name)
        return 0.0 if _m(v) else float(v)

    dopa, dobu = dose("dopamine_ug_kg_min"), dose("dobutamine_ug_kg_min")
    epi, ne = dose("epinephrine_ug_kg_min"), dose("norepinephrine_ug_kg_min")
    mapp = row.get("map_mmhg")
    if dopa > 15 or epi > 0.1 or ne > 0.1:
        cv = 4
    elif dopa > 5 or (0 < epi <= 0.1) or (0 < ne <= 0.1):
        cv = 3
    elif (0 < dopa <= 5) or dobu > 0:
        cv = 2
    elif not _m(mapp) and mapp < 70:
        cv = 1
    else:
        cv = 0

    gcs = row.get("gcs")
    if _m(gcs):
        cns = 0
    elif gcs < 6:
        cns = 4
    elif gcs <= 9:
        cns = 3
    elif gcs <= 12:
        cns = 2
    elif gcs <= 14:
        cns = 1
    else:
        cns = 0

    cr, uo = row.get("creatinine_mg_dl"), row.get("urine_ml_day")
    r_cr = 0 if _m(cr) else 4 if cr >= 5 else 3 if cr >= 3.5 else 2 if cr >= 2 else 1 if cr >= 1.2 else 0
    r_uo = 0 if _m(uo) else 4 if uo < 200 else 3 if uo < 500 else 0
    return resp, coag, liver, cv, cns, max(r_cr, r_uo)
