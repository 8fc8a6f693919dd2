"""Monte Carlo engine for trial design: many virtual trials, vectorized, scaled out with Dask.

A virtual trial here skips the database but shares everything else with a real one: the virtual-patient
model (enrolment by the protocol's classification thresholds, baseline SOFA scored by the clinical SOFA
code, daily SOFA, death, discharge, withdrawal), the endpoint kernel
(:func:`immunosep.clinical.sofa_endpoint.sofa_decrease`, windows and threshold from the protocol) and
the two-sided Fisher exact test (:func:`immunosep.stats.fisher.fisher_two_sided_p`, vectorized over
trials). Trials are simulated in fixed-size blocks of :data:`BLOCK_TRIALS`, each
block with its own seed spawned from the user's seed (:class:`numpy.random.SeedSequence`), so the result
for a given seed is identical whatever the number of workers or the scheduler.

Operating characteristics per endpoint (primary SOFA decrease; 28-day mortality): rejection rate of the
Fisher test at the protocol's two-sided alpha (power, or type I error with the treatment effect set to
zero), its Monte Carlo standard error ``sqrt(r (1 - r) / trials)``, mean event rates by arm, and the
distribution of the estimated effect (difference in proportions, sample odds ratio).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from immunosep.clinical.sofa_endpoint import sofa_decrease_achieved
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.simulate.cohort import allocate_arm_codes, check_model_protocol
from immunosep.simulate.model import ModelParameters
from immunosep.simulate.population import (
    biomarker_distributions,
    draw_enrolled_codes,
    draw_outcome_baseline,
    fitted_values,
    install_fitted,
    lab_distributions,
)
from immunosep.simulate.trajectories import draw_outcomes_flags, effective_treatment_flags, risk_reference

#: Trials per block: the unit of work and of seeding (changing it changes the random streams).
BLOCK_TRIALS = 200
ENDPOINTS = ("primary", "mortality_28d")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BlockCounts:
    """Per-trial 2x2 counts of one block: analysed patients and events by arm, for each endpoint."""

    n_precision: IntArray
    n_placebo: IntArray
    events: dict[str, tuple[IntArray, IntArray]]  # endpoint -> (precision events, placebo events)
    cpu_seconds: float = field(
        default=0.0, compare=False
    )  # CPU time the block took in its thread (benchmarks; not a result)


def simulate_block(
    seed: np.random.SeedSequence, n_trials: int, n_patients: int, params: ModelParameters, protocol: Protocol
) -> BlockCounts:
    """Simulate ``n_trials`` trials of ``n_patients`` randomized patients; return their 2x2 counts.

    Vectorized over the block: every step draws or derives the arrays of all ``n_trials * n_patients``
    patients at once (trial-major), the daily SOFA as one ``[patients, days]`` matrix.
    """
    started = time.thread_time()
    rng = np.random.default_rng(seed)
    # codes and flags instead of the string arrays of the one-trial API: the same draws (tested)
    enrolled = draw_enrolled_codes(rng, n_trials, n_patients, params, protocol, values=False)
    arm = allocate_arm_codes(rng, n_patients, protocol, trials=n_trials).ravel()
    allocated_precision = arm == protocol.arm_codes.index("precision")
    mals, precision = effective_treatment_flags(enrolled.biology, enrolled.stratum, allocated_precision)
    baseline = draw_outcome_baseline(rng, arm.shape[0], params, protocol)
    outcomes = draw_outcomes_flags(rng, mals, precision, baseline, params, protocol, allocated_precision)
    primary = sofa_decrease_achieved(outcomes.sofa, outcomes.death_day, protocol.endpoints.primary)
    mortality_day = protocol.endpoints.mortality.days[0]
    shape = (n_trials, n_patients)
    analysed = (~outcomes.withdrawn).reshape(shape)
    precision_arm = allocated_precision.reshape(shape) & analysed
    placebo_arm = ~allocated_precision.reshape(shape) & analysed
    flags = {
        "primary": primary.reshape(shape),
        "mortality_28d": (outcomes.death_day <= mortality_day).reshape(shape),
    }
    return BlockCounts(
        n_precision=precision_arm.sum(axis=1),
        n_placebo=placebo_arm.sum(axis=1),
        events={
            name: ((flag & precision_arm).sum(axis=1), (flag & placebo_arm).sum(axis=1))
            for name, flag in flags.items()
        },
        cpu_seconds=time.thread_time() - started,
    )


@dataclass(frozen=True)
class EndpointSummary:
    rejection_rate: float
    mcse: float
    rate_precision: float
    rate_placebo: float
    difference: dict[str, float]
    odds_ratio: dict[str, float]


@dataclass(frozen=True)
class DesignResult:
    trials: int
    patients: int
    seed: int
    null: bool
    alpha: float
    endpoints: dict[str, EndpointSummary]
    blocks: int
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = field(
        default=0.0, compare=False
    )  # CPU time of the blocks, summed over workers (benchmarks; not in as_dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``immunosep simulate design`` (proportions, not percent)."""
        rates = {k: e.rejection_rate for k, e in self.endpoints.items()}
        out: dict[str, Any] = {
            "trials": self.trials,
            "patients": self.patients,
            "seed": self.seed,
            "null": self.null,
            "alpha": self.alpha,
            "block_trials": BLOCK_TRIALS,
        }
        if self.null:
            out["type1_error"] = rates
        else:
            out["power"] = rates
        out["mcse"] = {k: e.mcse for k, e in self.endpoints.items()}
        out["mean_rates"] = {
            k: {"precision": e.rate_precision, "placebo": e.rate_placebo} for k, e in self.endpoints.items()
        }
        out["effect"] = {
            k: {"difference": e.difference, "odds_ratio": e.odds_ratio} for k, e in self.endpoints.items()
        }
        out.update(self.extra)
        return out


def _quantiles(values: FloatArray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": math.nan, "sd": math.nan, "q025": math.nan, "median": math.nan, "q975": math.nan}
    q025, median, q975 = np.quantile(finite, [0.025, 0.5, 0.975])
    return {
        "mean": float(finite.mean()),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        "q025": float(q025),
        "median": float(median),
        "q975": float(q975),
    }


def summarize(blocks: list[BlockCounts], alpha: float) -> dict[str, EndpointSummary]:
    """Rejection rates, MC errors, mean rates and effect distributions from the blocks' counts."""
    # Imported here, not at the top: the Dask worker processes import this module to simulate blocks and
    # never test; importing immunosep.stats would load statsmodels and lifelines in each of them.
    from immunosep.stats.fisher import fisher_two_sided_p

    n1 = np.concatenate([b.n_precision for b in blocks])
    n2 = np.concatenate([b.n_placebo for b in blocks])
    out: dict[str, EndpointSummary] = {}
    for name in ENDPOINTS:
        x1 = np.concatenate([b.events[name][0] for b in blocks])
        x2 = np.concatenate([b.events[name][1] for b in blocks])
        p = fisher_two_sided_p(x1, n1, x2, n2)
        reject = float(np.mean(p < alpha))
        with np.errstate(divide="ignore", invalid="ignore"):
            rate1, rate2 = x1 / n1, x2 / n2
            odds_ratio = (x1 * (n2 - x2)) / ((n1 - x1) * x2)
        out[name] = EndpointSummary(
            rejection_rate=reject,
            mcse=math.sqrt(reject * (1.0 - reject) / n1.size),
            rate_precision=float(np.nanmean(rate1)),
            rate_placebo=float(np.nanmean(rate2)),
            difference=_quantiles(np.asarray(rate1 - rate2, dtype=np.float64)),
            odds_ratio={
                k: v
                for k, v in _quantiles(np.asarray(odds_ratio, dtype=np.float64)).items()
                if k != "mean" and k != "sd"
            },
        )
    return out


def block_plan(trials: int, seed: int) -> list[tuple[np.random.SeedSequence, int]]:
    """The blocks of a run: a spawned seed and a trial count each (independent of the workers)."""
    n_blocks = max(1, math.ceil(trials / BLOCK_TRIALS))
    seeds = np.random.SeedSequence(seed).spawn(n_blocks)
    sizes = [BLOCK_TRIALS] * (n_blocks - 1) + [trials - BLOCK_TRIALS * (n_blocks - 1)]
    return list(zip(seeds, sizes, strict=True))


Runner = Callable[
    [list[tuple[np.random.SeedSequence, int]], int, ModelParameters, Protocol], list[BlockCounts]
]


def run_serial(
    plan: list[tuple[np.random.SeedSequence, int]], patients: int, params: ModelParameters, protocol: Protocol
) -> list[BlockCounts]:
    """Run the blocks in this process (the baseline of the benchmark)."""
    return [simulate_block(seed, size, patients, params, protocol) for seed, size in plan]


#: Environment of local Dask worker processes. Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` (to return
#: memory to the OS), which also freezes glibc's mmap threshold at 128 KiB: every array of a block is then
#: a fresh mmap, page-faulted in, and a block costs twice the CPU time (measured). Arrays up to 32 MiB
#: come from the heap and freed memory is kept (a block needs ~50 MB).
WORKER_MALLOC_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": 1 << 28, "MALLOC_MMAP_THRESHOLD_": 1 << 25}
#: No dashboard, and the scheduler's HTTP routes on a free port (by default they take 8787, and warn when
#: another cluster on the machine has it).
QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": ":0"}


@contextmanager
def dask_client(*, scheduler: str | None = None, workers: int = 2, processes: bool = True) -> Iterator[Any]:
    """A Dask ``Client`` of a LocalCluster of ``workers``, or of the scheduler at ``scheduler``.

    One worker runs in-process threads (quick start); more workers are processes (true parallelism),
    started with :data:`WORKER_MALLOC_ENVIRON`. The cluster lives as long as the ``with`` block. Shared
    by every engine that sends blocks to Dask (this one and :mod:`immunosep.simulate.adaptive`).
    """
    import dask
    from dask.distributed import Client, LocalCluster

    cluster: LocalCluster | None = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ImmunoSepError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    else:
        environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC_ENVIRON.items()}
        with dask.config.set(environ):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes and workers > 1,
                dashboard_address=None,
                silence_logs=50,
                scheduler_kwargs=QUIET_SCHEDULER,
            )
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def dask_runner(
    *, scheduler: str | None = None, workers: int = 2, processes: bool = True
) -> Iterator[Runner]:
    """A runner that sends blocks to Dask (:func:`dask_client`); a sample-size search reuses its cluster."""
    with dask_client(scheduler=scheduler, workers=workers, processes=processes) as client:
        yield client_runner(client)


@dataclass(frozen=True)
class ShippedModel:
    """What a worker needs to simulate blocks: the parameters, the protocol and the fits made from them
    in the client (distributions, the death-risk reference and its table), so that no worker refits."""

    params: ModelParameters
    protocol: Protocol
    fitted: dict[str, object]


def ship_model(params: ModelParameters, protocol: Protocol) -> ShippedModel:
    """Fit once here (cached per pair) and bundle the fits with the pair."""
    biomarker_distributions(params, protocol)
    lab_distributions(params, protocol)
    risk_reference(params, protocol)
    return ShippedModel(params, protocol, fitted_values(params, protocol))


def simulate_shipped_block(
    seed: np.random.SeedSequence, n_trials: int, n_patients: int, model: ShippedModel
) -> BlockCounts:
    """:func:`simulate_block` in a worker: the shipped fits become the worker's first."""
    install_fitted(model.params, model.protocol, model.fitted)
    return simulate_block(seed, n_trials, n_patients, model.params, model.protocol)


def client_runner(client: Any) -> Runner:
    """A runner that sends the blocks of this engine to an open Dask ``client``.

    The model is scattered to every worker once per (parameters, protocol) pair and kept for the
    runner's life, so that the workers keep one copy of it, and of its fits, across runs (a sample-size
    search runs many).
    """
    shipped: dict[tuple[int, int], tuple[Any, ModelParameters, Protocol]] = {}

    def run(
        plan: list[tuple[np.random.SeedSequence, int]],
        patients: int,
        params: ModelParameters,
        protocol: Protocol,
    ) -> list[BlockCounts]:
        key = (id(params), id(protocol))
        if key not in shipped:
            future = client.scatter(ship_model(params, protocol), broadcast=True, hash=False)
            shipped[key] = (future, params, protocol)  # the pair is kept so its ids stay unique
        model_future = shipped[key][0]
        futures = [
            client.submit(simulate_shipped_block, seed, size, patients, model_future, pure=False)
            for seed, size in plan
        ]
        results: list[BlockCounts] = client.gather(futures)
        return results

    return run


def design(
    params: ModelParameters,
    protocol: Protocol,
    *,
    trials: int,
    patients: int,
    seed: int = 20251208,
    null: bool = False,
    scheduler: str | None = None,
    workers: int = 2,
    use_dask: bool = True,
    runner: Runner | None = None,
) -> DesignResult:
    """Operating characteristics of the protocol's design by simulating ``trials`` virtual trials.

    Blocks run on ``runner`` when given, else on a Dask cluster (``use_dask``), else in this process.
    """
    check_model_protocol(protocol)
    if trials < 1 or patients < 2:
        raise ImmunoSepError(f"need at least 1 trial and 2 patients, got {trials} trials of {patients}")
    if workers < 1:
        raise ImmunoSepError(f"--workers must be at least 1, got {workers}")
    model = params.with_null_effect() if null else params
    plan = block_plan(trials, seed)
    if runner is not None:
        blocks = runner(plan, patients, model, protocol)
    elif use_dask:
        with dask_runner(scheduler=scheduler, workers=workers) as run:
            blocks = run(plan, patients, model, protocol)
    else:
        blocks = run_serial(plan, patients, model, protocol)
    alpha = protocol.sample_size.alpha_two_sided
    return DesignResult(
        trials=trials,
        patients=patients,
        seed=seed,
        null=null,
        alpha=alpha,
        endpoints=summarize(blocks, alpha),
        blocks=len(plan),
        cpu_seconds=sum(b.cpu_seconds for b in blocks),
    )


def sample_size_by_simulation(
    params: ModelParameters,
    protocol: Protocol,
    *,
    target_power: float,
    trials: int,
    seed: int = 20251208,
    endpoint: str = "primary",
    max_patients: int = 2000,
    run: Runner = run_serial,
) -> dict[str, Any]:
    """Smallest total number randomized whose simulated power reaches ``target_power`` (bisection).

    Every candidate size reuses the same seeds (common random numbers), so the power curve is smooth
    enough to bisect; sizes are multiples of the ratio sum so the arms keep the protocol's ratio.
    """
    if not 0 < target_power < 1:
        raise ImmunoSepError(f"target power must be between 0 and 1, got {target_power}")
    unit = sum(protocol.randomization.ratio)
    alpha = protocol.sample_size.alpha_two_sided
    plan = block_plan(trials, seed)

    def power(n: int) -> EndpointSummary:
        return summarize(run(plan, n, params, protocol), alpha)[endpoint]

    low, high = unit * 5, unit * math.ceil(max_patients / unit)
    at_high = power(high)
    if at_high.rejection_rate < target_power:
        raise ImmunoSepError(
            f"even {high} patients give only {at_high.rejection_rate:.3f} power for {endpoint}; "
            "raise the maximum or revisit the design"
        )
    best, best_summary = high, at_high
    while high - low > unit:
        mid = unit * ((low + high) // (2 * unit))
        summary = power(mid)
        if summary.rejection_rate >= target_power:
            high, best, best_summary = mid, mid, summary
        else:
            low = mid
    return {
        "endpoint": endpoint,
        "target_power": target_power,
        "patients": best,
        "power": best_summary.rejection_rate,
        "mcse": best_summary.mcse,
        "trials_per_size": trials,
    }
