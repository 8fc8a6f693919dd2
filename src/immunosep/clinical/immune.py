"""Immune stratum from ferritin and monocyte HLA-DR (ImmunoSep classification).

- MALS: ferritin > ``classification.mals_ferritin_above`` (4420 ng/mL);
- immunoparalysis: ferritin <= that and mHLA-DR < ``classification.immunoparalysis_hla_dr_below``
  (5000 receptors per CD45/CD14 monocyte);
- unclassified: otherwise (not enrolled).

Boundaries are strict as in the protocol: 4420 is not MALS, 5000 is unclassified. mHLA-DR is needed
only when ferritin does not already classify the patient as MALS.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

from immunosep.clinical.units import ferritin_ng_ml
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Classification, Protocol

# numpy is imported by the array functions only: the bedside's one patient (`immunosep classify`) is
# classified in plain Python, so the command starts without numpy (issue 21)
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MALS = "mals"
IMMUNOPARALYSIS = "immunoparalysis"
UNCLASSIFIED = "unclassified"
#: The strata in the order of :func:`classify_codes` (code ``k`` is ``STRATA[k]``).
STRATA = (MALS, IMMUNOPARALYSIS, UNCLASSIFIED)


def _ferritin_hint(c: Classification) -> str:
    return (
        f"give ferritin in {c.ferritin_unit} (= ug/L); a value this large is usually a typo or a unit error "
        "(from ng/L divide by 1000, from pmol/L divide by 2.247)"
    )


def _hla_dr_hint(c: Classification) -> str:
    return f"give mHLA-DR in {c.hla_dr_unit} (e.g. 3000)"


def _needed(ferritin: float, c: Classification, where: str) -> ImmunoSepError:
    return ImmunoSepError(
        f"mHLA-DR is needed{where}: ferritin {ferritin:g} {c.ferritin_unit} is not above "
        f"{c.mals_ferritin_above:g}, so the stratum depends on mHLA-DR (immunoparalysis when below "
        f"{c.immunoparalysis_hla_dr_below:g} {c.hla_dr_unit})",
        field="hla_dr",
    )


def _refused(name: str, x: float, limit: float, unit: str, hint: str, where: str) -> ImmunoSepError:
    problem = "negative" if x < 0 else f"implausibly large (above {limit:g} {unit})"
    return ImmunoSepError(f"{name} = {x:g} is {problem}{where}: {hint}", field=name)


def _check(name: str, x: npt.NDArray[np.float64], limit: float, unit: str, hint: str, *, rows: bool) -> None:
    import numpy as np

    bad = (x < 0) | (x > limit) | np.isinf(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _refused(name, float(x[i]), limit, unit, hint, f" (row index {i})" if rows else "")


def classify_arrays(
    ferritin: npt.ArrayLike,
    hla_dr: npt.ArrayLike | None,
    protocol: Protocol | None = None,
    *,
    ferritin_unit: str = "ng/mL",
    _rows: bool = True,
) -> npt.NDArray[np.str_]:
    """Stratum codes ("mals", "immunoparalysis", "unclassified") for arrays of ferritin and mHLA-DR.

    NaN mHLA-DR is allowed only where ferritin is above the MALS threshold; anywhere else it raises,
    because the stratum cannot be decided without it.
    """
    import numpy as np

    codes = classify_codes(ferritin, hla_dr, protocol, ferritin_unit=ferritin_unit, _rows=_rows)
    return np.asarray(STRATA)[codes]


def classify_codes(
    ferritin: npt.ArrayLike,
    hla_dr: npt.ArrayLike | None,
    protocol: Protocol | None = None,
    *,
    ferritin_unit: str = "ng/mL",
    _rows: bool = True,
) -> npt.NDArray[np.int8]:
    """:func:`classify_arrays` as int8 indices into :data:`STRATA` (0 MALS, 1 immunoparalysis, 2
    unclassified): the same rule and checks, without building strings (the simulator classifies
    millions of virtual candidates)."""
    import numpy as np

    p = protocol or default_protocol()
    c = p.classification
    f = np.atleast_1d(np.asarray(ferritin_ng_ml(ferritin, ferritin_unit), dtype=np.float64))
    h = np.full(f.shape, np.nan) if hla_dr is None else np.atleast_1d(np.asarray(hla_dr, dtype=np.float64))
    if h.shape != f.shape:
        raise ImmunoSepError(f"ferritin has {f.size} values but mHLA-DR has {h.size}", field="hla_dr")
    if np.isnan(f).any():
        i = int(np.flatnonzero(np.isnan(f))[0])
        where = f" (row index {i})" if _rows else ""
        raise ImmunoSepError(
            f"ferritin is missing{where}: it is needed for every classification", field="ferritin"
        )
    _check("ferritin", f, c.ferritin_max_plausible, c.ferritin_unit, _ferritin_hint(c), rows=_rows)
    _check(
        "hla_dr", np.nan_to_num(h, nan=0.0), c.hla_dr_max_plausible, "receptors", _hla_dr_hint(c), rows=_rows
    )
    mals = f > c.mals_ferritin_above
    need = ~mals & np.isnan(h)
    if need.any():
        i = int(np.flatnonzero(need)[0])
        raise _needed(float(f[i]), c, f" (row index {i})" if _rows else "")
    with np.errstate(invalid="ignore"):
        paralysed = ~mals & (h < c.immunoparalysis_hla_dr_below)
    codes = np.full(f.shape, STRATA.index(UNCLASSIFIED), dtype=np.int8)
    codes[paralysed] = STRATA.index(IMMUNOPARALYSIS)
    codes[mals] = STRATA.index(MALS)
    return codes


ferritin_to_ng_ml = ferritin_ng_ml  # the converter, under a name the argument below does not hide


def classify(
    ferritin_ng_ml: float,
    hla_dr: float | None,
    protocol: Protocol | None = None,
    *,
    ferritin_unit: str = "ng/mL",
) -> str:
    """The immune stratum of one patient: "mals", "immunoparalysis" or "unclassified".

    The same rule, checks and messages as :func:`classify_arrays` for one value, in plain Python (the
    bedside command starts without numpy); tests/clinical/test_immune.py holds the two to each other.
    """
    c = (protocol or default_protocol()).classification
    f = float(ferritin_to_ng_ml(ferritin_ng_ml, ferritin_unit))
    h = math.nan if hla_dr is None else float(hla_dr)
    if math.isnan(f):
        raise ImmunoSepError("ferritin is missing: it is needed for every classification", field="ferritin")
    if f < 0 or f > c.ferritin_max_plausible or math.isinf(f):
        raise _refused("ferritin", f, c.ferritin_max_plausible, c.ferritin_unit, _ferritin_hint(c), "")
    # as numpy.nan_to_num(nan=0.0) in the array path: NaN checks as 0, an infinity as the largest float
    shown = 0.0 if math.isnan(h) else math.copysign(sys.float_info.max, h) if math.isinf(h) else h
    if shown < 0 or shown > c.hla_dr_max_plausible:
        raise _refused("hla_dr", shown, c.hla_dr_max_plausible, "receptors", _hla_dr_hint(c), "")
    if f > c.mals_ferritin_above:
        return MALS
    if math.isnan(h):
        raise _needed(f, c, "")
    return IMMUNOPARALYSIS if h < c.immunoparalysis_hla_dr_below else UNCLASSIFIED


def stratum_rule(stratum: str, protocol: Protocol | None = None) -> str:
    """The classification rule that puts a patient in ``stratum``, in words, from the protocol's numbers.

    The one wording of the rule for the bedside page, the lab page, ``protocol show`` and the report
    (e.g. "ferritin > 4420 ng/mL"); the unclassified rule ends in ": not enrolled".
    """
    c = (protocol or default_protocol()).classification
    ferritin_low = f"ferritin ≤ {c.mals_ferritin_above:g} {c.ferritin_unit}"
    if stratum == MALS:
        return f"ferritin > {c.mals_ferritin_above:g} {c.ferritin_unit}"
    if stratum == IMMUNOPARALYSIS:
        return f"{ferritin_low} and mHLA-DR < {c.immunoparalysis_hla_dr_below:g} {c.hla_dr_unit}"
    if stratum == UNCLASSIFIED:
        return (
            f"{ferritin_low} and mHLA-DR ≥ {c.immunoparalysis_hla_dr_below:g} {c.hla_dr_unit}: not enrolled"
        )
    raise ImmunoSepError(f"unknown stratum {stratum!r}: one of {MALS}, {IMMUNOPARALYSIS}, {UNCLASSIFIED}")
