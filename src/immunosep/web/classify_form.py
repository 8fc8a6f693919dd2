"""The bedside immune classification from ferritin and mHLA-DR, for the page, its fragment and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from immunosep.clinical.immune import classify, stratum_rule
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.web.forms import FormErrors, number


@dataclass(frozen=True)
class Classified:
    """A stratum with its label, whether the protocol enrols it, and the rule that put the patient there."""

    stratum: str | None = None
    label: str = ""
    enrolled: bool = False
    rule: str = ""


def classify_values(ferritin: float, hla_dr: float | None, protocol: Protocol) -> Classified:
    """Classify one pair of values under ``protocol`` (raises ImmunoSepError on implausible input)."""
    stratum = classify(ferritin, hla_dr, protocol)
    meta = next(s for s in protocol.strata if s.code == stratum)
    return Classified(stratum, meta.label, meta.enrolled, stratum_rule(stratum, protocol))


def classify_form(form: Mapping[str, Any], errors: FormErrors, protocol: Protocol) -> Classified:
    """Classify the form's ``ferritin_ng_ml`` and ``hla_dr``; an empty result when incomplete or invalid."""
    ferritin = number(form, "ferritin_ng_ml", errors)
    hla_dr = number(form, "hla_dr", errors)
    if errors or ferritin is None:
        return Classified()
    try:
        return classify_values(ferritin, hla_dr, protocol)
    except ImmunoSepError as exc:
        errors.add_error(exc, {"ferritin": "ferritin_ng_ml", "hla_dr": "hla_dr"})
        return Classified()
