"""MedDRA coding: a loader for the official ASCII release and a tiny built-in demo term set.

The release files are ``$``-delimited, one record per line, in the MSSO layout:
``soc.asc`` (soc_code, soc_name, soc_abbrev, ...), ``pt.asc`` (pt_code, pt_name, null, pt_soc_code, ...),
``llt.asc`` (llt_code, llt_name, pt_code, ..., llt_currency at field 9) and ``mdhier.asc`` (pt_code,
hlt_code, hlgt_code, soc_code, pt_name, hlt_name, hlgt_name, soc_name, soc_abbrev, null, pt_soc_code,
primary_soc_fg). A PT is coded to its *primary* SOC (``primary_soc_fg = Y`` in ``mdhier.asc``, else
``pt_soc_code`` of ``pt.asc``). Terms are found by PT or LLT code or name, case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from immunosep.errors import ImmunoSepError

RELEASE_FILES = ("soc.asc", "pt.asc", "llt.asc", "mdhier.asc")


@dataclass(frozen=True)
class CodedTerm:
    pt_code: str
    pt_name: str
    soc_code: str
    soc_name: str


@dataclass(frozen=True)
class MedDRA:
    """A MedDRA dictionary reduced to what AE coding needs: SOCs, PTs with primary SOC, LLTs."""

    version: str
    socs: dict[str, str]
    pts: dict[str, tuple[str, str]]
    llts: dict[str, tuple[str, str]]

    def code(self, term: str) -> CodedTerm:
        """Code a verbatim PT or LLT (name or code) to PT and primary SOC."""
        key = term.strip().casefold()
        pt_code = None
        if key in self.pts:
            pt_code = key
        elif key in self.llts:
            pt_code = self.llts[key][1]
        else:
            by_name = self._names()
            pt_code = by_name.get(key)
        if pt_code is None or pt_code not in self.pts:
            raise ImmunoSepError(
                f"{term!r} is not a MedDRA PT or LLT in dictionary {self.version}; use the preferred term",
                field="term",
            )
        pt_name, soc_code = self.pts[pt_code]
        return CodedTerm(pt_code, pt_name, soc_code, self.socs[soc_code])

    def _names(self) -> dict[str, str]:
        names = {name.casefold(): pt for name, pt in self.llts.values()}
        names.update({name.casefold(): code for code, (name, _soc) in self.pts.items()})
        return names


def _records(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\r\n").split("$") for line in fh if line.strip()]


def load_meddra(directory: str | Path, version: str | None = None) -> MedDRA:
    """Read ``soc.asc``, ``pt.asc``, ``llt.asc`` and ``mdhier.asc`` from a MedDRA ASCII release folder."""
    d = Path(directory)
    missing = [f for f in RELEASE_FILES if not (d / f).is_file()]
    if missing:
        raise ImmunoSepError(f"{d} is not a MedDRA ASCII release: missing {', '.join(missing)}")
    try:
        socs = {r[0]: r[1] for r in _records(d / "soc.asc")}
        pt_rows = _records(d / "pt.asc")
        primary = {r[0]: r[3] for r in _records(d / "mdhier.asc") if len(r) > 11 and r[11] == "Y"}
        pts = {r[0]: (r[1], primary.get(r[0], r[3])) for r in pt_rows}
        llts = {r[0]: (r[1], r[2]) for r in _records(d / "llt.asc") if len(r) <= 9 or r[9] in ("Y", "")}
    except IndexError:
        raise ImmunoSepError(
            f"{d}: a record has too few $-separated fields; is this a MedDRA release?"
        ) from None
    unknown = sorted({soc for _n, soc in pts.values() if soc not in socs})
    if unknown:
        raise ImmunoSepError(f"{d}: PTs refer to SOCs not in soc.asc: {unknown[:5]}")
    return MedDRA(version or d.name, socs, pts, llts)


@lru_cache(maxsize=1)
def demo_meddra() -> MedDRA:
    """The built-in demo term set (the SAE terms of the ImmunoSep report's Table 3)."""
    path = Path(str(resources.files("immunosep.conduct").joinpath("meddra_demo")))
    return load_meddra(path, version="demo")
