#!/usr/bin/env python3
"""Save-to-ear: from a save's file event to the first frame of the new code leaving the ring.

    scripts/bench_save_to_ear.py [--saves 50] [--interval 0.2] [--buffer 512] [FILE]

Plays FILE (default examples/sine-440.js) with `flux play --null --stats`, saves a changed
copy of it SAVES times, alternating the two ways editors save (write and close in place;
write a new file and rename it into place), and prints the median (p50) and p95 of
`save_to_audible_ms`, and of `reload_to_audible_ms` and `reload_ms` for comparison. The
target is p95 <= 15 ms at the default ring (512 frames).

Builds the release binary first ($FLUX: run that binary instead). Figures go to BENCHMARKS.md by hand.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def summary(name, values):
    if not values:
        return f"{name}: none measured"
    return (f"{name}: p50 {statistics.median(values):.1f} ms, "
            f"p95 {percentile(values, 95):.1f} ms, max {max(values):.1f} ms "
            f"({len(values)} measured)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default="examples/sine-440.js")
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--buffer", type=int, default=512)
    parser.add_argument("--play-args", default="",
                        help="more arguments for flux play, e.g. '--preflight 0'")
    args = parser.parse_args()
    flux = os.environ.get("FLUX")
    if not flux:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "flux"], cwd=ROOT,
                       check=True)
        flux = os.path.join(ROOT, "target", "release", "flux")
    source = open(os.path.join(ROOT, args.file)).read()
    with tempfile.TemporaryDirectory() as work:
        signals = os.path.join(work, "signals.js")
        stats = os.path.join(work, "stats.json")
        log = open(os.path.join(work, "log"), "w")
        with open(signals, "w") as f:
            f.write(source)
        seconds = args.saves * args.interval + 2
        player = subprocess.Popen(
            [flux, "play", signals, *args.play_args.split(), "--null", "--no-listen",
             "--buffer", str(args.buffer),
             "--seconds", str(seconds), "--stats", stats],
            stderr=log)
        time.sleep(1)
        for i in range(1, args.saves + 1):
            # Every number's last digit changes: a new text each time.
            text = re.sub(r"([0-9]+\.[0-9])[0-9]*", lambda m: m.group(1) + str(i % 10),
                          source) + f"// save {i}\n"
            if i % 2:
                with open(signals, "w") as f:
                    f.write(text)
            else:
                new = signals + ".new"
                with open(new, "w") as f:
                    f.write(text)
                os.rename(new, signals)
            time.sleep(args.interval)
        player.wait()
        log.close()
        s = json.load(open(stats))
        print(open(os.path.join(work, "log")).read().splitlines()[-1])
    print(f"{args.file}, {args.saves} saves (write+close and rename, alternating), "
          f"buffer {s['buffer_frames']} frames, real-time DSP thread {s['realtime']}, "
          f"{s['underruns']} underruns, {s['reloads']} reloads ({s['reload_errors']} failed)")
    print(summary("save-to-audible", s["save_to_audible_ms"]))
    print(summary("reload-to-audible", s["reload_to_audible_ms"][1:]))
    print(summary("load", s["reload_ms"]))
    verdict = "met" if s["save_to_audible_ms"] and \
        percentile(s["save_to_audible_ms"], 95) <= 15.0 else "missed"
    print(f"target p95 <= 15 ms: {verdict}")


if __name__ == "__main__":
    main()
