"""Mantel-Haenszel and Breslow-Day vs R: validation/proportions.R (mantelhaen.test; Breslow & Day eq. 4.30)."""

from __future__ import annotations

import math
import warnings

import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.contingency import mantel_haenszel

RTOL = 1e-6


@pytest.mark.requirement("STAT-01")
def test_against_r_mantelhaen(r_reference):
    for case in r_reference("mantel_haenszel")["cases"]:
        strata = [tuple(s) for s in case["strata"]]
        res = mantel_haenszel(strata)
        assert res.odds_ratio.estimate == pytest.approx(case["odds_ratio"], rel=RTOL)
        assert res.odds_ratio.ci == pytest.approx(tuple(case["ci"]), rel=RTOL)
        assert res.mh_test.statistic == pytest.approx(case["statistic"], rel=RTOL)
        assert res.mh_test.p == pytest.approx(case["p"], rel=RTOL)
        plain = mantel_haenszel(strata, correction=False)
        assert plain.mh_test.p == pytest.approx(case["p_uncorrected"], rel=RTOL)
        assert res.homogeneity.statistic == pytest.approx(case["breslow_day"], rel=RTOL)
        assert res.homogeneity.p == pytest.approx(case["breslow_day_p"], rel=RTOL)
        assert res.homogeneity.df == len(strata) - 1
        tarone = mantel_haenszel(strata, tarone=True).homogeneity
        assert (tarone.statistic, tarone.p) == pytest.approx((case["tarone"], case["tarone_p"]), rel=RTOL)
        assert mantel_haenszel(strata, conf_level=0.90).odds_ratio.ci == pytest.approx(
            tuple(case["ci90"]), rel=RTOL
        )


def _same(got: float, want: float | None) -> bool:
    return math.isnan(got) if want is None else got == pytest.approx(want, rel=RTOL, abs=1e-12)


@pytest.mark.requirement("STAT-01")
def test_the_mh_test_at_its_edges_is_rs(r_reference):
    """Continuity correction only where |sum(a - E[a])| >= 0.5, and no test where no stratum has both
    outcomes (R: NaN), without numpy's warnings. statsmodels alone gave chi-square 0.097 for strata with no
    difference, and P 0 for strata without events."""
    for case in r_reference("mantel_haenszel_edges")["cases"]:
        strata = [tuple(s) for s in case["strata"]]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = mantel_haenszel(strata)
            plain = mantel_haenszel(strata, correction=False)
        assert _same(res.mh_test.statistic, case["statistic"]), strata
        assert _same(res.mh_test.p, case["p"]), strata
        assert _same(res.odds_ratio.p, case["p"]), strata
        assert _same(plain.mh_test.statistic, case["statistic_uncorrected"]), strata
        assert _same(plain.mh_test.p, case["p_uncorrected"]), strata
        assert _same(res.odds_ratio.estimate, case["odds_ratio"]), strata


def test_named_strata_carry_their_woolf_or():
    res = mantel_haenszel([(12, 25, 4, 23), (34, 106, 22, 122)], names=["mals", "immunoparalysis"])
    assert [s.name for s in res.strata] == ["mals", "immunoparalysis"]
    assert res.strata[0].estimate == pytest.approx(12 * 19 / (13 * 4))
    assert res.odds_ratio.method == "mantel-haenszel (robins-breslow-greenland CI)"


def test_bad_strata():
    with pytest.raises(ImmunoSepError, match="at least one stratum"):
        mantel_haenszel([])
    with pytest.raises(ImmunoSepError, match="more than the total"):
        mantel_haenszel([(30, 25, 4, 23)])
    with pytest.raises(ImmunoSepError, match="stratum names"):
        mantel_haenszel([(3, 25, 4, 23)], names=["a", "b"])


@pytest.mark.requirement("STAT-01")
def test_one_stratum_mh_is_the_woolf_interval():
    """With one stratum the RBG variance reduces to Woolf's, so the SAP's two rules agree (Table 2 primary)."""
    from immunosep.stats.proportions import odds_ratio

    mh = mantel_haenszel([(46, 131, 26, 145)])
    woolf = odds_ratio(46, 131, 26, 145)
    assert mh.odds_ratio.estimate == pytest.approx(woolf.estimate, rel=1e-12)
    assert mh.odds_ratio.ci == pytest.approx(woolf.ci, rel=1e-12)
    assert "one stratum" in mh.homogeneity.method
