#!/usr/bin/env bash
# The CPU an idle `flux play --null` takes over its first SECONDS (start-up included): an
# empty patch and examples/sine-440.js. Reads utime+stime and the context switches
# (wake-ups) of every thread from /proc at SECONDS after the start, then stops the player.
# The target is at most 1% of a core.
#   scripts/idle.sh [SECONDS]             ($FLUX: the binary to run; default a release build;
#                                         $PLAY_ARGS: more options, e.g. '--buffer 1024')
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
flux="${FLUX:-target/release/flux}"
if [ -z "${FLUX:-}" ]; then cargo build --release --locked -p flux; fi
flux=$(realpath "$flux")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '// signals: none\n' >"$work/empty.js"
hz=$(getconf CLK_TCK)
for file in "$work/empty.js" examples/sine-440.js; do
  # Any free port for the control server, which is on by default (7770 may be taken).
  # shellcheck disable=SC2086 # PLAY_ARGS is split into words on purpose.
  "$flux" play "$file" --null --seconds "$((seconds + 5))" --listen 127.0.0.1:0 ${PLAY_ARGS:-} \
    2>"$work/log" &
  pid=$!
  sleep "$seconds"
  # Per thread: name, CPU ticks (utime + stime), voluntary and involuntary switches.
  for task in /proc/"$pid"/task/*; do
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$task/stat")
    switches=$(awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n }' "$task/status")
    printf '%s\t%s\t%s\n' "$(cat "$task/comm")" "$ticks" "$switches"
  done >"$work/threads"
  total=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")
  kill -INT "$pid"
  wait "$pid" || true
  python3 - "$file" "$seconds" "$hz" "$total" "$work/threads" <<'PY'
import sys
file, seconds, hz, total = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
name = "empty patch" if file.endswith("empty.js") else file
print(f"{name}: {total / hz:.2f} s CPU in {seconds:.0f} s = {total / hz / seconds * 100:.2f}% "
      f"of a core")
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[5])]
for comm, ticks, switches in sorted(rows, key=lambda r: -int(r[2])):
    if int(switches) > 10 or int(ticks) > 0:
        print(f"  {comm:<18} {int(ticks) / hz * 1000:6.0f} ms CPU, "
              f"{int(switches) / seconds:7.1f} wake-ups/s")
PY
done
