#!/usr/bin/env bash
# Ableton Link: the beat-phase error between two `flux play --null --link` processes on
# this machine over SECONDS (default 60). Each writes, every 10 ms, the beat its output
# presents at a host time of Link's clock (`link.samples` in --stats); each of A's samples
# is paired with B's nearest (within 10 ms), B's beat carried to A's time at B's tempo, and
# the difference wrapped to the bar. The first 5 s after B joins (locate and settling) are
# left out; a tempo change (A: 120 -> 132 bpm) comes halfway. Reported over all pairs, and
# without the tempo change (its glide and 2 s after) and the 0.5 s after each underrun or
# stall (either delays its output until the next correction).
#   scripts/bench_link.sh [SECONDS] [GLIDE]   (GLIDE: the tempo change glides over this many
#                                          seconds; default 0. $FLUX: the binary; default a
#                                          release build with --features link, which needs
#                                          cmake and libclang)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
glide="${2:-0}"
flux="${FLUX:-target/release/flux}"
if [ -z "${FLUX:-}" ]; then cargo build --release --locked -p flux --features link; fi
flux=$(realpath "$flux")
work=$(mktemp -d)
# $KEEP: a folder to keep both players' stats and logs in.
trap 'if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.json "$work"/*.log "$KEEP"; fi; rm -rf "$work"' EXIT
printf "play('x', (s) => Math.sin(s.beat * 6.283) * 0.1);\n" >"$work/x.js"
"$flux" play "$work/x.js" --null --link --listen 127.0.0.1:0 --seconds "$((seconds + 2))" \
  --stats "$work/a.json" 2>"$work/a.log" &
a=$!
sleep 1
"$flux" play "$work/x.js" --null --link --no-listen --bpm 100 --seconds "$seconds" \
  --stats "$work/b.json" 2>"$work/b.log" &
b=$!
sleep "$((seconds / 2))"
port=$(sed -n 's/^control: listening on .*:\([0-9]*\)$/\1/p' "$work/a.log" | head -1)
# Link's host clock is CLOCK_MONOTONIC_RAW in µs.
sent=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW) // 1000)')
echo "tempo(132, $glide);" | "$flux" send --to "127.0.0.1:$port" - >/dev/null
wait "$b" "$a"
python3 - "$work/a.json" "$work/b.json" "$sent" "$glide" <<'PY'
import bisect, json, sys
sa, sb = (json.load(open(p)) for p in sys.argv[1:3])
a, b = sa["link"]["samples"], sb["link"]["samples"]
q = sa["link"]["quantum"]
bh = [s[0] for s in b]
start = b[0][0] + 5e6
# The tempo change: sent at this host time, ends a glide later.
start_change = float(sys.argv[3])
change = start_change + float(sys.argv[4]) * 1e6
pairs = []
for h, beat, bpm in a:
    if h < start:
        continue
    i = bisect.bisect_left(bh, h)
    near = min((j for j in (i - 1, i) if 0 <= j < len(b)), key=lambda j: abs(bh[j] - h))
    hb, beat_b, bpm_b = b[near]
    if abs(hb - h) > 10_000:
        continue
    d = beat - (beat_b + (h - hb) / 60e6 * bpm_b)
    pairs.append((h, abs(d - round(d / q) * q) * 60_000 / bpm))

def report(name, errs):
    errs = sorted(errs)
    n = len(errs)
    print(f"phase error A-B, {name}: {n} pairs ({n / 100:.0f} s): mean {sum(errs) / n:.3f} ms, "
          f"99% under {errs[n * 99 // 100]:.3f} ms, max {errs[-1]:.3f} ms")

report("all", [e for _, e in pairs])
report("but the 2 s after the tempo change (its glide's end)", [e for h, e in pairs if not start_change <= h < change + 2e6])
unders = [u for s in (sa, sb) for k in ("underruns_us", "stalls_us") for u in s["link"][k]]
calm = [(h, e) for h, e in pairs if not any(u <= h < u + 0.5e6 for u in unders)]
report("but the 0.5 s after each underrun or stall", [e for _, e in calm])
report("but both", [e for h, e in calm if not start_change <= h < change + 2e6])
worst = max(pairs, key=lambda p: p[1])
print(f"largest at {(worst[0] - b[0][0]) / 1e6:.2f} s into B; the tempo change was sent at "
      f"{(start_change - b[0][0]) / 1e6:.2f} s")
print(f"session tempo at the end: A {sa['link']['bpm']:.3f}, B {sb['link']['bpm']:.3f} bpm; "
      f"underruns: A {sa['underruns']}, B {sb['underruns']}; stalls: "
      f"A {len(sa['link']['stalls_us'])}, B {len(sb['link']['stalls_us'])}")
for name, s in (("A", sa), ("B", sb)):
    l = s["link"]
    print(f"{name} against the session (its own view): mean {l['phase_error_ms_mean']:.3f} ms, "
          f"max {l['phase_error_ms_max']:.3f} ms over {l['phase_error_count']} measurements")
PY
