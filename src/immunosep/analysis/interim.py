"""The group-sequential interim look of the statistical analysis plan (protocol ``[design.sequential]``).

For a binary primary endpoint: the pooled two-proportion z (treatment minus control, positive favours
treatment; rpact's ``getAnalysisResults`` for rates with the normal approximation), the difference in
proportions with its unpooled standard error, the information fraction ``n analysed with the endpoint / the
design's maximum n``, and :func:`immunosep.stats.interim.interim_look` at it: boundaries at the observed
fraction, decision, conditional and predictive power, repeated CI and P-value. The earlier looks are taken
at their planned fractions (the trial keeps no history of looks). The data cut is fingerprinted: the
SHA-256 of the sorted (usubjid, arm, endpoint) rows analysed, so the DSMB's report names the data it saw.

The result is by arm (closed, for the DSMB and the statistician); the pooled report never shows it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from typing import Any

import pandas as pd

from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.analysis.sap import analysed
from immunosep.protocol.schema import Protocol
from immunosep.stats.group_sequential import planned_design
from immunosep.stats.interim import interim_look


def data_cut_digest(rows: pd.DataFrame, variable: str) -> str:
    """SHA-256 of the analysed rows (usubjid, arm, endpoint value), sorted by usubjid, as CSV text."""
    cut = rows[["usubjid", "arm", variable]].sort_values("usubjid")
    text = cut.to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def analyse_group_sequential(ds: AnalysisDatasets, protocol: Protocol) -> dict[str, Any] | None:
    """The interim (or final) look of a group-sequential protocol; ``None`` for a fixed design."""
    seq = protocol.design.sequential
    if protocol.design.type != "group-sequential" or seq is None:
        return None
    design, size = planned_design(seq, protocol.sample_size)
    treatment, control = protocol.arm_codes[:2]
    variable = "primary_endpoint"
    rows = analysed(ds.adsl)
    rows = rows.loc[pd.to_numeric(rows[variable], errors="coerce").notna()]
    digest = data_cut_digest(rows, variable)
    base: dict[str, Any] = {
        "design": {
            "information_rates": list(design.information_rates),
            "sided": design.sided,
            "alpha": design.alpha,
            "alpha_spending": design.alpha_spending,
            "futility": seq.futility,
            "maximum_n": size.maximum,
        },
        "data_cut_sha256": digest,
    }
    if seq.endpoint != "binary":
        return {**base, "look": None, "note": "interim looks are computed for a binary primary endpoint only"}
    counts = {}
    for arm in (treatment, control):
        values = pd.to_numeric(rows.loc[rows["arm"] == arm, variable])
        counts[arm] = (int(values.sum()), len(values))
    (x1, n1), (x2, n2) = counts[treatment], counts[control]
    base["counts"] = {arm: {"events": x, "n": n} for arm, (x, n) in counts.items()}
    n = n1 + n2
    fraction = min(n / size.maximum, 1.0)
    base["information_rate"] = fraction
    if min(n1, n2) == 0 or x1 + x2 in (0, n):
        return {**base, "look": None, "note": "no comparison: an arm is empty or every outcome is the same"}
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / n
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) or math.sqrt(
        pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    )
    earlier = [t for t in design.information_rates if t < fraction - 1e-9]
    observed = [*earlier, fraction] if fraction < 1 else [*earlier, 1.0]
    look = interim_look(design, observed, z, estimate=p1 - p2, standard_error=se)
    return {
        **base,
        "z": z,
        "difference": p1 - p2,
        "standard_error": se,
        "observed_information_rates": observed,
        "look": asdict(look),
    }
