# shellcheck shell=bash
# Kaldi-style option parsing, sourced by recipe scripts after they declare
# their options as shell variables and set $usage:
#
#   stage=1            # --stage N sets $stage
#   stop_stage=6       # --stop-stage M sets $stop_stage
#   . steps/parse_options.sh
#
# "--foo-bar VALUE" sets $foo_bar, which must already be declared (a VALUE
# starting with "--" is taken as a missing value, except for *_opts); anything
# else (an undeclared option, a missing value, a positional argument when the
# script declares none) prints $usage on stderr and exits 1.  -h/--help prints
# $usage on stdout and exits 0.  Positional arguments are left in "$@" when
# the script sets allow_positional=true.  A script that defines a function
# option_hint NAME gets its output (when not empty) as the unknown-option error.

_po_fail() { echo "$0: $1" >&2; echo "${usage:-}" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) echo "${usage:-}"; exit 0 ;;
    --) shift; break ;;
    --*=*) _po_fail "options take their value as the next argument: '$1'" ;;
    --*)
      _po_name="${1#--}"; _po_name="${_po_name//-/_}"
      if [[ ! "$_po_name" =~ ^[a-z][a-z0-9_]*$ ]] || [ "$_po_name" = usage ] \
         || [ "$_po_name" = allow_positional ] || [ -z "${!_po_name+set}" ]; then
        # a script may define option_hint NAME to say where an option it lacks belongs
        _po_hint=
        ! declare -F option_hint > /dev/null || _po_hint=$(option_hint "$_po_name")
        _po_fail "${_po_hint:-unknown option '$1'}"
      fi
      [ $# -ge 2 ] || _po_fail "option '$1' needs a value"
      # A value that looks like an option means the value is missing, except for
      # *_opts options, whose values are option lists for another tool.
      case "$2" in --*) [[ "$_po_name" == *_opts ]] || _po_fail "option '$1' needs a value" ;; esac
      printf -v "$_po_name" '%s' "$2"
      shift 2 ;;
    *) break ;;
  esac
done
if [ $# -gt 0 ] && [ "${allow_positional:-false}" != true ]; then
  _po_fail "unexpected argument '$1'"
fi
unset -f _po_fail
unset _po_name _po_hint
