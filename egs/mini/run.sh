#!/usr/bin/env bash
# The mini recipe (synthetic corpus, random tiny WavLM, CPU): same as a bare ../../run.sh.
exec "$(dirname "$0")/../../run.sh" --corpus mini "$@"
