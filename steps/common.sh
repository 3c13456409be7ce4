# shellcheck shell=bash
# Helpers shared by the recipe scripts: environment, logging, stage checks.
# Source it after steps/parse_options.sh.

# shellcheck source=../path.sh
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') [$(basename "$0")] $*" >&2; }

usage_error() { echo "$0: $*" >&2; echo "${usage:-}" >&2; exit 1; }

# in_stages N: true when $stage <= N <= $stop_stage
in_stages() { [ "$stage" -le "$1" ] && [ "$1" -le "$stop_stage" ]; }

# require_file PATH...: each must exist (file or directory), else stop naming it.
require_file() {
  local f
  for f in "$@"; do
    [ -e "$f" ] || { log "ERROR: missing input '$f' (run the earlier stages first)"; exit 1; }
  done
}

# run_logged LOGFILE CMD...: run CMD, showing its output on stderr and keeping it in LOGFILE.
run_logged() {
  local logfile="$1"; shift
  mkdir -p "$(dirname "$logfile")"
  echo "# $*" > "$logfile"
  "$@" 2>&1 | tee -a "$logfile" >&2
}
