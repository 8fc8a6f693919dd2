"""From a trial database (or raw frames) to datasets, results.json and the reports, in one call.

It runs the analysis and then the report, so it sits above both and below the commands that call it
(docs/architecture.md): ``analysis`` and ``report`` never import it.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from typing import Protocol as Interface

from immunosep.analysis.datasets import derive_datasets
from immunosep.analysis.extract import extract_raw_trial
from immunosep.analysis.interim import analyse_group_sequential
from immunosep.analysis.raw import RawTrial
from immunosep.analysis.sap import jsonable, run_sap
from immunosep.analysis.writers import write_datasets
from immunosep.conduct.access import Actor
from immunosep.conduct.define_xml import Document
from immunosep.conduct.interim_looks import InterimLookView, list_looks, record_look
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.report.html import software_versions, write_reports
from immunosep.store.db import make_engine, session_scope

Progress = Callable[[str], None]


class LookHistory(Interface):
    """Where the interim looks of a group-sequential trial are kept (the trial database)."""

    def history(self) -> list[InterimLookView]:
        """The looks recorded so far, in order."""

    def record(self, look: dict[str, Any]) -> tuple[InterimLookView, bool]:
        """Record a look (the same data cut: the stored look, not new)."""


class DatabaseLooks:
    """The history of looks in the trial database, through ``conduct.interim_looks`` (one transaction a call).

    ``actor`` None is the command line with database access, recorded under ``run_by`` (the login name).
    """

    def __init__(self, db_url: str, actor: Actor | None = None, run_by: str | None = None) -> None:
        self.db_url = db_url
        self.actor = actor
        self.run_by = run_by if run_by is not None else f"command line ({_login()})"

    def history(self) -> list[InterimLookView]:
        """The recorded looks (``conduct.interim_looks.list_looks``)."""
        engine = make_engine(self.db_url)
        try:
            with session_scope(engine) as s:
                return list_looks(s, self.actor)
        finally:
            engine.dispose()

    def record(self, look: dict[str, Any]) -> tuple[InterimLookView, bool]:
        """Record the look (``conduct.interim_looks.record_look``)."""
        engine = make_engine(self.db_url)
        try:
            with session_scope(engine) as s:
                return record_look(s, self.actor, look, run_by=self.run_by)
        finally:
            engine.dispose()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown user"


def analyse_raw(
    raw: RawTrial,
    protocol: Protocol,
    out_dir: Path,
    *,
    interim: bool = False,
    pdf: bool = False,
    progress: Progress | None = None,
    formats: tuple[str, ...] = ("csv", "parquet", "xpt"),
    looks: LookHistory | None = None,
) -> dict[str, Any]:
    """Derive the datasets, run the plan, write ``datasets/``, ``results.json`` and the reports into ``out_dir``.

    A group-sequential protocol adds its look; with ``looks`` (the trial's history of looks) the earlier looks
    count at their observed fractions, an interim look is recorded there, and the reports list the history.
    Returns a summary: the paths written and the headline numbers.
    """

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    if not raw.locked and not interim:
        raise ImmunoSepError(
            f"trial {raw.trial_code!r} is not locked: lock it first (the data manager's lock), or pass --interim "
            "for an interim (DSMB) analysis of unlocked data"
        )
    # --interim on a locked trial changes nothing: the data are final, the report says so.
    interim = interim and not raw.locked
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step("deriving analysis datasets")
    ds = derive_datasets(raw, protocol)
    step("running the statistical analysis plan")
    results = run_sap(ds, protocol, progress=lambda key: step(f"analysis: {key}"))
    results["interim"] = interim
    history = looks.history() if looks is not None and protocol.design.type == "group-sequential" else None
    group_sequential = analyse_group_sequential(ds, protocol, history)
    if group_sequential is not None:  # a group-sequential protocol: the look, by arm (results.json is closed)
        if looks is not None and history is not None:
            if interim and group_sequential.get("look") is not None:
                step("recording the interim look")
                stored, new = looks.record(jsonable(group_sequential))
                group_sequential["recorded"] = {"new": new, **stored.as_dict()}
                history = looks.history()
            group_sequential["history"] = [v.as_dict() for v in history]
        results["group_sequential"] = jsonable(group_sequential)
    results["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["software"] = software_versions()
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2, allow_nan=False), encoding="utf-8")
    step("writing the reports")
    reports = write_reports(ds, results, protocol, out_dir, interim=interim, pdf=pdf)
    step("writing datasets")
    # after the reports, so that define.xml can name the statistical report as a supplemental document
    documents = tuple(
        Document(f"LF.{name.upper()}", f"../{path.name}", f"Statistical report ({path.suffix[1:].upper()})")
        for name, path in reports.items()
        if name in ("report", "report_pdf")
    )
    dataset_paths = write_datasets(ds.as_dict(), out_dir / "datasets", protocol, formats, documents=documents)
    primary = results["binary_endpoints"]["primary"]
    return {
        "out_dir": str(out_dir),
        "results": str(results_path),
        "reports": {k: str(v) for k, v in reports.items()},
        "datasets": {name: {k: str(v) for k, v in paths.items()} for name, paths in dataset_paths.items()},
        "locked": raw.locked,
        "interim": interim,
        "analysed": results["consort"]["analysed"],
        "randomized": results["consort"]["randomized"],
        "primary": primary,
        "group_sequential": results.get("group_sequential"),
    }


def run_analysis(
    db_url: str,
    out_dir: Path,
    *,
    interim: bool = False,
    pdf: bool = False,
    progress: Progress | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Analyse the trial in ``db_url``: refuses an unlocked trial unless ``interim``; see :func:`analyse_raw`.

    A group-sequential trial's interim look is recorded in the database's history of looks (``actor``: who
    runs it; None = the command line, recorded under the login name).
    """
    if progress is not None:
        progress("reading the trial database")
    raw, protocol = extract_raw_trial(db_url)
    return analyse_raw(
        raw,
        protocol,
        Path(out_dir),
        interim=interim,
        pdf=pdf,
        progress=progress,
        looks=DatabaseLooks(db_url, actor),
    )
