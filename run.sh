#!/usr/bin/env bash
# spkpeft recipes.  A bare ./run.sh runs the speaker-verification mini recipe (egs/mini/run.sh:
# synthetic corpus, random tiny upstream, CPU, stages 1-6); ./run.sh --corpus NAME [options] runs
# the recipe of corpus NAME, egs/NAME/run.sh [options], which owns stage 1 and the corpus's
# options and calls the corpus-free pipeline (steps/pipeline.sh) for stages 2-6.  Each recipe's
# README (egs/NAME/README.md) gives the data layout it expects, its commands and results.
#   ./run.sh --corpus mini_cls                      # the classification mini recipe
#   ./run.sh --corpus voxceleb1 --data-root /data/VoxCeleb1 --config conf/sv/lora.yaml
set -euo pipefail
egs="$(cd "$(dirname "$0")" && pwd)/egs"
corpora=$(cd "$egs" && for d in */run.sh; do printf '%s ' "${d%/run.sh}"; done)

usage="Usage: $0 [--corpus NAME] [options of egs/NAME/run.sh]
  --corpus NAME      the recipe to run, egs/NAME/run.sh (default mini): ${corpora% }
  $0 --corpus NAME --help lists that recipe's options (stages, config, corpus options)."

corpus=mini
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus)
      [ $# -ge 2 ] && [[ "$2" != --* ]] || { echo "$0: option '--corpus' needs a value" >&2; echo "$usage" >&2; exit 1; }
      corpus=$2
      shift 2 ;;
    --) args+=("$@"); break ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ! -x "$egs/$corpus/run.sh" ] || [[ "$corpus" == */* ]]; then
  echo "$0: unknown corpus '$corpus' (expected one of: ${corpora% })" >&2
  echo "$usage" >&2
  exit 1
fi
exec "$egs/$corpus/run.sh" ${args[@]+"${args[@]}"}
