# Shared helpers for the validation scripts: write reference values as JSON with full precision.
suppressPackageStartupMessages(library(jsonlite))
write_ref <- function(obj, name) {
  path <- file.path("validation", "reference", paste0(name, ".json"))
  writeLines(toJSON(obj, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), path)
  cat("wrote", path, "\n")
}
