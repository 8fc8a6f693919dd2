"""``immunosep design``: the protocol's boundaries and sizes, as JSON and as a table (docs/design.md).

The example protocol's design is computed by rpact in validation/group_sequential.R (``protocol_example``):
3 equally spaced looks, O'Brien-Fleming alpha spending (one-sided .025), non-binding O'Brien-Fleming futility,
power .90, 40% vs 20%.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from immunosep.cli import app
from immunosep.protocol import bundled_protocol_path

runner = CliRunner()
EXAMPLE_GSD = bundled_protocol_path().parent / "examples" / "immunosep_gsd.toml"
REFERENCE = Path(__file__).resolve().parents[2] / "validation" / "reference" / "group_sequential.json"


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["design", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.requirement("GSD-07", "GSD-03", "GSD-04")
def test_example_protocol_design_equals_rpact():
    ref = json.loads(REFERENCE.read_text())["protocol_example"]
    out = run_json("--protocol", str(EXAMPLE_GSD))
    looks = out["looks"]
    assert out["design"]["type"] == "group-sequential" and out["design"]["futility"] == "non-binding"
    np.testing.assert_allclose([r["efficacy_z"] for r in looks], ref["critical_values"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        [r["futility_z"] for r in looks[:-1]], ref["futility_bounds"], atol=1e-6, rtol=0
    )
    assert looks[-1]["futility_z"] is None
    np.testing.assert_allclose(
        [r["efficacy_nominal_p_one_sided"] for r in looks], ref["stage_levels"], rtol=1e-6
    )
    np.testing.assert_allclose([r["cumulative_alpha"] for r in looks], ref["alpha_spent"], rtol=1e-6)
    np.testing.assert_allclose([r["cumulative_beta"] for r in looks], ref["beta_spent"], rtol=1e-6)
    np.testing.assert_allclose([r["cumulative_power"] for r in looks], ref["power"], rtol=1e-6)
    np.testing.assert_allclose(out["inflation_factor"], ref["inflation_factor"], rtol=1e-6)
    size = out["sample_size"]
    rates = ref["rates"]
    np.testing.assert_allclose(
        [size["fixed"], size["maximum"], size["expected_h0"], size["expected_h01"], size["expected_h1"]],
        [rates["n_fixed"], rates["max_n"], rates["expected_h0"], rates["expected_h01"], rates["expected_h1"]],
        rtol=1e-6,
    )
    np.testing.assert_allclose([r["size"] for r in looks], rates["n_per_look"], rtol=1e-6)
    # the protocol's 15% dropout on the rounded-up maximum
    assert size["maximum_with_dropout"] == int(np.ceil(size["maximum"] / 0.85))
    np.testing.assert_allclose([r["stop_efficacy_h1"] for r in looks], ref["h1"]["reject"], rtol=1e-6)
    np.testing.assert_allclose([r["stop_futility_h0"] for r in looks[:-1]], ref["h0"]["futility"], rtol=1e-6)


def test_fixed_design_is_one_look_at_the_two_sided_alpha():
    out = run_json()
    assert out["design"]["type"] == "fixed" and out["design"]["looks"] == 1
    (look,) = out["looks"]
    assert look["efficacy_z"] == pytest.approx(1.959963984540054, abs=1e-9)
    assert look["efficacy_nominal_p_two_sided"] == pytest.approx(0.05, rel=1e-9)
    assert out["inflation_factor"] == pytest.approx(1.0, rel=1e-9)
    assert out["sample_size"]["maximum"] == pytest.approx(out["sample_size"]["expected_h0"], rel=1e-9)


def test_table_for_people_and_a_survival_design(tmp_path):
    result = runner.invoke(app, ["design", "--protocol", str(EXAMPLE_GSD)])
    assert result.exit_code == 0, result.output
    assert (
        "Boundaries" in result.output and "3.710" in result.output and "non-binding futility" in result.output
    )
    text = EXAMPLE_GSD.read_text().replace(
        'endpoint = "binary"',
        'endpoint = "survival"\nhazard_ratio = 0.7\nmedian_control_days = 12.0\naccrual_days = 24.0\n'
        "follow_up_days = 12.0",
    )
    path = tmp_path / "survival.toml"
    path.write_text(text)
    out = run_json("--protocol", str(path))
    assert out["sample_size"]["unit"] == "events" and out["sample_size"]["maximum_with_dropout"] is None
    assert out["sample_size"]["subjects_maximum"] > out["sample_size"]["maximum"]
    table = runner.invoke(app, ["design", "--protocol", str(path)])
    assert table.exit_code == 0 and "events" in table.output


def test_bad_protocol_file_is_one_line():
    result = runner.invoke(app, ["design", "--protocol", "/nonexistent/protocol.toml"])
    assert result.exit_code != 0 and "does not exist" in str(result.exception)
