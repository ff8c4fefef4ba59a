#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a time box each and prints, per target, the
# executions, the coverage and the crashes. Corpora grow in fuzz/corpus/TARGET (kept between
# runs, seeded from tests/corpus/ and examples/); crash inputs land in fuzz/artifacts/TARGET.
# Exits 1 when a target crashed (libFuzzer stops a target at its first crash).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz.
# FUZZ_SANITIZER (address, the default, or none) picks the sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(control_frame osc_packet load_source instrument too_deep)
sanitizer="${FUZZ_SANITIZER:-address}"
# Fake stacks for use-after-return cost a fresh stack of page faults per thread, and the
# loader runs each load on a new thread: twice the executions without them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=0}"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Seeds: each control line, each OSC datagram, each signals file and example.
seed() {
  python3 - "$@" <<'PY'
import pathlib, re, sys
root = pathlib.Path(".")
corpus = root / "fuzz" / "corpus"
def body(path):
    return [l for l in path.read_bytes().split(b"\n") if not l.startswith(b"// ")]
def put(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)
for path in sorted((root / "tests/corpus/control").glob("*.txt")):
    for i, line in enumerate(l for l in body(path) if l):
        put("control_frame", f"{path.stem}-{i}", line.rstrip(b"\r"))
for path in sorted((root / "tests/corpus/osc").glob("*.txt")):
    hexes = re.sub(rb"[^0-9a-fA-F]", b"", b"".join(body(path)))
    if len(hexes) % 2 == 0:
        put("osc_packet", path.stem, bytes.fromhex(hexes.decode()))
js = sorted((root / "tests/corpus/signals").rglob("*.js")) + sorted((root / "examples").glob("*.js"))
for path in js:
    for target in ("load_source", "instrument", "too_deep"):
        put(target, f"{path.parent.name}-{path.stem}", path.read_bytes())
PY
}
seed

declare -A dicts=([control_frame]=json [osc_packet]=osc [load_source]=js [instrument]=js [too_deep]=js)
cargo +nightly fuzz build --sanitizer "$sanitizer" >&2
logs=fuzz/target/logs
mkdir -p "$logs"
status=0
printf '%-14s %6s %12s %9s %7s %8s %7s %s\n' target seconds execs execs/s cov features corpus crashes
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
        -dict="fuzz/dict/${dicts[$t]}.dict")
  # The loader runs each load on a thread that QuickJS's runtime outlives by design.
  [ "$t" = load_source ] && args+=(-detect_leaks=0)
  if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "fuzz/corpus/$t" -- "${args[@]}" \
      >"$logs/$t.log" 2>&1; then
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  after=$(ls "fuzz/artifacts/$t" | wc -l)
  crashes=$((after - before))
  found=""
  [ "$crashes" -gt 0 ] && found=" ($(ls -t "fuzz/artifacts/$t" | head -1); log: $logs/$t.log)"
  printf '%-14s %6s %12s %9s %7s %8s %7s %s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes$found"
done
exit "$status"
