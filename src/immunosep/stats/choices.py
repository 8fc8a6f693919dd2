"""Names of the methods the statistics functions accept, importable without scipy or statsmodels.

The command line lists them in its help, which must not load the numerical libraries (issue 21: the
CLI's ``--help`` in under 0.3 s); the functions themselves check their argument against these tuples.
"""

from __future__ import annotations

#: ``sample_size_two_proportions(method=...)``: normal approximation, with Fleiss' continuity correction,
#: arcsine transformation, or exact Fisher power by enumeration.
SAMPLE_SIZE_METHODS = ("normal", "normal-cc", "arcsine", "fisher-exact")
