#!/usr/bin/env bash
# Sets Flux up and plays an example: on the default audio device, or on the null output
# when there is none. Edit the example while it plays: every save reloads it.
#   scripts/quickstart.sh [FILE] [flux play options...]   e.g. --seconds 10
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The file is optional: options alone (`--seconds 10`) play the example.
file="examples/vortex-morph.js"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  file="$1"
  shift
fi
exec target/release/flux play "$file" "$@"
