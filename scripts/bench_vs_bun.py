#!/usr/bin/env python3
"""Flux (native tier) against Flux on Bun and the hand-written Rust reference, in one run.

Renders each signal set of the performance anchor (../shared/bench/anchors/signals/) with
`flux bench` and with the anchor's harness on Bun (bench.mjs) and on the native reference,
round-robin, and prints frames/s and the ratios per set (median of the per-round ratios),
and Flux's load and compile time (the first load, and a reload), without the pre-flight
trial that `flux play` adds to each save.

    scripts/bench_vs_bun.py [--rounds 3] [--seconds 1] [--sets sine-440,all-six,...]

Bun comes from the npm registry (package `bun`, as the anchor's setup.sh installs it) into
target/bench/tools; the reference is built from a copy of the anchor's native/ into
target/bench. Nothing is written into the anchor directory.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "anchors"))
WORK = os.path.join(ROOT, "target", "bench")
BUN_VERSION = "1.4.5"
SETS = ["sine-440", "breathing-sine", "vortex-morph", "van-der-pol", "lorenz",
        "fm-vortex", "all-six", "vortex-64", "vortex-64-loop"]
TARGETS = {  # set -> minimum speed-up over Bun (from the native-tier issue)
    "all-six": 3.0, "vortex-64": 2.0, "vortex-64-loop": 2.0,
}


def run(cmd, cwd=None):
    out = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout


def result_line(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("no RESULT line in:\n" + stdout)


def setup():
    flux = os.path.join(ROOT, "target", "release", "flux")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "flux"], cwd=ROOT,
                   check=True)
    bun = os.path.join(WORK, "tools", "node_modules", ".bin", "bun")
    if not os.path.exists(bun):
        os.makedirs(os.path.join(WORK, "tools"), exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", os.path.join(WORK, "tools"),
                        "--no-audit", "--no-fund", f"bun@{BUN_VERSION}"], check=True)
    native_src = os.path.join(WORK, "native-src")
    native = os.path.join(native_src, "target", "release", "flux-native")
    if not os.path.exists(native):
        shutil.rmtree(native_src, ignore_errors=True)
        shutil.copytree(os.path.join(ANCHORS, "native"), native_src)
        # The copy sits inside Flux's workspace directory; keep it a workspace of its own.
        with open(os.path.join(native_src, "Cargo.toml"), "a") as manifest:
            manifest.write("\n[workspace]\n")
        subprocess.run(["cargo", "build", "--release", "--manifest-path",
                        os.path.join(native_src, "Cargo.toml")], check=True)
    return flux, bun, native


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="audio seconds per rep")
    ap.add_argument("--sets", default=",".join(SETS))
    args = ap.parse_args()
    if not os.path.isdir(ANCHORS):
        sys.exit(f"the performance anchor is not at {ANCHORS}")
    flux, bun, native = setup()
    sets = args.sets.split(",")
    bun_version = run([bun, "--version"]).strip()
    fps = {s: {"flux": [], "bun": [], "native": []} for s in sets}
    load_ms = {s: [] for s in sets}
    reload_ms = {s: [] for s in sets}
    secs = str(args.seconds)
    for r in range(args.rounds):
        for s in sets:
            path = os.path.join(ANCHORS, "signals", s + ".js")
            # Without pre-flight: the load column is loading and compiling; a save in
            # `flux play` also renders each signal's 100 ms trial before the swap.
            out = json.loads(run([flux, "bench", path, "--tier", "native", "--json",
                                  "--preflight", "0",
                                  "--seconds", secs, "--warmup", secs, "--reps", "3"]))
            fps[s]["flux"].append(out["fps_median"])
            load_ms[s].append(out["load_ms"])
            reload_ms[s].append(out["reload_ms"])
            res = result_line(run([bun, "bench.mjs", "signals/" + s + ".js", "--seconds", secs,
                                   "--warmup", secs, "--reps", "3"], cwd=ANCHORS))
            fps[s]["bun"].append(res["fps_median"])
            res = result_line(run([native, s, "--seconds", secs, "--warmup", secs,
                                   "--reps", "3"]))
            fps[s]["native"].append(res["fps_median"])
            print(f"round {r + 1}/{args.rounds} {s}: flux {fps[s]['flux'][-1] / 1e6:.2f} M, "
                  f"bun {fps[s]['bun'][-1] / 1e6:.2f} M, native {fps[s]['native'][-1] / 1e6:.2f} M",
                  file=sys.stderr)

    def fmt(x):
        return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"

    print(f"\nbun {bun_version}; {args.rounds} rounds x 3 reps of {args.seconds} s of audio, "
          "48 kHz mono; ratios are per round, then the median\n")
    print("| set | flux native | bun | hand-written rust | flux / bun | flux / rust "
          "| load+compile (first, a reload) |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for s in sets:
        f, b, n = (statistics.median(fps[s][k]) for k in ("flux", "bun", "native"))
        vs_bun = statistics.median(x / y for x, y in zip(fps[s]["flux"], fps[s]["bun"]))
        vs_rust = statistics.median(x / y for x, y in zip(fps[s]["flux"], fps[s]["native"]))
        target = TARGETS.get(s, 4.0)
        mark = "" if vs_bun >= target else f" (target {target}x)"
        ok &= vs_bun >= target
        print(f"| {s} | {fmt(f)} | {fmt(b)} | {fmt(n)} | {vs_bun:.2f}x{mark} | {vs_rust:.2f}x "
              f"| {statistics.median(load_ms[s]):.1f} ms, {statistics.median(reload_ms[s]):.1f} ms |")
    print("\nall speed targets met" if ok else "\nsome speed targets missed (marked)")


if __name__ == "__main__":
    main()
