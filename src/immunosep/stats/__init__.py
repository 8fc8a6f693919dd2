"""Thin, tested wrappers over scipy, statsmodels and lifelines with the trial's conventions.

Pure functions (no I/O) returning frozen dataclasses that name their method; see docs/stats.md for the
mapping to SAS, R and SPSS and validation/ for the R scripts the tests compare against.
"""

from immunosep.stats.contingency import mantel_haenszel
from immunosep.stats.fisher import fisher_two_sided_p
from immunosep.stats.formatting import format_ci, format_number, format_p, format_pct
from immunosep.stats.logistic import logistic_regression, stepwise_logistic
from immunosep.stats.ordinal import proportional_odds_counts, proportional_odds_rows
from immunosep.stats.proportions import (
    compare_proportions,
    number_needed,
    odds_ratio,
    proportion_difference,
    relative_risk,
    two_by_two_test,
)
from immunosep.stats.results import (
    CoxResult,
    Estimate,
    KaplanMeier,
    LogisticFit,
    NumberNeeded,
    OrdinalResult,
    RocResult,
    SampleSize,
    StepwiseResult,
    StepwiseStep,
    StratifiedOddsRatio,
    SubgroupResult,
    TestResult,
    TwoByTwo,
)
from immunosep.stats.roc import roc_analysis
from immunosep.stats.sample_size import fisher_exact_power, normal_power, sample_size_two_proportions
from immunosep.stats.subgroups import subgroup_analysis
from immunosep.stats.survival import cox_regression, kaplan_meier, logrank

__all__ = [
    "CoxResult",
    "Estimate",
    "KaplanMeier",
    "LogisticFit",
    "NumberNeeded",
    "OrdinalResult",
    "RocResult",
    "SampleSize",
    "StepwiseResult",
    "StepwiseStep",
    "StratifiedOddsRatio",
    "SubgroupResult",
    "TestResult",
    "TwoByTwo",
    "compare_proportions",
    "cox_regression",
    "fisher_exact_power",
    "fisher_two_sided_p",
    "format_ci",
    "format_number",
    "format_p",
    "format_pct",
    "kaplan_meier",
    "logistic_regression",
    "logrank",
    "mantel_haenszel",
    "normal_power",
    "number_needed",
    "odds_ratio",
    "proportion_difference",
    "proportional_odds_counts",
    "proportional_odds_rows",
    "relative_risk",
    "roc_analysis",
    "sample_size_two_proportions",
    "stepwise_logistic",
    "subgroup_analysis",
    "two_by_two_test",
]
