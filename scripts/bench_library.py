#!/usr/bin/env python3
"""The unit library against the same sound written by hand, and what a library patch costs
to load, in one run.

    scripts/bench_library.py [--rounds 5] [--seconds 1]

- `bench/library-voices.js` (eight voices of phasor, sine, decay and lowpass from the
  library) against `bench/hand-voices.js` (the same algorithms written with `mem[idx + k]`;
  the two render the same bits): frames/s of each, round-robin, and the median of the
  per-round ratios. The target is the library within 1.2x of the hand-written code.
- `examples/library-groove.js` (5 signals, 24 units): load and compile time, the first load
  and a reload (what a save costs), and its speed.

Builds the release binary first. Figures go to BENCHMARKS.md by hand.
"""
import argparse
import json
import os
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(flux, path, seconds):
    out = subprocess.run([flux, "bench", path, "--json", "--seconds", str(seconds),
                          "--warmup", str(seconds), "--reps", "3"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "flux"], cwd=ROOT,
                   check=True)
    flux = os.path.join(ROOT, "target", "release", "flux")
    lib, hand, ratios = [], [], []
    groove = []
    for r in range(args.rounds):
        a = bench(flux, "bench/library-voices.js", args.seconds)
        b = bench(flux, "bench/hand-voices.js", args.seconds)
        g = bench(flux, "examples/library-groove.js", args.seconds)
        lib.append(a["fps_median"])
        hand.append(b["fps_median"])
        ratios.append(b["fps_median"] / a["fps_median"])
        groove.append(g)
        print(f"round {r + 1}/{args.rounds}: library {a['fps_median'] / 1e6:.2f} M, "
              f"hand {b['fps_median'] / 1e6:.2f} M, groove load {g['load_ms']:.1f} ms, "
              f"reload {g['reload_ms']:.1f} ms")
    ratio = statistics.median(ratios)
    print(f"\n| patch | frames/s (median of {args.rounds} rounds) |")
    print("|---|---|")
    print(f"| bench/library-voices.js (8 voices, 32 units) | {statistics.median(lib) / 1e6:.2f} M |")
    print(f"| bench/hand-voices.js (the same by hand) | {statistics.median(hand) / 1e6:.2f} M |")
    verdict = "met" if ratio <= 1.2 else "missed"
    print(f"\nhand-written / library: {ratio:.2f}x (target within 1.2x: {verdict})")
    print(f"examples/library-groove.js (24 units): first load "
          f"{statistics.median(g['load_ms'] for g in groove):.1f} ms, a reload "
          f"{statistics.median(g['reload_ms'] for g in groove):.1f} ms, "
          f"{statistics.median(g['fps_median'] for g in groove) / 1e6:.2f} M frames/s")


if __name__ == "__main__":
    main()
