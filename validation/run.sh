#!/usr/bin/env bash
# Regenerate the R reference values under validation/reference/ and re-run the comparison tests.
# Called by `make validate`. Needs Rscript with survival, MASS, epitools, pROC, jsonlite and rpact (Debian:
# r-base-core r-cran-survival r-cran-mass r-cran-epitools r-cran-proc r-cran-jsonlite r-cran-rpact).
# The tests themselves never need R: they read the committed files.
set -euo pipefail
cd "$(dirname "$0")/.."

R_DEBS="r-base-core r-cran-survival r-cran-mass r-cran-epitools r-cran-proc r-cran-jsonlite r-cran-rpact"
r_ready() {
  command -v Rscript >/dev/null 2>&1 &&
    Rscript -e 'for (p in c("survival", "MASS", "epitools", "pROC", "jsonlite", "rpact")) if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)' >/dev/null 2>&1
}
if ! r_ready; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "validation: installing R from Debian's packages ($R_DEBS)"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $R_DEBS >/dev/null
  fi
fi
if ! r_ready; then
  echo "validation: Rscript with survival, MASS, epitools, pROC, jsonlite and rpact is missing; install $R_DEBS" >&2
  exit 2
fi
Rscript --version 2>&1 | head -1

for script in proportions sample_size models survival roc published group_sequential interim_survival; do
  echo "== validation/${script}.R"
  Rscript "validation/${script}.R"
done

echo "== validation/sdtm_xpt.R (R haven reads the SDTM XPT files of a small virtual trial)"
if Rscript -e 'quit(status = !requireNamespace("haven", quietly = TRUE))' >/dev/null 2>&1; then
  sdtm_dir="$(mktemp -d)"
  "${PYTHON:-.venv/bin/python}" -m immunosep.cli simulate trial --db "sqlite:///${sdtm_dir}/trial.db" --seed 11 --screened 36 >/dev/null
  "${PYTHON:-.venv/bin/python}" -m immunosep.cli export --db "sqlite:///${sdtm_dir}/trial.db" --out "${sdtm_dir}/sdtm" --unblinded >/dev/null
  Rscript validation/sdtm_xpt.R "${sdtm_dir}/sdtm"
  rm -rf "${sdtm_dir}"
else
  echo "validation: haven is missing (Debian: r-cran-haven); the SDTM XPT files were not read by R" >&2
  exit 2
fi

echo "== changes in the committed reference values (none expected on the same R version)"
git --no-pager diff --stat -- validation/reference || true

echo "== comparison tests"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m pytest -q -p no:cacheprovider tests/stats tests/commands/test_stats_cli.py tests/commands/test_design_cli.py
