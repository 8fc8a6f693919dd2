# The models of immunosep's statistical analysis plan (analysis/sap.py) in R, on the analysis datasets that
# benchmarks/bench_sap_vs_r.py writes: the R peer it times side by side with `run_sap` (issue 21, target 3).
#
#   Rscript validation/sap_at_scale.R DIR      # DIR holds adsl.csv, adtte.csv and config.json; writes DIR/r.json
#
# Same models and settings as the validation scripts (validation/models.R, survival.R, proportions.R):
# fisher.test per binary endpoint of Table 2 and mantelhaen.test over the strata; glm(binomial) of the primary
# endpoint on arm + cci + sofa_baseline + site and the backward LR stepwise loop of models.R (arm forced);
# survfit(conf.type = "log-log"), survdiff, coxph(ties = "efron") and cox.zph(transform = "km") per ADTTE
# parameter; MASS::polr of the day-15 infection state on arm; per outcome and subgroup variable the
# arm * subgroup glm with the Wald test of the interaction (as models.R) and the Woolf OR per subgroup.
# Not done here (done by run_sap, so its time includes them): the ROC/Youden cut-offs (config.json gives the
# SAP's), Newcombe intervals, the Table 3 counts and the sample-size calculation. Times exclude reading the CSVs
# (reported apart), as the Python side's excludes deriving the datasets.
suppressPackageStartupMessages({
  library(survival)
  library(MASS)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
cfg <- fromJSON(file.path(dir, "config.json"), simplifyVector = FALSE)
read_time <- system.time({
  adsl <- read.csv(file.path(dir, "adsl.csv"), stringsAsFactors = FALSE)
  adtte <- read.csv(file.path(dir, "adtte.csv"), stringsAsFactors = FALSE)
})[["elapsed"]]

treat <- cfg$treatment
control <- cfg$control
ctl <- glm.control(epsilon = 1e-14, maxit = 100)  # as validation/models.R
timing <- list()
out <- list()
start_all <- proc.time()
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
section <- function(name, expr) {
  s <- proc.time()[["elapsed"]]
  value <- force(expr)
  timing[[name]] <<- proc.time()[["elapsed"]] - s
  value
}

a <- adsl[adsl$analysed == 1, ]
a$arm01 <- as.numeric(a$arm == treat)

# Table 2: Fisher exact test per binary endpoint; Mantel-Haenszel OR of the primary endpoint over the strata
out$binary <- section("binary_endpoints", {
  res <- list()
  for (e in cfg$binary) {
    rows <- switch(e$population,
      analysed = a, sensitivity = a[a$sensfl == 1, ], sidf = a[a$sidffl == 1, ],
      a[a$stratum == e$population, ]
    )
    y <- rows[[e$variable]]
    ok <- !is.na(y)
    tab <- table(factor(rows$arm[ok], levels = c(treat, control)), factor(y[ok], levels = c(1, 0)))
    ft <- fisher.test(tab)
    res[[e$key]] <- list(p = ft$p.value, odds_ratio_conditional = unname(ft$estimate))
  }
  strata <- unlist(cfg$strata)
  s <- a[a$stratum %in% strata & !is.na(a$primary_endpoint), ]
  mh <- mantelhaen.test(table(
    factor(s$arm, levels = c(treat, control)), factor(s$primary_endpoint, levels = c(1, 0)),
    factor(s$stratum, levels = strata)
  ))
  res$mantel_haenszel <- list(estimate = unname(mh$estimate), p = mh$p.value)
  res
})

# Confirmatory model: glm full model and backward stepwise by LR test (the loop of validation/models.R)
out$logistic <- section("adjusted_primary", {
  d <- a[!is.na(a$primary_endpoint) & !is.na(a$cci) & !is.na(a$sofa_baseline), ]
  d <- data.frame(primary = d$primary_endpoint, arm = d$arm01, cci = d$cci, sofa_baseline = d$sofa_baseline,
                  site = factor(as.character(d$siteid)))
  fitf <- function(vars) {
    glm(reformulate(if (length(vars)) vars else "1", "primary"), family = binomial, data = d, control = ctl)
  }
  full <- fitf(c("arm", "cci", "sofa_baseline", "site"))
  current <- c("arm", "cci", "sofa_baseline", "site")
  removed <- c()
  repeat {
    dr <- drop1(fitf(current), test = "LRT")
    pv <- dr[setdiff(current, "arm"), "Pr(>Chi)"]
    names(pv) <- setdiff(current, "arm")
    if (!length(pv) || max(pv) <= 0.10) break
    worst <- names(which.max(pv))
    current <- setdiff(current, worst)
    removed <- c(removed, worst)
    cand <- setdiff(removed, worst)
    if (length(cand)) {
      ep <- sapply(cand, function(v) anova(fitf(current), fitf(c(current, v)), test = "LRT")[2, "Pr(>Chi)"])
      if (min(ep) < 0.05) {
        best <- names(which.min(ep))
        current <- c(current, best)
        removed <- setdiff(removed, best)
      }
    }
  }
  final <- fitf(current)
  s_full <- summary(full)$coefficients
  s_final <- summary(final)$coefficients
  list(
    arm_full = list(coef = s_full["arm", 1], se = s_full["arm", 2]),
    loglik_full = as.numeric(logLik(full)),
    selected = current,
    arm_stepwise = list(coef = s_final["arm", 1], se = s_final["arm", 2])
  )
})

# Survival: KM (log-log CI), log-rank, Cox (Efron) and the PH test per ADTTE parameter
out$survival <- section("survival", {
  res <- list()
  for (paramcd in unlist(cfg$tte)) {
    tte <- adtte[adtte$paramcd == paramcd, ]
    tte$event <- as.numeric(tte$cnsr == 0)
    tte$arm01 <- as.numeric(tte$arm == treat)
    km <- survfit(Surv(aval, event) ~ arm, data = tte, conf.type = "log-log")
    lr <- survdiff(Surv(aval, event) ~ arm, data = tte)
    cx <- coxph(Surv(aval, event) ~ arm01, data = tte, ties = "efron",
                control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 50))
    zph <- cox.zph(cx, transform = "km")
    res[[paramcd]] <- list(
      coef = unname(coef(cx)), se = unname(sqrt(diag(vcov(cx)))), logrank_chisq = lr$chisq,
      zph_chisq = unname(zph$table[1, "chisq"]), km_strata = length(km$strata)
    )
  }
  res
})

# Infection state on day 15: proportional odds (MASS::polr, as validation/models.R)
out$ordinal <- section("infection_day15", {
  lv <- unlist(cfg$levels)
  s <- a[a$infection_day15 %in% lv, ]
  y <- factor(s$infection_day15, levels = lv, ordered = TRUE)
  po <- polr(y ~ s$arm01, Hess = TRUE, control = list(reltol = 1e-15))
  list(coef = unname(coef(po)), se = unname(sqrt(diag(vcov(po)))[1]), zeta = unname(po$zeta))
})

# Subgroups: arm * subgroup glm per outcome and subgroup variable, Wald test of the interaction, Woolf ORs
out$subgroups <- section("subgroups", {
  res <- list()
  for (outcome in cfg$subgroup_outcomes) {
    for (by in cfg$subgroups) {
      y <- a[[outcome$variable]]
      if (by$variable == "stratum") {
        g <- a$stratum
      } else {
        v <- a[[by$variable]]
        g <- ifelse(v > by$cutoff, "high", "low")
      }
      d <- data.frame(y = y, arm = a$arm01, g = g)
      d <- d[complete.cases(d), ]
      fit <- glm(y ~ arm * g, family = binomial, data = d, control = ctl)
      nm <- grep("^arm:", names(coef(fit)), value = TRUE)
      b <- coef(fit)[nm]
      w <- drop(t(b) %*% solve(vcov(fit)[nm, nm]) %*% b)
      woolf <- lapply(split(d, d$g), function(s) {
        t <- table(factor(s$arm, levels = c(1, 0)), factor(s$y, levels = c(1, 0)))
        log((t[1, 1] * t[2, 2]) / (t[1, 2] * t[2, 1]))
      })
      res[[paste(outcome$key, by$variable, sep = ":")]] <- list(interaction_chisq = w, woolf_log_or = woolf)
    }
  }
  res
})

end_all <- proc.time()
total <- end_all[["elapsed"]] - start_all[["elapsed"]]
write(toJSON(list(
  r_version = R.version.string, read_seconds = read_time, seconds = total, cpu_seconds = cpu(end_all) - cpu(start_all),
  sections = timing, results = out
), auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(dir, "r.json"))
cat(sprintf("R: models %.2f s (reading the CSV files %.2f s)\n", total, read_time))
