#!/usr/bin/env bash
# Plays a file on the null output for a long time with a changed save every second
# (alternating rename-into-place and write-in-place, as editors save), samples the player's
# resident memory every 10 s and prints underruns, reloads, RSS over time and the DSP load.
#   scripts/soak.sh [MINUTES] [FILE]      ($FLUX: the binary to run; default a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-60}"
src="${2:-examples/vortex-morph.js}"
flux="${FLUX:-target/release/flux}"
if [ -z "${FLUX:-}" ]; then cargo build --release --locked -p flux; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src" "$work/signals.js"
seconds=$((minutes * 60))
"$flux" play "$work/signals.js" --null --seconds "$seconds" --stats "$work/stats.json" \
  2>"$work/log" &
pid=$!
start=$(date +%s)
# Resident memory (kB) every 10 s while the player runs, from 2 s (after start-up):
# "elapsed_s kB" lines.
(
  sleep 2
  while kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$kb" ]; do
    echo "$(($(date +%s) - start)) $kb"
    sleep 10
  done
) >"$work/rss" &
sampler=$!
sleep 1
i=0
while kill -0 "$pid" 2>/dev/null && (($(date +%s) - start < seconds - 1)); do
  i=$((i + 1))
  # Change every number literal's last digit a little: a new file each time.
  sed -E "s/([0-9]+\.[0-9])[0-9]*/\1$((i % 10))/g" "$src" >"$work/next.js"
  if ((i % 2)); then
    mv "$work/next.js" "$work/signals.js"
  else
    cat "$work/next.js" >"$work/signals.js"
  fi
  sleep 1
done
wait "$pid"
wait "$sampler" || true
tail -n 1 "$work/log"
echo "saves $i over $minutes min of $src"
python3 - "$work/stats.json" "$work/rss" "$work/log" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
# Underruns per 10 minutes, from the player's log lines ("12.5 s: 2 underruns, ...").
per = {}
for line in open(sys.argv[3]):
    m = re.match(r"([\d.]+) s: (?:underrun,|(\d+) underruns,)", line)
    if m:
        k = int(float(m[1]) // 600)
        per[k] = per.get(k, 0) + int(m[2] or 1)
if per:
    print("underruns per 10 min: " + ", ".join(
        f"{k * 10}-{k * 10 + 10} min {per[k]}" for k in sorted(per)))
rss = [tuple(map(int, line.split())) for line in open(sys.argv[2]) if line.strip()]
times = ", ".join(f"{t:.1f} s" for t in s["underrun_times_s"][:50])
more = " …" if len(s["underrun_times_s"]) > 50 else ""
print(f"underruns {s['underruns']} ({s['missing_frames']} frames of silence)"
      + (f" at {times}{more}" if times else ""))
print(f"reloads {s['reloads']} ({s['reload_errors']} failed)")
if rss:
    after1 = next((kb for t, kb in rss if t >= 60), rss[-1][1])
    print(f"RSS start {rss[0][1] / 1024:.1f} MiB, after 1 min {after1 / 1024:.1f} MiB, "
          f"end {rss[-1][1] / 1024:.1f} MiB, max {max(kb for _, kb in rss) / 1024:.1f} MiB "
          f"({len(rss)} samples)")
print(f"DSP load mean {s['dsp_load_mean'] * 100:.1f}% max {s['dsp_load_max'] * 100:.1f}%, "
      f"buffer {s['buffer_frames']} frames, real-time thread {s['realtime']}")
PY
