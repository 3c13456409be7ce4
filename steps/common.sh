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

# generate_once ROOT MARKER WHAT OPTIONS SCRIPT DONE_FILE...: run "python SCRIPT --out ROOT OPTIONS"
# unless ROOT already holds a corpus made with the same OPTIONS (ROOT/MARKER records them, and every
# DONE_FILE, relative to ROOT, exists).  A ROOT holding anything else is never touched; changed options
# or an interrupted generation regenerate it.  WHAT names the corpus in the log.
generate_once() {
  local root=$1 marker="$1/$2" what=$3 opts=$4 script=$5 f complete=true
  shift 5
  for f in "$@"; do [ -f "$root/$f" ] || complete=false; done
  if $complete && [ -f "$marker" ] && [ "$(cat "$marker")" = "$opts" ]; then
    log "$what in $root is up to date; skipping generation"
    return 0
  fi
  if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then
    [ -f "$marker" ] || { log "ERROR: $root exists and is not a generated $what; refusing to overwrite it"; exit 1; }
    log "$what options changed or generation incomplete; regenerating $root"
    rm -rf "$root"
  fi
  mkdir -p "$root"
  echo "incomplete: $opts" > "$marker"   # marks ROOT as ours even if generation is interrupted
  # shellcheck disable=SC2086  # opts is a list of options
  python "$script" --out "$root" $opts
  echo "$opts" > "$marker"
}

# exp_suffix UPSTREAM OVERLAY: "[_<upstream>][_<overlay name>]" of experiment names (characters of
# the upstream outside [A-Za-z0-9_.-] become _).
exp_suffix() {
  local suffix=
  [ -z "$1" ] || suffix="_${1//[^A-Za-z0-9_.-]/_}"
  [ -z "$2" ] || suffix="${suffix}_$(basename "$2" .yaml)"
  echo "$suffix"
}

# experiment_dir ROOT CONFIG UPSTREAM OVERLAY: the one naming rule of experiment directories,
# ROOT/<config name>[_<upstream>][_<overlay name>] (recipes: ROOT = exp/<data name>).
experiment_dir() {
  echo "$1/$(basename "$2" .yaml)$(exp_suffix "$3" "$4")"
}
