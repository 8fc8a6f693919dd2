"""The validation pack: requirements, their traceability to the tests, and the IQ/OQ report.

Requirements live in ``validation/requirements/<area>.toml`` (``[[requirement]]`` with ``id``, ``text``,
``clauses``). A test names the requirements it verifies with ``@pytest.mark.requirement("ID", ...)``. This
module is also a pytest plugin (``-p validation.pack``): it copies each test's requirement IDs into the
test's ``user_properties`` (so they travel with the report from xdist workers, and into the JUnit XML) and,
with ``--requirement-results=FILE``, writes every test's IDs and outcome as JSON.

Commands (``python -m validation.pack ...``, from the repository root):

- ``check``: collect the tests only (no test runs) and fail when a requirement has no test or a marker names
  an unknown ID. Quick; ``tests/test_validation_pack.py`` runs it in ``make test``.
- ``report --out DIR``: installation checks (IQ: the package and every module import, the migrations reach
  the head revision, the protocol file's digest), then the test suite with JUnit XML and the JSON results
  (OQ), then ``DIR/validation-report.html`` and ``.pdf``: environment, IQ, every requirement with its tests
  and result, date, signature block. Exit 1 when a requirement has no test, a marker names an unknown ID,
  an IQ check fails or a test fails (``make validation-report``).

Not in the runtime package: it needs pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import importlib
import importlib.metadata as metadata
import json
import os
import pkgutil
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_DIR = ROOT / "validation" / "requirements"
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
MARKER = "requirement"
#: The packages whose versions the report lists besides every dependency of ``immunosep``.
#: Tests listed per row of the PDF's OQ table (a row taller than a page cannot be laid out).
OQ_TESTS_PER_ROW = 12

EXTRA_PACKAGES = ("pytest", "pytest-xdist", "alembic", "reportlab")


# --- requirements -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    clauses: tuple[str, ...]
    area: str


class PackError(Exception):
    """A requirements file that is not as the pack expects (says which file and what to fix)."""


def load_requirements(directory: Path = REQUIREMENTS_DIR) -> dict[str, Requirement]:
    """Every requirement of ``directory/*.toml``, by ID; duplicate or malformed entries are refused."""
    out: dict[str, Requirement] = {}
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise PackError(f"no requirements files in {directory}")
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PackError(f"{path.name}: not TOML ({exc})") from None
        entries = data.get("requirement", [])
        if not isinstance(entries, list) or not entries:
            raise PackError(f"{path.name}: needs [[requirement]] tables")
        for n, entry in enumerate(entries, 1):
            rid, text, clauses = entry.get("id"), entry.get("text"), entry.get("clauses")
            where = f"{path.name}, requirement {n}"
            if not isinstance(rid, str) or not ID_PATTERN.match(rid):
                raise PackError(f"{where}: id {rid!r} must be upper case words joined by '-' (e.g. AUD-01)")
            if not isinstance(text, str) or not text.strip():
                raise PackError(f"{where} ({rid}): text is missing")
            if not isinstance(clauses, list) or not all(isinstance(c, str) for c in clauses):
                raise PackError(f"{where} ({rid}): clauses must be a list of strings (may be empty)")
            if set(entry) - {"id", "text", "clauses"}:
                raise PackError(
                    f"{where} ({rid}): unknown keys {sorted(set(entry) - {'id', 'text', 'clauses'})}"
                )
            if rid in out:
                raise PackError(f"{where}: id {rid} is also in {out[rid].area}.toml")
            out[rid] = Requirement(rid, text.strip(), tuple(clauses), path.stem)
    return out


# --- the pytest plugin ----------------------------------------------------------------------------------


def _ids_of(item: Any) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        for arg in mark.args:
            if arg not in ids:
                ids.append(str(arg))
    return ids


def pytest_addoption(parser: Any) -> None:
    parser.addoption(
        "--requirement-results",
        default=None,
        help="write every test's requirement IDs and outcome as JSON to this file (validation pack)",
    )


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    for item in items:
        ids = _ids_of(item)
        if ids:
            item.user_properties.append((MARKER, ",".join(ids)))
    config._requirement_tests = {item.nodeid: _ids_of(item) for item in items}


def pytest_runtest_logreport(report: Any) -> None:
    results: dict[str, dict[str, Any]] = _RESULTS
    entry = results.setdefault(report.nodeid, {"ids": [], "outcome": "passed"})
    for key, value in report.user_properties:
        if key == MARKER:
            entry["ids"] = value.split(",")
    if report.failed:
        entry["outcome"] = "failed"
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "skipped"


_RESULTS: dict[str, dict[str, Any]] = {}


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = session.config.getoption("--requirement-results")
    if not path:
        return
    if session.config.getoption("collectonly", False):
        tests = getattr(session.config, "_requirement_tests", {})
        data = {nodeid: {"ids": ids, "outcome": "collected"} for nodeid, ids in tests.items()}
    else:
        data = _RESULTS
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes the file
        return
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")


# --- traceability ---------------------------------------------------------------------------------------


@dataclass
class Trace:
    """Requirements against tests: which tests verify each, with their outcome."""

    requirements: dict[str, Requirement]
    tests: dict[str, dict[str, Any]]
    by_requirement: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_requirement = {rid: [] for rid in self.requirements}
        for nodeid, entry in sorted(self.tests.items()):
            for rid in entry.get("ids", []):
                if rid in self.by_requirement:
                    self.by_requirement[rid].append((nodeid, entry.get("outcome", "")))
                else:
                    self.unknown.setdefault(rid, []).append(nodeid)

    @property
    def untested(self) -> list[str]:
        return [rid for rid, tests in self.by_requirement.items() if not tests]

    def status(self, rid: str) -> str:
        """``pass`` (no test failed, one passed), ``fail``, ``not run`` (all skipped) or ``no test``."""
        outcomes = [o for _, o in self.by_requirement[rid]]
        if not outcomes:
            return "no test"
        if "failed" in outcomes:
            return "fail"
        if "passed" in outcomes:
            return "pass"
        if "collected" in outcomes:
            return "collected"
        return "not run"

    def problems(self) -> list[str]:
        out = [f"requirement {rid} ({self.requirements[rid].area}) has no test" for rid in self.untested]
        out += [
            f"marker names unknown requirement {rid}: {', '.join(tests[:3])}"
            for rid, tests in self.unknown.items()
        ]
        return out


def collect(paths: Sequence[str] = ("tests",), extra: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Every test's requirement IDs, by a collect-only pytest run in a subprocess (no test runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "collected.json"
        cmd = [
            sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "validation.pack",
            "-p", "no:cacheprovider", "-n", "0", f"--requirement-results={out}", *extra, *paths,
        ]  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 or not out.exists():
            raise PackError(f"collecting the tests failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        data: dict[str, dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
        return data


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


# --- IQ: installation checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def installation_checks() -> list[Check]:
    """Package and module imports, migrations at head on a fresh database, the protocol file's digest."""
    checks: list[Check] = []
    try:
        import immunosep

        failed = []
        modules = 0
        for mod in pkgutil.walk_packages(immunosep.__path__, "immunosep."):
            if ".migrations" in mod.name:
                continue
            modules += 1
            try:
                importlib.import_module(mod.name)
            except Exception as exc:
                failed.append(f"{mod.name}: {exc}")
        checks.append(
            Check(
                "package imports",
                not failed,
                f"immunosep {immunosep.__version__} from {Path(immunosep.__file__).parent}; "
                f"{modules} modules imported" + (f"; failed: {'; '.join(failed)}" if failed else ""),
            )
        )
    except Exception as exc:
        checks.append(Check("package imports", False, f"import immunosep failed: {exc}"))
        return checks
    try:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine

        from immunosep.store.db import alembic_config, upgrade_db

        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'iq.db'}"
            upgrade_db(url)
            heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
            engine = create_engine(url)
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_heads()
            engine.dispose()
        checks.append(
            Check(
                "migrations at head",
                len(heads) == 1 and tuple(current) == tuple(heads),
                f"a fresh SQLite database upgraded to {', '.join(current)}; head revision(s) {', '.join(heads)}",
            )
        )
    except Exception as exc:
        checks.append(Check("migrations at head", False, f"{type(exc).__name__}: {exc}"))
    try:
        from immunosep.protocol.loader import load_protocol

        path = Path(immunosep.__file__).parent / "protocol" / "immunosep.toml"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        protocol = load_protocol()
        checks.append(
            Check(
                "protocol file",
                True,
                f"{path.name} SHA-256 {digest}; validated (trial {protocol.trial.code}, version {protocol.trial.version})",
            )
        )
    except Exception as exc:
        checks.append(Check("protocol file", False, f"{type(exc).__name__}: {exc}"))
    return checks


# --- environment ----------------------------------------------------------------------------------------


def environment() -> list[tuple[str, str]]:
    """OS, Python, package versions, database versions and the git commit, as (name, value) rows."""
    rows = [
        ("operating system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("platform", platform.platform()),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]} ({sys.executable})"),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", _postgres_version()),
        ("git commit", _git_commit()),
    ]
    names = ["immunosep"]
    try:
        for req in metadata.requires("immunosep") or []:
            if "extra ==" in req:
                continue
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
            if name and name not in names:
                names.append(name)
    except metadata.PackageNotFoundError:
        pass
    names += [n for n in EXTRA_PACKAGES if n not in names]
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "not installed"
        rows.append((f"package {name}", version))
    return rows


def _postgres_version() -> str:
    url = os.environ.get("IMMUNOSEP_TEST_PG_URL")
    if not url:
        return "not configured (IMMUNOSEP_TEST_PG_URL unset: PostgreSQL tests skipped)"
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            version = str(conn.execute(text("SELECT version()")).scalar())
        engine.dispose()
        return version
    except Exception as exc:
        return f"unreachable at {url.split('@')[-1]}: {type(exc).__name__}"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


# --- the report -----------------------------------------------------------------------------------------


@dataclass
class Report:
    made_at: dt.datetime
    env: list[tuple[str, str]]
    iq: list[Check]
    trace: Trace
    suite: dict[str, int]
    junit: str

    @property
    def problems(self) -> list[str]:
        out = self.trace.problems()
        out += [f"IQ check failed: {c.name}: {c.detail}" for c in self.iq if not c.ok]
        out += [
            f"requirement {rid} failed" for rid in self.trace.requirements if self.trace.status(rid) == "fail"
        ]
        if self.suite.get("failed"):
            out.append(f"{self.suite['failed']} test(s) of the suite failed")
        return out


def suite_counts(tests: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
    for entry in tests.values():
        outcome = str(entry.get("outcome", ""))
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _e(text: object) -> str:
    return html.escape(str(text))


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    trace = report.trace
    verdict = "PASS" if not report.problems else "FAIL"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>ImmunoSep validation report (IQ/OQ)</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;width:100%}",
        "td,th{border:1px solid #bbb;padding:3px 6px;vertical-align:top;font-size:13px;text-align:left}",
        "th{background:#eef}.pass{color:#075e07;font-weight:bold}.fail{color:#a00;font-weight:bold}",
        ".sig td{height:3em}code{font-size:12px}</style></head><body>",
        "<h1>ImmunoSep validation report: installation and operational qualification</h1>",
        f"<p>Made {_e(report.made_at.strftime('%Y-%m-%d %H:%M:%S'))} UTC. Verdict: "
        f"<span class='{verdict.lower()}' data-testid='verdict'>{verdict}</span>. "
        f"{len(trace.requirements)} requirements; tests: "
        + ", ".join(f"{v} {k}" for k, v in sorted(report.suite.items()) if v)
        + (f"; JUnit XML: <code>{_e(report.junit)}</code>" if report.junit else "")
        + ".</p>",
    ]
    if report.problems:
        parts.append(
            "<h2>Problems</h2><ul>" + "".join(f"<li>{_e(p)}</li>" for p in report.problems) + "</ul>"
        )
    parts.append("<h2>Environment</h2><table>")
    parts += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in report.env]
    parts.append(
        "</table><h2>Installation qualification (IQ)</h2><table><tr><th>check</th><th>result</th><th>detail</th></tr>"
    )
    for c in report.iq:
        parts.append(
            f"<tr><td>{_e(c.name)}</td><td class='{'pass' if c.ok else 'fail'}'>{'pass' if c.ok else 'FAIL'}</td>"
            f"<td>{_e(c.detail)}</td></tr>"
        )
    parts.append(
        "</table><h2>Operational qualification (OQ): requirements and their tests</h2>"
        "<table><tr><th>requirement</th><th>text</th><th>clauses</th><th>tests</th><th>result</th></tr>"
    )
    for rid, req in trace.requirements.items():
        status = trace.status(rid)
        tests = (
            "<br>".join(f"<code>{_e(n)}</code> {_e(o)}" for n, o in trace.by_requirement[rid])
            or "<b>none</b>"
        )
        css = "pass" if status == "pass" else "fail" if status in ("fail", "no test") else ""
        parts.append(
            f"<tr id='{_e(rid)}'><td>{_e(rid)}<br><small>{_e(req.area)}</small></td><td>{_e(req.text)}</td>"
            f"<td>{_e('; '.join(req.clauses))}</td><td>{tests}</td><td class='{css}'>{_e(status)}</td></tr>"
        )
    parts.append(
        "</table><h2>Approval</h2><table class='sig'><tr><th>role</th><th>printed name</th><th>signature</th>"
        "<th>date</th></tr>"
        + "".join(
            f"<tr><td>{r}</td><td></td><td></td><td></td></tr>"
            for r in ("Executed by", "Reviewed by (quality assurance)", "Approved by (system owner)")
        )
        + "</table></body></html>"
    )
    return "\n".join(parts)


def render_pdf(report: Report, path: Path) -> None:
    """The same content as PDF (reportlab)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    styles = getSampleStyleSheet()
    cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=7, leading=8.5)
    bold = ParagraphStyle("bold", parent=cell, fontName="Helvetica-Bold")

    def p(text: object, style: ParagraphStyle = cell) -> Paragraph:
        return Paragraph(_e(text), style)

    def table(rows: list[list[Any]], widths: Iterable[float]) -> LongTable:
        t = LongTable(rows, colWidths=[w * mm for w in widths], repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return t

    verdict = "PASS" if not report.problems else "FAIL"
    story: list[Any] = [
        Paragraph("ImmunoSep validation report: installation and operational qualification", styles["Title"]),
        p(f"Made {report.made_at:%Y-%m-%d %H:%M:%S} UTC. Verdict: {verdict}. {len(report.trace.requirements)} "
          "requirements; tests: " + ", ".join(f"{v} {k}" for k, v in sorted(report.suite.items()) if v) + ".",
          styles["BodyText"]),
    ]  # fmt: skip
    if report.problems:
        story += [Paragraph("Problems", styles["Heading2"])] + [
            p(x, styles["BodyText"]) for x in report.problems
        ]
    story += [Paragraph("Environment", styles["Heading2"])]
    story.append(
        table([[p("item", bold), p("value", bold)]] + [[p(k), p(v)] for k, v in report.env], (60, 217))
    )
    story += [Paragraph("Installation qualification (IQ)", styles["Heading2"])]
    iq_rows = [[p("check", bold), p("result", bold), p("detail", bold)]]
    iq_rows += [[p(c.name), p("pass" if c.ok else "FAIL"), p(c.detail)] for c in report.iq]
    story.append(table(iq_rows, (45, 20, 212)))
    story += [Paragraph("Operational qualification (OQ)", styles["Heading2"])]
    oq_rows = [[p(h, bold) for h in ("requirement", "text", "clauses", "tests", "result")]]
    for rid, req in report.trace.requirements.items():
        tests = [f"{n} {o}" for n, o in report.trace.by_requirement[rid]] or ["none"]
        # a row must fit on a page (reportlab does not split a row): a long list of tests continues on
        # rows of its own
        for start in range(0, len(tests), OQ_TESTS_PER_ROW):
            chunk = Paragraph("<br/>".join(_e(t) for t in tests[start : start + OQ_TESTS_PER_ROW]), cell)
            first = start == 0
            oq_rows.append(
                [
                    p(f"{rid} ({req.area})" if first else f"{rid} (continued)"),
                    p(req.text if first else ""),
                    p("; ".join(req.clauses) if first else ""),
                    chunk,
                    p(report.trace.status(rid) if first else ""),
                ]
            )
    story.append(table(oq_rows, (28, 80, 32, 117, 20)))
    story += [Spacer(1, 6 * mm), Paragraph("Approval", styles["Heading2"])]
    sig = [[p(h, bold) for h in ("role", "printed name", "signature", "date")]]
    sig += [
        [p(r), "", "", ""]
        for r in ("Executed by", "Reviewed by (quality assurance)", "Approved by (system owner)")
    ]
    sig_table = table(sig, (70, 70, 90, 47))
    sig_table.setStyle(
        TableStyle(
            [("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white]), ("BOTTOMPADDING", (0, 1), (-1, -1), 14)]
        )
    )
    story.append(sig_table)
    doc = SimpleDocTemplate(
        str(path), pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm, topMargin=10 * mm,
        bottomMargin=10 * mm, title="ImmunoSep validation report",
    )  # fmt: skip
    doc.build(story)


def run_suite(out: Path, pytest_args: Sequence[str]) -> tuple[dict[str, dict[str, Any]], Path]:
    """Run the test suite with the plugin; the JSON results and the JUnit XML path."""
    results, junit = out / "test-results.json", out / "junit.xml"
    cmd = [
        sys.executable, "-m", "pytest", "-p", "validation.pack", "-p", "no:cacheprovider",
        f"--requirement-results={results}", f"--junitxml={junit}", "-q", *pytest_args,
    ]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=_env(), check=False)  # noqa: S603
    if not results.exists():
        raise PackError(f"the test run wrote no results ({results}); see its output above")
    data: dict[str, dict[str, Any]] = json.loads(results.read_text(encoding="utf-8"))
    return data, junit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation.pack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="every requirement has a test and every marker a requirement (collect only)")
    rep = sub.add_parser("report", help="run the suite and write the IQ/OQ report (HTML and PDF)")
    rep.add_argument("--out", type=Path, default=ROOT / "validation-report")
    rep.add_argument(
        "pytest_args", nargs="*", help="arguments for pytest (after --), e.g. -n 2 --dist loadfile"
    )
    args = parser.parse_args(argv)
    try:
        requirements = load_requirements()
        if args.command == "check":
            trace = Trace(requirements, collect())
            for problem in trace.problems():
                print(problem, file=sys.stderr)
            covered = sum(1 for t in trace.by_requirement.values() if t)
            print(
                f"{covered} of {len(requirements)} requirements have tests; {len(trace.unknown)} unknown IDs"
            )
            return 1 if trace.problems() else 0
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        iq = installation_checks()
        tests, junit = run_suite(out, args.pytest_args or ["tests"])
        report = Report(
            made_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            env=environment(),
            iq=iq,
            trace=Trace(requirements, tests),
            suite=suite_counts(tests),
            junit=str(junit),
        )
        (out / "validation-report.html").write_text(render_html(report), encoding="utf-8")
        render_pdf(report, out / "validation-report.pdf")
        (out / "traceability.json").write_text(
            json.dumps(
                {
                    rid: {"status": report.trace.status(rid), "tests": t}
                    for rid, t in report.trace.by_requirement.items()
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        for problem in report.problems:
            print(problem, file=sys.stderr)
        print(
            f"validation report: {out / 'validation-report.html'} and .pdf ({'FAIL' if report.problems else 'PASS'})"
        )
        return 1 if report.problems else 0
    except PackError as exc:
        print(f"validation pack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
