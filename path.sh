# shellcheck shell=bash
# Source this file (run.sh and tests/run.sh do): it creates or updates the
# project's virtual environment in $SPKPEFT_ROOT/.venv, activates it and puts
# the repository on PYTHONPATH.  Set SPKPEFT_EXTRA_REQS to a space-separated
# list of extra requirement files (tests/run.sh adds requirements-test.txt).
#
# A requirement file is (re)installed when it changes: its sha256 is kept in
# .venv/.<file>.sha256.

SPKPEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SPKPEFT_ROOT

_spkpeft_bootstrap() {
  local venv="$SPKPEFT_ROOT/.venv" python="${PYTHON:-python3}"
  local reqs=("$SPKPEFT_ROOT/requirements.txt")
  local f
  for f in ${SPKPEFT_EXTRA_REQS:-}; do reqs+=("$SPKPEFT_ROOT/$f"); done
  # One bootstrap at a time (run.sh and tests/run.sh may start together).
  mkdir -p "$venv"
  exec 9>"$venv/.lock"
  flock 9
  if [ ! -x "$venv/bin/python" ]; then
    echo "path.sh: creating $venv with $python" >&2
    "$python" -m venv "$venv" || { echo "path.sh: could not create $venv" >&2; return 1; }
  fi
  local r stamp want
  for r in "${reqs[@]}"; do
    stamp="$venv/.$(basename "$r").sha256"
    want="$(sha256sum "$r" | cut -d' ' -f1)"
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && continue
    echo "path.sh: installing $(basename "$r") into $venv (first run or file changed)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$r" \
      || { echo "path.sh: pip install -r $r failed" >&2; return 1; }
    echo "$want" > "$stamp"
  done
  flock -u 9
  exec 9>&-
}

_spkpeft_bootstrap || return 1 2>/dev/null || exit 1
unset -f _spkpeft_bootstrap

export PATH="$SPKPEFT_ROOT/.venv/bin:$PATH"
export PYTHONPATH="$SPKPEFT_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export LC_ALL=C
