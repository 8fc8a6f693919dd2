"""The protocol schema: what a precision-immunotherapy protocol file must say, validated by pydantic.

Every number the software uses for a trial (thresholds, windows, doses, days) is a field here and a
value in the protocol TOML file; code reads it from a :class:`Protocol`, never from a constant.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from immunosep.errors import ImmunoSepError
from immunosep.protocol.countries import country_alpha3

Route = Literal["iv", "sc"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TrialInfo(_Frozen):
    """The trial's identity (``[trial]``): code, title, registration number, countries and their sites.

    ``countries`` are English names or ISO 3166-1 codes; ``sites_per_country`` (same order) says how many of
    the sites ``S01..`` are in each, numbered country by country: the country a new site is created with
    (a trial of fewer sites takes the first ones). Without it, a protocol that names one country places
    every site there.
    """

    code: str = Field(min_length=1)
    title: str
    registration: str = ""
    version: str = "1.0"
    sites: int = Field(ge=1)
    countries: list[str] = Field(default_factory=list)
    sites_per_country: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _country_sites(self) -> TrialInfo:
        for name in self.countries:
            country_alpha3(name)  # an unknown country stops the protocol here, not at the first new site
        if self.sites_per_country:
            if len(self.sites_per_country) != len(self.countries):
                raise ValueError(
                    f"trial.sites_per_country has {len(self.sites_per_country)} entries for "
                    f"{len(self.countries)} countries"
                )
            if min(self.sites_per_country) < 1 or sum(self.sites_per_country) < self.sites:
                raise ValueError(
                    f"trial.sites_per_country {self.sites_per_country} must be positive and place at least "
                    f"trial.sites ({self.sites}) sites"
                )
        return self

    def site_countries(self, n_sites: int) -> list[str]:
        """The ISO 3166-1 alpha-3 country of sites ``S01..S<n_sites>``, in order.

        Raises ImmunoSepError when the protocol does not say where a site is (every new site has a country).
        """
        if self.sites_per_country:
            placed = [
                country_alpha3(c)
                for c, n in zip(self.countries, self.sites_per_country, strict=True)
                for _ in range(n)
            ]
        elif len(self.countries) == 1:
            placed = [country_alpha3(self.countries[0])] * n_sites
        else:
            placed = []
        if n_sites > len(placed):
            raise ImmunoSepError(
                f"the protocol places {len(placed)} sites in its countries, not {n_sites}: give trial.countries "
                "and trial.sites_per_country (one country needs no count)"
            )
        return placed[:n_sites]


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


class Monitoring(_Frozen):
    """Source data verification and the automatic edit checks (``[monitoring]``).

    ``sdv_sample_rate``: the fraction (0-1) of the items outside the 100 % part (the primary endpoint's
    inputs, the day of death and outcome, the randomization biomarkers) that each site's plan verifies;
    ``sdv_seed``: mixed into the sample, so a plan is reproducible and a new seed draws a new one.
    ``soft_limits``: CRF item (clinical name and unit, as in ``clinical.units.PLAUSIBLE``) -> [low, high]:
    a value outside opens an automatic query; tighter than the plausible range, which refuses the value.
    ``pf_unventilated_min_mmhg``: a PaO2/FiO2 below it without mechanical ventilation is queried.
    ``missed_visit_grace_days``: days after a study day before its missing daily CRF is a missed visit.
    """

    sdv_sample_rate: float = Field(default=0.2, ge=0, le=1)
    sdv_seed: str = "immunosep-sdv-1"
    soft_limits: dict[str, tuple[float, float]] = Field(default_factory=dict)
    pf_unventilated_min_mmhg: float = Field(default=100.0, gt=0)
    missed_visit_grace_days: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _limits_ordered(self) -> Monitoring:
        for name, (low, high) in self.soft_limits.items():
            if not low < high:
                raise ValueError(f"monitoring.soft_limits.{name}: low must be below high, got {low}, {high}")
        return self


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
    The first ``burn_in`` allocations of each site and stratum are drawn at the fixed ``ratio`` (1:1).
    """

    control_arm: str
    power: float = Field(0.5, ge=0, le=10)
    min_control_share: float = Field(0.25, ge=0, le=0.5)
    min_treatment_share: float = Field(0.1, ge=0, le=0.5)
    prior: tuple[float, float] = (1.0, 1.0)
    burn_in: int = Field(
        0, ge=0, description="allocations per site and stratum drawn at the fixed ratio before adapting"
    )

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


Spending = Literal["obrien-fleming", "pocock", "hwang-shih-decani"]


class SequentialDesign(_Frozen):
    """A group-sequential design (``[design.sequential]``): the looks, the spending and the endpoint.

    ``information_rates``: the fraction of the maximum information at each look, increasing, the last 1 (for a
    binary endpoint the fraction of patients with the endpoint known, for survival the fraction of events).
    ``alpha_spending``: Lan-DeMets O'Brien-Fleming, Lan-DeMets Pocock or Hwang-Shih-DeCani (``alpha_gamma``).
    ``futility``: "none", or beta-spending futility bounds (``beta_spending``, ``beta_gamma``) that are
    "non-binding" (the efficacy bounds ignore them; the DSMB may continue) or "binding" (the efficacy bounds
    count on them; continuing past one breaks the type I error). ``sided``: 2 (symmetric bounds, the overall
    two-sided alpha) or 1 (one-sided alpha = ``[sample_size].alpha_two_sided`` / 2; needed for futility).
    Alpha, power and the proportions come from ``[sample_size]``; a survival endpoint adds its hazard ratio,
    the control arm's median survival, the accrual and the follow-up (days), and ``horizon_day``: the interim
    analysis tests time to death to this study day (default: the last of ``[endpoints.mortality].days``).
    """

    information_rates: list[float] = Field(min_length=1, max_length=10)
    sided: Literal[1, 2] = 2
    alpha_spending: Spending = "obrien-fleming"
    alpha_gamma: float | None = Field(default=None, ge=-40, le=40)
    futility: Literal["none", "non-binding", "binding"] = "none"
    beta_spending: Spending = "obrien-fleming"
    beta_gamma: float | None = Field(default=None, ge=-40, le=40)
    endpoint: Literal["binary", "survival"] = "binary"
    hazard_ratio: float | None = Field(default=None, gt=0, lt=1)
    median_control_days: float | None = Field(default=None, gt=0)
    accrual_days: float | None = Field(default=None, gt=0)
    follow_up_days: float | None = Field(default=None, ge=0)
    horizon_day: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _coherent(self) -> SequentialDesign:
        t = self.information_rates
        if t[0] <= 0 or any(b <= a for a, b in itertools.pairwise(t)) or t[-1] != 1:
            raise ValueError(
                f"design.sequential.information_rates must increase strictly from above 0 to exactly 1, got {t}"
            )
        for kind, gamma, name in (
            (self.alpha_spending, self.alpha_gamma, "alpha"),
            (self.beta_spending, self.beta_gamma, "beta"),
        ):
            if kind == "hwang-shih-decani" and gamma is None:
                raise ValueError(f"design.sequential.{name}_gamma is needed for hwang-shih-decani spending")
            if kind != "hwang-shih-decani" and gamma is not None:
                raise ValueError(f"design.sequential.{name}_gamma is only for hwang-shih-decani spending")
        if self.futility != "none":
            if self.sided != 1:
                raise ValueError("design.sequential: futility bounds need a one-sided design (sided = 1)")
            if len(t) < 2:
                raise ValueError("design.sequential: futility bounds need at least 2 looks")
        if self.endpoint != "survival" and self.horizon_day is not None:
            raise ValueError("design.sequential.horizon_day is for a survival endpoint only")
        if self.endpoint == "survival" and self.hazard_ratio is None:
            raise ValueError("design.sequential: a survival endpoint needs hazard_ratio")
        timing = (self.median_control_days, self.accrual_days, self.follow_up_days)
        if any(v is not None for v in timing) and not all(v is not None for v in timing):
            raise ValueError(
                "design.sequential: give median_control_days, accrual_days and follow_up_days together"
            )
        return self


class Design(_Frozen):
    """The trial design (``[design]``): "fixed" (one final analysis, the default) or "group-sequential"
    (interim looks by ``[design.sequential]``)."""

    type: Literal["fixed", "group-sequential"] = "fixed"
    sequential: SequentialDesign | None = None

    @model_validator(mode="after")
    def _sequential_given(self) -> Design:
        if self.type == "group-sequential" and self.sequential is None:
            raise ValueError("design.type = 'group-sequential' needs a [design.sequential] table")
        if self.type == "fixed" and self.sequential is not None:
            raise ValueError("[design.sequential] is given but design.type is 'fixed'")
        return self


class ReportSettings(_Frozen):
    """Conventions of the trial report that are numbers of the paper, not clinical rules.

    ``table1_at_least``: baseline scores Table 1 also shows as "score >= cut-off, No. (%)", ADSL variable ->
    cut-off in the score's points (the published Table 1 prints APACHE II >= 25, Charlson >= 5, SOFA >= 10).
    """

    table1_at_least: dict[str, float] = Field(default_factory=dict)


# -- the case report form definition (CDISC ODM metadata) ------------------------------------------------
CrfDataType = Literal["integer", "float", "text", "boolean", "datetime", "date"]


class CrfUnit(_Frozen):
    """A unit of measurement an item may be recorded in (ODM ``MeasurementUnit``): its symbol, e.g. mg/dL."""

    symbol: str = Field(min_length=1)


class CrfCode(_Frozen):
    """One permitted value of a code list and its decode (ODM ``CodeListItem``)."""

    code: str
    decode: str


class CrfCodeList(_Frozen):
    """A list of permitted values (ODM ``CodeList``), e.g. the strata or the levels of an ordinal outcome."""

    name: str = Field(min_length=1)
    data_type: Literal["integer", "float", "text", "string"] = "text"
    codes: list[CrfCode] = Field(min_length=1)


class CrfRangeCheck(_Frozen):
    """A check on an item's value (ODM ``RangeCheck``): ``value comparator check_values``, in ``unit`` if given.

    ``hard``: the value is refused; otherwise it is queried.
    """

    comparator: Literal["LT", "LE", "GT", "GE", "EQ", "NE", "IN", "NOTIN"]
    check_values: list[str] = Field(min_length=1)
    unit: str | None = None
    hard: bool = True
    message: str = ""


class CrfItem(_Frozen):
    """One question of a form (ODM ``ItemDef``): its stored name, the question, type, units and checks."""

    name: str = Field(min_length=1)
    label: str
    data_type: CrfDataType
    length: int | None = Field(default=None, ge=1)
    units: list[str] = Field(default_factory=list, description="unit symbols, the stored unit first")
    range_checks: list[CrfRangeCheck] = Field(default_factory=list)
    codelist: str | None = None
    mandatory: bool = False


class CrfItemGroup(_Frozen):
    """Items recorded together (ODM ``ItemGroupDef``); ``repeating``: several per form (one per AE, dose)."""

    name: str = Field(min_length=1)
    label: str
    repeating: bool = False
    items: list[CrfItem] = Field(min_length=1)


class CrfForm(_Frozen):
    """One case report form (ODM ``FormDef``) and its item groups."""

    name: str = Field(min_length=1)
    label: str
    repeating: bool = False
    groups: list[CrfItemGroup] = Field(min_length=1)


class CrfEvent(_Frozen):
    """A visit or event of the schedule (ODM ``StudyEventDef``) and the forms filled in at it, by name."""

    name: str = Field(min_length=1)
    label: str
    repeating: bool = False
    type: Literal["Scheduled", "Unscheduled", "Common"] = "Scheduled"
    forms: list[str] = Field(min_length=1)


class CrfDefinition(_Frozen):
    """The case report forms of a trial: schedule, forms, item groups, items, code lists and units.

    The trial's own forms are built by ``conduct.odm.crf_definition`` and exported as CDISC ODM metadata;
    ``conduct.odm.read_crf_definition`` turns an ODM study's metadata back into this model.
    """

    units: list[CrfUnit] = Field(default_factory=list)
    codelists: list[CrfCodeList] = Field(default_factory=list)
    events: list[CrfEvent] = Field(min_length=1)
    forms: list[CrfForm] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> CrfDefinition:
        forms = [f.name for f in self.forms]
        codelists = {c.name for c in self.codelists}
        units = {u.symbol for u in self.units}
        for kind, names in (
            ("event", [e.name for e in self.events]),
            ("form", forms),
            ("item group", [g.name for f in self.forms for g in f.groups]),
            ("code list", [c.name for c in self.codelists]),
            ("unit", [u.symbol for u in self.units]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be unique, got {names}")
        for event in self.events:
            unknown = [f for f in event.forms if f not in forms]
            if unknown:
                raise ValueError(f"event {event.name!r} names unknown forms {unknown}")
        for form in self.forms:
            for group in form.groups:
                names = [i.name for i in group.items]
                if len(set(names)) != len(names):
                    raise ValueError(f"item group {group.name!r} repeats item names {names}")
                for item in group.items:
                    if item.codelist is not None and item.codelist not in codelists:
                        raise ValueError(
                            f"item {group.name}.{item.name} names unknown code list {item.codelist!r}"
                        )
                    wanted = set(item.units) | {c.unit for c in item.range_checks if c.unit is not None}
                    if wanted - units:
                        raise ValueError(
                            f"item {group.name}.{item.name} names unknown units {sorted(wanted - units)}"
                        )
        return self


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
    design: Design = Field(default_factory=Design)
    report: ReportSettings = Field(default_factory=ReportSettings)
    #: The case report forms (``[crf]``), e.g. read from an ODM study by ``immunosep protocol import-odm``;
    #: optional and descriptive: the platform's own forms are ``conduct.odm.crf_definition``'s.
    crf: CrfDefinition | None = None
    monitoring: Monitoring = Field(default_factory=Monitoring)

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
