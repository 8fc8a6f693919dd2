"""ADSOFA: one row per patient and study day of the SOFA endpoint window, after the imputation rules.

The rules are those of the shared endpoint kernel :func:`immunosep.clinical.sofa_endpoint.sofa_decrease`
(death scores ``death_score`` to ``death_imputed_until_day``; the last recorded SOFA is carried forward
after discharge, loss to follow-up or a missing day). ADSOFA shows, for each analysed patient and each day
``1..max(window_last_day, death_imputed_until_day)`` of the protocol's SOFA endpoints, the recorded SOFA
(``sofa_observed``), the value the endpoint uses (``aval``) and why it was imputed (``dtype``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from immunosep.clinical.sofa_endpoint import SofaDecrease, sofa_decrease
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol, SofaEndpoint

#: ``dtype`` values of ADSOFA (CDISC ADaM "derivation type").
DTYPE_DEATH = "DEATH"
DTYPE_LOCF = "LOCF"


def sofa_days(protocol: Protocol) -> int:
    """Number of study days the SOFA endpoints look at (days 1..this)."""
    eps = (protocol.endpoints.primary, protocol.endpoints.sofa_d15)
    return max(max(e.window_last_day, e.death_imputed_until_day) for e in eps)


def sofa_matrix(usubjid: pd.Series, daily_sofa: pd.DataFrame, n_days: int) -> npt.NDArray[np.float64]:
    """Recorded SOFA as a [patients, n_days] matrix (NaN = not recorded); row i is ``usubjid.iloc[i]``.

    Days outside ``1..n_days`` are ignored; the input frame is not modified.
    """
    matrix = np.full((len(usubjid), n_days), np.nan)
    if daily_sofa.empty:
        return matrix
    rows = pd.Index(usubjid).get_indexer(pd.Index(daily_sofa["usubjid"]))
    days = pd.to_numeric(daily_sofa["day"], errors="coerce").to_numpy(dtype=float)
    values = pd.to_numeric(daily_sofa["sofa_total"], errors="coerce").to_numpy(dtype=float)
    keep = (rows >= 0) & (days >= 1) & (days <= n_days)
    matrix[rows[keep], days[keep].astype(int) - 1] = values[keep]
    return matrix


def death_days(usubjid: pd.Series, vital_status: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Study day of death per patient in the order of ``usubjid`` (NaN = alive at last contact)."""
    deaths = vital_status.set_index("usubjid")["death_day"]
    return pd.to_numeric(deaths.reindex(pd.Index(usubjid)), errors="coerce").to_numpy(dtype=float)


def _require_days(endpoint: SofaEndpoint, n_days: int) -> None:
    """Refuse a SOFA matrix of ``n_days`` days that stops before the endpoint's window or death imputation."""
    if n_days < max(endpoint.window_last_day, endpoint.death_imputed_until_day):
        raise ImmunoSepError(f"{endpoint.name}: n_days {n_days} is shorter than the endpoint window")


def derive_sofa_endpoint(
    usubjid: pd.Series,
    daily_sofa: pd.DataFrame,
    vital_status: pd.DataFrame,
    endpoint: SofaEndpoint,
    n_days: int,
) -> SofaDecrease:
    """Run the shared endpoint kernel for the patients ``usubjid`` (in that order)."""
    return derive_sofa_endpoints(usubjid, daily_sofa, vital_status, (endpoint,), n_days)[0]


def derive_sofa_endpoints(
    usubjid: pd.Series,
    daily_sofa: pd.DataFrame,
    vital_status: pd.DataFrame,
    endpoints: Sequence[SofaEndpoint],
    n_days: int,
) -> list[SofaDecrease]:
    """:func:`derive_sofa_endpoint` for several endpoints of the same patients, from one SOFA matrix and one
    lookup of the deaths (each lookup matches 1.5 M SOFA rows to their patients at 100,000 patients).
    """
    for endpoint in endpoints:
        _require_days(endpoint, n_days)
    matrix = sofa_matrix(usubjid, daily_sofa, n_days)
    deaths = death_days(usubjid, vital_status)
    return [sofa_decrease(matrix, deaths, endpoint) for endpoint in endpoints]  # each on its own copy


def derive_adsofa(
    adsl: pd.DataFrame, daily_sofa: pd.DataFrame, vital_status: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """ADSOFA for the analysed patients of ``adsl`` (``analysed == 1``), sorted by ``usubjid`` and ``ady``.

    Columns: ``usubjid, siteid, stratum, arm, ady`` (study day), ``sofa_observed`` (points, NaN = not
    recorded), ``aval`` (points used by the endpoint), ``imputed`` (0/1), ``dtype`` ("DEATH", "LOCF" or ""),
    ``primary_achiever`` (0/1, the patient's primary endpoint).
    """
    for col in ("usubjid", "siteid", "stratum", "arm", "analysed", "primary_endpoint"):
        if col not in adsl.columns:
            raise ImmunoSepError(f"ADSL lacks column {col!r} needed for ADSOFA")
    analysed = adsl.loc[adsl["analysed"] == 1].sort_values("usubjid")
    n_days = sofa_days(protocol)
    ids = analysed["usubjid"]
    observed = sofa_matrix(ids, daily_sofa, n_days)
    primary = protocol.endpoints.primary
    _require_days(primary, n_days)
    result = sofa_decrease(observed, death_days(ids, vital_status), primary)  # the kernel works on a copy
    n_patients = len(analysed)
    dtype = np.where(result.imputed_death, DTYPE_DEATH, np.where(result.carried_forward, DTYPE_LOCF, ""))
    columns = {
        "usubjid": np.repeat(ids.to_numpy(), n_days),
        "siteid": np.repeat(analysed["siteid"].to_numpy(), n_days),
        "stratum": np.repeat(analysed["stratum"].to_numpy(), n_days),
        "arm": np.repeat(analysed["arm"].to_numpy(), n_days),
        "ady": np.tile(np.arange(1, n_days + 1), n_patients),
        "sofa_observed": observed.reshape(-1),
        "aval": result.sofa_imputed[:, :n_days].reshape(-1),
        "imputed": result.imputed[:, :n_days].reshape(-1).astype("int8"),
        "dtype": dtype[:, :n_days].reshape(-1),
        "primary_achiever": np.repeat(analysed["primary_endpoint"].astype("int8").to_numpy(), n_days),
    }
    # One block per column over these fresh arrays: pandas' default stacks the columns of a dtype into one
    # block, a copy of every value (0.5-0.8 s of the 1.5 M rows at 100,000 patients, against 0.07 s).
    return pd.DataFrame(columns, copy=False)
