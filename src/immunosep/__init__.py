"""ImmunoSep: biomarker-guided precision immunotherapy trials in sepsis, from bedside to publication."""

from immunosep.errors import AccessDenied, ImmunoSepError

__all__ = ["AccessDenied", "ImmunoSepError", "__version__"]
__version__ = "0.1.0"
