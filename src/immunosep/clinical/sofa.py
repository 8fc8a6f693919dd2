"""The Sequential Organ Failure Assessment (SOFA) score, by component and total.

Definition: Vincent JL et al., Intensive Care Med 1996;22:707-10, with the half-open boundaries of the
MIMIC-IV ``sofa`` concept (mimic-code, ``concepts/score/sofa.sql``) and of R ricu (``sofa_score``):

============== ============================== ============================ ================= ================
organ          1                              2                            3                 4
============== ============================== ============================ ================= ================
respiration    PaO2/FiO2 < 400 mmHg           < 300                        < 200 and MV      < 100 and MV
coagulation    platelets < 150 x10^3/uL       < 100                        < 50              < 20
liver          bilirubin >= 1.2 mg/dL         >= 2.0                       >= 6.0            >= 12.0
cardiovascular MAP < 70 mmHg                  dopamine <= 5 or dobutamine  dopamine > 5,     dopamine > 15,
                                                                           epi/norepi <= 0.1 epi/norepi > 0.1
CNS            GCS 13-14                      10-12                        6-9               < 6
renal          creatinine >= 1.2 mg/dL        >= 2.0                       >= 3.5 or         >= 5.0 or
                                                                           urine < 500 mL/d  urine < 200 mL/d
============== ============================== ============================ ================= ================

MV = mechanical ventilation; without it the respiratory score is at most 2. Vasopressors are in
ug/kg/min and count only when > 0 (a recorded 0 is "not given"). The renal score is the worse of
creatinine and urine output. The thresholds are those of the SOFA definition, not of a trial protocol,
so they are constants here. A missing component scores 0 and is reported as missing: cardiovascular
only when MAP and every vasopressor are missing, renal only when creatinine and urine output both are.
A missing ventilation flag counts as "not ventilated" (the conservative choice: it caps respiration at 2).

The kernel works on numpy arrays in cache-sized blocks with int8 arithmetic (comparisons summed), so a
whole ICU export is scored in one call; :func:`sofa` is the scalar bedside wrapper. Within a block each
column is tested for NaN, checked and compared with its thresholds while it is in cache, and every
operation writes into the output or a scratch buffer reused by every block (issue 21: the cost is the
number of passes over a block, and whether they find it in cache).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from immunosep.clinical.sofa_columns import COMPONENTS, SCORE_COLUMNS, SOFA_INPUT_COLUMNS
from immunosep.clinical.units import PLAUSIBLE, measured
from immunosep.errors import ImmunoSepError

if TYPE_CHECKING:  # pandas is imported by the frame functions only: the bedside needs numpy alone
    import pandas as pd

# -- the SOFA definition (Vincent 1996) -----------------------------------------------------------------
RESPIRATION_BELOW = (400.0, 300.0, 200.0, 100.0)  # PaO2/FiO2 mmHg; the last two need ventilation
PLATELETS_BELOW = (150.0, 100.0, 50.0, 20.0)  # x10^3/uL
BILIRUBIN_AT_LEAST = (1.2, 2.0, 6.0, 12.0)  # mg/dL
MAP_BELOW = 70.0  # mmHg
DOPAMINE_ABOVE = (5.0, 15.0)  # ug/kg/min: > 5 scores 3, > 15 scores 4
CATECHOLAMINE_ABOVE = 0.1  # epinephrine / norepinephrine ug/kg/min: > 0.1 scores 4
GCS_BELOW = (15.0, 13.0, 10.0, 6.0)
CREATININE_AT_LEAST = (1.2, 2.0, 3.5, 5.0)  # mg/dL
URINE_BELOW = (500.0, 200.0)  # mL/day: scores 3 and 4


# Physiological plausibility (outside the range a value is a unit error or a typo) has one home for
# every bedside rule and the virtual patients: immunosep.clinical.units.PLAUSIBLE.

_BLOCK = 1 << 16  # rows per block: a column and the scratch buffers of a block stay in L2 cache

MISSING_NAME_BY_MASK = tuple(
    ",".join(c for i, c in enumerate(COMPONENTS) if code & (1 << i)) for code in range(64)
)
"""Comma-separated missing components for each of the 64 values of ``sofa_missing_mask``."""
_MISSING_NAMES = np.array(MISSING_NAME_BY_MASK, dtype=object)

FloatArray = npt.NDArray[np.floating[Any]]
Bools = npt.NDArray[np.bool_]
Int8s = npt.NDArray[np.int8]


@dataclass(frozen=True)
class SofaScore:
    """One patient-day's SOFA: six components (0-4), total (0-24) and the components not measured."""

    respiration: int
    coagulation: int
    liver: int
    cardiovascular: int
    cns: int
    renal: int
    total: int
    missing: tuple[str, ...]


# -- checks ---------------------------------------------------------------------------------------------
def _where(rows: bool, idx: int) -> str:
    return f" (first offending row index {idx})" if rows else ""


def _first_bad(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _block_plausible(name: str, xb: FloatArray, scratch: FloatArray) -> bool:
    """Fast check of one cache-sized block: every non-missing value in range (and GCS whole)."""
    if xb.size == 0:
        return True
    p = PLAUSIBLE[name]
    # fmin/fmax skip NaN; an all-NaN block gives NaN, and NaN comparisons are False
    if np.fmin.reduce(xb) < p.low or np.fmax.reduce(xb) > p.high:
        return False
    if not p.whole:
        return True
    np.rint(xb, out=scratch)
    np.subtract(xb, scratch, out=scratch)
    return not np.fmax.reduce(np.abs(scratch, out=scratch)) > 0


def _check_column(name: str, x: FloatArray, *, rows: bool) -> None:
    """Raise, naming the first offending value and its likely unit, if ``x`` has an implausible value."""
    measured(name, x, label=f"column {name}" if rows else name, rows=rows)


def _as_float(name: str, value: Any, shape: tuple[int, ...] | None) -> FloatArray:
    """The values as a flat float array (float32 kept); every input must have the first one's shape."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "f":
        if arr.dtype.kind in "iub":
            arr = arr.astype(np.float64)
        else:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ImmunoSepError(
                    f"{name} must be numeric (NaN or empty for not measured)", field=name
                ) from None
    arr = np.atleast_1d(arr)
    if shape is not None and arr.shape != shape:
        raise ImmunoSepError(
            f"{name} has shape {arr.shape}, expected {shape} like the other inputs (one value per patient-day)",
            field=name,
        )
    return arr.ravel()


def _as_ventilated(value: Any, n: int, *, rows: bool) -> npt.NDArray[np.bool_]:
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        out = arr
    else:
        try:
            f = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ImmunoSepError(
                "ventilated must be true/false or 1/0 (empty = not ventilated)", field="ventilated"
            ) from None
        bad = ~(np.isnan(f) | (f == 0) | (f == 1))
        if bad.any():
            i = _first_bad(bad)
            label = "column ventilated" if rows else "ventilated"
            raise ImmunoSepError(
                f"{label} = {arr.ravel()[i]!r} is not 0/1{_where(rows, i)}: give 1 for mechanical ventilation, "
                "0 or empty for none",
                field="ventilated",
            )
        out = f == 1
    out = np.atleast_1d(out).ravel()
    if out.shape[0] != n:
        raise ImmunoSepError(f"ventilated has {out.shape[0]} values, expected {n}", field="ventilated")
    return out


# -- PaO2/FiO2 ------------------------------------------------------------------------------------------
def fio2_fraction(fio2: npt.ArrayLike, *, rows: bool = False) -> FloatArray:
    """FiO2 as a fraction: 0.21-1.0 is taken as is, 21-100 as percent; anything else is refused."""
    f = np.atleast_1d(np.asarray(fio2, dtype=np.float64))
    frac_ok = (f >= 0.21) & (f <= 1.0)
    pct_ok = (f >= 21.0) & (f <= 100.0)
    bad = ~(frac_ok | pct_ok | np.isnan(f))
    if bad.any():
        i = _first_bad(bad)
        label = "column fio2" if rows else "FiO2"
        raise ImmunoSepError(
            f"{label} = {f[i]:g} is outside 0.21-1.0 (fraction) and 21-100 (%){_where(rows, i)}: "
            "give the inspired oxygen fraction, e.g. 0.4 or 40",
            field="fio2",
        )
    return np.where(pct_ok, f / 100.0, f)


def pao2_fio2_ratio(
    pao2: npt.ArrayLike,
    fio2: npt.ArrayLike,
    *,
    rows: bool = False,
    pao2_unit: str | None = None,
    label: str | None = None,
) -> FloatArray:
    """PaO2/FiO2 in mmHg from PaO2 (mmHg, or ``pao2_unit`` "kPa") and FiO2 (fraction or percent).

    Rounded to 9 decimals. A PaO2 below the plausible range in mmHg is refused as "looks like kPa".
    """
    label = label or ("column pao2_mmhg" if rows else "PaO2")
    p = np.atleast_1d(measured("pao2_mmhg", pao2, pao2_unit, label=label, rows=rows))
    return np.round(p / fio2_fraction(fio2, rows=rows), 9)


# -- the kernel -----------------------------------------------------------------------------------------
# Every operation writes into the block's output slice or a scratch buffer allocated once per call: the
# kernel's cost is the number of passes over a block, so each component takes as few as it can (issue 21).


def _typed(x: FloatArray | None, thresholds: tuple[float, ...]) -> tuple[Any, ...]:
    """``thresholds`` as 0-d arrays of ``x``'s precision: compared exactly as the Python floats are (NumPy
    casts a Python float to the array's precision), at a third less call overhead."""
    dtype = np.float64 if x is None else x.dtype
    return tuple(np.array(t, dtype=dtype) for t in thresholds)


def _isnan(x: FloatArray, out: Bools) -> None:
    """``out`` = whether ``x`` is NaN, as ``x != x`` (IEEE 754: only NaN is unequal to itself). NumPy's
    comparison is vectorized where its ``isnan`` is not on every CPU: the pass that streams a block in
    from memory cost 0.56 against 0.32 ns a value (Xeon, AVX-512, NumPy 2.4)."""
    np.not_equal(x, x, out=out)


def _nan_of_all(x: FloatArray, acc: Bools, first: bool, b: Bools) -> None:
    """``acc`` = whether ``x`` is NaN for a component's first column, else ``acc`` and that (``b``: scratch):
    a component of several columns is missing where every one of them is."""
    if first:
        _isnan(x, acc)
    else:
        _isnan(x, b)
        np.logical_and(acc, b, out=acc)


def _count_below(x: FloatArray, thresholds: tuple[Any, ...], o: Int8s, b: Bools) -> None:
    """``o`` = how many of ``thresholds`` ``x`` is below (NaN: none); ``b`` is scratch."""
    np.less(x, thresholds[0], out=o.view(np.bool_))
    b8 = b.view(np.int8)
    for t in thresholds[1:]:
        np.less(x, t, out=b)
        np.add(o, b8, out=o)


def _count_at_least(x: FloatArray, thresholds: tuple[Any, ...], o: Int8s, b: Bools) -> None:
    """``o`` = how many of ``thresholds`` ``x`` is at or above (NaN: none); ``b`` is scratch."""
    np.greater_equal(x, thresholds[0], out=o.view(np.bool_))
    b8 = b.view(np.int8)
    for t in thresholds[1:]:
        np.greater_equal(x, t, out=b)
        np.add(o, b8, out=o)


def _check_block(name: str, values: FloatArray, s: slice, scratch: FloatArray, *, rows: bool) -> None:
    """Check block ``s`` of column ``values`` fast while it is in cache (``scratch``: float scratch); the
    slow path (the whole column) finds and words the first bad row."""
    if not _block_plausible(name, values[s], scratch[: s.stop - s.start]):
        _check_column(name, values, rows=rows)


def _score_blocks(
    cols: dict[str, FloatArray], vent: Bools, n: int, *, validate: bool, rows: bool
) -> dict[str, npt.NDArray[Any]]:
    """The int8 score columns (0 for a component without any column) and ``sofa_missing_mask``.

    Block by block, and within a block column by column: a column is tested for NaN, checked and
    compared with its thresholds while it is in cache. The columns are visited in the order of
    :data:`SOFA_INPUT_COLUMNS`, so the first implausible value reported is the same as if every column
    of the block had been checked first.
    """
    pf = cols.get("pao2_fio2_mmhg")
    plt = cols.get("platelets_1e3_ul")
    bili = cols.get("bilirubin_mg_dl")
    mapp = cols.get("map_mmhg")
    dopa = cols.get("dopamine_ug_kg_min")
    dobu = cols.get("dobutamine_ug_kg_min")
    epi = cols.get("epinephrine_ug_kg_min")
    ne = cols.get("norepinephrine_ug_kg_min")
    cns = cols.get("gcs")
    cr = cols.get("creatinine_mg_dl")
    uo = cols.get("urine_ml_day")
    # the columns each component is scored from, in the order of the arguments (absent ones left out);
    # a component is missing when every one of its columns is (absent counts as NaN)
    names_of = {
        "respiration": ("pao2_fio2_mmhg",),
        "coagulation": ("platelets_1e3_ul",),
        "liver": ("bilirubin_mg_dl",),
        "cardiovascular": (
            "map_mmhg",
            "dopamine_ug_kg_min",
            "dobutamine_ug_kg_min",
            "epinephrine_ug_kg_min",
            "norepinephrine_ug_kg_min",
        ),
        "cns": ("gcs",),
        "renal": ("creatinine_mg_dl", "urine_ml_day"),
    }
    given_for = {c: [(name, cols[name]) for name in names if name in cols] for c, names in names_of.items()}
    # every block writes every row of the outputs it scores: no need to zero them first
    out: dict[str, npt.NDArray[Any]] = {
        f"sofa_{c}": (np.empty if given_for[c] else np.zeros)(n, dtype=np.int8) for c in COMPONENTS
    }
    out["sofa_total"] = np.empty(n, dtype=np.int8)
    missing = out["sofa_missing_mask"] = np.empty(n, dtype=np.uint8)
    scored = [out[f"sofa_{c}"] for c in COMPONENTS if given_for[c]]
    # bits of the components with no column at all: the same in every row
    absent_bits = sum(1 << i for i, c in enumerate(COMPONENTS) if not given_for[c])
    present = [(i, c) for i, c in reversed(tuple(enumerate(COMPONENTS))) if given_for[c]]
    resp_t, plt_t, bili_t = (
        _typed(pf, RESPIRATION_BELOW),
        _typed(plt, PLATELETS_BELOW),
        _typed(bili, BILIRUBIN_AT_LEAST),
    )
    dopa_t = _typed(dopa, (0.0, *DOPAMINE_ABOVE))
    epi_t, ne_t = _typed(epi, (0.0, CATECHOLAMINE_ABOVE)), _typed(ne, (0.0, CATECHOLAMINE_ABOVE))
    dobu_t, map_t, gcs_t = _typed(dobu, (0.0,)), _typed(mapp, (MAP_BELOW,)), _typed(cns, GCS_BELOW)
    cr_t, uo_t = _typed(cr, CREATININE_AT_LEAST), _typed(uo, URINE_BELOW)
    three = np.array(3, dtype=np.int8)
    # The cardiovascular columns' comparisons, by column in input order: (ufunc, threshold, level 1-4
    # as 0-3, whether it is the level's first writer); levels no column writes are all False.
    rules_of: dict[str, list[tuple[np.ufunc, Any, int]]] = {
        "map_mmhg": [(np.less, map_t[0], 0)],
        "dopamine_ug_kg_min": [
            (np.greater, dopa_t[0], 1),
            (np.greater, dopa_t[1], 2),
            (np.greater, dopa_t[2], 3),
        ],
        "dobutamine_ug_kg_min": [(np.greater, dobu_t[0], 1)],
        "epinephrine_ug_kg_min": [(np.greater, epi_t[0], 2), (np.greater, epi_t[1], 3)],
        "norepinephrine_ug_kg_min": [(np.greater, ne_t[0], 2), (np.greater, ne_t[1], 3)],
    }
    written: set[int] = set()
    cv_plan = []
    for name, values in given_for["cardiovascular"]:
        rules = []
        for compare, t, level in rules_of[name]:
            rules.append((compare, t, level, level not in written))
            written.add(level)
        cv_plan.append((name, values, rules))
    cv_unset = [level for level in range(4) if level not in written]
    size = min(_BLOCK, n)
    bufs = [np.empty(size, dtype=np.bool_) for _ in range(4)]
    nan_bufs = {c: np.empty(size, dtype=np.bool_) for c in COMPONENTS if given_for[c]}
    f64 = np.empty(size, dtype=np.float64)
    i8 = np.empty(size, dtype=np.int8)

    for start in range(0, n, _BLOCK):
        s = slice(start, min(start + _BLOCK, n))
        k = s.stop - s.start
        b, b2, b3, b4 = (x[:k] for x in bufs)
        f = f64[:k]
        nan = {c: x[:k] for c, x in nan_bufs.items()}

        # In each component the first pass over a column is its NaN test (the pass that brings the block
        # in from memory streams best as an elementwise one), then the checks and the score from cache.
        if pf is not None:
            x, o, v = pf[s], out["sofa_respiration"][s], vent[s]
            _isnan(x, nan["respiration"])
            if validate:
                _check_block("pao2_fio2_mmhg", pf, s, f, rows=rows)
            _count_below(x, resp_t[:2], o, b)
            for t in resp_t[2:]:  # 3 and 4 points need mechanical ventilation
                np.less(x, t, out=b)
                np.logical_and(b, v, out=b)
                np.add(o, b.view(np.int8), out=o)
        for component, name, col, count, thresholds in (
            ("coagulation", "platelets_1e3_ul", plt, _count_below, plt_t),
            ("liver", "bilirubin_mg_dl", bili, _count_at_least, bili_t),
        ):
            if col is not None:
                x = col[s]
                _isnan(x, nan[component])
                if validate:
                    _check_block(name, col, s, f, rows=rows)
                count(x, thresholds, out[f"sofa_{component}"][s], b)

        # Cardiovascular: nested levels (4 within 3 within 2 within 1), so their sum is the highest reached.
        # Column by column, each one's NaN test, check and comparisons while it alone is in cache: five
        # columns of a block together overflow a core's L2 (the component went from 8.5 to 6.6 ns a row).
        if cv_plan:
            nan_cv, o = nan["cardiovascular"], out["sofa_cardiovascular"][s]
            levels = (o.view(np.bool_), b2, b3, b4)  # level 1 is built in the output itself
            for level in cv_unset:
                levels[level].fill(False)
            for j, (name, values, rules) in enumerate(cv_plan):
                x = values[s]
                _nan_of_all(x, nan_cv, j == 0, b)
                if validate:
                    _check_block(name, values, s, f, rows=rows)
                for compare, t, level, first in rules:
                    if first:
                        compare(x, t, out=levels[level])
                    else:
                        compare(x, t, out=b)
                        np.logical_or(levels[level], b, out=levels[level])
            np.logical_or(b2, b3, out=b2)
            np.logical_or(levels[0], b2, out=levels[0])
            for reached in (b2, b3, b4):
                np.add(o, reached.view(np.int8), out=o)

        if cns is not None:
            x = cns[s]
            _isnan(x, nan["cns"])
            if validate:
                _check_block("gcs", cns, s, f, rows=rows)
            _count_below(x, gcs_t, out["sofa_cns"][s], b)

        # Renal: the worse of creatinine (0-4) and urine output (3 or 4), column by column as above.
        if given_for["renal"]:
            nan_r, o = nan["renal"], out["sofa_renal"][s]
            if cr is not None:
                x = cr[s]
                _isnan(x, nan_r)
                if validate:
                    _check_block("creatinine_mg_dl", cr, s, f, rows=rows)
                _count_at_least(x, cr_t, o, b)
            if uo is not None:
                u, urine = uo[s], (i8[:k] if cr is not None else o)
                _nan_of_all(u, nan_r, cr is None, b)
                if validate:
                    _check_block("urine_ml_day", uo, s, f, rows=rows)
                np.less(u, uo_t[0], out=urine.view(np.bool_))
                np.multiply(urine, three, out=urine)
                np.less(u, uo_t[1], out=b)
                np.add(urine, b.view(np.int8), out=urine)
                if cr is not None:
                    np.maximum(o, urine, out=o)

        tot = out["sofa_total"][s]
        np.copyto(tot, scored[0][s])
        for o in scored[1:]:
            np.add(tot, o[s], out=tot)

        # The missing mask: bit i for COMPONENTS[i], built from the highest present component down by
        # doubling (m + m: NumPy has no fast 8-bit shift) and adding the next flag.
        m = missing[s]
        np.copyto(m, nan[present[0][1]].view(np.uint8))
        for (i, c), (above, _) in zip(present[1:], present, strict=False):
            for _ in range(above - i):
                np.add(m, m, out=m)
            np.add(m, nan[c].view(np.uint8), out=m)
        for _ in range(present[-1][0]):
            np.add(m, m, out=m)
        if absent_bits:
            np.bitwise_or(m, absent_bits, out=m)
    return out


def score_sofa_arrays(
    *,
    pao2_fio2_mmhg: npt.ArrayLike | None = None,
    ventilated: npt.ArrayLike | None = None,
    platelets_1e3_ul: npt.ArrayLike | None = None,
    bilirubin_mg_dl: npt.ArrayLike | None = None,
    map_mmhg: npt.ArrayLike | None = None,
    dopamine_ug_kg_min: npt.ArrayLike | None = None,
    dobutamine_ug_kg_min: npt.ArrayLike | None = None,
    epinephrine_ug_kg_min: npt.ArrayLike | None = None,
    norepinephrine_ug_kg_min: npt.ArrayLike | None = None,
    gcs: npt.ArrayLike | None = None,
    creatinine_mg_dl: npt.ArrayLike | None = None,
    urine_ml_day: npt.ArrayLike | None = None,
    validate: bool = True,
    _rows: bool = True,
) -> dict[str, npt.NDArray[Any]]:
    """Score SOFA for arrays of patient-days (NaN or an omitted column = not measured).

    Inputs share one shape (1-D, or e.g. ``[patients, days]``); the outputs have that shape. Row indices
    in error messages count the flattened (C-order) values.

    Returns int8 arrays ``sofa_respiration`` ... ``sofa_renal``, ``sofa_total`` and a uint8 bit mask
    ``sofa_missing_mask`` (bit i set = ``COMPONENTS[i]`` missing; :func:`missing_names` spells it out).
    Float32 inputs are compared in float32 (the thresholds are cast to the array's precision).
    With ``validate`` every value is checked for plausibility first; an error names the column and the
    first offending row index.
    """
    given = {
        "pao2_fio2_mmhg": pao2_fio2_mmhg,
        "platelets_1e3_ul": platelets_1e3_ul,
        "bilirubin_mg_dl": bilirubin_mg_dl,
        "map_mmhg": map_mmhg,
        "dopamine_ug_kg_min": dopamine_ug_kg_min,
        "dobutamine_ug_kg_min": dobutamine_ug_kg_min,
        "epinephrine_ug_kg_min": epinephrine_ug_kg_min,
        "norepinephrine_ug_kg_min": norepinephrine_ug_kg_min,
        "gcs": gcs,
        "creatinine_mg_dl": creatinine_mg_dl,
        "urine_ml_day": urine_ml_day,
    }
    cols: dict[str, FloatArray] = {}
    shape: tuple[int, ...] | None = None
    for name, value in given.items():
        if value is None:
            continue
        if shape is None:
            shape = np.atleast_1d(np.asarray(value)).shape
        cols[name] = _as_float(name, value, shape)
    if shape is None:
        raise ImmunoSepError(
            "no SOFA input given: provide at least one of " + ", ".join(SOFA_INPUT_COLUMNS), field="sofa"
        )
    n = int(np.prod(shape))
    if ventilated is not None and np.atleast_1d(np.asarray(ventilated)).shape != shape:
        raise ImmunoSepError(
            f"ventilated has shape {np.shape(ventilated)}, expected {shape}", field="ventilated"
        )
    vent = (
        _as_ventilated(ventilated, n, rows=_rows) if ventilated is not None else np.zeros(n, dtype=np.bool_)
    )

    out = _score_blocks(cols, vent, n, validate=validate, rows=_rows)
    if len(shape) > 1:  # e.g. [patients, days] in, the same shape out
        out = {k: v.reshape(shape) for k, v in out.items()}
    return out


def missing_names(mask: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Comma-separated names of the missing components for each bit mask ("" when none is missing)."""
    names: npt.NDArray[np.object_] = _MISSING_NAMES[
        np.asarray(mask, dtype=np.uint8) & 63
    ]  # object dtype: Any
    return names


# -- frames ---------------------------------------------------------------------------------------------
def _column(df: pd.DataFrame, name: str) -> FloatArray:
    """A numeric column as float64 with NaN for missing; text in it is refused with the column's name."""
    try:
        return df[name].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        import pandas as pd

        values = pd.to_numeric(df[name], errors="coerce")
        bad = values.isna().to_numpy() & df[name].notna().to_numpy()
        i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise ImmunoSepError(
            f"column {name} has a non-numeric value {df[name].iloc[i]!r} (first offending row index {i}): "
            "give numbers, and leave the cell empty when not measured",
            field=name,
        ) from None


def _table_inputs(
    names: Collection[str], column: Callable[[str], FloatArray], ventilated: Callable[[], Any]
) -> dict[str, Any]:
    """The :func:`score_sofa_arrays` arguments from a table's column ``names``, ``column(name)`` (float64,
    NaN = missing) and ``ventilated()``: the unit alternatives resolved, contradictions refused."""
    cols: dict[str, Any] = {}
    if not SOFA_FRAME_COLUMNS & set(names):
        raise ImmunoSepError(
            "the table has none of the SOFA input columns; expected some of: "
            + ", ".join(SOFA_INPUT_COLUMNS)
            + " (or pao2_fio2_kpa, pao2_mmhg/pao2_kpa + fio2, bilirubin_umol_l, creatinine_umol_l)",
            field="sofa",
        )
    for name in SOFA_INPUT_COLUMNS:
        if name in names and name != "ventilated":
            cols[name] = column(name)
    # PaO2/FiO2: one of the ratio (mmHg or kPa) or PaO2 (mmHg or kPa) + FiO2
    oxygen = [c for c in ("pao2_fio2_mmhg", "pao2_fio2_kpa", "pao2_mmhg", "pao2_kpa") if c in names]
    if len(oxygen) > 1:
        raise ImmunoSepError(
            f"give one of pao2_fio2_mmhg, pao2_fio2_kpa, pao2_mmhg + fio2 or pao2_kpa + fio2, not {' and '.join(oxygen)}",
            field=oxygen[1],
        )
    if "fio2" in names and not {"pao2_mmhg", "pao2_kpa"} & set(names):
        raise ImmunoSepError("fio2 needs pao2_mmhg or pao2_kpa beside it", field="fio2")
    if oxygen in (["pao2_mmhg"], ["pao2_kpa"]):
        if "fio2" not in names:
            raise ImmunoSepError(f"{oxygen[0]} and fio2 must be given together", field=oxygen[0])
        cols["pao2_fio2_mmhg"] = pao2_fio2_ratio(
            column(oxygen[0]),
            column("fio2"),
            rows=True,
            pao2_unit="kPa" if oxygen[0] == "pao2_kpa" else None,
            label=f"column {oxygen[0]}",
        )
    if oxygen == ["pao2_fio2_kpa"]:
        cols["pao2_fio2_mmhg"] = measured(
            "pao2_fio2_mmhg", column("pao2_fio2_kpa"), "kPa", label="column pao2_fio2_kpa", rows=True
        )
    for base in ("bilirubin", "creatinine"):
        alt = f"{base}_umol_l"
        if alt in names:
            if f"{base}_mg_dl" in names:
                raise ImmunoSepError(f"give either {base}_mg_dl or {alt}, not both", field=alt)
            cols[f"{base}_mg_dl"] = measured(
                f"{base}_mg_dl", column(alt), "umol/L", label=f"column {alt}", rows=True
            )
    if "ventilated" in names:
        cols["ventilated"] = ventilated()
    return cols


def _frame_inputs(df: pd.DataFrame) -> dict[str, Any]:
    def ventilated() -> Any:
        v = df["ventilated"]
        return (
            v.to_numpy(dtype=np.bool_) if v.dtype == np.bool_ else v.to_numpy(dtype=object, na_value=np.nan)
        )

    return _table_inputs(set(df.columns), lambda name: _column(df, name), ventilated)


def _array_column(name: str, values: npt.ArrayLike) -> FloatArray:
    """A column given as an array (``None`` or NaN = missing) as float64; text is refused like
    :func:`_column` refuses it."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    try:
        return np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    except (TypeError, ValueError):
        for i, v in enumerate(arr):
            try:
                float(np.nan if v is None else v)
            except (TypeError, ValueError):
                raise ImmunoSepError(
                    f"column {name} has a non-numeric value {v!r} (first offending row index {i}): "
                    "give numbers, and leave the cell empty when not measured",
                    field=name,
                ) from None
        raise


def score_sofa_columns(columns: Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[Any]]:
    """:func:`score_sofa_frame_arrays` for a table given as column arrays (``None``/NaN = not measured),
    e.g. the columns of an Arrow record batch: no pandas on the way (issue 21, ``immunosep sofa --input``).
    """

    def ventilated() -> Any:
        v = np.asarray(columns["ventilated"])
        return np.array([np.nan if x is None else x for x in v], dtype=object) if v.dtype == object else v

    inputs = _table_inputs(columns.keys(), lambda name: _array_column(name, columns[name]), ventilated)
    return score_sofa_arrays(**inputs)


SOFA_FRAME_COLUMNS = frozenset(SOFA_INPUT_COLUMNS) | {
    "pao2_fio2_kpa",
    "pao2_mmhg",
    "pao2_kpa",
    "fio2",
    "bilirubin_umol_l",
    "creatinine_umol_l",
}
"""Every column name :func:`score_sofa_frame` reads (the documented ones and their alternatives)."""


def score_sofa_frame_arrays(df: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
    """The :func:`score_sofa_arrays` result for the SOFA columns of ``df`` (for callers that assemble
    their own output, e.g. Arrow tables written chunk by chunk)."""
    return score_sofa_arrays(**_frame_inputs(df))


def score_sofa_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with ``sofa_<component>``, ``sofa_total`` (int8) and ``sofa_missing`` added.

    Input columns are :data:`SOFA_INPUT_COLUMNS`; an absent column counts as not measured. Existing
    ``sofa_*`` columns are replaced in the copy; ``df`` itself is never changed.
    """
    scored = score_sofa_frame_arrays(df)
    result = df.copy()
    for col in SCORE_COLUMNS:
        result[col] = scored[col]
    result["sofa_missing"] = missing_names(scored["sofa_missing_mask"])
    return result


# -- the bedside wrapper --------------------------------------------------------------------------------
def _opt(value: float | None) -> float:
    """The value as a float, NaN when missing; an integer too large for a float becomes an infinity, far
    outside every plausible range, so it is refused as implausible instead of raising OverflowError."""
    if value is None:
        return np.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def sofa(
    *,
    pao2_fio2_mmhg: float | None = None,
    pao2_mmhg: float | None = None,
    fio2: float | None = None,
    ventilated: bool = False,
    platelets_1e3_ul: float | None = None,
    bilirubin_mg_dl: float | None = None,
    bilirubin_unit: str | None = None,
    map_mmhg: float | None = None,
    dopamine_ug_kg_min: float | None = None,
    dobutamine_ug_kg_min: float | None = None,
    epinephrine_ug_kg_min: float | None = None,
    norepinephrine_ug_kg_min: float | None = None,
    gcs: float | None = None,
    creatinine_mg_dl: float | None = None,
    creatinine_unit: str | None = None,
    urine_ml_day: float | None = None,
    pao2_unit: str | None = None,
) -> SofaScore:
    """SOFA for one patient-day; ``None`` = not measured, vasopressors in ug/kg/min (0 = not given).

    The keywords are the columns of :data:`SOFA_INPUT_COLUMNS` and the keys of
    :data:`immunosep.clinical.units.PLAUSIBLE`: each value is in the unit its name carries. PaO2/FiO2 may
    be given directly or as ``pao2_mmhg`` and ``fio2`` (0.21-1.0 or 21-100 %). A laboratory that reports
    another unit states it, and the value is converted: ``pao2_unit="kPa"`` (PaO2 and the ratio),
    ``bilirubin_unit``/``creatinine_unit="umol/L"``. A bilirubin or creatinine given without its unit
    stated (``None``) is read in mg/dL, but one that looks like umol/L is refused until the unit is
    stated. Cardiovascular is missing only when MAP and every vasopressor are ``None``.
    """
    if pao2_fio2_mmhg is not None and (pao2_mmhg is not None or fio2 is not None):
        raise ImmunoSepError("give either the PaO2/FiO2 ratio or PaO2 and FiO2, not both", field="pao2_fio2")
    pf: Any = np.nan
    if pao2_fio2_mmhg is not None:
        pf = measured("pao2_fio2_mmhg", pao2_fio2_mmhg, pao2_unit)
    if pao2_mmhg is not None or fio2 is not None:
        if pao2_mmhg is None or fio2 is None:
            raise ImmunoSepError("PaO2 and FiO2 must be given together", field="pao2")
        pf = pao2_fio2_ratio(pao2_mmhg, fio2, pao2_unit=pao2_unit)

    def lab(name: str, value: float | None, unit: str | None) -> float:
        return np.nan if value is None else measured(name, value, unit, stated=unit is not None)

    values = {
        "platelets_1e3_ul": _opt(platelets_1e3_ul),
        "bilirubin_mg_dl": lab("bilirubin_mg_dl", bilirubin_mg_dl, bilirubin_unit),
        "map_mmhg": _opt(map_mmhg),
        "dopamine_ug_kg_min": _opt(dopamine_ug_kg_min),
        "dobutamine_ug_kg_min": _opt(dobutamine_ug_kg_min),
        "epinephrine_ug_kg_min": _opt(epinephrine_ug_kg_min),
        "norepinephrine_ug_kg_min": _opt(norepinephrine_ug_kg_min),
        "gcs": _opt(gcs),
        "creatinine_mg_dl": lab("creatinine_mg_dl", creatinine_mg_dl, creatinine_unit),
        "urine_ml_day": _opt(urine_ml_day),
    }
    values["pao2_fio2_mmhg"] = pf
    if isinstance(pf, float) and all(_plausible(name, x) for name, x in values.items()):
        return _score_one(values, bool(ventilated))
    kwargs: dict[str, Any] = {
        "pao2_fio2_mmhg": np.atleast_1d(pf),
        "ventilated": np.array([bool(ventilated)]),
        **{name: [x] for name, x in values.items() if name != "pao2_fio2_mmhg"},
    }
    scored = score_sofa_arrays(**kwargs, _rows=False)
    return sofa_score_from_row(scored, 0)


def _plausible(name: str, x: float) -> bool:
    """Whether the kernel's check (``_block_plausible``) passes one value: NaN, or in range (and whole)."""
    if x != x:
        return True
    p = PLAUSIBLE[name]
    return p.low <= x <= p.high and (not p.whole or x.is_integer())


def _score_one(v: Mapping[str, float], ventilated: bool) -> SofaScore:
    """SOFA of one patient-day of plausible values (NaN = not measured) by the kernel's rules and thresholds,
    in Python floats: the kernel's setup for a single row costs 0.2-0.3 ms, this 0.02 (issue 21: it is
    paid by every daily CRF write). Equal to the kernel on every row (``tests/clinical/test_sofa_kernel.py``);
    an implausible value takes the kernel, which words the refusal."""
    pf, plt, bili = v["pao2_fio2_mmhg"], v["platelets_1e3_ul"], v["bilirubin_mg_dl"]
    dopa, dobu = v["dopamine_ug_kg_min"], v["dobutamine_ug_kg_min"]
    epi, ne, mapp = v["epinephrine_ug_kg_min"], v["norepinephrine_ug_kg_min"], v["map_mmhg"]
    gcs, cr, uo = v["gcs"], v["creatinine_mg_dl"], v["urine_ml_day"]
    # comparisons with NaN are False, as in the kernel: a missing value scores nothing
    respiration = sum(pf < t for t in RESPIRATION_BELOW[:2])
    if ventilated:  # 3 and 4 points need mechanical ventilation
        respiration += sum(pf < t for t in RESPIRATION_BELOW[2:])
    catecholamines = (epi, ne)
    level4 = any(x > CATECHOLAMINE_ABOVE for x in catecholamines) or dopa > DOPAMINE_ABOVE[1]
    level3 = any(x > 0.0 for x in catecholamines) or dopa > DOPAMINE_ABOVE[0]
    level2 = dopa > 0.0 or dobu > 0.0 or level3
    level1 = mapp < MAP_BELOW or level2
    urine = 3 * (uo < URINE_BELOW[0]) + (uo < URINE_BELOW[1])
    scores = {
        "respiration": respiration,
        "coagulation": sum(plt < t for t in PLATELETS_BELOW),
        "liver": sum(bili >= t for t in BILIRUBIN_AT_LEAST),
        "cardiovascular": level1 + level2 + level3 + level4,
        "cns": sum(gcs < t for t in GCS_BELOW),
        "renal": max(sum(cr >= t for t in CREATININE_AT_LEAST), urine),
    }
    missing = {
        "respiration": pf != pf,
        "coagulation": plt != plt,
        "liver": bili != bili,
        "cardiovascular": all(x != x for x in (mapp, dopa, dobu, epi, ne)),
        "cns": gcs != gcs,
        "renal": cr != cr and uo != uo,
    }
    return SofaScore(
        **{c: int(x) for c, x in scores.items()},
        total=int(sum(scores.values())),
        missing=tuple(c for c in COMPONENTS if missing[c]),
    )


def sofa_score_from_row(scored: Mapping[str, npt.NDArray[Any]], i: int) -> SofaScore:
    """The :class:`SofaScore` of row ``i`` of a :func:`score_sofa_arrays` result."""
    mask = int(scored["sofa_missing_mask"][i])
    return SofaScore(
        respiration=int(scored["sofa_respiration"][i]),
        coagulation=int(scored["sofa_coagulation"][i]),
        liver=int(scored["sofa_liver"][i]),
        cardiovascular=int(scored["sofa_cardiovascular"][i]),
        cns=int(scored["sofa_cns"][i]),
        renal=int(scored["sofa_renal"][i]),
        total=int(scored["sofa_total"][i]),
        missing=tuple(c for j, c in enumerate(COMPONENTS) if mask & (1 << j)),
    )
