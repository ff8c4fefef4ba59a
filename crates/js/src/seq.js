// Sequencing units: steps and triggers on the transport's clock.
//
// Loaded after dsp.js, in the same wrapper and under the same rules: plain functions in
// the compiler's subset, made while the file loads, called once per frame, state in
// slots(n). They read `clock` (a parameter of the wrapper), so every signal that uses
// them is on the same grid, to the frame. A trigger is 1 on the one frame where the beat
// reaches a step's start, else 0.

// The swing of the step units made from here on in this load (see swing()).
let SWING = 0;

function seqNumber(what, x, low) {
  if (typeof x !== 'number' || !(x > low) || x === Infinity) {
    const shown = typeof x === 'number' ? String(x) : typeof x;
    throw new RangeError(what + ' must be a number above ' + low + ', not ' + shown);
  }
  return x;
}

// The step that beat `b` falls in, on a grid of `step` beats. With swing `sw`, each odd
// step starts `sw` of a step late (the even one before it is that much longer). The small
// bias keeps a beat that lands on a step's start, up to rounding, in that step.
function stepOf(b, step, sw) {
  const u = b / step + 1e-9;
  if (sw === 0) return Math.floor(u);
  const pair = Math.floor(u / 2);
  return 2 * pair + (u - 2 * pair >= 1 + sw ? 1 : 0);
}

// 1 when the step changed since the last frame; on a unit's first frame, when the step
// starts on this very frame. Slots: s (last step), s + 1 (1 once running).
function stepped(s, step, sw) {
  const b = clock.beat;
  const idx = stepOf(b, step, sw);
  let on = 0;
  if (mem[s + 1] === 0) {
    mem[s + 1] = 1;
    if (idx !== stepOf(b - clock.bpm / (60 * SR), step, sw)) on = 1;
  } else if (idx !== mem[s]) {
    on = 1;
  }
  mem[s] = idx;
  return on;
}

// swing(amount): the step units made after it in this load swing: each odd step (the
// 2nd, 4th... of `stepBeats`) starts `amount` of a step late. 0 is straight, 1/3 a
// triplet shuffle; clamped to 0..0.75. swing(0) turns it off again.
function swing(amount) {
  if (typeof amount !== 'number' || !(amount >= 0)) {
    throw new RangeError('swing(amount): amount must be a number from 0 to 0.75, not ' + amount);
  }
  SWING = Math.min(amount, 0.75);
  return SWING;
}

// seq(values, stepBeats): a unit whose call gives the value of the current step, a new
// one every `stepBeats` beats, round and round: `const n = seq([60, 63, 67], 0.5)`, then
// `n()` in update.
function seq(values, stepBeats) {
  if (!Array.isArray(values) || values.length === 0) {
    throw new TypeError('seq(values, stepBeats): values must be a non-empty array of numbers');
  }
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'number') {
      throw new TypeError('seq(values, stepBeats): values[' + i + '] is not a number');
    }
  }
  const list = values.slice();
  const n = list.length;
  const step = seqNumber('seq(values, stepBeats): stepBeats', stepBeats, 0);
  const sw = SWING;
  const s = slots(1);
  return () => {
    const idx = stepOf(clock.beat, step, sw);
    mem[s] = idx;
    return list[((idx % n) + n) % n];
  };
}

// every(beats): a unit whose call gives a trigger on each multiple of `beats` (beat 0
// included): `every(1)` on every beat, `every(4)` on each bar line of 4/4.
function every(beats) {
  const step = seqNumber('every(beats): beats', beats, 0);
  const sw = SWING;
  const s = slots(2);
  return () => stepped(s, step, sw);
}

// euclid(pulses, steps, stepBeats, rotate?): a unit whose call gives a trigger on each
// onset of the Euclidean rhythm of `pulses` onsets spread over `steps` steps of
// `stepBeats` beats: E(3, 8) is x..x..x. (step i is an onset when i * pulses mod steps <
// pulses). `rotate` starts the pattern that many steps later.
function euclid(pulses, steps, stepBeats, rotate) {
  const k = Math.floor(seqNumber('euclid(pulses, steps, ...): steps', steps, 0));
  if (k < 1) throw new RangeError('euclid(pulses, steps, ...): steps must be 1 or more, not ' + steps);
  if (typeof pulses !== 'number' || !(pulses >= 0 && pulses <= k)) {
    throw new RangeError('euclid(pulses, steps, ...): pulses must be a number from 0 to ' + k + ', not ' + pulses);
  }
  if (k > 4096) throw new RangeError('euclid(pulses, steps, ...): steps must be at most 4096, not ' + k);
  const p = Math.floor(pulses);
  const step = seqNumber('euclid(pulses, steps, stepBeats): stepBeats', stepBeats, 0);
  const r = rotate === undefined ? 0 : Math.floor(rotate);
  if (!(r === r && Math.abs(r) < Infinity)) {
    throw new RangeError('euclid(..., rotate): rotate must be a whole number of steps, not ' + rotate);
  }
  const pattern = [];
  for (let i = 0; i < k; i++) pattern.push((i * p) % k < p ? 1 : 0);
  const sw = SWING;
  const s = slots(2);
  return () => {
    if (stepped(s, step, sw) === 0) return 0;
    const i = mem[s] + r;
    return pattern[((i % k) + k) % k];
  };
}

const SEQUENCING = { seq, every, euclid, swing };
