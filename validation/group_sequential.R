# Reference values for immunosep.stats.group_sequential (run from the repo root:
# Rscript validation/group_sequential.R). R rpact (Wassmer & Pahlke; Debian r-cran-rpact):
# getDesignGroupSequential (boundaries, stage levels, alpha and beta spent, power),
# getDesignCharacteristics (shift = drift^2, inflation factor, expected sizes relative to the fixed design),
# getPowerAndAverageSampleNumber (stopping probabilities under H0 and H1), getSampleSizeRates (two
# proportions, normal approximation) and getSampleSizeSurvival (log-rank, Schoenfeld events).
# The grid: 2-5 looks (equally spaced, and one uneven set), O'Brien-Fleming, Pocock and Hwang-Shih-DeCani
# (gamma -4, -2, 1) alpha spending, one- and two-sided, no futility, and beta-spending futility (binding and
# non-binding) for one-sided designs.
source("validation/common.R")
suppressPackageStartupMessages(library(rpact))

alpha_types <- list(
  list(name = "obrien-fleming", type = "asOF", gamma = NA),
  list(name = "pocock", type = "asP", gamma = NA),
  list(name = "hwang-shih-decani", type = "asHSD", gamma = -4),
  list(name = "hwang-shih-decani", type = "asHSD", gamma = -2),
  list(name = "hwang-shih-decani", type = "asHSD", gamma = 1)
)
beta_types <- list(
  list(name = "obrien-fleming", type = "bsOF", gamma = NA),
  list(name = "pocock", type = "bsP", gamma = NA),
  list(name = "hwang-shih-decani", type = "bsHSD", gamma = -2)
)
rates_sets <- list(c(0.5, 1), c(1 / 3, 2 / 3, 1), c(0.25, 0.5, 0.75, 1), c(0.2, 0.4, 0.6, 0.8, 1),
                   c(0.3, 0.7, 1))

na_null <- function(x) if (is.null(x) || all(is.na(x))) NA else as.numeric(x)
gamma_or_null <- function(g) if (is.na(g)) NA else g

one_design <- function(rates, at, sided, bt = NULL, binding = FALSE, beta = 0.2) {
  alpha <- if (sided == 1) 0.025 else 0.05
  args <- list(kMax = length(rates), alpha = alpha, beta = beta, sided = sided, informationRates = rates,
               typeOfDesign = at$type, tolerance = 1e-10)
  if (!is.na(at$gamma)) args$gammaA <- at$gamma
  if (!is.null(bt)) {
    args$typeBetaSpending <- bt$type
    if (!is.na(bt$gamma)) args$gammaB <- bt$gamma
    args$bindingFutility <- binding
  }
  d <- do.call(getDesignGroupSequential, args)
  dc <- getDesignCharacteristics(d)
  shift <- dc$shift
  pw <- getPowerAndAverageSampleNumber(d, theta = c(0, 0.5, 1), nMax = shift)
  rates_ss <- getSampleSizeRates(d, pi1 = 0.4, pi2 = 0.2)
  surv <- getSampleSizeSurvival(d, hazardRatio = 0.7, lambda2 = log(2) / 12, accrualTime = c(0, 24),
                                followUpTime = 12)
  per_theta <- function(j) list(
    reject = as.numeric(pw$rejectPerStage[, j]),
    futility = na_null(pw$futilityPerStage[, j]),
    expected_fraction = as.numeric(pw$averageSampleNumber[j]) / shift)
  list(
    inputs = list(information_rates = rates, alpha = alpha, beta = beta, sided = sided,
                  alpha_spending = at$name, alpha_gamma = gamma_or_null(at$gamma),
                  beta_spending = if (is.null(bt)) "none" else bt$name,
                  beta_gamma = if (is.null(bt)) NA else gamma_or_null(bt$gamma),
                  binding_futility = binding),
    critical_values = as.numeric(d$criticalValues),
    futility_bounds = na_null(d$futilityBounds),
    stage_levels = as.numeric(d$stageLevels),
    alpha_spent = as.numeric(d$alphaSpent),
    beta_spent = na_null(d$betaSpent),
    power = as.numeric(d$power),
    shift = shift,
    inflation_factor = dc$inflationFactor,
    asn_h0 = dc$averageSampleNumber0, asn_h01 = dc$averageSampleNumber01, asn_h1 = dc$averageSampleNumber1,
    h0 = per_theta(1), h01 = per_theta(2), h1 = per_theta(3),
    rates = list(pi1 = 0.4, pi2 = 0.2, n_fixed = getSampleSizeRates(pi1 = 0.4, pi2 = 0.2, alpha = alpha,
                                                                  beta = beta, sided = sided)$nFixed,
                 max_n = rates_ss$maxNumberOfSubjects, n_per_look = as.numeric(rates_ss$numberOfSubjects),
                 expected_h0 = rates_ss$expectedNumberOfSubjectsH0,
                 expected_h01 = rates_ss$expectedNumberOfSubjectsH01,
                 expected_h1 = rates_ss$expectedNumberOfSubjectsH1),
    survival = list(hazard_ratio = 0.7, median_control = 12, accrual_time = 24, follow_up_time = 12,
                    max_events = surv$maxNumberOfEvents,
                    events_per_look = as.numeric(surv$eventsPerStage),
                    expected_events_h0 = surv$expectedEventsH0, expected_events_h01 = surv$expectedEventsH01,
                    expected_events_h1 = surv$expectedEventsH1,
                    max_subjects = surv$maxNumberOfSubjects)
  )
}

designs <- list()
for (rates in rates_sets) for (at in alpha_types) {
  for (sided in c(1, 2)) designs[[length(designs) + 1]] <- one_design(rates, at, sided)
  if (length(rates) >= 2) for (binding in c(FALSE, TRUE)) {
    bt <- beta_types[[(length(designs) %% length(beta_types)) + 1]]
    designs[[length(designs) + 1]] <- one_design(rates, at, 1, bt, binding)
  }
}
# The example protocol (src/immunosep/protocol/examples/immunosep_gsd.toml, docs/design.md): 3 equally spaced
# looks, O'Brien-Fleming alpha spending one-sided .025, non-binding O'Brien-Fleming futility, power .90.
protocol_example <- one_design(c(1 / 3, 2 / 3, 1), alpha_types[[1]], 1, beta_types[[1]], FALSE, beta = 0.1)
# Interim analyses (getAnalysisResults, normalApproximation = TRUE) of a two-arm trial of means with sd 2 and
# 60 patients per look, the observed information equal to the planned one: overall z, effect and its
# standard error (pooled SD), repeated CIs and P-values, conditional power under thetaH1 = 0.8 (assumedStDev
# 2, nPlanned the remaining looks' patients) and the conditional rejection probability.
interim_case <- function(d, means1, means2, name) {
  k_max <- d$kMax
  n <- rep(30, length(means1))
  ds <- getDataset(n1 = n, n2 = n, means1 = means1, means2 = means2, stDevs1 = rep(2, length(n)),
                   stDevs2 = rep(2.2, length(n)))
  looks <- lapply(seq_along(means1), function(stage) {
    planned <- if (stage < k_max) rep(60, k_max - stage) else NULL
    r <- if (is.null(planned)) getAnalysisResults(d, ds, normalApproximation = TRUE, stage = stage)
         else getAnalysisResults(d, ds, normalApproximation = TRUE, thetaH1 = 0.8, assumedStDev = 2,
                                 nPlanned = planned, stage = stage)
    st <- getStageResults(d, ds, normalApproximation = TRUE, stage = stage)
    n1 <- st$overallSampleSizes1[stage]; n2 <- st$overallSampleSizes2[stage]
    sp <- sqrt(((n1 - 1) * st$overallStDevs1[stage]^2 + (n2 - 1) * st$overallStDevs2[stage]^2) / (n1 + n2 - 2))
    list(stage = stage, n_total = n1 + n2, z = st$overallTestStatistics[stage], effect = st$effectSizes[stage],
         se = sp * sqrt(1 / n1 + 1 / n2),
         rci = c(r$repeatedConfidenceIntervalLowerBounds[stage], r$repeatedConfidenceIntervalUpperBounds[stage]),
         repeated_p = r$repeatedPValues[stage],
         conditional_power = if (stage < k_max) r$conditionalPower[k_max] else NA,
         conditional_rejection_probability = r$conditionalRejectionProbabilities[stage])
  })
  list(name = name, information_rates = d$informationRates, alpha = d$alpha, sided = d$sided,
       alpha_spending = switch(d$typeOfDesign, asOF = "obrien-fleming", asP = "pocock", asHSD = "hwang-shih-decani"),
       alpha_gamma = if (d$typeOfDesign == "asHSD") d$gammaA else NA, theta_h1 = 0.8, sd = 2, n_max = 60 * k_max,
       looks = looks)
}
interim <- list(
  interim_case(getDesignGroupSequential(kMax = 3, alpha = 0.025, typeOfDesign = "asOF"),
               c(1.2, 1.0, 1.1), c(0.5, 0.6, 0.4), "3 looks, O'Brien-Fleming, one-sided"),
  interim_case(getDesignGroupSequential(kMax = 3, alpha = 0.05, sided = 2, typeOfDesign = "asP"),
               c(1.2, 1.0), c(0.5, 0.6), "3 looks, Pocock, two-sided"),
  interim_case(getDesignGroupSequential(kMax = 4, alpha = 0.025, typeOfDesign = "asHSD", gammaA = -2),
               c(1.3, 0.9, 1.4), c(0.2, 0.6, 0.3), "4 looks, HSD(-2), one-sided")
)
write_ref(list(source = paste("R rpact", as.character(packageVersion("rpact")),
                              "getDesignGroupSequential, getDesignCharacteristics,",
                              "getPowerAndAverageSampleNumber, getSampleSizeRates, getSampleSizeSurvival"),
               designs = designs, protocol_example = protocol_example, interim = interim),
          "group_sequential")
