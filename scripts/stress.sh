#!/usr/bin/env bash
# Plays a file on the null output at the default buffer while every core is busy at normal
# priority (stress-ng --cpu, or one busy loop per core without it), with a changed save
# every 0.5 s. Prints underruns (count and times), reloads, the DSP load and whether the
# DSP thread got a real-time priority.
#   scripts/stress.sh [MINUTES] [FILE]    ($FLUX: the binary to run; default a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
src="${2:-examples/vortex-morph.js}"
flux="${FLUX:-target/release/flux}"
if [ -z "${FLUX:-}" ]; then cargo build --release --locked -p flux; fi
work=$(mktemp -d)
cores=$(nproc)
seconds=$((minutes * 60))
load=()
cleanup() {
  for p in "${load[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
if command -v stress-ng >/dev/null; then
  stress-ng --cpu "$cores" --timeout "$((seconds + 5))s" --quiet &
  load+=($!)
  how="stress-ng --cpu $cores"
else
  for _ in $(seq 1 "$cores"); do
    (while :; do :; done) &
    load+=($!)
  done
  how="$cores busy loops"
fi
sleep 1
cp "$src" "$work/signals.js"
"$flux" play "$work/signals.js" --null --seconds "$seconds" --stats "$work/stats.json" \
  2>"$work/log" &
pid=$!
start=$(date +%s)
sleep 1
i=0
while kill -0 "$pid" 2>/dev/null && (($(date +%s) - start < seconds - 1)); do
  i=$((i + 1))
  sed -E "s/([0-9]+\.[0-9])[0-9]*/\1$((i % 10))/g" "$src" >"$work/next.js"
  if ((i % 2)); then
    mv "$work/next.js" "$work/signals.js"
  else
    cat "$work/next.js" >"$work/signals.js"
  fi
  sleep 0.5
done
wait "$pid"
tail -n 1 "$work/log"
echo "saves $i over $minutes min of $src, load: $how at normal priority"
python3 - "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
times = ", ".join(f"{t:.1f} s" for t in s["underrun_times_s"][:50])
more = " …" if len(s["underrun_times_s"]) > 50 else ""
print(f"underruns {s['underruns']} ({s['missing_frames']} frames of silence)"
      + (f" at {times}{more}" if times else ""))
print(f"reloads {s['reloads']} ({s['reload_errors']} failed)")
print(f"DSP load mean {s['dsp_load_mean'] * 100:.1f}% max {s['dsp_load_max'] * 100:.1f}%, "
      f"buffer {s['buffer_frames']} frames, real-time thread {s['realtime']}")
PY
