#!/usr/bin/env bash
# Plays a file on the null output in real time and saves a changed version of it many
# times, alternating the two ways editors save (rename a new file into place; truncate and
# write in place). Prints underruns, reloads, load times, reload-to-audible times (a new
# patch ready to its first frame leaving the ring) and the DSP load.
#   scripts/reload-soak.sh [SAVES] [INTERVAL_S] [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
saves="${1:-100}"
interval="${2:-0.25}"
src="${3:-examples/vortex-morph.js}"
flux=target/release/flux
[ -x "$flux" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src" "$work/signals.js"
seconds=$(python3 -c "print($saves * $interval + 2)")
"$flux" play "$work/signals.js" --null --seconds "$seconds" --stats "$work/stats.json" 2>"$work/log" &
pid=$!
sleep 1
for i in $(seq 1 "$saves"); do
  # Change every number literal's last digit a little: a new file each time.
  sed -E "s/([0-9]+\.[0-9])[0-9]*/\1$((i % 10))/g" "$src" > "$work/next.js"
  if ((i % 2)); then
    mv "$work/next.js" "$work/signals.js"
  else
    cat "$work/next.js" > "$work/signals.js"
  fi
  sleep "$interval"
done
wait "$pid"
tail -n 1 "$work/log"
python3 - "$work/stats.json" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
ms = sorted(s["reload_ms"])
heard = sorted(s["reload_to_audible_ms"])
print(f"underruns {s['underruns']}, reloads {s['reloads']} ({s['reload_errors']} failed), "
      f"reload ms median {statistics.median(ms):.2f} max {max(ms):.2f}, "
      f"reload-to-audible ms median {statistics.median(heard):.2f} max {max(heard):.2f} "
      f"({len(heard)} measured), "
      f"DSP load mean {s['dsp_load_mean']*100:.1f}% max {s['dsp_load_max']*100:.1f}%, "
      f"buffer {s['buffer_frames']} frames, real-time thread {s['realtime']}")
PY
