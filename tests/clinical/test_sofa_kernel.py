"""The rewritten SOFA kernel (issue 21) equals the block kernel it replaced on every row.

The reference is that kernel itself, kept in ``tests/fixtures/sofa_block_kernel.py``: values drawn on and
one float step either side of every threshold, NaN, float32 columns, any subset of columns, and blocks of
a few rows (so that every path through a block edge and a short last block is taken).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import immunosep.clinical.sofa as sofa_module
from fixtures.sofa_block_kernel import block_kernel
from immunosep.clinical.sofa import SOFA_INPUT_COLUMNS, score_sofa_arrays
from immunosep.clinical.units import PLAUSIBLE
from immunosep.errors import ImmunoSepError

THRESHOLDS = {
    "pao2_fio2_mmhg": sofa_module.RESPIRATION_BELOW,
    "platelets_1e3_ul": sofa_module.PLATELETS_BELOW,
    "bilirubin_mg_dl": sofa_module.BILIRUBIN_AT_LEAST,
    "map_mmhg": (sofa_module.MAP_BELOW,),
    "dopamine_ug_kg_min": (0.0, *sofa_module.DOPAMINE_ABOVE),
    "dobutamine_ug_kg_min": (0.0,),
    "epinephrine_ug_kg_min": (0.0, sofa_module.CATECHOLAMINE_ABOVE),
    "norepinephrine_ug_kg_min": (0.0, sofa_module.CATECHOLAMINE_ABOVE),
    "gcs": sofa_module.GCS_BELOW,
    "creatinine_mg_dl": sofa_module.CREATININE_AT_LEAST,
    "urine_ml_day": sofa_module.URINE_BELOW,
}
NUMERIC = tuple(c for c in SOFA_INPUT_COLUMNS if c != "ventilated")


@contextmanager
def block_size(rows: int) -> Iterator[None]:
    saved = sofa_module._BLOCK
    sofa_module._BLOCK = rows
    try:
        yield
    finally:
        sofa_module._BLOCK = saved


def _values(name: str, dtype: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` plausible values of ``name``: thresholds, a float step either side of them (in ``dtype``), the
    range's ends, uniform draws and NaN."""
    p = PLAUSIBLE[name]
    if name == "gcs":
        pool = np.arange(3.0, 16.0)
    else:
        t = np.array(THRESHOLDS[name], dtype=dtype)
        pool = np.concatenate(
            [t, np.nextafter(t, dtype(-np.inf)), np.nextafter(t, dtype(np.inf)), [p.low, p.high]]
        )
        pool = pool[(pool >= p.low) & (pool <= p.high)]
        pool = np.concatenate([pool, rng.uniform(p.low, min(p.high, 3 * max(THRESHOLDS[name])), 8)])
    values = rng.choice(np.concatenate([pool, [np.nan]]), n).astype(dtype)
    return values


def _assert_same(new: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> None:
    assert new.keys() == old.keys()
    for key, want in old.items():
        np.testing.assert_array_equal(new[key], want, err_msg=key)
        assert new[key].dtype == want.dtype, key


@pytest.mark.requirement("PROT-SOFA-01")
@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    columns=st.sets(st.sampled_from(NUMERIC), min_size=1),
    float32=st.sets(st.sampled_from(NUMERIC)),
    ventilated=st.booleans(),
    rows_per_block=st.sampled_from([1, 3, 8, 1 << 16]),
)
def test_equals_the_block_kernel_it_replaced(
    seed: int,
    n: int,
    columns: set[str],
    float32: set[str],
    ventilated: bool,
    rows_per_block: int,
) -> None:
    rng = np.random.default_rng(seed)
    cols = {
        c: _values(c, np.float32 if c in float32 else np.float64, n, rng) for c in NUMERIC if c in columns
    }
    vent = rng.random(n) < 0.5 if ventilated else None
    kwargs: dict[str, Any] = {**cols, **({"ventilated": vent} if vent is not None else {})}
    with block_size(rows_per_block):
        checked = score_sofa_arrays(**kwargs)
        unchecked = score_sofa_arrays(**kwargs, validate=False)
    want = block_kernel(cols, vent)
    _assert_same(checked, want)
    _assert_same(unchecked, want)


@pytest.mark.requirement("PROT-SOFA-01")
def test_equals_the_block_kernel_on_many_blocks() -> None:
    n = (1 << 16) * 2 + 123  # two full blocks and a short one
    rng = np.random.default_rng(21)
    cols: dict[str, Any] = {c: _values(c, np.float64, n, rng) for c in NUMERIC}
    vent = rng.random(n) < 0.5
    _assert_same(score_sofa_arrays(**cols, ventilated=vent), block_kernel(cols, vent))


def test_two_dimensional_input_equals_the_flat_result() -> None:
    rng = np.random.default_rng(4)
    cols: dict[str, Any] = {c: _values(c, np.float64, 6 * 15, rng) for c in NUMERIC}
    flat = score_sofa_arrays(**cols)
    square_cols: dict[str, Any] = {c: v.reshape(6, 15) for c, v in cols.items()}
    square = score_sofa_arrays(**square_cols)
    for key, values in flat.items():
        np.testing.assert_array_equal(square[key].ravel(), values)


@pytest.mark.requirement("PROT-SOFA-02")
@pytest.mark.parametrize("rows_per_block", [4, 1 << 16])
def test_first_implausible_value_reported_is_the_one_the_old_kernel_reported(rows_per_block: int) -> None:
    """The new kernel checks a block component by component; the error is still the first bad column (in
    argument order) of the first block with a bad value, as when every column of a block was checked
    before any was scored."""
    rng = np.random.default_rng(8)
    n = 20
    cols: dict[str, Any] = {c: _values(c, np.float64, n, rng) for c in NUMERIC}
    cols["urine_ml_day"][2] = -5.0  # renal, the last component, in the first block
    cols["gcs"][3] = 7.5  # CNS, scored before renal, same block
    cols["pao2_fio2_mmhg"][9] = 5000.0  # respiration, first component, a later block when blocks are 4 rows
    with block_size(rows_per_block), pytest.raises(ImmunoSepError) as new:
        score_sofa_arrays(**cols)
    with pytest.raises(ImmunoSepError) as old:
        block_kernel(cols, validate=True) if rows_per_block == 1 << 16 else _old_with_blocks(cols, 4)
    assert str(new.value) == str(old.value)
    assert new.value.field == old.value.field


def _old_with_blocks(cols: dict[str, Any], rows: int) -> dict[str, np.ndarray]:
    import fixtures.sofa_block_kernel as old

    saved = old._BLOCK
    old._BLOCK = rows
    try:
        return block_kernel(cols, validate=True)
    finally:
        old._BLOCK = saved


def _bedside_value(name: str, rng: np.random.Generator) -> float | None:
    """One value for :func:`sofa`: missing, a threshold or a float step beside it, a draw in range, or
    (one in ten) an implausible one: out of range either side, or a GCS that is not whole."""
    p = PLAUSIBLE[name]
    roll = rng.random()
    if roll < 0.2:
        return None
    if roll < 0.3:
        bad = [p.low - 1.0, p.high * 1.5 + 1.0, float("inf")] + ([p.low + 0.5] if p.whole else [])
        return float(rng.choice(bad))
    x = float(_values(name, np.float64, 1, rng)[0])
    return None if x != x else x


@pytest.mark.requirement("PROT-SOFA-01", "PROT-SOFA-02")
def test_the_bedside_scalar_path_equals_the_kernel_on_one_row_and_refuses_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """:func:`sofa` scores one plausible row without the kernel (``sofa._score_one``); on 6,000 random rows
    (thresholds and a float step either side, missing values, implausible values, units stated or not) it
    gives what it gives through the kernel, score or error."""
    rng = np.random.default_rng(2026)

    def bedside(kwargs: dict[str, Any]) -> Any:
        try:
            return sofa_module.sofa(**kwargs)
        except ImmunoSepError as exc:
            return (str(exc), exc.field)

    scalar = refused = 0
    for _ in range(6_000):
        kwargs: dict[str, Any] = {c: _bedside_value(c, rng) for c in NUMERIC}
        kwargs["ventilated"] = bool(rng.random() < 0.5)
        kwargs["bilirubin_unit"], kwargs["creatinine_unit"] = rng.choice([None, "mg/dL"], 2)
        got = bedside(kwargs)
        with monkeypatch.context() as m:
            m.setattr(sofa_module, "_plausible", lambda name, x: False)  # every row through the kernel
            want = bedside(kwargs)
        assert got == want, kwargs
        refused += isinstance(want, tuple)
        scalar += not isinstance(want, tuple)
    assert scalar > 1_000 and refused > 1_000  # both paths taken many times


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_missing_test_is_numpys_isnan_for_every_kind_of_value(dtype: type) -> None:
    """The kernel tests NaN as ``x != x`` (faster than ``np.isnan`` where that is not vectorized): the same
    answer for NaN of either sign and any payload, infinities, signed zeros, subnormals and extremes."""
    specials = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]
    info = np.finfo(dtype)
    specials += [float(info.tiny), float(info.smallest_subnormal), float(info.max), float(info.min)]
    payload = np.array([0x7FF8000000000123], dtype=np.uint64).view(np.float64)[0]
    x = np.array(specials + [payload] * 3, dtype=dtype)
    x = np.tile(x, 1000)  # past any SIMD remainder loop
    out = np.empty(x.size, dtype=np.bool_)
    sofa_module._isnan(x, out)
    assert np.array_equal(out, np.isnan(x))
    assert out.sum() == 5 * 1000
