#!/usr/bin/env bash
# The test suite: bootstraps .venv (like ./run.sh, plus the test-only
# requirements) and runs pytest.  Extra arguments go to pytest, e.g.
#   tests/run.sh -k metrics -x
set -euo pipefail
cd "$(dirname "$0")/.."
SPKPEFT_EXTRA_REQS="requirements-test.txt" . ./path.sh
# One BLAS/OpenMP thread per process: tests run small models, often several
# processes at once (DDP, recipe runs), and 2 cores oversubscribe easily.
export OMP_NUM_THREADS=1
exec python -m pytest -q tests "$@"
