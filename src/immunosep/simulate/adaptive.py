"""Bayesian response-adaptive designs by simulation: per-stratum beta-binomial models, RAR, looks, calibration.

A design (:class:`AdaptiveDesign`, read from a TOML file such as the bundled ``adaptive_design.toml``)
enrolls up to ``patients`` patients, one immune stratum each (MALS, immunoparalysis), and looks at the
data after ``looks[k]`` patients have their primary outcome. In each stratum and arm the event rate of
the primary endpoint (a success: the SOFA decrease >= 1.4) has a beta prior and a binomial likelihood;
at each look the posterior probability of benefit ``P(p_trt > p_ctl | data)`` of every open stratum is
computed (:func:`immunosep.stats.bayes_binomial.prob_benefit`, shared with the conduct of an adaptive
trial: the exact finite sum for integer parameters, Gauss-Legendre quadrature
otherwise), the stratum stops for success above ``rules.success`` or for futility below
``rules.futility``, and the allocation probability to treatment for the next patients of the stratum
becomes ``P^c / (P^c + (1 - P)^c)`` (Thall and Wathen 2007), bounded so that control keeps at least
``allocation.min_control_share`` (and treatment ``allocation.min_treatment_share``). Borrowing between
strata is a fixed-weight power prior: each stratum's posterior adds ``model.borrowing`` times the other
strata's events and non-events of the same arm.

**The endpoint is simulated directly from per-stratum rates**, a Bernoulli draw per patient with the
stratum's rate in the arm (for speed: about 10^4 trials per second per core). The rates come from the
published trial (``scenario.source = "published"``, Table 2 by stratum through
:mod:`immunosep.published`), from the calibrated virtual-patient model (``"model"``: the same model,
protocol endpoint windows and endpoint kernel as :mod:`immunosep.simulate.montecarlo`, run once on a
large cohort by :func:`model_scenario`), or from the design file (``"rates"``). A time trend moves both
arms' rates by ``scenario.drift`` (absolute) from the first patient slot to the last, so the treatment
effect stays the same and the null stays null.

Trials run in blocks of :data:`BLOCK_TRIALS`, vectorized with numpy across the trials of a block; each
block draws all its random numbers up front from its own seed spawned from the user's seed (as
:func:`immunosep.simulate.montecarlo.block_plan` does), so results are identical on 1 or 2 Dask workers, and a
different success threshold reuses the very same patients (common random numbers; the calibration
bisects on them).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from immunosep.errors import ImmunoSepError
from immunosep.stats.bayes_binomial import (
    prob_benefit,
    rar_allocation,
)

if TYPE_CHECKING:
    from immunosep.protocol.schema import Protocol
    from immunosep.simulate.model import ModelParameters

#: Trials per block: the unit of work and of seeding (changing it changes the random streams).
BLOCK_TRIALS = 1000
#: The outcome of a stratum in a trial.
MAX_REACHED, SUCCESS, FUTILITY = 0, 1, 2
#: The strata the published scenario knows, in this order.
PUBLISHED_STRATA = ("mals", "immunoparalysis")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# -- the design file ------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trial(_Frozen):
    patients: int = Field(ge=2, le=1_000_000, description="maximum number of patients enrolled")
    looks: list[int] = Field(
        min_length=1, description="patients with outcome at each look; the last = patients"
    )
    refill: bool = Field(
        True,
        description="a stopped stratum's slots go to the open strata (else they are lost; looks by slot)",
    )

    @model_validator(mode="after")
    def _looks(self) -> Trial:
        looks = self.looks
        if any(b <= a for a, b in itertools.pairwise(looks)) or looks[0] < 1:
            raise ValueError(f"trial.looks must be positive and strictly increasing, got {looks}")
        if looks[-1] != self.patients:
            raise ValueError(f"the last look must be at trial.patients ({self.patients}), got {looks[-1]}")
        return self


class Model(_Frozen):
    prior: tuple[float, float] = Field((1.0, 1.0), description="Beta(a, b) prior of every arm's event rate")
    borrowing: float = Field(0.0, ge=0, le=1, description="power-prior weight of the other strata's data")

    @model_validator(mode="after")
    def _prior(self) -> Model:
        if min(self.prior) <= 0:
            raise ValueError(f"model.prior must be two positive numbers, got {list(self.prior)}")
        return self


class Allocation(_Frozen):
    adaptive: bool = Field(True, description="response-adaptive randomization (else 1:1 throughout)")
    power: float = Field(0.5, ge=0, le=10, description="c in P^c / (P^c + (1-P)^c)")
    min_control_share: float = Field(
        0.25, ge=0, le=0.5, description="lowest allocation probability to control"
    )
    min_treatment_share: float = Field(
        0.1, ge=0, le=0.5, description="lowest allocation probability to treatment"
    )


class Rules(_Frozen):
    success: float = Field(0.99, gt=0.5, lt=1, description="stop for success when P(benefit) > success")
    futility: float = Field(0.10, ge=0, lt=0.5, description="stop for futility when P(benefit) < futility")
    min_per_arm: int = Field(10, ge=0, description="an interim stop needs at least this many per arm")


class StratumRates(_Frozen):
    prevalence: float = Field(gt=0, description="share of the enrolled in this stratum (normalized)")
    control: float = Field(ge=0, le=1, description="event (success) rate on control")
    treatment: float = Field(ge=0, le=1, description="event (success) rate on treatment")


class ScenarioSpec(_Frozen):
    source: Literal["published", "model", "rates"] = "published"
    drift: float = Field(0.0, ge=-1, le=1, description="change of both arms' rates from first to last slot")
    strata: dict[str, StratumRates] = Field(default_factory=dict, description="rates when source = 'rates'")

    @model_validator(mode="after")
    def _rates(self) -> ScenarioSpec:
        if self.source == "rates" and not self.strata:
            raise ValueError("scenario.source = 'rates' needs [scenario.strata.<name>] tables")
        if self.source != "rates" and self.strata:
            raise ValueError(f"scenario.strata is only read with source = 'rates', not '{self.source}'")
        return self


class Calibration(_Frozen):
    target: float = Field(0.05, gt=0, lt=0.5, description="type I error the success threshold must keep")
    error: Literal["per_stratum", "family_wise"] = "per_stratum"
    partial_nulls: bool = Field(
        True, description="also each stratum null while the others keep their effect (strong control)"
    )
    mc_margin: float = Field(
        0.0, ge=0, le=5, description="keep error + mc_margin * its MC SE <= target (0: the estimate itself)"
    )


class AdaptiveDesign(_Frozen):
    """A Bayesian response-adaptive design and the scenario it is simulated under (docs/adaptive.md)."""

    trial: Trial
    model: Model = Model()
    allocation: Allocation = Allocation()
    rules: Rules = Rules()
    scenario: ScenarioSpec = ScenarioSpec()
    calibration: Calibration = Calibration()

    def with_changes(self, **sections: dict[str, Any]) -> AdaptiveDesign:
        """A copy with some fields of some sections replaced (validated again)."""
        data = self.model_dump()
        for name, fields in sections.items():
            data[name].update({k: v for k, v in fields.items() if v is not None})
        return parse_design(data)


def parse_design(data: dict[str, Any], *, source: str = "design") -> AdaptiveDesign:
    try:
        return AdaptiveDesign.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ImmunoSepError(f"{source}: invalid adaptive design: {problems}") from None


def bundled_design_path() -> Path:
    return Path(str(resources.files("immunosep.simulate").joinpath("adaptive_design.toml")))


def load_design(path: Path | None = None) -> AdaptiveDesign:
    """The design in ``path`` (TOML), or the bundled default (``simulate/adaptive_design.toml``)."""
    path = bundled_design_path() if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImmunoSepError(f"design file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImmunoSepError(f"{path}: not valid TOML: {exc}") from None
    return parse_design(data, source=str(path))


# -- scenarios ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """True per-stratum prevalence and event rates (arrays in the order of ``strata``) and the drift."""

    strata: tuple[str, ...]
    prevalence: FloatArray
    control: FloatArray
    treatment: FloatArray
    drift: float = 0.0
    source: str = "rates"

    def null(self) -> Scenario:
        """No treatment effect: treatment has the control rate in every stratum."""
        return Scenario(
            self.strata, self.prevalence, self.control, self.control.copy(), self.drift, self.source
        )

    def null_in(self, index: int) -> Scenario:
        """A partial null: no effect in stratum ``index``, the other strata keep theirs."""
        treatment = self.treatment.copy()
        treatment[index] = self.control[index]
        return Scenario(self.strata, self.prevalence, self.control, treatment, self.drift, self.source)

    @property
    def is_null(self) -> bool:
        return bool(np.all(self.treatment == self.control))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "drift": self.drift,
            "strata": {
                s: {"prevalence": float(p), "control": float(c), "treatment": float(t)}
                for s, p, c, t in zip(self.strata, self.prevalence, self.control, self.treatment, strict=True)
            },
        }


def _scenario(rates: dict[str, tuple[float, float, float]], drift: float, source: str) -> Scenario:
    strata = tuple(rates)
    values = np.array([rates[s] for s in strata], dtype=np.float64)
    prevalence = values[:, 0] / values[:, 0].sum()
    return Scenario(strata, prevalence, values[:, 1].copy(), values[:, 2].copy(), drift, source)


def published_scenario(drift: float = 0.0) -> Scenario:
    """Per-stratum rates of the published trial: prevalence among the analysed, primary endpoint by arm.

    MALS 12/25 precision vs 4/23 placebo, immunoparalysis 34/106 vs 22/122, MALS 48 of 276 analysed
    (read from the package's published figures, JAMA 2025).
    """
    from immunosep.published import counts, published_reference

    analysed = published_reference()["consort"]["strata_analysed"]
    rates = {}
    for stratum in PUBLISHED_STRATA:
        by_arm = counts("outcome_rates_for_calibration", "primary_by_stratum", stratum)
        n = analysed[stratum]["precision"] + analysed[stratum]["placebo"]
        rates[stratum] = (
            float(n),
            by_arm["placebo"][0] / by_arm["placebo"][1],
            by_arm["precision"][0] / by_arm["precision"][1],
        )
    return _scenario(rates, drift, "published")


def model_scenario(
    params: ModelParameters | None = None,
    protocol: Protocol | None = None,
    *,
    patients: int = 60_000,
    seed: int = 20251208,
) -> Scenario:
    """Per-stratum rates of the primary endpoint in the calibrated virtual-patient model.

    ``patients`` patients are enrolled by the protocol's classification, allocated 1:1 and followed by the
    model of :mod:`immunosep.simulate.montecarlo` (same functions, same endpoint kernel, windows and
    threshold from the protocol); withdrawn patients are not analysed. The MC SE of a rate is about
    ``sqrt(p(1-p) / (patients * prevalence / 2))``: 0.007 for MALS with the defaults. Default parameters
    and protocol are computed once per process.
    """
    if params is None and protocol is None and patients == 60_000 and seed == 20251208:
        return _default_model_scenario()
    return _model_scenario(params, protocol, patients, seed)


@cache
def _default_model_scenario() -> Scenario:
    return _model_scenario(None, None, 60_000, 20251208)


def _model_scenario(
    params: ModelParameters | None, protocol: Protocol | None, patients: int, seed: int
) -> Scenario:
    from immunosep.clinical.sofa_endpoint import sofa_decrease
    from immunosep.protocol import default_protocol
    from immunosep.simulate.cohort import allocate_arms, check_model_protocol
    from immunosep.simulate.model import default_parameters
    from immunosep.simulate.population import draw_baseline, draw_enrolled
    from immunosep.simulate.trajectories import draw_outcomes, effective_treatment

    protocol = default_protocol() if protocol is None else protocol
    params = default_parameters() if params is None else params
    check_model_protocol(protocol)
    rng = np.random.default_rng(seed)
    enrolled = draw_enrolled(rng, 1, patients, params, protocol)
    arms = allocate_arms(rng, patients, protocol)
    outcome_strata, effective_arms = effective_treatment(enrolled.biology, enrolled.stratum, arms)
    baseline = draw_baseline(rng, enrolled, params, protocol, full=False)
    outcomes = draw_outcomes(
        rng, outcome_strata, effective_arms, baseline, params, protocol, allocated_arms=arms
    )
    achieved = sofa_decrease(outcomes.sofa, outcomes.death_day, protocol.endpoints.primary).achieved
    analysed = ~outcomes.withdrawn
    rates = {}
    for stratum in PUBLISHED_STRATA:
        in_stratum = analysed & (enrolled.stratum == stratum)
        rate = {arm: float(achieved[in_stratum & (arms == arm)].mean()) for arm in ("precision", "placebo")}
        rates[stratum] = (float(in_stratum.sum()), rate["placebo"], rate["precision"])
    return _scenario(rates, 0.0, "model")


def resolve_scenario(
    spec: ScenarioSpec, params: ModelParameters | None = None, protocol: Protocol | None = None
) -> Scenario:
    """The scenario a design file asks for (rates from the published trial, the model or the file).

    ``params`` and ``protocol`` drive the virtual-patient model (source "model" only; default: bundled).
    """
    if spec.source == "published":
        return published_scenario(spec.drift)
    if spec.source == "model":
        found = model_scenario(params, protocol)
        return Scenario(found.strata, found.prevalence, found.control, found.treatment, spec.drift, "model")
    rates = {s: (r.prevalence, r.control, r.treatment) for s, r in spec.strata.items()}
    return _scenario(rates, spec.drift, "rates")


# -- one block of trials ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptiveBlock:
    """Per-trial results of one block (``T`` trials, ``S`` strata, ``K`` looks); arm 0 control, 1 treatment."""

    n: IntArray  # [T, S, 2] patients enrolled with outcome
    events: IntArray  # [T, S, 2] successes
    outcome: npt.NDArray[np.int8]  # [T, S] MAX_REACHED, SUCCESS or FUTILITY
    stop_look: npt.NDArray[np.int8]  # [T, S] look at which the stratum stopped (last look if it did not)
    allocation: FloatArray  # [T, K, S] allocation probability to treatment before look k (NaN: closed)
    prob_benefit: FloatArray  # [T, K, S] P(benefit) at look k (NaN: the stratum had stopped)


def _posterior_prob(design: AdaptiveDesign, n: IntArray, events: IntArray) -> FloatArray:
    """P(benefit) per trial and stratum from counts ``[T, S, 2]``, with the design's prior and borrowing."""
    a0, b0 = design.model.prior
    w = design.model.borrowing
    x = events.astype(np.float64)
    y = (n - events).astype(np.float64)
    if w > 0:
        x = x + w * (x.sum(axis=1, keepdims=True) - x)
        y = y + w * (y.sum(axis=1, keepdims=True) - y)
    return prob_benefit(a0 + x[..., 1], b0 + y[..., 1], a0 + x[..., 0], b0 + y[..., 0])


def simulate_adaptive_block(
    seed: np.random.SeedSequence, n_trials: int, design: AdaptiveDesign, scenario: Scenario, success: float
) -> AdaptiveBlock:
    """Simulate ``n_trials`` adaptive trials with success threshold ``success`` (vectorized over trials).

    All uniforms (stratum, allocation, outcome of every slot) are drawn first, so trials with another
    threshold see the same patients. Within a segment between looks the allocation probability of a
    stratum is fixed; each patient is allocated by a Bernoulli draw with it.
    """
    rng = np.random.default_rng(seed)
    n_slots = design.trial.patients
    looks = design.trial.looks
    n_strata = len(scenario.strata)
    u_stratum = rng.random((n_trials, n_slots))
    u_arm = rng.random((n_trials, n_slots))
    u_outcome = rng.random((n_trials, n_slots))

    n = np.zeros((n_trials, n_strata, 2), dtype=np.int64)
    events = np.zeros((n_trials, n_strata, 2), dtype=np.int64)
    is_open = np.ones((n_trials, n_strata), dtype=bool)
    outcome = np.full((n_trials, n_strata), MAX_REACHED, dtype=np.int8)
    stop_look = np.full((n_trials, n_strata), len(looks) - 1, dtype=np.int8)
    allocation = np.full((n_trials, len(looks), n_strata), np.nan)
    prob_record = np.full((n_trials, len(looks), n_strata), np.nan)
    share = np.full((n_trials, n_strata), 0.5)
    rates = np.stack([scenario.control, scenario.treatment], axis=1)  # [S, 2]
    fixed_cum = np.cumsum(scenario.prevalence)[:-1]
    alloc = design.allocation
    rules = design.rules
    start = 0
    for k, end in enumerate(looks):
        allocation[:, k, :] = np.where(is_open, share, np.nan)
        seg = slice(start, end)
        if design.trial.refill:
            weights = scenario.prevalence * is_open
            total = weights.sum(axis=1, keepdims=True)
            cum = np.cumsum(weights, axis=1)[:, :-1] / np.where(total > 0, total, 1.0)
            stratum = (u_stratum[:, seg, None] >= cum[:, None, :]).sum(axis=2)
            enrolled = np.broadcast_to(total > 0, stratum.shape)
        else:
            stratum = (u_stratum[:, seg, None] >= fixed_cum[None, None, :]).sum(axis=2)
            enrolled = np.take_along_axis(is_open, stratum, axis=1)
        treated = u_arm[:, seg] < np.take_along_axis(share, stratum, axis=1)
        rate = rates[stratum, treated.astype(np.int64)]
        if scenario.drift:
            rate = np.clip(rate + scenario.drift * np.arange(start, end) / max(n_slots - 1, 1), 0.0, 1.0)
        success_flag = u_outcome[:, seg] < rate
        for s in range(n_strata):
            mine = enrolled & (stratum == s)
            for arm, in_arm in ((0, ~treated), (1, treated)):
                sel = mine & in_arm
                n[:, s, arm] += sel.sum(axis=1)
                events[:, s, arm] += (sel & success_flag).sum(axis=1)
        start = end

        prob = _posterior_prob(design, n, events)
        prob_record[:, k, :] = np.where(is_open, prob, np.nan)
        last = k == len(looks) - 1
        may_stop = is_open & (last | (n.min(axis=2) >= rules.min_per_arm))
        won = may_stop & (prob > success)
        lost = may_stop & ~won & (prob < rules.futility)
        outcome[won], outcome[lost] = SUCCESS, FUTILITY
        stop_look[won | lost] = k
        is_open &= ~(won | lost)
        if alloc.adaptive:
            share = rar_allocation(prob, alloc.power, alloc.min_control_share, alloc.min_treatment_share)
    return AdaptiveBlock(n, events, outcome, stop_look, allocation, prob_record)


# -- runners (in process or on Dask) ---------------------------------------------------------------------

Plan = list[tuple[np.random.SeedSequence, int]]
AdaptiveRunner = Callable[[Plan, AdaptiveDesign, Scenario, float], list[AdaptiveBlock]]


def adaptive_plan(trials: int, seed: int) -> Plan:
    """The blocks of a run (seeds spawned from ``seed``), independent of the number of workers."""
    if trials < 1:
        raise ImmunoSepError(f"need at least 1 trial, got {trials}")
    n_blocks = math.ceil(trials / BLOCK_TRIALS)
    seeds = np.random.SeedSequence(seed).spawn(n_blocks)
    sizes = [BLOCK_TRIALS] * (n_blocks - 1) + [trials - BLOCK_TRIALS * (n_blocks - 1)]
    return list(zip(seeds, sizes, strict=True))


def run_adaptive_serial(
    plan: Plan, design: AdaptiveDesign, scenario: Scenario, success: float
) -> list[AdaptiveBlock]:
    """Run the blocks in this process (the benchmark's baseline)."""
    return [simulate_adaptive_block(seed, size, design, scenario, success) for seed, size in plan]


def adaptive_client_runner(client: Any) -> AdaptiveRunner:
    """A runner that sends the blocks to an open Dask client (:func:`montecarlo.dask_client`)."""

    def run(plan: Plan, design: AdaptiveDesign, scenario: Scenario, success: float) -> list[AdaptiveBlock]:
        futures = [
            client.submit(simulate_adaptive_block, seed, size, design, scenario, success, pure=False)
            for seed, size in plan
        ]
        results: list[AdaptiveBlock] = client.gather(futures)
        return results

    return run


# -- summaries -------------------------------------------------------------------------------------------


def _rate(flags: npt.NDArray[Any]) -> dict[str, float]:
    r = float(np.mean(flags))
    return {"estimate": r, "mcse": math.sqrt(r * (1.0 - r) / flags.size)}


def _mean(values: npt.NDArray[Any]) -> dict[str, float]:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {"estimate": math.nan, "mcse": math.nan}
    sd = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return {"estimate": float(finite.mean()), "mcse": sd / math.sqrt(finite.size)}


def concat_blocks(blocks: list[AdaptiveBlock]) -> AdaptiveBlock:
    return AdaptiveBlock(
        *(np.concatenate([getattr(b, f) for b in blocks]) for f in AdaptiveBlock.__dataclass_fields__)
    )


def summarize_adaptive(
    blocks: list[AdaptiveBlock], design: AdaptiveDesign, scenario: Scenario, success: float
) -> dict[str, Any]:
    """Operating characteristics per stratum and overall, each with its Monte Carlo standard error.

    ``success_rate`` is the power (or, under a null scenario, the type I error) of the stratum; the
    stop probabilities are per look; ``treatment_share`` is the share of the stratum's patients that got
    treatment (the allocation ratio reached) and ``final_allocation`` the allocation probability in
    force for the last segment the stratum was open; ``bias`` is the mean estimated difference in rates
    minus the true difference (averaged over slots when the rates drift).
    """
    b = concat_blocks(blocks)
    trials = b.n.shape[0]
    looks = design.trial.looks
    null = scenario.is_null
    strata: dict[str, Any] = {}
    true_drift_mean = scenario.drift * 0.5
    for s, name in enumerate(scenario.strata):
        size = b.n[:, s, :].sum(axis=1)
        won = b.outcome[:, s] == SUCCESS
        lost = b.outcome[:, s] == FUTILITY
        with np.errstate(divide="ignore", invalid="ignore"):
            share = b.n[:, s, 1] / size
            diff = b.events[:, s, 1] / b.n[:, s, 1] - b.events[:, s, 0] / b.n[:, s, 0]
        last_open = np.where(np.isnan(b.allocation[:, :, s]), -1, np.arange(len(looks))).max(axis=1)
        final_alloc = b.allocation[np.arange(trials), last_open, s]
        true_diff = float(
            np.clip(scenario.treatment[s] + true_drift_mean, 0, 1)
            - np.clip(scenario.control[s] + true_drift_mean, 0, 1)
        )
        strata[name] = {
            "true_rates": {"control": float(scenario.control[s]), "treatment": float(scenario.treatment[s])},
            "type1_error" if null else "power": _rate(won),
            "futility": _rate(lost),
            "no_decision": _rate(~won & ~lost),
            "stop_success_by_look": [_rate(won & (b.stop_look[:, s] == k)) for k in range(len(looks))],
            "stop_futility_by_look": [_rate(lost & (b.stop_look[:, s] == k)) for k in range(len(looks))],
            "expected_sample_size": _mean(size),
            "expected_by_arm": {"control": _mean(b.n[:, s, 0]), "treatment": _mean(b.n[:, s, 1])},
            "treatment_share": _mean(share),
            "min_treatment_share_seen": float(np.nanmin(share)) if np.isfinite(share).any() else math.nan,
            "final_allocation": _mean(final_alloc),
            "mean_allocation_by_look": [_mean(b.allocation[:, k, s])["estimate"] for k in range(len(looks))],
            "bias": {k: v - true_diff if k == "estimate" else v for k, v in _mean(diff).items()},
        }
    any_success = (b.outcome == SUCCESS).any(axis=1)
    total = b.n.sum(axis=(1, 2))
    return {
        "trials": trials,
        "null": null,
        "success_threshold": success,
        "futility_threshold": design.rules.futility,
        "looks": list(looks),
        "strata": strata,
        "overall": {
            "family_wise_type1_error" if null else "any_stratum_success": _rate(any_success),
            "expected_sample_size": _mean(total),
            "stopped_before_max": _rate(total < design.trial.patients),
        },
    }


def type1_error(blocks: list[AdaptiveBlock], kind: str, null_strata: list[int] | None = None) -> float:
    """False success rate among the strata ``null_strata`` (default all): the largest per stratum, or
    family-wise (a false success in any of them)."""
    won = concat_blocks(blocks).outcome == SUCCESS
    if null_strata is not None:
        won = won[:, null_strata]
    if kind == "family_wise":
        return float(won.any(axis=1).mean())
    return float(won.mean(axis=0).max())


def null_configurations(design: AdaptiveDesign, scenario: Scenario) -> list[tuple[str, Scenario, list[int]]]:
    """The nulls the type I error is controlled over: ``(name, scenario, strata without effect)``.

    The global null (no effect anywhere); with ``calibration.partial_nulls`` also, for each stratum with
    an effect in the scenario, that stratum null while the others keep their effect, since borrowing and
    refilling let one stratum's effect leak into another's decision.
    """
    all_strata = list(range(len(scenario.strata)))
    configurations = [("global", scenario.null(), all_strata)]
    if design.calibration.partial_nulls and len(all_strata) > 1:
        for index, name in enumerate(scenario.strata):
            partial = scenario.null_in(index)
            if scenario.treatment[index] != scenario.control[index] and not partial.is_null:
                configurations.append((name, partial, [index]))
    return configurations


def calibrate_success(
    design: AdaptiveDesign,
    scenario: Scenario,
    *,
    trials: int,
    seed: int,
    run: AdaptiveRunner = run_adaptive_serial,
    steps: int = 16,
) -> dict[str, Any]:
    """The smallest success threshold whose simulated type I error is <= the design's target (bisection).

    Every candidate reruns the same ``trials`` null trials (same seeds: common random numbers), so the
    error is a step function of the threshold; bisection on the logit of the threshold between 0.5 and
    1 - 1e-6 for ``steps`` steps. ``calibration.error`` says which error: ``per_stratum`` keeps every
    stratum's own false-success rate <= target (each stratum is its own claim), ``family_wise`` the
    chance of a false success in any stratum; the error is the largest over the null configurations of
    :func:`null_configurations` (the global null, and each partial null). The estimate carries Monte Carlo error (its MC SE is
    returned): fresh null trials scatter around the target by about that much, so ``mc_margin`` (in MC
    SEs) buys confidence that the true error is below the target, at some cost in power.
    """
    configurations = null_configurations(design, scenario)
    plan = adaptive_plan(trials, seed)
    target, kind = design.calibration.target, design.calibration.error
    margin = design.calibration.mc_margin

    def error(threshold: float) -> float:
        return max(
            type1_error(run(plan, design, sc, threshold), kind, nulls) for _, sc, nulls in configurations
        )

    def keeps(rate: float) -> bool:
        return rate + margin * math.sqrt(rate * (1.0 - rate) / trials) <= target

    low, high = 0.0, math.log((1 - 1e-6) / 1e-6)  # logits
    high_error = error(_expit(high))
    if not keeps(high_error):
        raise ImmunoSepError(f"even a success threshold of 1 - 1e-6 gives a type I error of {high_error:.4f}")
    for _ in range(steps):
        mid = (low + high) / 2.0
        if keeps(error(_expit(mid))):
            high = mid
        else:
            low = mid
    threshold = _expit(high)
    rate = error(threshold)
    return {
        "success_threshold": threshold,
        "type1_error": rate,
        "mcse": math.sqrt(rate * (1.0 - rate) / trials),
        "mc_margin": margin,
        "error": kind,
        "nulls": [name for name, _, _ in configurations],
        "target": target,
        "trials": trials,
        "seed": seed,
    }


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def run_design(
    design: AdaptiveDesign,
    *,
    trials: int,
    seed: int = 20251208,
    null: bool = False,
    calibrate: bool = False,
    calibration_trials: int | None = None,
    run: AdaptiveRunner = run_adaptive_serial,
    scenario: Scenario | None = None,
) -> dict[str, Any]:
    """Operating characteristics of ``design``: under the alternative and under the null (type I error).

    With ``calibrate`` the success threshold is first calibrated on ``calibration_trials`` null trials
    (seed spawned apart from the evaluation seed), then both scenarios are run with it on fresh trials, so
    the reported type I error is out of sample. ``null`` runs only the (global) null scenario; otherwise
    the partial nulls (one stratum without effect, the others with theirs) are reported too, as
    ``partial_nulls[stratum].type1_error``.
    """
    scenario = resolve_scenario(design.scenario) if scenario is None else scenario
    if trials < 1:
        raise ImmunoSepError(f"need at least 1 trial, got {trials}")
    calibration_seed, eval_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    out: dict[str, Any] = {"design": design.model_dump(), "scenario": scenario.as_dict(), "seed": seed}
    success = design.rules.success
    if calibrate:
        out["calibration"] = calibrate_success(
            design, scenario, trials=calibration_trials or trials, seed=calibration_seed, run=run
        )
        success = out["calibration"]["success_threshold"]
    plan = adaptive_plan(trials, eval_seed)
    out["null"] = summarize_adaptive(
        run(plan, design, scenario.null(), success), design, scenario.null(), success
    )
    if not null:
        out["alternative"] = summarize_adaptive(
            run(plan, design, scenario, success), design, scenario, success
        )
        partial = {}
        for name, sc, nulls in null_configurations(design, scenario)[1:]:
            won = concat_blocks(run(plan, design, sc, success)).outcome[:, nulls[0]] == SUCCESS
            partial[name] = {"type1_error": _rate(won)}
        if partial:
            out["partial_nulls"] = partial
    return out
