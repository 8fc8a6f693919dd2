# Reference values for immunosep.stats.survival (run from the repo root: Rscript validation/survival.R).
# Data: survival::lung (NCCTG lung cancer; has tied times), written to CSV for the Python tests.
source("validation/common.R")
suppressPackageStartupMessages(library(survival))

d <- data.frame(time = lung$time, dead = lung$status - 1, female = lung$sex - 1, age = lung$age)
write.csv(d, "validation/reference/lung.csv", row.names = FALSE)

km <- survfit(Surv(time, dead) ~ 1, data = d, conf.type = "log-log")
km_f <- survfit(Surv(time, dead) ~ 1, data = d[d$female == 1, ], conf.type = "log-log")
sd <- survdiff(Surv(time, dead) ~ female, data = d)
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 50)
efron <- coxph(Surv(time, dead) ~ female + age, data = d, ties = "efron", control = ctl)
breslow <- coxph(Surv(time, dead) ~ female + age, data = d, ties = "breslow", control = ctl)
zph <- cox.zph(efron, transform = "km")
tab <- function(fit) {
  s <- summary(fit)$coefficients
  list(coef = unname(s[, "coef"]), se = unname(s[, "se(coef)"]), p = unname(s[, "Pr(>|z|)"]))
}
write_ref(list(
  source = "R survival: survfit(conf.type='log-log'), survdiff, coxph(ties='efron'/'breslow'), cox.zph(transform='km')",
  km = list(time = km$time, surv = km$surv, lower = km$lower, upper = km$upper, n_risk = km$n.risk),
  km_female = list(time = km_f$time, surv = km_f$surv, lower = km_f$lower, upper = km_f$upper),
  logrank = list(chisq = sd$chisq, p = pchisq(sd$chisq, 1, lower.tail = FALSE)),
  efron = tab(efron), breslow = tab(breslow),
  zph = list(chisq = unname(zph$table[1:2, "chisq"]), p = unname(zph$table[1:2, "p"]))
), "survival")
