#!/usr/bin/env bash
# Sets Flux up and plays an example: on the default audio device, or on the null output
# when there is none. Edit the example while it plays: every save reloads it.
#   scripts/quickstart.sh [FILE] [flux play options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
file="${1:-examples/vortex-morph.js}"
shift || true
exec target/release/flux play "$file" "$@"
