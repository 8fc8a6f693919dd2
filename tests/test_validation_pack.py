"""The validation pack: every requirement has a test, every marker a requirement; the report's parts.

The first test is the quick traceability check of ``make test`` (the session's own collection when it is the
whole suite, else a collect-only pytest run in a subprocess; no test runs); the rest check the pack's own logic on small hand-made inputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.by_path import load_module

ROOT = Path(__file__).resolve().parent.parent


pack = load_module("validation_pack", ROOT / "validation" / "pack.py")


def _this_sessions_collection(request: pytest.FixtureRequest) -> dict[str, dict[str, object]] | None:
    """The running session's own collection when it holds the whole suite (``make test``), else ``None``.

    Every xdist worker collects every test, so the suite need not be collected a second time in a subprocess
    (about 25 s on 2 cores). A run of part of the suite (paths, ``-k``, ``-m``) falls back to the subprocess.
    """
    option = request.config.option
    if getattr(option, "keyword", "") or getattr(option, "markexpr", "") or getattr(option, "deselect", None):
        return None
    items = request.session.items
    collected = {Path(str(item.path)).resolve() for item in items}
    on_disk = {path.resolve() for path in (ROOT / "tests").rglob("test_*.py")}
    if not on_disk <= collected:
        return None
    return {item.nodeid: {"ids": pack._ids_of(item), "outcome": "collected"} for item in items}


def test_every_requirement_has_a_marked_test_and_every_marker_a_requirement(
    request: pytest.FixtureRequest,
) -> None:
    requirements = pack.load_requirements()
    trace = pack.Trace(requirements, _this_sessions_collection(request) or pack.collect())
    assert trace.problems() == []
    # The areas this pack was written for are all there.
    areas = {r.area for r in requirements.values()}
    assert {"protocol", "blinding", "randomization", "audit", "audit_reports", "erasure", "access"} <= areas
    assert {"statistics", "exports"} <= areas


def _write(tmp_path: Path, name: str, body: str) -> Path:
    directory = tmp_path / "requirements"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(body, encoding="utf-8")
    return directory


def test_requirements_files_are_checked_for_shape_and_duplicates(tmp_path: Path) -> None:
    good = '[[requirement]]\nid = "X-01"\ntext = "does x"\nclauses = ["Part 11 §11.10(e)"]\n'
    directory = _write(tmp_path, "a.toml", good)
    assert list(pack.load_requirements(directory)) == ["X-01"]
    _write(tmp_path, "b.toml", good)
    with pytest.raises(pack.PackError, match=r"also in a\.toml"):
        pack.load_requirements(directory)
    for n, (body, message) in enumerate(
        (
            ('[[requirement]]\nid = "x 1"\ntext = "t"\nclauses = []\n', "upper case"),
            ('[[requirement]]\nid = "X-2"\ntext = ""\nclauses = []\n', "text is missing"),
            ('[[requirement]]\nid = "X-3"\ntext = "t"\n', "clauses"),
            ('[[requirement]]\nid = "X-4"\ntext = "t"\nclauses = []\nowner = "me"\n', "unknown keys"),
            ("id = 1\n", "needs"),
        )
    ):
        directory = _write(tmp_path / str(n), "c.toml", body)
        with pytest.raises(pack.PackError, match=message):
            pack.load_requirements(directory)


def _requirements() -> dict[str, object]:
    return {
        rid: pack.Requirement(rid, f"text of {rid}", ("Annex 11 §9",), "area")
        for rid in ("A-01", "A-02", "A-03")
    }


def test_the_trace_names_untested_requirements_unknown_ids_and_each_status() -> None:
    tests = {
        "t.py::one": {"ids": ["A-01"], "outcome": "passed"},
        "t.py::two": {"ids": ["A-01", "A-02"], "outcome": "failed"},
        "t.py::three": {"ids": ["B-09"], "outcome": "passed"},
        "t.py::four": {"ids": [], "outcome": "passed"},
    }
    trace = pack.Trace(_requirements(), tests)
    assert trace.untested == ["A-03"]
    assert trace.unknown == {"B-09": ["t.py::three"]}
    assert [trace.status(r) for r in ("A-01", "A-02", "A-03")] == ["fail", "fail", "no test"]
    assert trace.problems() == [
        "requirement A-03 (area) has no test",
        "marker names unknown requirement B-09: t.py::three",
    ]
    skipped = pack.Trace(_requirements(), {"t.py::s": {"ids": ["A-01"], "outcome": "skipped"}})
    assert skipped.status("A-01") == "not run"


def test_the_report_fails_on_any_problem_and_shows_every_part(tmp_path: Path) -> None:
    tests = {f"t.py::{rid}": {"ids": [rid], "outcome": "passed"} for rid in ("A-01", "A-02", "A-03")}
    iq = [pack.Check("package imports", True, "42 modules")]
    report = pack.Report(
        made_at=pack.dt.datetime(2026, 12, 7, 0, 30),
        env=[("Python", "3.11"), ("git commit", "abc")],
        iq=iq,
        trace=pack.Trace(_requirements(), tests),
        suite=pack.suite_counts(tests),
        junit="junit.xml",
    )
    assert report.problems == []
    page = pack.render_html(report)
    for needed in ("PASS", "Environment", "Installation qualification", "A-03", "t.py::A-02", "Approved by"):
        assert needed in page
    pdf = tmp_path / "r.pdf"
    pack.render_pdf(report, pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    tests["t.py::A-02"]["outcome"] = "failed"
    failing = pack.Report(report.made_at, report.env, [pack.Check("migrations at head", False, "0004 != 0005")],
                          pack.Trace(_requirements(), tests), pack.suite_counts(tests), "")  # fmt: skip
    assert failing.problems == [
        "IQ check failed: migrations at head: 0004 != 0005",
        "requirement A-02 failed",
        "1 test(s) of the suite failed",
    ]
    assert "FAIL" in pack.render_html(failing)


def test_the_installation_checks_pass_here() -> None:
    checks = {c.name: c for c in pack.installation_checks()}
    assert set(checks) == {"package imports", "migrations at head", "protocol file"}
    assert all(c.ok for c in checks.values()), [c.detail for c in checks.values() if not c.ok]
    import hashlib

    digest = hashlib.sha256((ROOT / "src/immunosep/protocol/immunosep.toml").read_bytes()).hexdigest()
    assert digest in checks["protocol file"].detail


def test_a_requirement_with_hundreds_of_tests_still_lays_out_in_the_pdf(tmp_path: Path) -> None:
    """reportlab cannot split one table row over pages: a long list of tests continues on rows of its own
    (the real suite has requirements verified by more tests than a page holds)."""
    tests = {f"tests/x/test_long_module_name.py::test_{i:03d}[postgres]": {"ids": ["A-01"], "outcome": "passed"}
             for i in range(300)}  # fmt: skip
    tests |= {
        "t.py::a2": {"ids": ["A-02"], "outcome": "passed"},
        "t.py::a3": {"ids": ["A-03"], "outcome": "passed"},
    }
    report = pack.Report(pack.dt.datetime(2026, 12, 7), [("Python", "3.11")], [], pack.Trace(_requirements(), tests),
                         pack.suite_counts(tests), "")  # fmt: skip
    pdf = tmp_path / "long.pdf"
    pack.render_pdf(report, pdf)
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "test_000" in text and "test_299" in text and "A-01 (continued)" in text
