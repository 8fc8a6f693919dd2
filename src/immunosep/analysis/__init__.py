"""Analysis datasets (ADSL, ADSOFA, ADTTE, ADAE) derived from a locked store, and the plan run on them.

Public face: :func:`run_analysis` (database -> datasets, results.json, reports), :func:`analyse_raw` (the same
from raw frames), :func:`derive_datasets`, :func:`run_sap`, :class:`RawTrial`.
"""

from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.pipeline import analyse_raw, run_analysis
from immunosep.analysis.raw import RawTrial, check_raw_trial
from immunosep.analysis.sap import RESULTS_SCHEMA_VERSION, run_sap

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "AnalysisDatasets",
    "RawTrial",
    "analyse_raw",
    "check_raw_trial",
    "derive_datasets",
    "run_analysis",
    "run_sap",
]
