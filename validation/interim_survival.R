# Reference values for a survival interim look (analysis/interim.py, endpoint = "survival"):
# the signed log-rank z (survival::survdiff; positive favours treatment), the Cox hazard ratio and the SE of
# its log (survival::coxph, Efron ties), the boundaries at the observed information and the monitoring
# quantities (rpact getAnalysisResults for survival with the observed events and log-rank statistic).
# A small fixed dataset (drawn once with a seed and written into the reference file), to day 28.
source("validation/common.R")
suppressPackageStartupMessages({ library(survival); library(rpact) })

set.seed(20)
n <- 120
arm <- rep(c("precision", "placebo"), each = n / 2)
rate <- ifelse(arm == "precision", 0.012, 0.030)
death <- ceiling(rexp(n, rate))
last_contact <- sample(10:90, n, replace = TRUE)
horizon <- 28
event <- as.integer(death <= horizon & death <= last_contact)
time <- ifelse(event == 1, death, pmin(last_contact, horizon))
time <- pmax(time, 1)

sd <- survdiff(Surv(time, event) ~ factor(arm, levels = c("precision", "placebo")))
observed <- sd$obs[1]; expected <- sd$exp[1]
z <- sign(expected - observed) * sqrt(sd$chisq)
fit <- coxph(Surv(time, event) ~ I(arm == "precision"), ties = "efron")
log_hr <- unname(coef(fit)); se <- unname(sqrt(diag(vcov(fit))))

hr1 <- 0.6
planned <- getDesignGroupSequential(kMax = 3, alpha = 0.025, beta = 0.1, sided = 1, typeOfDesign = "asOF",
                                    informationRates = c(1 / 3, 2 / 3, 1))
max_events <- getSampleSizeSurvival(planned, hazardRatio = hr1)$maxNumberOfEvents
events <- sum(event)
t1 <- events / max_events
design <- getDesignGroupSequential(kMax = 3, alpha = 0.025, beta = 0.1, sided = 1, typeOfDesign = "asOF",
                                   informationRates = c(t1, 2 / 3, 1))
# rpact's log-rank statistic is positive for a hazard ratio above 1: our z (positive favours treatment) negated
ds <- getDataset(overallEvents = events, overallLogRanks = -z, overallAllocationRatios = 1)
res <- getAnalysisResults(design, ds, stage = 1, directionUpper = FALSE, thetaH1 = hr1,
                          nPlanned = c(max_events * 2 / 3 - events, max_events / 3))
crit <- design$criticalValues[1]
write_ref(list(
  source = paste("R survival", as.character(packageVersion("survival")), "survdiff, coxph (efron); rpact",
                 as.character(packageVersion("rpact")), "getSampleSizeSurvival, getAnalysisResults"),
  data = list(usubjid = sprintf("S01-%04d", seq_len(n)), arm = arm, aval = time, cnsr = 1L - event),
  horizon_day = horizon, hazard_ratio_h1 = hr1, information_rates = c(1 / 3, 2 / 3, 1),
  max_events = max_events, events = events, information_rate = t1,
  observed = observed, expected = expected, z = z, log_hazard_ratio = log_hr, se = se,
  efficacy_z = crit, rejected = z >= crit,
  rci_hazard_ratio = exp(c(log_hr - crit * se, log_hr + crit * se)),
  repeated_p = res$repeatedPValues[1],
  conditional_power_h1 = res$conditionalPower[3],
  conditional_rejection_probability = res$conditionalRejectionProbabilities[1]
), "interim_survival")
