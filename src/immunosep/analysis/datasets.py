"""All analysis datasets of a trial at once, plus the CONSORT flow counts they imply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from immunosep.analysis.adae import derive_adae
from immunosep.analysis.adsl import derive_adsl
from immunosep.analysis.adsofa import derive_adsofa
from immunosep.analysis.adtte import derive_adtte
from immunosep.analysis.raw import RawTrial
from immunosep.protocol.schema import Protocol


@dataclass(frozen=True)
class AnalysisDatasets:
    """ADSL, ADSOFA, ADTTE and ADAE of one trial, and the CONSORT flow counts (:func:`derive_consort`)."""

    adsl: pd.DataFrame
    adsofa: pd.DataFrame
    adtte: pd.DataFrame
    adae: pd.DataFrame
    consort: dict[str, Any]
    locked: bool = True

    def as_dict(self) -> dict[str, pd.DataFrame]:
        """The four datasets by their lower-case names."""
        return {"adsl": self.adsl, "adsofa": self.adsofa, "adtte": self.adtte, "adae": self.adae}


def derive_consort(screening: pd.DataFrame, adsl: pd.DataFrame, protocol: Protocol) -> dict[str, Any]:
    """CONSORT flow: screened, excluded with reasons, randomized, withdrawn, analysed (per stratum and arm).

    Exclusion reasons are counted per reason (a patient may have several), plus the patients not enrolled
    because they were unclassified or eligible but not randomized. Keys are stable (documented in
    docs/analysis.md).
    """
    arms = protocol.arm_codes
    strata = protocol.enrolled_strata
    screened = len(screening)
    not_randomized = screening.loc[~screening["randomized"].astype(bool)]
    reasons: dict[str, int] = {}
    texts = not_randomized["exclusion_reasons"].fillna("").astype(str).value_counts(sort=False)
    for text, count in texts.items():  # each distinct list of reasons once, counted by its patients
        for code in (c.strip() for c in str(text).split(";")):
            if code:
                reasons[code] = reasons.get(code, 0) + int(count)
    eligible_not_randomized = not_randomized.loc[
        not_randomized["exclusion_reasons"].fillna("").astype(str).str.strip() == ""
    ]
    unclassified = int((eligible_not_randomized["stratum"].fillna("") == "unclassified").sum())
    other = len(eligible_not_randomized) - unclassified
    if unclassified:
        reasons["unclassified immune state"] = reasons.get("unclassified immune state", 0) + unclassified
    if other:
        reasons["eligible, not randomized"] = reasons.get("eligible, not randomized", 0) + other
    randomized = adsl.loc[adsl["randfl"] == 1]
    analysed = randomized.loc[randomized["analysed"] == 1]
    withdrawn = randomized.loc[randomized["analysed"] != 1]
    return {
        "screened": screened,
        "excluded": screened - len(screening.loc[screening["randomized"].astype(bool)]),
        "exclusion_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "randomized": len(randomized),
        "randomized_by_arm": {a: int((randomized["arm"] == a).sum()) for a in arms},
        "withdrawn_by_arm": {a: int((withdrawn["arm"] == a).sum()) for a in arms},
        "analysed": len(analysed),
        "analysed_by_arm": {a: int((analysed["arm"] == a).sum()) for a in arms},
        "analysed_by_stratum_arm": {
            s: {a: int(((analysed["stratum"] == s) & (analysed["arm"] == a)).sum()) for a in arms}
            for s in strata
        },
        "died_before_primary_window_end_by_arm": {
            a: int(
                (
                    (analysed["arm"] == a)
                    & (analysed["death_day"] <= protocol.endpoints.primary.window_last_day)
                ).sum()
            )
            for a in arms
        },
    }


def derive_datasets(raw: RawTrial, protocol: Protocol) -> AnalysisDatasets:
    """Every analysis dataset of the trial from its raw frames (the input frames are not modified)."""
    adsl = derive_adsl(raw, protocol)
    return AnalysisDatasets(
        adsl=adsl,
        adsofa=derive_adsofa(adsl, raw.daily_sofa, raw.vital_status, protocol),
        adtte=derive_adtte(adsl, protocol),
        adae=derive_adae(adsl, raw.adverse_events),
        consort=derive_consort(raw.screening, adsl, protocol),
        locked=raw.locked,
    )
