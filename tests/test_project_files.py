"""The project's metadata files agree with pyproject.toml and the package (version, licence, typing marker)."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_citation_names_the_version_and_licence_of_pyproject():
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf"^version: {re.escape(PYPROJECT['project']['version'])}$", cff, re.M)
    assert re.search(rf"^license: {re.escape(PYPROJECT['project']['license']['text'])}$", cff, re.M)


def test_licence_file_is_the_declared_apache_2_text():
    assert PYPROJECT["project"]["license"]["text"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_package_is_marked_typed():
    assert resources.files("immunosep").joinpath("py.typed").is_file()


def test_changelog_has_an_entry_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert f"## [{PYPROJECT['project']['version']}]" in changelog
