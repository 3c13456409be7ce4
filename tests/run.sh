#!/usr/bin/env bash
# The test suite: bootstraps .venv (like ./run.sh, plus the test-only
# requirements) and runs pytest.  Extra arguments go to pytest, e.g.
#   tests/run.sh -k metrics -x
#   tests/run.sh tests/test_metrics.py    (only that file)
#   tests/run.sh --fast      # the fast tier: no test marked slow (whole recipes, training runs),
#                            # under 2 minutes, and it fails unless its tests import every module
set -euo pipefail
cd "$(dirname "$0")/.."
fast=()
if [ "${1:-}" = --fast ]; then
  shift
  fast=(-m "not slow")
  SPKPEFT_IMPORT_LOG="$(mktemp "${TMPDIR:-/tmp}/spkpeft-imports.XXXXXX")"
  export SPKPEFT_IMPORT_LOG
  trap 'rm -f "$SPKPEFT_IMPORT_LOG"' EXIT
fi
SPKPEFT_EXTRA_REQS="requirements-test.txt" . ./path.sh
# One BLAS/OpenMP thread per process: tests run small models, often several
# processes at once (DDP, recipe runs), and 2 cores oversubscribe easily.
export OMP_NUM_THREADS=1
# Two worker processes (pytest-xdist), one per core; SPKPEFT_TEST_WORKERS=0 runs in-process
# (e.g. for pdb).  The slow recipe tests are collected first (tests/conftest.py) and an idle
# worker steals queued tests from a busy one (--dist worksteal), so neither waits on the other.
# Test files or node ids among the arguments (tests/run.sh tests/test_metrics.py::test_eer) are
# run alone; otherwise the whole tests/ directory.
workers="${SPKPEFT_TEST_WORKERS:-2}"
targets=(tests)
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) [ -e "${arg%%::*}" ] && targets=() && break ;;
  esac
done
if [ "$workers" = 0 ]; then
  python -m pytest -q -p no:xdist ${fast[@]+"${fast[@]}"} ${targets[@]+"${targets[@]}"} "$@"
else
  python -m pytest -q -n "$workers" --dist worksteal ${fast[@]+"${fast[@]}"} ${targets[@]+"${targets[@]}"} "$@"
fi
