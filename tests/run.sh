#!/usr/bin/env bash
# The test suite: bootstraps .venv (like ./run.sh, plus the test-only
# requirements) and runs pytest.  Extra arguments go to pytest, e.g.
#   tests/run.sh -k metrics -x
set -euo pipefail
cd "$(dirname "$0")/.."
SPKPEFT_EXTRA_REQS="requirements-test.txt" . ./path.sh
exec python -m pytest -q tests "$@"
