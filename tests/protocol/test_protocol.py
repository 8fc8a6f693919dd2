"""The bundled protocol validates and carries the published ImmunoSep numbers; bad files get clear errors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immunosep.cli import app
from immunosep.errors import ImmunoSepError
from immunosep.protocol import bundled_protocol_path, default_protocol, load_protocol, parse_protocol
from immunosep.protocol.loader import merge_tables, protocol_data, resolved_protocol_text

runner = CliRunner()


@pytest.mark.requirement("PROT-01")
def test_bundled_protocol_has_published_numbers() -> None:
    p = default_protocol()
    assert p.classification.mals_ferritin_above == 4420
    assert p.classification.immunoparalysis_hla_dr_below == 5000
    assert p.endpoints.primary.min_decrease == 1.4
    assert p.endpoints.primary.death_score == 24
    assert (p.endpoints.primary.window_first_day, p.endpoints.primary.window_last_day) == (2, 9)
    assert p.biospecimens.days == [1, 2, 4, 7, 15, 21, 28]
    assert p.enrolled_strata == ["mals", "immunoparalysis"]
    iv, sc = p.regimen_for("mals", "precision")
    assert (iv.route, iv.drug, iv.dose, iv.unit, iv.interval_hours) == ("iv", "anakinra", 200, "mg", 8)
    assert sc.dummy
    iv, sc = p.regimen_for("immunoparalysis", "precision")
    assert iv.dummy and (sc.drug, sc.dose, sc.unit, sc.interval_hours) == (
        "interferon gamma-1b",
        100,
        "ug",
        48,
    )
    assert all(
        i.dummy for i in p.regimen_for("mals", "placebo") + p.regimen_for("immunoparalysis", "placebo")
    )


def _modified(**changes: object) -> str:
    data = tomllib.loads(bundled_protocol_path().read_text())
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    import io

    # minimal TOML writer for the tests: round-trip through json-compatible structure
    return _dump_toml(data, io.StringIO())


def _dump_toml(data: dict, buf) -> str:  # type: ignore[no-untyped-def]
    def val(v: object) -> str:
        return json.dumps(v)

    def table(prefix: str, d: dict) -> None:
        scalars = {
            k: v
            for k, v in d.items()
            if not isinstance(v, dict | list) or (isinstance(v, list) and not (v and isinstance(v[0], dict)))
        }
        if prefix:
            buf.write(f"[{prefix}]\n")
        for k, v in scalars.items():
            buf.write(f"{k} = {val(v)}\n")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    buf.write(f"[[{prefix + '.' if prefix else ''}{k}]]\n")
                    for ik, iv in item.items():
                        buf.write(f"{ik} = {val(iv)}\n")

    table("", data)
    return buf.getvalue()


def test_round_trip_of_the_test_writer_is_valid() -> None:
    assert parse_protocol(_modified()) == default_protocol()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"classification__mals_ferritin_above": -1}, "classification.mals_ferritin_above"),
        ({"randomization__block_sizes": [3]}, "block size 3"),
        ({"endpoints__primary__window_first_day": 1}, "baseline_day < window_first_day"),
        ({"biospecimens__days": [2, 1]}, "strictly increasing"),
        ({"randomization__design": "adaptive"}, "[randomization.adaptive] table"),
        ({"randomization__design": "minimisation"}, "randomization.design"),
        ({"randomization__adaptive": {"control_arm": "sham"}}, "control_arm 'sham'"),
        ({"randomization__adaptive": {"control_arm": "placebo", "prior": [0, 1]}}, "two positive numbers"),
    ],
)
@pytest.mark.requirement("PROT-01")
def test_bad_protocol_is_rejected_with_the_field(change: dict, needle: str) -> None:
    with pytest.raises(ImmunoSepError, match="not a valid protocol") as info:
        parse_protocol(_modified(**change))
    assert needle in str(info.value)


@pytest.mark.requirement("PROT-01", "BLIND-02")
def test_unblinding_regimen_is_rejected() -> None:
    data = tomllib.loads(bundled_protocol_path().read_text())
    for item in data["regimen"]:
        if item["stratum"] == "mals" and item["arm"] == "precision" and item["route"] == "iv":
            item["volume_ml"] = 50.0
    import io

    with pytest.raises(ImmunoSepError, match="unblind"):
        parse_protocol(_dump_toml(data, io.StringIO()))


def test_cli_show_json_and_check(tmp_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["classification"]["mals_ferritin_above"] == 4420
    result = runner.invoke(app, ["protocol", "check", str(bundled_protocol_path())])
    assert result.exit_code == 0 and "valid protocol" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[trial]\ncode = 'x'\n")
    result = runner.invoke(app, ["protocol", "check", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ImmunoSepError)
    assert "classification" in str(result.exception)


def test_infection_labels_name_known_types_only() -> None:
    """Readable infection names live in the protocol (forms, Table 1); a label for an unknown type is refused."""
    from pydantic import ValidationError

    from immunosep.protocol.schema import Protocol

    p = default_protocol()
    assert p.eligibility.infection_label("vap") == "Ventilator-associated pneumonia"
    raw = tomllib.loads(bundled_protocol_path().read_text(encoding="utf-8"))
    raw["eligibility"]["infection_labels"]["uti"] = "Urinary tract infection"
    with pytest.raises(ValidationError, match="infection_labels names 'uti'"):
        Protocol.model_validate(raw)
    del raw["eligibility"]["infection_labels"]
    assert (
        Protocol.model_validate(raw).eligibility.infection_label("primary_bacteremia") == "primary bacteremia"
    )


EXAMPLES = bundled_protocol_path().parent / "examples"
EXAMPLE_GSD = EXAMPLES / "immunosep_gsd.toml"


@pytest.mark.requirement("GSD-07")
def test_fixed_design_is_the_default_and_the_example_is_group_sequential() -> None:
    assert default_protocol().design.type == "fixed" and default_protocol().design.sequential is None
    gsd = load_protocol(EXAMPLE_GSD)
    assert gsd.design.type == "group-sequential"
    seq = gsd.design.sequential
    assert seq is not None and seq.futility == "non-binding" and seq.sided == 1
    text = bundled_protocol_path().read_text().replace('type = "fixed"', "")
    assert parse_protocol(text).design.type == "fixed"  # a protocol without [design] is a fixed design


@pytest.mark.requirement("GSD-06", "GSD-07")
@pytest.mark.parametrize(
    ("sequential", "needle"),
    [
        ("information_rates = [0.5, 0.4, 1.0]", "increase strictly"),
        ("information_rates = [0.5, 0.9]", "exactly 1"),
        ('information_rates = [0.5, 1.0]\nalpha_spending = "hwang-shih-decani"', "alpha_gamma is needed"),
        ("information_rates = [0.5, 1.0]\nalpha_gamma = -4.0", "only for hwang-shih-decani"),
        ('information_rates = [0.5, 1.0]\nfutility = "binding"', "one-sided design"),
        ('information_rates = [0.5, 1.0]\nendpoint = "survival"', "needs hazard_ratio"),
        ("information_rates = [0.5, 1.0]\nmedian_control_days = 20.0", "together"),
        ('information_rates = [0.5, 1.0]\nalpha_spending = "haybittle"', "alpha_spending"),
    ],
)
def test_bad_sequential_design_is_rejected_with_the_field(sequential: str, needle: str) -> None:
    text = (
        bundled_protocol_path()
        .read_text()
        .replace('type = "fixed"\n', f'type = "group-sequential"\n\n[design.sequential]\n{sequential}\n')
    )
    with pytest.raises(ImmunoSepError, match="not a valid protocol") as info:
        parse_protocol(text)
    assert needle in str(info.value)


def test_group_sequential_without_its_table_is_rejected() -> None:
    text = bundled_protocol_path().read_text().replace('type = "fixed"', 'type = "group-sequential"')
    with pytest.raises(ImmunoSepError, match=r"needs a \[design.sequential\] table"):
        parse_protocol(text)


def test_the_adaptive_example_protocol_is_the_bundled_one_with_adaptive_randomization() -> None:
    adaptive = load_protocol(EXAMPLES / "immunosep_adaptive.toml")
    bundled = default_protocol()
    assert bundled.randomization.design == "block" and bundled.randomization.adaptive is None
    assert adaptive.randomization.design == "adaptive"
    assert adaptive.randomization.adaptive is not None
    assert adaptive.randomization.adaptive.control_arm in adaptive.arm_codes


# -- a protocol that extends another ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "own"),
    [("immunosep_gsd.toml", {"trial", "design"}), ("immunosep_adaptive.toml", {"randomization"})],
)
def test_each_example_is_the_bundled_protocol_outside_its_own_tables(name: str, own: set[str]) -> None:
    """The examples extend the bundled protocol: resolved, they equal it but for the tables they give."""
    path = EXAMPLES / name
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data.pop("extends") == "immunosep" and set(data) == own
    resolved, bundled = (
        protocol_data(path),
        tomllib.loads(bundled_protocol_path().read_text(encoding="utf-8")),
    )
    assert {k: v for k, v in resolved.items() if k not in own} == {
        k: v for k, v in bundled.items() if k not in own
    }
    example, base = load_protocol(path), default_protocol()
    assert example.model_copy(update={t: getattr(base, t) for t in own}) == base
    if "trial" in own:  # a table merged key by key: only the version differs
        assert example.trial.model_copy(update={"version": base.trial.version}) == base.trial


def test_extends_deep_merges_tables_and_replaces_arrays_whole(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('extends = "immunosep"\n[endpoints.primary]\nmin_decrease = 2.0\n')
    (tmp_path / "child.toml").write_text(
        'extends = "base.toml"\n[biospecimens]\ndays = [1, 7]\n[sample_size]\ntotal_planned = 300\n'
    )
    child, bundled = load_protocol(tmp_path / "child.toml"), default_protocol()
    assert child.endpoints.primary.min_decrease == 2.0  # from the base, two levels down
    assert child.endpoints.primary.death_score == bundled.endpoints.primary.death_score  # the rest kept
    assert child.biospecimens.days == [1, 7]  # an array is replaced whole
    assert child.sample_size.total_planned == 300 and child.sample_size.power == bundled.sample_size.power
    assert merge_tables({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}


def test_extends_refuses_an_unknown_base_and_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "orphan.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ImmunoSepError, match=r"extends 'missing\.toml', but there is no protocol file"):
        load_protocol(tmp_path / "orphan.toml")
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ImmunoSepError, match="extend each other in a cycle"):
        load_protocol(tmp_path / "a.toml")
    (tmp_path / "self.toml").write_text('extends = "self.toml"\n')
    with pytest.raises(ImmunoSepError, match="cycle"):
        load_protocol(tmp_path / "self.toml")
    with pytest.raises(ImmunoSepError, match="extends names the base protocol"):
        parse_protocol("extends = 3\n")
    with pytest.raises(ImmunoSepError, match="only a protocol file can"):
        parse_protocol('extends = "other.toml"\n')
    with pytest.raises(ImmunoSepError, match="not a valid protocol"):  # the schema checks the resolved whole
        parse_protocol('extends = "immunosep"\n[sample_size]\npower = 2.0\n')


def test_a_trial_stores_the_resolved_protocol_and_its_hash(tmp_path: Path) -> None:
    """What ``db init`` stores is self-contained: the resolved protocol, parsed without its base."""
    path = EXAMPLES / "immunosep_gsd.toml"
    text = resolved_protocol_text(path)
    assert "extends" not in tomllib.loads(text) and parse_protocol(text) == load_protocol(path)
    bundled = (
        bundled_protocol_path()
    )  # a file that extends nothing is stored as written (same hash as before)
    assert resolved_protocol_text(bundled) == bundled.read_text(encoding="utf-8")


def test_cli_show_says_the_randomization_design() -> None:
    example = bundled_protocol_path().parent / "examples" / "immunosep_adaptive.toml"
    adaptive = runner.invoke(app, ["protocol", "show", "--protocol", str(example)]).output
    assert "response-adaptive" in adaptive and "blocks [" not in adaptive
    assert "blocks [2, 4, 6]" in runner.invoke(app, ["protocol", "show"]).output
