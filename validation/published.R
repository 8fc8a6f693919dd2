# Independent recomputation in R of the statistics `immunosep reproduce` derives from the published counts
# (run from the repo root: Rscript validation/published.R). Reads the package's bundled copy of the JAMA 2025
# figures; Newcombe CI written from Newcombe 1998 method 10 on prop.test Wilson limits.
source("validation/common.R")
suppressPackageStartupMessages({library(epitools); library(MASS)})
pub <- fromJSON("src/immunosep/data/immunosep_published.json", simplifyVector = TRUE)

newcombe <- function(x1, n1, x2, n2) {
  p1 <- x1 / n1; p2 <- x2 / n2; d <- p1 - p2
  w1 <- prop.test(x1, n1, correct = FALSE)$conf.int; w2 <- prop.test(x2, n2, correct = FALSE)$conf.int
  c(d, d - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2), d + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
}
two <- function(a, b) {
  x1 <- a[1]; n1 <- a[2]; x2 <- b[1]; n2 <- b[2]
  or <- oddsratio.wald(matrix(c(n2 - x2, x2, n1 - x1, x1), 2, byrow = TRUE))$measure[2, ]
  list(difference = newcombe(x1, n1, x2, n2), odds_ratio = unname(or),
       fisher_p = fisher.test(matrix(c(x1, n1 - x1, x2, n2 - x2), 2, byrow = TRUE))$p.value)
}
t2 <- pub$table2_expected_statistics; rates <- pub$outcome_rates_for_calibration
binary <- list(
  primary = two(t2$primary_sofa_d9$precision, t2$primary_sofa_d9$placebo),
  mortality_28d = two(t2$mortality_28d$precision, t2$mortality_28d$placebo),
  mortality_28d_placebo_minus_precision = two(t2$mortality_28d$placebo, t2$mortality_28d$precision),
  mortality_90d = two(rates$mortality_90d$precision, rates$mortality_90d$placebo),
  sofa_d15_decrease = two(rates$sofa_d15_decrease$precision, rates$sofa_d15_decrease$placebo),
  sidf_reversal = two(rates$sidf_reversal$precision, rates$sidf_reversal$placebo),
  primary_mals = two(rates$primary_by_stratum$mals$precision, rates$primary_by_stratum$mals$placebo),
  primary_immunoparalysis = two(rates$primary_by_stratum$immunoparalysis$precision,
                                rates$primary_by_stratum$immunoparalysis$placebo)
)
# the alternatives `reproduce` tries for the printed 28-day P: Pearson chi-square without and with Yates
m <- t2$mortality_28d
m28 <- matrix(c(m$precision[1], m$precision[2] - m$precision[1], m$placebo[1], m$placebo[2] - m$placebo[1]),
              2, byrow = TRUE)
mortality_28d_p <- list(chisq = chisq.test(m28, correct = FALSE)$p.value,
                        yates = chisq.test(m28, correct = TRUE)$p.value)
s <- rates$primary_by_stratum
arr <- array(c(s$mals$precision[1], s$mals$placebo[1], s$mals$precision[2] - s$mals$precision[1],
               s$mals$placebo[2] - s$mals$placebo[1],
               s$immunoparalysis$precision[1], s$immunoparalysis$placebo[1],
               s$immunoparalysis$precision[2] - s$immunoparalysis$precision[1],
               s$immunoparalysis$placebo[2] - s$immunoparalysis$placebo[1]), dim = c(2, 2, 2))
mh <- mantelhaen.test(arr)
# logistic regression of the primary endpoint on arm (and stratum) from the stratum counts: OR with its Wald
# CI (confint.default) and its profile-likelihood CI (confint on a glm: MASS's profile method in R 4.2)
pat <- do.call(rbind, lapply(names(s), function(k) {
  v <- s[[k]]
  data.frame(y = c(rep(1:0, c(v$precision[1], v$precision[2] - v$precision[1])),
                   rep(1:0, c(v$placebo[1], v$placebo[2] - v$placebo[1]))),
             arm = rep(1:0, c(v$precision[2], v$placebo[2])), stratum = k)
}))
logit_or <- function(formula) {
  fit <- glm(formula, family = binomial, data = pat)
  list(odds_ratio = exp(unname(coef(fit)["arm"])), wald = exp(unname(confint.default(fit)["arm", ])),
       profile = exp(unname(suppressMessages(confint(fit))["arm", ])))
}
logistic <- list(unadjusted = logit_or(y ~ arm), stratum_adjusted = logit_or(y ~ arm + stratum))
inf <- rates$infection_day15
y <- factor(rep(rep(inf$levels, 2), c(inf$precision, inf$placebo)), levels = inf$levels, ordered = TRUE)
a <- rep(c(1, 0), c(sum(inf$precision), sum(inf$placebo)))
po <- polr(y ~ a, Hess = TRUE, control = list(reltol = 1e-15))
se <- sqrt(diag(vcov(po)))[1]
n_prec <- pub$consort$analysed$precision; n_plac <- pub$consort$analysed$placebo
t3 <- pub$table3_serious_aes_patients
table3 <- list()
for (term in names(t3)) {
  v <- t3[[term]]
  if (!is.list(v)) next
  for (rel in intersect(c("related", "unrelated"), names(v))) {
    x1 <- v[[rel]]$precision; x2 <- v[[rel]]$placebo
    table3[[paste(term, rel, sep = ":")]] <- fisher.test(matrix(c(x1, n_prec - x1, x2, n_plac - x2), 2, byrow = TRUE))$p.value
  }
}
write_ref(list(
  source = paste("R: Newcombe (method 10 on prop.test Wilson), epitools oddsratio.wald, fisher.test, chisq.test,",
                 "glm + confint.default/confint (profile), mantelhaen.test, MASS::polr"),
  binary = binary, mortality_28d_p = mortality_28d_p, logistic = logistic, mh = list(odds_ratio = unname(mh$estimate), ci = as.numeric(mh$conf.int)),
  ordinal = list(odds_ratio = exp(unname(coef(po))), ci = exp(unname(coef(po)) + c(-1, 1) * qnorm(0.975) * unname(se)),
                 p = unname(2 * pnorm(-abs(coef(po) / se)))),
  table3_fisher_p = table3
), "published")
