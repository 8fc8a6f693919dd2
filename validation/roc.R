# Reference values for immunosep.stats.roc (run from the repo root: Rscript validation/roc.R).
# Data: pROC::aSAH (aneurysmal subarachnoid haemorrhage; s100b and ndka vs poor outcome), written to CSV.
source("validation/common.R")
suppressPackageStartupMessages(library(pROC))
data(aSAH)
d <- data.frame(s100b = aSAH$s100b, ndka = aSAH$ndka, wfns = as.numeric(aSAH$wfns), poor = as.integer(aSAH$outcome == "Poor"))
write.csv(d, "validation/reference/asah.csv", row.names = FALSE)
one <- function(marker, direction) {
  r <- roc(d$poor, d[[marker]], levels = c(0, 1), direction = direction, quiet = TRUE)
  ci <- ci.auc(r, method = "delong")
  best <- coords(r, x = "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity"))
  list(marker = marker, direction = direction, auc = as.numeric(r$auc), ci = as.numeric(ci)[c(1, 3)],
       threshold = best$threshold[1], sensitivity = best$sensitivity[1], specificity = best$specificity[1])
}
write_ref(list(source = "R pROC roc/ci.auc(method='delong')/coords(best.method='youden')",
               cases = list(one("s100b", "<"), one("ndka", "<"), one("wfns", "<"), one("ndka", ">"))), "roc")
