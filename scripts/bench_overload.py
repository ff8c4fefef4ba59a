#!/usr/bin/env python3
"""Overload: how long a patch with one signal too slow for real time stutters before the
policy cuts it, and whether the others then play without an underrun.

    scripts/bench_overload.py [--runs 5] [--seconds 10] [--loops 3000] [--buffer 512]

Plays a 440 Hz tone next to a signal that computes LOOPS sines per sample (JavaScript
tier, several times real time) with `flux play --null --stats` for SECONDS, RUNS times,
and prints for each run: when the cut was reported, the underruns before and after it,
and the DSP load of the cut signal. The target: 0 underruns after the cut.

Builds the release binary first. Figures go to BENCHMARKS.md by hand.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PATCH = """import {{ flux }} from './flux.js';
flux('tone', (mem, idx) => ({{ update: (sr) => {{
  mem[idx] = (mem[idx] + 440 / sr) % 1;
  return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5];
}} }}));
flux('slow', (mem, idx) => ({{ update: (sr) => {{
  let x = 0;
  for (let i = 0; i < {loops}; i++) x += Math.sin(i);
  return [0.25 + x * 1e-12];
}} }}));
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loops", type=int, default=3000)
    parser.add_argument("--buffer", type=int, default=512)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "flux"], cwd=ROOT, check=True)
    flux = os.path.join(ROOT, "target", "release", "flux")
    after_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "slow.js")
        with open(path, "w") as f:
            f.write(PATCH.format(loops=args.loops))
        for run in range(args.runs):
            stats = os.path.join(tmp, f"stats{run}.json")
            out = subprocess.run(
                [flux, "play", "--null", "--channels", "1", "--tier", "js",
                 "--preflight", "0", "--buffer", str(args.buffer),
                 "--seconds", str(args.seconds), "--stats", stats, path],
                capture_output=True, text=True, check=True)
            cut = re.search(r"^([0-9.]+) s: .*overload: update took (\d+)%", out.stderr, re.M)
            with open(stats) as f:
                s = json.load(f)
            times = s["underrun_times_s"]
            if cut is None:
                print(f"run {run + 1}: no cut; {len(times)} underruns")
                continue
            at = float(cut.group(1))
            # The line's time is when the main thread printed it; underruns up to the end of
            # the fade (5 ms) and the ring (buffer) after the cut still belong to it.
            settle = at + 0.005 + args.buffer / s["sample_rate"] + 0.05
            before = sum(1 for t in times if t <= settle)
            after = len(times) - before
            after_total += after
            late = ", ".join(f"{t:.2f}" for t in times[before:before + 5])
            print(f"run {run + 1}: cut at {at:.3f} s (slow took {cut.group(2)}%), "
                  f"{before} underruns until {settle:.3f} s, {after} after"
                  f"{' (at ' + late + ' s...)' if after else ''}, "
                  f"DSP load mean {100 * s['dsp_load_mean']:.1f}%")
        # The machine's own underruns: the tone alone, as long.
        tone = os.path.join(tmp, "tone.js")
        with open(tone, "w") as f:
            f.write(PATCH.format(loops=0).split("flux('slow'")[0])
        baseline = 0
        for run in range(args.runs):
            stats = os.path.join(tmp, f"tone{run}.json")
            subprocess.run(
                [flux, "play", "--null", "--channels", "1", "--tier", "js",
                 "--buffer", str(args.buffer), "--seconds", str(args.seconds),
                 "--stats", stats, tone], capture_output=True, check=True)
            with open(stats) as f:
                baseline += json.load(f)["underruns"]
    print(f"underruns after the cut, all runs: {after_total}; "
          f"the tone alone, as many runs as long: {baseline}")


if __name__ == "__main__":
    main()
