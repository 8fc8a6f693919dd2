"""Frozen result types of the statistics engine.

Every result names the convention it follows in ``method`` (e.g. "newcombe hybrid score", "woolf logit",
"two-sided Fisher, sum of small p") so that a reader can map it onto SAS, R or SPSS (see docs/stats.md).
Confidence limits are at ``conf_level`` (0.95 unless asked otherwise); ``nan`` means "not defined"
(for example a Woolf interval with a zero cell), never "not computed by mistake".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """An effect estimate (difference, odds ratio, relative risk, hazard ratio) with its CI and P."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    p: float
    method: str
    n: int
    conf_level: float = 0.95

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval as ``(low, high)``."""
        return (self.ci_low, self.ci_high)


@dataclass(frozen=True)
class TestResult:
    """A hypothesis test: statistic, degrees of freedom (nan if none) and P."""

    name: str
    statistic: float
    df: float
    p: float
    method: str
    n: int


@dataclass(frozen=True)
class NumberNeeded:
    """Number needed to treat (benefit) or to harm, with the CI derived from the difference CI.

    ``kind`` is "NNT" when the first group does better and "NNH" when it does worse. When the CI of the
    difference excludes zero, ``ci_low``/``ci_high`` bound the same kind. When it crosses zero the CI is two
    pieces (Altman 1998, BMJ 317:1309): "NNT(benefit) ``ci_low`` to infinity to NNH(harm) ``ci_high``", and
    ``crosses_zero`` is True.
    """

    kind: str
    value: float
    ci_low: float
    ci_high: float
    crosses_zero: bool
    method: str

    @property
    def display(self) -> str:
        """Altman-style text, e.g. ``NNT 5.8 (3.7 to 14.7)``."""
        value = "infinity" if math.isinf(self.value) else f"{self.value:.1f}"
        if self.crosses_zero:
            return f"{self.kind} {value} (NNT(benefit) {self.ci_low:.1f} to infinity to NNH(harm) {self.ci_high:.1f})"
        return f"{self.kind} {value} ({self.ci_low:.1f} to {self.ci_high:.1f})"


@dataclass(frozen=True)
class TwoByTwo:
    """Comparison of two proportions ``x1/n1`` (first group) vs ``x2/n2`` (second group)."""

    x1: int
    n1: int
    x2: int
    n2: int
    difference: Estimate
    odds_ratio: Estimate
    relative_risk: Estimate
    test: TestResult
    number_needed: NumberNeeded

    @property
    def p1(self) -> float:
        """Proportion of the first group, ``x1 / n1``."""
        return self.x1 / self.n1

    @property
    def p2(self) -> float:
        """Proportion of the second group, ``x2 / n2``."""
        return self.x2 / self.n2


@dataclass(frozen=True)
class StratifiedOddsRatio:
    """Mantel-Haenszel pooled OR over strata with the MH test and the Breslow-Day homogeneity test."""

    odds_ratio: Estimate
    mh_test: TestResult
    homogeneity: TestResult
    strata: tuple[Estimate, ...]


@dataclass(frozen=True)
class SampleSize:
    """Per-group sample size for comparing two proportions, with the power it actually reaches."""

    method: str
    p1: float
    p2: float
    alpha: float
    power: float
    per_group: int
    per_group_exact: float
    total: int
    dropout: float
    total_with_dropout: int
    achieved_power: float


@dataclass(frozen=True)
class OrdinalResult:
    """Proportional-odds model: OR of a worse outcome (higher level) for group a vs group b."""

    odds_ratio: Estimate
    levels: tuple[str, ...]
    thresholds: tuple[float, ...]
    method: str


@dataclass(frozen=True)
class LogisticFit:
    """Logistic regression: one OR per term (the intercept excluded), plus model diagnostics.

    ``separation`` is True when (quasi-)complete separation was detected (fitted probabilities at 0 or 1,
    or a non-finite/huge coefficient); then ORs are not trustworthy and the result says so.
    """

    terms: tuple[Estimate, ...]
    n: int
    events: int
    log_likelihood: float
    aic: float
    converged: bool
    separation: bool
    method: str

    def term(self, name: str) -> Estimate:
        """The estimate of one term by its name."""
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True)
class StepwiseStep:
    """One step of the selection: the variable removed or entered and the LR test that decided it."""

    action: str
    variable: str
    lr_statistic: float
    df: int
    p: float


@dataclass(frozen=True)
class StepwiseResult:
    """Final model and the path that led to it."""

    fit: LogisticFit
    selected: tuple[str, ...]
    steps: tuple[StepwiseStep, ...]
    rule: str


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimate at the distinct event/censoring times, with pointwise CIs."""

    group: str
    times: tuple[float, ...]
    survival: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    at_risk: tuple[int, ...]
    method: str

    def at(self, time: float) -> float:
        """Survival probability at ``time`` (right-continuous step function)."""
        value = 1.0
        for t, s in zip(self.times, self.survival, strict=True):
            if t <= time:
                value = s
            else:
                break
        return value


@dataclass(frozen=True)
class CoxResult:
    """Cox proportional-hazards hazard ratios and the proportional-hazards check per term."""

    terms: tuple[Estimate, ...]
    ph_tests: tuple[TestResult, ...]
    n: int
    events: int
    ties: str
    method: str

    def term(self, name: str) -> Estimate:
        """The hazard ratio of one term by its name."""
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True)
class RocResult:
    """ROC AUC with its DeLong CI and the Youden-index optimal cut-off."""

    auc: Estimate
    cutoff: float
    sensitivity: float
    specificity: float
    youden: float
    direction: str
    n_cases: int
    n_controls: int


@dataclass(frozen=True)
class SubgroupResult:
    """Treatment effect (OR) per subgroup and the treatment-by-subgroup interaction test."""

    subgroups: tuple[Estimate, ...]
    interaction: TestResult
    method: str
