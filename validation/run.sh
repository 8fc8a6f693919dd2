#!/usr/bin/env bash
# Regenerate the R reference values under validation/reference/ and re-run the comparison tests.
# Called by `make validate`. Needs Rscript with survival, MASS, epitools, pROC and jsonlite (Debian:
# r-base-core r-cran-survival r-cran-mass r-cran-epitools r-cran-proc r-cran-jsonlite).
# The tests themselves never need R: they read the committed files.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v Rscript >/dev/null 2>&1; then
  echo "validation: Rscript not found; install r-base-core and the packages listed in validation/run.sh" >&2
  exit 2
fi
Rscript -e 'for (p in c("survival", "MASS", "epitools", "pROC", "jsonlite")) if (!requireNamespace(p, quietly = TRUE)) stop("missing R package: ", p)'
Rscript --version 2>&1 | head -1

for script in proportions sample_size models survival roc published; do
  echo "== validation/${script}.R"
  Rscript "validation/${script}.R"
done

echo "== changes in the committed reference values (none expected on the same R version)"
git --no-pager diff --stat -- validation/reference || true

echo "== comparison tests"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m pytest -q -p no:cacheprovider tests/stats tests/commands/test_stats_cli.py
