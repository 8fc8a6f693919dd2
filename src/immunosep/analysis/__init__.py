"""Analysis datasets (ADSL, ADSOFA, ADTTE, ADAE) derived from a locked store, and the plan run on them.

Public face: :func:`derive_datasets`, :func:`run_sap`, :class:`RawTrial`. From a database to datasets,
results.json and the reports in one call: :func:`immunosep.pipeline.run_analysis`, above analysis and report.
"""

from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.raw import RawTrial, check_raw_trial
from immunosep.analysis.sap import RESULTS_SCHEMA_VERSION, run_sap

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "AnalysisDatasets",
    "RawTrial",
    "check_raw_trial",
    "derive_datasets",
    "run_sap",
]
