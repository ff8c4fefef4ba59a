#!/usr/bin/env bash
# Makes the sound files the sampler tests decode (crates/js/tests/sounds/): a 0.2 s,
# 440 Hz sine at half scale, 16-bit mono at 48 kHz, as WAV, FLAC (lossless: the same
# samples) and Ogg Vorbis (lossy). Needs python3, flac and oggenc (Debian: flac,
# vorbis-tools). The files are committed; run this only to make them again.
set -euo pipefail
cd "$(dirname "$0")/../crates/js/tests/sounds"
python3 - <<'PY'
import math, struct, wave
rate, frames = 48000, 9600
with wave.open("sine-440.wav", "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b"".join(
        struct.pack("<h", int(round(0.5 * 32767 * math.sin(2 * math.pi * 440 * i / rate))))
        for i in range(frames)))
PY
flac --silent --force --best -o sine-440.flac sine-440.wav
oggenc --quiet -q 6 -o sine-440.ogg sine-440.wav
ls -l sine-440.*
