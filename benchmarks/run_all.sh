#!/usr/bin/env bash
# Runs every benchmarks/bench_*.py in turn with the project's virtual environment and each one's default
# (target-sized) settings; `make bench` calls it with IMMUNOSEP_TEST_PG_URL set (the PostgreSQL server
# the store and web benchmarks use). A benchmark that fails or misses its target does not stop the
# others; the script exits 1 at the end if any did.
#
#   bash benchmarks/run_all.sh            # all of them
#   bash benchmarks/run_all.sh web store  # only bench_web.py and bench_store.py
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || { echo "run_all: $PY not found; run 'make setup' first" >&2; exit 2; }

if [ "$#" -gt 0 ]; then
  benches=()
  for name in "$@"; do
    path="benchmarks/bench_${name#bench_}"
    path="${path%.py}.py"
    [ -f "$path" ] || { echo "run_all: no $path" >&2; exit 2; }
    benches+=("$path")
  done
else
  mapfile -t benches < <(ls benchmarks/bench_*.py | sort)
fi

echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])'), $(nproc 2>/dev/null || echo '?') CPUs," \
  "PostgreSQL: ${IMMUNOSEP_TEST_PG_URL:-(default of each benchmark)}"
failed=()
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for bench in "${benches[@]}"; do
  echo
  echo "================================================================================"
  echo "== ${bench}  ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo "================================================================================"
  start=$SECONDS
  set +e
  "$PY" "$bench" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 0 ]; then
    echo "== ${bench}: ok in $((SECONDS - start)) s"
  else
    echo "== ${bench}: FAILED (exit ${status}) after $((SECONDS - start)) s"
    failed+=("$bench")
  fi
done

echo
echo "================================================================================"
echo "== every headline figure beside its target and its same-run baseline"
echo "================================================================================"
"$PY" benchmarks/_figures.py summary "$log"
echo
# a benchmark may report a missed figure without failing (bench_web.py without --strict): count those too
mapfile -t missed < <("$PY" benchmarks/_figures.py missed "$log" | sed '/^$/d')
status=0
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run_all: ${#failed[@]} of ${#benches[@]} benchmarks failed or missed a target: ${failed[*]}"
  status=1
fi
if [ "${#missed[@]}" -gt 0 ]; then
  echo "run_all: ${#missed[@]} figure(s) missed their target:"
  printf '  %s\n' "${missed[@]}"
  status=1
fi
[ "$status" -eq 0 ] && echo "run_all: all ${#benches[@]} benchmarks ran and every figure met its target"
exit "$status"
