// Flux's unit library: oscillators, envelopes, filters, delays, a reverb and shapers.
//
// A plain script evaluated inside a function that provides `mem` (FLUX_STATE), `slots(n)`,
// `buffer(n)`, `SR` and `SEED`. A unit is a constructor, called when the file loads, that
// takes its state with `slots`/`buffer` and returns the per-frame function. Everything
// here stays inside the subset the native compiler handles, so both tiers compute the
// same samples. docs/DSP.md documents every unit and the definition it is tested against.

const TAU = 6.283185307179586;

// ----- band-limiting: a windowed-sinc step (BLEP) and ramp (BLAMP) residual -----

// Half length of the correction kernel in samples; oscillators are late by this much.
const BL_D = 6;
// Kernel length in samples.
const BL_K = 12;
// Table points per sample (linearly interpolated).
const BL_P = 64;
// Cutoff of the band-limiting kernel, as a fraction of the sample rate.
const BL_FC = 0.35;

// The residuals of a band-limited unit step and ramp against the naive ones, for kernel
// taps j = 0..BL_K-1 at offsets t = j - BL_D + q / BL_P, q = 0..BL_P: the step's table,
// then the ramp's (from BL_RAMP).
function blTables() {
  const n = BL_K * BL_P;
  const dt = 1 / BL_P;
  // The windowed-sinc kernel (Blackman window), integrated by the trapezoid rule.
  const cum = [];
  let h0 = 0;
  let acc = 0;
  for (let i = 0; i <= n; i++) {
    const t = -BL_D + i * dt;
    const x = t / BL_D;
    const w = 0.42 + 0.5 * Math.cos(Math.PI * x) + 0.08 * Math.cos(TAU * x);
    const h = t === 0 ? 2 * BL_FC : (Math.sin(TAU * BL_FC * t) / (Math.PI * t)) * w;
    if (i > 0) {
      acc += (h0 + h) * dt * 0.5;
    }
    h0 = h;
    cum.push(acc);
  }
  const ramp = [];
  let r0 = 0;
  let integral = 0;
  for (let i = 0; i <= n; i++) {
    const t = -BL_D + i * dt;
    const H = cum[i] / acc;
    // The step residual jumps at t = 0: integrate up to its left value, go on from the right.
    if (i > 0) {
      integral += (r0 + H - (t > 0 ? 1 : 0)) * dt * 0.5;
    }
    r0 = H - (t >= 0 ? 1 : 0);
    ramp.push(integral);
  }
  const out = [];
  for (let j = 0; j < BL_K; j++) {
    for (let q = 0; q <= BL_P; q++) {
      const i = j * BL_P + q;
      const t = j - BL_D + q / BL_P;
      // The step residual jumps at t = 0: a row's last point takes the value from the left.
      out.push(cum[i] / acc - (t > 0 || (t === 0 && q < BL_P) ? 1 : 0));
    }
  }
  for (let j = 0; j < BL_K; j++) {
    for (let q = 0; q <= BL_P; q++) {
      out.push(ramp[j * BL_P + q]);
    }
  }
  return out;
}

const BL_TABLES = blTables();
// Where the ramp's table starts in BL_TABLES.
const BL_RAMP = BL_K * (BL_P + 1);

// Adds `amp` times a residual (the step's for `table` 0, the ramp's for BL_RAMP) for an
// event `frac` samples before now to the ring of BL_K slots at `ring`, whose current
// output slot is `pos`.
function blAdd(ring, pos, table, frac, amp) {
  const x = frac * BL_P;
  const q = Math.min(Math.floor(x), BL_P - 1);
  const w = x - q;
  for (let j = 0; j < BL_K; j++) {
    const i = table + j * (BL_P + 1) + q;
    const v = BL_TABLES[i] + (BL_TABLES[i + 1] - BL_TABLES[i]) * w;
    const k = pos + j < BL_K ? pos + j : pos + j - BL_K;
    mem[ring + k] += amp * v;
  }
}

// How many samples ago the phase went past `c` on its way from `prev` to `next`
// (unwrapped), or -1 when it did not.
function blCross(prev, next, c, inc) {
  if (inc > 0 && prev < c && next >= c) {
    return (next - c) / inc;
  }
  if (inc < 0 && prev > c && next <= c) {
    return (next - c) / inc;
  }
  return -1;
}

// Writes `naive` (the value now) into the ring and returns the finished sample BL_D
// frames back; `s` holds the phase, `s + 1` the ring position and `s + 2...` the ring.
function blEmit(s, naive) {
  const pos = mem[s + 1];
  const ring = s + 2;
  const k = pos + BL_D < BL_K ? pos + BL_D : pos + BL_D - BL_K;
  mem[ring + k] += naive;
  const y = mem[ring + pos];
  mem[ring + pos] = 0;
  mem[s + 1] = pos + 1 < BL_K ? pos + 1 : 0;
  return y;
}

// The phase increment for `freq`, kept under half the sample rate.
function increment(freq) {
  return Math.max(-0.45, Math.min(0.45, freq / SR));
}

function wrap(p) {
  return p - Math.floor(p);
}

// Sets values under 1e-30 to 0, so decaying feedback ends at 0 and never reaches the slow
// subnormal numbers.
function flush(x) {
  return Math.abs(x) < 1e-30 ? 0 : x;
}

// ----- oscillators -----

function phasor() {
  const s = slots(1);
  return (freq = 440) => {
    const p = mem[s];
    mem[s] = wrap(p + freq / SR);
    return p;
  };
}

function sine() {
  const s = slots(1);
  return (freq = 440) => {
    const p = mem[s];
    mem[s] = wrap(p + freq / SR);
    return Math.sin(TAU * p);
  };
}

// Each oscillator calls `blAdd` from one place (a loop over its edges where it has
// several): every call site of the compiled code holds its own copy of the table.

function saw() {
  const s = slots(2 + BL_K);
  return (freq = 440) => {
    const inc = increment(freq);
    const prev = mem[s];
    const next = prev + inc;
    const p = wrap(next);
    mem[s] = p;
    const pos = mem[s + 1];
    // The ramp falls by 2 where the phase wraps: at 1 going up, at 0 going down.
    const frac = blCross(prev, next, inc > 0 ? 1 : 0, inc);
    if (frac >= 0) {
      blAdd(s + 2, pos, 0, frac, inc > 0 ? -2 : 2);
    }
    return blEmit(s, 2 * p - 1);
  };
}

// A band-limited pulse wave: 1 while the phase is under `width`, -1 after.
function pulseStep(s, freq, width) {
  const inc = increment(freq);
  const w = Math.max(0.01, Math.min(0.99, width));
  const prev = mem[s];
  const next = prev + inc;
  const p = wrap(next);
  mem[s] = p;
  const pos = mem[s + 1];
  const dir = inc > 0 ? 1 : -1;
  // Going up, the wave falls by 2 at w (and w - 1, w + 1 past a wrap) and rises by 2 at
  // 0 (or 1); going down, the other way round.
  for (let e = 0; e < 5; e++) {
    const c = e === 0 ? w : e === 1 ? w - 1 : e === 2 ? w + 1 : e === 3 ? 0 : 1;
    const frac = blCross(prev, next, c, inc);
    if (frac >= 0) {
      blAdd(s + 2, pos, 0, frac, e < 3 ? -2 * dir : 2 * dir);
    }
  }
  return blEmit(s, p < w ? 1 : -1);
}

function square() {
  const s = slots(2 + BL_K);
  return (freq = 440) => pulseStep(s, freq, 0.5);
}

function pulse() {
  const s = slots(2 + BL_K);
  return (freq = 440, width = 0.5) => pulseStep(s, freq, width);
}

// A band-limited triangle: 0 at phase 0, 1 at 0.25, -1 at 0.75.
function tri() {
  const s = slots(2 + BL_K);
  return (freq = 440) => {
    const inc = increment(freq);
    const prev = mem[s];
    const next = prev + inc;
    const p = wrap(next);
    mem[s] = p;
    const pos = mem[s + 1];
    // The slope is +4 per cycle, then -4: it bends by -8 at 0.25 (1.25 past a wrap) and by
    // +8 at 0.75 (-0.25 past a wrap), whichever way the phase moves.
    const bend = 8 * Math.abs(inc);
    for (let e = 0; e < 4; e++) {
      const c = e === 0 ? 0.25 : e === 1 ? 1.25 : e === 2 ? 0.75 : -0.25;
      const frac = blCross(prev, next, c, inc);
      if (frac >= 0) {
        blAdd(s + 2, pos, BL_RAMP, frac, e < 2 ? -bend : bend);
      }
    }
    const q = wrap(p + 0.25);
    return blEmit(s, 1 - 4 * Math.abs(q - 0.5));
  };
}

// The "minimal standard" generator (Park and Miller, multiplier 48271, modulus 2^31 - 1)
// on `mem[s]`, in exact double arithmetic (no integer conversions, which are calls in native
// code); returns a uniform number in (-1, 1).
function minstd(s) {
  const p = mem[s] * 48271;
  let x = p - Math.floor(p / 2147483647) * 2147483647;
  if (x < 0) {
    x += 2147483647;
  }
  mem[s] = x;
  return (2 * x) / 2147483647 - 1;
}

// A seed in [1, 2^31 - 2] from SEED and the unit's first slot.
function seedOf(s) {
  const a = Math.imul((SEED | 0) ^ 0x5bd1e995, 0x27d4eb2d);
  const b = Math.imul(s + 1, 0x9e3779b1);
  return 1 + (((a ^ b) >>> 0) % 2147483646);
}

function noise() {
  const s = slots(1);
  if (mem[s] === 0) {
    mem[s] = seedOf(s);
  }
  return () => minstd(s);
}

// Pink noise: white noise through PINK_N pole-zero pairs spaced 1.5 octaves apart.
const PINK_N = 9;
const PINK_F0 = 5;
const PINK_R = 2.8284271247461903;

// Section i of the pink filter: a zero and a pole; last input and output at s + 1 + 2i.
function pinkSection(s, zeros, poles, i, x) {
  const at = s + 1 + 2 * i;
  const y = x - zeros[i] * mem[at] + poles[i] * mem[at + 1];
  mem[at] = x;
  mem[at + 1] = y;
  return y;
}

function pink() {
  const s = slots(1 + 2 * PINK_N);
  if (mem[s] === 0) {
    mem[s] = seedOf(s);
  }
  const poles = [];
  const zeros = [];
  for (let i = 0; i < PINK_N; i++) {
    const fp = PINK_F0 * Math.pow(PINK_R, i);
    poles.push(Math.exp((-TAU * fp) / SR));
    zeros.push(Math.exp((-TAU * fp * Math.sqrt(PINK_R)) / SR));
  }
  return () => {
    const x = minstd(s) * 0.2;
    const y0 = pinkSection(s, zeros, poles, 0, x);
    const y1 = pinkSection(s, zeros, poles, 1, y0);
    const y2 = pinkSection(s, zeros, poles, 2, y1);
    const y3 = pinkSection(s, zeros, poles, 3, y2);
    const y4 = pinkSection(s, zeros, poles, 4, y3);
    const y5 = pinkSection(s, zeros, poles, 5, y4);
    const y6 = pinkSection(s, zeros, poles, 6, y5);
    const y7 = pinkSection(s, zeros, poles, 7, y6);
    return pinkSection(s, zeros, poles, 8, y7);
  };
}

// ----- envelopes -----

// Stages: 0 idle, 1 attack, 2 decay, 3 sustain, 4 release. Slots: stage, frame within the
// stage, level the stage started from, level, last gate.
function envelope(s, gate, na, nd, sus, nr, hold) {
  let stage = mem[s];
  let n = mem[s + 1];
  let from = mem[s + 2];
  let level = mem[s + 3];
  const was = mem[s + 4] > 0;
  const on = gate > 0;
  mem[s + 4] = gate;
  if (on && !was) {
    stage = 1;
    n = 0;
    from = level;
  } else if (!on && was && hold && stage !== 0) {
    stage = 4;
    n = 0;
    from = level;
  }
  if (stage === 1) {
    if (n < na) {
      level = from + ((1 - from) * n) / na;
      n++;
    } else if (hold) {
      stage = 2;
      n = 0;
    } else {
      stage = 4;
      n = 0;
      from = 1;
    }
  }
  if (stage === 2) {
    if (n < nd) {
      const u = 1 - n / nd;
      level = 1 + (sus - 1) * (1 - u * u * u);
      n++;
    } else {
      stage = 3;
    }
  }
  if (stage === 3) {
    level = sus;
  }
  if (stage === 4) {
    if (n < nr) {
      const u = 1 - n / nr;
      level = from * u * u * u;
      n++;
    } else {
      stage = 0;
      level = 0;
    }
  }
  mem[s] = stage;
  mem[s + 1] = n;
  mem[s + 2] = from;
  mem[s + 3] = level;
  return level;
}

function adsr(a = 0.01, d = 0.1, s = 0.7, r = 0.3) {
  const st = slots(5);
  const na = Math.round(Math.max(0, a) * SR);
  const nd = Math.round(Math.max(0, d) * SR);
  const nr = Math.round(Math.max(0, r) * SR);
  const sus = Math.max(0, Math.min(1, s));
  return (gate = 0) => envelope(st, gate, na, nd, sus, nr, true);
}

function ar(a = 0.005, r = 0.3) {
  const st = slots(5);
  const na = Math.round(Math.max(0, a) * SR);
  const nr = Math.round(Math.max(0, r) * SR);
  return (trigger = 0) => envelope(st, trigger, na, 0, 1, nr, false);
}

function decay(t = 0.5) {
  const s = slots(2);
  // Falls by 60 dB (to 0.001) in `t` seconds.
  const k = Math.pow(0.001, 1 / (Math.max(1e-4, t) * SR));
  return (trigger = 0) => {
    const on = trigger > 0;
    const y = on && !(mem[s + 1] > 0) ? 1 : flush(mem[s] * k);
    mem[s] = y;
    mem[s + 1] = trigger;
    return y;
  };
}

// ----- filters -----

// tan(pi * fc / SR), recomputed only when fc changes: the last fc at s, its tan at s + 1.
function prewarp(s, fc) {
  if (fc !== mem[s]) {
    mem[s] = fc;
    mem[s + 1] = Math.tan((Math.PI * fc) / SR);
  }
  return mem[s + 1];
}

// One step of a TPT state-variable filter (Zavalishin / Simper); integrator states at s and
// s + 1, its prewarped cutoff at s + 2, s + 3. `mode`: 0 lowpass, 1 highpass, 2 bandpass
// (unity peak), 3 notch.
function svf(s, x, cutoff, q, mode) {
  const g = prewarp(s + 2, Math.max(1, Math.min(0.49 * SR, cutoff)));
  const k = 1 / Math.max(0.1, Math.min(40, q));
  const a1 = 1 / (1 + g * (g + k));
  const a2 = g * a1;
  const a3 = g * a2;
  const ic1 = mem[s];
  const ic2 = mem[s + 1];
  const v3 = x - ic2;
  const v1 = a1 * ic1 + a2 * v3;
  const v2 = ic2 + a2 * ic1 + a3 * v3;
  mem[s] = flush(2 * v1 - ic1);
  mem[s + 1] = flush(2 * v2 - ic2);
  if (mode === 0) {
    return v2;
  }
  if (mode === 1) {
    return x - k * v1 - v2;
  }
  if (mode === 2) {
    return k * v1;
  }
  return x - k * v1;
}

function lowpass() {
  const s = slots(4);
  return (x, cutoff = 1000, q = 0.7071067811865476) => svf(s, x, cutoff, q, 0);
}

function highpass() {
  const s = slots(4);
  return (x, cutoff = 1000, q = 0.7071067811865476) => svf(s, x, cutoff, q, 1);
}

function bandpass() {
  const s = slots(4);
  return (x, cutoff = 1000, q = 0.7071067811865476) => svf(s, x, cutoff, q, 2);
}

function notch() {
  const s = slots(4);
  return (x, cutoff = 1000, q = 0.7071067811865476) => svf(s, x, cutoff, q, 3);
}

// A TPT one-pole lowpass step: state at s, prewarped cutoff at s + 1, s + 2.
function onepoleStep(s, x, cutoff) {
  const g = prewarp(s + 1, Math.max(0, Math.min(0.49 * SR, cutoff)));
  const v = ((x - mem[s]) * g) / (1 + g);
  const y = v + mem[s];
  mem[s] = flush(y + v);
  return y;
}

function onepole() {
  const s = slots(3);
  return (x, cutoff = 1000) => onepoleStep(s, x, cutoff);
}

// ----- time -----

// A delay line of `len` samples at b, write position in slot w: writes x, returns the
// sample `samples` (fractional, linear interpolation) before it.
function lineStep(b, len, w, x, samples) {
  const pos = mem[w];
  mem[b + pos] = x;
  mem[w] = pos + 1 < len ? pos + 1 : 0;
  const d = Math.max(0, Math.min(len - 2, samples));
  const whole = Math.floor(d);
  const frac = d - whole;
  let i = pos - whole;
  if (i < 0) {
    i += len;
  }
  const j = i > 0 ? i - 1 : len - 1;
  const a = mem[b + i];
  return frac === 0 ? a : a + (mem[b + j] - a) * frac;
}

// Samples of a line that holds up to `seconds`.
function lineLength(seconds) {
  return Math.ceil(Math.max(0, seconds) * SR) + 2;
}

function delay(maxSeconds = 1) {
  const len = lineLength(maxSeconds);
  const w = slots(1);
  const b = buffer(len);
  return (x, seconds = 0.25) => lineStep(b, len, w, x, seconds * SR);
}

// A feedback comb: y[n] = x[n] + feedback * y[n - seconds * SR].
function comb(maxSeconds = 0.1) {
  const len = lineLength(maxSeconds);
  const w = slots(2);
  const b = buffer(len);
  return (x, seconds = 0.05, feedback = 0.5) => {
    const fb = Math.max(-0.999, Math.min(0.999, feedback));
    const y = flush(x + fb * mem[w + 1]);
    // The line returns y from `seconds` ago for the next frame.
    mem[w + 1] = lineStep(b, len, w, y, seconds * SR - 1);
    return y;
  };
}

// A Schroeder allpass: y[n] = -g x[n] + x[n - D] + g y[n - D], D = seconds * SR.
function allpass(maxSeconds = 0.1) {
  const len = lineLength(maxSeconds);
  const w = slots(2);
  const b = buffer(len);
  return (x, seconds = 0.05, gain = 0.5) => {
    const g = Math.max(-0.999, Math.min(0.999, gain));
    const late = mem[w + 1];
    const v = flush(x + g * late);
    mem[w + 1] = lineStep(b, len, w, v, seconds * SR - 1);
    return late - g * v;
  };
}

// Reverb: 8 delay lines (lengths in ms at REVERB_MS) mixed by a Hadamard matrix, with a
// one-pole lowpass in each line for damping.
const REVERB_MS = [29.7, 37.1, 41.1, 43.7, 53.9, 59.3, 67.1, 73.3];
// Four allpass diffusers on the input (ms), so an impulse enters the lines as a dense burst.
const DIFFUSE_MS = [4.77, 3.59, 2.73, 1.63];

// Line i of a reverb (state at s, buffer at b): its oldest sample, and that sample damped
// (filter state at s + 8 + i) and scaled by the line's gain. Called with a constant `i`,
// so every index folds to a constant when compiled.
function reverbRead(s, b, offs, gains, damp, i) {
  const y = mem[b + offs[i] + mem[s + i]];
  const lp = flush(y + (mem[s + 8 + i] - y) * damp);
  mem[s + 8 + i] = lp;
  return [y, lp * gains[i]];
}

// Diffuser i of a reverb: a Schroeder allpass (gain 0.6) as long as line 8 + i; position at
// s + 16 + i.
function reverbDiffuse(s, b, offs, lens, i, x) {
  const pos = mem[s + 16 + i];
  const at = b + offs[8 + i] + pos;
  const late = mem[at];
  const v = flush(x + 0.6 * late);
  mem[at] = v;
  mem[s + 16 + i] = pos + 1 < lens[8 + i] ? pos + 1 : 0;
  return late - 0.6 * v;
}

// Writes `v` into line i of a reverb and moves its position on.
function reverbWrite(s, b, offs, lens, i, v) {
  const pos = mem[s + i];
  mem[b + offs[i] + pos] = v;
  mem[s + i] = pos + 1 < lens[i] ? pos + 1 : 0;
}

function reverb(size = 2, damping = 0.3, mix = 0.3) {
  const rt60 = Math.max(0.05, Math.min(60, size));
  const damp = Math.max(0, Math.min(0.99, damping));
  const wet = Math.max(0, Math.min(1, mix));
  // Slots: 8 line positions, 8 filter states, 4 diffuser positions.
  const s = slots(20);
  const lens = [];
  const offs = [];
  const gains = [];
  let total = 0;
  for (let i = 0; i < 8; i++) {
    const len = Math.round((REVERB_MS[i] * SR) / 1000);
    lens.push(len);
    offs.push(total);
    gains.push(Math.pow(0.001, len / (rt60 * SR)));
    total += len;
  }
  for (let i = 0; i < 4; i++) {
    const len = Math.round((DIFFUSE_MS[i] * SR) / 1000);
    lens.push(len);
    offs.push(total);
    total += len;
  }
  const b = buffer(total);
  // 1 / sqrt(8): makes the Hadamard matrix orthonormal.
  const norm = 0.35355339059327373;
  return (x) => {
    const [y0, a0] = reverbRead(s, b, offs, gains, damp, 0);
    const [y1, a1] = reverbRead(s, b, offs, gains, damp, 1);
    const [y2, a2] = reverbRead(s, b, offs, gains, damp, 2);
    const [y3, a3] = reverbRead(s, b, offs, gains, damp, 3);
    const [y4, a4] = reverbRead(s, b, offs, gains, damp, 4);
    const [y5, a5] = reverbRead(s, b, offs, gains, damp, 5);
    const [y6, a6] = reverbRead(s, b, offs, gains, damp, 6);
    const [y7, a7] = reverbRead(s, b, offs, gains, damp, 7);
    // An 8x8 Hadamard mix as a fast Walsh-Hadamard transform: three butterfly stages.
    const b0 = a0 + a1;
    const b1 = a0 - a1;
    const b2 = a2 + a3;
    const b3 = a2 - a3;
    const b4 = a4 + a5;
    const b5 = a4 - a5;
    const b6 = a6 + a7;
    const b7 = a6 - a7;
    const c0 = b0 + b2;
    const c1 = b1 + b3;
    const c2 = b0 - b2;
    const c3 = b1 - b3;
    const c4 = b4 + b6;
    const c5 = b5 + b7;
    const c6 = b4 - b6;
    const c7 = b5 - b7;
    const d0 = reverbDiffuse(s, b, offs, lens, 0, x);
    const d1 = reverbDiffuse(s, b, offs, lens, 1, d0);
    const d2 = reverbDiffuse(s, b, offs, lens, 2, d1);
    const xi = reverbDiffuse(s, b, offs, lens, 3, d2) * norm;
    reverbWrite(s, b, offs, lens, 0, (c0 + c4) * norm + xi);
    reverbWrite(s, b, offs, lens, 1, (c1 + c5) * norm + xi);
    reverbWrite(s, b, offs, lens, 2, (c2 + c6) * norm + xi);
    reverbWrite(s, b, offs, lens, 3, (c3 + c7) * norm + xi);
    reverbWrite(s, b, offs, lens, 4, (c0 - c4) * norm - xi);
    reverbWrite(s, b, offs, lens, 5, (c1 - c5) * norm - xi);
    reverbWrite(s, b, offs, lens, 6, (c2 - c6) * norm - xi);
    reverbWrite(s, b, offs, lens, 7, (c3 - c7) * norm - xi);
    // Two sign patterns of the line outputs for left and right.
    const l = y0 - y1 + y2 - y3 + y4 + y5 - y6 - y7;
    const r = y0 + y1 - y2 - y3 + y4 - y5 + y6 - y7;
    const dry = 1 - wet;
    return [dry * x + wet * norm * l, dry * x + wet * norm * r];
  };
}

// ----- shaping and levels (plain functions) -----

// Folds x * amount back into [-1, 1] as a triangle wave does.
function fold(x, amount = 1) {
  const t = wrap((x * amount + 1) * 0.25);
  return 1 - 4 * Math.abs(t - 0.5);
}

function clip(x, limit = 1) {
  const l = Math.abs(limit);
  return Math.max(-l, Math.min(l, x));
}

function drive(x, amount = 1) {
  return Math.tanh(x * amount);
}

function crush(x, bits = 8) {
  const steps = Math.pow(2, Math.max(1, bits) - 1);
  return Math.round(x * steps) / steps;
}

// A slew limiter: rises by at most 1 per `rise` seconds and falls by at most 1 per `fall`.
function slew() {
  const s = slots(1);
  return (x, rise = 0.01, fall = rise) => {
    const y = mem[s];
    const up = rise > 0 ? 1 / (rise * SR) : Infinity;
    const down = fall > 0 ? 1 / (fall * SR) : Infinity;
    const next = y + Math.max(-down, Math.min(up, x - y));
    mem[s] = next;
    return next;
  };
}

function pan(x, pos = 0) {
  const a = (Math.max(-1, Math.min(1, pos)) + 1) * 0.25 * Math.PI;
  return [x * Math.cos(a), x * Math.sin(a)];
}

function mix(a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0) {
  return a + b + c + d + e + f + g + h;
}

function mtof(note = 69) {
  return 440 * Math.pow(2, (note - 69) / 12);
}

function dbtoa(db = 0) {
  return Math.pow(10, db / 20);
}

// ----- samples -----

// A sound file (WAV), read when the file loads (relative to the signals file, under the
// folder rules of imports) and kept in the state memory across reloads; its channels are
// mixed to mono. `s(trigger, rate)` plays it from the start on each rising trigger, at
// `rate` times its own speed (1: as recorded, 2: an octave up), with linear interpolation,
// and gives 0 when it is done. Slot s: the position plus 1 (0: not playing); s + 1: the last
// trigger.
function sampler(path) {
  const info = sample(path);
  const base = info[0];
  const len = info[1];
  const step = info[2];
  const s = slots(2);
  return (trigger = 0, rate = 1) => {
    const on = trigger > 0;
    if (on && !(mem[s + 1] > 0)) {
      mem[s] = 1;
    }
    mem[s + 1] = on ? 1 : 0;
    const at = mem[s];
    if (!(at > 0)) {
      return 0;
    }
    const pos = at - 1;
    if (!(pos < len - 1)) {
      mem[s] = 0;
      return 0;
    }
    const i = Math.floor(pos);
    const a = mem[base + i];
    const y = a + (mem[base + i + 1] - a) * (pos - i);
    mem[s] = at + step * Math.max(0, rate);
    return y;
  };
}

const LIBRARY = {
  sampler,
  sine,
  saw,
  square,
  tri,
  pulse,
  phasor,
  noise,
  pink,
  adsr,
  ar,
  decay,
  lowpass,
  highpass,
  bandpass,
  notch,
  onepole,
  delay,
  comb,
  allpass,
  reverb,
  fold,
  clip,
  drive,
  crush,
  slew,
  pan,
  mix,
  mtof,
  dbtoa,
};
