"""The protocol schema: what a precision-immunotherapy protocol file must say, validated by pydantic.

Every number the software uses for a trial (thresholds, windows, doses, days) is a field here and a
value in the protocol TOML file; code reads it from a :class:`Protocol`, never from a constant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Route = Literal["iv", "sc"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrialInfo(_Frozen):
    """The trial's identity (``[trial]``): code, title, registration number and countries."""

    code: str = Field(min_length=1)
    title: str
    registration: str = ""
    version: str = "1.0"
    sites: int = Field(ge=1)
    countries: list[str] = Field(default_factory=list)


class Classification(_Frozen):
    """Immune classification thresholds (strict inequalities as in the protocol)."""

    ferritin_unit: str = "ng/mL"
    hla_dr_unit: str = "receptors per CD45/CD14 monocyte"
    mals_ferritin_above: float = Field(gt=0, description="MALS when ferritin > this (ng/mL)")
    immunoparalysis_hla_dr_below: float = Field(
        gt=0, description="immunoparalysis when mHLA-DR < this (receptors/monocyte)"
    )
    ferritin_max_plausible: float = Field(gt=0)
    hla_dr_max_plausible: float = Field(gt=0)


class Stratum(_Frozen):
    """One immune stratum (``[[strata]]``); only enrolled strata are randomized."""

    code: str
    label: str
    enrolled: bool


class Arm(_Frozen):
    """One treatment arm (``[[arms]]``) and its share of the allocation ratio."""

    code: str
    label: str
    ratio: int = Field(ge=1)


class RegimenItem(_Frozen):
    """One injection of the double-dummy regimen for one stratum x arm x route."""

    stratum: str
    arm: str
    route: Route
    drug: str
    dose: float = Field(gt=0)
    unit: str
    volume_ml: float = Field(gt=0)
    interval_hours: int = Field(gt=0)
    dummy: bool


class Treatment(_Frozen):
    """Length of study treatment in days and the latest first dose, in hours after sepsis onset
    (``[treatment]``)."""

    days: int = Field(ge=1)
    first_dose_max_hours_after_onset: float = Field(gt=0)


class RenalRule(_Frozen):
    """The renal dose rule (``[renal]``): below the creatinine clearance threshold (mL/min) the route's dose
    is multiplied by ``dose_factor``."""

    method: Literal["cockcroft-gault"] = "cockcroft-gault"
    threshold_ml_min: float = Field(gt=0)
    route: Route = "iv"
    dose_factor: float = Field(gt=0, le=1)
    female_factor: float = Field(gt=0, le=1)
    weight_policy: Literal["actual", "ideal", "adjusted"] = "actual"


class Biospecimens(_Frozen):
    """The study days of the biomarker draws (``[biospecimens]``), the baseline day first."""

    days: list[int] = Field(min_length=1)
    baseline_day: int = 1

    @model_validator(mode="after")
    def _days_sorted(self) -> Biospecimens:
        if sorted(set(self.days)) != list(self.days):
            raise ValueError("biospecimens.days must be strictly increasing")
        if self.baseline_day != self.days[0]:
            raise ValueError("biospecimens.baseline_day must be the first of biospecimens.days")
        return self


class SofaEndpoint(_Frozen):
    """A decrease of SOFA from baseline to the mean over a window of days."""

    name: str
    baseline_day: int = Field(ge=1)
    window_first_day: int = Field(ge=1)
    window_last_day: int = Field(ge=1)
    min_decrease: float = Field(gt=0)
    death_score: float = Field(ge=0, le=24)
    death_imputed_until_day: int = Field(ge=1)
    carry_forward: Literal["last observation"] = "last observation"

    @model_validator(mode="after")
    def _window(self) -> SofaEndpoint:
        if not self.baseline_day < self.window_first_day <= self.window_last_day:
            raise ValueError(
                f"{self.name}: need baseline_day < window_first_day <= window_last_day, got "
                f"{self.baseline_day}, {self.window_first_day}, {self.window_last_day}"
            )
        return self


class Mortality(_Frozen):
    """The days at which mortality is an endpoint (``[endpoints.mortality]``), e.g. 28 and 90."""

    days: list[int] = Field(min_length=1)


class InfectionEndpoint(_Frozen):
    """The ordinal infection-state endpoint (``[endpoints.infection_day15]``): its day and levels, best first."""

    day: int = Field(ge=1)
    levels: list[str] = Field(min_length=2, description="ordered from best to worst")


class Endpoints(_Frozen):
    """Every endpoint of the protocol (``[endpoints.*]``)."""

    primary: SofaEndpoint
    sofa_d15: SofaEndpoint
    mortality: Mortality
    infection_day15: InfectionEndpoint


class SidfRule(_Frozen):
    """Reversal of sepsis-induced immune dysfunction (SIDF); the rule is ``clinical.sidf``."""

    mals_ferritin_min_fall_fraction: float = Field(
        gt=0, lt=1, description="MALS: ferritin at or below baseline x (1 - this) at a draw"
    )
    immunoparalysis_hla_dr_above: float = Field(gt=0, description="immunoparalysis: mHLA-DR threshold")
    immunoparalysis_hla_dr_criterion: Literal["level", "rise"] = Field(
        description="level: the draw's mHLA-DR > threshold; rise: draw minus baseline > threshold"
    )
    min_later_draws: int = Field(
        ge=1, description="serial draws after baseline a patient needs to be assessable (SIDF population)"
    )
    min_confirming_draws: int = Field(
        ge=1,
        description="serial draws, to the last one, that must all meet the criterion to confirm reversal",
    )

    @model_validator(mode="after")
    def _confirmable(self) -> SidfRule:
        if self.min_confirming_draws > self.min_later_draws:
            raise ValueError(
                f"sidf.min_confirming_draws ({self.min_confirming_draws}) cannot exceed sidf.min_later_draws "
                f"({self.min_later_draws}): an assessable patient must be able to reverse"
            )
        return self


class AdaptiveRandomization(_Frozen):
    """Response-adaptive allocation within each stratum (``[randomization.adaptive]``, docs/adaptive.md).

    The allocation probability to treatment is ``P^c / (P^c + (1 - P)^c)`` with ``P`` the posterior
    probability of benefit of the stratum at the data cut (beta ``prior`` on each arm's success rate),
    bounded so that control keeps at least ``min_control_share`` and treatment ``min_treatment_share``.
    """

    control_arm: str
    power: float = Field(0.5, ge=0, le=10)
    min_control_share: float = Field(0.25, ge=0, le=0.5)
    min_treatment_share: float = Field(0.1, ge=0, le=0.5)
    prior: tuple[float, float] = (1.0, 1.0)

    @model_validator(mode="after")
    def _prior(self) -> AdaptiveRandomization:
        if min(self.prior) <= 0:
            raise ValueError(
                f"randomization.adaptive.prior must be two positive numbers, got {list(self.prior)}"
            )
        return self


class Randomization(_Frozen):
    """Allocation ratio, permuted block sizes, one list per site or not, and slots per site (``[randomization]``).

    ``design`` is ``"block"`` (sealed permuted-block lists, the default) or ``"adaptive"``
    (response-adaptive allocation by stratum, which needs the ``adaptive`` table and two arms).
    """

    ratio: list[int] = Field(min_length=2)
    block_sizes: list[int] = Field(min_length=1)
    per_site: bool = True
    slots_per_site: int = Field(ge=1)
    design: Literal["block", "adaptive"] = "block"
    adaptive: AdaptiveRandomization | None = None

    @model_validator(mode="after")
    def _design(self) -> Randomization:
        if self.design == "adaptive" and self.adaptive is None:
            raise ValueError('randomization.design = "adaptive" needs a [randomization.adaptive] table')
        if self.design == "adaptive" and len(self.ratio) != 2:
            raise ValueError(f"adaptive randomization needs exactly two arms, got ratio {self.ratio}")
        return self


class Exclusion(_Frozen):
    """One exclusion criterion (``[[eligibility.exclusions]]``): the code stored in the screening log and its
    label."""

    code: str
    label: str


class Eligibility(_Frozen):
    """Inclusion thresholds (age in years, SOFA points) and exclusions of screening (``[eligibility]``)."""

    min_age_years: int = Field(ge=0)
    min_sofa: int = Field(ge=0)
    min_sofa_rise: int = Field(ge=0)
    min_neutrophils_per_mm3: float = Field(ge=0)
    infection_types: list[str] = Field(min_length=1)
    infections_requiring_mals: list[str] = Field(default_factory=list)
    exclusions: list[Exclusion] = Field(default_factory=list)
    #: Readable names of the infection types (forms, Table 1); a type without one shows its code.
    infection_labels: dict[str, str] = Field(default_factory=dict)

    def infection_label(self, code: str) -> str:
        """The readable name of an infection type (its code with spaces when the protocol gives none)."""
        return self.infection_labels.get(code, code.replace("_", " "))


class SampleSize(_Frozen):
    """The design's sample-size assumptions (``[sample_size]``): event proportions per arm, alpha, power,
    dropout."""

    p_precision: float = Field(gt=0, lt=1)
    p_placebo: float = Field(gt=0, lt=1)
    alpha_two_sided: float = Field(gt=0, lt=1)
    power: float = Field(gt=0, lt=1)
    dropout: float = Field(ge=0, lt=1)
    total_planned: int = Field(ge=2)


class ReportSettings(_Frozen):
    """Conventions of the trial report that are numbers of the paper, not clinical rules.

    ``table1_at_least``: baseline scores Table 1 also shows as "score >= cut-off, No. (%)", ADSL variable ->
    cut-off in the score's points (the published Table 1 prints APACHE II >= 25, Charlson >= 5, SOFA >= 10).
    """

    table1_at_least: dict[str, float] = Field(default_factory=dict)


class Protocol(_Frozen):
    """A whole trial protocol; cross-field rules are checked once here."""

    trial: TrialInfo
    classification: Classification
    strata: list[Stratum] = Field(min_length=1)
    arms: list[Arm] = Field(min_length=2)
    regimen: list[RegimenItem] = Field(min_length=1)
    treatment: Treatment
    renal: RenalRule
    biospecimens: Biospecimens
    endpoints: Endpoints
    sidf: SidfRule
    randomization: Randomization
    eligibility: Eligibility
    sample_size: SampleSize
    report: ReportSettings = Field(default_factory=ReportSettings)

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        stratum_codes = [s.code for s in self.strata]
        arm_codes = [a.code for a in self.arms]
        for kind, codes in (("strata", stratum_codes), ("arms", arm_codes)):
            if len(set(codes)) != len(codes):
                raise ValueError(f"{kind} codes must be unique, got {codes}")
        for item in self.regimen:
            if item.stratum not in stratum_codes:
                raise ValueError(f"regimen names stratum {item.stratum!r}, not one of {stratum_codes}")
            if item.arm not in arm_codes:
                raise ValueError(f"regimen names arm {item.arm!r}, not one of {arm_codes}")
        adaptive = self.randomization.adaptive
        if adaptive is not None and adaptive.control_arm not in arm_codes:
            raise ValueError(
                f"randomization.adaptive.control_arm {adaptive.control_arm!r} is not one of {arm_codes}"
            )
        routes = sorted({item.route for item in self.regimen})
        for stratum in self.enrolled_strata:
            for arm in arm_codes:
                have = sorted(i.route for i in self.regimen if i.stratum == stratum and i.arm == arm)
                if have != routes:
                    raise ValueError(
                        f"regimen for stratum {stratum!r} and arm {arm!r} must have exactly one item per "
                        f"route {routes} (double dummy), got {have}"
                    )
        # The double dummy only conceals the arm if every arm gives the same routes, schedule and volume.
        for stratum in self.enrolled_strata:
            for route in routes:
                shapes = {
                    (i.interval_hours, i.volume_ml)
                    for i in self.regimen
                    if i.stratum == stratum and i.route == route
                }
                if len(shapes) != 1:
                    raise ValueError(
                        f"the {route} injections of stratum {stratum!r} differ between arms in interval or "
                        f"volume {sorted(shapes)}: that would unblind the trial"
                    )
        if len(self.randomization.ratio) != len(self.arms):
            raise ValueError(
                f"randomization.ratio has {len(self.randomization.ratio)} entries for {len(self.arms)} arms"
            )
        unit = sum(self.randomization.ratio)
        for size in self.randomization.block_sizes:
            if size <= 0 or size % unit:
                raise ValueError(f"block size {size} is not a positive multiple of the ratio sum {unit}")
        if self.renal.route not in routes:
            raise ValueError(f"renal.route {self.renal.route!r} is not a route of the regimen {routes}")
        for code in self.eligibility.infections_requiring_mals:
            if code not in self.eligibility.infection_types:
                raise ValueError(
                    f"eligibility.infections_requiring_mals names {code!r}, not an infection type"
                )
        for code in self.eligibility.infection_labels:
            if code not in self.eligibility.infection_types:
                raise ValueError(f"eligibility.infection_labels names {code!r}, not an infection type")
        return self

    # -- conveniences -------------------------------------------------------------------------
    @property
    def enrolled_strata(self) -> list[str]:
        """Codes of the strata that are randomized, in protocol order."""
        return [s.code for s in self.strata if s.enrolled]

    @property
    def arm_codes(self) -> list[str]:
        """Codes of the arms, in protocol order (the order of the allocation ratio)."""
        return [a.code for a in self.arms]

    def regimen_for(self, stratum: str, arm: str) -> list[RegimenItem]:
        """The regimen items (one per route) for a stratum and arm, in route order."""
        items = sorted(
            (i for i in self.regimen if i.stratum == stratum and i.arm == arm), key=lambda i: i.route
        )
        if not items:
            from immunosep.errors import ImmunoSepError

            raise ImmunoSepError(
                f"no regimen for stratum {stratum!r} and arm {arm!r}; strata {self.enrolled_strata}, "
                f"arms {self.arm_codes}"
            )
        return items
