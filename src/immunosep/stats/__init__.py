"""Thin, tested wrappers over scipy, statsmodels and lifelines with the trial's conventions.

Pure functions (no I/O) returning frozen dataclasses that name their method; see docs/stats.md for the
mapping to SAS, R and SPSS and validation/ for the R scripts the tests compare against.
"""

from typing import TYPE_CHECKING

from immunosep._lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers; at run time each is imported on first use
    from immunosep.stats.contingency import (
        mantel_haenszel,
    )
    from immunosep.stats.fisher import (
        fisher_two_sided_p,
    )
    from immunosep.stats.formatting import (
        format_ci,
        format_number,
        format_p,
        format_pct,
    )
    from immunosep.stats.logistic import (
        logistic_regression,
        stepwise_logistic,
    )
    from immunosep.stats.ordinal import (
        proportional_odds_counts,
        proportional_odds_rows,
    )
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
    from immunosep.stats.roc import (
        roc_analysis,
    )
    from immunosep.stats.sample_size import (
        fisher_exact_power,
        normal_power,
        sample_size_two_proportions,
    )
    from immunosep.stats.subgroups import (
        subgroup_analysis,
    )
    from immunosep.stats.survival import (
        cox_regression,
        kaplan_meier,
        logrank,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "contingency": ("mantel_haenszel",),
        "fisher": ("fisher_two_sided_p",),
        "formatting": (
            "format_ci",
            "format_number",
            "format_p",
            "format_pct",
        ),
        "logistic": (
            "logistic_regression",
            "stepwise_logistic",
        ),
        "ordinal": (
            "proportional_odds_counts",
            "proportional_odds_rows",
        ),
        "proportions": (
            "compare_proportions",
            "number_needed",
            "odds_ratio",
            "proportion_difference",
            "relative_risk",
            "two_by_two_test",
        ),
        "results": (
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
        ),
        "roc": ("roc_analysis",),
        "sample_size": (
            "fisher_exact_power",
            "normal_power",
            "sample_size_two_proportions",
        ),
        "subgroups": ("subgroup_analysis",),
        "survival": (
            "cox_regression",
            "kaplan_meier",
            "logrank",
        ),
    },
)
