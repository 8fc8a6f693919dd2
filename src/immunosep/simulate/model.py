"""Parameters of the virtual-patient model and the distributions fitted to published summaries.

The parameters live in a data file, ``simulate/calibration.toml`` (bundled), validated here by pydantic.
Every parameter is either a published figure of the ImmunoSep trial (Table 1-3, CONSORT; JAMA 2025,
doi:10.1001/jama.2025.24175) or a plausible value tuned so that the simulated trials reproduce them
(see ``immunosep simulate calibrate`` and docs/simulate.md). Protocol numbers (classification
thresholds, endpoint windows, biomarker draw days, allocation ratio) are not parameters of the model:
they are read from the :class:`~immunosep.protocol.Protocol`, so another protocol drives the same model.

The model in brief (details in :mod:`immunosep.simulate.population` and
:mod:`immunosep.simulate.trajectories`): each patient has a *severity* latent (baseline organ failure,
APACHE II) and a *response* latent (how the SOFA improves). The daily SOFA falls linearly with a
patient-specific slope (points/day) whose mean depends on stratum x arm; death time, infection state on
day 15 and SIDF reversal are tied to the response latent by Gaussian copulas whose marginals reproduce
the published rates by arm, and death also to the baseline severity (APACHE II, Charlson index, SOFA,
stratum), as the paper's post hoc subgroups found.
"""

from __future__ import annotations

import math
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import optimize, stats

from immunosep.errors import ImmunoSepError

FloatArray = npt.NDArray[np.float64]
ARMS = ("precision", "placebo")
#: Baseline scores the death risk may weigh (columns of the virtual patients' baseline).
RISK_SCORES = ("apache2", "charlson", "sofa_total")
#: Weight of the median against each quartile when a distribution is fitted to a published median and IQR.
MEDIAN_FIT_WEIGHT = 100.0
INFECTION_LEVELS_COUNT = 4


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScreeningBiomarkers(_Frozen):
    unclassified_fraction: float = Field(ge=0, lt=1, description="unclassified among criteria-eligible")
    mals_fraction_of_classified: float = Field(gt=0, lt=1, description="MALS among classified")


class Screening(_Frozen):
    reasons: dict[str, float] = Field(description="fraction of the screened excluded for each reason")
    biomarkers: ScreeningBiomarkers

    @model_validator(mode="after")
    def _sum_below_one(self) -> Screening:
        if sum(self.reasons.values()) >= 1 or min(self.reasons.values(), default=0) < 0:
            raise ValueError("screening.reasons must be non-negative fractions summing to < 1")
        return self


class Biology(_Frozen):
    """The model's true immune states (not the protocol's classification; see docs/simulate.md)."""

    mals_ferritin_above: float = Field(gt=0)
    immunoparalysis_hla_dr_below: float = Field(gt=0)


class Sites(_Frozen):
    countries: list[str]
    sites_per_country: list[int]
    weight_decay: float = Field(gt=0, le=1, description="weight of the k-th site = decay**k")

    @model_validator(mode="after")
    def _same_length(self) -> Sites:
        if len(self.countries) != len(self.sites_per_country):
            raise ValueError("sites.countries and sites.sites_per_country differ in length")
        return self


class Withdrawal(_Frozen):
    precision: float = Field(ge=0, lt=1)
    placebo: float = Field(ge=0, lt=1)


class Charlson(_Frozen):
    age_points_from_years: list[float]
    history_points: dict[str, int]
    other_points_mean: float = Field(ge=0)


class Apache2(_Frozen):
    mean: float
    sd: float = Field(gt=0)
    severity_loading: float = Field(ge=0, lt=1)


class Labs(_Frozen):
    wbc_mean_sd_per_ul: tuple[float, float]
    platelets_mean_sd_1e3_ul: tuple[float, float]
    creatinine_median_iqr_mg_dl: tuple[float, float, float]
    bilirubin_median_iqr_mg_dl: tuple[float, float, float]
    pao2_fio2_median_iqr_mmhg: tuple[float, float, float]
    lactate_median_iqr_mg_dl: tuple[float, float, float]
    severity_loading: float = Field(ge=0, lt=1)


class ScoreDistribution(_Frozen):
    score_probabilities: list[float] = Field(min_length=5, max_length=5, description="P(score 0..4)")

    @model_validator(mode="after")
    def _sums_to_one(self) -> ScoreDistribution:
        if not math.isclose(sum(self.score_probabilities), 1.0, abs_tol=1e-6):
            raise ValueError("score_probabilities must sum to 1")
        return self


class Baseline(_Frozen):
    age_mean_years: float
    age_sd_years: float = Field(gt=0)
    age_min_years: float
    age_max_years: float
    male: float = Field(ge=0, le=1)
    weight_mean_kg: float = Field(gt=0)
    weight_sd_kg: float = Field(gt=0)
    height_mean_cm_male: float = Field(gt=0)
    height_mean_cm_female: float = Field(gt=0)
    height_sd_cm: float = Field(gt=0)
    mechanical_ventilation: float = Field(ge=0, le=1)
    ventilation_respiratory_loading: float = Field(
        ge=0, lt=1, description="ventilation latent on respiratory"
    )
    cvvh: float = Field(ge=0, le=1)
    cvvh_renal_loading: float = Field(ge=0, lt=1, description="CVVH latent on the renal latent")
    hours_onset_to_drug_median_iqr: tuple[float, float, float]
    history: dict[str, float]
    charlson: Charlson
    apache2: Apache2
    infection: dict[str, dict[str, float]]
    labs: Labs
    cardiovascular: ScoreDistribution
    cns: ScoreDistribution


class Biomarkers(_Frozen):
    mals_ferritin_median_iqr: tuple[float, float, float]
    mals_hla_dr_median_iqr: tuple[float, float, float]
    immunoparalysis_ferritin_median_iqr: tuple[float, float, float]
    immunoparalysis_hla_dr_median_iqr: tuple[float, float, float]
    unclassified_ferritin_median_iqr: tuple[float, float, float]
    unclassified_hla_dr_median_iqr: tuple[float, float, float]
    # Serial draws after baseline (SIDF population): see draw_biomarker_course.
    serial_sampling: float = Field(gt=0, le=1, description="share of patients with serial samples sent")
    draw_taken_in_icu: float = Field(gt=0, le=1, description="a protocol draw taken and measured, in the ICU")
    draw_taken_after_icu: float = Field(ge=0, le=1, description="the same after ICU discharge alive")
    unconfirmed_change: float = Field(
        ge=0,
        lt=1,
        description="share of non-reversers whose change shows at the last draws only, unconfirmed",
    )
    reversal_probit: dict[str, float]
    response_loading: float = Field(ge=0, lt=1)
    draw_noise_log_sd: float = Field(ge=0)


class SofaTrajectory(_Frozen):
    slope_mean_points_per_day: dict[str, float]
    slope_sd_points_per_day: float = Field(ge=0)
    slope_baseline_coef: float
    plateau_day: int = Field(ge=2)
    daily_noise_sd_points: float = Field(ge=0)
    discharge_first_day: int = Field(ge=2)
    discharge_daily_logit: float
    discharge_slope_coef: float


class Mortality(_Frozen):
    """Death to day 90: cumulative incidence by arm, tied to the response latent and to baseline severity.

    ``risk_per_sd`` weighs each baseline score (``apache2``, ``charlson``, ``sofa_total``) per standard
    deviation in the model's population, ``risk_mals`` the MALS stratum (true state); their sum is the
    patient's baseline death risk, and ``severity_loading`` is the correlation of the death latent with the
    risk's normal score (see :func:`immunosep.simulate.trajectories.draw_death_days`).
    """

    cumulative_days: list[float] = Field(min_length=1)
    precision: list[float]
    placebo: list[float]
    response_loading: float = Field(ge=0, lt=1)
    severity_loading: float = Field(ge=0, lt=1)
    risk_per_sd: dict[str, float]
    risk_mals: float

    @model_validator(mode="after")
    def _increasing(self) -> Mortality:
        for arm in ARMS:
            values = getattr(self, arm)
            if len(values) != len(self.cumulative_days) or any(
                b < a for a, b in zip([0.0, *values], values, strict=False)
            ):
                raise ValueError(f"mortality.{arm} must be increasing, one value per cumulative day")
        if self.response_loading**2 + self.severity_loading**2 >= 1:
            raise ValueError("mortality.response_loading^2 + mortality.severity_loading^2 must be < 1")
        unknown = set(self.risk_per_sd) - set(RISK_SCORES)
        if unknown:
            raise ValueError(f"mortality.risk_per_sd knows {sorted(RISK_SCORES)}, not {sorted(unknown)}")
        return self


class InfectionDay15(_Frozen):
    precision: list[float] = Field(min_length=INFECTION_LEVELS_COUNT, max_length=INFECTION_LEVELS_COUNT)
    placebo: list[float] = Field(min_length=INFECTION_LEVELS_COUNT, max_length=INFECTION_LEVELS_COUNT)
    response_loading: float = Field(ge=0, lt=1)


class AdverseTerm(_Frozen):
    soc: str
    published: str = Field(description="key of the term in the published Table 3 figures (data file)")
    precision: tuple[int, int] = Field(description="patients with the event: (related, unrelated)")
    placebo: tuple[int, int]


class AdverseEvents(_Frozen):
    onset_last_day: int = Field(ge=1)
    analysed: dict[str, int]
    any_unrelated: dict[str, int] = Field(description="patients with >= 1 unrelated serious AE, per arm")
    any_related: dict[str, int] = Field(description="patients with >= 1 related serious AE, per arm")
    related_levels: list[str]
    unrelated_levels: list[str]
    terms: dict[str, AdverseTerm]


class ModelParameters(_Frozen):
    """Every parameter of the virtual-patient model (see ``simulate/calibration.toml``)."""

    screening: Screening
    biology: Biology
    sites: Sites
    withdrawal: Withdrawal
    baseline: Baseline
    biomarkers: Biomarkers
    sofa_trajectory: SofaTrajectory
    mortality: Mortality
    infection_day15: InfectionDay15
    adverse_events: AdverseEvents

    def with_null_effect(self) -> ModelParameters:
        """The same model with no treatment effect: precision behaves exactly like placebo.

        Used for type I error: every arm-dependent parameter of the precision arm is replaced by the
        placebo value (SOFA slope by stratum, mortality, infection, SIDF reversal, withdrawal, AEs).
        """
        traj = self.sofa_trajectory
        slopes = dict(traj.slope_mean_points_per_day)
        probits = dict(self.biomarkers.reversal_probit)
        for key in list(slopes):
            if key.endswith("_precision"):
                slopes[key] = slopes[key.removesuffix("_precision") + "_placebo"]
        for key in list(probits):
            if key.endswith("_precision"):
                probits[key] = probits[key.removesuffix("_precision") + "_placebo"]
        terms = {
            name: term.model_copy(update={"precision": term.placebo})
            for name, term in self.adverse_events.terms.items()
        }
        return self.model_copy(
            update={
                "sofa_trajectory": traj.model_copy(update={"slope_mean_points_per_day": slopes}),
                "biomarkers": self.biomarkers.model_copy(update={"reversal_probit": probits}),
                "mortality": self.mortality.model_copy(update={"precision": self.mortality.placebo}),
                "infection_day15": self.infection_day15.model_copy(
                    update={"precision": self.infection_day15.placebo}
                ),
                "withdrawal": self.withdrawal.model_copy(update={"precision": self.withdrawal.placebo}),
                "adverse_events": self.adverse_events.model_copy(
                    update={
                        "terms": terms,
                        "analysed": {
                            **self.adverse_events.analysed,
                            "precision": self.adverse_events.analysed["placebo"],
                        },
                        "any_unrelated": {
                            **self.adverse_events.any_unrelated,
                            "precision": self.adverse_events.any_unrelated["placebo"],
                        },
                        "any_related": {
                            **self.adverse_events.any_related,
                            "precision": self.adverse_events.any_related["placebo"],
                        },
                    }
                ),
            }
        )


def bundled_parameters_path() -> Path:
    """Path of the bundled ``calibration.toml``."""
    return Path(str(resources.files("immunosep.simulate").joinpath("calibration.toml")))


def load_parameters(path: str | Path | None = None) -> ModelParameters:
    """Load and validate model parameters; ``None`` gives the bundled, calibrated ones."""
    if path is None:
        return default_parameters()
    p = Path(path)
    if not p.is_file():
        raise ImmunoSepError(f"model parameter file {p} does not exist")
    return _parse(p.read_bytes(), str(p))


@lru_cache(maxsize=1)
def default_parameters() -> ModelParameters:
    """The bundled, calibrated model parameters (validated once)."""
    path = bundled_parameters_path()
    return _parse(path.read_bytes(), str(path))


def _parse(raw: bytes, source: str) -> ModelParameters:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ImmunoSepError(f"{source} is not valid TOML: {exc}") from None
    try:
        return ModelParameters.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ImmunoSepError(f"{source} is not a valid model parameter file: {problems}") from None


# -- distributions fitted to published summaries ----------------------------------------------------------


class TruncatedLogNormal:
    """A lognormal distribution truncated to ``(lower, upper]``, sampled by inverse CDF.

    Fitted to a published median and interquartile range so that the *truncated* distribution has them;
    the truncation respects a classification threshold (e.g. MALS ferritin > 4420 ng/mL).
    """

    def __init__(self, mu: float, sigma: float, lower: float = 0.0, upper: float = math.inf) -> None:
        self.mu = mu
        self.sigma = sigma
        self.lower = lower
        self.upper = upper
        self._p_low = float(stats.norm.cdf((math.log(lower) - mu) / sigma)) if lower > 0 else 0.0
        self._p_high = float(stats.norm.cdf((math.log(upper) - mu) / sigma)) if math.isfinite(upper) else 1.0

    def quantile(self, u: npt.ArrayLike) -> FloatArray:
        """Inverse CDF at probabilities ``u`` in (0, 1)."""
        p = self._p_low + np.asarray(u, dtype=np.float64) * (self._p_high - self._p_low)
        p = np.clip(p, 1e-12, 1 - 1e-12)
        values = np.exp(self.mu + self.sigma * _ndtri(p))
        # inverse-CDF rounding can land a hair outside the support; the bounds are strict classification
        # thresholds, so clamp to the open side explicitly.
        if self.lower > 0:
            values = np.maximum(values, np.nextafter(self.lower, math.inf))
        if math.isfinite(self.upper):
            values = np.minimum(values, self.upper)
        return np.asarray(values, dtype=np.float64)

    def support(self) -> tuple[float, float]:
        """Bounds ``(low, high)`` that every value :meth:`quantile` returns lies within (its clamps)."""
        low = float(np.nextafter(self.lower, math.inf)) if self.lower > 0 else 0.0
        high = self.upper if math.isfinite(self.upper) else math.inf
        return min(low, high), high

    @classmethod
    def fit_quantiles(
        cls, median: float, q1: float, q3: float, *, lower: float = 0.0, upper: float = math.inf
    ) -> TruncatedLogNormal:
        """Fit (on the log scale) of the truncated quartiles to ``q1, median, q3``: the median is matched
        (weight :data:`MEDIAN_FIT_WEIGHT`, the calibration compares medians), the quartiles in least squares."""
        targets = np.log([q1, median, q3])
        probs = np.array([0.25, 0.5, 0.75])
        weights = np.array([1.0, MEDIAN_FIT_WEIGHT, 1.0])

        def loss(theta: FloatArray) -> float:
            dist = cls(float(theta[0]), float(math.exp(theta[1])), lower, upper)
            return float(np.sum(weights * (np.log(dist.quantile(probs)) - targets) ** 2))

        start = np.array([math.log(median), math.log(max(math.log(q3 / q1) / 1.349, 0.05))])
        best = optimize.minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
        return cls(float(best.x[0]), float(math.exp(best.x[1])), lower, upper)

    @classmethod
    def from_mean_sd(cls, mean: float, sd: float) -> TruncatedLogNormal:
        """The (untruncated) lognormal with this mean and standard deviation."""
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return cls(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


def _ndtri(p: npt.ArrayLike) -> FloatArray:
    from scipy.special import ndtri

    return np.asarray(ndtri(p), dtype=np.float64)


def correlated_normal(rng: np.random.Generator, shared: FloatArray, loading: float) -> FloatArray:
    """A standard normal with correlation ``loading`` to the standard normal ``shared``."""
    noise = rng.standard_normal(shared.shape[0])
    return np.asarray(loading * shared + math.sqrt(1.0 - loading**2) * noise, dtype=np.float64)


def categorical(rng: np.random.Generator, probabilities: npt.ArrayLike, size: int) -> npt.NDArray[np.int64]:
    """Indices drawn with the given probabilities (normalized)."""
    p = np.asarray(probabilities, dtype=np.float64)
    cumulative = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(size), side="right"), p.size - 1)


def ordinal_from_latent(latent: FloatArray, probabilities: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Ordered category of a standard-normal latent, cut so the categories have ``probabilities``."""
    p = np.asarray(probabilities, dtype=np.float64)
    cuts = _ndtri(np.clip(np.cumsum(p / p.sum())[:-1], 1e-12, 1 - 1e-12))
    return np.searchsorted(cuts, latent, side="right").astype(np.int64)
