# Reference values for logistic regression, stepwise selection, conditional logistic, subgroup interaction and
# the proportional-odds model (run from the repo root: Rscript validation/models.R).
# R: glm(binomial), drop1(test = "LRT") in a loop with the same rule as stepwise_logistic(), survival::clogit
# (exact), Wald interaction test written from coef/vcov, MASS::polr.
source("validation/common.R")
suppressPackageStartupMessages({library(survival); library(MASS)})

# A synthetic trial written once by this script (R's RNG, so independent of numpy), read back by the tests.
set.seed(20251208)
n <- 320
d <- data.frame(
  arm = rbinom(n, 1, 0.5),
  cci = rpois(n, 4.5),
  sofa = pmin(20, rpois(n, 9)),
  age = round(rnorm(n, 69, 13)),
  site = sample(c("s01", "s02", "s03", "s04", "s05"), n, replace = TRUE),
  stratum = sample(c("mals", "immunoparalysis"), n, replace = TRUE, prob = c(0.2, 0.8))
)
lp <- -1.2 + 0.9 * d$arm - 0.12 * (d$cci - 4.5) + 0.05 * (d$sofa - 9) +
  c(s01 = 0, s02 = 0.4, s03 = -0.3, s04 = 0.2, s05 = 0.6)[d$site] + 0.5 * d$arm * (d$stratum == "mals")
d$primary <- rbinom(n, 1, plogis(lp))
d$agegroup <- as.character(cut(d$age, c(-Inf, 60, 75, Inf), labels = c("a<60", "b60-75", "c>75")))
write.csv(d, "validation/reference/logistic_data.csv", row.names = FALSE)
d$site <- factor(d$site)

coefs <- function(fit, names) {
  s <- summary(fit)$coefficients
  lapply(setNames(names, names), function(nm) list(estimate = unname(s[nm, 1]), se = unname(s[nm, 2]),
                                                     p = unname(s[nm, 4])))
}
full <- glm(primary ~ arm + cci + sofa + age + site, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
full_coefs <- coefs(full, c("arm", "cci", "sofa", "age", "sites02", "sites05"))

# Stepwise: backward LR, remove if P > 0.10, re-enter if P < 0.05, arm forced (same rule as the Python loop).
candidates <- c("arm", "cci", "sofa", "age", "site")
current <- candidates; removed <- c(); steps <- list()
fitf <- function(vars) glm(reformulate(if (length(vars)) vars else "1", "primary"), family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
repeat {
  dr <- drop1(fitf(current), test = "LRT")
  pv <- dr[setdiff(current, "arm"), "Pr(>Chi)"]; names(pv) <- setdiff(current, "arm")
  if (!length(pv) || max(pv) <= 0.10) break
  worst <- names(which.max(pv))
  steps[[length(steps) + 1]] <- list(action = "remove", variable = worst, p = unname(max(pv)))
  current <- setdiff(current, worst); removed <- c(removed, worst)
  cand <- setdiff(removed, worst)
  if (length(cand)) {
    ep <- sapply(cand, function(v) anova(fitf(current), fitf(c(current, v)), test = "LRT")[2, "Pr(>Chi)"])
    if (min(ep) < 0.05) {
      best <- names(which.min(ep)); current <- c(current, best); removed <- setdiff(removed, best)
      steps[[length(steps) + 1]] <- list(action = "enter", variable = best, p = unname(min(ep)))
    }
  }
}
final <- fitf(current)
clog <- clogit(primary ~ arm + cci + sofa + strata(site), data = d, method = "exact")
cs <- summary(clog)$coefficients

# Subgroup: treatment-by-stratum and by-age-group interactions, Wald test from coef and vcov.
# (Not by site: site s03 has no events in the control arm, so arm x site is quasi-separated.)
sg <- glm(primary ~ arm * stratum, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
b <- coef(sg)["arm:stratummals"]; v <- vcov(sg)["arm:stratummals", "arm:stratummals"]
sg3 <- glm(primary ~ arm * agegroup, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
nm <- grep("^arm:", names(coef(sg3)), value = TRUE)
b3 <- coef(sg3)[nm]; w3 <- drop(t(b3) %*% solve(vcov(sg3)[nm, nm]) %*% b3)

# Proportional odds: ImmunoSep infection state on day 15 (JAMA 2025), precision vs placebo
lv <- c("resolution", "intermediate", "failure", "superinfection")
y <- factor(rep(rep(lv, 2), c(58, 11, 32, 30, 46, 9, 44, 46)), levels = lv, ordered = TRUE)
a <- rep(c(1, 0), c(131, 145))
po <- polr(y ~ a, Hess = TRUE, control = list(reltol = 1e-15))
y2 <- factor(rep(rep(lv[1:3], 2), c(10, 5, 3, 4, 6, 9)), levels = lv[1:3], ordered = TRUE)
a2 <- rep(c(1, 0), c(18, 19))
po2 <- polr(y2 ~ a2, Hess = TRUE, control = list(reltol = 1e-15))

write_ref(list(
  source = "R glm/drop1/anova LRT, survival::clogit exact, Wald interaction, MASS::polr",
  full = full_coefs, full_loglik = as.numeric(logLik(full)), full_aic = AIC(full),
  stepwise = list(selected = current, steps = steps, arm = coefs(final, "arm")$arm),
  clogit = list(arm = unname(cs["arm", c(1, 3)]), cci = unname(cs["cci", c(1, 3)]), sofa = unname(cs["sofa", c(1, 3)]),
                loglik = clog$loglik[2]),
  subgroup = list(interaction_p = unname(2 * pnorm(-abs(b / sqrt(v)))), interaction_chi2 = unname(b^2 / v),
                  agegroup_interaction_chi2 = w3, agegroup_interaction_p = pchisq(w3, length(nm), lower.tail = FALSE)),
  polr = list(coef = unname(coef(po)), zeta = unname(po$zeta), se = unname(sqrt(diag(vcov(po)))[1]),
              p = unname(2 * pnorm(-abs(coef(po) / sqrt(diag(vcov(po)))[1])))),
  polr_three_levels = list(coef = unname(coef(po2)), zeta = unname(po2$zeta))
), "models")
