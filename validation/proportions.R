# Reference values for immunosep.stats.proportions and .contingency (run from the repo root:
#   Rscript validation/proportions.R). R 4.x base stats + epitools.
# Newcombe hybrid score (Newcombe 1998, Stat Med 17:873-890, method 10) is written out here from the
# paper's formula on top of R's Wilson interval (prop.test without continuity correction): an
# implementation independent of statsmodels' confint_proportions_2indep(method="newcomb").
source("validation/common.R")
suppressPackageStartupMessages(library(epitools))

cases <- list(
  c(46, 131, 26, 145), # ImmunoSep primary endpoint (JAMA 2025, Table 2)
  c(57, 131, 72, 145), # 28-day mortality
  c(90, 131, 98, 145), # 90-day mortality
  c(46, 59, 32, 66),   # SIDF reversal
  c(3, 20, 9, 21),     # small counts
  c(1, 15, 7, 14),
  c(40, 50, 10, 50)
)
z <- qnorm(0.975)
wilson <- function(x, n) prop.test(x, n, correct = FALSE)$conf.int
out <- lapply(cases, function(k) {
  x1 <- k[1]; n1 <- k[2]; x2 <- k[3]; n2 <- k[4]
  p1 <- x1 / n1; p2 <- x2 / n2; d <- p1 - p2
  w1 <- wilson(x1, n1); w2 <- wilson(x2, n2)
  newcombe <- c(d - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2), d + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
  wald <- d + c(-1, 1) * z * sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
  a1 <- (x1 + 1) / (n1 + 2); a2 <- (x2 + 1) / (n2 + 2)
  ac <- (a1 - a2) + c(-1, 1) * z * sqrt(a1 * (1 - a1) / (n1 + 2) + a2 * (1 - a2) / (n2 + 2))
  # epitools: rows = exposure (reference first), columns = outcome (no event first)
  tab <- matrix(c(n2 - x2, x2, n1 - x1, x1), nrow = 2, byrow = TRUE)
  or <- oddsratio.wald(tab)$measure[2, ]
  rr <- riskratio.wald(tab)$measure[2, ]
  m <- matrix(c(x1, n1 - x1, x2, n2 - x2), nrow = 2, byrow = TRUE)
  ft <- fisher.test(m)
  z90 <- qnorm(0.95)
  v1 <- prop.test(x1, n1, correct = FALSE, conf.level = 0.90)$conf.int
  v2 <- prop.test(x2, n2, correct = FALSE, conf.level = 0.90)$conf.int
  newcombe90 <- c(d - sqrt((p1 - v1[1])^2 + (v2[2] - p2)^2), d + sqrt((v1[2] - p1)^2 + (p2 - v2[1])^2))
  or90 <- oddsratio.wald(tab, conf.level = 0.90)$measure[2, ]
  list(
    counts = k, difference = d, newcombe = newcombe, newcombe90 = newcombe90, odds_ratio_ci90 = unname(or90[2:3]), wald = wald, agresti_caffo = ac,
    odds_ratio = unname(or[1]), odds_ratio_ci = unname(or[2:3]),
    relative_risk = unname(rr[1]), relative_risk_ci = unname(rr[2:3]),
    fisher_p = ft$p.value, fisher_conditional_mle = unname(ft$estimate),
    chi2 = unname(chisq.test(m, correct = FALSE)$statistic), chi2_p = chisq.test(m, correct = FALSE)$p.value,
    chi2_yates = unname(chisq.test(m, correct = TRUE)$statistic), chi2_yates_p = chisq.test(m, correct = TRUE)$p.value
  )
})
write_ref(list(source = "R prop.test (Wilson) + Newcombe 1998 method 10; epitools oddsratio.wald/riskratio.wald; fisher.test; chisq.test",
               cases = out), "proportions")

# Mantel-Haenszel over strata: mantelhaen.test (RBG CI, continuity correction by default).
# Breslow-Day: written from Breslow & Day (1980, vol. 1, eq. 4.30) with the MH OR, the expected cell found
# by uniroot (not the closed-form quadratic statsmodels uses).
breslow_day <- function(strata, psi) {
  stat <- 0; dev <- 0; vsum <- 0
  for (k in strata) {
    a <- k[1]; m1 <- k[2]; c <- k[3]; m2 <- k[4]; t <- a + c
    f <- function(A) A * (m2 - t + A) - psi * (m1 - A) * (t - A)
    lo <- max(0, t - m2); hi <- min(m1, t)
    A <- uniroot(f, c(lo, hi), tol = 1e-14)$root
    B <- m1 - A; C <- t - A; D <- m2 - t + A
    v <- 1 / (1 / A + 1 / B + 1 / C + 1 / D)
    stat <- stat + (a - A)^2 / v; dev <- dev + (a - A); vsum <- vsum + v
  }
  tarone <- stat - dev^2 / vsum # Tarone 1985
  df <- length(strata) - 1
  c(stat, pchisq(stat, df, lower.tail = FALSE), tarone, pchisq(tarone, df, lower.tail = FALSE))
}
mh_cases <- list(
  list(c(12, 25, 4, 23), c(34, 106, 22, 122)),                    # ImmunoSep primary by stratum
  list(c(5, 20, 2, 19), c(8, 30, 6, 31), c(10, 22, 3, 20), c(4, 12, 5, 14))
)
mh_out <- lapply(mh_cases, function(strata) {
  arr <- array(unlist(lapply(strata, function(k) c(k[1], k[3], k[2] - k[1], k[4] - k[3]))),
               dim = c(2, 2, length(strata)))
  mh <- mantelhaen.test(arr, correct = TRUE)
  mh0 <- mantelhaen.test(arr, correct = FALSE)
  bd <- breslow_day(strata, unname(mh$estimate))
  list(strata = strata, odds_ratio = unname(mh$estimate), ci = as.numeric(mh$conf.int),
       statistic = unname(mh$statistic), p = mh$p.value,
       statistic_uncorrected = unname(mh0$statistic), p_uncorrected = mh0$p.value,
       breslow_day = bd[1], breslow_day_p = bd[2], tarone = bd[3], tarone_p = bd[4],
       ci90 = as.numeric(mantelhaen.test(arr, conf.level = 0.90)$conf.int))
})
write_ref(list(source = "R mantelhaen.test; Breslow-Day from Breslow & Day 1980 eq. 4.30", cases = mh_out),
          "mantel_haenszel")

# Mantel-Haenszel test at its edges: R applies the continuity correction only where |DELTA| >= 0.5, and
# strata with no events (or only events) leave the test undefined (NaN). No Breslow-Day here: its expected
# cells do not exist in the empty strata.
mh_edge_cases <- list(
  list(c(5, 10, 5, 10), c(6, 12, 4, 8)),   # DELTA = 0
  list(c(3, 10, 2, 9), c(4, 8, 4, 8)),     # 0 < DELTA < 0.5
  list(c(4, 10, 2, 9), c(4, 8, 4, 8)),     # DELTA just above 0.5
  list(c(0, 10, 0, 10), c(0, 12, 0, 9)),   # no events
  list(c(10, 10, 10, 10), c(5, 5, 4, 4)),  # only events
  list(c(0, 10, 3, 10), c(0, 12, 2, 9))    # no events in the first group
)
mh_edge_out <- lapply(mh_edge_cases, function(strata) {
  arr <- array(unlist(lapply(strata, function(k) c(k[1], k[3], k[2] - k[1], k[4] - k[3]))),
               dim = c(2, 2, length(strata)))
  mh <- mantelhaen.test(arr, correct = TRUE)
  mh0 <- mantelhaen.test(arr, correct = FALSE)
  list(strata = strata, odds_ratio = unname(mh$estimate),
       statistic = unname(mh$statistic), p = mh$p.value,
       statistic_uncorrected = unname(mh0$statistic), p_uncorrected = mh0$p.value)
})
write_ref(list(source = "R mantelhaen.test (continuity correction only where |DELTA| >= 0.5)",
               cases = mh_edge_out), "mantel_haenszel_edges")
