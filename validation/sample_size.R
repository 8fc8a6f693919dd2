# Reference values for immunosep.stats.sample_size (run from the repo root: Rscript validation/sample_size.R).
# normal: power.prop.test (tight uniroot tolerance); Fleiss continuity correction and Cohen's arcsine written
# from the formulas (Fleiss, Levin & Paik 2003 eq. 4.14-4.15; Cohen 1988 ch. 6); exact power of the
# two-sided Fisher test by calling fisher.test on every pair of outcomes (slow, independent of the
# hypergeometric shortcut used in Python).
source("validation/common.R")

fleiss <- function(n, d) n / 4 * (1 + sqrt(1 + 4 / (n * d)))^2
fisher_power <- function(n, p1, p2, alpha) {
  pw <- 0
  for (x1 in 0:n) for (x2 in 0:n) {
    p <- fisher.test(matrix(c(x1, n - x1, x2, n - x2), 2, byrow = TRUE))$p.value
    if (p <= alpha) pw <- pw + dbinom(x1, n, p1) * dbinom(x2, n, p2)
  }
  pw
}
designs <- list(c(0.40, 0.20, 0.05, 0.90), c(0.50, 0.20, 0.05, 0.80), c(0.30, 0.15, 0.01, 0.85))
out <- lapply(designs, function(s) {
  p1 <- s[1]; p2 <- s[2]; alpha <- s[3]; power <- s[4]
  n <- power.prop.test(p1 = p1, p2 = p2, sig.level = alpha, power = power, tol = 1e-12)$n
  h <- 2 * asin(sqrt(p1)) - 2 * asin(sqrt(p2))
  list(p1 = p1, p2 = p2, alpha = alpha, power = power, normal_n = n, normal_cc_n = fleiss(n, abs(p1 - p2)),
       arcsine_n = 2 * ((qnorm(1 - alpha / 2) + qnorm(power)) / h)^2,
       normal_power_at_ceiling = power.prop.test(n = ceiling(n), p1 = p1, p2 = p2, sig.level = alpha)$power)
})
# The ImmunoSep plan: 40% vs 20%, alpha .05, power .90. Exact Fisher power around the answer (117 per group)
exact <- lapply(c(20, 45, 116, 117), function(n) list(n = n, power = fisher_power(n, 0.40, 0.20, 0.05)))
write_ref(list(source = "R power.prop.test; Fleiss 2003 eq 4.15; Cohen h; fisher.test enumeration",
               designs = out, fisher_power_40_20 = exact), "sample_size")
