# R haven reads every SDTM XPT file of an export and compares it with the export's own description.
# Usage (from the repository root): Rscript validation/sdtm_xpt.R DIR   (DIR written by `immunosep export`)
# Checks, per dataset listed in DIR/define.csv: haven reads DIR/<name>.xpt; the dataset label, the variable
# names (in order), each variable's label and type (Num -> numeric, Char -> character) equal define.csv;
# the row count and every value equal DIR/<name>.csv (character values that are not ASCII in the CSV are
# written to the XPT transliterated, see docs/conduct.md, and are compared only for being ASCII there).
# Exits 1 and lists every difference when one is found. Needs haven (Debian: r-cran-haven).
suppressPackageStartupMessages(library(haven))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript validation/sdtm_xpt.R DIR")
dir <- args[[1]]
define <- read.csv(file.path(dir, "define.csv"), colClasses = "character", na.strings = character(0))
problems <- character(0)
note <- function(...) problems <<- c(problems, paste0(...))

for (name in unique(define$dataset)) {
  meta <- define[define$dataset == name, ]
  xpt <- read_xpt(file.path(dir, paste0(tolower(name), ".xpt")))
  csv <- read.csv(file.path(dir, paste0(tolower(name), ".csv")), colClasses = "character",
                  na.strings = character(0), check.names = FALSE, encoding = "UTF-8")
  if (!identical(attr(xpt, "label"), meta$dataset_label[[1]])) note(name, ": dataset label ", attr(xpt, "label"))
  if (!identical(names(xpt), meta$variable)) {
    note(name, ": variables ", paste(names(xpt), collapse = ","))
    next
  }
  if (nrow(xpt) != nrow(csv)) note(name, ": ", nrow(xpt), " rows, CSV has ", nrow(csv))
  for (i in seq_len(nrow(meta))) {
    v <- meta$variable[[i]]
    got <- xpt[[v]]
    label <- attr(got, "label")
    if (!identical(label, meta$label[[i]])) note(name, ".", v, ": label ", label)
    want <- csv[[v]]
    if (meta$type[[i]] == "Num") {
      if (!is.numeric(got)) { note(name, ".", v, ": not numeric"); next }
      expected <- ifelse(want == "", NA, suppressWarnings(as.numeric(want)))
      same <- (is.na(got) & is.na(expected)) | (!is.na(got) & !is.na(expected) & got == expected)
      if (!all(same)) note(name, ".", v, ": ", sum(!same), " numeric value(s) differ")
    } else {
      if (!is.character(got)) { note(name, ".", v, ": not character"); next }
      ascii <- !grepl("[^ -~]", want)
      if (!all(got[ascii] == want[ascii])) note(name, ".", v, ": ", sum(got[ascii] != want[ascii]), " value(s) differ")
      if (any(grepl("[^ -~]", got))) note(name, ".", v, ": a non-ASCII value in the XPT")
    }
  }
}
cat(sprintf("haven %s read %d SDTM XPT files in %s\n", packageVersion("haven"), length(unique(define$dataset)), dir))
if (length(problems)) {
  cat(problems, sep = "\n")
  quit(status = 1)
}
cat("every name, label, type and value agrees with define.csv and the CSV files\n")
