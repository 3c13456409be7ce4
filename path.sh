# shellcheck shell=bash
# Source this file (run.sh and tests/run.sh do): it creates or updates the
# project's virtual environment in $SPKPEFT_ROOT/.venv, installs the package in
# it in editable mode (the `spkpeft` command, `import spkpeft` from anywhere),
# activates it and puts the repository on PYTHONPATH.  Set SPKPEFT_EXTRA_REQS to a
# space-separated list of extra requirement files (tests/run.sh adds
# requirements-test.txt).
#
# A requirement file is (re)installed when it changes: its sha256 is kept in
# .venv/.<file>.sha256.  The editable install is redone when the checkout or
# pyproject.toml changes (.venv/.spkpeft-editable), and only into a .venv that is
# the checkout's own: a .venv that is a link to another checkout's environment
# (a git worktree sharing it) is left pointing where it points, and this checkout
# is found through PYTHONPATH, which comes first.

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
  # The package itself, editable (no dependencies: the requirement files pinned them), into
  # the checkout's own environment only.
  if [ ! -L "$SPKPEFT_ROOT/.venv" ]; then
    stamp="$venv/.spkpeft-editable"
    want="$SPKPEFT_ROOT $(sha256sum "$SPKPEFT_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      echo "path.sh: installing spkpeft (editable) into $venv" >&2
      local isolation=()  # the environment's own setuptools when it builds wheels itself (>= 71), else pip fetches one
      "$venv/bin/python" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 71)' \
        2>/dev/null && isolation=(--no-build-isolation)
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps ${isolation[@]+"${isolation[@]}"} \
          -e "$SPKPEFT_ROOT" \
        || { echo "path.sh: pip install -e $SPKPEFT_ROOT failed" >&2; return 1; }
      echo "$want" > "$stamp"
    fi
  fi
  flock -u 9
  exec 9>&-
}

_spkpeft_bootstrap || return 1 2>/dev/null || exit 1
unset -f _spkpeft_bootstrap

export PATH="$SPKPEFT_ROOT/.venv/bin:$PATH"
export PYTHONPATH="$SPKPEFT_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export LC_ALL=C
