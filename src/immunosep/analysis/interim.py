"""The group-sequential interim look of the statistical analysis plan (protocol ``[design.sequential]``).

Binary primary endpoint: the pooled two-proportion z (treatment minus control, positive favours treatment;
rpact's ``getAnalysisResults`` for rates with the normal approximation), the difference in proportions with
its unpooled standard error, and the information fraction ``n analysed with the endpoint / the design's
maximum n``.

Survival (``endpoint = "survival"``): the log-rank z on time to death to the survival horizon
(``horizon_day``, by default the last of ``[endpoints.mortality].days``; ADTTE ``OS<day>``), signed so that a
positive z favours treatment (fewer deaths than expected in the treatment arm), the information fraction
``deaths observed / the design's maximum number of events``, and the Cox hazard ratio (treatment vs control,
Efron ties) with the standard error of its log for the repeated confidence interval.

Then :func:`immunosep.stats.interim.interim_look` at that fraction: boundaries at the observed information,
decision, conditional and predictive power, repeated CI and P-value. The earlier looks are taken at the
fractions *observed* at them when the trial's history of looks is given (``conduct.interim_looks``; rpact's
``getAnalysisResults`` with a user-defined ``informationRates``), at their planned fractions otherwise. The
data cut is fingerprinted: the SHA-256 of the sorted rows analysed (usubjid, arm, endpoint; for survival
usubjid, arm, time, censoring), so the DSMB's report names the data it saw, and the same data cut is the
same look.

The result is by arm (closed, for the DSMB and the statistician); the pooled report never shows it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from immunosep.analysis.adtte import derive_param_os, os_paramcd
from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.analysis.sap import analysed
from immunosep.conduct.interim_looks import InterimLookView, observed_rates
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.stats.group_sequential import GroupSequentialDesign, planned_design, spending
from immunosep.stats.interim import interim_look, observed_design
from immunosep.stats.survival import cox_regression, logrank_z


def data_cut_digest(rows: pd.DataFrame, *variables: str) -> str:
    """SHA-256 of the analysed rows (usubjid, arm, the endpoint's variables), sorted by usubjid, as CSV."""
    cut = rows[["usubjid", "arm", *variables]].sort_values("usubjid")
    text = cut.to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def survival_horizon(protocol: Protocol) -> int:
    """The study day of the survival endpoint: ``[design.sequential].horizon_day`` or the last mortality day."""
    seq = protocol.design.sequential
    if seq is not None and seq.horizon_day is not None:
        return seq.horizon_day
    return max(protocol.endpoints.mortality.days)


def survival_rows(ds: AnalysisDatasets, protocol: Protocol) -> pd.DataFrame:
    """ADTTE's time to death to the survival horizon (derived from ADSL when ADTTE has no such parameter)."""
    day = survival_horizon(protocol)
    rows = ds.adtte.loc[ds.adtte["paramcd"] == os_paramcd(day)]
    if rows.empty and len(ds.adsl):
        rows = derive_param_os(ds.adsl, day)
    return rows


def _binary(
    ds: AnalysisDatasets, treatment: str, control: str, maximum: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Counts, digest and fraction; then z and the difference (None when there is no comparison)."""
    variable = "primary_endpoint"
    rows = analysed(ds.adsl)
    rows = rows.loc[pd.to_numeric(rows[variable], errors="coerce").notna()]
    counts = {}
    for arm in (treatment, control):
        values = pd.to_numeric(rows.loc[rows["arm"] == arm, variable])
        counts[arm] = (int(values.sum()), len(values))
    (x1, n1), (x2, n2) = counts[treatment], counts[control]
    n = n1 + n2
    base = {
        "data_cut_sha256": data_cut_digest(rows, variable),
        "counts": {arm: {"events": x, "n": k} for arm, (x, k) in counts.items()},
        "information": n,
        "information_rate": min(n / maximum, 1.0),
    }
    if min(n1, n2) == 0 or x1 + x2 in (0, n):
        return base, None
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / n
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) or math.sqrt(
        pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    )
    return base, {
        "z": z,
        "difference": p1 - p2,
        "standard_error": se,
        "effect": {"name": "difference in proportions (treatment minus control)", "estimate": p1 - p2},
        "estimate": p1 - p2,
        "se": se,
        "transform": None,
    }


def _survival(
    ds: AnalysisDatasets, protocol: Protocol, treatment: str, control: str, maximum: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    rows = survival_rows(ds, protocol)
    rows = rows.loc[rows["arm"].isin([treatment, control])]
    time = pd.to_numeric(rows["aval"]).to_numpy(float)
    event = (pd.to_numeric(rows["cnsr"]).to_numpy() == 0).astype(int)
    treated = (rows["arm"] == treatment).to_numpy()
    deaths = int(event.sum())
    base = {
        "data_cut_sha256": data_cut_digest(rows, "aval", "cnsr"),
        "counts": {
            arm: {
                "events": int(event[(rows["arm"] == arm).to_numpy()].sum()),
                "n": int((rows["arm"] == arm).sum()),
            }
            for arm in (treatment, control)
        },
        "horizon_day": survival_horizon(protocol),
        "information": deaths,
        "information_rate": min(deaths / maximum, 1.0),
    }
    if treated.all() or not treated.any() or deaths == 0:
        return base, None
    z, observed, expected = logrank_z(time.tolist(), event.tolist(), treated.tolist())
    frame = pd.DataFrame({"time": time, "event": event, "treated": treated.astype(float)})
    try:
        cox = cox_regression(frame, "time", "event", ["treated"], check_ph=False).term("treated")
    except ImmunoSepError:
        return {**base, "logrank_z": z}, None
    log_hr = math.log(cox.estimate)
    se = (math.log(cox.ci_high) - math.log(cox.ci_low)) / (2 * 1.959963984540054)
    return base, {
        "z": z,
        "logrank": {"observed_treatment": observed, "expected_treatment": expected},
        "hazard_ratio": cox.estimate,
        "log_hazard_ratio": log_hr,
        "standard_error": se,
        "effect": {"name": "hazard ratio (treatment vs control, Cox)", "estimate": cox.estimate},
        "estimate": log_hr,
        "se": se,
        "transform": "exp",
    }


def analyse_group_sequential(
    ds: AnalysisDatasets, protocol: Protocol, history: Sequence[InterimLookView] | None = None
) -> dict[str, Any] | None:
    """The interim (or final) look of a group-sequential protocol; ``None`` for a fixed design.

    ``history``: the looks recorded so far (``conduct.interim_looks.list_looks``); the look's number and the
    earlier looks' observed fractions come from it (a data cut already recorded is that look again). Without
    it the earlier looks are those of the plan before the observed fraction.
    """
    seq = protocol.design.sequential
    if protocol.design.type != "group-sequential" or seq is None:
        return None
    design, size = planned_design(seq, protocol.sample_size)
    treatment, control = protocol.arm_codes[:2]
    if seq.endpoint == "survival":
        base, stat = _survival(ds, protocol, treatment, control, size.maximum)
    else:
        base, stat = _binary(ds, treatment, control, size.maximum)
    fraction = base["information_rate"]
    digest = base["data_cut_sha256"]
    if history is None:
        earlier = [t for t in design.information_rates if t < fraction - 1e-9]
        number = len(earlier) + 1
    else:
        number, earlier = observed_rates(history, digest)
        if earlier and fraction <= earlier[-1] + 1e-12:
            raise ImmunoSepError(
                f"the information fraction ({fraction:.4f}) has not grown since look {number - 1} "
                f"({earlier[-1]:.4f}): a new look needs more patients (or events) with the endpoint"
            )
    planned = design.information_rates[number - 1] if number <= design.looks else None
    out: dict[str, Any] = {
        "endpoint": seq.endpoint,
        "design": {
            "information_rates": list(design.information_rates),
            "sided": design.sided,
            "alpha": design.alpha,
            "alpha_spending": design.alpha_spending,
            "futility": seq.futility,
            "maximum": size.maximum,
            "unit": size.unit,
            # kept for readers of results.json before survival looks (the binary design's maximum n)
            "maximum_n": size.maximum,
        },
        "planned_information_rate": planned,
        "look_number": number,
        **base,
    }
    if stat is None:
        return {**out, "look": None, "note": "no comparison: an arm is empty or every outcome is the same"}
    observed = [*earlier, fraction]
    look = interim_look(design, observed, stat["z"], estimate=stat["estimate"], standard_error=stat["se"])
    look_dict = asdict(look)
    effect = dict(stat["effect"])
    low, high = look.repeated_ci
    effect["repeated_ci"] = [math.exp(low), math.exp(high)] if stat["transform"] == "exp" else [low, high]
    alpha_spent = design_alpha_spent(design, observed)
    at_observed = observed_design(design, observed)
    path = [
        {"look": v.look, "information_rate": v.information_rate, "z": v.statistic}
        for v in (history or [])
        if v.look < number
    ]
    extra = {k: v for k, v in stat.items() if k not in ("effect", "estimate", "se", "transform")}
    return {
        **out,
        **extra,
        "effect": effect,
        "observed_information_rates": observed,
        "cumulative_alpha_spent": alpha_spent,
        "boundaries": {
            "information_rates": list(at_observed.information_rates),
            "efficacy_z": list(at_observed.critical_values),
            "futility_z": list(at_observed.futility_bounds),
            "nominal_p": list(at_observed.nominal_p),
            "alpha_spent": list(at_observed.alpha_spent),
        },
        "z_path": [*path, {"look": number, "information_rate": fraction, "z": stat["z"]}],
        "look": look_dict,
    }


def design_alpha_spent(design: GroupSequentialDesign, observed: Sequence[float]) -> float:
    """The cumulative alpha spent by the spending function at the last observed fraction (all at 1)."""
    t = np.asarray([min(observed[-1], 1.0)])
    spent = spending(design.alpha_spending, design.alpha, t, gamma=design.alpha_gamma, sided=design.sided)
    return design.alpha if t[0] >= 1 else float(spent[0])
