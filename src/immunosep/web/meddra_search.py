"""MedDRA term search for the adverse event form: names containing the typed text, PTs first."""

from __future__ import annotations

from immunosep.conduct.meddra import CodedTerm, MedDRA

MAX_SUGGESTIONS = 12


def search_terms(meddra: MedDRA, query: str, limit: int = MAX_SUGGESTIONS) -> list[CodedTerm]:
    """Preferred terms (with primary SOC) whose PT or LLT name contains ``query``, case-insensitively.

    A PT reached through several LLTs appears once; names starting with the query come first.
    """
    q = query.strip().casefold()
    if len(q) < 2:
        return []
    hits: dict[str, tuple[int, str]] = {}
    for code, (name, _soc) in meddra.pts.items():
        if q in name.casefold():
            hits[code] = (0 if name.casefold().startswith(q) else 1, name)
    for name, pt_code in meddra.llts.values():
        if pt_code in meddra.pts and pt_code not in hits and q in name.casefold():
            hits[pt_code] = (2, meddra.pts[pt_code][0])
    ranked = sorted(hits, key=lambda c: hits[c])[:limit]
    return [meddra.code(c) for c in ranked]
